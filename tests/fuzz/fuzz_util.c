/* Temp folder, file writing and rejection checks shared by the fuzz harnesses (fuzz_util.h). */
#define _GNU_SOURCE
#include "fuzz_util.h"

#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/error.h"

static char g_dir[4096];
static pid_t g_owner;

_Noreturn void fuzz_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    abort();
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tmpdir(void)
{
    if (g_dir[0] && getpid() == g_owner) nftw(g_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

const char *fuzz_tmpdir(void)
{
    if (g_dir[0]) return g_dir;
    const char *base = getenv("TMPDIR");
    snprintf(g_dir, sizeof g_dir, "%s/pep-fuzz-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(g_dir)) fuzz_fail("cannot create a temp folder %s: %s", g_dir, strerror(errno));
    g_owner = getpid();
    atexit(remove_tmpdir);
    return g_dir;
}

const char *fuzz_write(const char *name, const void *data, size_t n)
{
    static char path[8192];
    snprintf(path, sizeof path, "%s/%s", fuzz_tmpdir(), name);
    for (char *s = path + strlen(g_dir) + 1; (s = strchr(s, '/')); s++) {
        *s = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) fuzz_fail("cannot create %s: %s", path, strerror(errno));
        *s = '/';
    }
    FILE *f = fopen(path, "wb");
    if (!f) fuzz_fail("cannot create %s: %s", path, strerror(errno));
    if ((n && fwrite(data, 1, n, f) != n) || fclose(f) != 0) fuzz_fail("cannot write %s", path);
    return path;
}

void fuzz_rejected(int rc, unsigned allowed, const char *name)
{
    if (rc <= 0 || rc > 31 || !(allowed & FUZZ_ERR(rc)))
        fuzz_fail("unexpected status %d (%s): %s\n%s", rc, pep_status_name(rc), pep_error_message(),
                  pep_error_where());
    if (name && !strstr(pep_error_message(), name))
        fuzz_fail("the error message does not name '%s': %s", name, pep_error_message());
    pep_error_clear();
}
