/* Tests of the JSON reader and the safetensors reader: round trips of hand-built F32/F16/BF16
 * files, every malformed-file error, and a deterministic mutation run (10k mutated files). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "json.h"
#include "safetensors.h"

/* ---- building files ---------------------------------------------------------------------- */

struct buf {
    unsigned char *p;
    size_t n;
};

/* Returns 8-byte length + header (space-padded to a multiple of 8 like the reference writer)
 * + data. `hlen_override` != 0 replaces the stored header length. */
static struct buf make_file(const char *header, const void *data, size_t data_len, uint64_t hlen_override)
{
    size_t h = strlen(header), hp = (h + 7) & ~(size_t)7;
    struct buf b;
    b.n = 8 + hp + data_len;
    b.p = malloc(b.n);
    assert_non_null(b.p);
    uint64_t stored = hlen_override ? hlen_override : hp;
    for (int i = 0; i < 8; i++) b.p[i] = (unsigned char)(stored >> (8 * i));
    memcpy(b.p + 8, header, h);
    memset(b.p + 8 + h, ' ', hp - h);
    if (data_len) memcpy(b.p + 8 + hp, data, data_len);
    return b;
}

static void put_f32(unsigned char *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(u >> (8 * i));
}

static void put_u16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

/* A valid file with F32 (2,3), F16 (6), BF16 (4), a scalar F32, an empty (0,5) F32 and an
 * I64 (2) tensor, plus metadata. */
static const uint16_t f16_vals[6] = {0x3c00, 0x3555, 0x0001, 0x7bff, 0x8000, 0xfc00};
static const float f16_want[6] = {1.0f, 0.333251953125f, 5.9604644775390625e-08f, 65504.0f, -0.0f, -INFINITY};
static const uint16_t bf16_vals[4] = {0x3f80, 0xc049, 0x0001, 0x7f7f};
static const float bf16_want[4] = {1.0f, -3.140625f, 9.183549615799121e-41f, 3.3895313892515355e+38f};
static const float f32_want[6] = {0.5f, -1.25f, 3.0e-38f, 1.0e-45f, 123456.789f, -0.0f};

static struct buf make_good(void)
{
    unsigned char data[24 + 12 + 8 + 4 + 16];
    size_t o = 0;
    for (int i = 0; i < 6; i++, o += 4) put_f32(data + o, f32_want[i]);
    for (int i = 0; i < 6; i++, o += 2) put_u16(data + o, f16_vals[i]);
    for (int i = 0; i < 4; i++, o += 2) put_u16(data + o, bf16_vals[i]);
    put_f32(data + o, 7.0f);
    o += 4;
    for (int i = 0; i < 16; i++) data[o + i] = (unsigned char)(i == 0 ? 5 : i == 8 ? 9 : 0);
    o += 16;
    const char *header = "{\"__metadata__\":{\"format\":\"pt\"},"
                         "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                         "\"h\":{\"dtype\":\"F16\",\"shape\":[6],\"data_offsets\":[24,36]},"
                         "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[36,44]},"
                         "\"s\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[44,48]},"
                         "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[48,48]},"
                         "\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[48,64]}}";
    return make_file(header, data, o, 0);
}

static void check_good(pep_safetensors_t *st)
{
    assert_int_equal(pep_safetensors_count(st), 6);
    assert_string_equal(pep_safetensors_metadata(st, "format"), "pt");
    assert_null(pep_safetensors_metadata(st, "nope"));
    float out[8];
    int i = pep_safetensors_find(st, "w");
    assert_int_equal(i, 0);
    const struct pep_st_tensor *t = pep_safetensors_tensor(st, i);
    assert_int_equal(t->ndim, 2);
    assert_int_equal(t->shape[0], 2);
    assert_int_equal(t->shape[1], 3);
    assert_int_equal(t->dtype, PEP_ST_DTYPE_F32);
    assert_int_equal(pep_safetensors_read_f32(st, i, out, 6), PEP_OK);
    assert_memory_equal(out, f32_want, sizeof f32_want); /* bit-exact, incl. -0 and subnormals */
    i = pep_safetensors_find(st, "h");
    assert_int_equal(pep_safetensors_read_f32(st, i, out, 6), PEP_OK);
    assert_memory_equal(out, f16_want, sizeof f16_want);
    i = pep_safetensors_find(st, "b");
    assert_int_equal(pep_safetensors_tensor(st, i)->numel, 4);
    assert_int_equal(pep_safetensors_read_f32(st, i, out, 4), PEP_OK);
    assert_memory_equal(out, bf16_want, sizeof bf16_want);
    i = pep_safetensors_find(st, "s");
    assert_int_equal(pep_safetensors_tensor(st, i)->ndim, 0);
    assert_int_equal(pep_safetensors_read_f32(st, i, out, 1), PEP_OK);
    assert_true(out[0] == 7.0f);
    i = pep_safetensors_find(st, "e");
    assert_int_equal(pep_safetensors_tensor(st, i)->numel, 0);
    assert_int_equal(pep_safetensors_read_f32(st, i, out, 0), PEP_OK);
    i = pep_safetensors_find(st, "ids");
    const unsigned char *raw = pep_safetensors_data(st, i);
    assert_int_equal(raw[0], 5);
    assert_int_equal(raw[8], 9);
    pep_error_clear();
    assert_int_equal(pep_safetensors_read_f32(st, i, out, 2), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "'ids' has dtype I64"));
    pep_error_clear();
    assert_int_equal(pep_safetensors_read_f32(st, 0, out, 5), PEP_ERR_USAGE);
    pep_error_clear();
    assert_int_equal(pep_safetensors_find(st, "missing"), -1);
}

static void test_safetensors_roundtrip_memory(void **state)
{
    struct buf b = make_good();
    pep_safetensors_t *st = NULL;
    assert_int_equal(pep_safetensors_open_memory(b.p, b.n, "good", &st), PEP_OK);
    check_good(st);
    pep_safetensors_close(&st);
    assert_null(st);
    pep_safetensors_close(&st); /* NULL-safe */
    free(b.p);
}

static void test_safetensors_roundtrip_file(void **state)
{
    struct buf b = make_good();
    const char *dir = pep_test_tmpdir("safetensors");
    char path[2300];
    snprintf(path, sizeof path, "%s/good.safetensors", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b.p, 1, b.n, f), b.n);
    fclose(f);
    pep_safetensors_t *st = NULL;
    assert_int_equal(pep_safetensors_open(path, &st), PEP_OK);
    assert_string_equal(pep_safetensors_path(st), path);
    check_good(st);
    pep_safetensors_close(&st);
    free(b.p);

    pep_error_clear();
    snprintf(path, sizeof path, "%s/absent.safetensors", dir);
    assert_int_equal(pep_safetensors_open(path, &st), PEP_ERR_IO);
    assert_non_null(strstr(pep_error_message(), "absent.safetensors"));
    assert_null(st);
    pep_error_clear();
    snprintf(path, sizeof path, "%s/empty.safetensors", dir);
    f = fopen(path, "wb");
    fclose(f);
    assert_int_equal(pep_safetensors_open(path, &st), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "too short"));
    pep_error_clear();
}

/* The writer's file opens with the strict reader and gives the same floats, names, shapes,
 * metadata and an 8-aligned header; a name that would need JSON escaping is refused. */
static void test_safetensors_writer(void **state)
{
    (void)state;
    const char *dir = pep_test_tmpdir("safetensors_write");
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    float a[6] = {1.5f, -0.0f, 3e-30f, -7.25f, 1e30f, 0.1f}, b[3] = {4.f, 5.f, 6.f};
    struct pep_st_out t[2] = {{.name = "roberta.x.weight", .ndim = 2, .shape = {2, 3}, .data = a},
                              {.name = "bias", .ndim = 1, .shape = {3}, .data = b}};
    const char *meta[] = {"format", "pt"};
    assert_int_equal(pep_safetensors_write(path, t, 2, meta, 1), PEP_OK);
    pep_safetensors_t *st = NULL;
    assert_int_equal(pep_safetensors_open(path, &st), PEP_OK);
    assert_int_equal(pep_safetensors_count(st), 2);
    assert_string_equal(pep_safetensors_metadata(st, "format"), "pt");
    int i = pep_safetensors_find(st, "roberta.x.weight");
    assert_true(i >= 0);
    const struct pep_st_tensor *x = pep_safetensors_tensor(st, i);
    assert_int_equal(x->dtype, PEP_ST_DTYPE_F32);
    assert_int_equal(x->ndim, 2);
    assert_int_equal(x->shape[0], 2);
    assert_int_equal(x->shape[1], 3);
    float got[6];
    assert_int_equal(pep_safetensors_read_f32(st, i, got, 6), PEP_OK);
    assert_memory_equal(got, a, sizeof a);
    assert_int_equal(pep_safetensors_read_f32(st, pep_safetensors_find(st, "bias"), got, 3), PEP_OK);
    assert_memory_equal(got, b, sizeof b);
    pep_safetensors_close(&st);
    FILE *f = fopen(path, "rb");
    unsigned char len8[8];
    assert_int_equal(fread(len8, 1, 8, f), 8);
    fclose(f);
    assert_int_equal(len8[0] % 8, 0);
    pep_error_clear();
    t[1].name = "bad\"name";
    assert_int_equal(pep_safetensors_write(path, t, 2, meta, 1), PEP_ERR_USAGE);
    assert_non_null(strstr(pep_error_message(), "escaping"));
    pep_error_clear();
}

static void test_safetensors_f16_all_values(void **state)
{
    /* every finite F16 round-trips through float back to the same F16 value: compare with
     * the arithmetic definition sign * 2^(e-15) * (1 + m/1024) / subnormal m * 2^-24 */
    for (uint32_t h = 0; h < 65536; h++) {
        uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ff;
        float got = pep_f16_to_f32((uint16_t)h);
        if (e == 31) {
            if (m == 0) assert_true(isinf(got));
            else assert_true(isnan(got));
            continue;
        }
        double want = e == 0 ? ldexp((double)m, -24) : ldexp(1.0 + m / 1024.0, (int)e - 15);
        if (h & 0x8000) want = -want;
        assert_true((double)got == want);
        assert_int_equal(signbit(got) != 0, (h & 0x8000) != 0);
    }
    for (uint32_t b = 0; b < 65536; b += 7) {
        float got = pep_bf16_to_f32((uint16_t)b);
        uint32_t bits;
        memcpy(&bits, &got, 4);
        assert_int_equal(bits, b << 16);
    }
}

/* Opens `header` + data and expects `code` with every substring of `needles` in the message. */
static void expect_bad(const char *what, struct buf b, int code, const char *needle1, const char *needle2)
{
    pep_safetensors_t *st = NULL;
    pep_error_clear();
    int rc = pep_safetensors_open_memory(b.p, b.n, "bad.safetensors", &st);
    if (rc != code) fail_msg("%s: status %d, want %d (%s)", what, rc, code, pep_error_message());
    assert_null(st);
    const char *msg = pep_error_message();
    if (!strstr(msg, "bad.safetensors")) fail_msg("%s: message does not name the file: %s", what, msg);
    if (needle1 && !strstr(msg, needle1)) fail_msg("%s: message lacks '%s': %s", what, needle1, msg);
    if (needle2 && !strstr(msg, needle2)) fail_msg("%s: message lacks '%s': %s", what, needle2, msg);
    pep_error_clear();
    free(b.p);
}

static void test_safetensors_malformed(void **state)
{
    unsigned char z[64] = {0};
    struct buf b;

    b = make_good();
    b.n = 5; /* truncated inside the length field */
    expect_bad("truncated length", b, PEP_ERR_FORMAT, "too short", NULL);

    b = make_good();
    b.n = 8 + 40; /* truncated inside the header */
    expect_bad("truncated header", b, PEP_ERR_FORMAT, "beyond the file size", NULL);

    b = make_file("{}", NULL, 0, 1000);
    expect_bad("header length beyond file", b, PEP_ERR_FORMAT, "header length 1000", "beyond the file size");

    b = make_file("{}", NULL, 0, UINT64_MAX);
    expect_bad("header length 2^64-1", b, PEP_ERR_FORMAT, "beyond the file size", NULL);

    b = make_file("[1,2]", NULL, 0, 0);
    expect_bad("not an object", b, PEP_ERR_FORMAT, "does not start with '{'", NULL);

    b = make_file("{\"w\":{\"dtype\":\"F32\",,\"shape\":[1],\"data_offsets\":[0,4]}}", z, 4, 0);
    expect_bad("bad JSON", b, PEP_ERR_FORMAT, "invalid JSON at byte 28 (line 1, column 21", "expected a string key");

    b = make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x", z, 4, 0);
    expect_bad("trailing data", b, PEP_ERR_FORMAT, "unexpected data after the JSON value", NULL);

    b = make_file("{\"w\":{\"dtype\":\"F17\",\"shape\":[1],\"data_offsets\":[0,4]}}", z, 4, 0);
    expect_bad("unknown dtype", b, PEP_ERR_FORMAT, "tensor 'w'", "unknown dtype 'F17'");

    b = make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", z, 12, 0);
    expect_bad("offsets out of range", b, PEP_ERR_FORMAT, "tensor 'w'", "beyond the 12 data bytes");

    b = make_file("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,4]}}", z, 12, 0);
    expect_bad("begin after end", b, PEP_ERR_FORMAT, "tensor 'w'", "begin after end");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                  "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
                  z, 12, 0);
    expect_bad("overlapping", b, PEP_ERR_FORMAT, "tensor 'b'", "overlap tensor 'a'");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", z, 8, 0);
    expect_bad("shape/size mismatch", b, PEP_ERR_FORMAT, "tensor 'a'", "shape [3] x F32 (4 bytes each) = 12 bytes");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
                  z, 8, 0);
    expect_bad("duplicate names", b, PEP_ERR_FORMAT, "duplicate key 'a'", NULL);

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", z, 4, 0);
    expect_bad("negative dim", b, PEP_ERR_FORMAT, "tensor 'a'", "non-negative integers");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", z, 4, 0);
    expect_bad("float dim", b, PEP_ERR_FORMAT, "tensor 'a'", "non-negative integers");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4294967296],\"data_offsets\":[0,4]}}",
                  z, 4, 0);
    expect_bad("shape overflow", b, PEP_ERR_FORMAT, "tensor 'a'", "overflows");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", z, 4, 0);
    expect_bad("offset overflow", b, PEP_ERR_FORMAT, "tensor 'a'", "data_offsets must be");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", z, 4, 0);
    expect_bad("missing key", b, PEP_ERR_FORMAT, "tensor 'a'", "missing key: data_offsets");

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", z, 4, 0);
    expect_bad("extra key", b, PEP_ERR_FORMAT, "tensor 'a'", "unexpected key");

    b = make_file("{\"a\":[1]}", z, 4, 0);
    expect_bad("entry not an object", b, PEP_ERR_FORMAT, "tensor 'a'", "expected an object");

    b = make_file("{\"__metadata__\":{\"k\":1}}", z, 0, 0);
    expect_bad("metadata value", b, PEP_ERR_FORMAT, "__metadata__ value of 'k'", NULL);

    b = make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2,3,4,5,6,7,8,9],\"data_offsets\":[0,4]}}", z, 4, 0);
    expect_bad("too many dims", b, PEP_ERR_FORMAT, "tensor 'a'", "more than 8");

    char deep[400] = "{\"a\":";
    for (int i = 0; i < 70; i++) strcat(deep, "[");
    strcat(deep, "}");
    b = make_file(deep, NULL, 0, 0);
    expect_bad("deep nesting", b, PEP_ERR_FORMAT, "nesting deeper than 64", NULL);
}

/* ---- JSON -------------------------------------------------------------------------------- */

static int parse(const char *s, struct pep_json **j)
{
    pep_error_clear();
    return pep_json_parse(s, strlen(s), "t.json", 0, j);
}

static void test_json_values(void **state)
{
    struct pep_json *j = NULL;
    assert_int_equal(parse(" {\"a\": [1, -0, 2.5e1, true, false, null], \"s\": \"x\\u00e9\\ud83d\\ude00\\n\\\"\","
                           " \"big\": 18446744073709551615, \"over\": 18446744073709551616, \"u\": \"\xc3\xa9\"} \n",
                           &j),
                     PEP_OK);
    const struct pep_json *a = pep_json_get(j, "a");
    assert_non_null(a);
    assert_int_equal(a->type, PEP_JSON_TYPE_ARRAY);
    assert_int_equal(a->count, 6);
    uint64_t u;
    assert_int_equal(pep_json_as_u64(&a->items[0], &u), 0);
    assert_int_equal(u, 1);
    assert_int_equal(pep_json_as_u64(&a->items[1], &u), 0); /* -0 is zero */
    assert_int_equal(u, 0);
    assert_int_equal(pep_json_as_u64(&a->items[2], &u), -1);
    assert_true(a->items[2].number == 25.0);
    assert_int_equal(a->items[3].boolean, 1);
    assert_int_equal(a->items[4].type, PEP_JSON_TYPE_BOOL);
    assert_int_equal(a->items[5].type, PEP_JSON_TYPE_NULL);
    assert_string_equal(pep_json_get(j, "s")->string, "x\xc3\xa9\xf0\x9f\x98\x80\n\"");
    assert_string_equal(pep_json_get(j, "u")->string, "\xc3\xa9");
    assert_int_equal(pep_json_as_u64(pep_json_get(j, "big"), &u), 0);
    assert_true(u == UINT64_MAX);
    assert_int_equal(pep_json_as_u64(pep_json_get(j, "over"), &u), -1);
    assert_null(pep_json_get(j, "none"));
    pep_json_free(&j);
    assert_null(j);
    pep_json_free(&j);
}

static void test_json_errors(void **state)
{
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"", "expected a value"},
        {"{", "expected a string key"},
        {"[1,]", "expected a value"},
        {"{\"a\":1,}", "expected a string key"},
        {"01", "leading zero"},
        {"1.", "after '.'"},
        {"1e", "exponent"},
        {"-", "expected a digit"},
        {"\"abc", "unterminated string"},
        {"\"a\tb\"", "control character"},
        {"\"\\x\"", "unknown escape"},
        {"\"\\u12g4\"", "bad hex digit"},
        {"\"\\ud800\"", "high surrogate"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"\xc0\xaf\"", "invalid UTF-8"},
        {"\"\xed\xa0\x80\"", "invalid UTF-8"},
        {"tru", "expected a value"},
        {"{\"a\" 1}", "expected ':'"},
        {"[1 2]", "expected ',' or ']'"},
        {"{\"a\":1 \"b\":2}", "expected ',' or '}'"},
        {"{\"a\\u0000b\":1}", "\\u0000"},
        {"1 2", "unexpected data"},
        {"// c\n1", "expected a value"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct pep_json *j = NULL;
        int rc = parse(bad[i].text, &j);
        if (rc != PEP_ERR_FORMAT) fail_msg("'%s' parsed (rc %d)", bad[i].text, rc);
        assert_null(j);
        if (!strstr(pep_error_message(), bad[i].needle) || !strstr(pep_error_message(), "t.json"))
            fail_msg("'%s': message '%s' lacks '%s'", bad[i].text, pep_error_message(), bad[i].needle);
    }
    /* line and column of the error */
    struct pep_json *j = NULL;
    assert_int_equal(parse("{\n  \"a\": 1,\n  \"b\": x\n}", &j), PEP_ERR_FORMAT);
    assert_non_null(strstr(pep_error_message(), "line 3, column 8"));
    /* depth 64 is fine, 65 is not */
    char deep[200] = "";
    for (int i = 0; i < 64; i++) strcat(deep, "[");
    for (int i = 0; i < 64; i++) strcat(deep, "]");
    assert_int_equal(parse(deep, &j), PEP_OK);
    pep_json_free(&j);
    char deeper[200] = "[";
    strcat(deeper, deep);
    strcat(deeper, "]");
    assert_int_equal(parse(deeper, &j), PEP_ERR_FORMAT);
    pep_error_clear();
}

/* ---- mutations --------------------------------------------------------------------------- */

static uint64_t xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

/* 10k mutated copies of a valid file (byte flips, random bytes, truncation, digit edits in the
 * header, bogus header lengths): opening must either fail cleanly with PEP_ERR_FORMAT or give
 * tensors that lie inside the buffer and read without fault (ASan checks the reads in the
 * sanitizer build). */
static void test_safetensors_mutations(void **state)
{
    struct buf good = make_good();
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int opened = 0, failed = 0;
    float *out = malloc(64 * sizeof *out);
    assert_non_null(out);
    for (int it = 0; it < 10000; it++) {
        size_t n = good.n;
        unsigned char *m = malloc(n);
        assert_non_null(m);
        memcpy(m, good.p, n);
        int edits = 1 + (int)(xorshift(&seed) % 4);
        for (int e = 0; e < edits; e++) {
            uint64_t r = xorshift(&seed);
            size_t at = (size_t)((r >> 8) % n);
            switch (r % 6) {
            case 0: m[at] ^= (unsigned char)(1u << ((r >> 40) % 8)); break;
            case 1: m[at] = (unsigned char)(r >> 32); break;
            case 2: n = at; break; /* truncate */
            case 3: { /* change a digit in the header: offsets and shapes */
                size_t hdr = 8 + (size_t)((r >> 16) % (n > 8 ? n - 8 : 1));
                if (hdr < n && m[hdr] >= '0' && m[hdr] <= '9') m[hdr] = (unsigned char)('0' + (r >> 48) % 10);
                break;
            }
            case 4: if (n >= 8) for (int i = 0; i < 8; i++) m[i] = (unsigned char)(r >> (8 * i)) & (i < 2 ? 0xff : 0); break;
            default: if (at < n) m[at] = "{}[],:\"0 -e"[(r >> 24) % 11]; break;
            }
            if (n == 0) break;
        }
        /* copy to an exact-size allocation so ASan sees reads past the end */
        unsigned char *exact = malloc(n ? n : 1);
        assert_non_null(exact);
        memcpy(exact, m, n);
        free(m);
        pep_safetensors_t *st = NULL;
        pep_error_clear();
        int rc = pep_safetensors_open_memory(exact, n, "mutant", &st);
        if (rc == PEP_OK) {
            opened++;
            for (int i = 0; i < pep_safetensors_count(st); i++) {
                const struct pep_st_tensor *t = pep_safetensors_tensor(st, i);
                const unsigned char *d = pep_safetensors_data(st, i);
                assert_true(d >= exact && d + (t->end - t->begin) <= exact + n);
                assert_int_equal(t->end - t->begin, t->numel * pep_st_dtype_size(t->dtype));
                if (t->numel <= 64) {
                    pep_error_clear();
                    int r2 = pep_safetensors_read_f32(st, i, out, t->numel);
                    assert_true(r2 == PEP_OK || r2 == PEP_ERR_FORMAT);
                }
            }
            pep_safetensors_close(&st);
        } else {
            failed++;
            if (rc != PEP_ERR_FORMAT) fail_msg("mutant %d: status %d (%s)", it, rc, pep_error_message());
            assert_null(st);
            assert_non_null(strstr(pep_error_message(), "mutant"));
        }
        free(exact);
    }
    pep_error_clear();
    free(out);
    free(good.p);
    print_message("mutations: %d opened, %d rejected\n", opened, failed);
    assert_true(opened > 100);
    assert_true(failed > 5000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors_roundtrip_memory),
        cmocka_unit_test(test_safetensors_roundtrip_file),
        cmocka_unit_test(test_safetensors_writer),
        cmocka_unit_test(test_safetensors_f16_all_values),
        cmocka_unit_test(test_safetensors_malformed),
        cmocka_unit_test(test_json_values),
        cmocka_unit_test(test_json_errors),
        cmocka_unit_test(test_safetensors_mutations),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
