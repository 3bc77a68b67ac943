/* The whole-file reader (file.h). */
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "core/error.h"

int pep_file_read(const char *path, const char *what, size_t max_bytes, char **data, size_t *len)
{
    int rc = PEP_OK;
    char *buf = NULL;
    size_t cap, n = 0;
    struct stat st;
    PEP_CHECK(path && what && data && len && max_bytes > 0, PEP_ERR_USAGE, "pep_file_read: bad arguments");
    *data = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    PEP_CHECK(f, PEP_ERR_IO, "cannot open %s '%s': %s", what, path, strerror(errno));
    PEP_CHECK_GOTO(rc, fstat(fileno(f), &st) == 0, PEP_ERR_IO, "cannot read %s '%s': %s", what, path,
                   strerror(errno));
    PEP_CHECK_GOTO(rc, !S_ISDIR(st.st_mode), PEP_ERR_IO, "%s '%s' is a folder, not a file", what, path);
    /* a regular file's size is the first guess; a pipe, or a file that grows meanwhile, is read on */
    cap = S_ISREG(st.st_mode) && st.st_size > 0 ? (size_t)st.st_size : (size_t)1 << 16;
    if (cap > max_bytes) cap = max_bytes;
    PEP_ALLOC_GOTO(rc, buf, cap + 1);
    for (;;) {
        if (n == cap) {
            int c = fgetc(f);
            if (c == EOF) break;
            PEP_CHECK_GOTO(rc, cap < max_bytes, PEP_ERR_FORMAT, "%s '%s' is longer than %zu bytes; not a %s?", what,
                           path, max_bytes, what);
            size_t bigger = cap > max_bytes / 2 ? max_bytes : 2 * cap;
            char *grown;
            PEP_ALLOC_GOTO(rc, grown, bigger + 1);
            memcpy(grown, buf, n);
            pep_free(buf);
            buf = grown;
            cap = bigger;
            buf[n++] = (char)c;
            continue;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    /* fread and fgetc end alike at the end of the file and on a read error */
    PEP_CHECK_GOTO(rc, !ferror(f), PEP_ERR_IO, "error reading %s '%s': %s", what, path, strerror(errno));
    buf[n] = '\0';
    *data = buf;
    *len = n;
    buf = NULL;
cleanup:
    pep_free(buf);
    fclose(f);
    return rc;
}
