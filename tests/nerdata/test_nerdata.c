/* jobs/nerdata.c on small hand-made files: two languages of CoNLL text in a data root made
 * here, a SentencePiece model trained on them with spm_train (as tests/unit/test_spm.c does).
 * Checks what every stage relies on: rows (<s> ... </s>, padding, one label per word at its
 * first piece, gold tags in file order, truncation), batches (T = longest sentence), the real
 * token count, scoring several sets into one accumulator over 1 or 2 ranks (the counts of
 * earlier sets are not summed again), the tokenizer copy's I/O errors and long paths.
 * Runs alone and under `mpiexec -n 2` (every check on every rank). */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"
#include "metrics/conlleval.h"
#include "model/model.h"
#include "nerdata.h"
#include "spm_file.h"
#include "testutil.h"

static int g_rank, g_size;
static char g_root[1024], g_spm[PEP_TEST_PATH_MAX];

/* language -> CoNLL text; "aa" has one long sentence (11 words) for the truncation checks */
static const char *k_aa =
    "Berlin\tB-LOC\nis\tO\nbig\tO\n\n"
    "Angela\tB-PER\nMerkel\tI-PER\nvisited\tO\nParis\tB-LOC\nand\tO\nthe\tO\nUnited\tB-ORG\nNations\tI-ORG\n"
    "yesterday\tO\nin\tO\nspring\tO\n\n"
    "Rome\tB-LOC\n\n"
    "the\tO\nRhine\tB-LOC\nflows\tO\n\n";
static const char *k_bb =
    "Moscow\tB-LOC\nand\tO\nTokyo\tB-LOC\n\n"
    "Marie\tB-PER\nCurie\tI-PER\n\n"
    "Nobel\tB-ORG\nPrize\tI-ORG\nwinners\tO\nmet\tO\n\n";
static const int k_aa_words[] = {3, 11, 1, 3};

static void put(const char *dir, const char *name, const char *text)
{
    char path[1400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) fail_msg("cannot write %s", path);
    fputs(text, f);
    fclose(f);
}

static void make_lang(const char *lang, const char *text)
{
    char dir[PEP_TEST_PATH_MAX], cmd[2600];
    snprintf(dir, sizeof dir, "%s/ner/wikiann/%s", g_root, lang);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", dir);
    if (system(cmd) != 0) fail_msg("%s failed", cmd);
    put(dir, "train.txt", text);
    put(dir, "dev.txt", text);
}

static int setup(void **state)
{
    (void)state;
    char tag[32];
    snprintf(tag, sizeof tag, "nerdata_r%d", g_rank);
    snprintf(g_root, sizeof g_root, "%s", pep_test_tmpdir(tag));
    make_lang("aa", k_aa);
    make_lang("bb", k_bb);
    /* the tokenizer's training text: the words of both languages, one sentence per line */
    char cmd[PEP_TEST_CMD_MAX];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && for f in ner/wikiann/*/train.txt; do cut -f1 \"$f\" | tr '\\n' ' ' | sed 's/  /\\n/g'; "
             "echo; done > text.txt && for i in 1 2 3 4; do cat text.txt; done > train.txt && "
             "spm_train --input=train.txt --model_prefix=tiny --vocab_size=100 --hard_vocab_limit=false "
             "--num_threads=1 --minloglevel=2 > spm_train.log 2>&1",
             g_root);
    if (system(cmd) != 0) {
        fprintf(stderr, "spm_train failed; see %s/spm_train.log\n", g_root);
        return -1;
    }
    snprintf(g_spm, sizeof g_spm, "%s/tiny.model", g_root);
    return 0;
}

static void make_run(struct pep_run *run, int max_seq_len)
{
    memset(run, 0, sizeof *run);
    run->stage = "test";
    run->rank = g_rank, run->size = g_size;
    pep_config_defaults(&run->cfg);
    char v[32];
    snprintf(v, sizeof v, "%d", max_seq_len);
    assert_int_equal(pep_config_set(&run->cfg, "data.root", g_root, "test"), PEP_OK);
    assert_int_equal(pep_config_set(&run->cfg, "model.max_seq_len", v, "test"), PEP_OK);
    assert_int_equal(pep_config_set(&run->cfg, "model.layers", "1", "test"), PEP_OK);
    assert_int_equal(pep_config_set(&run->cfg, "model.hidden", "16", "test"), PEP_OK);
    assert_int_equal(pep_config_set(&run->cfg, "model.heads", "2", "test"), PEP_OK);
    assert_int_equal(pep_config_set(&run->cfg, "model.ff", "32", "test"), PEP_OK);
    snprintf(run->out, sizeof run->out, "%s", g_root);
    snprintf(run->data_root, sizeof run->data_root, "%s", g_root);
}

static struct pep_spm *load_spm(void)
{
    struct pep_spm *spm = NULL;
    assert_int_equal(pep_spm_read_file(g_spm, &spm), PEP_OK);
    return spm;
}

/* Language aa's training split with rows of max_seq_len ids; the caller frees both. */
static struct pep_spm *load_aa(struct pep_run *run, int max_seq_len, struct pep_nerset *s)
{
    make_run(run, max_seq_len);
    struct pep_spm *spm = load_spm();
    assert_int_equal(pep_nerset_load(run, spm, "aa", "train", s), PEP_OK);
    return spm;
}

/* Rows: <s> first, </s> last, padding after; exactly one label per kept word, at its first
 * piece, equal to the gold tag; gold tags in file order; the token total is the ids in use. */
static void test_nerdata_rows(void **state)
{
    (void)state;
    struct pep_run run;
    struct pep_nerset s;
    struct pep_spm *spm = load_aa(&run, 64, &s);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.T, 64);
    assert_int_equal(s.truncated_sentences, 0);
    /* B-LOC O O | B-PER I-PER O B-LOC O O B-ORG I-ORG O O O | B-LOC | O B-LOC O (tags in data.tags order) */
    const int gold[] = {5, 0, 0, 1, 2, 0, 5, 0, 0, 3, 4, 0, 0, 0, 5, 0, 5, 0};
    assert_int_equal(s.word_off[s.n], 18);
    long tokens = 0;
    for (int i = 0; i < s.n; i++) {
        const int *ids = s.ids + (size_t)i * s.T, *lab = s.labels + (size_t)i * s.T;
        int nw = s.word_off[i + 1] - s.word_off[i];
        assert_int_equal(nw, k_aa_words[i]);
        assert_true(s.len[i] >= nw + 2);
        assert_int_equal(ids[0], PEP_BOS_ID);
        assert_int_equal(ids[s.len[i] - 1], PEP_EOS_ID);
        for (int t = 1; t < s.len[i] - 1; t++) assert_true(ids[t] > PEP_EOS_ID);
        for (int t = s.len[i]; t < s.T; t++) assert_int_equal(ids[t], PEP_PAD_ID);
        int labelled = 0, prev = 0;
        for (int t = 0; t < s.T; t++) labelled += lab[t] != PEP_IGNORE_INDEX;
        assert_int_equal(labelled, nw);
        for (int w = 0; w < nw; w++) {
            int g = s.word_off[i] + w, f = s.first[g];
            assert_int_equal(s.gold[g], gold[g]);
            assert_true(f > prev); /* after <s> and after the previous word's first piece */
            assert_int_equal(lab[f], s.gold[g]);
            prev = f;
        }
        tokens += s.len[i];
    }
    assert_int_equal(s.tokens, tokens);
    pep_nerset_free(&s);
    pep_spm_destroy(&spm);
}

/* A short max_seq_len: the long sentence is cut, its lost words have first = -1 and no label,
 * a cut row is full (len = T, ending in </s>), and the lost words add up to the counts. */
static void test_nerdata_truncation(void **state)
{
    (void)state;
    struct pep_run run;
    struct pep_nerset s;
    struct pep_spm *spm = load_aa(&run, 8, &s);
    int lost_total = 0, cut_sentences = 0;
    for (int i = 0; i < s.n; i++) {
        int lost = 0, labelled = 0, nw = s.word_off[i + 1] - s.word_off[i];
        for (int w = s.word_off[i]; w < s.word_off[i + 1]; w++) lost += s.first[w] < 0;
        for (int t = 0; t < s.T; t++) labelled += s.labels[(size_t)i * s.T + t] != PEP_IGNORE_INDEX;
        assert_int_equal(labelled, nw - lost);
        if (lost) {
            assert_int_equal(s.len[i], 8);
            assert_int_equal(s.ids[(size_t)i * s.T + 7], PEP_EOS_ID);
        }
        lost_total += lost, cut_sentences += lost > 0;
    }
    assert_true(s.first[s.word_off[1] + 10] < 0); /* the 11-word sentence cannot fit in 6 pieces */
    assert_int_equal(lost_total, s.truncated_words);
    assert_int_equal(cut_sentences, s.truncated_sentences);
    pep_nerset_free(&s);
    pep_spm_destroy(&spm);
}

/* A batch of a long and a short sentence: the rows of both, back to back with their offsets,
 * and the token count is the real ids (len1 + len2): no padding to the longer one. */
static void test_nerdata_batch_tokens(void **state)
{
    (void)state;
    struct pep_run run;
    struct pep_nerset s;
    struct pep_spm *spm = load_aa(&run, 64, &s);
    int idx[2] = {1, 2}; /* 11 words, 1 word */
    struct pep_batch b = {0};
    assert_int_equal(pep_batch_alloc(&b, 2, 2 * s.T), PEP_OK);
    assert_int_equal(pep_nerset_batch(&s, idx, 2, &b), PEP_OK);
    assert_int_equal(b.nseq, 2);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pep_batch_len(&b, i), s.len[idx[i]]);
        for (int t = 0; t < s.len[idx[i]]; t++) {
            assert_int_equal(b.input_ids[b.offsets[i] + t], s.ids[(size_t)idx[i] * s.T + t]);
            assert_int_equal(b.labels[b.offsets[i] + t], s.labels[(size_t)idx[i] * s.T + t]);
        }
    }
    assert_int_equal(pep_batch_tokens(&b), s.len[1] + s.len[2]);
    assert_true(s.len[1] != s.len[2]);
    pep_batch_free(&b);
    pep_nerset_free(&s);
    pep_spm_destroy(&spm);
}

static void counts(const struct pep_conlleval *ev, long *v)
{
    v[0] = ev->all.gold, v[1] = ev->all.pred, v[2] = ev->all.correct, v[3] = ev->sentences, v[4] = ev->tokens;
    v[5] = ev->tokens_correct;
}

/* Two sets scored into one accumulator over the ranks of MPI_COMM_WORLD give the counts of a
 * one-process reference (this rank alone scoring both sets, MPI_COMM_SELF): the counts of
 * the first set must not be summed over the ranks a second time. */
static void test_nerdata_score_two_sets(void **state)
{
    (void)state;
    struct pep_run run;
    make_run(&run, 64);
    struct pep_spm *spm = load_spm();
    struct pep_nerset sets[2];
    assert_int_equal(pep_nerset_load(&run, spm, "aa", "dev", &sets[0]), PEP_OK);
    assert_int_equal(pep_nerset_load(&run, spm, "bb", "dev", &sets[1]), PEP_OK);
    char tags[PEP_TAGS_MAX][PEP_TAG_NAME_MAX];
    const char *tagp[PEP_TAGS_MAX];
    int ntags = 0;
    assert_int_equal(pep_run_tags(&run, tags, PEP_TAGS_MAX, &ntags), PEP_OK);
    for (int i = 0; i < ntags; i++) tagp[i] = tags[i];
    struct pep_model_spec spec;
    /* max_B = 1: one sentence per batch, so both ranks score some of every set */
    assert_int_equal(pep_model_spec_from_config(&run.cfg, pep_spm_fairseq_vocab(spm), ntags, PEP_HEAD_KIND_TAGGER, 1,
                                                &spec),
                     PEP_OK);
    struct pep_model *m = NULL;
    assert_int_equal(pep_model_create(&spec, &m), PEP_OK);
    pep_model_init_weights(m, 7, PEP_GROUPS_ALL);
    struct pep_conlleval *ev = NULL, *ref = NULL;
    assert_int_equal(pep_conlleval_create(tagp, ntags, 0, &ev), PEP_OK);
    assert_int_equal(pep_conlleval_create(tagp, ntags, 0, &ref), PEP_OK);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(pep_nerset_score(m, &sets[i], ev, MPI_COMM_WORLD, g_rank, g_size), PEP_OK);
        assert_int_equal(pep_nerset_score(m, &sets[i], ref, MPI_COMM_SELF, 0, 1), PEP_OK);
    }
    long a[6], b[6];
    counts(ev, a);
    counts(ref, b);
    assert_int_equal(b[3], 7); /* 4 + 3 sentences */
    assert_int_equal(b[4], 18 + 9);
    assert_int_equal(b[0], 6 + 4); /* gold entities */
    for (int k = 0; k < 6; k++) assert_int_equal(a[k], b[k]);
    pep_conlleval_destroy(&ev);
    pep_conlleval_destroy(&ref);
    pep_model_destroy(&m);
    pep_nerset_free(&sets[0]);
    pep_nerset_free(&sets[1]);
    pep_spm_destroy(&spm);
}

/* A missing split is an error naming the file. */
static void test_nerdata_missing_file(void **state)
{
    (void)state;
    struct pep_run run;
    make_run(&run, 64);
    struct pep_spm *spm = load_spm();
    struct pep_nerset s;
    pep_error_clear();
    assert_int_equal(pep_nerset_load(&run, spm, "zz", "train", &s), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "ner/wikiann/zz/train.txt"));
    pep_error_clear();
    pep_spm_destroy(&spm);
}

/* The tokenizer found beside --init is copied into run.out (rank 0) for the next stage, byte
 * for byte; a copy that cannot be written is an error naming the file (it was ignored). A
 * path longer than the buffer is an error, not a truncated path. */
static void test_nerdata_tokenizer_copy(void **state)
{
    (void)state;
    struct pep_run run;
    make_run(&run, 64);
    char out[1000], init[1000], cmd[2800];
    snprintf(out, sizeof out, "%.900s/out_r%d", g_root, g_rank);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", out, out);
    assert_int_equal(system(cmd), 0);
    snprintf(run.out, sizeof run.out, "%s", out);
    snprintf(init, sizeof init, "%.900s/base.h5", g_root);
    snprintf(run.init, sizeof run.init, "%s", init);
    assert_int_equal(pep_config_set(&run.cfg, "model.tokenizer", "tiny.model", "test"), PEP_OK);
    struct pep_spm *spm = NULL;
    assert_int_equal(pep_run_tokenizer(&run, &spm), PEP_OK);
    pep_spm_destroy(&spm);
    if (g_rank == 0) {
        snprintf(cmd, sizeof cmd, "cmp -s '%s' '%s/tiny.model'", g_spm, out);
        assert_int_equal(system(cmd), 0);
        /* the copy cannot be created: its tmp name is taken by a folder */
        snprintf(cmd, sizeof cmd, "rm -f '%s/tiny.model' && mkdir '%s/tiny.model.tmp'", out, out);
        assert_int_equal(system(cmd), 0);
        pep_error_clear();
        assert_int_equal(pep_run_tokenizer(&run, &spm), PEP_ERR_IO);
        assert_null(spm);
        assert_non_null(strstr(pep_error_message(), "tiny.model.tmp"));
        pep_error_clear();
    }
    char name[600], buf[1100];
    memset(name, 'x', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    assert_int_equal(pep_run_path(&run, name, buf, 512), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "longer than 511 characters"));
    pep_error_clear();
    assert_int_equal(pep_run_path(&run, "x.h5", buf, sizeof buf), PEP_OK);
}

int main(int argc, char **argv)
{
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    MPI_Comm_rank(MPI_COMM_WORLD, &g_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g_size);
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nerdata_rows),
        cmocka_unit_test(test_nerdata_truncation),
        cmocka_unit_test(test_nerdata_batch_tokens),
        cmocka_unit_test(test_nerdata_score_two_sets),
        cmocka_unit_test(test_nerdata_missing_file),
        cmocka_unit_test(test_nerdata_tokenizer_copy),
    };
    int failed = cmocka_run_group_tests(tests, setup, NULL);
    MPI_Finalize();
    return failed ? 1 : 0;
}
