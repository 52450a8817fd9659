/* test_layers_spatial.c - ZeroPadding2D, Cropping2D, UpSampling2D and
 * GlobalMaxPooling2D (compiler/layer_spatial.c, templates/shift2d*, upsampling2d*,
 * gmp2d*).
 *
 * Their numbers, forward and backward at batch sizes 1, 5, 6, 7 and 13, are
 * checked against PyTorch by test_ref, on the fixtures tests/ref/{zeropad*,
 * crop_*, upsample*, gmp*} (gen.py; gmp_ties: inputs 0, 1, 2, the gradient to
 * the first maximum as TensorFlow gives it). Here:
 *   inference  the same fixtures through nncc --inference, built as C99
 *              without OpenMP: each sample's output against the reference.
 *   training   a model with all four layers, built with make trainer, passes
 *              gradcheck, and its loss falls in a few epochs.
 *   keras      a to_json() export in Keras 2.x's layout with the four layers
 *              (every config key as Keras writes it) is read and compiles;
 *              the keys that would change the numbers are refused at their place.
 * The error cases of the arguments are files in tests/cases (zeropad_*,
 * cropping_*, upsampling_*, global_max_pooling_*), run by test_compiler. */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* ---- --inference against the reference ------------------------------------------- */

static void inference(void **state)
{
    (void)state;
    static const char *const fixtures[] = {
        "zeropad", "zeropad_edges", "crop_edges", "crop_mixed",
        "upsample", "upsample_rect", "gmp", "gmp_ties",
    };
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++)
        print_message("%-14s --inference: max relative difference %.3g\n", fixtures[i],
                      check_fixture_inference(fixtures[i]));
}

/* ---- a model that trains ---------------------------------------------------------- */

/* 8 images 5x4x1, two classes: a bright cell in the top or the bottom half.
 * Smooth activations (tanh), so that gradcheck sees no kinks besides the maxima. */
static const char trained_model[] =
    "input_shape: [5, 4, 1]\n"
    "layers:\n"
    "  - Conv2D: {filters: 3, kernel_size: 3, activation: tanh}\n"          /* 3x2x3 */
    "  - ZeroPadding2D: {padding: [[1, 0], [2, 1]]}\n"                      /* 4x5x3 */
    "  - UpSampling2D: {size: [2, 1]}\n"                                    /* 8x5x3 */
    "  - Cropping2D: {cropping: [[1, 1], 1]}\n"                             /* 6x3x3 */
    "  - Conv2D: {filters: 4, kernel_size: 2, activation: tanh}\n"          /* 5x2x4 */
    "  - GlobalMaxPooling2D\n"                                              /* 4 */
    "  - Dense: {units: 2, activation: softmax}\n"
    "compile: {optimizer: {name: adam, learning_rate: 0.05},\n"
    "          loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
    "data:\n"
    "  train:\n"
    "    format: inline\n"
    "    x: [[[[1], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]]],\n"
    "        [[[0], [0], [0], [0]], [[0], [0], [1], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]]],\n"
    "        [[[0], [0], [0], [1]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]]],\n"
    "        [[[0], [1], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]]],\n"
    "        [[[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[1], [0], [0], [0]]],\n"
    "        [[[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [1], [0]], [[0], [0], [0], [0]]],\n"
    "        [[[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [1]]],\n"
    "        [[[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [0], [0], [0]], [[0], [1], [0], [0]], [[0], [0], [0], [0]]]]\n"
    "    y: [0, 0, 0, 0, 1, 1, 1, 1]\n"
    "fit: {epochs: 30, batch_size: 4, seed: 3}\n";

static void model_trains(void **state)
{
    (void)state;
    assert_gradcheck_and_learns("spatial", trained_model, 30);
}

/* ---- Keras exports ------------------------------------------------------------------ */

/* model.to_json() of tf.keras 2.x, indented: the four layers as Keras writes
 * their configs, between convolutions. */
static const char keras_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"spatial_export\", \"layers\": [\n"
    " {\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 6, 5, 2],"
    " \"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"input_1\"}},\n"
    " {\"class_name\": \"ZeroPadding2D\", \"config\": {\"name\": \"zero_padding2d\","
    " \"trainable\": true, \"dtype\": \"float32\", \"padding\": [[1, 2], [0, 1]],"
    " \"data_format\": \"channels_last\"}},\n"
    " {\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv2d\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"filters\": 3, \"kernel_size\": [3, 3], \"strides\": [1, 1],"
    " \"padding\": \"valid\", \"data_format\": \"channels_last\", \"dilation_rate\": [1, 1],"
    " \"groups\": 1, \"activation\": \"tanh\", \"use_bias\": true,"
    " \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},"
    " \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},"
    " \"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null,"
    " \"kernel_constraint\": null, \"bias_constraint\": null}},\n"
    " {\"class_name\": \"Cropping2D\", \"config\": {\"name\": \"cropping2d\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"cropping\": [[1, 0], [0, 2]], \"data_format\": \"channels_last\"}},\n"
    " {\"class_name\": \"UpSampling2D\", \"config\": {\"name\": \"up_sampling2d\","
    " \"trainable\": true, \"dtype\": \"float32\", \"size\": [2, 3],"
    " \"data_format\": \"channels_last\", \"interpolation\": \"nearest\"}},\n"
    " {\"class_name\": \"GlobalMaxPooling2D\", \"config\": {\"name\": \"global_max_pooling2d\","
    " \"trainable\": true, \"dtype\": \"float32\", \"data_format\": \"channels_last\","
    " \"keepdims\": false}},\n"
    " {\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"units\": 2, \"activation\": \"softmax\", \"use_bias\": true,"
    " \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},"
    " \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},"
    " \"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null,"
    " \"kernel_constraint\": null, \"bias_constraint\": null}}]},\n"
    " \"keras_version\": \"2.4.0\", \"backend\": \"tensorflow\"}\n";

static void keras_export(void **state)
{
    (void)state;
    write_text(in_scratch("export.json"), keras_json);
    RunResult r;
    run_cmd(&r, "%s %s --check", nncc_path(), in_scratch("export.json"));
    if (r.status != 0)
        fail_msg("%s", r.out);
    /* 6x5x2 -> pad 9x6x2 -> conv 7x4x3 -> crop 6x2x3 -> up 12x6x3 -> max 3 -> 2 */
    assert_output_contains(&r, "zero_padding2d (ZeroPadding2D)");
    assert_output_contains(&r, "(None, 9, 6, 2)");
    assert_output_contains(&r, "(None, 7, 4, 3)");
    assert_output_contains(&r, "cropping2d (Cropping2D)");
    assert_output_contains(&r, "(None, 6, 2, 3)");
    assert_output_contains(&r, "up_sampling2d (UpSampling2D)");
    assert_output_contains(&r, "(None, 12, 6, 3)");
    assert_output_contains(&r, "global_max_pooling2d (GlobalMaxPooling2D)");
    assert_output_contains(&r, "Total params: 65");   /* (3*3*2*3 + 3) + (3*2 + 2) */
    run_cmd(&r, "%s %s -o %s", nncc_path(), in_scratch("export.json"), in_scratch("export.c"));
    if (r.status != 0)
        fail_msg("%s", r.out);
    assert_true(file_exists(in_scratch("export.c")));
}

/* One layer after an InputLayer of 4x4x1, its config as given: nncc's error. */
static void expect_keras_error(const char *layer, const char *expected)
{
    char text[1024], want[512];
    snprintf(text, sizeof text,
             "class_name: Sequential\nconfig:\n  layers:\n"
             "  - {class_name: InputLayer, config: {batch_input_shape: [null, 4, 4, 1]}}\n"
             "  - %s\n", layer);
    write_text(in_scratch("bad.yaml"), text);
    RunResult r;
    run_cmd(&r, "%s %s -o %s", nncc_path(), in_scratch("bad.yaml"), in_scratch("bad.c"));
    snprintf(want, sizeof want, "%s:%s", in_scratch("bad.yaml"), expected);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, want);
    assert_false(file_exists(in_scratch("bad.c")));
}

static void keras_refusals(void **state)
{
    (void)state;
    expect_keras_error("{class_name: UpSampling2D, config: {size: [2, 2], "
                       "interpolation: bilinear}}",
                       "5:70: error: UpSampling2D: interpolation 'bilinear' is not supported; "
                       "nncc implements only 'nearest'");
    expect_keras_error("{class_name: GlobalMaxPooling2D, config: {keepdims: true}}",
                       "5:57: error: GlobalMaxPooling2D: keepdims 'true' is not supported");
    expect_keras_error("{class_name: Cropping2D, config: {data_format: channels_first}}",
                       "5:52: error: Cropping2D: data_format 'channels_first' is not supported");
    expect_keras_error("{class_name: ZeroPadding2D, config: {padding: [[1, 1], [1, 1], [1, 1]]}}",
                       "5:51: error: padding must be an integer, [rows, columns] or "
                       "[[top, bottom], [left, right]]");
    expect_keras_error("{class_name: Cropping2D, config: {cropping: [[2, 2], [0, 0]]}}",
                       "5:5: error: Cropping2D crops 2 + 2 rows and 0 + 0 columns of an input "
                       "(4, 4, 1): nothing is left");
    /* Keras's other spelling of the class */
    write_text(in_scratch("alias.yaml"),
               "class_name: Sequential\nconfig:\n"
               "- {class_name: GlobalMaxPool2D, config: {batch_input_shape: [null, 3, 3, 2]}}\n");
    RunResult r;
    run_cmd(&r, "%s %s --check", nncc_path(), in_scratch("alias.yaml"));
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "global_max_pooling2d (GlobalMaxPooling2D)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inference),
        cmocka_unit_test(model_trains),
        cmocka_unit_test(keras_export),
        cmocka_unit_test(keras_refusals),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
