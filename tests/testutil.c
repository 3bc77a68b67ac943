/* Shared helpers for the cmocka tests (testutil.h). */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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
