/* SentencePiece BPE segmentation (bpe_model.cc Encode): greedy merges of the best-scoring
 * adjacent pair, leftmost first among equal scores; UNUSED merged pieces are split back
 * (resegmentation); user-defined pieces stay whole. */
#include <stdint.h>

#include "core/error.h"
#include "tokenizer/spm_private.h"

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
int spm_bpe_encode(const struct pep_spm *m, const char *norm, int size, int *out, int *n_out)
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
