/* Shared helpers for the cmocka tests (testutil.h). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"
#include "model/model.h"

const char *pep_test_tmpdir(const char *tag)
{
    static char path[1024];
    const char *base = getenv("PEP_TEST_TMP");
    if (!base || !*base) base = "/tmp";
    mkdir(base, 0755);
    snprintf(path, sizeof path, "%s/%s.%ld", base, tag, (long)getpid());
    char cmd[2200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", path, path);
    if (system(cmd) != 0) fail_msg("cannot create %s", path);
    return path;
}

const char *pep_test_write_file(const char *dir, const char *name, const char *text)
{
    static char path[2200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) fail_msg("cannot write %s", path);
    fwrite(text, 1, strlen(text), f);
    fclose(f);
    return path;
}

double pep_test_rel_err(const float *a, const float *b, size_t n)
{
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double x = (double)a[i] - (double)b[i];
        d += x * x;
        r += (double)b[i] * (double)b[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

const char *pep_test_data_root(void)
{
    static char path[1024];
    const char *env = getenv("PEPRIME_DATA");
    if (env && *env) snprintf(path, sizeof path, "%s", env);
    else return NULL;
    struct stat st;
    if (stat(path, &st) != 0) return NULL;
    return path;
}

void pep_test_batch_from_padded(struct pep_batch *b, const int *ids, const int *labels, int B, int T)
{
    if (pep_batch_alloc(b, B, B * T) != PEP_OK) fail_msg("batch storage: %s", pep_error_message());
    for (int i = 0; i < B; i++) {
        int len = 0;
        while (len < T && ids[(size_t)i * T + len] != PEP_PAD_ID) len++;
        if (pep_batch_append(b, ids + (size_t)i * T, labels ? labels + (size_t)i * T : NULL, len) != PEP_OK)
            fail_msg("padded row %d: %s", i, pep_error_message());
    }
}

void pep_test_gather_rows(float *out, const float *padded, const struct pep_batch *b, int T, int K)
{
    for (int i = 0; i < b->nseq; i++)
        memcpy(out + (size_t)b->offsets[i] * K, padded + (size_t)i * T * K,
               (size_t)pep_batch_len(b, i) * K * sizeof(float));
}
