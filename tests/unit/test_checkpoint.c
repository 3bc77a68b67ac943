/* Unit tests of io/checkpoint: bit-exact round trip, the best-so-far weights (/best),
 * validation errors (truncated, bit-flipped, wrong shape, foreign, newer version, missing
 * dataset), tmp-file discipline, rotation and find_latest; the reader tests run twice, through
 * pep_ckpt_open and through pep_ckpt_load (the file read once into memory), and the load's own
 * tests count the bytes it reads. One process, MPI_COMM_WORLD of size 1. */
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "checkpoint.h"
#include "checkpoint_digest.h"
#include "checkpoint_private.h"
#include "core/error.h"
#include "core/rng.h"
#include "model/params.h"
#include "testutil.h"

#define NTAGS 7
#define VOCAB 50

/* The reader's open under test: pep_ckpt_open or pep_ckpt_load (set by the group's setup). */
static int (*ckpt_open)(const char *path, struct pep_ckpt_reader **out) = pep_ckpt_open;

static int group_open(void **state)
{
    (void)state;
    ckpt_open = pep_ckpt_open;
    return 0;
}

static int group_load(void **state)
{
    (void)state;
    ckpt_open = pep_ckpt_load;
    return 0;
}

/* A tiny table shaped like the real one: plm, pe (adapter), head; width C. */
static void make_table(struct pep_param_table *t, size_t C, int extra_pe_row)
{
    pep_param_table_init(t);
    assert_int_equal(pep_param_table_add(t, "embeddings.word_embeddings.weight", PEP_GROUP_PLM, 2, VOCAB, C, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "encoder.layer.0.attention.self.query.weight", PEP_GROUP_PLM, 2, C, C, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "encoder.layer.0.attention.self.query.bias", PEP_GROUP_PLM, 1, C, 0, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "encoder.layer.0.output.LayerNorm.weight", PEP_GROUP_PLM, 1, C, 0, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "encoder.layer.0.output.adapter.adapter_down.weight", PEP_GROUP_PE, 2, 4, C, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "encoder.layer.0.output.adapter.adapter_down.bias", PEP_GROUP_PE, 1, 4, 0, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "encoder.layer.0.output.adapter.adapter_up.weight", PEP_GROUP_PE, 2, C, 4, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "encoder.layer.0.output.adapter.adapter_up.bias", PEP_GROUP_PE, 1, C, 0, NULL), 0);
    if (extra_pe_row)
        assert_int_equal(pep_param_table_add(t, "encoder.layer.0.attention.output.adapter.adapter_down.weight",
                                             PEP_GROUP_PE, 2, 4, C, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "classifier.weight", PEP_GROUP_HEAD, 2, NTAGS, C, NULL), 0);
    assert_int_equal(pep_param_table_add(t, "classifier.bias", PEP_GROUP_HEAD, 1, NTAGS, 0, NULL), 0);
}

static void make_spec(struct pep_model_spec *s, int C)
{
    memset(s, 0, sizeof *s);
    s->L = 1, s->C = C, s->NH = 2, s->FF = 4 * C, s->V = VOCAB, s->max_positions = 66, s->type_vocab = 1;
    s->ntags = NTAGS, s->ln_eps = 1e-5f, s->head = PEP_HEAD_KIND_TAGGER, s->pe = PEP_PE_METHOD_ADAPTER;
    s->placement = PEP_ADAPTER_PLACEMENT_PFEIFFER, s->adapter_act = PEP_ACTIVATION_RELU, s->bottleneck = 4;
}

static float *random_block(size_t n, uint64_t seed)
{
    float *x = calloc(n ? n : 1, sizeof *x);
    struct pep_rng r;
    pep_rng_seed(&r, seed, 1, 2);
    for (size_t i = 0; i < n; i++) x[i] = pep_rng_normal(&r);
    return x;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0;
}

static void expect_error(int rc, const char *substr)
{
    if (rc == PEP_OK) fail_msg("expected an error containing '%s', got success", substr);
    if (!strstr(pep_error_message(), substr))
        fail_msg("error message '%s' lacks '%s'", pep_error_message(), substr);
    pep_error_clear();
}

#define CHECK_OK(expr)                                                                               \
    do {                                                                                             \
        int rc_ = (expr);                                                                            \
        if (rc_ != PEP_OK) fail_msg("%s failed: %s\n%s", #expr, pep_error_message(), pep_error_where()); \
    } while (0)

/* Writes a full checkpoint: all params, plm moments, 3 tasks, 2 log series. */
static void write_full(const char *path, const struct pep_param_table *t, const float *params, const float *m,
                       const float *v, float *const task_state[3], int64_t step)
{
    struct pep_ckpt_writer *w = NULL;
    struct pep_model_spec spec;
    make_spec(&spec, (int)t->rows[1].shape[0]);
    uint64_t rng[4] = {1, 2, 3, 0xffffffffffffffffULL};
    struct pep_ckpt_header h = {"prime", step, "[model]\nhidden = 16\n", rng, 4, &spec, NULL, NULL};
    CHECK_OK(pep_ckpt_create(path, MPI_COMM_WORLD, NULL, &w));
    CHECK_OK(pep_ckpt_write_header(w, &h));
    CHECK_OK(pep_ckpt_write_params(w, t, params, PEP_GROUPS_ALL));
    CHECK_OK(pep_ckpt_write_moments(w, t, m, v, PEP_GROUP_BIT(PEP_GROUP_PLM), 42));
    struct pep_ckpt_task tasks[3] = {
        {"en", 0, 5, step, 1.5, 1.25, task_state[0]},
        {"de", 0, 6, step, 2.5, 2.25, task_state[1]},
        {"sw", 0, 7, step, 3.5, 3.25, task_state[2]},
    };
    CHECK_OK(pep_ckpt_write_tasks(w, t, PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD), tasks, 3));
    double steps[5] = {1, 2, 3, 4, 5}, loss[5] = {2.0, 1.5, 1.25, 1.0, 0.875};
    CHECK_OK(pep_ckpt_write_log(w, "step", steps, 5));
    CHECK_OK(pep_ckpt_write_log(w, "meta_loss", loss, 5));
    CHECK_OK(pep_ckpt_commit(&w));
    assert_null(w);
}

struct fixture {
    struct pep_param_table t;
    float *params, *m, *v, *tasks[3];
    size_t tbegin, tend;
    const char *dir;
    char path[1024];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    pep_error_clear();
    make_table(&f->t, 16, 0);
    f->params = random_block(f->t.numel, 1);
    f->m = random_block(f->t.numel, 2);
    f->v = random_block(f->t.numel, 3);
    assert_int_equal(pep_param_table_range(&f->t, PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD),
                                           &f->tbegin, &f->tend), 0);
    for (int i = 0; i < 3; i++) f->tasks[i] = random_block(f->tend - f->tbegin, 10 + i);
    f->dir = strdup(pep_test_tmpdir("ckpt"));
    snprintf(f->path, sizeof f->path, "%s/prime.h5", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PEP_TEST_PATH_MAX];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0) return -1;
    free(f->params), free(f->m), free(f->v);
    for (int i = 0; i < 3; i++) free(f->tasks[i]);
    pep_param_table_fini(&f->t);
    free((void *)f->dir);
    free(f);
    return 0;
}

static void test_checkpoint_round_trip_bit_exact(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 123);
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    assert_true(file_exists(f->path));
    assert_false(file_exists(tmp));

    struct pep_ckpt_reader *r = NULL;
    CHECK_OK(ckpt_open(f->path, &r));
    const struct pep_ckpt_info *in = pep_ckpt_info(r);
    assert_int_equal(in->format_version, PEP_CKPT_FORMAT_VERSION);
    assert_string_equal(in->stage, "prime");
    assert_int_equal(in->step, 123);
    assert_int_equal(in->world_size, 1);
    assert_string_equal(in->config, "[model]\nhidden = 16\n");
    assert_string_equal(in->git_revision, PEP_GIT_REVISION);
    assert_int_equal(strlen(in->created), 20); /* 2024-01-02T03:04:05Z */
    assert_int_equal(in->rng_words, 4);
    assert_true(in->rng_state[3] == 0xffffffffffffffffULL && in->rng_state[0] == 1);
    struct pep_model_spec spec;
    make_spec(&spec, 16);
    CHECK_OK(pep_ckpt_check_spec(r, &spec));

    float *back = calloc(f->t.numel, sizeof *back);
    CHECK_OK(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL));
    for (int i = 0; i < f->t.count; i++)
        assert_memory_equal(back + f->t.rows[i].offset, f->params + f->t.rows[i].offset, f->t.rows[i].numel * 4);

    float *m = calloc(f->t.numel, sizeof *m), *v = calloc(f->t.numel, sizeof *v);
    int64_t t = 0;
    CHECK_OK(pep_ckpt_read_moments(r, &f->t, m, v, PEP_GROUP_BIT(PEP_GROUP_PLM), &t));
    assert_int_equal(t, 42);
    size_t b, e;
    pep_param_table_range(&f->t, PEP_GROUP_BIT(PEP_GROUP_PLM), &b, &e);
    assert_memory_equal(m + b, f->m + b, (e - b) * 4);
    assert_memory_equal(v + b, f->v + b, (e - b) * 4);
    /* moments of pe were not written: asking for them names the missing group */
    expect_error(pep_ckpt_read_moments(r, &f->t, m, v, PEP_GROUPS_ALL, &t), "/optimizer/m/pe");

    int n = 0;
    CHECK_OK(pep_ckpt_task_count(r, &n));
    assert_int_equal(n, 3);
    struct pep_ckpt_task_info ti;
    CHECK_OK(pep_ckpt_task_info(r, 0, &ti)); /* by name: de, en, sw */
    assert_string_equal(ti.lang, "de");
    assert_int_equal(ti.episode, 6);
    float *ts = calloc(f->tend - f->tbegin, sizeof *ts);
    unsigned tg = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    CHECK_OK(pep_ckpt_read_task(r, "sw", &f->t, tg, ts, &ti));
    assert_true(ti.support_loss == 3.5 && ti.query_loss == 3.25 && ti.step == 123 && ti.episode == 7);
    for (int i = 0; i < f->t.count; i++)
        if (f->t.rows[i].group != PEP_GROUP_PLM) {
            size_t o = f->t.rows[i].offset - f->tbegin;
            assert_memory_equal(ts + o, f->tasks[2] + o, f->t.rows[i].numel * 4);
        }
    expect_error(pep_ckpt_read_task(r, "fr", &f->t, tg, ts, NULL), "no task state for language 'fr'");

    CHECK_OK(pep_ckpt_log_count(r, &n));
    assert_int_equal(n, 2);
    char name[64];
    CHECK_OK(pep_ckpt_log_name(r, 0, name, sizeof name));
    assert_string_equal(name, "meta_loss");
    double *vals = NULL;
    size_t nv = 0;
    CHECK_OK(pep_ckpt_read_log(r, "meta_loss", &vals, &nv));
    assert_int_equal(nv, 5);
    assert_true(vals[4] == 0.875 && vals[0] == 2.0);
    pep_free(vals);

    struct pep_ckpt_stats st;
    CHECK_OK(pep_ckpt_group_stats(r, "/model", &st));
    pep_param_table_range(&f->t, PEP_GROUP_BIT(PEP_GROUP_PLM), &b, &e);
    double ss = 0;
    for (size_t i = b; i < e; i++) ss += (double)f->params[i] * f->params[i];
    assert_int_equal(st.tensors, 4);
    assert_int_equal(st.numel, pep_param_table_group_numel(&f->t, PEP_GROUP_BIT(PEP_GROUP_PLM)));
    assert_true(fabs(st.l2 - sqrt(ss)) < 1e-9 * sqrt(ss));
    CHECK_OK(pep_ckpt_group_stats(r, "/optimizer/v", &st));
    assert_int_equal(st.tensors, 4);
    CHECK_OK(pep_ckpt_verify(r));
    pep_ckpt_close(&r);
    assert_null(r);
    free(back), free(m), free(v), free(ts);
}

static void test_checkpoint_tmp_never_under_final_name(void **state)
{
    struct fixture *f = *state;
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.tmp", f->path);
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    /* a second write in progress: the old file stays as it was under the final name */
    struct pep_ckpt_writer *w = NULL;
    struct pep_ckpt_header h = {"prime", 2, "", NULL, 0, NULL, NULL, NULL};
    float *other = random_block(f->t.numel, 99);
    CHECK_OK(pep_ckpt_create(f->path, MPI_COMM_WORLD, NULL, &w));
    assert_true(file_exists(tmp));
    CHECK_OK(pep_ckpt_write_header(w, &h));
    CHECK_OK(pep_ckpt_write_params(w, &f->t, other, PEP_GROUPS_ALL));
    struct pep_ckpt_reader *r = NULL;
    CHECK_OK(ckpt_open(f->path, &r));
    assert_int_equal(pep_ckpt_info(r)->step, 1);
    pep_ckpt_close(&r);
    pep_ckpt_abort(&w);
    assert_null(w);
    assert_false(file_exists(tmp));
    CHECK_OK(ckpt_open(f->path, &r));
    assert_int_equal(pep_ckpt_info(r)->step, 1);
    float *back = calloc(f->t.numel, sizeof *back);
    CHECK_OK(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL));
    assert_memory_equal(back + f->t.rows[0].offset, f->params + f->t.rows[0].offset, f->t.rows[0].numel * 4);
    pep_ckpt_close(&r);
    /* commit replaces it */
    CHECK_OK(pep_ckpt_create(f->path, MPI_COMM_WORLD, NULL, &w));
    CHECK_OK(pep_ckpt_write_header(w, &h));
    CHECK_OK(pep_ckpt_commit(&w));
    assert_false(file_exists(tmp));
    CHECK_OK(ckpt_open(f->path, &r));
    assert_int_equal(pep_ckpt_info(r)->step, 2);
    pep_ckpt_close(&r);
    free(other), free(back);
}

static void test_checkpoint_truncated(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    struct stat st;
    assert_int_equal(stat(f->path, &st), 0);
    assert_int_equal(truncate(f->path, st.st_size / 2), 0);
    struct pep_ckpt_reader *r = NULL;
    expect_error(ckpt_open(f->path, &r), "truncated: "); /* the digest header's length, before HDF5 */
    assert_null(r);
    assert_int_equal(truncate(f->path, st.st_size - 1), 0);
    expect_error(ckpt_open(f->path, &r), "truncated: ");
    assert_int_equal(truncate(f->path, 5), 0);
    expect_error(ckpt_open(f->path, &r), "not a peprime checkpoint");
}

/* File offset of a dataset's raw data (contiguous layout). */
static haddr_t data_offset(const char *path, const char *dset)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(file, dset, H5P_DEFAULT);
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(file);
    assert_true(off != HADDR_UNDEF);
    return off;
}

static void flip_bit(const char *path, long off, int bit)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    fseek(fp, off, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, off, SEEK_SET);
    fputc(c ^ (1 << bit), fp);
    fclose(fp);
}

/* The digest of pieces (scheme 3): any number of shares gives the same piece hashes, each the
 * XXH3-64 of its 16 MiB (the last one shorter); the sealed file checks out, and a flipped byte
 * in the last piece or a size that no longer matches is refused. */
static void test_checkpoint_digest_pieces(void **state)
{
    struct fixture *f = *state;
    const uint64_t body = 2 * PEP_CKPT_DIGEST_PIECE + 12345, size = PEP_CKPT_USERBLOCK + body;
    unsigned char *bytes = calloc(size, 1);
    assert_non_null(bytes);
    uint64_t x = 7;
    for (uint64_t i = PEP_CKPT_USERBLOCK; i < size; i++) bytes[i] = (unsigned char)(pep_splitmix64(x += i) >> 17);
    FILE *fp = fopen(f->path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(bytes, 1, size, fp), size);
    fclose(fp);
    uint64_t n = pep_ckpt_digest_npieces(size), want[3], got[3];
    assert_int_equal(n, 3);
    for (uint64_t i = 0; i < n; i++) {
        uint64_t off = PEP_CKPT_USERBLOCK + i * PEP_CKPT_DIGEST_PIECE, len = size - off;
        want[i] = XXH3_64bits(bytes + off, len < PEP_CKPT_DIGEST_PIECE ? len : PEP_CKPT_DIGEST_PIECE);
    }
    for (int shares = 1; shares <= 4; shares++) {
        memset(got, 0, sizeof got);
        for (int s = 0; s < shares; s++) CHECK_OK(pep_ckpt_digest_hash_share(f->path, s, shares, got, n));
        assert_memory_equal(got, want, sizeof want);
    }
    expect_error(pep_ckpt_digest_seal_pieces(f->path, got, n + 1), "changed size");
    CHECK_OK(pep_ckpt_digest_seal_pieces(f->path, got, n));
    int sealed = 0;
    CHECK_OK(pep_ckpt_digest_check(f->path, &sealed));
    assert_int_equal(sealed, 1);
    void *image = NULL;
    size_t len = 0;
    CHECK_OK(pep_ckpt_digest_load(f->path, &image, &len, &sealed));
    assert_int_equal(len, size);
    assert_memory_equal((unsigned char *)image + PEP_CKPT_USERBLOCK, bytes + PEP_CKPT_USERBLOCK, body);
    assert_memory_equal(image, "PEPCKDG3", 8);
    free(image);
    flip_bit(f->path, (long)(size - 100), 4);
    expect_error(pep_ckpt_digest_check(f->path, &sealed), "no longer match the digest");
    expect_error(pep_ckpt_digest_hash_share(f->path, 0, 1, got, n + 1), "changed size");
    /* a file sealed by the peprime before pieces ("PEPCKDG2": XXH3-64 of all covered bytes at
     * once, bytes 12..15 zero) is still checked */
    unsigned char hd[40] = "PEPCKDG2";
    for (int i = 0; i < 8; i++) {
        hd[8 + i] = i < 4 ? (unsigned char)(PEP_CKPT_USERBLOCK >> (8 * i)) : 0;
        hd[16 + i] = (unsigned char)(body >> (8 * i));
        hd[24 + i] = (unsigned char)(XXH3_64bits(bytes + PEP_CKPT_USERBLOCK, body) >> (8 * i));
    }
    uint64_t check = XXH3_64bits(hd, 32);
    for (int i = 0; i < 8; i++) hd[32 + i] = (unsigned char)(check >> (8 * i));
    fp = fopen(f->path, "wb");
    assert_non_null(fp);
    memcpy(bytes, hd, sizeof hd);
    assert_int_equal(fwrite(bytes, 1, size, fp), size);
    fclose(fp);
    CHECK_OK(pep_ckpt_digest_check(f->path, &sealed));
    assert_int_equal(sealed, 1);
    flip_bit(f->path, (long)(size - 100), 4);
    expect_error(pep_ckpt_digest_check(f->path, &sealed), "no longer match the digest");
    free(bytes);
}

static void test_checkpoint_bit_flip(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    const char *ds = "/model/encoder.layer.0.attention.self.query.weight";
    flip_bit(f->path, (long)data_offset(f->path, ds) + 37, 3);
    struct pep_ckpt_reader *r = NULL;
    /* the file's digest catches it before HDF5 opens the file */
    expect_error(ckpt_open(f->path, &r), "no longer match the digest");
    assert_null(r);
    /* sealed again (as if the writer had written the bad bit): the tensor's checksum, which
     * also guards files written before the digest, catches it */
    CHECK_OK(pep_ckpt_digest_seal(f->path));
    CHECK_OK(ckpt_open(f->path, &r)); /* metadata intact */
    float *back = calloc(f->t.numel, sizeof *back);
    expect_error(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL),
                 "/model/encoder.layer.0.attention.self.query.weight is corrupted");
    expect_error(pep_ckpt_verify(r), "is corrupted");
    pep_ckpt_close(&r);
    /* a flipped bit in a task tensor */
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    flip_bit(f->path, (long)data_offset(f->path, "/tasks/de/classifier.bias") + 2, 0);
    CHECK_OK(pep_ckpt_digest_seal(f->path));
    CHECK_OK(ckpt_open(f->path, &r));
    expect_error(pep_ckpt_read_task(r, "de", &f->t, PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD),
                                    back, NULL),
                 "/tasks/de/classifier.bias is corrupted");
    pep_ckpt_close(&r);
    /* a flipped bit in the superblock (after the user block) and in the digest header */
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    flip_bit(f->path, PEP_CKPT_USERBLOCK + 20, 1);
    expect_error(ckpt_open(f->path, &r), "damaged: its bytes no longer match the digest");
    assert_null(r);
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    flip_bit(f->path, 27, 4);
    expect_error(ckpt_open(f->path, &r), "damaged: its digest header");
    flip_bit(f->path, 27, 4);
    flip_bit(f->path, 0, 0);
    expect_error(ckpt_open(f->path, &r), "its first bytes are damaged");
    assert_null(r);
    free(back);
}

static void test_checkpoint_wrong_shape_and_missing(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    struct pep_param_table t8, tx;
    make_table(&t8, 8, 0);
    make_table(&tx, 16, 1);
    float *back = calloc(tx.numel, sizeof *back);
    struct pep_ckpt_reader *r = NULL;
    CHECK_OK(ckpt_open(f->path, &r));
    expect_error(pep_ckpt_read_params(r, &t8, back, PEP_GROUPS_ALL),
                 "/model/embeddings.word_embeddings.weight has shape (50, 16), the config expects (50, 8)");
    expect_error(pep_ckpt_read_params(r, &tx, back, PEP_GROUPS_ALL),
                 "dataset /pe/encoder.layer.0.attention.output.adapter.adapter_down.weight is missing");
    struct pep_model_spec spec;
    make_spec(&spec, 8);
    expect_error(pep_ckpt_check_spec(r, &spec), "hidden = 16, the config expects 8");
    make_spec(&spec, 16);
    spec.pe = PEP_PE_METHOD_LORA;
    expect_error(pep_ckpt_check_spec(r, &spec), "pe_method = adapter, the config expects lora");
    pep_ckpt_close(&r);
    pep_param_table_fini(&t8);
    pep_param_table_fini(&tx);
    free(back);
}

static void test_checkpoint_foreign_and_missing_file(void **state)
{
    struct fixture *f = *state;
    struct pep_ckpt_reader *r = NULL;
    const char *p = pep_test_write_file(f->dir, "notes.h5", "[model]\nhidden = 16\nthis is not HDF5 at all\n");
    expect_error(ckpt_open(p, &r), "not a peprime checkpoint");
    char missing[1100];
    snprintf(missing, sizeof missing, "%s/nope.h5", f->dir);
    expect_error(ckpt_open(missing, &r), "No such file");
    /* an HDF5 file that is not a checkpoint */
    char other[1100];
    snprintf(other, sizeof other, "%s/other.h5", f->dir);
    hid_t file = H5Fcreate(other, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(file);
    expect_error(ckpt_open(other, &r), "not a peprime checkpoint");
    assert_null(r);
}

static void test_checkpoint_newer_version(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    hid_t file = H5Fopen(f->path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(file, "format_version", H5P_DEFAULT);
    int v = PEP_CKPT_FORMAT_VERSION + 98;
    assert_true(H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a);
    H5Fclose(file);
    CHECK_OK(pep_ckpt_digest_seal(f->path)); /* as a newer peprime would */
    struct pep_ckpt_reader *r = NULL;
    char want[128];
    snprintf(want, sizeof want, "format version %d, this peprime reads versions 1 to %d", v, PEP_CKPT_FORMAT_VERSION);
    expect_error(ckpt_open(f->path, &r), want);
    assert_null(r);
}

/* A float tensor without its checksum attribute (a file built by another tool, or an edited
 * one) is rejected by name, by the reader and by --verify: every peprime checkpoint since
 * format_version 1 carries checksums, so accepting one would accept unverifiable data. */
static void test_checkpoint_missing_checksum(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    const char *ds = "/model/encoder.layer.0.attention.self.query.weight";
    hid_t file = H5Fopen(f->path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(file, ds, H5P_DEFAULT);
    assert_true(H5Adelete(d, "checksum") >= 0);
    H5Dclose(d);
    H5Fclose(file);
    CHECK_OK(pep_ckpt_digest_seal(f->path)); /* a sealed file whose writer left it out */
    struct pep_ckpt_reader *r = NULL;
    CHECK_OK(ckpt_open(f->path, &r));
    float *back = calloc(f->t.numel, sizeof *back);
    expect_error(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL),
                 "/model/encoder.layer.0.attention.self.query.weight has no checksum attribute");
    expect_error(pep_ckpt_verify(r), "has no checksum attribute");
    pep_ckpt_close(&r);
    free(back);
}

/* H5Ovisit callback: every float32 dataset's `checksum` rewritten as format_version 1 computed it. */
static herr_t to_format_1(hid_t root, const char *name, const H5O_info_t *info, void *ud)
{
    if (info->type != H5O_TYPE_DATASET) return 0;
    hid_t d = H5Dopen2(root, name, H5P_DEFAULT), type = H5Dget_type(d), space = H5Dget_space(d);
    if (H5Tget_class(type) == H5T_FLOAT && H5Tget_size(type) == 4 && H5Aexists(d, "checksum") > 0) {
        size_t n = (size_t)H5Sget_simple_extent_npoints(space);
        float *x = calloc(n ? n : 1, sizeof *x);
        assert_true(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, x) >= 0);
        uint64_t sum = ck_checksum(1, x, n);
        hid_t a = H5Aopen(d, "checksum", H5P_DEFAULT);
        assert_true(H5Awrite(a, H5T_NATIVE_UINT64, &sum) >= 0);
        H5Aclose(a);
        free(x);
        (*(int *)ud)++;
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Dclose(d);
    return 0;
}

/* Sets format_version to 1; with `checksums`, also rewrites every checksum the way version 1 did. */
static void make_format_1(const char *path, int checksums)
{
    hid_t file = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(file, "format_version", H5P_DEFAULT);
    int v = 1, n = 0;
    assert_true(H5Awrite(a, H5T_NATIVE_INT, &v) >= 0);
    H5Aclose(a);
    if (checksums) {
        assert_true(H5Ovisit(file, H5_INDEX_NAME, H5_ITER_NATIVE, to_format_1, &n) >= 0);
        assert_true(n > 10);
    }
    H5Fclose(file);
    CHECK_OK(pep_ckpt_digest_seal(path));
}

/* Files written before XXH3-64 (format_version 1, the lanes checksum) read and verify as
 * before; the version decides which hash a checksum is checked with, so a version-1 file whose
 * checksums are XXH3 values is reported as corrupted. */
static void test_checkpoint_reads_format_1(void **state)
{
    struct fixture *f = *state;
    float *back = calloc(f->t.numel, sizeof *back);
    struct pep_ckpt_reader *r = NULL;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    make_format_1(f->path, 1);
    CHECK_OK(ckpt_open(f->path, &r));
    assert_int_equal(pep_ckpt_info(r)->format_version, 1);
    CHECK_OK(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL));
    for (int i = 0; i < f->t.count; i++)
        assert_memory_equal(back + f->t.rows[i].offset, f->params + f->t.rows[i].offset, f->t.rows[i].numel * 4);
    CHECK_OK(pep_ckpt_verify(r));
    pep_ckpt_close(&r);

    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 1);
    make_format_1(f->path, 0);
    CHECK_OK(ckpt_open(f->path, &r));
    expect_error(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL), "is corrupted (checksum");
    pep_ckpt_close(&r);
    free(back);
}

/* /best: the pe + head state written from its range block, read back bit for bit with its dev
 * F1 and step (also attributes only); a file without /best reads as not found, and a damaged
 * /best tensor is an error naming it. */
static void test_checkpoint_best_round_trip(void **state)
{
    struct fixture *f = *state;
    unsigned tg = PEP_GROUP_BIT(PEP_GROUP_PE) | PEP_GROUP_BIT(PEP_GROUP_HEAD);
    size_t n = f->tend - f->tbegin;
    struct pep_ckpt_writer *w = NULL;
    struct pep_ckpt_header h = {"finetune", 9, "", NULL, 0, NULL, NULL, NULL};
    CHECK_OK(pep_ckpt_create(f->path, MPI_COMM_WORLD, NULL, &w));
    CHECK_OK(pep_ckpt_write_header(w, &h));
    CHECK_OK(pep_ckpt_write_params(w, &f->t, f->params, tg));
    CHECK_OK(pep_ckpt_write_best(w, &f->t, f->tasks[0], tg, 0.4375, 6));
    CHECK_OK(pep_ckpt_commit(&w));

    struct pep_ckpt_reader *r = NULL;
    float *back = calloc(n, sizeof *back);
    double f1 = 0;
    int64_t step = 0;
    int found = 0;
    CHECK_OK(ckpt_open(f->path, &r));
    CHECK_OK(pep_ckpt_read_best(r, &f->t, tg, back, &f1, &step, &found));
    assert_int_equal(found, 1);
    assert_true(f1 == 0.4375 && step == 6);
    for (int i = 0; i < f->t.count; i++) /* row by row: the block may pad between groups */
        if (f->t.rows[i].group != PEP_GROUP_PLM) {
            size_t o = f->t.rows[i].offset - f->tbegin;
            assert_memory_equal(back + o, f->tasks[0] + o, f->t.rows[i].numel * sizeof *back);
        }
    f1 = 0, step = 0, found = 0;
    CHECK_OK(pep_ckpt_read_best(r, NULL, 0, NULL, &f1, &step, &found));
    assert_true(found == 1 && f1 == 0.4375 && step == 6);
    struct pep_ckpt_stats st;
    CHECK_OK(pep_ckpt_group_stats(r, "/best/pe", &st));
    assert_int_equal(st.tensors, 4);
    CHECK_OK(pep_ckpt_group_stats(r, "/best", &st));
    assert_int_equal(st.numel, pep_param_table_group_numel(&f->t, tg));
    CHECK_OK(pep_ckpt_verify(r));
    pep_ckpt_close(&r);

    /* a damaged /best tensor (file resealed, as if written so): its checksum names it */
    flip_bit(f->path, (long)data_offset(f->path, "/best/head/classifier.weight") + 9, 2);
    CHECK_OK(pep_ckpt_digest_seal(f->path));
    CHECK_OK(ckpt_open(f->path, &r));
    expect_error(pep_ckpt_read_best(r, &f->t, tg, back, &f1, &step, &found),
                 "/best/head/classifier.weight is corrupted");
    pep_ckpt_close(&r);

    /* another stage's file, or one written before /best: not found, nothing touched */
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 3);
    CHECK_OK(ckpt_open(f->path, &r));
    memset(back, 0, n * sizeof *back);
    f1 = -2, step = -2;
    CHECK_OK(pep_ckpt_read_best(r, &f->t, tg, back, &f1, &step, &found));
    assert_int_equal(found, 0);
    assert_true(f1 == -2 && step == -2 && back[0] == 0.0f);
    pep_ckpt_close(&r);
    free(back);
}

static void write_small(const char *path, const struct pep_param_table *t, const float *params, int64_t step)
{
    struct pep_ckpt_writer *w = NULL;
    struct pep_ckpt_header h = {"prime", step, "", NULL, 0, NULL, NULL, NULL};
    CHECK_OK(pep_ckpt_create(path, MPI_COMM_WORLD, NULL, &w));
    CHECK_OK(pep_ckpt_write_header(w, &h));
    CHECK_OK(pep_ckpt_write_params(w, t, params, PEP_GROUPS_ALL));
    CHECK_OK(pep_ckpt_commit(&w));
}

/* checkpoint.striping_unit / cb_nodes / romio_cb_write reach the MPI-IO driver of the new
 * file; a writer without hints passes none. */
static void test_checkpoint_io_hints(void **state)
{
    struct fixture *f = *state;
    char path[PEP_TEST_PATH_MAX], v[64];
    snprintf(path, sizeof path, "%s/hints.h5", f->dir);
    const struct pep_ckpt_hints hints = {.striping_unit = 4194304, .cb_nodes = 2, .cb_write = "enable"};
    const struct pep_ckpt_hints none = {.cb_write = "automatic"};
    for (int with = 1; with >= 0; with--) {
        struct pep_ckpt_writer *w = NULL;
        CHECK_OK(pep_ckpt_create(path, MPI_COMM_WORLD, with ? &hints : &none, &w));
        hid_t fapl = H5Fget_access_plist(w->file);
        MPI_Comm c = MPI_COMM_NULL;
        MPI_Info info = MPI_INFO_NULL;
        assert_true(fapl >= 0 && H5Pget_fapl_mpio(fapl, &c, &info) >= 0);
        const char *keys[] = {"striping_unit", "cb_nodes", "romio_cb_write"}, *want[] = {"4194304", "2", "enable"};
        for (int i = 0; i < 3; i++) {
            int flag = 0;
            if (info != MPI_INFO_NULL) MPI_Info_get(info, keys[i], (int)sizeof v - 1, v, &flag);
            assert_int_equal(flag, with);
            if (with) assert_string_equal(v, want[i]);
        }
        if (info != MPI_INFO_NULL) MPI_Info_free(&info);
        if (c != MPI_COMM_NULL) MPI_Comm_free(&c);
        H5Pclose(fapl);
        struct pep_ckpt_header h = {"prime", 1, "", NULL, 0, NULL, NULL, NULL};
        CHECK_OK(pep_ckpt_write_header(w, &h));
        CHECK_OK(pep_ckpt_write_params(w, &f->t, f->params, PEP_GROUPS_ALL));
        CHECK_OK(pep_ckpt_commit(&w));
    }
}

static void test_checkpoint_rotate_and_find_latest(void **state)
{
    struct fixture *f = *state;
    char path[PEP_TEST_PATH_MAX];
    for (int s = 1; s <= 5; s++) {
        CHECK_OK(pep_ckpt_name(f->dir, "prime", s * 100, path, sizeof path));
        write_small(path, &f->t, f->params, s * 100);
    }
    CHECK_OK(pep_ckpt_name(f->dir, "finetune", 7, path, sizeof path));
    write_small(path, &f->t, f->params, 7);
    pep_test_write_file(f->dir, "prime-step00000600.h5.tmp", "half written");
    pep_test_write_file(f->dir, "notes.txt", "keep me");
    CHECK_OK(pep_ckpt_rotate(f->dir, "prime", 2));
    const char *gone[] = {"prime-step00000100.h5", "prime-step00000200.h5", "prime-step00000300.h5",
                          "prime-step00000600.h5.tmp"};
    const char *kept[] = {"prime-step00000400.h5", "prime-step00000500.h5", "finetune-step00000007.h5", "notes.txt"};
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, gone[i]);
        assert_false(file_exists(path));
        snprintf(path, sizeof path, "%s/%s", f->dir, kept[i]);
        assert_true(file_exists(path));
    }
    int found = 0;
    CHECK_OK(pep_ckpt_find_latest(f->dir, "prime", 1, path, sizeof path, &found));
    assert_int_equal(found, 1);
    assert_non_null(strstr(path, "prime-step00000500.h5"));
    /* damage the newest: it is skipped with a warning */
    flip_bit(path, (long)data_offset(path, "/head/classifier.weight") + 5, 6);
    CHECK_OK(pep_ckpt_find_latest(f->dir, "prime", 1, path, sizeof path, &found));
    assert_int_equal(found, 1);
    assert_non_null(strstr(path, "prime-step00000400.h5"));
    CHECK_OK(pep_ckpt_find_latest(f->dir, "pretrain", 1, path, sizeof path, &found));
    assert_int_equal(found, 0);
    expect_error(pep_ckpt_rotate(f->dir, "prime", 0), "at least 1");
}

/* Every row of table t equal in blocks a and b (row by row: the block may pad between groups). */
static void same_rows(const struct pep_param_table *t, const float *a, const float *b)
{
    for (int i = 0; i < t->count; i++)
        assert_memory_equal(a + t->rows[i].offset, b + t->rows[i].offset, t->rows[i].numel * sizeof *a);
}

static long file_size(const char *p)
{
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    return (long)st.st_size;
}

/* pep_ckpt_load reads the file once: the digest header and every byte after the user block, and
 * nothing more however much is read from it afterwards; pep_ckpt_open reads the same bytes for
 * the digest alone, before HDF5 reads what is asked again. */
static void test_checkpoint_load_reads_once(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 7);
    long covered = file_size(f->path) - PEP_CKPT_USERBLOCK;
    struct pep_ckpt_reader *r = NULL;
    uint64_t before = pep_ckpt_bytes_read();
    CHECK_OK(pep_ckpt_load(f->path, &r));
    uint64_t loaded = pep_ckpt_bytes_read() - before;
    assert_true(loaded >= (uint64_t)covered && loaded <= (uint64_t)covered + 64);
    float *back = calloc(f->t.numel, sizeof *back), *m = calloc(f->t.numel, sizeof *m);
    float *v = calloc(f->t.numel, sizeof *v);
    int64_t t = 0;
    CHECK_OK(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL));
    CHECK_OK(pep_ckpt_read_moments(r, &f->t, m, v, PEP_GROUP_BIT(PEP_GROUP_PLM), &t));
    CHECK_OK(pep_ckpt_verify(r));
    double *vals = NULL;
    size_t nv = 0;
    CHECK_OK(pep_ckpt_read_log(r, "step", &vals, &nv));
    pep_free(vals);
    assert_true(pep_ckpt_bytes_read() - before == loaded);
    same_rows(&f->t, back, f->params);
    /* the same file opened a second time while the first copy is open: two images, each whole */
    struct pep_ckpt_reader *r2 = NULL;
    CHECK_OK(pep_ckpt_load(f->path, &r2));
    pep_ckpt_close(&r);
    memset(back, 0, f->t.numel * sizeof *back);
    CHECK_OK(pep_ckpt_read_params(r2, &f->t, back, PEP_GROUPS_ALL));
    same_rows(&f->t, back, f->params);
    pep_ckpt_close(&r2);
    before = pep_ckpt_bytes_read();
    CHECK_OK(pep_ckpt_open(f->path, &r));
    assert_true(pep_ckpt_bytes_read() - before >= (uint64_t)covered);
    pep_ckpt_close(&r);
    free(back), free(m), free(v);
}

/* A file written before the digest (no user block: the HDF5 signature at its start) loads
 * unchecked, as pep_ckpt_open reads it, with the same tensors. */
static void test_checkpoint_load_unsealed(void **state)
{
    struct fixture *f = *state;
    write_full(f->path, &f->t, f->params, f->m, f->v, f->tasks, 7);
    char old[1100];
    snprintf(old, sizeof old, "%s/old.h5", f->dir);
    FILE *in = fopen(f->path, "rb"), *out = fopen(old, "wb");
    assert_true(in && out);
    fseek(in, PEP_CKPT_USERBLOCK, SEEK_SET);
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    fclose(out);
    struct pep_ckpt_reader *r = NULL;
    uint64_t before = pep_ckpt_bytes_read();
    CHECK_OK(pep_ckpt_load(old, &r));
    assert_true(pep_ckpt_bytes_read() - before <= (uint64_t)file_size(old) + 8);
    assert_int_equal(pep_ckpt_info(r)->step, 7);
    float *back = calloc(f->t.numel, sizeof *back);
    CHECK_OK(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL));
    same_rows(&f->t, back, f->params);
    CHECK_OK(pep_ckpt_verify(r));
    pep_ckpt_close(&r);
    free(back);
}

/* pep_ckpt_load_latest hands back the newest good file open (damaged newer ones skipped), read
 * once each. */
static void test_checkpoint_load_latest(void **state)
{
    struct fixture *f = *state;
    char path[PEP_TEST_PATH_MAX];
    for (int s = 1; s <= 3; s++) {
        CHECK_OK(pep_ckpt_name(f->dir, "prime", s, path, sizeof path));
        write_small(path, &f->t, f->params, s);
    }
    flip_bit(path, (long)data_offset(path, "/head/classifier.weight") + 5, 6); /* step 3 */
    CHECK_OK(pep_ckpt_name(f->dir, "prime", 2, path, sizeof path));
    long size2 = file_size(path);
    struct pep_ckpt_reader *r = NULL;
    int found = 0;
    uint64_t before = pep_ckpt_bytes_read();
    CHECK_OK(pep_ckpt_load_latest(f->dir, "prime", 1, path, sizeof path, &r, &found));
    assert_int_equal(found, 1);
    assert_non_null(r);
    assert_non_null(strstr(path, "prime-step00000002.h5"));
    assert_int_equal(pep_ckpt_info(r)->step, 2);
    /* step 3 read up to its bad digest, step 2 once */
    assert_true(pep_ckpt_bytes_read() - before <= 2 * (uint64_t)size2);
    float *back = calloc(f->t.numel, sizeof *back);
    CHECK_OK(pep_ckpt_read_params(r, &f->t, back, PEP_GROUPS_ALL));
    same_rows(&f->t, back, f->params);
    pep_ckpt_close(&r);
    CHECK_OK(pep_ckpt_load_latest(f->dir, "pretrain", 1, path, sizeof path, &r, &found));
    assert_int_equal(found, 0);
    assert_null(r);
    free(back);
}

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    const struct CMUnitTest readers[] = {
        cmocka_unit_test_setup_teardown(test_checkpoint_round_trip_bit_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_best_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_tmp_never_under_final_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_truncated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_bit_flip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_missing_checksum, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_wrong_shape_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_foreign_and_missing_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_newer_version, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_reads_format_1, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_rotate_and_find_latest, setup, teardown),
    };
    const struct CMUnitTest loads[] = {
        cmocka_unit_test_setup_teardown(test_checkpoint_load_reads_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_load_unsealed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_load_latest, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_io_hints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_checkpoint_digest_pieces, setup, teardown),
    };
    int failed = cmocka_run_group_tests_name("pep_ckpt_open", readers, group_open, NULL);
    failed += cmocka_run_group_tests_name("pep_ckpt_load", readers, group_load, NULL);
    failed += cmocka_run_group_tests_name("load", loads, NULL, NULL);
    MPI_Finalize();
    return failed;
}
