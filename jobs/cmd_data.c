/* `peprime data convert`: WikiAnn as distributed (Rahimi et al.'s splits, the Hugging Face dataset
 * exported as JSON lines) into <out>/ner/wikiann/<lang>/<split>.txt, the files the stages read.
 * The command line, finding the input files of each language and split, and the table; reading,
 * checking and writing are io/wikiann.c's. Every input is read and checked before anything is
 * written, so bad input leaves the output folder as it was. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "data/corpus.h"
#include "wikiann.h"

#include "jobs.h"

#define MAX_LANGS 64
#define MAX_INPUTS 16
#define NSPLITS 3

static const char *const split_names[NSPLITS] = {"train", "dev", "test"};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: peprime data convert --from rahimi|hf-jsonl --lang L[,L...] --out ROOT\n"
            "                            (--in DIR|FILE ... | --split train|dev|test=FILE ...)\n"
            "                            [--tags O,B-PER,...] [--force]\n"
            "\n"
            "Turns WikiAnn as distributed into ROOT/ner/wikiann/<lang>/{train,dev,test}.txt (token<TAB>tag,\n"
            "a blank line after each sentence), what the stages read with data.root = ROOT.\n"
            "\n"
            "  --from rahimi    the balanced splits of Rahimi et al. 2019: files train, dev, test of\n"
            "                   `<lang>:token<TAB>tag` lines, blank lines between sentences (the prefix is\n"
            "                   stripped and must be the language), or XTREME's copies train-<lang>.tsv\n"
            "                   (no prefix; kept as written)\n"
            "  --from hf-jsonl  the Hugging Face `wikiann` dataset exported as JSON lines:\n"
            "                   {\"tokens\": [...], \"ner_tags\": [ids], \"langs\": [...], ...} per line;\n"
            "                   ids index the label list (--tags). Parquet is not read: export it with your\n"
            "                   own Python, e.g. python3 -c 'import datasets; datasets.load_dataset(\"wikiann\",\n"
            "                   \"de\")[\"train\"].to_json(\"train.jsonl\")' (and validation, test)\n"
            "  --lang L[,L...]  the language(s); several only with --in DIR\n"
            "  --out ROOT       the data root to write into (created if missing)\n"
            "  --in DIR         looks for each split of each language in DIR:\n"
            "                     rahimi:   <lang>/S, <lang>-S, S-<lang>.tsv, <lang>/S-<lang>.tsv\n"
            "                               (one language: also S)\n"
            "                     hf-jsonl: <lang>/S.jsonl, S-<lang>.jsonl, .json too (one language: also S.jsonl)\n"
            "                   where S is train, dev, test (hf-jsonl: validation or dev)\n"
            "  --in FILE        one file; its split is the word train, dev/valid/validation or test in its name\n"
            "  --split S=FILE   the file of split S (train, dev or validation, test); one language\n"
            "  --tags LIST      the tag set, in label-id order for hf-jsonl\n"
            "                   (default %s)\n"
            "  --force          replace existing output files (otherwise they are an error)\n"
            "\n"
            "Checks: every tag in the tag set; IOB2, where an I-X that follows neither B-X nor I-X is written\n"
            "as B-X and counted (column 'repaired'); a token must be non-empty UTF-8 without TAB, newline or\n"
            "NUL and not -DOCSTART- / -X-; hf-jsonl: as many ner_tags as tokens, langs = the language.\n"
            "An error names the file and line. Every input is read and checked before anything is written;\n"
            "each file is written to NAME.tmp, synced and renamed. Prints sentences, tokens, entities per\n"
            "type, repairs and stripped prefixes per language and split.\n"
            "Exit status: 0 done, 2 bad command line or bad input (nothing written), 1 a failed write.\n"
            "\n"
            "Examples (docs/datasets.md says where to get each layout):\n"
            "  peprime data convert --from rahimi --lang de,fr,sw --in panx_dataset --out data\n"
            "  peprime data convert --from hf-jsonl --lang de --in wikiann-de --out data\n"
            "  peprime data convert --from hf-jsonl --lang de --split train=a.jsonl --split dev=b.jsonl --out data\n",
            PEP_WIKIANN_TAGS);
}

/* One output file: a language's split, where it comes from and what it holds. */
struct item {
    char lang[32];
    int split;
    char in[PATH_MAX];
    char out[PATH_MAX + 64];
    struct pep_wikiann_stats st;
    long entities[PEP_TAGS_MAX]; /* B- tags per tag id */
};

struct convert {
    enum pep_wikiann_format format;
    char langs_store[1024];
    const char *langs[MAX_LANGS];
    int nlangs;
    const char *out;
    const char *in[MAX_INPUTS];
    int nin;
    const char *split_file[NSPLITS];
    const char *tags_arg;
    int force;
    const char **tags;
    int ntags;
    struct item *items;
    int nitems;
};

static int split_index(const char *name, size_t n)
{
    if (n == 5 && !strncmp(name, "train", 5)) return 0;
    if ((n == 3 && !strncmp(name, "dev", 3)) || (n == 5 && !strncmp(name, "valid", 5)) ||
        (n == 10 && !strncmp(name, "validation", 10)))
        return 1;
    if (n == 4 && !strncmp(name, "test", 4)) return 2;
    return -1;
}

static int parse_langs(struct convert *cv, const char *arg)
{
    PEP_CHECK(strlen(arg) < sizeof cv->langs_store, PEP_ERR_USAGE, "--lang: the list is too long");
    snprintf(cv->langs_store, sizeof cv->langs_store, "%s", arg);
    for (char *tok = strtok(cv->langs_store, ","); tok; tok = strtok(NULL, ",")) {
        size_t n = strlen(tok);
        static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";
        PEP_CHECK(n >= 1 && n < 32 && strspn(tok, ok) == n,
                  PEP_ERR_USAGE, "--lang: '%s' is not a language code (letters, digits, '-' and '_', e.g. de or "
                  "zh-yue)", tok);
        for (int i = 0; i < cv->nlangs; i++)
            PEP_CHECK(strcmp(cv->langs[i], tok), PEP_ERR_USAGE, "--lang: '%s' is listed twice", tok);
        PEP_CHECK(cv->nlangs < MAX_LANGS, PEP_ERR_USAGE, "--lang: more than %d languages; convert them in groups",
                  MAX_LANGS);
        cv->langs[cv->nlangs++] = tok;
    }
    PEP_CHECK(cv->nlangs > 0, PEP_ERR_USAGE, "--lang: no language given");
    return PEP_OK;
}

static int parse_args(int argc, char **argv, struct convert *cv, int *help)
{
    const char *from = NULL, *langs = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            *help = 1;
            return PEP_OK;
        }
        if (!strcmp(a, "--force")) {
            cv->force = 1;
            continue;
        }
        PEP_CHECK(a[0] == '-', PEP_ERR_USAGE, "unexpected argument '%s' (see peprime data --help)", a);
        PEP_CHECK(i + 1 < argc, PEP_ERR_USAGE, "%s needs a value (see peprime data --help)", a);
        const char *v = argv[++i];
        if (!strcmp(a, "--from")) from = v;
        else if (!strcmp(a, "--lang")) langs = v;
        else if (!strcmp(a, "--out")) cv->out = v;
        else if (!strcmp(a, "--tags")) cv->tags_arg = v;
        else if (!strcmp(a, "--in")) {
            PEP_CHECK(cv->nin < MAX_INPUTS, PEP_ERR_USAGE, "more than %d --in", MAX_INPUTS);
            cv->in[cv->nin++] = v;
        } else if (!strcmp(a, "--split")) {
            const char *eq = strchr(v, '=');
            int s = eq ? split_index(v, (size_t)(eq - v)) : -1;
            PEP_CHECK(s >= 0 && eq[1], PEP_ERR_USAGE,
                      "--split '%s': write NAME=FILE with NAME train, dev (or validation) or test", v);
            PEP_CHECK(!cv->split_file[s], PEP_ERR_USAGE, "--split %s is given twice", split_names[s]);
            cv->split_file[s] = eq + 1;
        } else
            PEP_FAIL(PEP_ERR_USAGE, "unknown option '%s' (see peprime data --help)", a);
    }
    PEP_CHECK(from, PEP_ERR_USAGE, "--from rahimi|hf-jsonl is required (see peprime data --help)");
    PEP_CALL(pep_wikiann_format_parse(from, &cv->format));
    PEP_CHECK(langs, PEP_ERR_USAGE, "--lang is required (see peprime data --help)");
    PEP_CALL(parse_langs(cv, langs));
    PEP_CHECK(cv->out && cv->out[0], PEP_ERR_USAGE, "--out ROOT is required (see peprime data --help)");
    int nsplit = !!cv->split_file[0] + !!cv->split_file[1] + !!cv->split_file[2];
    PEP_CHECK(cv->nin > 0 || nsplit > 0, PEP_ERR_USAGE,
              "give the input with --in DIR|FILE or --split NAME=FILE (see peprime data --help)");
    PEP_CHECK(nsplit == 0 || cv->nlangs == 1, PEP_ERR_USAGE,
              "--split names one language's files; give one --lang (or --in DIR for several)");
    PEP_CHECK(cv->tags_arg == NULL || cv->tags_arg[0], PEP_ERR_USAGE, "--tags is empty");
    PEP_CALL(pep_taglist_parse(cv->tags_arg ? cv->tags_arg : PEP_WIKIANN_TAGS, &cv->tags, &cv->ntags));
    PEP_CALL(pep_wikiann_check_tags(cv->tags, cv->ntags, "--tags"));
    return PEP_OK;
}

static int is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

static int is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Adds the input of (lang, split); two inputs for one are an error. */
static int add_item(struct convert *cv, const char *lang, int split, const char *in)
{
    for (int i = 0; i < cv->nitems; i++)
        PEP_CHECK(!(cv->items[i].split == split && !strcmp(cv->items[i].lang, lang)), PEP_ERR_USAGE,
                  "two inputs for %s/%s: '%s' and '%s'; give one (--split %s=FILE picks it)", lang,
                  split_names[split], cv->items[i].in, in, split_names[split]);
    struct item *it = &cv->items[cv->nitems];
    memset(it, 0, sizeof *it);
    snprintf(it->lang, sizeof it->lang, "%s", lang);
    it->split = split;
    PEP_CHECK(strlen(in) < sizeof it->in, PEP_ERR_USAGE, "path '%s' is too long", in);
    snprintf(it->in, sizeof it->in, "%s", in);
    int n = snprintf(it->out, sizeof it->out, "%s/ner/wikiann/%s/%s.txt", cv->out, lang, split_names[split]);
    PEP_CHECK(n > 0 && (size_t)n < sizeof it->out, PEP_ERR_USAGE, "--out '%s' is too long", cv->out);
    cv->nitems++;
    return PEP_OK;
}

/* The split a file name says: the one of train, dev / valid / validation, test that occurs in
 * its last component as a word (between non-letters). -1 if none, -2 if more than one. */
static int split_of_name(const char *path)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    int found = -1;
    for (const char *p = base; *p;) {
        while (*p && !((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z'))) p++;
        const char *w = p;
        while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')) p++;
        int s = p > w ? split_index(w, (size_t)(p - w)) : -1;
        if (s < 0) continue;
        if (found >= 0 && found != s) return -2;
        found = s;
    }
    return found;
}

/* The names a split may have in a folder, for one language (`single`: the only one asked for). */
static int candidates(enum pep_wikiann_format fmt, const char *dir, const char *lang, int split, int single,
                      char (*out)[PATH_MAX + 64], int max)
{
    static const char *const hf_names[NSPLITS][2] = {{"train", NULL}, {"validation", "dev"}, {"test", NULL}};
    int n = 0;
    const char *d = dir;
    if (fmt == PEP_WIKIANN_FORMAT_RAHIMI) {
        const char *s = split_names[split];
        snprintf(out[n++], PATH_MAX + 64, "%s/%s/%s", d, lang, s);
        snprintf(out[n++], PATH_MAX + 64, "%s/%s-%s", d, lang, s); /* XTREME's renaming before its preprocessing */
        snprintf(out[n++], PATH_MAX + 64, "%s/%s-%s.tsv", d, s, lang);
        snprintf(out[n++], PATH_MAX + 64, "%s/%s/%s-%s.tsv", d, lang, s, lang);
        if (single) snprintf(out[n++], PATH_MAX + 64, "%s/%s", d, s);
        return n;
    }
    for (int k = 0; k < 2 && hf_names[split][k] && n + 6 <= max; k++) {
        const char *s = hf_names[split][k];
        for (int e = 0; e < 2; e++) {
            const char *ext = e ? "json" : "jsonl";
            snprintf(out[n++], PATH_MAX + 64, "%s/%s/%s.%s", d, lang, s, ext);
            snprintf(out[n++], PATH_MAX + 64, "%s/%s-%s.%s", d, s, lang, ext);
            if (single) snprintf(out[n++], PATH_MAX + 64, "%s/%s.%s", d, s, ext);
        }
    }
    return n;
}

/* A Parquet or Arrow file in `dir`, for the hint when a folder has no text files. */
static int find_binary(const char *dir, char *buf, size_t len)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    struct dirent *e;
    int found = 0;
    while (!found && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if ((n > 8 && !strcmp(e->d_name + n - 8, ".parquet")) || (n > 6 && !strcmp(e->d_name + n - 6, ".arrow")))
            found = snprintf(buf, len, "%s/%s", dir, e->d_name) < (int)len;
    }
    closedir(d);
    return found;
}

/* Fills cv->items from --split, --in FILE and --in DIR. */
static int resolve(struct convert *cv)
{
    PEP_ALLOC(cv->items, (size_t)cv->nlangs * NSPLITS);
    for (int s = 0; s < NSPLITS; s++) {
        const char *f = cv->split_file[s];
        if (!f) continue;
        PEP_CHECK(is_file(f), PEP_ERR_USAGE, "--split %s=%s: no such file", split_names[s], f);
        PEP_CALL(pep_wikiann_sniff(f, cv->langs[0]));
        PEP_CALL(add_item(cv, cv->langs[0], s, f));
    }
    for (int i = 0; i < cv->nin; i++) {
        const char *p = cv->in[i];
        if (is_file(p)) {
            PEP_CHECK(cv->nlangs == 1, PEP_ERR_USAGE,
                      "--in %s is one file, but --lang names %d languages; give one --lang, or a folder",
                      p, cv->nlangs);
            PEP_CALL(pep_wikiann_sniff(p, cv->langs[0]));
            int s = split_of_name(p);
            PEP_CHECK(s >= 0, PEP_ERR_USAGE,
                      "cannot tell the split of '%s' from its name (%s); give it as --split "
                      "train|dev|test=%s",
                      p, s == -2 ? "it names two" : "no train, dev, validation or test in it", p);
            PEP_CALL(add_item(cv, cv->langs[0], s, p));
            continue;
        }
        PEP_CHECK(is_dir(p), PEP_ERR_USAGE, "--in %s: no such file or folder", p);
        for (int l = 0; l < cv->nlangs; l++) {
            int got = 0;
            for (int s = 0; s < NSPLITS; s++) {
                char names[16][PATH_MAX + 64];
                int n = candidates(cv->format, p, cv->langs[l], s, cv->nlangs == 1, names, 16), hit = -1;
                for (int k = 0; k < n; k++) {
                    if (!is_file(names[k])) continue;
                    PEP_CHECK(hit < 0, PEP_ERR_USAGE,
                              "%s/%s: both '%s' and '%s' are there; pick one with --split %s=FILE",
                              cv->langs[l], split_names[s], names[hit], names[k], split_names[s]);
                    hit = k;
                }
                if (hit < 0) continue;
                PEP_CALL(pep_wikiann_sniff(names[hit], cv->langs[l]));
                PEP_CALL(add_item(cv, cv->langs[l], s, names[hit]));
                got++;
            }
            if (got) continue;
            char bin[PATH_MAX + 300], sub[PATH_MAX + 40];
            snprintf(sub, sizeof sub, "%s/%s", p, cv->langs[l]);
            if (find_binary(sub, bin, sizeof bin) || find_binary(p, bin, sizeof bin))
                PEP_CALL(pep_wikiann_sniff(bin, cv->langs[l]));
            PEP_FAIL(PEP_ERR_USAGE,
                     "no %s files of language '%s' in %s (looked for %s); name the files with "
                     "--split train|dev|test=FILE",
                     pep_wikiann_format_name(cv->format), cv->langs[l], p,
                     cv->format == PEP_WIKIANN_FORMAT_RAHIMI
                         ? (cv->nlangs == 1
                                ? "<lang>/train, <lang>-train, train-<lang>.tsv, <lang>/train-<lang>.tsv, train, "
                                  "and dev, test"
                                : "<lang>/train, <lang>-train, train-<lang>.tsv, <lang>/train-<lang>.tsv, and dev, "
                                  "test")
                         : (cv->nlangs == 1 ? "<lang>/train.jsonl, train-<lang>.jsonl, train.jsonl (or .json), and "
                                              "validation or dev, test"
                                            : "<lang>/train.jsonl, train-<lang>.jsonl (or .json), and validation or "
                                              "dev, test"));
        }
    }
    return PEP_OK;
}

/* Without --force, any existing output is an error naming them. */
static int check_outputs(const struct convert *cv)
{
    if (cv->force) return PEP_OK;
    int n = 0, first = -1;
    for (int i = 0; i < cv->nitems; i++) {
        struct stat st;
        if (lstat(cv->items[i].out, &st) != 0) continue;
        if (first < 0) first = i;
        n++;
    }
    PEP_CHECK(n == 0, PEP_ERR_USAGE, "%s exists (%d of the %d outputs do); nothing was written: pass --force to "
              "replace them, or another --out", cv->items[first].out, n, cv->nitems);
    return PEP_OK;
}

static int cmp_items(const void *a, const void *b)
{
    const struct item *x = a, *y = b;
    int c = strcmp(x->lang, y->lang);
    return c ? c : x->split - y->split;
}

/* Reads one input; counts its entities (B- tags) when `it` is being checked. */
static int read_item(const struct convert *cv, struct item *it, struct pep_corpus **c)
{
    PEP_CALL(pep_wikiann_read(cv->format, it->in, it->lang, cv->tags, cv->ntags, c, &it->st));
    memset(it->entities, 0, sizeof it->entities);
    for (size_t w = 0; w < (*c)->nwords; w++)
        if (cv->tags[(*c)->tags[w]][0] == 'B') it->entities[(*c)->tags[w]]++;
    return PEP_OK;
}

static void print_table(const struct convert *cv)
{
    printf("%-8s %-5s %9s %10s", "lang", "split", "sentences", "tokens");
    for (int t = 0; t < cv->ntags; t++)
        if (cv->tags[t][0] == 'B') printf(" %7.7s", cv->tags[t] + 2);
    printf(" %8s %8s  %s\n", "repaired", "prefixes", "from");
    for (int i = 0; i < cv->nitems; i++) {
        const struct item *it = &cv->items[i];
        printf("%-8s %-5s %9ld %10ld", it->lang, split_names[it->split], it->st.sentences, it->st.tokens);
        for (int t = 0; t < cv->ntags; t++)
            if (cv->tags[t][0] == 'B') printf(" %7ld", it->entities[t]);
        if (cv->format == PEP_WIKIANN_FORMAT_RAHIMI)
            printf(" %8ld %8ld  %s\n", it->st.repaired, it->st.prefixes, it->in);
        else
            printf(" %8ld %8s  %s\n", it->st.repaired, "-", it->in);
    }
}

static int convert(struct convert *cv, int *wrote)
{
    PEP_CALL(resolve(cv));
    qsort(cv->items, (size_t)cv->nitems, sizeof cv->items[0], cmp_items);
    PEP_CALL(check_outputs(cv));
    /* check every input before writing anything */
    for (int i = 0; i < cv->nitems; i++) {
        struct pep_corpus *c = NULL;
        PEP_CALL(read_item(cv, &cv->items[i], &c));
        pep_corpus_destroy(&c);
    }
    printf("data convert: %s -> %s/ner/wikiann/\n", pep_wikiann_format_name(cv->format), cv->out);
    print_table(cv);
    for (int i = 0; i < cv->nitems; i++) {
        const struct item *it = &cv->items[i];
        if (cv->format == PEP_WIKIANN_FORMAT_RAHIMI && it->st.prefixes == 0)
            printf("note: %s/%s: no '%s:' prefixes (XTREME's copies); tokens kept as written\n", it->lang,
                   split_names[it->split], it->lang);
        if (it->st.empty)
            printf("note: %s/%s: %ld objects without tokens skipped\n", it->lang, split_names[it->split], it->st.empty);
    }
    for (int l = 0; l < cv->nlangs; l++) {
        char missing[32] = "";
        for (int s = 0; s < NSPLITS; s++) {
            int have = 0;
            for (int i = 0; i < cv->nitems; i++)
                have |= cv->items[i].split == s && !strcmp(cv->items[i].lang, cv->langs[l]);
            size_t used = strlen(missing);
            if (!have) snprintf(missing + used, sizeof missing - used, "%s%s", used ? ", " : "", split_names[s]);
        }
        if (missing[0])
            printf("note: %s: no %s given (a source language needs train and dev, a target test)\n", cv->langs[l],
                   missing);
    }
    char set[PEP_TAGS_MAX * PEP_TAG_NAME_MAX];
    size_t o = 0;
    for (int t = 0; t < cv->ntags; t++)
        o += (size_t)snprintf(set + o, sizeof set - o, "%s%s", t ? "," : "", cv->tags[t]);
    if (strcmp(set, PEP_WIKIANN_TAGS))
        printf("note: the tag set is not WikiAnn's: set data.tags = %s in the job files that read these files\n", set);
    fflush(stdout);
    *wrote = 1;
    for (int i = 0; i < cv->nitems; i++) {
        struct item *it = &cv->items[i];
        struct pep_corpus *c = NULL;
        PEP_CALL(pep_wikiann_read(cv->format, it->in, it->lang, cv->tags, cv->ntags, &c, NULL));
        int rc = pep_wikiann_write(it->out, c);
        pep_corpus_destroy(&c);
        PEP_CALL(rc);
    }
    printf("wrote %d file%s under %s/ner/wikiann/; the stages read them with data.root = %s\n", cv->nitems,
           cv->nitems == 1 ? "" : "s", cv->out, cv->out);
    return PEP_OK;
}

int pep_cmd_data(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "convert")) {
        fprintf(stderr, "peprime data: unknown subcommand '%s' (the one there is: convert; see peprime data --help)\n",
                argv[1]);
        return 2;
    }
    struct convert cv;
    memset(&cv, 0, sizeof cv);
    int help = 0, wrote = 0;
    int rc = parse_args(argc - 2, argv + 2, &cv, &help);
    if (rc == PEP_OK && help) usage(stdout);
    else if (rc == PEP_OK) rc = convert(&cv, &wrote);
    pep_free((void *)cv.tags);
    pep_free(cv.items);
    if (rc == PEP_OK) return 0;
    pep_print_error("data convert");
    /* before writing, every failure but memory is the command line's or the input's */
    return wrote || rc == PEP_ERR_NOMEM || rc == PEP_ERR_INTERNAL ? 1 : 2;
}
