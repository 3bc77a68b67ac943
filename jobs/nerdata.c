/* NER data for the stages (nerdata.h): io/conll reads, data/ner_align encodes and labels; the
 * tokenizer and the tag names come from run.c. */
#include "nerdata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conll.h"
#include "core/error.h"
#include "data/corpus.h"
#include "data/generated.h"
#include "data/ner_align.h"
#include "pep_mpi.h"
#include "watchdog.h"

void pep_nerset_free(struct pep_nerset *s)
{
    pep_free(s->ids);
    pep_free(s->labels);
    pep_free(s->len);
    pep_free(s->word_off);
    pep_free(s->gold);
    pep_free(s->first);
    pep_free(s->pred);
    pep_corpus_destroy(&s->corpus);
    memset(s, 0, sizeof *s);
}

int pep_nerset_load(const struct pep_run *run, const struct pep_spm *spm, const char *lang, const char *split,
                    struct pep_nerset *out)
{
    memset(out, 0, sizeof *out);
    pep_heartbeat(-1, "loading %s/%s", lang, split);
    struct pep_corpus *c = NULL;
    if (!strcmp(run->cfg.data.corpus, "generated")) {
        /* the clearly labelled synthetic corpus: same languages' codes, generated text */
        const char **tags = NULL;
        int ntags = 0;
        PEP_CALL(pep_taglist_parse(run->cfg.data.tags, &tags, &ntags));
        int n = run->cfg.data.max_sentences > 0 ? run->cfg.data.max_sentences : PEP_GENERATED_DEFAULT_SENTENCES;
        uint64_t seed = 0x9e3779b9u ^ (uint64_t)(split[0] == 't' && split[1] == 'r' ? 1 : split[0] == 'd' ? 2 : 3);
        int grc = pep_generated_corpus(lang, split, n, seed, tags, ntags, &c);
        pep_free(tags);
        PEP_CALL(grc);
    } else {
        struct pep_conll_stats st;
        PEP_CALL(pep_conll_read_lang(&run->cfg, NULL, lang, split, &c, &st));
        if (st.unknown_to_o && run->rank == 0)
            pep_info("data: %s/%s: %ld tags of entity types not in data.tags read as O (%s)", lang, split,
                     st.unknown_to_o, st.unknown);
    }
    int rc = PEP_OK, T = run->cfg.model.max_seq_len;
    const char **words = NULL;
    size_t *lens = NULL;
    int maxw = 1;
    for (int s = 0; s < c->nsent; s++)
        if (pep_corpus_sentence_len(c, s) > maxw) maxw = pep_corpus_sentence_len(c, s);
    snprintf(out->lang, sizeof out->lang, "%s", lang);
    snprintf(out->split, sizeof out->split, "%s", split);
    out->n = c->nsent;
    out->T = T;
    PEP_ALLOC_GOTO(rc, out->ids, (size_t)c->nsent * T);
    PEP_ALLOC_GOTO(rc, out->labels, (size_t)c->nsent * T);
    PEP_ALLOC_GOTO(rc, out->len, (size_t)c->nsent);
    PEP_ALLOC_GOTO(rc, out->word_off, (size_t)c->nsent + 1);
    PEP_ALLOC_GOTO(rc, out->gold, c->nwords + 1);
    PEP_ALLOC_GOTO(rc, out->first, c->nwords + 1);
    PEP_ALLOC_GOTO(rc, words, (size_t)maxw);
    PEP_ALLOC_GOTO(rc, lens, (size_t)maxw);
    for (int s = 0; s < c->nsent; s++) {
        int nw = pep_corpus_sentence_len(c, s), n_ids = 0, cut = 0;
        size_t w0 = c->sent_start[s];
        for (int j = 0; j < nw; j++) {
            words[j] = pep_corpus_word(c, s, j);
            lens[j] = (size_t)c->word_len[w0 + (size_t)j];
        }
        int *ids = out->ids + (size_t)s * T, *lab = out->labels + (size_t)s * T;
        const int *tags = pep_corpus_sentence_tags(c, s);
        PEP_CALL_GOTO(rc, pep_ner_align(spm, words, lens, tags, nw, T, ids, lab, out->first + w0, &n_ids, &cut));
        for (int t = n_ids; t < T; t++) ids[t] = PEP_PAD_ID, lab[t] = PEP_IGNORE_INDEX;
        memcpy(out->gold + w0, tags, (size_t)nw * sizeof *tags);
        out->len[s] = n_ids;
        out->word_off[s] = (int)w0;
        out->tokens += n_ids;
        if (cut) out->truncated_sentences++, out->truncated_words += cut;
    }
    out->word_off[c->nsent] = (int)c->nwords;
    if (out->truncated_sentences && run->rank == 0)
        pep_info("data: %s/%s: %d of %d sentences longer than model.max_seq_len = %d subwords were truncated "
                 "(%d words lost; they count as predicted O in evaluation)",
                 lang, split, out->truncated_sentences, out->n, T, out->truncated_words);
    out->corpus = c;
    c = NULL;
cleanup:
    pep_free(words);
    pep_free(lens);
    pep_corpus_destroy(&c);
    if (rc) pep_nerset_free(out);
    return rc;
}

int pep_nerset_batch(const struct pep_nerset *s, const int *idx, int B, struct pep_batch *b)
{
    pep_batch_clear(b);
    for (int i = 0; i < B; i++)
        PEP_CALL(pep_batch_append(b, s->ids + (size_t)idx[i] * s->T, s->labels + (size_t)idx[i] * s->T, s->len[idx[i]]));
    return PEP_OK;
}

/* The counts of a conlleval accumulator as one array (for the reduction over ranks). */
#define PEP_EVAL_NCOUNTS ((size_t)8 + 3 * PEP_EVAL_MAX_TYPES)
static void eval_counts(const struct pep_conlleval *ev, long *v)
{
    v[0] = ev->all.gold, v[1] = ev->all.pred, v[2] = ev->all.correct, v[3] = ev->sentences, v[4] = ev->tokens;
    v[5] = ev->tokens_correct, v[6] = ev->ill_formed_gold, v[7] = ev->ill_formed_pred;
    for (int t = 0; t < PEP_EVAL_MAX_TYPES; t++)
        v[8 + 3 * t] = ev->per_type[t].gold, v[9 + 3 * t] = ev->per_type[t].pred, v[10 + 3 * t] = ev->per_type[t].correct;
}

static void eval_set_counts(struct pep_conlleval *ev, const long *v)
{
    ev->all.gold = v[0], ev->all.pred = v[1], ev->all.correct = v[2], ev->sentences = v[3], ev->tokens = v[4];
    ev->tokens_correct = v[5], ev->ill_formed_gold = v[6], ev->ill_formed_pred = v[7];
    for (int t = 0; t < PEP_EVAL_MAX_TYPES; t++)
        ev->per_type[t].gold = v[8 + 3 * t], ev->per_type[t].pred = v[9 + 3 * t], ev->per_type[t].correct = v[10 + 3 * t];
}

/* This rank's share of pep_nerset_score: batches rank, rank + size, ... added to `ev`. */
static int score_local(struct pep_model *m, const struct pep_nerset *s, struct pep_conlleval *ev, int rank, int size)
{
    int B = m->spec.max_B, K = m->spec.ntags, rc = PEP_OK;
    int o_tag = 0;
    for (int k = 0; k < ev->ntags; k++)
        if (ev->prefix[k] == PEP_IOB_O) o_tag = k;
    int *idx = NULL, *pred = NULL;
    struct pep_batch b = {0};
    PEP_CALL_GOTO(rc, pep_batch_alloc(&b, B, B * s->T));
    PEP_ALLOC_GOTO(rc, idx, (size_t)B);
    int maxw = 1;
    for (int i = 0; i < s->n; i++)
        if (s->word_off[i + 1] - s->word_off[i] > maxw) maxw = s->word_off[i + 1] - s->word_off[i];
    PEP_ALLOC_GOTO(rc, pred, (size_t)maxw);
    int nbatches = (s->n + B - 1) / B;
    pep_heartbeat(-1, "evaluation on %s/%s", s->lang, s->split);
    for (int bi = rank; bi < nbatches; bi += size) {
        int b0 = bi * B, nb = s->n - b0 < B ? s->n - b0 : B;
        pep_heartbeat_detail("batch %d of %d", bi + 1, nbatches);
        for (int i = 0; i < nb; i++) idx[i] = b0 + i;
        PEP_CALL_GOTO(rc, pep_nerset_batch(s, idx, nb, &b));
        float loss;
        PEP_CALL_GOTO(rc, pep_model_forward(m, &b, 0, 0, &loss));
        const float *logits = pep_model_logits(m);
        for (int i = 0; i < nb; i++) {
            int sent = b0 + i, w0 = s->word_off[sent], nw = s->word_off[sent + 1] - w0;
            for (int w = 0; w < nw; w++) {
                int f = s->first[w0 + w];
                if (f < 0) {
                    pred[w] = o_tag;
                    continue;
                }
                const float *z = logits + ((size_t)b.offsets[i] + f) * K;
                int best = 0;
                for (int k = 1; k < K; k++)
                    if (z[k] > z[best]) best = k;
                pred[w] = best;
            }
            PEP_CALL_GOTO(rc, pep_conlleval_add(ev, s->gold + w0, pred, nw));
            if (s->pred) memcpy(s->pred + w0, pred, (size_t)nw * sizeof *pred);
        }
    }
cleanup:
    pep_batch_free(&b);
    pep_free(idx);
    pep_free(pred);
    return rc;
}

int pep_nerset_score(struct pep_model *m, const struct pep_nerset *s, struct pep_conlleval *ev, MPI_Comm comm,
                     int rank, int size)
{
    long before[PEP_EVAL_NCOUNTS], v[PEP_EVAL_NCOUNTS];
    eval_counts(ev, before);
    int lrc = score_local(m, s, ev, rank, size);
    pep_heartbeat_wait(-1, "evaluation on %s/%s: sum over the ranks", s->lang, s->split);
    /* a rank that failed (allocation, forward) must not leave the others waiting in the reduction */
    if (size > 1) lrc = pep_mpi_agree(lrc, comm);
    PEP_CALL(lrc);
    /* sum over ranks what this call added: `ev` may already hold (agreed) counts of other sets,
     * which must not be summed again */
    eval_counts(ev, v);
    for (size_t i = 0; i < PEP_EVAL_NCOUNTS; i++) v[i] -= before[i];
    if (size > 1) PEP_CALL_MPI(MPI_Allreduce(MPI_IN_PLACE, v, (int)PEP_EVAL_NCOUNTS, MPI_LONG, MPI_SUM, comm));
    for (size_t i = 0; i < PEP_EVAL_NCOUNTS; i++) v[i] += before[i];
    eval_set_counts(ev, v);
    return PEP_OK;
}

int pep_nerset_alloc_pred(struct pep_nerset *s)
{
    int nw = s->word_off[s->n];
    PEP_ALLOC(s->pred, nw > 0 ? nw : 1);
    for (int w = 0; w < nw; w++) s->pred[w] = -1;
    return PEP_OK;
}

int pep_nerset_gather_pred(const struct pep_nerset *s, MPI_Comm comm, int rank, int size)
{
    if (size == 1) return PEP_OK;
    int nw = s->word_off[s->n];
    /* each word was scored by exactly one rank; the others hold -1 there */
    void *send = rank == 0 ? MPI_IN_PLACE : (void *)s->pred;
    PEP_CALL_MPI(MPI_Reduce(send, s->pred, nw, MPI_INT, MPI_MAX, 0, comm));
    return PEP_OK;
}
