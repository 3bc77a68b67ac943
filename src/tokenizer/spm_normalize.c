/* SentencePiece normalisation (normalizer.cc Normalize / NormalizePrefix): user-defined
 * pieces kept as they are, the precompiled charsmap (a Darts-clone double array over a blob
 * of normalised strings), malformed UTF-8 to U+FFFD, whitespace folding, escaping and the
 * dummy prefix. */
#include <stdint.h>
#include <string.h>

#include "core/error.h"
#include "tokenizer/spm_private.h"

#define SPM_SPACE "\xe2\x96\x81" /* U+2581, SentencePiece's whitespace symbol */
#define SPM_MAX_TRIE_RESULTS 32  /* kMaxTrieResultsSize in NormalizePrefix */

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

int spm_normalize(const struct pep_spm *m, const char *text, size_t len, struct spm_buf *out)
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
