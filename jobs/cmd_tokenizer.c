/* `peprime tokenizer`: train a SentencePiece model with spm_train on the NER training text
 * (train; read by io/conll.c like every stage), print the joined text of a split (text), encode stdin like
 * `spm_encode --output_format=id` (encode), and time the C encoder (bench). */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/config.h"
#include "core/error.h"
#include "data/corpus.h"
#include "data/generated.h"
#include "conll.h"
#include "spm_file.h"
#include "tokenizer/spm.h"

#include "jobs.h"
#include "run.h"

#define MAX_LANGS 256

struct tok_opts {
    struct pep_config cfg; /* data.* settings: which files are read and how (--data, --set) */
    const char *data, *languages, *out, *model, *split, *input;
    long vocab, per_lang, repeat, max_len;
    uint64_t seed;
    double coverage;
    int fairseq;
};

static void tok_usage(FILE *f)
{
    fprintf(f,
            "usage: peprime tokenizer train --data ROOT --languages en,de,...|all --vocab N --out spm.model\n"
            "                              [--sentences-per-language N (20000; 0 = all)] [--seed S]\n"
            "                              [--character-coverage C (0.9995)] [--set data.KEY=VALUE ...]\n"
            "       peprime tokenizer encode --model spm.model [--fairseq] < text > ids\n"
            "       peprime tokenizer text --data ROOT --languages L,... [--split train|dev|test]\n"
            "                              [--sentences-per-language N (0 = all)] [--seed S] [--set ...]\n"
            "       (--data ROOT is data.root, or 'generated'; --set data.path=..., data.separator=...,\n"
            "        data.scheme=..., data.unknown_types=..., data.tags=... read other datasets the\n"
            "        way the stages do, see docs/config.md)\n"
            "       peprime tokenizer align --model spm.model [--max-len T (128)] < text\n"
            "                              (per line: fairseq ids TAB first-piece index per word\n"
            "                              TAB words cut; words are split on single spaces)\n"
            "       peprime tokenizer bench --model spm.model --input text [--repeat R]\n");
}

static int parse_long(const char *opt, const char *v, long *out)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    PEP_CHECK(!errno && *v && !*end, PEP_ERR_USAGE, "%s: '%s' is not an integer", opt, v);
    *out = x;
    return PEP_OK;
}

static int parse_opts(int argc, char **argv, struct tok_opts *o)
{
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--fairseq")) {
            o->fairseq = 1;
            continue;
        }
        PEP_CHECK(i + 1 < argc, PEP_ERR_USAGE, "option %s needs a value", a);
        const char *v = argv[++i];
        long x;
        if (!strcmp(a, "--data")) o->data = v;
        else if (!strcmp(a, "--set")) {
            PEP_CHECK(!strncmp(v, "data.", 5), PEP_ERR_USAGE, "tokenizer: --set takes data.* keys only, not '%s'", v);
            PEP_CALL(pep_config_set_arg(&o->cfg, v));
        }
        else if (!strcmp(a, "--languages")) o->languages = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--model")) o->model = v;
        else if (!strcmp(a, "--split")) o->split = v;
        else if (!strcmp(a, "--input")) o->input = v;
        else if (!strcmp(a, "--vocab")) PEP_CALL(parse_long(a, v, &o->vocab));
        else if (!strcmp(a, "--sentences-per-language")) PEP_CALL(parse_long(a, v, &o->per_lang));
        else if (!strcmp(a, "--repeat")) PEP_CALL(parse_long(a, v, &o->repeat));
        else if (!strcmp(a, "--max-len")) PEP_CALL(parse_long(a, v, &o->max_len));
        else if (!strcmp(a, "--seed")) {
            PEP_CALL(parse_long(a, v, &x));
            o->seed = (uint64_t)x;
        } else if (!strcmp(a, "--character-coverage")) {
            char *end;
            o->coverage = strtod(v, &end);
            PEP_CHECK(*v && !*end && o->coverage > 0 && o->coverage <= 1, PEP_ERR_USAGE,
                      "--character-coverage: '%s' is not a number in (0, 1]", v);
        } else
            PEP_FAIL(PEP_ERR_USAGE, "tokenizer: unknown option '%s' (see peprime tokenizer --help)", a);
    }
    return PEP_OK;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Splits "en,de" (or "all": every folder of ROOT/ner/wikiann) into langs[]. `store` owns
 * the strings. */
static int split_langs(const char *root, const char *spec, char *store, size_t store_len,
                       char **langs, int *n)
{
    *n = 0;
    if (!strcmp(spec, "all")) {
        char path[4096];
        PEP_CHECK(strcmp(root, "generated") != 0, PEP_ERR_USAGE, "--languages all needs a data root, not --data generated");
        snprintf(path, sizeof(path), "%s/ner/wikiann", root);
        DIR *d = opendir(path);
        PEP_CHECK(d, PEP_ERR_IO, "cannot list languages in '%s': %s (set --data)", path,
                  strerror(errno));
        size_t at = 0;
        struct dirent *e;
        while ((e = readdir(d)) && *n < MAX_LANGS) {
            size_t l = strlen(e->d_name);
            if (e->d_name[0] == '.' || at + l + 1 > store_len) continue;
            memcpy(store + at, e->d_name, l + 1);
            langs[(*n)++] = store + at;
            at += l + 1;
        }
        closedir(d);
        qsort(langs, (size_t)*n, sizeof(*langs), cmp_str);
    } else {
        PEP_CHECK(strlen(spec) < store_len, PEP_ERR_USAGE, "--languages is too long");
        strcpy(store, spec);
        for (char *t = strtok(store, ","); t && *n < MAX_LANGS; t = strtok(NULL, ","))
            langs[(*n)++] = t;
    }
    PEP_CHECK(*n > 0, PEP_ERR_USAGE, "--languages '%s' names no language", spec);
    return PEP_OK;
}

/* Runs argv[0] (looked up on PATH) without a shell and waits for it. */
static int run_program(char **args)
{
    pid_t pid = fork();
    PEP_CHECK(pid >= 0, PEP_ERR_IO, "fork failed: %s", strerror(errno));
    if (pid == 0) {
        execvp(args[0], args);
        fprintf(stderr, "peprime: cannot run %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0) {
        PEP_CHECK(errno == EINTR, PEP_ERR_IO, "waitpid(%s) failed: %s", args[0], strerror(errno));
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
        PEP_FAIL(PEP_ERR_IO, "%s could not be run (is it installed? Debian: apt-get install "
                             "sentencepiece)", args[0]);
    PEP_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, PEP_ERR_IO,
              "%s failed (%s %d); its messages are above", args[0],
              WIFEXITED(status) ? "exit status" : "signal",
              WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
    return PEP_OK;
}

/* The text of the generated corpus (data.corpus = generated), one sentence a line. */
static int write_generated_text(char **langs, int n_langs, long per_lang, uint64_t seed, FILE *f, long *n_lines)
{
    struct pep_config def;
    pep_config_defaults(&def);
    const char **tags = NULL;
    int ntags = 0;
    PEP_CALL(pep_taglist_parse(def.data.tags, &tags, &ntags));
    int rc = PEP_OK;
    for (int l = 0; l < n_langs && rc == PEP_OK; l++) {
        struct pep_corpus *c = NULL;
        rc = pep_generated_corpus(langs[l], "train", per_lang > 0 ? (int)per_lang : PEP_GENERATED_DEFAULT_SENTENCES,
                                  seed, tags, ntags, &c);
        for (int s = 0; rc == PEP_OK && s < c->nsent; s++) {
            for (int j = 0; j < pep_corpus_sentence_len(c, s); j++)
                fprintf(f, "%s%s", j ? " " : "", pep_corpus_word(c, s, j));
            fputc('\n', f);
            (*n_lines)++;
        }
        pep_corpus_destroy(&c);
    }
    pep_free(tags);
    return rc;
}

static int cmd_train(struct tok_opts *o)
{
    int rc = PEP_OK;
    char store[8192], *langs[MAX_LANGS], tmp[4096], prefix[4096];
    char a_input[4200], a_prefix[4200], a_vocab[64], a_cov[64], a_seed[64];
    int n_langs, fd = -1;
    FILE *f = NULL;
    long n_lines = 0;
    PEP_CHECK(o->data && o->languages && o->out && o->vocab > 0, PEP_ERR_USAGE,
              "tokenizer train needs --data, --languages, --vocab and --out");
    size_t ol = strlen(o->out);
    PEP_CHECK(ol > 6 && !strcmp(o->out + ol - 6, ".model") && ol < sizeof(prefix), PEP_ERR_USAGE,
              "--out '%s' must end in .model (spm_train writes PREFIX.model and PREFIX.vocab)",
              o->out);
    memcpy(prefix, o->out, ol - 6);
    prefix[ol - 6] = 0;
    /* spm_train does not create folders: make the output's folder first */
    for (char *p = prefix + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            mkdir(prefix, 0755);
            *p = '/';
        }
    PEP_CALL(split_langs(o->data, o->languages, store, sizeof(store), langs, &n_langs));

    const char *tdir = getenv("TMPDIR");
    snprintf(tmp, sizeof(tmp), "%s/peprime-spm-XXXXXX", tdir && *tdir ? tdir : "/tmp");
    fd = mkstemp(tmp);
    PEP_CHECK(fd >= 0, PEP_ERR_IO, "cannot create a temp file '%s': %s", tmp, strerror(errno));
    f = fdopen(fd, "w");
    PEP_CHECK_GOTO(rc, f, PEP_ERR_IO, "fdopen(%s): %s", tmp, strerror(errno));
    fd = -1;
    if (!strcmp(o->data, "generated"))
        PEP_CALL_GOTO(rc, write_generated_text(langs, n_langs, o->per_lang, o->seed, f, &n_lines));
    else
        PEP_CALL_GOTO(rc, pep_spm_write_text(&o->cfg, (const char *const *)langs, n_langs, "train",
                                             o->per_lang, o->seed, f, &n_lines));
    {
        int closed = fclose(f);
        f = NULL;
        PEP_CHECK_GOTO(rc, closed == 0, PEP_ERR_IO, "writing '%s': %s", tmp, strerror(errno));
    }
    fprintf(stderr, "peprime tokenizer: %ld sentences from %d languages -> %s\n", n_lines,
            n_langs, tmp);

    snprintf(a_input, sizeof(a_input), "--input=%s", tmp);
    snprintf(a_prefix, sizeof(a_prefix), "--model_prefix=%s", prefix);
    snprintf(a_vocab, sizeof(a_vocab), "--vocab_size=%ld", o->vocab);
    snprintf(a_cov, sizeof(a_cov), "--character_coverage=%.6g", o->coverage);
    snprintf(a_seed, sizeof(a_seed), "--random_seed=%u", (unsigned)(o->seed & 0xffffffffu));
    /* --hard_vocab_limit=false: on a small corpus spm_train gives fewer pieces than asked
     * instead of failing (the model reports its real size) */
    char *args[] = {"spm_train", a_input, a_prefix, a_vocab, "--model_type=unigram", a_cov,
                    a_seed, "--num_threads=2", "--minloglevel=1", "--hard_vocab_limit=false", NULL};
    PEP_CALL_GOTO(rc, run_program(args));

    struct pep_spm *spm = NULL;
    PEP_CALL_GOTO(rc, pep_spm_read_file(o->out, &spm));
    fprintf(stderr, "peprime tokenizer: wrote %s (%d pieces)\n", o->out, pep_spm_vocab_size(spm));
    pep_spm_destroy(&spm);
cleanup:
    if (f) fclose(f);
    if (fd >= 0) close(fd);
    unlink(tmp);
    return rc;
}

static int cmd_text(struct tok_opts *o)
{
    char store[8192], *langs[MAX_LANGS];
    int n_langs;
    PEP_CHECK(o->data && o->languages, PEP_ERR_USAGE, "tokenizer text needs --data and --languages");
    PEP_CALL(split_langs(o->data, o->languages, store, sizeof(store), langs, &n_langs));
    PEP_CALL(pep_spm_write_text(&o->cfg, (const char *const *)langs, n_langs,
                                o->split ? o->split : "train", o->per_lang, o->seed, stdout, NULL));
    PEP_CHECK(fflush(stdout) == 0, PEP_ERR_IO, "writing the text: %s", strerror(errno));
    return PEP_OK;
}

/* Appends the decimal digits of v >= 0 at p; returns the new end. */
static char *put_int(char *p, int v)
{
    char tmp[16];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (n) *p++ = tmp[--n];
    return p;
}

static int cmd_encode(struct tok_opts *o)
{
    int rc = PEP_OK;
    struct pep_spm *spm = NULL;
    char *line = NULL, *obuf = NULL;
    int *ids = NULL, cap = 4096;
    size_t lcap = 0, ocap = 1 << 16;
    ssize_t len;
    PEP_CHECK(o->model, PEP_ERR_USAGE, "tokenizer encode needs --model spm.model");
    PEP_CALL(pep_spm_read_file(o->model, &spm));
    PEP_ALLOC_GOTO(rc, ids, cap);
    PEP_ALLOC_GOTO(rc, obuf, ocap);
    while ((len = getline(&line, &lcap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        int n;
        rc = pep_spm_encode(spm, line, (size_t)len, ids, cap, &n);
        if (rc == PEP_ERR_USAGE && n > cap) {
            pep_error_clear();
            pep_free(ids);
            cap = n;
            PEP_ALLOC_GOTO(rc, ids, cap);
            rc = pep_spm_encode(spm, line, (size_t)len, ids, cap, &n);
        }
        if (rc != PEP_OK) goto cleanup;
        if ((size_t)n * 12 + 2 > ocap) {
            pep_free(obuf);
            ocap = (size_t)n * 12 + 2;
            PEP_ALLOC_GOTO(rc, obuf, ocap);
        }
        char *p = obuf;
        for (int k = 0; k < n; k++) {
            if (k) *p++ = ' ';
            p = put_int(p, o->fairseq ? pep_spm_fairseq_id(spm, ids[k]) : ids[k]);
        }
        *p++ = '\n';
        PEP_CHECK_GOTO(rc, fwrite(obuf, 1, (size_t)(p - obuf), stdout) == (size_t)(p - obuf),
                       PEP_ERR_IO, "writing ids: %s", strerror(errno));
    }
    PEP_CHECK_GOTO(rc, fflush(stdout) == 0, PEP_ERR_IO, "writing ids: %s", strerror(errno));
cleanup:
    free(line);
    pep_free(ids);
    pep_free(obuf);
    pep_spm_destroy(&spm);
    return rc;
}

/* Splits each stdin line on single spaces into words and prints the NER alignment. */
static int cmd_align(struct tok_opts *o)
{
    int rc = PEP_OK;
    struct pep_spm *spm = NULL;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    int T = o->max_len > 0 ? (int)o->max_len : 128;
    int *ids = NULL, *first = NULL, cap_words = 0;
    const char **words = NULL;
    size_t *lens = NULL;
    PEP_CHECK(o->model, PEP_ERR_USAGE, "tokenizer align needs --model spm.model");
    PEP_CALL(pep_spm_read_file(o->model, &spm));
    PEP_ALLOC_GOTO(rc, ids, T);
    while ((len = getline(&line, &lcap, stdin)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') line[--len] = 0;
        int nw = 0;
        for (ssize_t i = 0; i <= len; i++) nw += (i == len || line[i] == ' ');
        if (nw > cap_words) {
            pep_free(words);
            pep_free(lens);
            pep_free(first);
            words = NULL;
            lens = NULL;
            first = NULL;
            cap_words = 2 * nw;
            PEP_ALLOC_GOTO(rc, words, cap_words);
            PEP_ALLOC_GOTO(rc, lens, cap_words);
            PEP_ALLOC_GOTO(rc, first, cap_words);
        }
        nw = 0;
        char *w = line;
        for (ssize_t i = 0; i <= len; i++) {
            if (i == len || line[i] == ' ') {
                words[nw] = w;
                lens[nw++] = (size_t)(line + i - w);
                w = line + i + 1;
            }
        }
        if (len == 0) nw = 0;
        int n_ids, n_cut;
        PEP_CALL_GOTO(rc, pep_spm_encode_sentence(spm, (const char *const *)words, lens, nw, T, ids,
                                                  first, &n_ids, &n_cut));
        for (int k = 0; k < n_ids; k++) printf(k ? " %d" : "%d", ids[k]);
        putchar('\t');
        for (int k = 0; k < nw; k++) printf(k ? " %d" : "%d", first[k]);
        printf("\t%d\n", n_cut);
    }
    PEP_CHECK_GOTO(rc, fflush(stdout) == 0, PEP_ERR_IO, "writing: %s", strerror(errno));
cleanup:
    free(line);
    pep_free(ids);
    pep_free(first);
    pep_free(words);
    pep_free(lens);
    pep_spm_destroy(&spm);
    return rc;
}

static int cmd_bench(struct tok_opts *o)
{
    int rc = PEP_OK;
    struct pep_spm *spm = NULL;
    FILE *f = NULL;
    char *line = NULL;
    char **lines = NULL;
    size_t *lens = NULL, lcap = 0, n_lines = 0, cap_lines = 0, bytes = 0;
    int *ids = NULL, cap = 1 << 16;
    ssize_t len;
    PEP_CHECK(o->model && o->input, PEP_ERR_USAGE, "tokenizer bench needs --model and --input");
    PEP_CALL(pep_spm_read_file(o->model, &spm));
    f = fopen(o->input, "r");
    PEP_CHECK_GOTO(rc, f, PEP_ERR_IO, "cannot open '%s': %s", o->input, strerror(errno));
    while ((len = getline(&line, &lcap, f)) >= 0) {
        if (len > 0 && line[len - 1] == '\n') len--;
        if (n_lines == cap_lines) {
            cap_lines = cap_lines ? 2 * cap_lines : 4096;
            lines = realloc(lines, cap_lines * sizeof(*lines));
            lens = realloc(lens, cap_lines * sizeof(*lens));
            PEP_CHECK_GOTO(rc, lines && lens, PEP_ERR_NOMEM, "out of memory reading '%s'", o->input);
        }
        lines[n_lines] = strndup(line, (size_t)len);
        PEP_CHECK_GOTO(rc, lines[n_lines], PEP_ERR_NOMEM, "out of memory");
        lens[n_lines++] = (size_t)len;
        bytes += (size_t)len + 1;
    }
    PEP_ALLOC_GOTO(rc, ids, cap);
    long repeat = o->repeat > 0 ? o->repeat : 1, pieces = 0;
    double t0 = pep_now_s();
    for (long r = 0; r < repeat; r++) {
        for (size_t i = 0; i < n_lines; i++) {
            int n;
            PEP_CALL_GOTO(rc, pep_spm_encode(spm, lines[i], lens[i], ids, cap, &n));
            pieces += n;
        }
    }
    double dt = pep_now_s() - t0;
    double ns = (double)n_lines * (double)repeat;
    printf("peprime C encoder: %zu lines x %ld, %.1f MB, %ld pieces in %.3f s: %.0f sentences/s, "
           "%.2f MB/s\n",
           n_lines, repeat, (double)bytes * (double)repeat / 1e6, pieces, dt, ns / dt,
           (double)bytes * (double)repeat / 1e6 / dt);
cleanup:
    if (f) fclose(f);
    for (size_t i = 0; i < n_lines; i++) free(lines[i]);
    free(lines);
    free(lens);
    free(line);
    pep_free(ids);
    pep_spm_destroy(&spm);
    return rc;
}

/* --data ROOT: data.root of the options' config (kept as is for "generated"). */
static int set_data_root(struct tok_opts *o)
{
    if (!o->data || !strcmp(o->data, "generated")) return PEP_OK;
    return pep_config_set(&o->cfg, "data.root", o->data, "--data");
}

int pep_tokenizer_train(const struct pep_config *cfg, const char *languages, long vocab, const char *out,
                        long per_lang, uint64_t seed)
{
    struct tok_opts o;
    memset(&o, 0, sizeof o);
    o.cfg = *cfg;
    char root[1200];
    if (!strcmp(cfg->data.corpus, "generated")) o.data = "generated";
    else if (cfg->data.path[0] == '/') o.data = cfg->data.path; /* needs no data root (nor --languages all) */
    else {
        PEP_CALL(pep_data_root(cfg, NULL, root, sizeof root, NULL));
        o.data = root;
    }
    o.languages = languages, o.out = out, o.vocab = vocab, o.per_lang = per_lang, o.seed = seed;
    o.coverage = 0.9995;
    return cmd_train(&o);
}

int pep_cmd_tokenizer(int argc, char **argv)
{
    struct tok_opts o;
    memset(&o, 0, sizeof o);
    pep_config_defaults(&o.cfg);
    o.per_lang = -1;
    o.coverage = 0.9995;
    o.seed = 1;
    int rc;
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        tok_usage(argc < 1 ? stderr : stdout);
        if (argc < 1) PEP_FAIL(PEP_ERR_USAGE, "peprime tokenizer needs a subcommand (train, text, encode, align, bench)");
        return PEP_OK;
    }
    const char *sub = argv[0];
    rc = parse_opts(argc - 1, argv + 1, &o);
    if (rc == PEP_OK) rc = set_data_root(&o);
    if (rc == PEP_OK) {
        if (!strcmp(sub, "train")) {
            if (o.per_lang < 0) o.per_lang = 20000;
            rc = cmd_train(&o);
        } else if (!strcmp(sub, "text")) {
            rc = cmd_text(&o);
        } else if (!strcmp(sub, "encode")) {
            rc = cmd_encode(&o);
        } else if (!strcmp(sub, "align")) {
            rc = cmd_align(&o);
        } else if (!strcmp(sub, "bench")) {
            rc = cmd_bench(&o);
        } else {
            rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                               "unknown tokenizer command '%s' (train, text, encode, align, bench)", sub);
        }
    }
    return rc;
}
