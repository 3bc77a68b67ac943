/* The watchable CSV log (logcsv.h). */
#include "logcsv.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/error.h"
#include "file.h"

/* cols joined by commas, no newline. */
static int make_header(const char *const *cols, int ncols, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < ncols; c++) {
        PEP_CHECK(cols[c][0] && !strpbrk(cols[c], ",\n\r\""), PEP_ERR_USAGE, "log.csv column '%s' is empty or holds "
                  "a comma, quote or newline", cols[c]);
        int n = snprintf(buf + used, len - used, "%s%s", c ? "," : "", cols[c]);
        PEP_CHECK(n >= 0 && (size_t)n < len - used, PEP_ERR_USAGE, "log.csv header longer than %zu bytes", len);
        used += (size_t)n;
    }
    return PEP_OK;
}

static int write_row(FILE *f, const double *row, int ncols)
{
    for (int c = 0; c < ncols; c++) {
        if (c) fputc(',', f);
        if (!isnan(row[c])) fprintf(f, "%.10g", row[c]);
    }
    fputc('\n', f);
    return fflush(f) == 0 && !ferror(f) ? PEP_OK : PEP_ERR_IO;
}

/* The byte offset just after the last row to keep on a resume after step `start`, or -1 when
 * the file cannot be kept (another header, or not exactly `nrows` rows up to `start`). */
static long keep_offset(const char *buf, size_t len, const char *header, long start, size_t nrows)
{
    size_t hl = strlen(header);
    if (len < hl + 1 || strncmp(buf, header, hl) != 0 || buf[hl] != '\n') return -1;
    size_t pos = hl + 1, kept = 0;
    while (pos < len) {
        const char *nl = memchr(buf + pos, '\n', len - pos);
        if (!nl) break; /* a line a kill left unfinished */
        char *end;
        double step = strtod(buf + pos, &end);
        if (end == buf + pos || *end != ',' || step > (double)start) break;
        kept++;
        pos = (size_t)(nl - buf) + 1;
    }
    return kept == nrows ? (long)pos : -1;
}

/* Writes header + rows to path.tmp and renames it to path. */
static int rebuild(const char *path, const char *header, const double *rows, size_t nrows, int ncols)
{
    char tmp[PEP_LOGCSV_PATH_MAX + 8];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    PEP_CHECK(f, PEP_ERR_IO, "cannot write %s: %s", tmp, strerror(errno));
    int rc = fprintf(f, "%s\n", header) < 0 ? PEP_ERR_IO : PEP_OK;
    for (size_t r = 0; r < nrows && rc == PEP_OK; r++) rc = write_row(f, rows + r * (size_t)ncols, ncols);
    if (fclose(f) != 0) rc = PEP_ERR_IO;
    if (rc == PEP_OK && rename(tmp, path) != 0) rc = PEP_ERR_IO;
    if (rc != PEP_OK) {
        int e = errno;
        unlink(tmp);
        PEP_FAIL(PEP_ERR_IO, "cannot write %s: %s", path, strerror(e));
    }
    return PEP_OK;
}

int pep_logcsv_open(struct pep_logcsv *lc, const char *path, const char *const *cols, int ncols, long start,
                    const double *rows, size_t nrows, int *rebuilt)
{
    memset(lc, 0, sizeof *lc);
    if (rebuilt) *rebuilt = 0;
    PEP_CHECK(ncols >= 1 && ncols <= PEP_LOGCSV_COLS_MAX, PEP_ERR_USAGE, "log.csv needs 1 to %d columns, got %d",
              PEP_LOGCSV_COLS_MAX, ncols);
    PEP_CHECK(strlen(path) < sizeof lc->path, PEP_ERR_USAGE, "log.csv path %s is too long", path);
    char header[PEP_LOGCSV_COLS_MAX * 40];
    PEP_CALL(make_header(cols, ncols, header, sizeof header));
    if (start == 0) {
        FILE *f = fopen(path, "wb");
        PEP_CHECK(f, PEP_ERR_IO, "cannot write %s: %s", path, strerror(errno));
        if (fprintf(f, "%s\n", header) < 0 || fflush(f) != 0) {
            int e = errno;
            fclose(f);
            PEP_FAIL(PEP_ERR_IO, "cannot write %s: %s", path, strerror(e));
        }
        lc->f = f;
    } else {
        char *buf = NULL;
        size_t len = 0;
        int missing = access(path, F_OK) != 0 && errno == ENOENT;
        if (!missing) PEP_CALL(pep_file_read(path, "log.csv", PEP_FILE_MAX_DATA, &buf, &len));
        long keep = missing ? -1 : keep_offset(buf, len, header, start, nrows);
        pep_free(buf);
        if (keep >= 0) {
            /* in place, so a reader following the file (tail -f) keeps it */
            PEP_CHECK((size_t)keep == len || truncate(path, (off_t)keep) == 0, PEP_ERR_IO, "cannot cut %s after step %ld: %s",
                      path, start, strerror(errno));
        } else {
            PEP_CALL(rebuild(path, header, rows, nrows, ncols));
            if (rebuilt) *rebuilt = 1;
        }
        lc->f = fopen(path, "ab");
        PEP_CHECK(lc->f, PEP_ERR_IO, "cannot append to %s: %s", path, strerror(errno));
    }
    lc->ncols = ncols;
    snprintf(lc->path, sizeof lc->path, "%s", path);
    return PEP_OK;
}

int pep_logcsv_row(struct pep_logcsv *lc, const double *row)
{
    PEP_CHECK(lc->f, PEP_ERR_USAGE, "log.csv is not open");
    PEP_CHECK(write_row(lc->f, row, lc->ncols) == PEP_OK, PEP_ERR_IO, "cannot write to %s: %s", lc->path,
              strerror(errno));
    return PEP_OK;
}

void pep_logcsv_close(struct pep_logcsv *lc)
{
    if (lc->f) fclose(lc->f);
    lc->f = NULL;
}
