/* Status codes, error messages, check macros, the abort hook and the log hook.
 *
 * Library code (src/ io/ mpi/) returns an int status and never exits. The first failing
 * call records a message (what, where, what to do) with pep_error_set(); callers pass the
 * status up with PEP_CALL, which appends a file:line trace. Only the mains in jobs/ exit.
 * Fatal conditions in code that cannot return go through pep_abort(), whose hook mpi/
 * replaces with one that calls MPI_Abort so no rank is left hanging in a collective. */
#ifndef PEP_ERROR_H
#define PEP_ERROR_H

#include <stdarg.h>
#include <stddef.h>

/* Longest recorded error message (with its NUL; longer ones are cut), and the buffer for a
 * "file:line" or "file header" label that names a source inside a message. */
#define PEP_ERROR_MSG_MAX 2048
#define PEP_ERROR_LABEL_MAX 1200

enum pep_status {
    PEP_OK = 0,
    PEP_ERR_USAGE = 1,       /* bad config value, bad command line, bad argument */
    PEP_ERR_IO = 2,          /* file missing, unreadable, short write */
    PEP_ERR_FORMAT = 3,      /* malformed data file / checkpoint / model file */
    PEP_ERR_NOMEM = 4,       /* allocation failed */
    PEP_ERR_NUMERIC = 5,     /* non-finite loss or gradient */
    PEP_ERR_MPI = 6,         /* an MPI call failed */
    PEP_ERR_HDF5 = 7,        /* an HDF5 call failed */
    PEP_ERR_INTERNAL = 8,    /* a bug: an invariant did not hold */
    PEP_ERR_INTERRUPTED = 9, /* stopped on a signal after checkpointing */
};

/* Records the error message (printf-style) with its origin and returns `code`.
 * The first message since the last pep_error_clear() wins; later ones are appended to the
 * trace only. Thread-local. */
int pep_error_set(int code, const char *file, int line, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Appends "file:line func()" to the trace of the current error; returns `code`. */
int pep_error_trace(int code, const char *file, int line, const char *func);
/* The user-facing message of the current error ("" if none). */
const char *pep_error_message(void);
/* The origin and call trace of the current error, one frame per line. */
const char *pep_error_where(void);
int pep_error_code(void);
void pep_error_clear(void);
const char *pep_status_name(int code);

/* Return `code` with a message if `cond` is false. */
#define PEP_CHECK(cond, code, ...)                                                            \
    do {                                                                                      \
        if (!(cond)) return pep_error_set((code), __FILE__, __LINE__, __func__, __VA_ARGS__); \
    } while (0)
/* Return an error with a message unconditionally. */
#define PEP_FAIL(code, ...) return pep_error_set((code), __FILE__, __LINE__, __func__, __VA_ARGS__)
/* Propagate a failing status from one of our own calls. */
#define PEP_CALL(expr)                                                             \
    do {                                                                           \
        int pep_rc_ = (expr);                                                      \
        if (pep_rc_ != PEP_OK) return pep_error_trace(pep_rc_, __FILE__, __LINE__, __func__); \
    } while (0)
/* Cleanup-label variants: store the status in `rc` and jump to `cleanup`. */
#define PEP_CHECK_GOTO(rc, cond, code, ...)                                                 \
    do {                                                                                    \
        if (!(cond)) {                                                                      \
            (rc) = pep_error_set((code), __FILE__, __LINE__, __func__, __VA_ARGS__);        \
            goto cleanup;                                                                   \
        }                                                                                   \
    } while (0)
#define PEP_CALL_GOTO(rc, expr)                                                       \
    do {                                                                              \
        (rc) = (expr);                                                                \
        if ((rc) != PEP_OK) {                                                         \
            pep_error_trace((rc), __FILE__, __LINE__, __func__);                      \
            goto cleanup;                                                             \
        }                                                                             \
    } while (0)

/* Checked allocation: 64-byte aligned, zero-filled. Returns NULL with an error set. */
void *pep_alloc_(size_t bytes, const char *what, const char *file, int line, const char *func);
void pep_free(void *p);
/* `ptr = allocate n elements` or return PEP_ERR_NOMEM naming `ptr`. */
#define PEP_ALLOC(ptr, n)                                                                       \
    do {                                                                                        \
        (ptr) = pep_alloc_((size_t)(n) * sizeof(*(ptr)), #ptr, __FILE__, __LINE__, __func__);   \
        if (!(ptr)) return PEP_ERR_NOMEM;                                                       \
    } while (0)
#define PEP_ALLOC_GOTO(rc, ptr, n)                                                              \
    do {                                                                                        \
        (ptr) = pep_alloc_((size_t)(n) * sizeof(*(ptr)), #ptr, __FILE__, __LINE__, __func__);   \
        if (!(ptr)) { (rc) = PEP_ERR_NOMEM; goto cleanup; }                                     \
    } while (0)

/* Abort hook: called by pep_abort() for conditions that cannot be returned. The default
 * prints the message and the current error, then calls exit(code). */
typedef void (*pep_abort_fn)(int code, const char *msg, void *ud);
void pep_set_abort_hook(pep_abort_fn fn, void *ud);
_Noreturn void pep_abort(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Logging. Levels: errors always print (stderr); info/progress/debug go through the log
 * hook, which mpi/ replaces with one that keeps rank 0's lines only. */
enum pep_log_level { PEP_LOG_ERROR = 0, PEP_LOG_WARN = 1, PEP_LOG_INFO = 2, PEP_LOG_DEBUG = 3 };
typedef void (*pep_log_fn)(int level, const char *line, void *ud);
void pep_set_log_hook(pep_log_fn fn, void *ud);
void pep_set_log_level(int level);
int pep_log_level(void);
void pep_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define pep_info(...) pep_log(PEP_LOG_INFO, __VA_ARGS__)
#define pep_warn(...) pep_log(PEP_LOG_WARN, __VA_ARGS__)
#define pep_debug(...) pep_log(PEP_LOG_DEBUG, __VA_ARGS__)

#endif
