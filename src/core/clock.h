/* The one wall clock of the project: seconds on the monotonic clock, for step times, progress
 * lines and benchmarks (differences only; the origin is arbitrary). */
#ifndef PEP_CLOCK_H
#define PEP_CLOCK_H

/* Seconds since an arbitrary fixed point (CLOCK_MONOTONIC). */
double pep_now_s(void);
/* CPU seconds the calling thread has used (CLOCK_THREAD_CPUTIME_ID): a cost that a shared,
 * oversubscribed machine's scheduling does not inflate, for the outer step's report. */
double pep_thread_cpu_s(void);

#endif
