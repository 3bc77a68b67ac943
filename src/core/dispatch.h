/* PEP_DISPATCH marks the element-wise and row loops of our own (activations, LayerNorm,
 * attention's softmax, the loss, dropout, embeddings, the optimizers' updates, the
 * meta-gradient's axpys): in the default portable build each is compiled three times, for
 * x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the x86-64 baseline, and the dynamic loader
 * picks the one this CPU runs (GCC function multiversioning: an ifunc resolved once at start-up).
 * Everything else is compiled for the baseline, so the binary runs on any x86-64 node
 * (tests/portable/: portable_isa.py checks the instructions, portable_cpus.sh runs the
 * kernels' tests on emulated older CPUs); the big GEMMs are OpenBLAS's, which dispatches on
 * its own. A build for one CPU (-DPEP_NATIVE=ON: -march=native) or a compiler without
 * target_clones compiles each loop once (PEP_DISPATCH_CLONES undefined: the macro is empty). */
#ifndef PEP_CORE_DISPATCH_H
#define PEP_CORE_DISPATCH_H

#ifdef PEP_DISPATCH_CLONES
#define PEP_DISPATCH __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define PEP_DISPATCH
#endif

/* Which code this process runs for the PEP_DISPATCH loops, for --version and logs:
 * "x86-64-v4 (AVX-512)", "x86-64-v3 (AVX2+FMA)", "x86-64 (baseline)", or "native" when the
 * build was made for one CPU (-march=native). */
const char *pep_dispatch_path(void);

#endif
