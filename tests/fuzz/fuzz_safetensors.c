/* libFuzzer harness for the safetensors reader (and the JSON reader under it): any input must
 * either be rejected with PEP_ERR_FORMAT or open into tensors that read without fault.
 * Build: see tests/fuzz/CMakeLists.txt (clang, -DPEP_FUZZ=ON) or docs/import-hf.md. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/error.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pep_safetensors_t *st = NULL;
    pep_error_clear();
    int rc = pep_safetensors_open_memory(data, size, "fuzz", &st);
    if (rc != PEP_OK) {
        if (rc != PEP_ERR_FORMAT && rc != PEP_ERR_NOMEM) abort();
        pep_error_clear();
        return 0;
    }
    for (int i = 0; i < pep_safetensors_count(st); i++) {
        const struct pep_st_tensor *t = pep_safetensors_tensor(st, i);
        if (t->numel > ((size_t)1 << 20)) continue;
        float *out = malloc((t->numel ? t->numel : 1) * sizeof *out);
        if (!out) break;
        pep_error_clear();
        if (pep_safetensors_read_f32(st, i, out, t->numel) != PEP_OK &&
            (t->dtype == PEP_ST_DTYPE_F32 || t->dtype == PEP_ST_DTYPE_F16 || t->dtype == PEP_ST_DTYPE_BF16))
            abort();
        free(out);
    }
    pep_error_clear();
    pep_safetensors_close(&st);
    return 0;
}
