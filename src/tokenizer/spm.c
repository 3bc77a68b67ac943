/* SentencePiece (0.1.97) model parsing, normalisation, unigram and BPE encoding in plain C.
 * The behaviour follows sentencepiece's normalizer.cc (Normalize / NormalizePrefix),
 * unigram_model.cc (EncodeOptimized), bpe_model.cc (Encode) and
 * sentencepiece_processor.cc (unknown merging, byte fallback); the code is our own. */
#include "tokenizer/spm.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's whitespace symbol */
#define SPM_UNK_PENALTY 10.0f    /* kUnkPenalty */
#define SPM_MAX_TRIE_RESULTS 32  /* kMaxTrieResultsSize in NormalizePrefix */

/* ---------------------------------------------------------------------------------- */
/* A byte trie with a direct table for the root and a hash table for deeper edges. */

struct spm_trie {
    int32_t root[256];
    int32_t *value; /* per node: id or -1 */
    int n_nodes, cap_nodes;
    uint64_t *keys; /* (parent << 8 | byte) + 1; 0 = empty slot */
    int32_t *child;
    int bits;
};

static inline uint64_t trie_hash(uint64_t key, int bits)
{
    return (key * 0x9E3779B97F4A7C15ULL) >> (64 - bits);
}

static inline int32_t trie_child(const struct spm_trie *t, int32_t node, unsigned char c)
{
    if (node == 0) return t->root[c];
    uint64_t key = (((uint64_t)node << 8) | c) + 1;
    uint64_t mask = ((uint64_t)1 << t->bits) - 1;
    for (uint64_t h = trie_hash(key, t->bits);; h = (h + 1) & mask) {
        if (t->keys[h] == key) return t->child[h];
        if (t->keys[h] == 0) return -1;
    }
}

static int trie_init(struct spm_trie *t, size_t total_bytes)
{
    memset(t, 0, sizeof(*t));
    for (int c = 0; c < 256; c++) t->root[c] = -1;
    t->cap_nodes = (int)total_bytes + 1;
    t->bits = 4;
    while (((size_t)1 << t->bits) < 2 * total_bytes + 2) t->bits++;
    PEP_ALLOC(t->value, t->cap_nodes);
    PEP_ALLOC(t->keys, (size_t)1 << t->bits);
    PEP_ALLOC(t->child, (size_t)1 << t->bits);
    t->value[0] = -1;
    t->n_nodes = 1;
    return PEP_OK;
}

static void trie_fini(struct spm_trie *t)
{
    pep_free(t->value);
    pep_free(t->keys);
    pep_free(t->child);
    memset(t, 0, sizeof(*t));
}

/* Inserts key -> id; returns the id already stored under key, or -1 if it was new. */
static int trie_insert(struct spm_trie *t, const char *s, size_t len, int id)
{
    int32_t node = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        int32_t next = trie_child(t, node, c);
        if (next < 0) {
            next = t->n_nodes++; /* cap_nodes bounds the total key bytes + 1 */
            t->value[next] = -1;
            if (node == 0) {
                t->root[c] = next;
            } else {
                uint64_t key = (((uint64_t)node << 8) | c) + 1;
                uint64_t mask = ((uint64_t)1 << t->bits) - 1;
                uint64_t h = trie_hash(key, t->bits);
                while (t->keys[h] != 0) h = (h + 1) & mask;
                t->keys[h] = key;
                t->child[h] = next;
            }
        }
        node = next;
    }
    if (t->value[node] >= 0) return t->value[node];
    t->value[node] = id;
    return -1;
}

static int trie_lookup(const struct spm_trie *t, const char *s, size_t len)
{
    if (!t->value) return -1;
    int32_t node = 0;
    for (size_t i = 0; i < len && node >= 0; i++) node = trie_child(t, node, (unsigned char)s[i]);
    return node < 0 ? -1 : t->value[node];
}

/* ---------------------------------------------------------------------------------- */

struct pep_spm {
    int model_type;    /* 1 unigram, 2 BPE */
    int n_pieces;
    char *blob;        /* all pieces, each NUL-terminated */
    uint32_t *off;     /* (n_pieces) offset of piece i in blob */
    uint32_t *plen;    /* (n_pieces) byte length of piece i */
    float *scores;     /* (n_pieces) */
    unsigned char *types;
    int unk_id;        /* the UNKNOWN piece */
    int bos_id, eos_id, pad_id; /* trainer_spec ids */
    int byte_fallback, treat_ws_as_suffix;
    float min_score, max_score;
    int byte_ids[256];
    /* normaliser */
    int add_dummy_prefix, remove_extra_ws, escape_ws;
    uint32_t *darts;   /* (n_darts) double-array units, NULL for identity */
    size_t n_darts;
    char *norm;        /* normalised strings, NUL-terminated, plus one extra NUL */
    size_t norm_len;
    /* tries */
    struct spm_trie vocab; /* NORMAL, USER_DEFINED, UNUSED pieces (the Viterbi lattice) */
    struct spm_trie all;   /* every piece, for piece -> id */
    struct spm_trie user;  /* USER_DEFINED pieces (kept out of normalisation) */
    int n_user;
};

/* ---------------------------------------------------------------------------------- */
/* Protocol buffer wire format. */

struct pb {
    const uint8_t *p, *end, *start;
};

struct pb_field {
    uint32_t num;
    int wire;
    uint64_t v;          /* varint / fixed value */
    const uint8_t *data; /* length-delimited payload */
    size_t len;
};

static int pb_varint(struct pb *b, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (b->p >= b->end) return -1;
        uint8_t c = *b->p++;
        r |= (uint64_t)(c & 0x7f) << shift;
        if (!(c & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Reads the next field; 1 = got one, 0 = end, -1 = malformed (msg says why). */
static int pb_next(struct pb *b, struct pb_field *f, const char **msg)
{
    if (b->p >= b->end) return 0;
    uint64_t tag;
    if (pb_varint(b, &tag) < 0) {
        *msg = "truncated field tag";
        return -1;
    }
    f->num = (uint32_t)(tag >> 3);
    f->wire = (int)(tag & 7);
    if (f->num == 0) {
        *msg = "field number 0";
        return -1;
    }
    switch (f->wire) {
    case 0:
        if (pb_varint(b, &f->v) < 0) {
            *msg = "truncated varint";
            return -1;
        }
        return 1;
    case 1:
        if (b->end - b->p < 8) {
            *msg = "truncated 64-bit value";
            return -1;
        }
        memcpy(&f->v, b->p, 8);
        b->p += 8;
        return 1;
    case 5: {
        uint32_t x;
        if (b->end - b->p < 4) {
            *msg = "truncated 32-bit value";
            return -1;
        }
        memcpy(&x, b->p, 4);
        f->v = x;
        b->p += 4;
        return 1;
    }
    case 2: {
        uint64_t n;
        if (pb_varint(b, &n) < 0) {
            *msg = "truncated length";
            return -1;
        }
        if (n > (uint64_t)(b->end - b->p)) {
            *msg = "length runs past the end of the data";
            return -1;
        }
        f->data = b->p;
        f->len = (size_t)n;
        b->p += n;
        return 1;
    }
    default:
        *msg = "unsupported wire type (group or invalid)";
        return -1;
    }
}

#define SPM_BAD(...)                                                                       \
    do {                                                                                   \
        rc = pep_error_set(PEP_ERR_FORMAT, __FILE__, __LINE__, __func__, __VA_ARGS__);     \
        goto cleanup;                                                                      \
    } while (0)

static int spm_is_byte_piece(const char *s, size_t len, int *byte)
{
    static const char hex[] = "0123456789ABCDEF";
    if (len != 6 || memcmp(s, "<0x", 3) != 0 || s[5] != '>') return 0;
    const char *h = strchr(hex, s[3]), *l = strchr(hex, s[4]);
    if (!h || !l || !s[3] || !s[4]) return 0;
    *byte = (int)((h - hex) * 16 + (l - hex));
    return 1;
}

int pep_spm_load(const void *buf, size_t len, const char *origin, struct pep_spm **out)
{
    int rc = PEP_OK;
    struct pep_spm *s = NULL;
    const char *msg = NULL;
    const char *src = origin ? origin : "SentencePiece model";
    struct pb_field f;
    int got;
    PEP_CHECK(out, PEP_ERR_USAGE, "pep_spm_load: out is NULL");
    *out = NULL;
    PEP_CHECK(buf || len == 0, PEP_ERR_USAGE, "pep_spm_load: buf is NULL");
    PEP_ALLOC(s, 1);
    s->unk_id = -1;
    s->bos_id = 1;
    s->eos_id = 2;
    s->pad_id = -1;
    s->add_dummy_prefix = s->remove_extra_ws = s->escape_ws = 1;
    int model_type = 1;

    /* Pass 1: count pieces, find the two spec messages. */
    struct pb top = {buf, (const uint8_t *)buf + len, buf};
    size_t n_pieces = 0, blob_bytes = 0;
    const uint8_t *trainer = NULL, *normal = NULL;
    size_t trainer_len = 0, normal_len = 0;
    while ((got = pb_next(&top, &f, &msg)) == 1) {
        if (f.num >= 1 && f.num <= 5 && f.wire != 2)
            SPM_BAD("%s: not a SentencePiece model: field %u of ModelProto has wire type %d at "
                    "byte %zu (expected a message); is this really an spm .model file?",
                    src, f.num, f.wire, (size_t)(top.p - top.start));
        if (f.num == 1) {
            n_pieces++;
            blob_bytes += f.len + 1;
        } else if (f.num == 2) {
            trainer = f.data;
            trainer_len = f.len;
        } else if (f.num == 3) {
            normal = f.data;
            normal_len = f.len;
        }
    }
    if (got < 0)
        SPM_BAD("%s: not a SentencePiece model: %s at byte %zu of %zu", src, msg,
                (size_t)(top.p - top.start), len);
    if (n_pieces == 0)
        SPM_BAD("%s: not a SentencePiece model: no pieces (an empty or foreign file?)", src);
    if (n_pieces > (size_t)INT32_MAX / 2 || blob_bytes > (size_t)UINT32_MAX)
        SPM_BAD("%s: too many pieces (%zu)", src, n_pieces);

    /* Trainer spec. */
    if (trainer) {
        struct pb t = {trainer, trainer + trainer_len, trainer};
        while ((got = pb_next(&t, &f, &msg)) == 1) {
            if (f.wire != 0) continue;
            switch (f.num) {
            case 3: model_type = (int)f.v; break;
            case 24: s->treat_ws_as_suffix = f.v != 0; break;
            case 35: s->byte_fallback = f.v != 0; break;
            case 41: s->bos_id = (int)(int32_t)f.v; break;
            case 42: s->eos_id = (int)(int32_t)f.v; break;
            case 43: s->pad_id = (int)(int32_t)f.v; break;
            default: break;
            }
        }
        if (got < 0) SPM_BAD("%s: malformed trainer_spec: %s", src, msg);
    }
    if (model_type != 1 && model_type != 2)
        SPM_BAD("%s: model_type %d (%s) is not supported; peprime encodes unigram and BPE models "
                "(train with spm_train --model_type=unigram or bpe)",
                src, model_type, model_type == 3 ? "word" : model_type == 4 ? "char" : "unknown");
    s->model_type = model_type;

    /* Normalizer spec. */
    const uint8_t *charsmap = NULL;
    size_t charsmap_len = 0;
    if (normal) {
        struct pb t = {normal, normal + normal_len, normal};
        while ((got = pb_next(&t, &f, &msg)) == 1) {
            if (f.num == 2 && f.wire == 2) {
                charsmap = f.data;
                charsmap_len = f.len;
            } else if (f.wire == 0 && f.num == 3) {
                s->add_dummy_prefix = f.v != 0;
            } else if (f.wire == 0 && f.num == 4) {
                s->remove_extra_ws = f.v != 0;
            } else if (f.wire == 0 && f.num == 5) {
                s->escape_ws = f.v != 0;
            }
        }
        if (got < 0) SPM_BAD("%s: malformed normalizer_spec: %s", src, msg);
    }
    if (charsmap_len > 0) {
        /* <trie size (4 bytes, LE)><double-array units><normalised strings> */
        uint32_t trie_size;
        if (charsmap_len <= 4) SPM_BAD("%s: precompiled_charsmap is too short (%zu bytes)", src, charsmap_len);
        memcpy(&trie_size, charsmap, 4);
        if (trie_size >= charsmap_len - 4 + 1 || trie_size % 4 != 0 || trie_size < 4)
            SPM_BAD("%s: precompiled_charsmap: bad trie size %u for a %zu-byte blob", src,
                    trie_size, charsmap_len);
        s->n_darts = trie_size / 4;
        PEP_ALLOC_GOTO(rc, s->darts, s->n_darts);
        memcpy(s->darts, charsmap + 4, trie_size);
        s->norm_len = charsmap_len - 4 - trie_size;
        PEP_ALLOC_GOTO(rc, s->norm, s->norm_len + 1);
        memcpy(s->norm, charsmap + 4 + trie_size, s->norm_len);
    }

    /* Pass 2: the pieces. */
    s->n_pieces = (int)n_pieces;
    PEP_ALLOC_GOTO(rc, s->blob, blob_bytes);
    PEP_ALLOC_GOTO(rc, s->off, n_pieces);
    PEP_ALLOC_GOTO(rc, s->plen, n_pieces);
    PEP_ALLOC_GOTO(rc, s->scores, n_pieces);
    PEP_ALLOC_GOTO(rc, s->types, n_pieces);
    top.p = top.start;
    size_t at = 0, vocab_bytes = 0, user_bytes = 0;
    int i = 0;
    while (pb_next(&top, &f, &msg) == 1) {
        if (f.num != 1) continue;
        struct pb p = {f.data, f.data + f.len, f.data};
        struct pb_field g;
        const uint8_t *str = NULL;
        size_t slen = 0;
        int type = PEP_SPM_PIECE_TYPE_NORMAL;
        float score = 0.0f;
        while ((got = pb_next(&p, &g, &msg)) == 1) {
            if (g.num == 1 && g.wire == 2) {
                str = g.data;
                slen = g.len;
            } else if (g.num == 2 && g.wire == 5) {
                uint32_t bits = (uint32_t)g.v;
                memcpy(&score, &bits, 4);
            } else if (g.num == 3 && g.wire == 0) {
                type = (int)g.v;
            }
        }
        if (got < 0) SPM_BAD("%s: piece %d is malformed: %s", src, i, msg);
        if (!str || slen == 0) SPM_BAD("%s: piece %d is empty", src, i);
        if (type < PEP_SPM_PIECE_TYPE_NORMAL || type > PEP_SPM_PIECE_TYPE_BYTE)
            SPM_BAD("%s: piece %d has unknown type %d", src, i, type);
        if (memchr(str, 0, slen)) SPM_BAD("%s: piece %d contains a NUL byte", src, i);
        memcpy(s->blob + at, str, slen);
        s->off[i] = (uint32_t)at;
        s->plen[i] = (uint32_t)slen;
        at += slen + 1;
        s->scores[i] = score;
        s->types[i] = (unsigned char)type;
        if (type == PEP_SPM_PIECE_TYPE_NORMAL || type == PEP_SPM_PIECE_TYPE_USER_DEFINED ||
            type == PEP_SPM_PIECE_TYPE_UNUSED)
            vocab_bytes += slen;
        if (type == PEP_SPM_PIECE_TYPE_USER_DEFINED) {
            user_bytes += slen;
            s->n_user++;
        }
        if (type == PEP_SPM_PIECE_TYPE_UNKNOWN) {
            if (s->unk_id >= 0) SPM_BAD("%s: pieces %d and %d are both <unk>", src, s->unk_id, i);
            s->unk_id = i;
        }
        i++;
    }
    if (s->unk_id < 0) SPM_BAD("%s: the model has no UNKNOWN (<unk>) piece", src);
    /* fairseq ids put <unk> at 3, so the id space (pieces + 2) must reach it: every real model
     * has <unk>, <s> and </s> at least */
    if (s->n_pieces < 3)
        SPM_BAD("%s: a SentencePiece model with %d piece%s (at least <unk>, <s> and </s> are needed)", src,
                s->n_pieces, s->n_pieces == 1 ? "" : "s");

    PEP_CALL_GOTO(rc, trie_init(&s->vocab, vocab_bytes));
    PEP_CALL_GOTO(rc, trie_init(&s->all, at));
    if (s->n_user) PEP_CALL_GOTO(rc, trie_init(&s->user, user_bytes));
    s->min_score = 3.402823466e+38f;  /* FLT_MAX */
    s->max_score = 1.175494351e-38f;  /* FLT_MIN, as sentencepiece starts it */
    for (int k = 0; k < 256; k++) s->byte_ids[k] = -1;
    for (int k = 0; k < s->n_pieces; k++) {
        const char *p = s->blob + s->off[k];
        int t = s->types[k];
        int prev = trie_insert(&s->all, p, s->plen[k], k);
        if (prev >= 0) SPM_BAD("%s: piece \"%s\" is defined twice (ids %d and %d)", src, p, prev, k);
        if (t == PEP_SPM_PIECE_TYPE_NORMAL || t == PEP_SPM_PIECE_TYPE_USER_DEFINED ||
            t == PEP_SPM_PIECE_TYPE_UNUSED)
            trie_insert(&s->vocab, p, s->plen[k], k);
        if (t == PEP_SPM_PIECE_TYPE_USER_DEFINED) trie_insert(&s->user, p, s->plen[k], k);
        if (t == PEP_SPM_PIECE_TYPE_NORMAL) {
            if (s->scores[k] < s->min_score) s->min_score = s->scores[k];
            if (s->scores[k] > s->max_score) s->max_score = s->scores[k];
        }
        if (t == PEP_SPM_PIECE_TYPE_BYTE) {
            int b;
            if (!s->byte_fallback)
                SPM_BAD("%s: piece %d \"%s\" is a byte piece but byte_fallback is off", src, k, p);
            if (!spm_is_byte_piece(p, s->plen[k], &b))
                SPM_BAD("%s: piece %d \"%s\" is typed BYTE but is not <0xXX>", src, k, p);
            s->byte_ids[b] = k;
        }
    }
    if (s->byte_fallback) {
        for (int k = 0; k < 256; k++)
            if (s->byte_ids[k] < 0)
                SPM_BAD("%s: byte_fallback is on but piece <0x%02X> is missing", src, k);
    }
    *out = s;
    return PEP_OK;
cleanup:
    pep_spm_destroy(&s);
    return rc;
}

void pep_spm_destroy(struct pep_spm **spm)
{
    if (!spm || !*spm) return;
    struct pep_spm *s = *spm;
    pep_free(s->blob);
    pep_free(s->off);
    pep_free(s->plen);
    pep_free(s->scores);
    pep_free(s->types);
    pep_free(s->darts);
    pep_free(s->norm);
    trie_fini(&s->vocab);
    trie_fini(&s->all);
    trie_fini(&s->user);
    pep_free(s);
    *spm = NULL;
}

/* ---------------------------------------------------------------------------------- */
/* Normalisation. */

/* sentencepiece's DecodeUTF8 validity: returns the byte length of a valid character at
 * s[0..n), or 0 if the bytes there are malformed (then one byte becomes U+FFFD). */
static size_t utf8_valid_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    uint32_t cp;
    if (c < 0x80) return 1;
    if (n >= 2 && (c & 0xE0) == 0xC0) {
        if ((s[1] & 0xC0) != 0x80) return 0;
        cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return cp >= 0x80 ? 2 : 0;
    }
    if (n >= 3 && (c & 0xF0) == 0xE0) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80) return 0;
        cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return (cp >= 0x800 && (cp < 0xD800 || cp >= 0xE000)) ? 3 : 0;
    }
    if (n >= 4 && (c & 0xF8) == 0xF0) {
        if ((s[1] & 0xC0) != 0x80 || (s[2] & 0xC0) != 0x80 || (s[3] & 0xC0) != 0x80) return 0;
        cp = ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
             ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
        return (cp >= 0x10000 && cp <= 0x10FFFF) ? 4 : 0;
    }
    return 0;
}

/* Longest match of the charsmap's double array at s[0..n): returns its length (0 if none)
 * and the offset of the replacement in s->norm; -1 on an out-of-range unit (bad model). */
static long darts_longest(const struct pep_spm *m, const unsigned char *s, size_t n, uint32_t *value)
{
    const uint32_t *u = m->darts;
    size_t nu = m->n_darts;
    uint32_t unit = u[0];
    size_t pos = (unit >> 10) << ((unit & (1U << 9)) >> 6);
    size_t best = 0;
    int found = 0;
    for (size_t i = 0; i < n; i++) {
        pos ^= s[i];
        if (pos >= nu) break;
        unit = u[pos];
        if ((unit & ((1U << 31) | 0xFF)) != s[i]) break;
        pos ^= (unit >> 10) << ((unit & (1U << 9)) >> 6);
        if ((unit >> 8) & 1) {
            if (pos >= nu) return -1;
            if (found < SPM_MAX_TRIE_RESULTS) {
                best = i + 1; /* lengths only grow along the path: the last is the longest */
                *value = u[pos] & ((1U << 31) - 1);
            }
            found++;
        }
    }
    return (long)best;
}

/* One NormalizePrefix step at in[0..n): sets the replacement (*rep, *rep_len) and returns
 * the number of input bytes consumed; -1 on a bad model. */
static long normalize_prefix(const struct pep_spm *m, const unsigned char *in, size_t n,
                             const char **rep, size_t *rep_len)
{
    if (m->n_user) {
        /* User-defined pieces are matched first and copied unnormalised. */
        int32_t node = 0;
        size_t best = 0;
        for (size_t i = 0; i < n; i++) {
            node = trie_child(&m->user, node, in[i]);
            if (node < 0) break;
            if (m->user.value[node] >= 0) best = i + 1;
        }
        if (best) {
            *rep = (const char *)in;
            *rep_len = best;
            return (long)best;
        }
    }
    if (m->darts) {
        uint32_t value = 0;
        long len = darts_longest(m, in, n, &value);
        if (len < 0 || (len > 0 && value >= m->norm_len)) return -1;
        if (len > 0) {
            *rep = m->norm + value;
            *rep_len = strlen(*rep);
            return len;
        }
    }
    size_t cl = utf8_valid_len(in, n);
    if (cl == 0) {
        *rep = "\xef\xbf\xbd";
        *rep_len = 3;
        return 1;
    }
    *rep = (const char *)in;
    *rep_len = cl;
    return (long)cl;
}

struct spm_buf {
    char *p;
    size_t n, cap;
    char local[1024];
};

static int buf_reserve(struct spm_buf *b, size_t extra)
{
    if (b->n + extra <= b->cap) return PEP_OK;
    size_t cap = b->cap * 2;
    while (cap < b->n + extra) cap *= 2;
    char *p;
    PEP_ALLOC(p, cap);
    memcpy(p, b->p, b->n);
    if (b->p != b->local) pep_free(b->p);
    b->p = p;
    b->cap = cap;
    return PEP_OK;
}

static int normalize(const struct pep_spm *m, const char *text, size_t len, struct spm_buf *out)
{
    const unsigned char *in = (const unsigned char *)text;
    const char *rep;
    size_t rep_len;
    long used;
    const char *ws = m->escape_ws ? SPM_SPACE : " ";
    size_t ws_len = m->escape_ws ? 3 : 1;
    out->n = 0;
    if (m->remove_extra_ws) {
        while (len > 0) {
            used = normalize_prefix(m, in, len, &rep, &rep_len);
            if (used < 0) goto bad;
            if (!(rep_len == 1 && rep[0] == ' ')) break;
            in += used;
            len -= (size_t)used;
        }
    }
    if (len == 0) return PEP_OK;
    PEP_CALL(buf_reserve(out, len * 3 + 8));
    if (!m->treat_ws_as_suffix && m->add_dummy_prefix) {
        memcpy(out->p + out->n, ws, ws_len);
        out->n += ws_len;
    }
    int prev_space = m->remove_extra_ws;
    while (len > 0) {
        used = normalize_prefix(m, in, len, &rep, &rep_len);
        if (used < 0) goto bad;
        while (prev_space && rep_len > 0 && rep[0] == ' ') {
            rep++;
            rep_len--;
        }
        if (rep_len > 0) {
            PEP_CALL(buf_reserve(out, rep_len * 3));
            for (size_t k = 0; k < rep_len; k++) {
                if (m->escape_ws && rep[k] == ' ') {
                    memcpy(out->p + out->n, SPM_SPACE, 3);
                    out->n += 3;
                } else {
                    out->p[out->n++] = rep[k];
                }
            }
            prev_space = rep[rep_len - 1] == ' ';
        }
        in += used;
        len -= (size_t)used;
        if (!m->remove_extra_ws) prev_space = 0;
    }
    if (m->remove_extra_ws) {
        while (out->n >= ws_len && !memcmp(out->p + out->n - ws_len, ws, ws_len)) out->n -= ws_len;
    }
    if (m->treat_ws_as_suffix && m->add_dummy_prefix) {
        PEP_CALL(buf_reserve(out, ws_len));
        memcpy(out->p + out->n, ws, ws_len);
        out->n += ws_len;
    }
    return PEP_OK;
bad:
    PEP_FAIL(PEP_ERR_FORMAT, "SentencePiece model: precompiled_charsmap points outside its "
                             "tables (corrupt model file)");
}

/* ---------------------------------------------------------------------------------- */
/* Unigram Viterbi (EncodeOptimized). */

struct spm_node {
    float score;   /* best path score ending here */
    int start;     /* byte where the last piece starts, -1 = not reached */
    int id;
};

static int viterbi(const struct pep_spm *m, const char *norm, int size, struct spm_node *best,
                   int *rev, int *n_rev)
{
    const unsigned char *s = (const unsigned char *)norm;
    const float unk_score = m->min_score - SPM_UNK_PENALTY;
    static const unsigned char one_char_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
    for (int k = 0; k <= size; k++) {
        best[k].score = 0.0f;
        best[k].start = -1;
        best[k].id = -1;
    }
    int start = 0;
    while (start < size) {
        const float here = best[start].score;
        int mblen = one_char_len[s[start] >> 4];
        if (mblen > size - start) mblen = size - start;
        int has_single = 0;
        int32_t node = 0;
        for (int pos = start; pos < size;) {
            node = trie_child(&m->vocab, node, s[pos]);
            if (node < 0) break;
            pos++;
            int id = m->vocab.value[node];
            if (id < 0 || m->types[id] == PEP_SPM_PIECE_TYPE_UNUSED) continue;
            int length = pos - start;
            /* The types are sentencepiece's: a user-defined bonus in double, candidate sum
             * in double, compared against and stored as float. */
            double score = m->types[id] == PEP_SPM_PIECE_TYPE_USER_DEFINED
                               ? (double)((float)(size_t)length * m->max_score) - 0.1
                               : (double)m->scores[id];
            double cand = score + (double)here;
            struct spm_node *t = &best[pos];
            if (t->start == -1 || cand > (double)t->score) {
                t->score = (float)cand;
                t->start = start;
                t->id = id;
            }
            if (length == mblen) has_single = 1;
        }
        if (!has_single) {
            struct spm_node *t = &best[start + mblen];
            double cand = (double)(unk_score + here); /* float + float in sentencepiece */
            if (t->start == -1 || cand > (double)t->score) {
                t->score = (float)cand;
                t->start = start;
                t->id = m->unk_id;
            }
        }
        start += mblen;
    }
    int n = 0;
    for (int end = size; end > 0;) {
        if (best[end].start < 0)
            PEP_FAIL(PEP_ERR_INTERNAL, "spm: no segmentation reaches byte %d of %d", end, size);
        rev[n++] = end; /* remember the end; the piece is (best[end].start, end) */
        end = best[end].start;
    }
    *n_rev = n;
    return PEP_OK;
}

/* ---------------------------------------------------------------------------------- */
/* BPE (bpe_model.cc Encode): greedy merges of the best-scoring adjacent pair, leftmost
 * first among equal scores; UNUSED merged pieces are split back (resegmentation). */

struct bpe_sym {
    int start, len, prev, next, freeze;
};
struct bpe_pair {
    float score;
    int left, right, size;
};
struct bpe_rev {
    int id, start, left_len, len;
};

static int bpe_better(const struct bpe_pair *a, const struct bpe_pair *b)
{
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

static void heap_push(struct bpe_pair *h, int *n, struct bpe_pair p)
{
    int i = (*n)++;
    while (i > 0) {
        int up = (i - 1) / 2;
        if (!bpe_better(&p, &h[up])) break;
        h[i] = h[up];
        i = up;
    }
    h[i] = p;
}

static struct bpe_pair heap_pop(struct bpe_pair *h, int *n)
{
    struct bpe_pair top = h[0], last = h[--(*n)];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && bpe_better(&h[c + 1], &h[c])) c++;
        if (!bpe_better(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0) h[i] = last;
    return top;
}

struct bpe_state {
    const struct pep_spm *m;
    const char *s;
    struct bpe_sym *sym;
    struct bpe_pair *heap;
    int n_heap, cap_heap;
    struct bpe_rev *rev;
    int n_rev;
};

static void bpe_maybe_add(struct bpe_state *st, int left, int right)
{
    if (left < 0 || right < 0 || st->sym[left].freeze || st->sym[right].freeze) return;
    int len = st->sym[left].len + st->sym[right].len;
    int id = trie_lookup(&st->m->vocab, st->s + st->sym[left].start, (size_t)len);
    if (id < 0) return;
    if (st->n_heap < st->cap_heap) {
        struct bpe_pair p = {st->m->scores[id], left, right, len};
        heap_push(st->heap, &st->n_heap, p);
    }
    if (st->m->types[id] == PEP_SPM_PIECE_TYPE_UNUSED) {
        struct bpe_rev r = {id, st->sym[left].start, st->sym[left].len, len};
        st->rev[st->n_rev++] = r;
    }
}

/* Appends the ids of piece s[start, start+len), splitting UNUSED merges. */
static void bpe_resegment(struct bpe_state *st, int start, int len, int *out, int *n, int depth)
{
    const struct pep_spm *m = st->m;
    int id = trie_lookup(&m->all, st->s + start, (size_t)len);
    if (id < 0) id = m->unk_id;
    if (m->types[id] == PEP_SPM_PIECE_TYPE_UNUSED && depth < 64) {
        for (int k = st->n_rev - 1; k >= 0; k--) {
            const struct bpe_rev *r = &st->rev[k];
            if (r->id == id) {
                /* the same piece text, split as recorded */
                bpe_resegment(st, start, r->left_len, out, n, depth + 1);
                bpe_resegment(st, start + r->left_len, len - r->left_len, out, n, depth + 1);
                return;
            }
        }
    }
    out[(*n)++] = id;
    out[(*n)++] = start;
    out[(*n)++] = len;
}

/* Writes triples (id, start, len) to out (room for 3 * size); *n_out = 3 * pieces. */
static int bpe_encode(const struct pep_spm *m, const char *norm, int size, int *out, int *n_out)
{
    int rc = PEP_OK;
    struct bpe_state st = {.m = m, .s = norm};
    PEP_ALLOC(st.sym, (size_t)size);
    st.cap_heap = 4 * size + 4;
    PEP_ALLOC_GOTO(rc, st.heap, (size_t)st.cap_heap);
    PEP_ALLOC_GOTO(rc, st.rev, (size_t)st.cap_heap);
    int n_sym = 0;
    for (int pos = 0; pos < size;) {
        int len = 0, freeze = 0;
        if (m->n_user) {
            int32_t node = 0;
            for (int i = pos; i < size; i++) {
                node = trie_child(&m->user, node, (unsigned char)norm[i]);
                if (node < 0) break;
                if (m->user.value[node] >= 0) len = i + 1 - pos;
            }
            freeze = len > 0;
        }
        if (!len) {
            static const unsigned char one_char_len[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
            len = one_char_len[(unsigned char)norm[pos] >> 4];
            if (len > size - pos) len = size - pos;
        }
        struct bpe_sym sy = {pos, len, n_sym - 1, pos + len < size ? n_sym + 1 : -1, freeze};
        st.sym[n_sym++] = sy;
        pos += len;
    }
    for (int i = 1; i < n_sym; i++) bpe_maybe_add(&st, i - 1, i);
    while (st.n_heap > 0) {
        struct bpe_pair top = heap_pop(st.heap, &st.n_heap);
        struct bpe_sym *l = &st.sym[top.left], *r = &st.sym[top.right];
        if (l->len == 0 || r->len == 0 || l->len + r->len != top.size) continue;
        l->len += r->len;
        l->next = r->next;
        if (r->next >= 0) st.sym[r->next].prev = top.left;
        r->len = 0;
        bpe_maybe_add(&st, l->prev, top.left);
        bpe_maybe_add(&st, top.left, l->next);
    }
    int n = 0;
    for (int i = 0; i != -1 && n_sym > 0; i = st.sym[i].next)
        bpe_resegment(&st, st.sym[i].start, st.sym[i].len, out, &n, 0);
    *n_out = n;
cleanup:
    pep_free(st.sym);
    pep_free(st.heap);
    pep_free(st.rev);
    return rc;
}

int pep_spm_encode(const struct pep_spm *m, const char *text, size_t len, int *ids, int cap,
                   int *n)
{
    int rc = PEP_OK;
    struct spm_buf nb = {0};
    struct spm_node *best = NULL, best_local[257];
    int *rev = NULL, rev_local[256];
    PEP_CHECK(m && n && (text || len == 0) && (ids || cap == 0), PEP_ERR_USAGE,
              "pep_spm_encode: NULL argument");
    *n = 0;
    nb.p = nb.local;
    nb.cap = sizeof(nb.local);
    PEP_CALL_GOTO(rc, normalize(m, text, len, &nb));
    if (nb.n == 0) goto cleanup;
    PEP_CHECK_GOTO(rc, nb.n < (size_t)INT32_MAX / 2, PEP_ERR_USAGE,
                   "pep_spm_encode: text of %zu bytes is too long", len);
    int size = (int)nb.n;
    if (size < 256) {
        best = best_local;
        rev = rev_local;
    } else {
        PEP_ALLOC_GOTO(rc, best, (size_t)size + 1);
        PEP_ALLOC_GOTO(rc, rev, (size_t)size);
    }
    int n_rev = 0;
    if (m->model_type == 2) {
        if (rev != rev_local) pep_free(rev);
        PEP_ALLOC_GOTO(rc, rev, 3 * (size_t)size + 3);
        PEP_CALL_GOTO(rc, bpe_encode(m, nb.p, size, rev, &n_rev));
        n_rev /= 3;
    } else {
        PEP_CALL_GOTO(rc, viterbi(m, nb.p, size, best, rev, &n_rev));
    }
    int count = 0, prev_unk = 0;
    for (int k = m->model_type == 2 ? 0 : n_rev - 1; m->model_type == 2 ? k < n_rev : k >= 0;
         k += m->model_type == 2 ? 1 : -1) {
        int end, start, id;
        if (m->model_type == 2) {
            id = rev[3 * k];
            start = rev[3 * k + 1];
            end = start + rev[3 * k + 2];
        } else {
            end = rev[k];
            start = best[end].start;
            id = best[end].id;
        }
        int is_unk = id == m->unk_id;
        if (is_unk && m->byte_fallback) {
            for (int b = start; b < end; b++) {
                if (count < cap) ids[count] = m->byte_ids[(unsigned char)nb.p[b]];
                count++;
            }
        } else if (!(is_unk && prev_unk)) {
            if (count < cap) ids[count] = id;
            count++;
        }
        prev_unk = is_unk;
    }
    *n = count;
    if (count > cap)
        rc = pep_error_set(PEP_ERR_USAGE, __FILE__, __LINE__, __func__,
                           "pep_spm_encode: %d pieces do not fit in %d ids", count, cap);
cleanup:
    if (best != best_local) pep_free(best);
    if (rev != rev_local) pep_free(rev);
    if (nb.p != nb.local) pep_free(nb.p);
    return rc;
}

/* ---------------------------------------------------------------------------------- */

int pep_spm_vocab_size(const struct pep_spm *m) { return m ? m->n_pieces : 0; }

const char *pep_spm_piece(const struct pep_spm *m, int id)
{
    if (!m || id < 0 || id >= m->n_pieces) return NULL;
    return m->blob + m->off[id];
}

float pep_spm_score(const struct pep_spm *m, int id)
{
    return (m && id >= 0 && id < m->n_pieces) ? m->scores[id] : 0.0f;
}

int pep_spm_piece_type(const struct pep_spm *m, int id)
{
    return (m && id >= 0 && id < m->n_pieces) ? m->types[id] : 0;
}

int pep_spm_piece_id(const struct pep_spm *m, const char *piece)
{
    if (!m || !piece) return -1;
    return trie_lookup(&m->all, piece, strlen(piece));
}

int pep_spm_unk_id(const struct pep_spm *m) { return m ? m->unk_id : -1; }

int pep_spm_fairseq_id(const struct pep_spm *m, int id)
{
    if (id == m->unk_id) return 3;
    if (id == m->bos_id) return 0;
    if (id == m->eos_id) return 2;
    if (id == m->pad_id) return 1;
    return id + 1;
}

int pep_spm_fairseq_vocab(const struct pep_spm *m) { return m->n_pieces + 2; }

int pep_spm_mask_id(const struct pep_spm *m) { return m->n_pieces + 1; }

int pep_spm_encode_word(const struct pep_spm *m, const char *word, size_t len, int *ids, int cap,
                        int *n)
{
    PEP_CALL(pep_spm_encode(m, word, len, ids, cap, n));
    if (*n == 0 && len > 0) {
        *n = 1;
        PEP_CHECK(cap >= 1, PEP_ERR_USAGE, "pep_spm_encode_word: 1 piece does not fit in %d ids", cap);
        ids[0] = m->unk_id;
    }
    for (int k = 0; k < *n; k++) ids[k] = pep_spm_fairseq_id(m, ids[k]);
    return PEP_OK;
}

int pep_spm_encode_sentence(const struct pep_spm *m, const char *const *words, const size_t *lens,
                            int n_words, int T, int *ids, int *first_piece, int *n_ids,
                            int *n_truncated)
{
    int rc = PEP_OK, *tmp = NULL, tmp_cap = 64, dropped = 0;
    PEP_CHECK(m && ids && first_piece && n_ids && (words || n_words == 0) && T >= 2,
              PEP_ERR_USAGE, "pep_spm_encode_sentence: bad arguments (T = %d, need >= 2)", T);
    PEP_ALLOC(tmp, tmp_cap);
    int n = 0, limit = T - 2; /* room for the word pieces between <s> and </s> */
    ids[n++] = 0;
    for (int w = 0; w < n_words; w++) {
        int k;
        rc = pep_spm_encode_word(m, words[w], lens ? lens[w] : strlen(words[w]), tmp, tmp_cap, &k);
        if (rc == PEP_ERR_USAGE && k > tmp_cap) {
            pep_error_clear();
            pep_free(tmp);
            tmp_cap = k;
            PEP_ALLOC(tmp, tmp_cap);
            rc = pep_spm_encode_word(m, words[w], lens ? lens[w] : strlen(words[w]), tmp, tmp_cap, &k);
        }
        if (rc != PEP_OK) goto cleanup;
        if (n - 1 < limit && k > 0) {
            first_piece[w] = n;
            for (int j = 0; j < k && n - 1 < limit; j++) ids[n++] = tmp[j];
        } else {
            first_piece[w] = -1;
            if (k > 0) dropped++;
        }
    }
    ids[n++] = 2;
    *n_ids = n;
    if (n_truncated) *n_truncated = dropped;
cleanup:
    pep_free(tmp);
    return rc;
}
