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

/* What fuzz_image found, refused by name. The harness's input is two
 * settings bytes and then the file. */
typedef struct {
    const char *input;       /* under tests/fuzz/regressions/ */
    const char *why;         /* after "PATH: error: " */
} Refusal;

static const Refusal image_refusals[] = {
    /* stb_image 2.27 would write past its Huffman tables */
    {"image/jpeg-huffman-table-of-257-codes",
     "cannot decode image: a JPEG Huffman table of more than 256 codes"},
    /* stb would allocate the chunk's claimed 1 GB before reading it */
    {"image/png-72-bytes-idat-chunk-claiming-1gb",
     "cannot decode image: a PNG chunk longer than the file"},
    /* stb's TGA test took 440 bytes of noise for a 65496 x 224 image */
    {"image/tga-440-bytes-claiming-65496x224-pixels",
     "cannot decode image: not a PNG, JPEG, BMP, GIF or PPM file"},
    /* stb reads the header's numbers into an int without a bound */
    {"image/ppm-header-number-of-many-digits",
     "cannot decode image: a PPM header number of more than 9 digits"},
    {"image/ppm-header-number-after-a-comment",
     "cannot decode image: a PPM header number of more than 9 digits"},
};

/* Writes the regression input `name`, less its first `skip` bytes, to
 * scratch/file and returns that path. */
static const char *write_input(const char *name, size_t skip, const char *file)
{
    static char bytes[1 << 16], path[128];
    char in_path[256];
    snprintf(in_path, sizeof in_path, REGRESSIONS "/%s", name);
    FILE *in = fopen(in_path, "rb");
    assert_non_null(in);
    size_t len = fread(bytes, 1, sizeof bytes, in);
    fclose(in);
    assert_true(len > skip);
    snprintf(path, sizeof path, "%s/%s", scratch, file);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(bytes + skip, 1, len - skip, out), len - skip);
    fclose(out);
    return path;
}

static void assert_error(const char *path, const char *why)
{
    char expected[512];
    snprintf(expected, sizeof expected, "%s: error: %s\n", path, why);
    assert_string_equal(captured(), expected);
}

static void test_hostile_images_are_refused_before_decoding(void **state)
{
    (void)state;
    make_scratch(scratch, sizeof scratch);
    for (size_t i = 0; i < sizeof image_refusals / sizeof *image_refusals; i++) {
        const Refusal *r = &image_refusals[i];
        const char *path = write_input(r->input, 2, "bad.png");
        uint8_t px[4 * 4 * 3];
        capture_stderr();
        assert_int_equal(nn_load_image_file(path, 4, 4, 3, px), -1);
        assert_error(path, r->why);
        int h, w;
        assert_int_equal(nn_image_file_size(path, &h, &w), -1);
    }
    rm_tree(scratch);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_regression_replays),
        cmocka_unit_test(test_hostile_images_are_refused_before_decoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
