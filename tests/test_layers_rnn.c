/* test_layers_rnn.c - SimpleRNN, LSTM, GRU and Bidirectional (compiler/layer_rnn.c,
 * templates/lstm*, gru*, simple_rnn*, rnn_*, bidirectional*).
 *
 * Their numbers, forward and backward through time at batch sizes 1, 5, 6, 7 and
 * 13, are checked against PyTorch's own RNN kernels by test_ref, on the fixtures
 * tests/ref/{lstm_*, gru_*, simple_rnn_*, bidirectional_*} (gen.py says how Keras's
 * gate order and biases map onto torch's). Here:
 *   inference  the same fixtures through nncc --inference, built as C99
 *              without OpenMP: each sample's output against the reference.
 *   training   an LSTM forecaster of a sine (each sample 8 values, its label the
 *              next), from input_shape [8, 1]: it passes gradcheck, and its mean
 *              squared error, evaluated on the training windows, falls from the
 *              initial weights' to below a tenth of it and below 0.02 (predicting
 *              the mean would give about 0.5, the sine's variance); trained
 *              with 2 threads and with 1, its weights are the same to the bit.
 *   stack      gradcheck through Bidirectional(LSTM) -> GRU -> Bidirectional(SimpleRNN).
 *   init       the recurrent kernel is orthogonal (R R^T = I, Keras's Orthogonal
 *              for a [U, 4U] kernel) and the LSTM bias is 1 on the f gate only
 *              (unit_forget_bias), read back from `init --save`.
 *   keras      a to_json() export of tf.keras 2.x with LSTM and Bidirectional(GRU)
 *              layers is read and compiles, with Keras's weight names; a config
 *              that would train differently is refused.
 * The error cases of the arguments are files in tests/cases (rnn_*), run by
 * test_compiler. */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* ---- --inference against the reference ------------------------------------------- */

static void inference(void **state)
{
    (void)state;
    static const char *const fixtures[] = {
        "lstm_last", "lstm_sequences", "lstm_backwards_nobias", "lstm_stacked",
        "gru_last", "gru_sequences", "gru_stacked_nobias",
        "simple_rnn_last", "simple_rnn_sequences", "simple_rnn_backwards",
        "bidirectional_lstm_concat", "bidirectional_gru_sum", "bidirectional_rnn_ave",
        "bidirectional_lstm_mul",
    };
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures; i++)
        print_message("%-22s --inference: max relative difference %.3g\n", fixtures[i],
                      check_fixture_inference(fixtures[i]));
}

/* ---- an LSTM forecaster that trains ------------------------------------------------ */

enum { WINDOW = 8, WINDOWS = 48 };

/* The model file: inline windows of sin(0.35 k), each labelled with the next
 * value, for training and (the same) for evaluate. */
static const char *sine_model(void)
{
    static char text[32768], x[8192], y[1024];
    size_t len = 0;
    for (int w = 0; w < WINDOWS; w++)
        for (int k = 0; k < WINDOW; k++)
            len += (size_t)snprintf(x + len, sizeof x - len, "%s%.6f",
                                    k ? ", " : w ? "], [" : "[[", sin(0.35 * (w + k)));
    snprintf(x + len, sizeof x - len, "]]");
    len = 0;
    for (int w = 0; w < WINDOWS; w++)
        len += (size_t)snprintf(y + len, sizeof y - len, "%s%.6f", w ? ", " : "[",
                                sin(0.35 * (w + WINDOW)));
    snprintf(y + len, sizeof y - len, "]");
    snprintf(text, sizeof text,
             "input_shape: [%d, 1]\n"
             "layers:\n"
             "  - LSTM: {units: 8}\n"
             "  - Dense: {units: 1}\n"
             "compile: {optimizer: {name: adam, learning_rate: 0.02}, loss: mse}\n"
             "fit: {epochs: 60, batch_size: 8, seed: 5}\n"
             "data:\n"
             "  train: {format: inline, x: %s, y: %s}\n"
             "  test: {format: inline, x: %s, y: %s}\n", WINDOW, x, y, x, y);
    return text;
}

/* `evaluate --weights W` on the training data: the loss it prints. */
static double evaluated_loss(const char *trainer, const char *weights)
{
    RunResult r;
    run_cmd(&r, "%s evaluate --weights %s", trainer, weights);
    const char *at = strstr(r.out, "loss: ");
    if (r.status != 0 || !at)
        fail_msg("evaluate:\n%s", r.out);
    return atof(at + 6);
}

/* The recurrence runs on blocks of samples that one thread owns: a tensor
 * trained with 2 threads and with 1 is the same to the bit. */
static void same_tensor(const char *a_path, const char *b_path, const char *name)
{
    nn_array *a, *b;
    int na, nb;
    assert_int_equal(nn_npz_read(a_path, &a, &na), 0);
    assert_int_equal(nn_npz_read(b_path, &b, &nb), 0);
    const nn_array *ta = nn_npz_find(a, na, name), *tb = nn_npz_find(b, nb, name);
    assert_non_null(ta);
    assert_non_null(tb);
    assert_int_equal(ta->size, tb->size);
    assert_memory_equal(ta->f, tb->f, ta->size * sizeof *ta->f);
    nn_npz_free(a, na);
    nn_npz_free(b, nb);
}

static void lstm_trains(void **state)
{
    (void)state;
    const char *trainer = build_model("sine_lstm", sine_model());
    RunResult r;
    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed"))
        fail_msg("gradcheck:\n%s", r.out);
    run_cmd(&r, "%s init --seed 5 --save %s", trainer, in_scratch("w0.npz"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --quiet --threads 2 --save %s", trainer, in_scratch("w.npz"));
    if (r.status != 0)
        fail_msg("train:\n%s", r.out);
    run_cmd(&r, "%s train --quiet --threads 1 --save %s", trainer, in_scratch("w1.npz"));
    assert_int_equal(r.status, 0);
    same_tensor(in_scratch("w.npz"), in_scratch("w1.npz"), "lstm.recurrent_kernel");
    double before = evaluated_loss(trainer, in_scratch("w0.npz"));
    double after = evaluated_loss(trainer, in_scratch("w.npz"));
    print_message("mse: initial weights %.4f, after 60 epochs %.3g\n", before, after);
    assert_true(before > 0 && after < 0.1 * before && after < 0.02);
}

/* Stacked and wrapped: gradcheck through a Bidirectional LSTM's sequences into a
 * GRU that goes backwards, then a SimpleRNN's ave-merged pair. */
static void stack_gradcheck(void **state)
{
    (void)state;
    const char *trainer = build_model("rnn_stack",
        "input_shape: [6, 3]\n"
        "layers:\n"
        "  - Bidirectional: {layer: {LSTM: {units: 4, return_sequences: true}}}\n"
        "  - GRU: {units: 3, return_sequences: true, go_backwards: true}\n"
        "  - Bidirectional: {layer: {SimpleRNN: {units: 2}}, merge_mode: ave}\n"
        "  - Dense: {units: 2, activation: softmax}\n"
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n");
    RunResult r;
    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed"))
        fail_msg("gradcheck:\n%s", r.out);
    assert_output_contains(&r, "bidirectional_1.backward_simple_rnn.recurrent_kernel");
}

/* ---- initial weights ------------------------------------------------------------------ */

static void lstm_initial_weights(void **state)
{
    (void)state;
    const char *trainer = build_model("sine_lstm", sine_model());
    RunResult r;
    run_cmd(&r, "%s init --seed 11 --save %s", trainer, in_scratch("init.npz"));
    assert_int_equal(r.status, 0);
    nn_array *arrays;
    int n;
    assert_int_equal(nn_npz_read(in_scratch("init.npz"), &arrays, &n), 0);
    const nn_array *rk = nn_npz_find(arrays, n, "lstm.recurrent_kernel");
    const nn_array *bias = nn_npz_find(arrays, n, "lstm.bias");
    assert_non_null(rk);
    assert_non_null(bias);
    int u = rk->shape[0], g = rk->shape[1];
    assert_int_equal(g, 4 * u);
    double worst = 0;
    for (int i = 0; i < u; i++)
        for (int j = 0; j < u; j++) {
            double dot = 0;
            for (int k = 0; k < g; k++)
                dot += (double)rk->f[i * g + k] * rk->f[j * g + k];
            worst = fmax(worst, fabs(dot - (i == j)));
        }
    print_message("recurrent kernel: max |R R^T - I| %.3g\n", worst);
    assert_true(worst < 1e-5);
    for (int k = 0; k < g; k++)
        assert_true(bias->f[k] == (k >= u && k < 2 * u ? 1.0f : 0.0f));
    nn_npz_free(arrays, n);
}

/* ---- Keras exports ------------------------------------------------------------------ */

/* The configs tf.keras 2.10's to_json() writes for LSTM and GRU (every key). */
#define RNN_CONFIG(cls, name, units, seq, extra)                                          \
    " {\"class_name\": \"" cls "\", \"config\": {\"name\": \"" name "\", \"trainable\": true,"\
    " \"dtype\": \"float32\", \"return_sequences\": " seq ", \"return_state\": false,"      \
    " \"go_backwards\": false, \"stateful\": false, \"unroll\": false, \"time_major\": false,"\
    " \"units\": " units ", \"activation\": \"tanh\", \"recurrent_activation\": \"sigmoid\","\
    " \"use_bias\": true,"                                                                 \
    " \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},"\
    " \"recurrent_initializer\": {\"class_name\": \"Orthogonal\","                          \
    " \"config\": {\"gain\": 1.0, \"seed\": null}},"                                        \
    " \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}}," extra              \
    " \"kernel_regularizer\": null, \"recurrent_regularizer\": null,"                       \
    " \"bias_regularizer\": null, \"activity_regularizer\": null,"                          \
    " \"kernel_constraint\": null, \"recurrent_constraint\": null, \"bias_constraint\": null,"\
    " \"dropout\": 0.0, \"recurrent_dropout\": 0.0, \"implementation\": 2}}"

static const char keras_json[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"rnn_export\", \"layers\": [\n"
    " {\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 12, 3],"
    " \"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"input_1\"}},\n"
    RNN_CONFIG("LSTM", "lstm", "16", "true", " \"unit_forget_bias\": true,") ",\n"
    " {\"class_name\": \"Bidirectional\", \"config\": {\"name\": \"bidirectional\","
    " \"trainable\": true, \"dtype\": \"float32\", \"layer\":"
    RNN_CONFIG("GRU", "gru", "5", "false", " \"reset_after\": true,")
    ", \"merge_mode\": \"concat\"}},\n"
    " {\"class_name\": \"Dense\", \"config\": {\"name\": \"dense\", \"trainable\": true,"
    " \"dtype\": \"float32\", \"units\": 1, \"activation\": \"sigmoid\", \"use_bias\": true,"
    " \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},"
    " \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},"
    " \"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null,"
    " \"kernel_constraint\": null, \"bias_constraint\": null}}]},\n"
    " \"keras_version\": \"2.10.0\", \"backend\": \"tensorflow\"}\n";

static void keras_export(void **state)
{
    (void)state;
    write_text(in_scratch("export.json"), keras_json);
    RunResult r;
    run_cmd(&r, "%s %s --check", nncc_path(), in_scratch("export.json"));
    if (r.status != 0)
        fail_msg("%s", r.out);
    assert_output_contains(&r, "lstm (LSTM)");
    assert_output_contains(&r, "(None, 12, 16)");
    assert_output_contains(&r, "bidirectional (Bidirectional)");
    /* Keras's counts: LSTM 4 * (16 * (3 + 16) + 16); each GRU 3 * 5 * (16 + 5) + 2 * 15;
     * Dense 10 + 1 */
    assert_output_contains(&r, "1280");
    assert_output_contains(&r, "690");
    assert_output_contains(&r, "Total params: 1,981");
    run_cmd(&r, "%s %s -o %s", nncc_path(), in_scratch("export.json"), in_scratch("export.c"));
    if (r.status != 0)
        fail_msg("%s", r.out);
    assert_true(file_exists(in_scratch("export.c")));
    run_cmd(&r, "grep -c 'bidirectional.backward_gru.recurrent_kernel' %s", in_scratch("export.c"));
    assert_int_equal(r.status, 0);
}

/* One layer after an InputLayer of [6, 2], its config as given: nncc's error. */
static void expect_keras_error(const char *layer, const char *expected)
{
    char text[1024], want[512];
    snprintf(text, sizeof text,
             "class_name: Sequential\nconfig:\n  layers:\n"
             "  - {class_name: InputLayer, config: {batch_input_shape: [null, 6, 2]}}\n"
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
    expect_keras_error("{class_name: LSTM, config: {units: 4, stateful: true}}",
                       "5:53: error: LSTM: stateful 'true' is not supported");
    expect_keras_error("{class_name: GRU, config: {units: 4, recurrent_dropout: 0.2}}",
                       "5:61: error: GRU: recurrent_dropout 0.2 is not supported");
    expect_keras_error("{class_name: Bidirectional, config: {layer: {class_name: LSTM, "
                       "config: {units: 3, unroll: true, stateful: true}}}}",
                       "5:111: error: LSTM: stateful 'true' is not supported");
    expect_keras_error("{class_name: LSTM, config: {units: 4, recurrent_initializer: "
                       "{class_name: Identity}}}",
                       "5:79: error: unknown initializer 'Identity' (known: ");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(inference),
        cmocka_unit_test(lstm_trains),
        cmocka_unit_test(stack_gradcheck),
        cmocka_unit_test(lstm_initial_weights),
        cmocka_unit_test(keras_export),
        cmocka_unit_test(keras_refusals),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
