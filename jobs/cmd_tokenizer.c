/* `peprime tokenizer`, the command line only: train a SentencePiece model (train; the work is
 * tokenizer_train.c's, shared with pretrain), print the joined text of a split (text), encode
 * stdin like `spm_encode --output_format=id` (encode), print the NER alignment of stdin's lines
 * (align; data/ner_align.h) and time the C encoder (bench). */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config/config.h"
#include "core/error.h"
#include "data/ner_align.h"
#include "spm_file.h"
#include "tokenizer/spm.h"

#include "jobs.h"
#include "run.h"
#include "tokenizer_train.h"

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

static int cmd_train(struct tok_opts *o)
{
    struct pep_tokenizer_train_params p = {.cfg = &o->cfg, .data = o->data, .languages = o->languages, .out = o->out,
                                           .vocab = o->vocab, .per_lang = o->per_lang, .seed = o->seed,
                                           .coverage = o->coverage};
    return pep_tokenizer_train_run(&p);
}

static int cmd_text(struct tok_opts *o)
{
    char store[8192], *langs[PEP_TOKENIZER_MAX_LANGS];
    int n_langs;
    PEP_CHECK(o->data && o->languages, PEP_ERR_USAGE, "tokenizer text needs --data and --languages");
    PEP_CALL(pep_tokenizer_languages(o->data, o->languages, store, sizeof(store), langs, &n_langs));
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
        PEP_CALL_GOTO(rc, pep_ner_align(spm, (const char *const *)words, lens, NULL, nw, T, ids, NULL, first, &n_ids,
                                        &n_cut));
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
            size_t ncap = cap_lines ? 2 * cap_lines : 4096;
            /* keep the old blocks on failure: cleanup frees them and the lines read so far */
            char **nlines = realloc(lines, ncap * sizeof(*lines));
            if (nlines) lines = nlines;
            size_t *nlens = nlines ? realloc(lens, ncap * sizeof(*lens)) : NULL;
            if (nlens) lens = nlens;
            PEP_CHECK_GOTO(rc, nlines && nlens, PEP_ERR_NOMEM, "out of memory reading '%s'", o->input);
            cap_lines = ncap;
        }
        lines[n_lines] = strndup(line, (size_t)len);
        PEP_CHECK_GOTO(rc, lines[n_lines], PEP_ERR_NOMEM, "out of memory");
        lens[n_lines++] = (size_t)len;
        bytes += (size_t)len + 1;
    }
    /* getline returns -1 at the end of the file and on a read error alike */
    PEP_CHECK_GOTO(rc, !ferror(f), PEP_ERR_IO, "reading '%s': %s", o->input, strerror(errno));
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

int pep_cmd_tokenizer(int argc, char **argv)
{
    struct tok_opts o;
    memset(&o, 0, sizeof o);
    pep_config_defaults(&o.cfg);
    o.per_lang = -1;
    o.coverage = PEP_TOKENIZER_COVERAGE;
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
