/* test_layers_conv.c - Conv2DTranspose, DepthwiseConv2D and SeparableConv2D
 * (compiler/layer_conv2.c; templates/conv2d_transpose*, depthwise_*, separable_*).
 *
 *   reference  every case of tests/layers_conv/cases.h, at batch sizes 1 and 5:
 *              the layer's output, and the gradients of sum(y * dy) for its input
 *              and every tensor, against PyTorch's (tests/layers_conv/gen.py
 *              wrote them into ref.npz), to 1e-5 of max(1, |value|); the same
 *              bits with 1 and 3 threads; and for batch 5 the --inference C,
 *              built without OpenMP, against the same outputs, sample by sample.
 *   trains     a model of all three: gradcheck passes and the loss falls.
 *   keras      a to_json export holding the three is read and compiled; keys
 *              with which Keras would compute something else are refused.
 * Their argument errors are files in tests/cases (conv2d_transpose_*,
 * depthwise_*, separable_*), run by test_compiler.
 */
#include "testutil.h"

#include <math.h>

#include "rt.h"

#include "layers_conv/cases.h"

#define REF "tests/layers_conv/ref.npz"
#define N_CASES (sizeof ref_cases / sizeof ref_cases[0])

/* The driver, written beside each case's m.c as drv.c. */
static const char driver_source[] =
    "/* drv.c, written by tests/test_layers_conv.c: the model in m.c (a 1x1 convolution\n"
    " * named feed, made the identity here, then the layer named probe) on case argv[2]\n"
    " * of the reference file argv[1]: the probe's tensors and x from the file, forward,\n"
    " * then backward from the file's dy; the input's gradient lands in feed_dout.\n"
    " * Prints each quantity's largest error against the file's, relative to\n"
    " * max(1, |want|), FAIL lines beyond 1e-5, and a hash of every bit computed. */\n"
    "#include \"m.c\"\n"
    "#include \"rt.h\"\n"
    "\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "\n"
    "static nn_array *arrays;\n"
    "static int n_arrays, failures;\n"
    "static const char *case_name;\n"
    "static uint64_t hash = 14695981039346656037ULL;\n"
    "\n"
    "static const float *ref(const char *what, size_t size)\n"
    "{\n"
    "    char name[160];\n"
    "    snprintf(name, sizeof name, \"%s.%s\", case_name, what);\n"
    "    const nn_array *a = nn_npz_find(arrays, n_arrays, name);\n"
    "    if (!a || a->dtype != NN_F32 || a->size != size) {\n"
    "        printf(\"FAIL no array %s of %zu floats\\n\", name, size);\n"
    "        exit(1);\n"
    "    }\n"
    "    return a->f;\n"
    "}\n"
    "\n"
    "static void compare(const char *what, const float *got, size_t size)\n"
    "{\n"
    "    const float *want = ref(what, size);\n"
    "    double worst = 0;\n"
    "    for (size_t i = 0; i < size; i++) {\n"
    "        double err = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));\n"
    "        if (!(err <= 1e-5) && failures++ < 10)\n"
    "            printf(\"FAIL %s[%zu]: got %.9g, want %.9g\\n\", what, i, got[i], want[i]);\n"
    "        worst = err > worst || isnan(err) ? err : worst;\n"
    "        uint32_t bits;\n"
    "        memcpy(&bits, &got[i], sizeof bits);\n"
    "        hash = (hash ^ bits) * 1099511628211ULL;\n"
    "    }\n"
    "    printf(\"%s %.3g\\n\", what, worst);\n"
    "}\n"
    "\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    if (argc != 3 || nn_npz_read(argv[1], &arrays, &n_arrays) != 0)\n"
    "        return 2;\n"
    "    case_name = argv[2];\n"
    "    float *params = calloc(m_model.n_params, sizeof(float));\n"
    "    float *grads = calloc(m_model.n_params, sizeof(float));\n"
    "    float *work = calloc((size_t)T_N * m_model.work_floats, sizeof(float));\n"
    "    for (int c = 0; c < T_C; c++)\n"
    "        params[feed_kernel + c * T_C + c] = 1.0f;\n"
    "    for (int t = 0; t < m_model.n_tensors; t++) {\n"
    "        const nn_tensor *ts = &m_model.tensors[t];\n"
    "        if (strncmp(ts->name, \"probe.\", 6) == 0)\n"
    "            memcpy(params + ts->offset, ref(ts->name + 6, ts->size), ts->size * sizeof(float));\n"
    "    }\n"
    "    const float *x = ref(\"x\", (size_t)T_N * m_model.input_size);\n"
    "    nn_pass pass = {.training = 1, .seed = 1};\n"
    "    compare(\"y\", m_model.forward(&pass, params, work, x, T_N),\n"
    "            (size_t)T_N * m_model.output_size);\n"
    "    m_model.backward(&pass, params, grads, work, x,\n"
    "                     ref(\"dy\", (size_t)T_N * m_model.output_size), T_N);\n"
    "    compare(\"dx\", work + (size_t)T_N * feed_dout, (size_t)T_N * m_model.input_size);\n"
    "    for (int t = 0; t < m_model.n_tensors; t++) {\n"
    "        const nn_tensor *ts = &m_model.tensors[t];\n"
    "        char what[64];\n"
    "        snprintf(what, sizeof what, \"d%s\", ts->name + 6);\n"
    "        if (strncmp(ts->name, \"probe.\", 6) == 0)\n"
    "            compare(what, grads + ts->offset, ts->size);\n"
    "    }\n"
    "    printf(\"hash %016llx\\n\", (unsigned long long)hash);\n"
    "    nn_npz_free(arrays, n_arrays);\n"
    "    free(params), free(grads), free(work);\n"
    "    return failures != 0;\n"
    "}\n";

/* The --inference C's driver: predicts each sample of X.bin into Y.bin. */
static const char predict_source[] =
    "#include <stdio.h>\n"
    "void m_predict(const float *input, float *output);\n"
    "int main(void)\n"
    "{\n"
    "    static float x[IN], y[OUT];\n"
    "    FILE *in = fopen(\"X.bin\", \"rb\"), *out = fopen(\"Y.bin\", \"wb\");\n"
    "    if (!in || !out)\n"
    "        return 1;\n"
    "    while (fread(x, sizeof x, 1, in) == 1) {\n"
    "        m_predict(x, y);\n"
    "        if (fwrite(y, sizeof y, 1, out) != 1)\n"
    "            return 1;\n"
    "    }\n"
    "    return fclose(in) != 0 || fclose(out) != 0;\n"
    "}\n";

static bool sanitized(void)
{
    return strcmp(san(), "1") == 0;
}

/* The reference file's array CASE.what; fails the test if it is not there. */
static const nn_array *ref_array(const nn_array *arrays, int n, const char *name, const char *what)
{
    char full[160];
    snprintf(full, sizeof full, "%s.%s", name, what);
    const nn_array *a = nn_npz_find(arrays, n, full);
    if (!a)
        fail_msg("%s has no array %s", REF, full);
    return a;
}

/* ---- reference ---------------------------------------------------------------------------- */

/* The largest error of each quantity over all cases, for the report. */
typedef struct {
    char what[48];
    double worst;
} Worst;
static Worst worst[16];
static int n_worst;

/* From the driver's lines "QUANTITY ERROR", for the layer class that starts layer. */
static void note_errors(const char *layer, const char *out)
{
    char what[24];
    double err;
    for (const char *p = out; p && sscanf(p, "%23s %lf", what, &err) == 2;
         p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strcmp(what, "hash") == 0)
            continue;
        char key[48];
        snprintf(key, sizeof key, "%.*s %s", (int)strcspn(layer, ":"), layer, what);
        int i = 0;
        while (i < n_worst && strcmp(worst[i].what, key) != 0)
            i++;
        if (i == n_worst && n_worst < 16)
            snprintf(worst[n_worst++].what, sizeof worst[0].what, "%s", key);
        if (i < 16 && err > worst[i].worst)
            worst[i].worst = err;
    }
}

/* The model of a case: feed (1x1 convolution over c channels), then the probe. */
static void write_model(const char *dir, int i, int c)
{
    char path[128], yaml[1024];
    snprintf(yaml, sizeof yaml,
             "name: m\ninput_shape: %s\nlayers:\n"
             "  - Conv2D: {filters: %d, kernel_size: 1, use_bias: false, name: feed}\n  - %s\n",
             ref_cases[i].input_shape, c, ref_cases[i].layer);
    snprintf(path, sizeof path, "%s/m.yaml", dir);
    write_text(path, yaml);
}

/* The trainer's C of case i, run with 1 and with 3 threads: same bits, within 1e-5. */
static void check_trainer(const char *dir, int i, int c)
{
    RunResult r;
    run_cmd(&r, "%s %s/m.yaml --no-main -o %s/m.c", nncc_path(), dir, dir);
    if (r.status != 0)
        fail_msg("%s: nncc failed:\n%s", ref_cases[i].name, r.out);
    char path[128];
    snprintf(path, sizeof path, "%s/drv.c", dir);
    write_text(path, driver_source);
    run_cmd(&r,
            "cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fopenmp %s -Iruntime -I%s "
            "-DT_N=%d -DT_C=%d -o %s/drv %s/drv.c %s/libnnrt.a -lstb -lz -lm",
            sanitized() ? "-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined"
                        : "-O3 -march=native -ffp-contract=fast",
            dir, ref_cases[i].n, c, dir, dir, build_dir());
    if (r.status != 0)
        fail_msg("%s: the driver did not build:\n%s", ref_cases[i].name, r.out);
    RunResult one, three;
    run_cmd(&one, "OMP_NUM_THREADS=1 %s/drv %s %s", dir, REF, ref_cases[i].name);
    run_cmd(&three, "OMP_NUM_THREADS=3 %s/drv %s %s", dir, REF, ref_cases[i].name);
    if (one.status != 0 || strstr(one.out, "FAIL"))
        fail_msg("%s (%s):\n%s", ref_cases[i].name, ref_cases[i].layer, one.out);
    if (strcmp(one.out, three.out) != 0)
        fail_msg("%s: 1 and 3 threads differ:\n%s\n%s", ref_cases[i].name, one.out, three.out);
    note_errors(ref_cases[i].layer, one.out);
}

/* W.npz (feed the identity, the probe's tensors from the reference) and X.bin,
 * the case's samples. */
static void write_inference_inputs(const char *dir, int i, int c, const nn_array *arrays,
                                   int n_arrays)
{
    static const char *const roles[] = {"kernel", "depthwise_kernel", "pointwise_kernel", "bias"};
    nn_array w[5] = {{.name = "feed.kernel", .dtype = NN_F32, .rank = 4, .shape = {1, 1, c, c}}};
    w[0].size = (size_t)c * (size_t)c;
    w[0].f = calloc(w[0].size, sizeof(float));
    assert_non_null(w[0].f);
    for (int k = 0; k < c; k++)
        w[0].f[k * c + k] = 1.0f;
    int n = 1;
    for (size_t k = 0; k < sizeof roles / sizeof roles[0]; k++) {
        char full[160];
        snprintf(full, sizeof full, "%s.%s", ref_cases[i].name, roles[k]);
        const nn_array *a = nn_npz_find(arrays, n_arrays, full);
        if (a) {
            w[n] = *a;
            snprintf(w[n++].name, sizeof w[0].name, "probe.%s", roles[k]);
        }
    }
    char path[128];
    snprintf(path, sizeof path, "%s/W.npz", dir);
    assert_int_equal(nn_npz_write(path, w, n), 0);
    free(w[0].f);

    const nn_array *x = ref_array(arrays, n_arrays, ref_cases[i].name, "x");
    snprintf(path, sizeof path, "%s/X.bin", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(x->f, sizeof(float), x->size, f), x->size);
    assert_int_equal(fclose(f), 0);
}

/* nncc --inference for case i, built as C99 without OpenMP: each sample's
 * output against the reference's. */
static void check_inference(const char *dir, int i, int c)
{
    nn_array *arrays;
    int n_arrays;
    assert_int_equal(nn_npz_read(REF, &arrays, &n_arrays), 0);
    write_inference_inputs(dir, i, c, arrays, n_arrays);
    const nn_array *x = ref_array(arrays, n_arrays, ref_cases[i].name, "x");
    const nn_array *y = ref_array(arrays, n_arrays, ref_cases[i].name, "y");
    int n = ref_cases[i].n;
    char path[128];
    snprintf(path, sizeof path, "%s/p.c", dir);
    write_text(path, predict_source);
    RunResult r;
    run_cmd(&r, "%s %s/m.yaml --inference --weights %s/W.npz -o %s/m_predict.c", nncc_path(),
            dir, dir, dir);
    if (r.status != 0)
        fail_msg("%s: nncc --inference failed:\n%s", ref_cases[i].name, r.out);
    const char *flags = sanitized() ? "-fsanitize=address,undefined" : "-O2";
    run_cmd(&r, "cd %s && cc -std=c99 -Wall -Wextra -Werror %s -DIN=%zu -DOUT=%zu -o p p.c "
                "m_predict.c -lm && ./p",
            dir, flags, x->size / (size_t)n, y->size / (size_t)n);
    if (r.status != 0)
        fail_msg("%s: the inference C failed:\n%s", ref_cases[i].name, r.out);
    float *got = calloc(y->size + 1, sizeof *got);
    assert_non_null(got);
    snprintf(path, sizeof path, "%s/Y.bin", dir);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, sizeof *got, y->size + 1, f), y->size);
    fclose(f);
    for (size_t k = 0; k < y->size; k++)
        if (!(fabsf(got[k] - y->f[k]) <= 1e-5f * fmaxf(1.0f, fabsf(y->f[k]))))
            fail_msg("%s: inference output %zu is %.9g, want %.9g", ref_cases[i].name, k, got[k],
                     y->f[k]);
    free(got);
    nn_npz_free(arrays, n_arrays);
}

static void test_reference(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CASES; i++) {
        int h, w, c;
        assert_int_equal(sscanf(ref_cases[i].input_shape, "[%d, %d, %d]", &h, &w, &c), 3);
        char dir[64];
        make_scratch(dir, sizeof dir);
        write_model(dir, (int)i, c);
        check_trainer(dir, (int)i, c);
        if (ref_cases[i].n > 1)
            check_inference(dir, (int)i, c);
        rm_tree(dir);
    }
    for (int i = 0; i < n_worst; i++)
        print_message("largest error %-28s %.3g\n", worst[i].what, worst[i].worst);
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
    RunResult r;
    run_cmd(&r, "make --no-print-directory trainer MODEL=%s OUT=%s SAN=%s",
            in_scratch("cnv.yaml"), scratch, san());
    if (r.status != 0)
        fail_msg("make trainer failed:\n%s", r.out);
    run_cmd(&r, "%s gradcheck", in_scratch("cnv"));
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
    run_cmd(&r, "%s train --history %s --quiet", in_scratch("cnv"), in_scratch("h.csv"));
    if (r.status != 0)
        fail_msg("train failed:\n%s", r.out);
    double first = 0, last = 0;
    history_losses(in_scratch("h.csv"), &first, &last);
    if (!(last < 0.5 * first))
        fail_msg("the loss went from %g to %g in 40 epochs", first, last);
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

/* The export with `key` (written as in it) set to value instead. */
static void write_changed(const char *path, const char *key, const char *value)
{
    char text[sizeof keras_export + 256];
    const char *at = strstr(keras_export, key);
    assert_non_null(at);
    at += strlen(key);
    size_t end = at[0] == '{'   ? (size_t)(strstr(at, "}}") + 2 - at)   /* an initializer */
                 : at[0] == '[' ? strcspn(at, "]") + 1
                                : strcspn(at, ",}");
    snprintf(text, sizeof text, "%.*s%s%s", (int)(at - keras_export), keras_export, value,
             at + end);
    write_text(path, text);
}

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
    static const struct { const char *key, *value, *message; } refused[] = {
        {"\"output_padding\": ", "[1, 1]", "Conv2DTranspose: output_padding '[1, 1]'"},
        {"\"depthwise_regularizer\": ", "{\"class_name\": \"L2\", \"config\": {\"l2\": 0.01}}",
         "SeparableConv2D: depthwise_regularizer 'L2'"},
        {"\"pointwise_initializer\": ", "\"zeros\"", "SeparableConv2D: pointwise_initializer 'zeros'"},
        {"\"groups\": ", "2", "SeparableConv2D: groups '2'"},
        {"\"dilation_rate\": ", "[2, 2]", "SeparableConv2D: dilation_rate '[2, 2]'"},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        write_changed(in_scratch("refused.json"), refused[i].key, refused[i].value);
        run_cmd(&r, "%s %s --check", nncc_path(), in_scratch("refused.json"));
        assert_int_equal(r.status, 1);
        assert_output_contains(&r, refused[i].message);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference),
        cmocka_unit_test(test_trains),
        cmocka_unit_test(test_keras_export),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
