/* Shared pieces of the libFuzzer harnesses: one temp folder per process (removed at exit),
 * writing the input to a file in it, and the check every harness makes on a rejection:
 * the status is one of the allowed peprime errors and its message names the file. */
#ifndef PEP_FUZZ_UTIL_H
#define PEP_FUZZ_UTIL_H

#include <stddef.h>

/* This process's temp folder (created on first use under $TMPDIR or /tmp, removed with its
 * contents at exit). Aborts if it cannot be made. */
const char *fuzz_tmpdir(void);
/* Writes data[0..n) to <tmpdir>/<name> (sub-folders created) and returns the full path in a
 * static buffer that the next call overwrites. Aborts on an I/O error. */
const char *fuzz_write(const char *name, const void *data, size_t n);
/* A rejected input: aborts (a finding) unless rc is one of the PEP_ERR_* codes in `allowed`
 * (a bit mask of 1 << code) and the error message contains `name` (the file or source named
 * in messages; NULL skips that check). Clears the error. */
void fuzz_rejected(int rc, unsigned allowed, const char *name);
/* Aborts with a message (an invariant of an accepted input does not hold). */
_Noreturn void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define FUZZ_ERR(code) (1u << (code))

#endif
