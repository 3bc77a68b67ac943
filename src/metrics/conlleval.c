/* Entity-level P/R/F1 with conlleval or strict IOB2 chunking, and the results table
 * (see conlleval.h for the exact rules). */
#include "metrics/conlleval.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

int pep_conlleval_create(const char *const *tags, int ntags, int strict, struct pep_conlleval **out)
{
    *out = NULL;
    int rc = PEP_OK;
    struct pep_conlleval *ev = NULL;
    PEP_CHECK(ntags >= 1, PEP_ERR_USAGE, "evaluation needs a tag set (data.tags)");
    PEP_ALLOC(ev, 1);
    ev->ntags = ntags;
    ev->strict = strict ? 1 : 0;
    PEP_ALLOC_GOTO(rc, ev->prefix, ntags);
    PEP_ALLOC_GOTO(rc, ev->type, ntags);
    for (int i = 0; i < ntags; i++) {
        const char *t = tags[i];
        if (strcmp(t, "O") == 0) {
            ev->prefix[i] = PEP_IOB_O;
            ev->type[i] = -1;
            continue;
        }
        PEP_CHECK_GOTO(rc, (t[0] == 'B' || t[0] == 'I') && t[1] == '-' && t[2] != '\0', PEP_ERR_USAGE,
                       "tag '%s' in data.tags is not IOB2: use O, B-<type> or I-<type>", t);
        PEP_CHECK_GOTO(rc, strlen(t + 2) < PEP_TAG_NAME_MAX, PEP_ERR_USAGE, "tag '%s' is too long", t);
        ev->prefix[i] = t[0] == 'B' ? PEP_IOB_B : PEP_IOB_I;
        int ty = -1;
        for (int k = 0; k < ev->ntypes; k++)
            if (strcmp(ev->type_names[k], t + 2) == 0) ty = k;
        if (ty < 0) {
            PEP_CHECK_GOTO(rc, ev->ntypes < PEP_EVAL_MAX_TYPES, PEP_ERR_USAGE,
                           "data.tags has more than %d entity types", PEP_EVAL_MAX_TYPES);
            ty = ev->ntypes++;
            snprintf(ev->type_names[ty], PEP_TAG_NAME_MAX, "%s", t + 2);
        }
        ev->type[i] = ty;
    }
    *out = ev;
    return PEP_OK;
cleanup:
    pep_conlleval_destroy(&ev);
    return rc;
}

void pep_conlleval_destroy(struct pep_conlleval **ev)
{
    if (!ev || !*ev) return;
    pep_free((*ev)->prefix);
    pep_free((*ev)->type);
    pep_free((*ev)->scratch);
    pep_free(*ev);
    *ev = NULL;
}

void pep_conlleval_reset(struct pep_conlleval *ev)
{
    memset(&ev->all, 0, sizeof ev->all);
    memset(ev->per_type, 0, sizeof ev->per_type);
    ev->sentences = ev->tokens = ev->tokens_correct = 0;
    ev->ill_formed_gold = ev->ill_formed_pred = 0;
}

int pep_conlleval_chunks(const struct pep_conlleval *ev, const int *tags, int n, struct pep_chunk *out, int *nchunks,
                         int *ill_formed)
{
    int nc = 0, bad = 0;
    int cur_type = -1; /* type of the open chunk, -1 if none */
    for (int i = 0; i < n; i++) {
        PEP_CHECK(tags[i] >= 0 && tags[i] < ev->ntags, PEP_ERR_USAGE, "tag id %d at position %d outside [0, %d)",
                  tags[i], i, ev->ntags);
        int p = ev->prefix[tags[i]], t = ev->type[tags[i]];
        if (p == PEP_IOB_I && cur_type == t) {
            /* continues the open chunk */
            out[nc - 1].end = i + 1;
        } else if (p == PEP_IOB_B || (p == PEP_IOB_I && !ev->strict)) {
            /* conlleval: an I- after O, after another type or at the start opens a chunk */
            if (p == PEP_IOB_I) bad++;
            out[nc].start = i;
            out[nc].end = i + 1;
            out[nc].type = t;
            nc++;
            cur_type = t;
        } else {
            if (p == PEP_IOB_I) bad++; /* strict: belongs to no chunk */
            cur_type = -1;
        }
    }
    *nchunks = nc;
    if (ill_formed) *ill_formed = bad;
    return PEP_OK;
}

int pep_conlleval_add(struct pep_conlleval *ev, const int *gold, const int *pred, int n)
{
    PEP_CHECK(n >= 0, PEP_ERR_USAGE, "negative sentence length %d", n);
    if (2 * n > ev->scratch_cap) {
        pep_free(ev->scratch);
        ev->scratch_cap = 2 * n + 64;
        PEP_ALLOC(ev->scratch, ev->scratch_cap);
    }
    struct pep_chunk *g = ev->scratch, *q = ev->scratch + n;
    int ng, nq, bg, bq;
    PEP_CALL(pep_conlleval_chunks(ev, gold, n, g, &ng, &bg));
    PEP_CALL(pep_conlleval_chunks(ev, pred, n, q, &nq, &bq));
    for (int i = 0; i < ng; i++) ev->per_type[g[i].type].gold++;
    for (int i = 0; i < nq; i++) ev->per_type[q[i].type].pred++;
    ev->all.gold += ng;
    ev->all.pred += nq;
    /* Both lists are sorted by start and non-overlapping: merge. */
    for (int i = 0, j = 0; i < ng && j < nq;) {
        if (g[i].start < q[j].start) i++;
        else if (q[j].start < g[i].start) j++;
        else {
            if (g[i].end == q[j].end && g[i].type == q[j].type) {
                ev->per_type[g[i].type].correct++;
                ev->all.correct++;
            }
            i++, j++;
        }
    }
    for (int i = 0; i < n; i++) ev->tokens_correct += gold[i] == pred[i];
    ev->tokens += n;
    ev->sentences++;
    ev->ill_formed_gold += bg;
    ev->ill_formed_pred += bq;
    return PEP_OK;
}

void pep_conlleval_summary(const struct pep_conlleval *ev, const char *name, struct pep_eval_summary *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", name ? name : "");
    out->strict = ev->strict;
    out->sentences = ev->sentences;
    out->tokens = ev->tokens;
    out->tokens_correct = ev->tokens_correct;
    out->ill_formed_gold = ev->ill_formed_gold;
    out->ill_formed_pred = ev->ill_formed_pred;
    out->all = ev->all;
    out->ntypes = ev->ntypes;
    memcpy(out->type_names, ev->type_names, sizeof out->type_names);
    memcpy(out->per_type, ev->per_type, sizeof out->per_type);
}

void pep_eval_prf(const struct pep_eval_counts *c, double *precision, double *recall, double *f1)
{
    double p = c->pred > 0 ? (double)c->correct / (double)c->pred : 0.0;
    double r = c->gold > 0 ? (double)c->correct / (double)c->gold : 0.0;
    if (precision) *precision = p;
    if (recall) *recall = r;
    if (f1) *f1 = p + r > 0 ? 2.0 * p * r / (p + r) : 0.0;
}

int pep_eval_micro(const struct pep_eval_summary *s, int n, struct pep_eval_summary *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "micro");
    for (int i = 0; i < n; i++) {
        out->strict = s[i].strict;
        out->sentences += s[i].sentences;
        out->tokens += s[i].tokens;
        out->tokens_correct += s[i].tokens_correct;
        out->ill_formed_gold += s[i].ill_formed_gold;
        out->ill_formed_pred += s[i].ill_formed_pred;
        out->all.gold += s[i].all.gold;
        out->all.pred += s[i].all.pred;
        out->all.correct += s[i].all.correct;
        for (int k = 0; k < s[i].ntypes; k++) {
            int t = -1;
            for (int m = 0; m < out->ntypes; m++)
                if (strcmp(out->type_names[m], s[i].type_names[k]) == 0) t = m;
            if (t < 0) {
                PEP_CHECK(out->ntypes < PEP_EVAL_MAX_TYPES, PEP_ERR_USAGE, "more than %d entity types",
                          PEP_EVAL_MAX_TYPES);
                t = out->ntypes++;
                snprintf(out->type_names[t], PEP_TAG_NAME_MAX, "%s", s[i].type_names[k]);
            }
            out->per_type[t].gold += s[i].per_type[k].gold;
            out->per_type[t].pred += s[i].per_type[k].pred;
            out->per_type[t].correct += s[i].per_type[k].correct;
        }
    }
    return PEP_OK;
}

void pep_eval_macro(const struct pep_eval_summary *s, int n, double *precision, double *recall, double *f1)
{
    double sp = 0, sr = 0, sf = 0;
    for (int i = 0; i < n; i++) {
        double p, r, f;
        pep_eval_prf(&s[i].all, &p, &r, &f);
        sp += p, sr += r, sf += f;
    }
    *precision = n ? sp / n : 0.0;
    *recall = n ? sr / n : 0.0;
    *f1 = n ? sf / n : 0.0;
}

/* Appends printf output to buf at *used; PEP_ERR_USAGE when it does not fit. */
static int append(char *buf, size_t len, size_t *used, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int append(char *buf, size_t len, size_t *used, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    PEP_CHECK(k >= 0 && (size_t)k < len - *used, PEP_ERR_USAGE, "results table needs more than %zu bytes", len);
    *used += (size_t)k;
    return PEP_OK;
}

int pep_eval_format_table(const struct pep_eval_summary *s, int n, char *buf, size_t len)
{
    PEP_CHECK(len > 0, PEP_ERR_USAGE, "empty buffer for the results table");
    size_t used = 0;
    buf[0] = '\0';
    const char *rule = "-----------------------------------------------------------------------------\n";
    PEP_CALL(append(buf, len, &used, "%-12s %8s %8s %8s %9s %9s %9s %9s\n", "language", "P%", "R%", "F1%", "gold",
                    "pred", "correct", "sentences"));
    PEP_CALL(append(buf, len, &used, "%s", rule));
    for (int i = 0; i < n; i++) {
        double p, r, f;
        pep_eval_prf(&s[i].all, &p, &r, &f);
        PEP_CALL(append(buf, len, &used, "%-12.12s %8.2f %8.2f %8.2f %9ld %9ld %9ld %9ld\n", s[i].name, 100 * p,
                        100 * r, 100 * f, s[i].all.gold, s[i].all.pred, s[i].all.correct, s[i].sentences));
    }
    struct pep_eval_summary micro;
    PEP_CALL(pep_eval_micro(s, n, &micro));
    double p, r, f;
    pep_eval_prf(&micro.all, &p, &r, &f);
    PEP_CALL(append(buf, len, &used, "%s", rule));
    PEP_CALL(append(buf, len, &used, "%-12s %8.2f %8.2f %8.2f %9ld %9ld %9ld %9ld\n", "micro", 100 * p, 100 * r,
                    100 * f, micro.all.gold, micro.all.pred, micro.all.correct, micro.sentences));
    pep_eval_macro(s, n, &p, &r, &f);
    PEP_CALL(append(buf, len, &used, "%-12s %8.2f %8.2f %8.2f\n", "macro", 100 * p, 100 * r, 100 * f));
    return PEP_OK;
}
