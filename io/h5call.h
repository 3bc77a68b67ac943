/* Check macros for HDF5 calls: a failing call (negative herr_t / hid_t) records a peprime
 * error and jumps to the function's `cleanup` label. HDF5's default error handler has
 * already printed its own error stack to stderr at that point (useful when the failure is
 * unexpected); where a failure is an expected user error (foreign file, missing dataset),
 * wrap the call in H5E_BEGIN_TRY / H5E_END_TRY and report it with PEP_CHECK_GOTO instead. */
#ifndef PEP_H5CALL_H
#define PEP_H5CALL_H

#include <hdf5.h>

#include "core/error.h"

#define PEP_CALL_H5_GOTO(rc, expr, ...)                                                   \
    do {                                                                                  \
        if ((int64_t)(expr) < 0) {                                                        \
            (rc) = pep_error_set(PEP_ERR_HDF5, __FILE__, __LINE__, __func__, __VA_ARGS__); \
            goto cleanup;                                                                 \
        }                                                                                 \
    } while (0)

/* Assigns a new handle and checks it: `PEP_H5_ID_GOTO(rc, id, H5Dopen2(...), "msg")`. */
#define PEP_H5_ID_GOTO(rc, id, expr, ...) PEP_CALL_H5_GOTO(rc, (id) = (expr), __VA_ARGS__)

/* Closes a handle if valid and resets it (for cleanup labels). */
#define PEP_H5_CLOSE(fn, id)               \
    do {                                   \
        if ((id) >= 0) {                   \
            H5E_BEGIN_TRY { fn(id); }      \
            H5E_END_TRY;                   \
            (id) = H5I_INVALID_HID;        \
        }                                  \
    } while (0)

#endif
