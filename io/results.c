/* Evaluation results as JSON and CSV, and the per-word prediction files (see results.h). */
#include "results.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/error.h"

static void json_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

static void json_prf(FILE *f, const struct pep_eval_counts *c)
{
    double p, r, f1;
    pep_eval_prf(c, &p, &r, &f1);
    fprintf(f, "\"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"gold\": %ld, \"pred\": %ld, \"correct\": %ld", p,
            r, f1, c->gold, c->pred, c->correct);
}

static void json_summary(FILE *f, const struct pep_eval_summary *s, const char *indent)
{
    fprintf(f, "{\n%s  ", indent);
    json_prf(f, &s->all);
    fprintf(f, ",\n%s  \"sentences\": %ld, \"tokens\": %ld, \"token_accuracy\": %.6f,", indent, s->sentences,
            s->tokens, s->tokens ? (double)s->tokens_correct / (double)s->tokens : 0.0);
    fprintf(f, "\n%s  \"ill_formed_gold\": %ld, \"ill_formed_pred\": %ld,\n%s  \"per_type\": {", indent,
            s->ill_formed_gold, s->ill_formed_pred, indent);
    for (int t = 0; t < s->ntypes; t++) {
        fprintf(f, "%s\n%s    ", t ? "," : "", indent);
        json_string(f, s->type_names[t]);
        fprintf(f, ": {");
        json_prf(f, &s->per_type[t]);
        fprintf(f, "}");
    }
    fprintf(f, "%s%s}\n%s}", s->ntypes ? "\n  " : "", s->ntypes ? indent : "", indent);
}

/* Opens path.tmp for writing. */
static int open_tmp(const char *path, char *tmp, size_t len, FILE **f)
{
    int k = snprintf(tmp, len, "%s.tmp", path);
    PEP_CHECK(k > 0 && (size_t)k < len, PEP_ERR_USAGE, "results path '%s' is too long", path);
    *f = fopen(tmp, "w");
    PEP_CHECK(*f, PEP_ERR_IO, "cannot write '%s': %s (check that run.out exists and is writable)", tmp,
              strerror(errno));
    return PEP_OK;
}

static int close_rename(FILE *f, const char *tmp, const char *path)
{
    int bad = ferror(f);
    int cl = fclose(f);
    if (bad || cl != 0) {
        remove(tmp);
        PEP_FAIL(PEP_ERR_IO, "short write to '%s' (disk full?)", tmp);
    }
    PEP_CHECK(rename(tmp, path) == 0, PEP_ERR_IO, "cannot rename '%s' to '%s': %s", tmp, path, strerror(errno));
    return PEP_OK;
}

int pep_results_write_json(const char *path, const struct pep_eval_summary *s, int n, const char *run_json)
{
    struct pep_eval_summary micro;
    PEP_CALL(pep_eval_micro(s, n, &micro));
    char tmp[4096];
    FILE *f = NULL;
    PEP_CALL(open_tmp(path, tmp, sizeof tmp, &f));
    fprintf(f, "{\n  \"format\": \"peprime-results-1\",\n  \"chunking\": \"%s\",\n  \"run\": %s,\n  \"languages\": {",
            n > 0 && s[0].strict ? "strict-iob2" : "conlleval", run_json && *run_json ? run_json : "{}");
    for (int i = 0; i < n; i++) {
        fprintf(f, "%s\n    ", i ? "," : "");
        json_string(f, s[i].name);
        fprintf(f, ": ");
        json_summary(f, &s[i], "    ");
    }
    fprintf(f, "%s},\n  \"micro\": ", n ? "\n  " : "");
    json_summary(f, &micro, "  ");
    double p, r, f1;
    pep_eval_macro(s, n, &p, &r, &f1);
    fprintf(f, ",\n  \"macro\": {\"precision\": %.6f, \"recall\": %.6f, \"f1\": %.6f, \"languages\": %d}\n}\n", p, r,
            f1, n);
    PEP_CALL(close_rename(f, tmp, path));
    return PEP_OK;
}

static void csv_row(FILE *f, const struct pep_eval_summary *s, const char *name)
{
    double p, r, f1;
    pep_eval_prf(&s->all, &p, &r, &f1);
    fprintf(f, "%s,%.6f,%.6f,%.6f,%ld,%ld,%ld,%ld,%ld,%.6f\n", name, p, r, f1, s->all.gold, s->all.pred,
            s->all.correct, s->sentences, s->tokens, s->tokens ? (double)s->tokens_correct / (double)s->tokens : 0.0);
}

int pep_results_write_csv(const char *path, const struct pep_eval_summary *s, int n)
{
    struct pep_eval_summary micro;
    PEP_CALL(pep_eval_micro(s, n, &micro));
    for (int i = 0; i < n; i++)
        PEP_CHECK(!strpbrk(s[i].name, ",\"\n"), PEP_ERR_USAGE, "language name '%s' cannot go into a CSV cell",
                  s[i].name);
    char tmp[4096];
    FILE *f = NULL;
    PEP_CALL(open_tmp(path, tmp, sizeof tmp, &f));
    fprintf(f, "language,precision,recall,f1,gold,pred,correct,sentences,tokens,token_accuracy\n");
    for (int i = 0; i < n; i++) csv_row(f, &s[i], s[i].name);
    csv_row(f, &micro, "micro");
    double p, r, f1;
    pep_eval_macro(s, n, &p, &r, &f1);
    fprintf(f, "macro,%.6f,%.6f,%.6f,,,,,,\n", p, r, f1);
    PEP_CALL(close_rename(f, tmp, path));
    return PEP_OK;
}

int pep_results_write_predictions(const char *path, const struct pep_corpus *c, const int *pred)
{
    char tmp[4096];
    FILE *f = NULL;
    for (size_t w = 0; w < c->nwords; w++)
        PEP_CHECK(pred[w] >= 0 && pred[w] < c->ntags, PEP_ERR_INTERNAL,
                  "%s: word %zu has no prediction (tag id %d); was every sentence scored?", path, w, pred[w]);
    PEP_CALL(open_tmp(path, tmp, sizeof tmp, &f));
    for (int s = 0; s < c->nsent; s++) {
        const int *gold = pep_corpus_sentence_tags(c, s);
        const int *p = pred + c->sent_start[s];
        for (int j = 0; j < pep_corpus_sentence_len(c, s); j++)
            fprintf(f, "%s\t%s\t%s\n", pep_corpus_word(c, s, j), c->tag_names[gold[j]], c->tag_names[p[j]]);
        fputc('\n', f);
    }
    PEP_CALL(close_rename(f, tmp, path));
    return PEP_OK;
}
