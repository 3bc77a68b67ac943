/* Shared helpers for the cmocka tests: temp dirs, small files, float comparisons, and the
 * bridge from the oracles' padded (B, T) arrays to peprime's unpadded batches. */
#ifndef PEP_TESTUTIL_H
#define PEP_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

/* Room for a file path the tests build (a temp folder + a name) and for a shell command line. */
#define PEP_TEST_PATH_MAX 1200
#define PEP_TEST_CMD_MAX 4096

/* A fresh empty folder under $PEP_TEST_TMP (or /tmp) named after `tag`; returns its path
 * in a static buffer that the next call overwrites. */
const char *pep_test_tmpdir(const char *tag);
/* Writes `text` to dir/name and returns the full path (static buffer). */
const char *pep_test_write_file(const char *dir, const char *name, const char *text);
/* ||a - b|| / ||b|| (||b|| = 0 -> ||a||). */
double pep_test_rel_err(const float *a, const float *b, size_t n);
/* $PEPRIME_DATA or ../shared/data from the source tree; NULL if absent. */
const char *pep_test_data_root(void);

struct pep_batch;
/* b (pep_batch_alloc'd here; pep_batch_free it) = the rows of a padded (B, T) id / label
 * array (labels may be NULL), each cut at its first PEP_PAD_ID. Fails the test on a bad row. */
void pep_test_batch_from_padded(struct pep_batch *b, const int *ids, const int *labels, int B, int T);
/* The (N, K) rows of a padded (B, T, K) array that belong to b's tokens, in b's order. */
void pep_test_gather_rows(float *out, const float *padded, const struct pep_batch *b, int T, int K);

#endif
