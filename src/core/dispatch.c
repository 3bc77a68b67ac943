/* The code path the PEP_DISPATCH loops take on this CPU (dispatch.h). GCC's resolvers ask
 * the same question with the same builtin, so the answer is the clone that runs. */
#include "core/dispatch.h"

const char *pep_dispatch_path(void)
{
#ifdef PEP_DISPATCH_CLONES
    __builtin_cpu_init();
    if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4 (AVX-512)";
    if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3 (AVX2+FMA)";
    return "x86-64 (baseline)";
#else
    return "native";
#endif
}
