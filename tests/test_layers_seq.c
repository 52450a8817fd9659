/* test_layers_seq.c - sequences and their layers: Embedding, Conv1D, the 1-D
 * pools, Dense on a sequence (compiler/layer_seq.c, layer_core.c; the 1-D
 * layers run the 2-D templates on a 1 x T image, Embedding has its own).
 *
 * Their numbers against PyTorch are tests/ref's fixtures dense_sequence*,
 * conv1d_*, maxpool1d*, avgpool1d*, gap1d*, gmp1d*, embedding* (tests/ref/gen.py
 * says how Keras's layouts and TensorFlow's same and causal padding map onto
 * torch's F.conv1d, F.embedding and pools) and sequence_layers (Add,
 * Activation, Dropout, Concatenate, Reshape and Dense on sequences), which
 * test_ref checks: outputs and every gradient at batch sizes 1, 5, 6, 7 and 13,
 * each layer at two sequence lengths. Here, beyond them:
 *
 *   inference  each of those fixtures through nncc --inference with its
 *              weights, built as C99 without OpenMP: every sample's output
 *              against the fixture's, to 1e-5 of max(1, |value|).
 *   trains     Embedding -> Conv1D -> MaxPooling1D -> GlobalAveragePooling1D
 *              -> Dense on token ids read from a CSV file: gradcheck passes, the
 *              loss falls, 1 and 3 threads save the same bits; the summary
 *              shows (None, T, F); a token id outside input_dim in a data file
 *              or a predict row is refused naming the sample.
 *   keras      a to_json export with Embedding, Conv1D (causal, dilated),
 *              MaxPooling1D, GlobalAveragePooling1D is read and compiled; keys
 *              with which Keras would compute something else are refused.
 * Their argument errors are files in tests/cases (embedding_*, conv1d_*,
 * global_pool1d_*), run by test_compiler.
 */
#include "testutil.h"

#include <glob.h>
#include <math.h>

#include "rt.h"

/* ---- inference ------------------------------------------------------------------------------- */

static void test_inference(void **state)
{
    (void)state;
    static const char *const patterns[] = {
        "tests/ref/dense_sequence*.npz", "tests/ref/conv1d_*.npz", "tests/ref/maxpool1d*.npz",
        "tests/ref/avgpool1d*.npz", "tests/ref/gap1d*.npz", "tests/ref/gmp1d*.npz",
        "tests/ref/embedding*.npz", "tests/ref/sequence_*.npz",
    };
    int count = 0;
    for (size_t i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        glob_t g;
        assert_int_equal(glob(patterns[i], 0, NULL, &g), 0);
        for (size_t k = 0; k < g.gl_pathc; k++, count++) {
            char name[128];   /* tests/ref/NAME.npz */
            const char *base = strrchr(g.gl_pathv[k], '/') + 1;
            snprintf(name, sizeof name, "%.*s", (int)(strlen(base) - 4), base);
            double worst = check_fixture_inference(name);
            printf("    %-28s max scaled diff %.3g\n", name, worst);
        }
        globfree(&g);
    }
    assert_true(count >= 25);   /* the fixtures are there, not silently gone */
}

/* ---- trains ----------------------------------------------------------------------------------- */

enum { SAMPLES = 32, STEPS = 10, VOCAB = 20 };

static const char seq_model[] =
    "name: seq\n"
    "input_shape: [10]\n"
    "layers:\n"
    "  - Embedding: {input_dim: 20, output_dim: 8}\n"
    "  - Conv1D: {filters: 8, kernel_size: 3, padding: same, activation: tanh}\n"
    "  - MaxPooling1D: {pool_size: 2}\n"
    "  - GlobalAveragePooling1D\n"
    "  - Dense: {units: 1, activation: sigmoid}\n"
    "compile: {optimizer: {name: adam, learning_rate: 0.02}, loss: binary_crossentropy,\n"
    "          metrics: [accuracy]}\n"
    "fit: {epochs: 40, batch_size: 8}\n"
    "data:\n"
    "  train: {format: csv, path: seq.csv}\n";

/* 32 sequences of 10 token ids; label 1 when most ids lie in the upper half of
 * the vocabulary: a bag of words the model must learn through its embeddings. */
static void write_seq_data(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    unsigned state = 12345;
    for (int s = 0; s < SAMPLES; s++) {
        int label = s % 2;
        for (int t = 0; t < STEPS; t++) {
            state = state * 1103515245u + 12345u;
            int r = (int)(state >> 16) % 10;
            /* a labelled sequence draws 8 of its 10 ids from its own half */
            int upper = (r < 8) == (label == 1);
            int id = (upper ? VOCAB / 2 : 0) + (int)(state >> 8) % (VOCAB / 2);
            fprintf(f, "%d,", id);
        }
        fprintf(f, "%d\n", label);
    }
    assert_int_equal(fclose(f), 0);
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
    write_text(in_scratch("seq.yaml"), seq_model);
    write_seq_data(in_scratch("seq.csv"));
    char trainer[512];
    snprintf(trainer, sizeof trainer, "%s", build_file(in_scratch("seq.yaml"), "seq"));
    RunResult r;
    run_cmd(&r, "%s summary", trainer);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "(None, 10, 8)");    /* embedding, conv1d: (None, T, F) */
    assert_output_contains(&r, "(None, 5, 8)");     /* max_pooling1d */
    assert_output_contains(&r, "Total params: 369");   /* 20*8 + (3*8*8 + 8) + (8 + 1) */

    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed\n"))
        fail_msg("gradcheck:\n%s", r.out);
    static const char *const tensors[] = {"embedding.embeddings", "conv1d.kernel", "conv1d.bias",
                                          "dense.kernel", "dense.bias"};
    for (size_t i = 0; i < sizeof tensors / sizeof tensors[0]; i++) {
        char line[64];
        snprintf(line, sizeof line, "%s ", tensors[i]);
        if (!strstr(r.out, line))
            fail_msg("gradcheck does not list %s:\n%s", tensors[i], r.out);
    }
    run_cmd(&r, "cd %s && %s train --history h.csv --quiet --save w.npz", scratch, trainer);
    if (r.status != 0)
        fail_msg("train failed:\n%s", r.out);
    double first = 0, last = 0;
    history_losses(in_scratch("h.csv"), &first, &last);
    if (!(last < 0.5 * first))
        fail_msg("the loss went from %g to %g in 40 epochs", first, last);

    /* No sum is split between threads: the weights come out the same bits. */
    run_cmd(&r, "cd %s && %s train --threads 1 --epochs 3 --quiet --save one.npz && "
                "%s train --threads 3 --epochs 3 --quiet --save three.npz && cmp one.npz three.npz",
            scratch, trainer, trainer);
    if (r.status != 0)
        fail_msg("1 and 3 threads:\n%s", r.out);

    /* Token ids outside input_dim: refused where they are read, naming the sample. */
    write_text(in_scratch("bad.csv"), "1,2,3,4,5,6,7,8,9,10,1\n0,1,2,3,4,5,6,7,8,20,0\n");
    run_cmd(&r, "cd %s && %s evaluate --weights w.npz --data bad.csv", scratch, trainer);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "bad.csv: error: token id 20 at step 9 of sample 1 is not a "
                               "whole number from 0 to 19 (the Embedding's input_dim is 20)");
    run_cmd(&r, "cd %s && %s predict --weights w.npz 1,2,3,4,5,6,7,8,9,2.5", scratch, trainer);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "token id 2.5 at step 9 of sample 0 is not a whole number");
    run_cmd(&r, "cd %s && %s predict --weights w.npz 1,2,3,4,5,6,7,8,9,2", scratch, trainer);
    assert_int_equal(r.status, 0);
}

/* ---- keras --------------------------------------------------------------------------------- */

/* A to_json export, tf.keras 2.x's layout and keys, written by hand. */
static const char keras_export[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"seq\", \"layers\": [\n"
    "  {\"class_name\": \"InputLayer\", \"config\": {\"batch_input_shape\": [null, 12],\n"
    "   \"dtype\": \"float32\", \"sparse\": false, \"ragged\": false, \"name\": \"in\"}},\n"
    "  {\"class_name\": \"Embedding\", \"config\": {\"name\": \"emb\", \"trainable\": true,\n"
    "   \"batch_input_shape\": [null, 12], \"dtype\": \"float32\", \"input_dim\": 50,\n"
    "   \"output_dim\": 6, \"embeddings_initializer\": {\"class_name\": \"RandomUniform\",\n"
    "   \"config\": {\"minval\": -0.05, \"maxval\": 0.05, \"seed\": null}},\n"
    "   \"embeddings_regularizer\": null, \"activity_regularizer\": null,\n"
    "   \"embeddings_constraint\": null, \"mask_zero\": false, \"input_length\": 12}},\n"
    "  {\"class_name\": \"Conv1D\", \"config\": {\"name\": \"conv\", \"trainable\": true,\n"
    "   \"dtype\": \"float32\", \"filters\": 4, \"kernel_size\": [3], \"strides\": [1],\n"
    "   \"padding\": \"causal\", \"data_format\": \"channels_last\", \"dilation_rate\": [2],\n"
    "   \"groups\": 1, \"activation\": \"relu\", \"use_bias\": true,\n"
    "   \"kernel_initializer\": {\"class_name\": \"GlorotUniform\", \"config\": {\"seed\": null}},\n"
    "   \"bias_initializer\": {\"class_name\": \"Zeros\", \"config\": {}},\n"
    "   \"kernel_regularizer\": null, \"bias_regularizer\": null, \"activity_regularizer\": null,\n"
    "   \"kernel_constraint\": null, \"bias_constraint\": null}},\n"
    "  {\"class_name\": \"MaxPooling1D\", \"config\": {\"name\": \"pool\", \"trainable\": true,\n"
    "   \"dtype\": \"float32\", \"strides\": [2], \"pool_size\": [2], \"padding\": \"valid\",\n"
    "   \"data_format\": \"channels_last\"}},\n"
    "  {\"class_name\": \"GlobalAveragePooling1D\", \"config\": {\"name\": \"gap\",\n"
    "   \"trainable\": true, \"dtype\": \"float32\", \"data_format\": \"channels_last\",\n"
    "   \"keepdims\": false}},\n"
    "  {\"class_name\": \"Dense\", \"config\": {\"name\": \"out\", \"units\": 1,\n"
    "   \"activation\": \"sigmoid\"}}]},\n"
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
    /* emb 50*6; conv (causal: T stays 12) 3*6*4 + 4; pool 6x4; gap 4; out 4 + 1 */
    assert_output_contains(&r, "emb (Embedding)");
    assert_output_contains(&r, "(None, 12, 6)");
    assert_output_contains(&r, "conv (Conv1D)");
    assert_output_contains(&r, "(None, 12, 4)");
    assert_output_contains(&r, "(None, 6, 4)");
    char total[64];
    snprintf(total, sizeof total, "Total params: %d", 50 * 6 + (3 * 6 * 4 + 4) + (4 + 1));
    assert_output_contains(&r, total);
    run_cmd(&r, "%s %s --no-main -o %s", nncc_path(), file, in_scratch("export.c"));
    if (r.status != 0)
        fail_msg("%s", r.out);

    /* Keys that would make Keras compute something else, each refused by name. */
    static const KerasChange refused[] = {
        {"\"mask_zero\": ", "true", "mask_zero: true is not supported"},
        {"\"embeddings_initializer\": ", "{\"class_name\": \"Identity\", \"config\": {}}",
         "unknown initializer 'Identity'"},
        {"\"input_length\": ", "10", "input_length 10 differs from its input's length 12"},
        {"\"groups\": ", "2", "Conv1D: groups '2'"},
        {"\"padding\": ", "\"full\"", "unknown padding 'full'"},
        {"\"keepdims\": ", "true", "GlobalAveragePooling1D: keepdims 'true'"},
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
