/* The progress watchdog in one process: the bound rule (fixed, auto, off), heartbeat files
 * (round trip, missing, foreign, incomplete), which ranks are blamed (a stopped rank, a rank
 * stuck outside a collective, a deadlock, a missing file, unreadable files), the message, the
 * deferral to a lower firing rank, and the threads themselves: no firing while heartbeats
 * come, firing with the message once they stop (a fire hook instead of MPI_Abort), the file
 * written, the measured step time feeding the auto bound. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/error.h"
#include "testutil.h"
#include "watchdog.h"

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(long)s) * 1e9)};
    nanosleep(&ts, NULL);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct pep_heartbeat record(int rank, long step, const char *phase, int waiting, double beat, double alive)
{
    struct pep_heartbeat hb;
    memset(&hb, 0, sizeof hb);
    hb.rank = rank;
    hb.pid = 40 + rank;
    snprintf(hb.host, sizeof hb.host, "node%d", rank);
    snprintf(hb.unit, sizeof hb.unit, "meta-step");
    hb.step = step;
    snprintf(hb.phase, sizeof hb.phase, "%s", phase);
    hb.waiting = waiting;
    hb.beat = beat;
    hb.alive = alive;
    return hb;
}

static void test_watchdog_bound_rule(void **state)
{
    assert_true(pep_watchdog_bound(5.0, 0, 0.0) == 5.0);
    assert_true(pep_watchdog_bound(5.0, 10, 100.0) == 5.0); /* a fixed bound ignores the step times */
    assert_true(pep_watchdog_bound(-1.0, 10, 1.0) < 0);
    assert_true(pep_watchdog_bound(0.0, 0, 0.0) == PEP_WATCHDOG_FIRST_S);
    assert_true(pep_watchdog_bound(0.0, 3, 0.5) == PEP_WATCHDOG_FLOOR_S);
    assert_true(pep_watchdog_bound(0.0, 3, 20.0) == PEP_WATCHDOG_STEPS * 20.0);
    assert_true(pep_heartbeat_write_every(5.0) == 0.5);
    assert_true(pep_heartbeat_write_every(2.0) == 0.5);
    assert_true(pep_heartbeat_write_every(600.0) == 10.0);
    assert_true(pep_heartbeat_stale_after(5.0) == 2.5);
    /* a stopped rank is told from a running one well inside the bound */
    assert_true(pep_heartbeat_stale_after(5.0) < 5.0 && pep_heartbeat_stale_after(600.0) < 600.0);
}

static void test_watchdog_file_round_trip(void **state)
{
    const char *dir = pep_test_tmpdir("watchdog_files");
    struct pep_heartbeat a = record(3, 31, "task 1 of 4 (language bb)", 0, 1764712345.5, 1764712349.25), b;
    assert_int_equal(pep_heartbeat_write(dir, &a), PEP_OK);
    assert_int_equal(pep_heartbeat_read(dir, 3, &b), PEP_OK);
    assert_int_equal(b.rank, 3);
    assert_int_equal(b.pid, 43);
    assert_string_equal(b.host, "node3");
    assert_string_equal(b.unit, "meta-step");
    assert_int_equal(b.step, 31);
    assert_string_equal(b.phase, "task 1 of 4 (language bb)");
    assert_int_equal(b.waiting, 0);
    assert_true(b.beat == 1764712345.5 && b.alive == 1764712349.25);
    char path[PEP_TEST_PATH_MAX];
    snprintf(path, sizeof path, "%s/rank-3.tmp", dir);
    assert_int_equal(access(path, F_OK), -1); /* renamed, not left behind */
    /* missing; another rank's record under this name; a record cut short */
    assert_int_equal(pep_heartbeat_read(dir, 4, &b), PEP_ERR_IO);
    pep_error_clear();
    pep_test_write_file(dir, "rank-5", "rank 3\npid 1\nhost h\nunit step\nstep 1\nphase x\nwaiting 0\nbeat 1\nalive 1\n");
    assert_int_equal(pep_heartbeat_read(dir, 5, &b), PEP_ERR_FORMAT);
    pep_error_clear();
    pep_test_write_file(dir, "rank-6", "rank 6\npid 1\nhost h\nunit step\nstep 1\n");
    assert_int_equal(pep_heartbeat_read(dir, 6, &b), PEP_ERR_FORMAT);
    pep_error_clear();
    char text[256];
    pep_heartbeat_describe(&a, text, sizeof text);
    assert_string_equal(text, "meta-step 31, task 1 of 4 (language bb)");
    a.step = 0;
    pep_heartbeat_describe(&a, text, sizeof text);
    assert_string_equal(text, "task 1 of 4 (language bb)");
}

/* A view of 4 ranks from rank 0 at time `now` (bound 5 s: stale after 2.5 s). */
static struct pep_watchdog_view view4(const struct pep_heartbeat *files, const int *have, double now)
{
    struct pep_watchdog_view v = {.self = &files[0], .files = files, .have = have, .size = 4, .now = now,
                                  .bound = 5.0, .setting = 5.0, .exit_code = PEP_EXIT_HUNG, .files_read = 1,
                                  .dir = "out/.heartbeat"};
    return v;
}

static void expect_blame(const struct pep_watchdog_view *v, int n, const int *want)
{
    int blame[8], nb = -1;
    pep_watchdog_blame(v, blame, &nb);
    assert_int_equal(nb, n);
    for (int i = 0; i < n; i++) assert_int_equal(blame[i], want[i]);
}

static void test_watchdog_blame(void **state)
{
    double t = 1000.0;
    int have[4] = {1, 1, 1, 1};
    /* rank 2 stopped: its file is 5.3 s old; the others wait in the exchange, files fresh */
    struct pep_heartbeat f[4] = {record(0, 23, "meta-gradient exchange", 1, t - 5.2, t),
                                 record(1, 23, "meta-gradient exchange", 1, t - 5.1, t - 0.3),
                                 record(2, 21, "loss sum", 1, t - 5.3, t - 5.3),
                                 record(3, 23, "meta-gradient exchange", 1, t - 5.0, t - 0.1)};
    struct pep_watchdog_view v = view4(f, have, t);
    expect_blame(&v, 1, (int[]){2});
    /* rank 1 runs but is stuck in a task while the others wait for it, even if its last
     * heartbeat is newer than theirs */
    f[2] = record(2, 23, "meta-gradient exchange", 1, t - 5.3, t - 0.2);
    f[1] = record(1, 23, "task 1 of 4 (language bb)", 0, t - 5.0, t - 0.2);
    expect_blame(&v, 1, (int[]){1});
    /* a deadlock: every rank waits; the oldest progress (within 1 s) is blamed */
    f[1].waiting = 1;
    f[1].beat = t - 9.0, f[3].beat = t - 8.5;
    expect_blame(&v, 2, (int[]){1, 3});
    /* a rank without a readable file */
    have[3] = 0;
    expect_blame(&v, 1, (int[]){3});
    /* the files could not be read: only this rank is known */
    v.files_read = 0;
    expect_blame(&v, 1, (int[]){0});
}

static void test_watchdog_message(void **state)
{
    double t = 1000.0;
    int have[4] = {1, 1, 1, 1};
    struct pep_heartbeat f[4] = {record(0, 23, "meta-gradient exchange", 1, t - 5.2, t),
                                 record(1, 23, "meta-gradient exchange", 1, t - 5.1, t - 0.3),
                                 record(2, 21, "loss sum", 1, t - 5.3, t - 5.3),
                                 record(3, 23, "meta-gradient exchange", 1, t - 5.0, t - 0.1)};
    struct pep_watchdog_view v = view4(f, have, t);
    char msg[4096];
    pep_watchdog_message(&v, msg, sizeof msg);
    assert_non_null(strstr(msg, "rank 2 (pid 42 on node2) has not run for 5.3 s (stopped, e.g. by SIGSTOP"));
    assert_non_null(strstr(msg, "its last heartbeat, written every 0.5 s: meta-step 21, loss sum, 5.3 s ago"));
    assert_non_null(strstr(msg, "this rank (0) has waited for it 5.2 s at meta-step 23, meta-gradient exchange"));
    assert_non_null(strstr(msg, "longer than run.watchdog_s = 5 s"));
    assert_non_null(strstr(msg, "ending the job (MPI_Abort, exit status 76)"));
    assert_null(strstr(msg, "rank 1"));
    /* a rank stuck outside any collective; the auto bound is spelled out */
    f[2] = record(2, 23, "writing checkpoint prime-step00000020.h5", 0, t - 700.0, t - 1.0);
    v.setting = 0.0, v.bound = 600.0;
    pep_watchdog_message(&v, msg, sizeof msg);
    assert_non_null(strstr(msg, "rank 2 (pid 42 on node2) made no progress for 700.0 s, at meta-step 23, writing "
                                "checkpoint prime-step00000020.h5 (it still runs, but its main thread is stuck"));
    assert_non_null(strstr(msg, "bound of 600 s (run.watchdog_s = 0, auto: 1800 s until the first step ends, then "
                                "max(600 s, 50 x the slowest step))"));
    /* the files could not be read */
    v.files_read = 0;
    pep_watchdog_message(&v, msg, sizeof msg);
    assert_non_null(strstr(msg, "rank 0 (this rank, pid 40 on node0) made no progress for 5.2 s"));
    assert_non_null(strstr(msg, "could not be read in time"));
    /* a short buffer is cut, never overrun */
    char tiny[32];
    pep_watchdog_message(&v, tiny, sizeof tiny);
    assert_int_equal(strlen(tiny), sizeof tiny - 1);
}

static void test_watchdog_defer(void **state)
{
    double t = 1000.0;
    int have[4] = {1, 1, 1, 1};
    struct pep_heartbeat f[4] = {record(0, 23, "meta-gradient exchange", 1, t - 5.2, t),
                                 record(1, 23, "meta-gradient exchange", 1, t - 5.1, t - 0.3),
                                 record(2, 21, "loss sum", 1, t - 5.3, t - 5.3),
                                 record(3, 23, "meta-gradient exchange", 1, t - 5.0, t - 0.1)};
    struct pep_watchdog_view v = view4(f, have, t);
    assert_int_equal(pep_watchdog_defer_to(&v), -1); /* rank 0 speaks */
    v.self = &f[3];
    assert_int_equal(pep_watchdog_defer_to(&v), 0);
    f[0].alive = t - 10.0; /* rank 0 stopped too: rank 1 speaks */
    assert_int_equal(pep_watchdog_defer_to(&v), 1);
    f[1].beat = t - 1.0; /* rank 1 is still progressing: it will not fire soon */
    assert_int_equal(pep_watchdog_defer_to(&v), -1);
}

/* The fire hook: the message, once. */
static pthread_mutex_t fired_mu = PTHREAD_MUTEX_INITIALIZER;
static char fired_msg[8192];
static int fired;

static void on_fire(const char *msg, void *ud)
{
    pthread_mutex_lock(&fired_mu);
    snprintf(fired_msg, sizeof fired_msg, "%s", msg);
    fired++;
    pthread_mutex_unlock(&fired_mu);
}

static int fired_count(void)
{
    pthread_mutex_lock(&fired_mu);
    int n = fired;
    pthread_mutex_unlock(&fired_mu);
    return n;
}

static void test_watchdog_threads(void **state)
{
    const char *tmp = pep_test_tmpdir("watchdog_threads");
    char dir[PEP_TEST_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/.heartbeat", tmp);
    /* rank 1 of this 2-rank view stopped long ago */
    assert_int_equal(mkdir(dir, 0755), 0);
    struct pep_heartbeat other = record(1, 3, "task 1 of 4 (language bb)", 0, wall_now() - 60, wall_now() - 60);
    assert_int_equal(pep_heartbeat_write(dir, &other), PEP_OK);
    struct pep_watchdog_opts o = {.setting = 0.8, .dir = dir, .unit = "meta-step", .rank = 0, .size = 2,
                                  .fire = on_fire};
    struct pep_watchdog *w = NULL;
    assert_int_equal(pep_watchdog_create(&o, &w), PEP_OK);
    assert_non_null(w);
    struct pep_watchdog *second = NULL;
    assert_int_equal(pep_watchdog_create(&o, &second), PEP_ERR_INTERNAL); /* one per process */
    pep_error_clear();
    /* heartbeats every 0.1 s for 2 s: more than twice the bound, no firing */
    for (int i = 0; i < 20; i++) {
        pep_heartbeat(i / 5 + 1, "task %d of 4 (language aa)", i % 4);
        pep_heartbeat_detail("batch %d", i);
        sleep_s(0.1);
    }
    assert_int_equal(fired_count(), 0);
    pep_heartbeat_wait(-1, "meta-gradient exchange");
    sleep_s(0.6); /* one write interval (0.5 s), less than the bound */
    assert_int_equal(fired_count(), 0);
    struct pep_heartbeat mine;
    assert_int_equal(pep_heartbeat_read(dir, 0, &mine), PEP_OK); /* written by the writer thread */
    assert_int_equal(mine.step, 4);
    assert_int_equal(mine.waiting, 1);
    assert_string_equal(mine.phase, "meta-gradient exchange");
    assert_int_equal(mine.pid, (long)getpid());
    for (int i = 0; i < 50 && fired_count() == 0; i++) sleep_s(0.1);
    assert_int_equal(fired_count(), 1);
    assert_non_null(strstr(fired_msg, "rank 1 (pid 41 on node1) has not run for"));
    assert_non_null(strstr(fired_msg, "meta-step 3, task 1 of 4 (language bb)"));
    assert_non_null(strstr(fired_msg, "this rank (0) has waited for it"));
    assert_non_null(strstr(fired_msg, "at meta-step 4, meta-gradient exchange"));
    pep_watchdog_destroy(&w);
    assert_null(w);
    pep_watchdog_destroy(&w); /* NULL-safe */
    pep_heartbeat(1, "no watchdog: a no-op");
}

static void test_watchdog_off_and_auto(void **state)
{
    const char *tmp = pep_test_tmpdir("watchdog_auto");
    char dir[PEP_TEST_PATH_MAX];
    snprintf(dir, sizeof dir, "%s/.heartbeat", tmp);
    struct pep_watchdog_opts o = {.setting = -1, .dir = dir, .unit = "step", .rank = 0, .size = 1};
    struct pep_watchdog *w = (struct pep_watchdog *)&o; /* overwritten */
    assert_int_equal(pep_watchdog_create(&o, &w), PEP_OK);
    assert_null(w);
    assert_int_equal(access(dir, F_OK), -1); /* off: no folder either */
    o.setting = 0;
    assert_int_equal(pep_watchdog_create(&o, &w), PEP_OK);
    assert_true(pep_watchdog_current_bound(w) == PEP_WATCHDOG_FIRST_S);
    pep_heartbeat(1, "forward and backward");
    pep_heartbeat(1, "optimizer step");
    assert_true(pep_watchdog_current_bound(w) == PEP_WATCHDOG_FIRST_S); /* step 1 not over yet */
    pep_heartbeat(2, "forward and backward");
    assert_true(pep_watchdog_current_bound(w) == PEP_WATCHDOG_FLOOR_S);
    pep_watchdog_destroy(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watchdog_bound_rule),
        cmocka_unit_test(test_watchdog_file_round_trip),
        cmocka_unit_test(test_watchdog_blame),
        cmocka_unit_test(test_watchdog_message),
        cmocka_unit_test(test_watchdog_defer),
        cmocka_unit_test(test_watchdog_threads),
        cmocka_unit_test(test_watchdog_off_and_auto),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
