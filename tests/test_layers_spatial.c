/* test_layers_spatial.c - ZeroPadding2D, Cropping2D, UpSampling2D and
 * GlobalMaxPooling2D (compiler/layer_spatial.c, templates/shift2d*, upsampling2d*,
 * gmp2d*).
 *
 *   reference  each case of tests/spatial_ref.h (PyTorch's numbers, written by
 *              tests/spatial_ref.py) as the layer named probe of a model
 *              feed (a 1x1 Conv2D whose kernel is the identity), probe, Flatten:
 *              its output, and its input gradient for the reference's dy, at
 *              batch sizes 1, 5 and 6, to 1e-5 relative; then the same model
 *              through nncc --inference, built as C99 without OpenMP, on each
 *              sample.
 *   training   a model with all four layers is built with make trainer,
 *              passes gradcheck, and its loss falls in a few epochs.
 *   keras      a to_json() export in Keras 2.x's layout with the four layers
 *              (every config key as Keras writes it) is read and compiles;
 *              the keys that would change the numbers are refused at their place.
 * The error cases of the arguments are files in tests/cases (zeropad_*,
 * cropping_*, upsampling_*), run by test_compiler. */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* ---- against the reference ------------------------------------------------------ */

/* Training side: includes the generated m.c and the reference; CASE names the case. */
static const char train_driver[] =
    "#include \"m.c\"\n"
    "#pragma GCC diagnostic ignored \"-Wunused-const-variable\"\n"
    "#include \"spatial_ref.h\"\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "#define CAT2(a, b) a##b\n"
    "#define CAT(a, b) CAT2(a, b)\n"
    "#define REF(what) CAT(CASE, what)\n"
    "\n"
    "static double worst[2];\n"
    "static int failures;\n"
    "static void compare(int which, int n, const float *got, const float *want, long count)\n"
    "{\n"
    "    for (long i = 0; i < count; i++) {\n"
    "        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));\n"
    "        worst[which] = fmax(worst[which], d);\n"
    "        if (!(d <= 1e-5) && failures++ < 10)\n"
    "            printf(\"FAIL %s[%ld] at batch %d: got %.9g, want %.9g\\n\",\n"
    "                   which ? \"dx\" : \"y\", i, n, got[i], want[i]);\n"
    "    }\n"
    "}\n"
    "\n"
    "int main(void)\n"
    "{\n"
    "    float *params = calloc(m_model.n_params, sizeof(float));\n"
    "    float *grads = calloc(m_model.n_params, sizeof(float));\n"
    "    float *work = calloc((size_t)REF_N * m_model.work_floats, sizeof(float));\n"
    "    for (int t = 0; t < m_model.n_tensors; t++)   /* the feed's identity kernel */\n"
    "        memcpy(params + m_model.tensors[t].offset, m_model.tensors[t].values,\n"
    "               m_model.tensors[t].size * sizeof(float));\n"
    "    static const int batches[] = {1, 5, REF_N};\n"
    "    for (int b = 0; b < 3; b++) {\n"
    "        const int n = batches[b];\n"
    "        nn_pass pass = {.training = 1, .seed = 1};\n"
    "        compare(0, n, m_model.forward(&pass, params, work, REF(_x), n), REF(_y),\n"
    "                (long)n * REF(_OUT));\n"
    "        m_model.backward(&pass, params, grads, work, REF(_x), REF(_dy), n);\n"
    "        compare(1, n, work + (size_t)n * feed_dout, REF(_dx), (long)n * REF(_IN));\n"
    "    }\n"
    "    printf(\"max relative difference: y %.3g dx %.3g\\n%d failures\\n\", worst[0], worst[1],\n"
    "           failures);\n"
    "    free(params), free(grads), free(work);\n"
    "    return failures != 0;\n"
    "}\n";

/* Inference side: m_predict from nncc --inference, one sample at a time. */
static const char inference_driver[] =
    "#include <math.h>\n"
    "#include <stdio.h>\n"
    "#pragma GCC diagnostic ignored \"-Wunused-const-variable\"\n"
    "#include \"spatial_ref.h\"\n"
    "#define CAT2(a, b) a##b\n"
    "#define CAT(a, b) CAT2(a, b)\n"
    "#define REF(what) CAT(CASE, what)\n"
    "void m_predict(const float *input, float *output);\n"
    "int main(void)\n"
    "{\n"
    "    static float y[REF(_OUT)];\n"
    "    double worst = 0;\n"
    "    for (int s = 0; s < REF_N; s++) {\n"
    "        m_predict(REF(_x) + s * REF(_IN), y);\n"
    "        for (int i = 0; i < REF(_OUT); i++) {\n"
    "            double want = REF(_y)[s * REF(_OUT) + i];\n"
    "            worst = fmax(worst, fabs(y[i] - want) / fmax(1.0, fabs(want)));\n"
    "        }\n"
    "    }\n"
    "    printf(\"inference: max relative difference %.3g\\n\", worst);\n"
    "    return !(worst <= 1e-5);\n"
    "}\n";

/* The feed's kernel, the identity over c channels, as the weights of --inference. */
static void write_feed_weights(const char *path, int c)
{
    nn_array k = {.name = "feed.kernel", .dtype = NN_F32, .rank = 4, .shape = {1, 1, c, c}};
    k.size = (size_t)c * (size_t)c;
    k.f = calloc(k.size, sizeof *k.f);
    assert_non_null(k.f);
    for (int i = 0; i < c; i++)
        k.f[i * c + i] = 1.0f;
    assert_int_equal(nn_npz_write(path, &k, 1), 0);
    free(k.f);
}

/* The model of a case: input_shape "[H, W, C]", the probe's YAML. */
static void write_case_model(const char *path, const char *shape, const char *probe)
{
    int c = atoi(strrchr(shape, ',') + 1);
    char yaml[4096];
    int at = snprintf(yaml, sizeof yaml,
                      "name: m\ninput_shape: %s\nlayers:\n"
                      "  - Conv2D: {filters: %d, kernel_size: 1, use_bias: false, name: feed,\n"
                      "             weights: {kernel: [[[", shape, c);
    for (int i = 0; i < c; i++) {
        at += snprintf(yaml + at, sizeof yaml - (size_t)at, "%s[", i ? ", " : "");
        for (int j = 0; j < c; j++)
            at += snprintf(yaml + at, sizeof yaml - (size_t)at, "%s%d", j ? ", " : "", i == j);
        at += snprintf(yaml + at, sizeof yaml - (size_t)at, "]");
    }
    snprintf(yaml + at, sizeof yaml - (size_t)at,
             "]]]}}\n  - %s\n  - Flatten\ncompile: {optimizer: sgd, loss: mse}\n", probe);
    write_text(path, yaml);
}

static const char *cc_flags(void)
{
    return strcmp(san(), "1") == 0
               ? "-O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined"
               : "-O3 -march=native -ffp-contract=fast";
}

/* Builds and runs both drivers for a case; prints what they measured. */
static void check_case(const char *name, const char *shape, const char *probe)
{
    char dir[64];
    make_scratch(dir, sizeof dir);
    char path[128], cwd[512];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(path, sizeof path, "%s/m.yaml", dir);
    write_case_model(path, shape, probe);
    snprintf(path, sizeof path, "%s/drv.c", dir);
    write_text(path, train_driver);
    snprintf(path, sizeof path, "%s/inf.c", dir);
    write_text(path, inference_driver);
    snprintf(path, sizeof path, "%s/W.npz", dir);
    write_feed_weights(path, atoi(strrchr(shape, ',') + 1));

    RunResult r;
    run_cmd(&r,
            "cd %s && %s/%s m.yaml --no-main -o m.c && "
            "cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fopenmp %s -I%s/runtime "
            "-I%s/tests -DCASE=%s -o drv drv.c %s/%s/libnnrt.a -lstb -lz -lm && "
            "OMP_NUM_THREADS=2 ./drv",
            dir, cwd, nncc_path(), cc_flags(), cwd, cwd, name, cwd, build_dir());
    if (r.status != 0 || !strstr(r.out, "\n0 failures"))
        fail_msg("%s (%s):\n%s", name, probe, r.out);
    print_message("%-18s %.*s\n", name, (int)strcspn(r.out, "\n"), r.out);
    run_cmd(&r,
            "cd %s && %s/%s m.yaml --inference --weights W.npz -o m_predict.c && "
            "cc -std=c99 -Wall -Wextra -Werror %s -I%s/tests -DCASE=%s -o inf inf.c "
            "m_predict.c -lm && ./inf",
            dir, cwd, nncc_path(), strcmp(san(), "1") == 0 ? "-fsanitize=address,undefined" : "",
            cwd, name);
    if (r.status != 0)
        fail_msg("%s (%s), inference:\n%s", name, probe, r.out);
    print_message("%-18s %s", name, r.out);
    rm_tree(dir);
}

#pragma GCC diagnostic ignored "-Wunused-const-variable"
#include "spatial_ref.h"
#define CHECK(name) check_case(#name, name##_SHAPE, name##_YAML)

static void zero_padding(void **state)
{
    (void)state;
    CHECK(zeropad_default);   /* 1 on every side */
    CHECK(zeropad_edges);     /* [[1, 2], [0, 3]]: each side its own */
    CHECK(zeropad_pair);      /* [2, 1]: rows, columns */
}

static void cropping(void **state)
{
    (void)state;
    CHECK(crop_edges);        /* [[1, 2], [2, 0]] */
    CHECK(crop_int);          /* 1 */
    CHECK(crop_mixed);        /* [0, [1, 3]]: an axis of each form */
    CHECK(crop_default);      /* 0: the identity */
}

static void up_sampling(void **state)
{
    (void)state;
    CHECK(upsample_default);  /* 2x2 */
    CHECK(upsample_rect);     /* 3x2 */
    CHECK(upsample_one);      /* 1x4: a size of 1 */
}

static void global_max_pooling(void **state)
{
    (void)state;
    CHECK(gmp);               /* distinct values */
    CHECK(gmp_ties);          /* values 0, 1, 2: ties everywhere, to the first */
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

/* The loss after epoch `epoch` in a history CSV (epoch,loss,...), or -1. */
static double history_loss(const char *csv, int epoch)
{
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[512];
    double loss = -1;
    while (fgets(line, sizeof line, f)) {
        int e;
        double l;
        if (sscanf(line, "%d,%lf", &e, &l) == 2 && e == epoch)
            loss = l;
    }
    fclose(f);
    return loss;
}

static void model_trains(void **state)
{
    (void)state;
    const char *trainer = build_model("spatial", trained_model);
    RunResult r;
    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed"))
        fail_msg("gradcheck:\n%s", r.out);
    run_cmd(&r, "%s train --quiet --history %s", trainer, in_scratch("h.csv"));
    if (r.status != 0)
        fail_msg("train:\n%s", r.out);
    double first = history_loss(in_scratch("h.csv"), 1), last = history_loss(in_scratch("h.csv"), 30);
    print_message("loss: epoch 1 %.4f, epoch 30 %.4f\n", first, last);
    assert_true(first > 0 && last >= 0 && last < 0.5 * first);
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
        cmocka_unit_test(zero_padding),
        cmocka_unit_test(cropping),
        cmocka_unit_test(up_sampling),
        cmocka_unit_test(global_max_pooling),
        cmocka_unit_test(model_trains),
        cmocka_unit_test(keras_export),
        cmocka_unit_test(keras_refusals),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
