/* Tokenizer training (tokenizer_train.h): the NER training text of the chosen languages,
 * read as the stages read it, to a temp file, then spm_train (run without a shell) writes a
 * unigram SentencePiece model. */
#include "tokenizer_train.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conll.h"
#include "core/error.h"
#include "data/corpus.h"
#include "data/generated.h"
#include "run.h"
#include "spm_file.h"
#include "tokenizer/spm.h"

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int pep_tokenizer_languages(const char *root, const char *spec, char *store, size_t store_len, char **langs, int *n)
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
        while ((e = readdir(d)) && *n < PEP_TOKENIZER_MAX_LANGS) {
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
        for (char *t = strtok(store, ","); t && *n < PEP_TOKENIZER_MAX_LANGS; t = strtok(NULL, ","))
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

int pep_tokenizer_train_run(const struct pep_tokenizer_train_params *o)
{
    int rc = PEP_OK;
    char store[8192], *langs[PEP_TOKENIZER_MAX_LANGS], tmp[4096], prefix[4096];
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
            int made = mkdir(prefix, 0755) == 0 || errno == EEXIST;
            PEP_CHECK(made, PEP_ERR_IO, "cannot create the folder '%s' for --out '%s': %s", prefix, o->out,
                      strerror(errno));
            *p = '/';
        }
    PEP_CALL(pep_tokenizer_languages(o->data, o->languages, store, sizeof(store), langs, &n_langs));

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
        PEP_CALL_GOTO(rc, pep_spm_write_text(o->cfg, (const char *const *)langs, n_langs, "train",
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

int pep_tokenizer_train(const struct pep_config *cfg, const char *languages, long vocab, const char *out,
                        long per_lang, uint64_t seed)
{
    struct pep_tokenizer_train_params p = {.cfg = cfg, .languages = languages, .out = out, .vocab = vocab,
                                           .per_lang = per_lang, .seed = seed, .coverage = PEP_TOKENIZER_COVERAGE};
    char root[PEP_RUN_PATH_MAX];
    if (!strcmp(cfg->data.corpus, "generated")) p.data = "generated";
    else if (cfg->data.path[0] == '/') p.data = cfg->data.path; /* needs no data root (nor --languages all) */
    else {
        PEP_CALL(pep_data_root(cfg, NULL, root, sizeof root, NULL));
        p.data = root;
    }
    return pep_tokenizer_train_run(&p);
}
