/* SentencePiece model files (spm.h): the serialized ModelProto parsed with a small protocol
 * buffer reader (pieces, trainer and normalizer specs, precompiled charsmap), the byte tries
 * built over the pieces, and the piece / id accessors including the fairseq mapping. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/spm_private.h"

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

int pep_spm_piece_count(const void *buf, size_t len, const char *origin, int *pieces)
{
    const char *src = origin ? origin : "SentencePiece model", *msg = NULL;
    struct pb b = {buf, (const uint8_t *)buf + len, buf};
    struct pb_field f;
    long count = 0;
    int got;
    PEP_CHECK(pieces && (buf || len == 0), PEP_ERR_USAGE, "pep_spm_piece_count: NULL argument");
    while ((got = pb_next(&b, &f, &msg)) == 1)
        if (f.num == 1 && f.wire == 2) count++;
    PEP_CHECK(got == 0, PEP_ERR_FORMAT, "%s: not a SentencePiece model (%s at byte %zu)", src, msg,
              (size_t)(b.p - b.start));
    PEP_CHECK(count > 3, PEP_ERR_FORMAT, "%s: no pieces; not a SentencePiece model?", src);
    PEP_CHECK(count <= INT32_MAX / 2, PEP_ERR_FORMAT, "%s: too many pieces (%ld)", src, count);
    *pieces = (int)count;
    return PEP_OK;
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

int pep_spm_vocab_size(const struct pep_spm *m) { return m ? m->n_pieces : 0; }

const char *pep_spm_piece(const struct pep_spm *m, int id)
{
    if (!m || id < 0 || id >= m->n_pieces) return NULL;
    return m->blob + m->off[id];
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
