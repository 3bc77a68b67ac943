/* A training stage's log as CSV a user can watch while it runs (`tail -f`, a spreadsheet,
 * analysis/plot_log.py): a header line, then one line per logged step, each flushed as it is
 * written. The stages keep it beside their checkpoints as <out>/log.csv, one column per /log
 * series (docs/logs.md). Plain stdio, no MPI, not collective: the stages write it on rank 0. */
#ifndef PEP_IO_LOGCSV_H
#define PEP_IO_LOGCSV_H

#include <stddef.h>
#include <stdio.h>

#define PEP_LOGCSV_PATH_MAX 1300
#define PEP_LOGCSV_COLS_MAX 64

struct pep_logcsv {
    FILE *f; /* NULL: not open */
    int ncols;
    char path[PEP_LOGCSV_PATH_MAX];
};

/* Opens `path` for a stage whose columns are cols[0 .. ncols) (cols[0] is the step, a
 * number) and that continues after step `start`, appending from then on:
 *   start == 0 (a fresh start): the file is created or emptied and gets the header line;
 *   start > 0 (a resume): when the file has the same header and its rows up to step `start`
 *     number `nrows` (the rows the checkpoint resumed from holds), everything after them is
 *     cut off — the rows of steps after `start` from an earlier attempt, which the resumed
 *     run writes again, and a line a kill left unfinished — so no step appears twice; else (no
 *     file, another header, rows missing) the file is written anew from `rows` (nrows x ncols,
 *     row-major: the checkpoint's log) through a temporary file and a rename.
 * *rebuilt (optional) is 1 when the file was written anew on a resume, else 0.
 * Returns PEP_ERR_IO (naming the file) when it cannot be read or written, PEP_ERR_USAGE for
 * no columns or more than PEP_LOGCSV_COLS_MAX. */
int pep_logcsv_open(struct pep_logcsv *lc, const char *path, const char *const *cols, int ncols, long start,
                    const double *rows, size_t nrows, int *rebuilt);
/* Appends one row of ncols values and flushes it. A NaN is an empty cell; other values are
 * written with 10 significant digits (%.10g). PEP_ERR_IO when the write fails. */
int pep_logcsv_row(struct pep_logcsv *lc, const double *row);
/* Closes the file (NULL-safe, idempotent). */
void pep_logcsv_close(struct pep_logcsv *lc);

#endif
