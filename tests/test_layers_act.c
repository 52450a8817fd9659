/* test_layers_act.c - the activation layers with arguments (LeakyReLU, ReLU,
 * ELU, PReLU) and Rescaling and Reshape, through ./nncc as a user runs it.
 * Their numbers against PyTorch are tests/ref's fixtures (test_ref); here:
 *
 *   inference   the --inference C of those fixtures' models, built as C99
 *               without OpenMP (check_fixture_inference, testutil.h), agrees
 *               with PyTorch to 1e-5
 *   training    models using every one of them pass gradcheck and learn
 *   keras       to_json-style exports with them are read: Keras 2 and Keras 3
 *               spellings, the rank a Reshape leaves, the keys that must hold
 *               Keras's defaults
 * Their argument errors are files in tests/cases (run by test_compiler).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include <stdbool.h>

/* Runs a command that must succeed; its output in r. */
static void must_run(RunResult *r, const char *what, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void must_run(RunResult *r, const char *what, const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    run_cmd(r, "%s", cmd);
    if (r->status != 0)
        fail_msg("%s failed (exit %d):\n%s", what, r->status, r->out);
}

/* ---- inference: the C of --inference against PyTorch's numbers -------------------------- */

/* Reference fixtures (tests/ref, checked against the trainer by test_ref) that
 * hold every template of these layers, PReLU's alpha shared along each kind of
 * axis and over a sequence, and a Reshape read by a convolution. */
static const char *const inference_fixtures[] = {
    "activation_layers", "prelu_image", "prelu_shared_width", "prelu_one",
    "reshape_prelu_sequence", "reshape_conv", "relu_threshold_above_max",
};

static void test_inference(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof inference_fixtures / sizeof *inference_fixtures; i++)
        print_message("%-26s --inference: max relative difference %.3g\n", inference_fixtures[i],
                      check_fixture_inference(inference_fixtures[i]));
}

/* ---- training ---------------------------------------------------------------------------- */

/* Four samples of 16 numbers (a 4x4 image once reshaped) and two targets each. */
#define DATA                                                                                  \
    "compile: {optimizer: {name: adam, learning_rate: 0.01}, loss: mse}\n"                   \
    "data:\n  train:\n    format: inline\n"                                                   \
    "    x: [[0.1, 0.9, 0.3, 0.2, 0.5, 0.7, 0.1, 0.8, 0.6, 0.0, 0.4, 0.3, 0.9, 0.2, 0.7, 0.5],\n" \
    "        [0.8, 0.1, 0.6, 0.9, 0.2, 0.4, 0.7, 0.3, 0.0, 0.5, 0.9, 0.6, 0.1, 0.8, 0.3, 0.2],\n" \
    "        [0.5, 0.5, 0.2, 0.7, 0.9, 0.1, 0.3, 0.6, 0.8, 0.2, 0.0, 0.4, 0.6, 0.7, 0.1, 0.9],\n" \
    "        [0.3, 0.6, 0.8, 0.1, 0.4, 0.9, 0.5, 0.0, 0.2, 0.7, 0.6, 0.8, 0.3, 0.1, 0.9, 0.4]]\n" \
    "    y: [[0.5, -0.5], [-0.3, 0.8], [0.2, 0.1], [-0.6, -0.2]]\n"                           \
    "fit: {epochs: 20, batch_size: 4}\n"

/* No corners but ELU(0.7)'s change of slope at 0 (ELU's default, 1, is smooth). */
static const char smooth_model[] =
    "input_shape: [16]\n"
    "layers:\n"
    "  - Reshape: {target_shape: [4, 4, 1]}\n"
    "  - Rescaling: {scale: 1/2, offset: -0.25}\n"
    "  - Conv2D: {filters: 3, kernel_size: 3}\n"
    "  - ELU: {alpha: 0.7}\n"
    "  - Reshape: {target_shape: [-1]}\n"
    "  - Dense: {units: 4}\n"
    "  - ELU\n"
    "  - Dense: {units: 2}\n" DATA;

/* The piecewise linear ones, with their corners. */
static const char kinked_model[] =
    "input_shape: [16]\n"
    "layers:\n"
    "  - Reshape: {target_shape: [4, 4, 1]}\n"
    "  - Conv2D: {filters: 4, kernel_size: 2}\n"
    "  - PReLU: {shared_axes: [1, 2]}\n"
    "  - LeakyReLU: {alpha: 0.1}\n"
    "  - Reshape: {target_shape: [9, 4]}\n"
    "  - PReLU: {shared_axes: [1]}\n"
    "  - Flatten\n"
    "  - Dense: {units: 5}\n"
    "  - ReLU: {max_value: 2, negative_slope: 0.1, threshold: 0.1}\n"
    "  - PReLU\n"
    "  - Dense: {units: 2}\n" DATA;

/* The loss of each epoch, from a --history file. */
static int read_losses(const char *path, double *loss, int max)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    int n = 0;
    assert_non_null(fgets(line, sizeof line, f));   /* the header */
    while (n < max && fgets(line, sizeof line, f))
        assert_int_equal(sscanf(line, "%*d,%lf", &loss[n++]), 1);
    fclose(f);
    return n;
}

/* Whether gradcheck printed a line for the tensor (len characters of name). */
static bool checks_tensor(const char *out, const char *name, size_t len)
{
    for (const char *p = out; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, len) == 0 && p[len] == ' ')
            return true;
    return false;
}

/* Builds the trainer (testutil.h's build_model); gradcheck passes, with the
 * tensors named, and 20 steps lower the loss. */
static void check_training(const char *name, const char *yaml, const char *tensors)
{
    const char *trainer = build_model(name, yaml);
    char history[256];
    snprintf(history, sizeof history, "%s.csv", trainer);
    RunResult r;
    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed\n"))
        fail_msg("%s: gradcheck:\n%s", name, r.out);
    for (const char *t = tensors; *t; t += strcspn(t, " "), t += strspn(t, " "))
        if (!checks_tensor(r.out, t, strcspn(t, " ")))
            fail_msg("%s: gradcheck does not check %.*s:\n%s", name, (int)strcspn(t, " "), t,
                     r.out);
    must_run(&r, "train", "%s train --quiet --history %s", trainer, history);
    double loss[32];
    assert_int_equal(read_losses(history, loss, 32), 20);
    if (!(loss[19] < 0.8 * loss[0]))
        fail_msg("%s: the loss went from %g to %g in 20 steps", name, loss[0], loss[19]);
    print_message("%s: gradcheck passed, loss %.4f -> %.4f\n", name, loss[0], loss[19]);
}

static void test_training(void **state)
{
    (void)state;
    check_training("smooth", smooth_model, "conv2d.kernel conv2d.bias dense.kernel dense_1.bias");
    check_training("kinked", kinked_model,
                   "p_re_lu.alpha p_re_lu_1.alpha p_re_lu_2.alpha conv2d.kernel dense.kernel");
}

/* ---- Keras exports ------------------------------------------------------------------------- */

/* tf.keras 2.x's to_json of a model with each of them (Keras writes alpha as
 * the float32 it holds). */
static const char keras2_export[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"acts\", \"layers\": [\n"
    "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 16],"
    " \"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"input_1\"}},\n"
    "{\"class_name\": \"Reshape\", \"config\": {\"name\": \"reshape\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"target_shape\": [4, 4, 1]}},\n"
    "{\"class_name\": \"Rescaling\", \"config\": {\"name\": \"rescaling\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"scale\": 0.00392156862745098, \"offset\": 0.0}},\n"
    "{\"class_name\": \"BatchNormalization\", \"config\": {\"name\": \"bn\", \"axis\": [3]}},\n"
    "{\"class_name\": \"Conv2D\", \"config\": {\"name\": \"conv2d\", \"filters\": 4,"
    " \"kernel_size\": [3, 3], \"strides\": [1, 1], \"padding\": \"valid\"}},\n"
    "{\"class_name\": \"PReLU\", \"config\": {\"name\": \"p_re_lu\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"alpha_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},"
    " \"alpha_regularizer\": null, \"alpha_constraint\": null, \"shared_axes\": [1, 2]}},\n"
    "{\"class_name\": \"LeakyReLU\", \"config\": {\"name\": \"leaky_re_lu\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"alpha\": 0.30000001192092896}},\n"
    "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"re_lu\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"max_value\": 6.0, \"negative_slope\": 0.0, \"threshold\": 0.0}},\n"
    "{\"class_name\": \"ReLU\", \"config\": {\"name\": \"re_lu_1\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"max_value\": null, \"negative_slope\": 0.0, \"threshold\": 0.0}},\n"
    "{\"class_name\": \"ELU\", \"config\": {\"name\": \"elu\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"alpha\": 1.0}},\n"
    "{\"class_name\": \"Reshape\", \"config\": {\"name\": \"reshape_1\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"target_shape\": [-1, 4]}},\n"
    "{\"class_name\": \"PReLU\", \"config\": {\"name\": \"p_re_lu_1\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"alpha_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},"
    " \"alpha_regularizer\": null, \"alpha_constraint\": null, \"shared_axes\": null}},\n"
    "{\"class_name\": \"Flatten\", \"config\": {\"name\": \"flatten\", \"data_format\": \"channels_last\"}},\n"
    "{\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"units\": 2}}]},\n"
    "\"keras_version\": \"2.4.0\", \"backend\": \"tensorflow\"}\n";

/* Keras 3's: negative_slope, module and registered_name, batch_shape. */
static const char keras3_export[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"k3\", \"layers\": [\n"
    "{\"module\": \"keras.layers\", \"class_name\": \"InputLayer\", \"registered_name\": null,"
    " \"config\": {\"batch_shape\": [null, 6], \"dtype\": \"float32\", \"sparse\": false,"
    " \"name\": \"input_layer\"}},\n"
    "{\"module\": \"keras.layers\", \"class_name\": \"LeakyReLU\", \"registered_name\": null,"
    " \"config\": {\"name\": \"leaky_relu\", \"trainable\": true, \"dtype\": \"float32\","
    " \"negative_slope\": 0.2}},\n"
    "{\"module\": \"keras.layers\", \"class_name\": \"Dense\", \"registered_name\": null,"
    " \"config\": {\"name\": \"dense\", \"units\": 3}}]}}\n";

static void check_export(const char *file, const char *text, const char *expect)
{
    write_text(file, text);
    RunResult r;
    run_cmd(&r, "%s %s --check", nncc_path(), file);
    if (r.status != 0 || !strstr(r.out, expect))
        fail_msg("expected '%s' from --check of %s:\n%s", expect, file, r.out);
    run_cmd(&r, "%s %s -o %s.c", nncc_path(), file, file);
    if (r.status != 0)
        fail_msg("%s -o failed:\n%s", file, r.out);
}

static void test_keras(void **state)
{
    (void)state;
    /* 16 -> (4, 4, 1), BatchNormalization over its axis 3: 4; Conv2D 3x3x1x4 + 4 = 40 to
     * (2, 2, 4); p_re_lu (1, 1, 4): 4; reshape_1 (4, 4); p_re_lu_1 (4, 4): 16; Dense 16x2 + 2 */
    check_export(in_scratch("keras2.json"), keras2_export, "Total params: 98\n");
    check_export(in_scratch("keras2.json"), keras2_export, "p_re_lu_1 (PReLU)           (None, 4, 4)              16");
    check_export(in_scratch("keras3.json"), keras3_export, "leaky_relu (LeakyReLU)      (None, 6)                 0");
}

/* A key that must hold Keras's default, and one that is not Keras's. */
static void check_refused(const char *name, const char *layer, const char *expect)
{
    char text[1024];
    snprintf(text, sizeof text,
             "{\"class_name\": \"Sequential\", \"config\": {\"layers\": [\n"
             "{\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 4, 4, 2]}},\n"
             "%s]}}\n", layer);
    const char *file = in_scratch(name);
    write_text(file, text);
    RunResult r;
    run_cmd(&r, "%s %s --check", nncc_path(), file);
    char want[512];
    snprintf(want, sizeof want, "%s:%s", file, expect);
    if (r.status != 1 || !strstr(r.out, want))
        fail_msg("expected '%s':\n%s", want, r.out);
}

static void test_keras_refused(void **state)
{
    (void)state;
    check_refused("init.json",
                  "{\"class_name\": \"PReLU\", \"config\": {\"alpha_initializer\":"
                  " {\"class_name\": \"Constant\", \"config\": {\"value\": 0.25}}}}",
                  "3:57: error: PReLU: alpha_initializer 'Constant' is not supported; nncc "
                  "implements only Keras's default (Zeros)");
    check_refused("regularizer.json",
                  "{\"class_name\": \"PReLU\", \"config\": {\"alpha_regularizer\":"
                  " {\"class_name\": \"L2\", \"config\": {\"l2\": 0.01}}}}",
                  "3:57: error: PReLU: alpha_regularizer 'L2' is not supported");
    check_refused("axis.json",
                  "{\"class_name\": \"PReLU\", \"config\": {\"shared_axes\": [1, 4]}}",
                  "3:55: error: shared_axes must be between 1 and 3, got 4");
    check_refused("both.json",
                  "{\"class_name\": \"LeakyReLU\", \"config\": {\"alpha\": 0.3,"
                  " \"negative_slope\": 0.2}}",
                  "3:72: error: LeakyReLU takes alpha (Keras 2) or negative_slope (Keras 3), "
                  "not both");
    check_refused("size.json",
                  "{\"class_name\": \"Reshape\", \"config\": {\"target_shape\": [5, 7]}}",
                  "3:1: error: Reshape: target_shape (5, 7) holds 35 values, its input "
                  "(4, 4, 2) holds 32");
    check_refused("scale.json",
                  "{\"class_name\": \"Rescaling\", \"config\": {\"scale\": [0.5, 0.5]}}",
                  "3:49: error: scale must be a number");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inference),
        cmocka_unit_test(test_training),
        cmocka_unit_test(test_keras),
        cmocka_unit_test(test_keras_refused),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
