/* Error recording, checked allocation, abort and log hooks (see error.h). */
#include "core/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char err_msg[PEP_ERROR_MSG_MAX];
static _Thread_local char err_where[4096];
static _Thread_local int err_code;

static pep_abort_fn abort_fn;
static void *abort_ud;
static pep_log_fn log_fn;
static void *log_ud;
static int log_level = PEP_LOG_INFO;

int pep_error_set(int code, const char *file, int line, const char *func, const char *fmt, ...)
{
    if (err_code != PEP_OK) return pep_error_trace(code, file, line, func);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err_msg, sizeof err_msg, fmt, ap);
    va_end(ap);
    snprintf(err_where, sizeof err_where, "  at %s:%d %s()\n", file, line, func);
    err_code = code;
    return code;
}

int pep_error_trace(int code, const char *file, int line, const char *func)
{
    size_t used = strlen(err_where);
    if (used + 1 < sizeof err_where)
        snprintf(err_where + used, sizeof err_where - used, "  from %s:%d %s()\n", file, line, func);
    if (err_code == PEP_OK) {
        err_code = code;
        snprintf(err_msg, sizeof err_msg, "%s (no message recorded)", pep_status_name(code));
    }
    return code;
}

const char *pep_error_message(void) { return err_msg; }
const char *pep_error_where(void) { return err_where; }
int pep_error_code(void) { return err_code; }

void pep_error_clear(void)
{
    err_msg[0] = '\0';
    err_where[0] = '\0';
    err_code = PEP_OK;
}

const char *pep_status_name(int code)
{
    switch (code) {
    case PEP_OK: return "ok";
    case PEP_ERR_USAGE: return "usage error";
    case PEP_ERR_IO: return "I/O error";
    case PEP_ERR_FORMAT: return "format error";
    case PEP_ERR_NOMEM: return "out of memory";
    case PEP_ERR_NUMERIC: return "numerical error";
    case PEP_ERR_MPI: return "MPI error";
    case PEP_ERR_HDF5: return "HDF5 error";
    case PEP_ERR_INTERNAL: return "internal error";
    case PEP_ERR_INTERRUPTED: return "interrupted";
    default: return "unknown error";
    }
}

void *pep_alloc_(size_t bytes, const char *what, const char *file, int line, const char *func)
{
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded == 0) rounded = 64;
    void *p = NULL;
    if (posix_memalign(&p, 64, rounded) != 0 || !p) {
        pep_error_set(PEP_ERR_NOMEM, file, line, func,
                      "out of memory allocating %zu bytes for %s (reduce the batch size or model "
                      "size, or ask the scheduler for more memory per task)", bytes, what);
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void pep_free(void *p) { free(p); }

void pep_set_abort_hook(pep_abort_fn fn, void *ud)
{
    abort_fn = fn;
    abort_ud = ud;
}

void pep_abort(int code, const char *fmt, ...)
{
    char msg[PEP_ERROR_MSG_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (abort_fn) abort_fn(code, msg, abort_ud);
    fprintf(stderr, "peprime: fatal: %s\n", msg);
    if (err_code != PEP_OK) fprintf(stderr, "%s", err_where);
    fflush(stderr);
    exit(code ? code : 1);
}

void pep_set_log_hook(pep_log_fn fn, void *ud)
{
    log_fn = fn;
    log_ud = ud;
}

void pep_set_log_level(int level) { log_level = level; }
int pep_log_level(void) { return log_level; }

void pep_log(int level, const char *fmt, ...)
{
    if (level > log_level) return;
    char line[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (log_fn) {
        log_fn(level, line, log_ud);
        return;
    }
    FILE *f = level <= PEP_LOG_WARN ? stderr : stdout;
    fprintf(f, "%s%s\n", level == PEP_LOG_WARN ? "warning: " : level == PEP_LOG_ERROR ? "error: " : "", line);
    fflush(f);
}
