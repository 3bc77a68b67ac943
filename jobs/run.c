/* Shared stage-driver plumbing (run.h). */
#include "run.h"

#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "core/rng.h"
#include "ini.h"
#include "optim/optim.h"
#include "spm_file.h"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

void pep_run_install_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

int pep_run_stop_requested(void) { return stop_flag != 0; }

static int copy_arg(char *dst, size_t len, const char *opt, const char *val)
{
    PEP_CHECK(val, PEP_ERR_USAGE, "%s needs a value", opt);
    PEP_CHECK(strlen(val) < len, PEP_ERR_USAGE, "%s: value longer than %zu characters", opt, len - 1);
    strcpy(dst, val);
    return PEP_OK;
}

int pep_run_parse(struct pep_run *run, const char *stage, int argc, char **argv)
{
    memset(run, 0, sizeof *run);
    run->stage = stage;
    run->size = 1;
    strcpy(run->resume, "none");
    pep_config_defaults(&run->cfg);
    /* the job file first, then --set overrides in order, whatever their position */
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], "--config")) {
            PEP_CALL(copy_arg(run->config_path, sizeof run->config_path, "--config", i + 1 < argc ? argv[i + 1] : NULL));
            PEP_CALL(pep_ini_load(&run->cfg, run->config_path));
            i++;
        }
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--config")) i++;
        else if (!strcmp(a, "--set")) {
            PEP_CHECK(v, PEP_ERR_USAGE, "--set needs section.key=value");
            PEP_CALL(pep_config_set_arg(&run->cfg, v));
            i++;
        } else if (!strncmp(a, "--set=", 6)) PEP_CALL(pep_config_set_arg(&run->cfg, a + 6));
        else if (!strcmp(a, "--out") || !strcmp(a, "-o")) {
            PEP_CALL(copy_arg(run->cfg.run.out, sizeof run->cfg.run.out, a, v));
            i++;
        } else if (!strcmp(a, "--init")) {
            PEP_CALL(copy_arg(run->init, sizeof run->init, a, v));
            i++;
        }
        else if (!strcmp(a, "--model")) {
            PEP_CALL(copy_arg(run->model, sizeof run->model, a, v));
            i++;
        }
        else if (!strcmp(a, "--resume")) {
            PEP_CALL(copy_arg(run->resume, sizeof run->resume, a, v));
            i++;
        }
        else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) pep_set_log_level(PEP_LOG_DEBUG);
        else
            PEP_FAIL(PEP_ERR_USAGE,
                     "peprime %s: unknown option '%s' (options: --config FILE, --set section.key=value, --out DIR, "
                     "--init FILE.h5, --model FILE.h5, --resume auto|none|PATH, --verbose)", stage, a);
    }
    PEP_CALL(pep_config_validate(&run->cfg));
    snprintf(run->out, sizeof run->out, "%s", run->cfg.run.out);
    const char *root = run->cfg.data.root;
    if (!root[0]) root = getenv("PEPRIME_DATA");
    if (!root || !root[0]) root = "../shared/data";
    snprintf(run->data_root, sizeof run->data_root, "%s", root);
    return PEP_OK;
}

int pep_run_replay_optim(const struct pep_run *run, struct pep_optim *out)
{
    const char *from = run->cfg.maml.replay_from;
    char path[PEP_RUN_PATH_MAX];
    snprintf(path, sizeof path, "%s", from);
    if (from[0] != '/' && access(path, R_OK) != 0 && run->config_path[0]) {
        const char *slash = strrchr(run->config_path, '/');
        int dir = slash ? (int)(slash - run->config_path) : 0;
        if (slash) {
            int n = snprintf(path, sizeof path, "%.*s/%s", dir, run->config_path, from);
            PEP_CHECK(n > 0 && (size_t)n < sizeof path, PEP_ERR_USAGE, "maml.replay_from: path too long");
        }
    }
    PEP_CHECK(access(path, R_OK) == 0, PEP_ERR_IO,
              "maml.replay_from = %s: cannot read it (%s), neither as given nor beside the --config file %s; name the "
              "fine-tuning job file whose [optim] the inner loop replays", from, strerror(errno),
              run->config_path[0] ? run->config_path : "(none)");
    struct pep_config *ft = malloc(sizeof *ft);
    PEP_CHECK(ft, PEP_ERR_NOMEM, "out of memory");
    pep_config_defaults(ft);
    int rc = pep_ini_load(ft, path);
    if (rc == PEP_OK) rc = pep_config_validate(ft);
    if (rc == PEP_OK) rc = pep_optim_from_config(ft, out);
    free(ft);
    return rc;
}

static int mkdir_p(const char *path)
{
    char buf[PEP_RUN_ARG_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++)
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
            *p = '/';
        }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Writes text to path through path.tmp + rename, so a reader never sees half a file. */
static int write_text_file(const char *path, const char *text)
{
    char tmp[PEP_RUN_TMP_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    PEP_CHECK(f, PEP_ERR_IO, "cannot write '%s': %s (check that the output folder is writable)", tmp, strerror(errno));
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        remove(tmp);
        PEP_FAIL(PEP_ERR_IO, "cannot write '%s': %s (disk full or folder not writable?)", path, strerror(e));
    }
    return PEP_OK;
}

int pep_run_start(struct pep_run *run)
{
    if (run->rank == 0) {
        PEP_CHECK(mkdir_p(run->out) == 0, PEP_ERR_IO, "cannot create the output folder '%s': %s", run->out,
                  strerror(errno));
        char *ini = NULL, path[PEP_RUN_PATH_MAX];
        PEP_CALL(pep_config_to_ini(&run->cfg, &ini));
        snprintf(path, sizeof path, "%s/config.ini", run->out);
        int rc = write_text_file(path, ini);
        if (rc == PEP_OK) {
            /* one line; the whole config is in config.ini, in every checkpoint, and with --verbose here */
            pep_info("peprime %s %s (revision %s), %d rank%s; config%s%s -> %s (digest %016llx)", run->stage,
                     PEP_VERSION, PEP_GIT_REVISION, run->size, run->size == 1 ? "" : "s",
                     run->config_path[0] ? " " : " (defaults)", run->config_path, path,
                     (unsigned long long)pep_fnv1a64(ini, strlen(ini)));
            pep_debug("resolved config:\n%s", ini);
        }
        pep_free(ini);
        PEP_CALL(rc);
    }
    return PEP_OK;
}

int pep_run_path(const struct pep_run *run, const char *name, char *buf, size_t len)
{
    int n = name[0] == '/' ? snprintf(buf, len, "%s", name) : snprintf(buf, len, "%s/%s", run->out, name);
    PEP_CHECK(n >= 0 && (size_t)n < len, PEP_ERR_USAGE,
              "the path of '%s' in run.out = '%s' is longer than %zu characters: choose a shorter run.out or name",
              name, run->out, len - 1);
    return PEP_OK;
}

void pep_progress_start(struct pep_progress *p, const char *what, long first, long total)
{
    memset(p, 0, sizeof *p);
    p->what = what;
    p->first = first, p->total = total;
    p->t0 = p->last = pep_now_s();
}

int pep_run_tags(const struct pep_run *run, char names[][PEP_TAG_NAME_MAX], int cap, int *n)
{
    *n = pep_list_count(run->cfg.data.tags);
    PEP_CHECK(*n >= 1 && *n <= cap, PEP_ERR_USAGE, "data.tags must list between 1 and %d tags", cap);
    for (int i = 0; i < *n; i++) PEP_CALL(pep_list_item(run->cfg.data.tags, i, names[i], PEP_TAG_NAME_MAX));
    return PEP_OK;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

int pep_run_tokenizer_path(const struct pep_run *run, char *path, size_t len, int *found)
{
    const char *tok = run->cfg.model.tokenizer;
    *found = 0;
    PEP_CALL(pep_run_path(run, tok, path, len));
    if (file_exists(path) || tok[0] == '/') {
        *found = file_exists(path);
        return PEP_OK;
    }
    /* beside the checkpoint this stage starts from: stages chain through their out dirs */
    const char *from[2] = {run->init, run->model};
    for (int i = 0; i < 2; i++) {
        if (!from[i][0]) continue;
        const char *slash = strrchr(from[i], '/');
        char cand[PEP_RUN_PATH_MAX];
        if (slash) snprintf(cand, sizeof cand, "%.*s/%s", (int)(slash - from[i]), from[i], tok);
        else snprintf(cand, sizeof cand, "%s", tok);
        if (file_exists(cand)) {
            snprintf(path, len, "%s", cand);
            *found = 1;
            return PEP_OK;
        }
    }
    PEP_CALL(pep_run_path(run, tok, path, len));
    return PEP_OK;
}

/* Copies src to dst through dst.tmp + rename, so a failed copy (disk full) never leaves a
 * truncated tokenizer under the name the next stage looks for. */
static int copy_file(const char *src, const char *dst)
{
    char tmp[PEP_RUN_TMP_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    FILE *in = fopen(src, "rb"), *o = in ? fopen(tmp, "wb") : NULL;
    int rc = PEP_OK, err = 0;
    PEP_CHECK_GOTO(rc, in, PEP_ERR_IO, "cannot read the tokenizer %s to copy it: %s", src, strerror(errno));
    PEP_CHECK_GOTO(rc, o, PEP_ERR_IO, "cannot create %s (a copy of the tokenizer for the next stage): %s", tmp,
                   strerror(errno));
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, o) != n) break;
    err = errno;
    PEP_CHECK_GOTO(rc, !ferror(in), PEP_ERR_IO, "error reading %s while copying it to %s: %s", src, tmp, strerror(err));
    PEP_CHECK_GOTO(rc, !ferror(o), PEP_ERR_IO, "error writing %s: %s (disk full?)", tmp, strerror(err));
    int closed = fclose(o);
    o = NULL;
    PEP_CHECK_GOTO(rc, closed == 0, PEP_ERR_IO, "error writing %s: %s (disk full?)", tmp, strerror(errno));
    PEP_CHECK_GOTO(rc, rename(tmp, dst) == 0, PEP_ERR_IO, "cannot rename %s to %s: %s", tmp, dst, strerror(errno));
cleanup:
    if (in) fclose(in);
    if (o) fclose(o);
    if (rc != PEP_OK) unlink(tmp);
    return rc;
}

int pep_run_tokenizer(const struct pep_run *run, struct pep_spm **out)
{
    char path[PEP_RUN_PATH_MAX];
    int found;
    PEP_CALL(pep_run_tokenizer_path(run, path, sizeof path, &found));
    PEP_CHECK(found, PEP_ERR_IO,
              "no tokenizer '%s' (model.tokenizer) in run.out = '%s'%s%s: run `peprime pretrain` first (it trains one), "
              "train one with `peprime tokenizer train ... --out FILE`, or set model.tokenizer to its absolute path",
              run->cfg.model.tokenizer, run->out, run->init[0] ? " or beside " : "", run->init[0] ? run->init : "");
    /* keep a copy in this stage's out dir, so the next stage finds it beside our output */
    char mine[PEP_RUN_PATH_MAX];
    PEP_CALL(pep_run_path(run, run->cfg.model.tokenizer, mine, sizeof mine));
    PEP_CALL(pep_spm_read_file(path, out));
    if (run->rank == 0 && strcmp(mine, path) != 0 && !file_exists(mine) && run->cfg.model.tokenizer[0] != '/') {
        int rc = copy_file(path, mine);
        if (rc != PEP_OK) pep_spm_destroy(out);
        return rc;
    }
    return PEP_OK;
}

static void fmt_duration(char *buf, size_t len, double s)
{
    if (s < 0 || s > 1e7) snprintf(buf, len, "?");
    else if (s < 60) snprintf(buf, len, "%.0fs", s);
    else if (s < 3600) snprintf(buf, len, "%dm%02ds", (int)s / 60, (int)s % 60);
    else snprintf(buf, len, "%dh%02dm", (int)s / 3600, ((int)s % 3600) / 60);
}

void pep_progress_report(struct pep_progress *p, long step, double loss, double tokens_since_last, const char *extra)
{
    double now = pep_now_s();
    double dt = now - p->last;
    double tps = dt > 0 ? tokens_since_last / dt : 0.0;
    double per_step = step > p->first ? (now - p->t0) / (double)(step - p->first) : 0.0;
    char eta[32], el[32];
    fmt_duration(eta, sizeof eta, per_step * (double)(p->total - step));
    fmt_duration(el, sizeof el, now - p->t0);
    pep_info("%s step %ld/%ld  loss %.4f  %.0f tokens/s  elapsed %s  ETA %s%s%s", p->what, step, p->total, loss, tps, el,
             eta, extra ? "  " : "", extra ? extra : "");
    p->last = now;
}
