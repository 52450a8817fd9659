/* test_ref.c - nncc against PyTorch: the reference fixtures of tests/ref/.
 *
 * What it is for: tests/ref/gen.py (run by `make fixtures`, not by `make test`)
 * computes every layer kind, activation, loss and optimizer with PyTorch or
 * Keras's published formulas and commits the numbers as tests/ref/NAME.npz, with
 * the model they are about as tests/ref/NAME.yaml. This test runs one CMocka
 * test per fixture it finds: `nncc NAME.yaml --no-main`, that C built with
 * tests/ref/driver.c as the Makefile builds trainers (under SAN=1 with ASan and
 * UBSan), and the driver run on the fixture: outputs, input gradients,
 * parameter gradients and moving statistics at batch sizes 1, 5, 6, 7 and 13,
 * losses and their gradients, optimizer steps, each to 1e-5 (driver.c says why).
 *
 * Then, so that no comparison passes vacuously, the driver runs again once for
 * each family of arrays it compared (y, dx, each tensor's grad and after, the
 * loss's value and gradient, each optimizer result; up to 12), with one value of
 * the first array of that family moved by 1e-3: each of those runs must fail.
 *
 * How to add a fixture: a line in gen.py's tables and `make fixtures`; nothing
 * here. A fixture on which nncc is known to disagree with the reference is
 * listed, with the reason, in tests/ref/known_failures ("NAME reason" per line):
 * it is reported as KNOWN FAILURE with its mismatches on every run, and the test
 * fails if it starts to agree (so that the list is kept true).
 *
 * REF_ONLY=NAME (a shell pattern, e.g. 'conv_*') runs only the fixtures it matches.
 *
 * The Conv2D fixtures (conv_*, not conv_transpose_*) run four times: as nncc's
 * cost rule chooses between the direct convolution and Winograd's, and with
 * NNCC_WINOGRAD=2x2, =4x4 and =never, so that every way stays checked on every
 * shape that Winograd applies to (3x3, stride 1; same and valid padding, sizes
 * that are not multiples of the tile).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include "rt.h"

#include <fnmatch.h>
#include <glob.h>
#include <stdbool.h>

#define REF_DIR "tests/ref"

typedef struct {
    char name[96];
    char npz[256];
    bool layer;            /* has x: the driver needs the feed layer's offsets */
    const char *winograd;  /* NNCC_WINOGRAD for nncc: auto, 2x2, 4x4, never */
    char test_name[128];
} Fixture;

/* The reason nncc is known to disagree on this fixture, or NULL. */
static const char *known_failure(const char *name, char *reason, size_t len)
{
    FILE *f = fopen(REF_DIR "/known_failures", "r");
    char line[512];
    const char *found = NULL;
    size_t n = strlen(name);
    while (f && !found && fgets(line, sizeof line, f))
        if (line[0] != '#' && strncmp(line, name, n) == 0 && (line[n] == ' ' || line[n] == '\t')) {
            snprintf(reason, len, "%s", line + n + 1);
            reason[strcspn(reason, "\n")] = '\0';
            found = reason;
        }
    if (f)
        fclose(f);
    return found;
}

/* Prints the lines of out that start with one of the prefixes. */
static void print_lines(const char *out, const char *const *prefixes)
{
    for (const char *p = out; *p;) {
        const char *end = strchr(p, '\n');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        for (const char *const *q = prefixes; *q; q++)
            if (strncmp(p, *q, strlen(*q)) == 0) {
                printf("    %.*s\n", (int)len, p);
                break;
            }
        p += len + (end != NULL);
    }
}

/* Whether the C file path runs a layer by Winograd's F(4x4, 3x3). */
static bool has_winograd_4x4(const char *path)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    bool found = false;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, "Winograd F(4x4, 3x3)") != NULL;
    fclose(f);
    return found;
}

/* nncc NAME.yaml --no-main, and the driver built around it, in dir. F(4x4,
 * 3x3)'s transforms scale values by up to 8 and 1/24, and its float32
 * rounding reaches 3e-5 of them: such a model is held to issue 15's bound for
 * Winograd, 1e-4 (driver.c's REF_TOL), every other to 1e-5. */
static void build_driver(const Fixture *fx, const char *dir)
{
    RunResult r;
    char c_file[600];
    run_cmd(&r, "NNCC_WINOGRAD=%s %s %s/%s.yaml --no-main -o %s/m.c", fx->winograd, nncc_path(),
            REF_DIR, fx->name, dir);
    if (r.status != 0)
        fail_msg("nncc %s/%s.yaml failed:\n%s", REF_DIR, fx->name, r.out);
    bool sanitize = strcmp(san(), "1") == 0;
    snprintf(c_file, sizeof c_file, "%s/m.c", dir);
    run_cmd(&r,
            "cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fopenmp %s -Iruntime "
            "-DREF_C='\"%s/m.c\"' -DREF_MODEL=%s_model -DREF_LAYER=%d -DREF_TOL=%s -o %s/drv "
            REF_DIR "/driver.c %s/libnnrt.a " TRAINER_LIBS,
            sanitize ? "-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer "
                       "-fno-sanitize-recover=undefined"
                     : "-O3 -march=native -ffp-contract=fast",
            dir, fx->name, fx->layer, has_winograd_4x4(c_file) ? "1e-4" : "1e-5", dir,
            build_dir());
    if (r.status != 0)
        fail_msg("the driver for %s did not build:\n%s", fx->name, r.out);
}

/* The first array compared of each family (its name up to '@': y, dx,
 * grad.probe.kernel, loss.dout, opt.after1.dense.bias, ...), from the driver's
 * check lines "check WHAT (ARRAY) ...". */
static int arrays_to_perturb(const char *out, char names[][160], int max)
{
    int count = 0;
    for (const char *p = strstr(out, "check "); p && count < max; p = strstr(p + 1, "\ncheck ")) {
        const char *open = strchr(p, '('), *close = open ? strchr(open, ')') : NULL;
        if (!close || close - open - 1 >= 160)
            continue;
        char name[160];
        snprintf(name, sizeof name, "%.*s", (int)(close - open - 1), open + 1);
        size_t kind = strcspn(name, "@");
        bool seen = false;
        for (int i = 0; i < count && !seen; i++)
            seen = strncmp(names[i], name, kind) == 0 && strchr("@", names[i][kind]);
        if (!seen)
            snprintf(names[count++], 160, "%s", name);
    }
    return count;
}

static void check_fixture(void **state)
{
    const Fixture *fx = *state;
    char dir[64], reason[400];
    make_scratch(dir, sizeof dir);
    build_driver(fx, dir);

    static RunResult r;
    run_cmd(&r, "%s/drv %s", dir, fx->npz);
    const char *known = known_failure(fx->name, reason, sizeof reason);
    static const char *const summary[] = {"result:", "move share:", NULL};
    static const char *const failing[] = {"  FAIL", "FAIL", "result:", NULL};
    if (known) {
        rm_tree(dir);
        if (r.status == 0)
            fail_msg("%s is listed in %s/known_failures (%s) but now agrees with the "
                     "reference: take it off the list\n%s", fx->name, REF_DIR, known, r.out);
        printf("  KNOWN FAILURE %s: %s\n", fx->name, known);
        print_lines(r.out, failing);
        fflush(stdout);
        return;
    }
    if (r.status != 0) {
        rm_tree(dir);
        print_lines(r.out, failing);
        fflush(stdout);
        fail_msg("%s disagrees with the reference (status %d): the lines above", fx->name,
                 r.status);
    }
    print_lines(r.out, summary);

    char names[12][160];
    int n = arrays_to_perturb(r.out, names, 12);
    assert_true(n > 0);
    for (int i = 0; i < n; i++) {
        static RunResult bad;
        run_cmd(&bad, "%s/drv %s '%s'", dir, fx->npz, names[i]);
        if (bad.status != 1 || !strstr(bad.out, "FAIL")) {
            rm_tree(dir);
            fail_msg("%s: with %s perturbed the driver still passes (status %d):\n%s",
                     fx->name, names[i], bad.status, bad.out);
        }
    }
    printf("    (and fails with one value of each of");
    for (int i = 0; i < n; i++)
        printf(" %s", names[i]);
    printf(" perturbed)\n");
    rm_tree(dir);
}

static void no_fixtures(void **state)
{
    (void)state;
    fail_msg("no fixtures in %s (run make fixtures)", REF_DIR);
}

int main(void)
{
    glob_t g;
    if (glob(REF_DIR "/*.npz", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
        const struct CMUnitTest none[] = {cmocka_unit_test(no_fixtures)};
        return cmocka_run_group_tests(none, NULL, NULL);
    }
    const char *only = getenv("REF_ONLY");
    static const char *const winograd[] = {"auto", "2x2", "4x4", "never"};
    enum { WAYS = sizeof winograd / sizeof *winograd };
    size_t count = 0;
    Fixture *fixtures = calloc(WAYS * g.gl_pathc, sizeof *fixtures);
    struct CMUnitTest *tests = calloc(WAYS * g.gl_pathc, sizeof *tests);
    assert_non_null(fixtures);
    assert_non_null(tests);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        Fixture *fx = &fixtures[count];
        const char *base = strrchr(g.gl_pathv[i], '/') + 1;
        snprintf(fx->name, sizeof fx->name, "%.*s", (int)(strlen(base) - 4), base);
        if (only && *only && fnmatch(only, fx->name, 0) != 0)
            continue;
        snprintf(fx->npz, sizeof fx->npz, "%s", g.gl_pathv[i]);
        nn_array *arrays;
        int n;
        if (nn_npz_read(fx->npz, &arrays, &n) == 0) {
            fx->layer = nn_npz_find(arrays, n, "x") != NULL;
            nn_npz_free(arrays, n);
        }
        bool conv2d = strncmp(fx->name, "conv_", 5) == 0 &&
                      strncmp(fx->name, "conv_transpose_", 15) != 0;
        for (int w = 0; w < (conv2d ? WAYS : 1); w++) {
            Fixture *run = &fixtures[count];
            if (w)
                *run = *fx;
            run->winograd = winograd[w];
            snprintf(run->test_name, sizeof run->test_name, "%s%s%s", run->name,
                     w ? " NNCC_WINOGRAD=" : "", w ? winograd[w] : "");
            tests[count++] = (struct CMUnitTest){.name = run->test_name,
                                                 .test_func = check_fixture,
                                                 .initial_state = run};
        }
    }
    globfree(&g);
    int failed = _cmocka_run_group_tests("test_ref", tests, count, NULL, NULL);
    free(tests);
    free(fixtures);
    return failed;
}
