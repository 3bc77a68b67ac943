/* Checkpoint folders (checkpoint.h): "<stage>-step<8 digits>.h5" names, keep-last-N rotation
 * with removal of stale tmp files, and the newest file that opens and verifies for
 * `--resume auto` (read once: loaded into memory, verified there and handed back). Not
 * collective. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checkpoint.h"
#include "core/error.h"

int pep_ckpt_name(const char *dir, const char *stage, int64_t step, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s-step%08" PRId64 ".h5", dir, stage, step);
    PEP_CHECK(n > 0 && (size_t)n < len, PEP_ERR_USAGE, "checkpoint path too long for folder %s", dir);
    return PEP_OK;
}

/* Parses "<stage>-step<digits>.h5" (tmp = 0) or "...h5.tmp" (tmp = 1). */
static int parse_name(const char *name, const char *stage, int tmp, int64_t *step)
{
    size_t sl = strlen(stage);
    if (strncmp(name, stage, sl) || strncmp(name + sl, "-step", 5)) return 0;
    const char *p = name + sl + 5;
    if (*p < '0' || *p > '9') return 0;
    char *end;
    long long v = strtoll(p, &end, 10);
    if (strcmp(end, tmp ? ".h5.tmp" : ".h5")) return 0;
    *step = v;
    return 1;
}

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Steps of "<stage>-step*.h5" (tmp = 0) or ".h5.tmp" files in `dir`, newest first. */
static int scan_dir(const char *dir, const char *stage, int tmp, int64_t **steps, int *n)
{
    int cap = 0;
    *steps = NULL;
    *n = 0;
    DIR *d = opendir(dir);
    if (!d && errno == ENOENT) return PEP_OK;
    PEP_CHECK(d, PEP_ERR_IO, "cannot list checkpoint folder %s: %s", dir, strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t s;
        if (!parse_name(e->d_name, stage, tmp, &s)) continue;
        if (*n == cap) {
            cap = cap ? 2 * cap : 16;
            int64_t *p = realloc(*steps, (size_t)cap * sizeof *p);
            if (!p) {
                closedir(d);
                free(*steps);
                *steps = NULL;
                PEP_FAIL(PEP_ERR_NOMEM, "out of memory listing %s", dir);
            }
            *steps = p;
        }
        (*steps)[(*n)++] = s;
    }
    closedir(d);
    if (*n) qsort(*steps, (size_t)*n, sizeof **steps, cmp_desc);
    return PEP_OK;
}

int pep_ckpt_rotate(const char *dir, const char *stage, int keep)
{
    int64_t *steps = NULL;
    int n = 0;
    char path[PEP_CKPT_PATH_MAX + 8];
    PEP_CHECK(keep >= 1, PEP_ERR_USAGE, "checkpoint.keep must be at least 1 (got %d)", keep);
    PEP_CALL(scan_dir(dir, stage, 0, &steps, &n));
    for (int i = keep; i < n; i++) {
        if (pep_ckpt_name(dir, stage, steps[i], path, sizeof path) != PEP_OK) continue;
        if (unlink(path) != 0) pep_warn("cannot remove old checkpoint %s: %s", path, strerror(errno));
    }
    free(steps);
    PEP_CALL(scan_dir(dir, stage, 1, &steps, &n));
    for (int i = 0; i < n; i++) {
        if (pep_ckpt_name(dir, stage, steps[i], path, sizeof path) != PEP_OK) continue;
        strcat(path, ".tmp");
        if (unlink(path) != 0) pep_warn("cannot remove stale %s: %s", path, strerror(errno));
    }
    free(steps);
    return PEP_OK;
}

int pep_ckpt_load_latest(const char *dir, const char *stage, int deep, char *path, size_t len,
                         struct pep_ckpt_reader **out, int *found)
{
    int64_t *steps = NULL;
    int n = 0;
    *found = 0;
    *out = NULL;
    PEP_CALL(scan_dir(dir, stage, 0, &steps, &n));
    for (int i = 0; i < n && !*found; i++) {
        struct pep_ckpt_reader *r = NULL;
        if (pep_ckpt_name(dir, stage, steps[i], path, len) != PEP_OK) continue;
        int rc = pep_ckpt_load(path, &r);
        if (rc == PEP_OK && deep) rc = pep_ckpt_verify(r);
        if (rc == PEP_OK && strcmp(pep_ckpt_info(r)->stage, stage)) {
            pep_warn("%s: stage attribute is '%s', expected '%s'; skipped", path, pep_ckpt_info(r)->stage, stage);
            rc = PEP_ERR_FORMAT;
        } else if (rc != PEP_OK) {
            pep_warn("skipping damaged checkpoint %s: %s", path, pep_error_message());
            pep_error_clear();
        }
        if (rc == PEP_OK) {
            *out = r;
            *found = 1;
        } else {
            pep_ckpt_close(&r);
        }
    }
    free(steps);
    if (!*found && len) path[0] = '\0';
    return PEP_OK;
}

int pep_ckpt_find_latest(const char *dir, const char *stage, int deep, char *path, size_t len, int *found)
{
    struct pep_ckpt_reader *r = NULL;
    PEP_CALL(pep_ckpt_load_latest(dir, stage, deep, path, len, &r, found));
    pep_ckpt_close(&r);
    return PEP_OK;
}
