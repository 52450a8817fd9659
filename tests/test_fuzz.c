/* test_fuzz.c - every input the fuzzers found (tests/fuzz/regressions/HARNESS/)
 * run once more through its harness (docs/fuzzing.md), built without libFuzzer
 * as NNCC_BUILD/fuzz/replay_HARNESS: it must end normally, under make test
 * SAN=1 with ASan and UBSan watching. Seconds, not a fuzzing run. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static char scratch[64];

#include "testutil.h"
#include "rt.h"

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

/* What fuzz_image found: a JPEG whose Huffman table (DHT) declares 257 codes,
 * which stb_image 2.27 would write past its tables. The harness's input is
 * two settings bytes and then the file. */
static void test_jpeg_with_a_huffman_table_of_257_codes_is_refused(void **state)
{
    (void)state;
    make_scratch(scratch, sizeof scratch);
    FILE *in = fopen(REGRESSIONS "/image/jpeg-huffman-table-of-257-codes", "rb");
    assert_non_null(in);
    static char bytes[1 << 16];
    size_t len = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    assert_true(len > 2 && (unsigned char)bytes[2] == 0xFF && (unsigned char)bytes[3] == 0xD8);
    char path[128];
    snprintf(path, sizeof path, "%s/bad.jpg", scratch);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(bytes + 2, 1, len - 2, out), len - 2);
    fclose(out);

    uint8_t px[4 * 4 * 3];
    capture_stderr();
    assert_int_equal(nn_load_image_file(path, 4, 4, 3, px), -1);
    char expected[256];
    snprintf(expected, sizeof expected,
             "%s: error: cannot decode image: a JPEG Huffman table of more than 256 codes\n", path);
    assert_string_equal(captured(), expected);
    int h, w;
    assert_int_equal(nn_image_file_size(path, &h, &w), -1);
    rm_tree(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_regression_replays),
        cmocka_unit_test(test_jpeg_with_a_huffman_table_of_257_codes_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
