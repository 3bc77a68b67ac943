/* src/optim's learning-rate schedules against PyTorch's: pep_optim_lr_at for every step of
 * the cases tests/ref/schedule_ref.py builds from torch.optim.lr_scheduler (linear warm-up,
 * then constant, linear or cosine decay with and without a floor), each also checked there
 * against the Hugging Face formulas.
 *
 * Usage: test_schedule_parity SCHEDULE.csv (schedule_ref.py make-fixture) */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "core/error.h"
#include "optim/optim.h"
#include "testutil.h"

static const char *fixture;

static void test_schedule_matches_torch(void **st)
{
    FILE *f = fopen(fixture, "r");
    if (!f) fail_msg("cannot read %s (made by tests/ref/schedule_ref.py make-fixture)", fixture);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    int rows = 0, bad = 0;
    double worst = 0;
    while (fgets(line, sizeof line, f)) {
        char sched[32];
        double lr, ratio, expect;
        int warmup, steps;
        long t;
        if (sscanf(line, "%31[^,],%lf,%d,%d,%lf,%ld,%lf", sched, &lr, &warmup, &steps, &ratio, &t, &expect) != 7)
            fail_msg("%s: bad row '%s'", fixture, line);
        struct pep_config cfg;
        pep_config_defaults(&cfg);
        strcpy(cfg.optim.schedule, sched);
        cfg.optim.lr = (float)lr, cfg.optim.warmup = warmup, cfg.optim.steps = steps;
        cfg.optim.min_lr_ratio = (float)ratio;
        struct pep_optim o;
        assert_int_equal(pep_optim_from_config(&cfg, &o), PEP_OK);
        assert_int_equal(pep_optim_init(&o, 0, 1), PEP_OK);
        double got = pep_optim_lr_at(&o, t);
        pep_optim_fini(&o);
        /* the rate is a float32: 1e-6 of the peak rate, plus float rounding of the value */
        double err = fabs(got - expect), tol = 1e-6 * lr + 1e-6 * fabs(expect);
        if (err / lr > worst) worst = err / lr;
        if (err > tol && bad++ < 10)
            print_error("%s lr %g warmup %d steps %d min_lr_ratio %g: step %ld rate %.9g, torch %.9g\n", sched, lr,
                        warmup, steps, ratio, t, got, expect);
        rows++;
    }
    fclose(f);
    print_message("%d rates compared, largest difference %.2e of the peak rate\n", rows, worst);
    assert_true(rows > 100);
    assert_int_equal(bad, 0);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SCHEDULE.csv\n", argv[0]);
        return 2;
    }
    fixture = argv[1];
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_schedule_matches_torch)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
