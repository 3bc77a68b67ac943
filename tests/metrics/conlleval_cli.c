/* Test driver for the oracle test: reads "gold pred" tag pairs from stdin (blank line between
 * sentences), scores them with src/metrics/conlleval, prints the counts one per line:
 *   ALL gold pred correct / TYPE name gold pred correct / TOKENS n correct / SENTENCES n
 * Usage: conlleval_cli [--strict] TAG,TAG,... < pairs.txt */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/error.h"
#include "data/corpus.h"
#include "metrics/conlleval.h"

static int lookup(const char **tags, int ntags, const char *t)
{
    for (int i = 0; i < ntags; i++)
        if (strcmp(tags[i], t) == 0) return i;
    return -1;
}

static int flush(struct pep_conlleval *ev, int *g, int *p, int *n)
{
    if (*n == 0) return PEP_OK;
    int rc = pep_conlleval_add(ev, g, p, *n);
    *n = 0;
    return rc;
}

int main(int argc, char **argv)
{
    int strict = 0, a = 1;
    if (a < argc && strcmp(argv[a], "--strict") == 0) strict = 1, a++;
    if (a >= argc) {
        fprintf(stderr, "usage: %s [--strict] TAG,TAG,... < pairs\n", argv[0]);
        return 2;
    }
    const char **tags = NULL;
    int ntags = 0;
    struct pep_conlleval *ev = NULL;
    if (pep_taglist_parse(argv[a], &tags, &ntags) != PEP_OK || pep_conlleval_create(tags, ntags, strict, &ev) != PEP_OK) {
        fprintf(stderr, "error: %s\n", pep_error_message());
        return 1;
    }
    static int g[4096], p[4096];
    int n = 0, rc = PEP_OK;
    char line[512];
    long lineno = 0;
    while (rc == PEP_OK && fgets(line, sizeof line, stdin)) {
        lineno++;
        char gt[128], pt[128];
        if (sscanf(line, "%127s %127s", gt, pt) != 2) {
            rc = flush(ev, g, p, &n);
            continue;
        }
        int gi = lookup(tags, ntags, gt), pi = lookup(tags, ntags, pt);
        if (gi < 0 || pi < 0 || n >= 4096) {
            fprintf(stderr, "stdin:%ld: unknown tag or sentence too long\n", lineno);
            return 1;
        }
        g[n] = gi, p[n] = pi, n++;
    }
    if (rc == PEP_OK) rc = flush(ev, g, p, &n);
    if (rc != PEP_OK) {
        fprintf(stderr, "error: %s\n", pep_error_message());
        return 1;
    }
    printf("ALL %ld %ld %ld\n", ev->all.gold, ev->all.pred, ev->all.correct);
    for (int t = 0; t < ev->ntypes; t++)
        printf("TYPE %s %ld %ld %ld\n", ev->type_names[t], ev->per_type[t].gold, ev->per_type[t].pred,
               ev->per_type[t].correct);
    printf("TOKENS %ld %ld\nSENTENCES %ld\n", ev->tokens, ev->tokens_correct, ev->sentences);
    pep_conlleval_destroy(&ev);
    pep_free((void *)tags);
    return 0;
}
