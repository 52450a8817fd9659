/* test_fuzz.c - every input the fuzzers found (tests/fuzz/regressions/HARNESS/)
 * run once more through its harness (docs/fuzzing.md), built without libFuzzer
 * as NNCC_BUILD/fuzz/replay_HARNESS: it must end normally, under make test
 * SAN=1 with ASan and UBSan watching. Seconds, not a fuzzing run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include <dirent.h>

#define REGRESSIONS "tests/fuzz/regressions"

static void replay_harness(const char *harness)
{
    char dir[512];
    snprintf(dir, sizeof dir, REGRESSIONS "/%s", harness);
    RunResult r;
    run_cmd(&r, "%s/fuzz/replay_%s %s/*", build_dir(), harness, dir);
    if (r.status != 0)
        fprintf(stderr, "%s\n", r.out);
    assert_int_equal(r.status, 0);
}

/* Every folder of inputs, so that a new harness's findings are replayed
 * without a line here; and at least one, so that a moved folder fails. */
static void test_every_regression_replays(void **state)
{
    (void)state;
    DIR *d = opendir(REGRESSIONS);
    assert_non_null(d);
    int harnesses = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.')
            continue;
        fprintf(stderr, "replaying %s/%s\n", REGRESSIONS, e->d_name);
        replay_harness(e->d_name);
        harnesses++;
    }
    closedir(d);
    assert_true(harnesses > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_regression_replays),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
