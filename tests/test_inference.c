/* test_inference.c - nncc --inference: one self-contained C file that predicts.
 *
 * For three small models a trainer is built with `make trainer`, its weights
 * are made (trained one epoch, or initialised), and nncc writes the inference
 * C from them. That file is compiled with cc -std=c99 -Wall -Wextra -Werror
 * (no -fopenmp, no runtime, no include path) beside a small driver written
 * here, run on a few inputs, and its outputs compared to 1e-5 with what the
 * trainer's `predict --npy` writes for the same inputs:
 *
 *   dense     Dense relu, Dense softmax (the softmax fused into the loss)
 *   conv      Conv2D, MaxPooling2D, Flatten, Dense sigmoid (binary)
 *   batchnorm Conv2D, BatchNormalization (moving statistics after training),
 *             MaxPooling2D, Dropout (identity), Dense softmax
 *
 * Errors: a weight file that lacks a tensor or holds one of another shape is
 * exit 1, `W.npz: error: ...` naming the tensor, and nothing written;
 * --inference without --weights (and the reverse) is a usage error, exit 2.
 * Trainers and the driver are built with the SAN of the environment.
 *
 * The activation buffer is planned by lifetime: at most the two largest
 * activations live at once (from the layer shapes of the trainer's summary).
 *
 * nncc itself reads the .npz through npz.c alone, not libnnrt: the libraries
 * its binary needs (readelf -d) include neither OpenMP's libgomp nor stb.
 * SAN=1 adds the sanitizers' libraries, which do not matter here.
 */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* ---- building and running both sides ------------------------------------------- */

/* Writes scratch/NAME.yaml and builds the trainer scratch/NAME. */
static void build_trainer(const char *name, const char *yaml)
{
    char file[64];
    snprintf(file, sizeof file, "%s.yaml", name);
    write_text(in_scratch(file), yaml);
    RunResult r;
    run_cmd(&r, "make --no-print-directory trainer MODEL=%s OUT=%s SAN=%s", in_scratch(file),
            scratch, san());
    if (r.status != 0)
        fail_msg("make trainer failed:\n%s", r.out);
}

/* n samples of size numbers in [-1, 1), from a fixed linear congruence; as
 * X.npy for the trainer and as raw floats for the driver. */
static void write_inputs(int n, int size)
{
    nn_array x = {.dtype = NN_F32, .rank = 2, .shape = {n, size}};
    x.size = (size_t)n * (size_t)size;
    x.f = calloc(x.size, sizeof *x.f);
    assert_non_null(x.f);
    uint32_t state = 12345;
    for (size_t i = 0; i < x.size; i++) {
        state = state * 1664525u + 1013904223u;
        x.f[i] = (float)(state >> 8) / (float)(1u << 24) * 2.0f - 1.0f;
    }
    assert_int_equal(nn_npy_write(in_scratch("X.npy"), &x), 0);
    FILE *f = fopen(in_scratch("X.bin"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(x.f, sizeof *x.f, x.size, f), x.size);
    assert_int_equal(fclose(f), 0);
    free(x.f);
}

/* The inference file includes nothing but the C library's math, stddef and
 * string headers, and never allocates or opens a file. */
static void assert_self_contained(const char *c_file)
{
    RunResult r;
    run_cmd(&r, "grep '#include' '%s' | grep -v -e '<math.h>' -e '<stddef.h>' -e '<string.h>'; "
                "grep -n -e malloc -e fopen -e 'pragma omp' -e omp_ '%s'; true", c_file, c_file);
    if (r.out[0])
        fail_msg("%s is not self-contained:\n%s", c_file, r.out);
}

/* The activation buffer (WORK_PER_SAMPLE, floats per sample) is at most the
 * largest two activations that are live at once plus scratch, worked out
 * here from the layer shapes the trainer's Keras summary prints, not from
 * the planner: in a chain of layers, layer i reads its input while it writes
 * its output, so the bound is the largest sum of a layer's input and output
 * sizes (the first layer's input is the caller's, not in the buffer), and no
 * layer of these models needs scratch in a forward pass. A buffer without
 * reuse (the sum of all activations) exceeds this bound in the two
 * convolutional models. */
static void assert_work_within_two_live(const char *name, const char *c_file)
{
    RunResult r;
    run_cmd(&r, "%s summary", in_scratch(name));
    assert_int_equal(r.status, 0);
    long before = 0, bound = 0, largest = 0;
    for (const char *at = strstr(r.out, "(None, "); at; at = strstr(at + 1, "(None, ")) {
        long size = 1;
        for (const char *d = at + 6; *d == ' ' || (*d >= '0' && *d <= '9'); d++) {
            char *end;
            size *= strtol(d, &end, 10);
            d = end;
            if (*d != ',')
                break;
        }
        bound = before + size > bound ? before + size : bound;
        largest = size > largest ? size : largest;
        before = size;
    }
    assert_true(largest > 0);
    run_cmd(&r, "grep -o 'WORK_PER_SAMPLE = [0-9]*' '%s'", c_file);
    long work = r.status == 0 ? strtol(r.out + strlen("WORK_PER_SAMPLE = "), NULL, 10) : -1;
    if (work < largest || work > bound)
        fail_msg("%s: WORK_PER_SAMPLE %ld, outside [%ld (the largest activation), %ld (the two "
                 "largest live ones)]", c_file, work, largest, bound);
}

/* nncc --inference from scratch/W.npz, the C compiled with the driver, run on
 * X.bin; its outputs against the trainer's predict --npy, to 1e-5. */
static void compare_with_trainer(const char *name, int n, int in_size, int out_size)
{
    char yaml[64], c_file[64];
    snprintf(yaml, sizeof yaml, "%s.yaml", name);
    snprintf(c_file, sizeof c_file, "%s_predict.c", name);
    write_inputs(n, in_size);
    RunResult r;
    run_cmd(&r, "%s %s --inference --weights %s -o %s", nncc_path(), in_scratch(yaml),
            in_scratch("W.npz"), in_scratch(c_file));
    if (r.status != 0)
        fail_msg("nncc --inference failed:\n%s", r.out);
    assert_self_contained(in_scratch(c_file));
    assert_work_within_two_live(name, in_scratch(c_file));

    write_text(in_scratch("driver.c"), inference_driver_source);
    const char *sanflags = strcmp(san(), "1") == 0 ? "-fsanitize=address,undefined" : "";
    run_cmd(&r, "cd %s && cc -std=c99 -Wall -Wextra -Werror %s -c %s && "
                "cc -std=c99 -Wall -Wextra -Werror %s -DPREDICT=%s_predict -DIN=%d -DOUT=%d "
                "-o driver driver.c %s_predict.o -lm && ./driver X.bin Y.bin",
            scratch, sanflags, c_file, sanflags, name, in_size, out_size, name);
    if (r.status != 0)
        fail_msg("building or running the inference C failed:\n%s", r.out);

    char trainer[512];
    snprintf(trainer, sizeof trainer, "%s", in_scratch(name));
    run_cmd(&r, "%s predict --weights %s --npy %s --out %s", trainer, in_scratch("W.npz"),
            in_scratch("X.npy"), in_scratch("Y.npy"));
    if (r.status != 0)
        fail_msg("predict failed:\n%s", r.out);
    nn_array want;
    assert_int_equal(nn_npy_read(in_scratch("Y.npy"), &want), 0);
    assert_int_equal(want.size, (size_t)n * (size_t)out_size);

    float *got = calloc(want.size, sizeof *got);
    assert_non_null(got);
    FILE *f = fopen(in_scratch("Y.bin"), "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, sizeof *got, want.size + 1, f), want.size);
    fclose(f);
    for (size_t i = 0; i < want.size; i++)
        if (fabsf(got[i] - want.f[i]) > 1e-5f * fmaxf(1.0f, fabsf(want.f[i])))
            fail_msg("%s output %zu: inference %.9g, predict %.9g", name, i, got[i], want.f[i]);
    free(got);
    nn_array_free(&want);
}

static void make_weights(const char *name, const char *command)
{
    RunResult r;
    run_cmd(&r, "%s %s --save %s", in_scratch(name), command, in_scratch("W.npz"));
    if (r.status != 0)
        fail_msg("%s %s failed:\n%s", name, command, r.out);
}

/* ---- the models ----------------------------------------------------------------- */

static void test_dense_softmax(void **state)
{
    (void)state;
    build_trainer("mlp",
                  "name: mlp\n"
                  "input_shape: [5]\n"
                  "layers:\n"
                  "  - Dense: {units: 8, activation: relu}\n"
                  "  - Dense: {units: 3, activation: softmax}\n"
                  "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
                  "data:\n"
                  "  train:\n"
                  "    format: inline\n"
                  "    x: [[1, 0, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0], [1, 1, 0, 0, 0]]\n"
                  "    y: [0, 1, 2, 1]\n"
                  "fit: {epochs: 1, batch_size: 2}\n");
    make_weights("mlp", "train --epochs 3 --quiet");
    compare_with_trainer("mlp", 6, 5, 3);
}

static void test_conv_sigmoid(void **state)
{
    (void)state;
    build_trainer("cnn",
                  "name: cnn\n"
                  "input_shape: [6, 6, 2]\n"
                  "layers:\n"
                  "  - Conv2D: {filters: 3, kernel_size: 3, activation: relu}\n"
                  "  - MaxPooling2D: {pool_size: 2}\n"
                  "  - Flatten\n"
                  "  - Dense: {units: 1, activation: sigmoid}\n"
                  "compile: {optimizer: adam, loss: binary_crossentropy}\n");
    make_weights("cnn", "init --seed 1");
    compare_with_trainer("cnn", 5, 72, 1);
}

static void test_batchnorm_dropout(void **state)
{
    (void)state;
    /* Two samples, trained a few epochs: the moving statistics leave 0 and 1. */
    char yaml[4096];
    int len = snprintf(yaml, sizeof yaml,
                       "name: bnd\n"
                       "input_shape: [4, 4, 2]\n"
                       "layers:\n"
                       "  - Conv2D: {filters: 4, kernel_size: 3, padding: same}\n"
                       "  - BatchNormalization: {momentum: 0.5}\n"
                       "  - MaxPooling2D: {pool_size: 2}\n"
                       "  - Dropout: {rate: 0.5}\n"
                       "  - Flatten\n"
                       "  - Dense: {units: 3, activation: softmax}\n"
                       "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
                       "data:\n"
                       "  train:\n"
                       "    format: inline\n"
                       "    x:\n");
    for (int s = 0; s < 2; s++) {
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "      - [");
        for (int i = 0; i < 32; i++)
            len += snprintf(yaml + len, sizeof yaml - (size_t)len, "%s%d", i ? ", " : "",
                            (i * (s + 3)) % 7);
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "]\n");
    }
    snprintf(yaml + len, sizeof yaml - (size_t)len, "    y: [0, 2]\nfit: {epochs: 1}\n");
    build_trainer("bnd", yaml);
    make_weights("bnd", "train --epochs 4 --quiet");

    /* The moving statistics are not the initial ones, so they are what is tested. */
    nn_array *arrays;
    int n;
    assert_int_equal(nn_npz_read(in_scratch("W.npz"), &arrays, &n), 0);
    const nn_array *mean = nn_npz_find(arrays, n, "batch_normalization.moving_mean");
    assert_non_null(mean);
    assert_true(fabsf(mean->f[0]) > 1e-3f);
    nn_npz_free(arrays, n);

    compare_with_trainer("bnd", 4, 32, 3);
}

/* ---- errors ---------------------------------------------------------------------------- */

static const char *const two_dense =
    "name: two\n"
    "input_shape: [3]\n"
    "layers:\n"
    "  - Dense: {units: 4, activation: relu}\n"
    "  - Dense: {units: %d}\n"
    "compile: {optimizer: sgd, loss: mse}\n";

/* A weight file whose dense_1 has `units` outputs; with or without dense_1.bias. */
static void write_weights(const char *file, int units, int with_bias)
{
    static float zeros[64];
    nn_array a[4] = {
        {.name = "dense.kernel", .dtype = NN_F32, .rank = 2, .shape = {3, 4}, .size = 12, .f = zeros},
        {.name = "dense.bias", .dtype = NN_F32, .rank = 1, .shape = {4}, .size = 4, .f = zeros},
        {.name = "dense_1.kernel", .dtype = NN_F32, .rank = 2, .shape = {4, units},
         .size = (size_t)(4 * units), .f = zeros},
        {.name = "dense_1.bias", .dtype = NN_F32, .rank = 1, .shape = {units},
         .size = (size_t)units, .f = zeros},
    };
    assert_int_equal(nn_npz_write(in_scratch(file), a, with_bias ? 4 : 3), 0);
}

static void test_weight_errors(void **state)
{
    (void)state;
    char yaml[512];
    snprintf(yaml, sizeof yaml, two_dense, 2);
    write_text(in_scratch("two.yaml"), yaml);
    write_weights("good.npz", 2, 1);
    write_weights("shape.npz", 5, 1);
    write_weights("nobias.npz", 2, 0);
    write_text(in_scratch("junk.npz"), "not a zip file\n");

    RunResult r;
    run_cmd(&r, "%s %s --inference --weights %s -o %s", nncc_path(), in_scratch("two.yaml"),
            in_scratch("good.npz"), in_scratch("good.c"));
    if (r.status != 0)
        fail_msg("nncc failed on good weights:\n%s", r.out);
    assert_true(file_exists(in_scratch("good.c")));

    static const struct { const char *file, *message; } cases[] = {
        {"shape.npz", "error: 'dense_1.kernel' has the wrong shape"},
        {"nobias.npz", "error: no array 'dense_1.bias'"},
        {"junk.npz", "error:"},
        {"absent.npz", "error:"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        run_cmd(&r, "%s %s --inference --weights %s -o %s", nncc_path(), in_scratch("two.yaml"),
                in_scratch(cases[i].file), in_scratch("bad.c"));
        assert_int_equal(r.status, 1);
        char place[600];
        snprintf(place, sizeof place, "%s: %s", in_scratch(cases[i].file), cases[i].message);
        assert_output_contains(&r, place);
        assert_false(file_exists(in_scratch("bad.c")));
    }
    /* No temporary file is left beside the output either. */
    run_cmd(&r, "ls %s | grep tmp; true", scratch);
    assert_string_equal(r.out, "");
}

static void test_usage_errors(void **state)
{
    (void)state;
    char yaml[512];
    snprintf(yaml, sizeof yaml, two_dense, 2);
    write_text(in_scratch("usage.yaml"), yaml);
    write_weights("usage.npz", 2, 1);
    RunResult r;
    run_cmd(&r, "%s %s --inference -o %s", nncc_path(), in_scratch("usage.yaml"),
            in_scratch("u.c"));
    assert_int_equal(r.status, 2);
    assert_output_contains(&r, "usage: nncc");
    run_cmd(&r, "%s %s --weights %s -o %s", nncc_path(), in_scratch("usage.yaml"),
            in_scratch("usage.npz"), in_scratch("u.c"));
    assert_int_equal(r.status, 2);
    run_cmd(&r, "%s %s --inference --weights %s --check", nncc_path(),
            in_scratch("usage.yaml"), in_scratch("usage.npz"));
    assert_int_equal(r.status, 2);
    assert_false(file_exists(in_scratch("u.c")));
}

static void test_nncc_needs_no_runtime_libs(void **state)
{
    (void)state;
    RunResult r;
    run_cmd(&r, "readelf -d %s | grep NEEDED", nncc_path());
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "libc.so");
    if (strstr(r.out, "libgomp") || strstr(r.out, "libstb"))
        fail_msg("%s needs the runtime's libraries:\n%s", nncc_path(), r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dense_softmax),
        cmocka_unit_test(test_conv_sigmoid),
        cmocka_unit_test(test_batchnorm_dropout),
        cmocka_unit_test(test_weight_errors),
        cmocka_unit_test(test_usage_errors),
        cmocka_unit_test(test_nncc_needs_no_runtime_libs),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
