/* test_layers_conv.c - Conv2DTranspose, DepthwiseConv2D and SeparableConv2D
 * (compiler/layer_conv2.c; templates/conv2d_transpose*, depthwise_*, separable_*).
 *
 * Their numbers against PyTorch are tests/ref's fixtures conv_transpose_*,
 * depthwise_* and separable_* (tests/ref/gen.py says how Keras's layouts and
 * TensorFlow's padding map onto PyTorch), which test_ref checks: outputs and
 * every gradient at batch sizes 1, 5, 6, 7 and 13. Here, beyond them:
 *
 *   inference  each of those fixtures through nncc --inference with its
 *              weights, built as C99 without OpenMP: every sample's output
 *              against the fixture's, to 1e-5 of max(1, |value|).
 *   trains     a model of all three: gradcheck passes, the loss falls, and
 *              training with 1 and with 3 threads saves the same bits.
 *   keras      a to_json export holding the three is read and compiled; keys
 *              with which Keras would compute something else are refused.
 * Their argument errors are files in tests/cases (conv2d_transpose_*,
 * depthwise_*, separable_*), run by test_compiler.
 */
#include "testutil.h"

#include <glob.h>
#include <math.h>

#include "rt.h"

/* ---- inference ------------------------------------------------------------------------------- */

static void test_inference(void **state)
{
    (void)state;
    static const char *const patterns[] = {"tests/ref/conv_transpose_*.npz",
                                           "tests/ref/depthwise_*.npz",
                                           "tests/ref/separable_*.npz"};
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        glob_t g;
        assert_int_equal(glob(patterns[i], 0, NULL, &g), 0);
        for (size_t k = 0; k < g.gl_pathc; k++) {
            char name[128];   /* tests/ref/NAME.npz */
            const char *base = strrchr(g.gl_pathv[k], '/') + 1;
            snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 4), base);
            check_fixture_inference(name);
        }
        globfree(&g);
    }
}

/* ---- trains ----------------------------------------------------------------------------------- */

/* 4x4x2 -> separable 4x4x4 -> depthwise 2x2x4 -> transpose 4x4x3 -> Dense 2, tanh
 * between them (smooth, for gradcheck). */
static const char train_model[] =
    "name: cnv\n"
    "input_shape: [4, 4, 2]\n"
    "layers:\n"
    "  - SeparableConv2D: {filters: 4, kernel_size: 3, padding: same, depth_multiplier: 2,\n"
    "                      activation: tanh}\n"
    "  - DepthwiseConv2D: {kernel_size: 2, strides: 2, activation: tanh}\n"
    "  - Conv2DTranspose: {filters: 3, kernel_size: 3, strides: 2, padding: same,\n"
    "                      activation: tanh}\n"
    "  - Flatten\n"
    "  - Dense: {units: 2}\n"
    "compile: {optimizer: {name: adam, learning_rate: 0.01}, loss: mse}\n"
    "fit: {epochs: 40, batch_size: 4}\n"
    "data:\n"
    "  train:\n"
    "    format: inline\n";

/* Four samples of 32 values in [-1, 1], and two targets each. */
static void write_train_model(const char *path)
{
    char yaml[8192];
    int len = snprintf(yaml, sizeof yaml, "%s    x:\n", train_model);
    for (int s = 0; s < 4; s++) {
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "      - [");
        for (int i = 0; i < 32; i++)
            len += snprintf(yaml + len, sizeof yaml - (size_t)len, "%s%.2f", i ? ", " : "",
                            ((i * (s + 3) + s) % 9) / 4.0 - 1.0);
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "]\n");
    }
    snprintf(yaml + len, sizeof yaml - (size_t)len,
             "    y: [[0.5, -0.5], [-0.3, 0.2], [0.1, 0.6], [-0.6, -0.1]]\n");
    write_text(path, yaml);
}

/* The loss of the first and the last epoch in a --history file. */
static void history_losses(const char *path, double *first, double *last)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[256];
    int epochs = 0;
    double loss;
    assert_non_null(fgets(line, sizeof line, f));   /* the header */
    while (fgets(line, sizeof line, f) && sscanf(line, "%*d,%lf", &loss) == 1)
        *(epochs++ ? last : first) = loss;
    fclose(f);
    assert_int_equal(epochs, 40);
}

static void test_trains(void **state)
{
    (void)state;
    write_train_model(in_scratch("cnv.yaml"));
    char trainer[512];
    snprintf(trainer, sizeof trainer, "%s", build_file(in_scratch("cnv.yaml"), "cnv"));
    RunResult r;
    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed\n"))
        fail_msg("gradcheck:\n%s", r.out);
    static const char *const tensors[] = {
        "separable_conv2d.depthwise_kernel", "separable_conv2d.pointwise_kernel",
        "separable_conv2d.bias", "depthwise_conv2d.depthwise_kernel", "depthwise_conv2d.bias",
        "conv2d_transpose.kernel", "conv2d_transpose.bias",
    };
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "\n%s ", tensors[i]);
        if (!strstr(r.out, line) && strncmp(r.out, line + 1, strlen(line + 1)) != 0)
            fail_msg("gradcheck does not list %s:\n%s", tensors[i], r.out);
    }
    run_cmd(&r, "%s train --history %s --quiet", trainer, in_scratch("h.csv"));
    if (r.status != 0)
        fail_msg("train failed:\n%s", r.out);
    double first = 0, last = 0;
    history_losses(in_scratch("h.csv"), &first, &last);
    if (!(last < 0.5 * first))
        fail_msg("the loss went from %g to %g in 40 epochs", first, last);

    /* No sum is split between threads: the weights come out the same bits. */
    run_cmd(&r, "%s train --threads 1 --epochs 3 --quiet --save %s && "
                "%s train --threads 3 --epochs 3 --quiet --save %s && cmp %s %s",
            trainer, in_scratch("one.npz"), trainer, in_scratch("three.npz"),
            in_scratch("one.npz"), in_scratch("three.npz"));
    if (r.status != 0)
        fail_msg("1 and 3 threads:\n%s", r.out);
}

/* ---- keras --------------------------------------------------------------------------------- */

/* A to_json export, tf.keras 2.x's layout and keys, written by hand. */
static const char keras_export[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"seq\", \"layers\": [\n"
    "  {\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 8, 8, 3],\n"
    "   \"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"in\"}},\n"
    "  {\"class_name\": \"SeparableConv2D\", \"config\": {\"name\": \"sep\", \"trainable\": true,\n"
    "   \"dtype\": \"float32\", \"filters\": 6, \"kernel_size\": [3, 3], \"strides\": [1, 1],\n"
    "   \"padding\": \"same\", \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1],\n"
    "   \"groups\": 1, \"activation\": \"relu\", \"use_bias\": true,\n"
    "   \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},\n"
    "   \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},\n"
    "   \"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null,\n"
    "   \"kernel_constraint\": null, \"bias_constraint\": null, \"depth_multiplier\": 2,\n"
    "   \"depthwise_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},\n"
    "   \"pointwise_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},\n"
    "   \"depthwise_regularizer\": null, \"pointwise_regularizer\": null,\n"
    "   \"depthwise_constraint\": null, \"pointwise_constraint\": null}},\n"
    "  {\"class_name\": \"DepthwiseConv2D\", \"config\": {\"name\": \"dw\", \"trainable\": true,\n"
    "   \"dtype\": \"float32\", \"kernel_size\": [3, 3], \"strides\": [2, 2], \"padding\": \"valid\",\n"
    "   \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1], \"groups\": 1,\n"
    "   \"activation\": \"linear\", \"use_bias\": false,\n"
    "   \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}}, \"bias_regularizer\": null,\n"
    "   \"activity_regularizer\": null, \"bias_constraint\": null, \"depth_multiplier\": 1,\n"
    "   \"depthwise_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},\n"
    "   \"depthwise_regularizer\": null, \"depthwise_constraint\": null}},\n"
    "  {\"class_name\": \"Conv2DTranspose\", \"config\": {\"name\": \"up\", \"trainable\": true,\n"
    "   \"dtype\": \"float32\", \"filters\": 4, \"kernel_size\": [3, 3], \"strides\": [2, 2],\n"
    "   \"padding\": \"valid\", \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1],\n"
    "   \"groups\": 1, \"activation\": \"sigmoid\", \"use_bias\": true,\n"
    "   \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},\n"
    "   \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},\n"
    "   \"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null,\n"
    "   \"kernel_constraint\": null, \"bias_constraint\": null, \"output_padding\": null}},\n"
    "  {\"class_name\": \"Flatten\", \"config\": {\"name\": \"flat\", \"data_format\": \"channels_last\"}},\n"
    "  {\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": 2}}]},\n"
    " \"keras_version\": \"2.9.0\", \"backend\": \"tensorflow\"}\n";

static void test_keras_export(void **state)
{
    (void)state;
    const char *file = in_scratch("export.json");
    write_text(file, keras_export);
    RunResult r;
    run_cmd(&r, "%s %s --check", nncc_path(), file);
    if (r.status != 0)
        fail_msg("%s", r.out);
    /* 8x8x3 -> sep (same) 8x8x6: 3*3*3*2 + 1*1*6*6 + 6; dw 3x3/2 valid 3x3x6: 3*3*6*1;
     * up 3x3/2 valid: 3*2 + max(3 - 2, 0) = 7, 7x7x4: 3*3*4*6 + 4; out: 196*2 + 2 */
    assert_output_contains(&r, "sep (SeparableConv2D)");
    assert_output_contains(&r, "(None, 8, 8, 6)");
    assert_output_contains(&r, "dw (DepthwiseConv2D)");
    assert_output_contains(&r, "(None, 3, 3, 6)");
    assert_output_contains(&r, "up (Conv2DTranspose)");
    assert_output_contains(&r, "(None, 7, 7, 4)");
    char total[64];
    snprintf(total, sizeof total, "Total params: %d",
             (3 * 3 * 3 * 2 + 6 * 6 + 6) + 3 * 3 * 6 + (3 * 3 * 4 * 6 + 4) + (196 * 2 + 2));
    assert_output_contains(&r, total);
    run_cmd(&r, "%s %s --no-main -o %s", nncc_path(), file, in_scratch("export.c"));
    if (r.status != 0)
        fail_msg("%s", r.out);

    /* Keys that would make Keras compute something else, each refused by name. */
    static const KerasChange refused[] = {
        {"\"output_padding\": ", "[1, 1]", "Conv2DTranspose: output_padding '[1, 1]'"},
        {"\"depthwise_regularizer\": ", "{\"class_name\": \"L2\", \"config\": {\"l2\": 0.01}}",
         "SeparableConv2D: depthwise_regularizer 'L2'"},
        {"\"pointwise_initializer\": ", "\"zeros\"", "SeparableConv2D: pointwise_initializer 'zeros'"},
        {"\"groups\": ", "2", "SeparableConv2D: groups '2'"},
        {"\"dilation_rate\": ", "[2, 2]", "SeparableConv2D: dilation_rate '[2, 2]'"},
    };
    assert_each_change_refused(keras_export, refused, sizeof refused / sizeof refused[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inference),
        cmocka_unit_test(test_trains),
        cmocka_unit_test(test_keras_export),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
