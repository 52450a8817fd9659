/* test_keras.c - Keras's to_yaml() / to_json() exports (compiler/keras.c), through
 * ./nncc as a user runs it.
 *
 * The real exports in /work/shared/keras-exports (skipped if absent) must give
 * the parameter count of the architecture that SOURCES.md describes, counted by
 * hand below (each count is written as its arithmetic: kernel + bias per
 * layer, output sizes as Keras computes them). Small hand-written exports in a
 * scratch folder cover the two layouts, JSON, `model: FILE` from a native
 * file, and the refusals; an error must name FILE:LINE:COL (counted by hand
 * from the texts here) and leave no output file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include <ctype.h>

#define EXPORTS "/work/shared/keras-exports"


static const char *path_of(const char *name)
{
    static char buf[4][256];
    static int which;
    char *p = buf[which = (which + 1) % 4];
    snprintf(p, sizeof buf[0], "%s/%s", scratch, name);
    return p;
}

/* The number after `label` ("Total params: 1,199,882" -> 1199882), or -1. */
static long printed_count(const char *out, const char *label)
{
    const char *p = strstr(out, label);
    if (!p)
        return -1;
    long n = 0;
    for (p += strlen(label); *p && *p != '\n'; p++)
        if (isdigit((unsigned char)*p))
            n = n * 10 + (*p - '0');
    return n;
}

static void check_ok(RunResult *r, const char *file, long total)
{
    run_cmd(r, "%s '%s' --check", nncc_path(), file);
    if (r->status != 0)
        print_error("%s\n", r->out);
    assert_int_equal(r->status, 0);
    assert_int_equal(printed_count(r->out, "Total params: "), total);
}

/* Exit 1, the message (starting with FILE:LINE:COL: error:), and no -o file. */
static void check_error(const char *file, const char *expected)
{
    RunResult r;
    const char *out = path_of("never.c");
    run_cmd(&r, "%s '%s' -o '%s'", nncc_path(), file, out);
    if (!strstr(r.out, expected))
        print_error("expected: %s\ngot: %s\n", expected, r.out);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.out, expected));
    assert_false(file_exists(out));
}

static const char *real(const char *name)
{
    static char buf[2][512];
    static int which;
    char *p = buf[which ^= 1];
    snprintf(p, sizeof buf[0], EXPORTS "/%s", name);
    return p;
}

/* ---- the real exports ------------------------------------------------------------------- */

static void test_real_exports(void **state)
{
    (void)state;
    if (!file_exists(EXPORTS))
        skip();
    static const struct { const char *file; long total; } cases[] = {
        /* 1. list layout, CRLF: Dense 8->12, 12->8, 8->1 */
        {"Asha-ai__serialization-and-deserialization__model.yaml",
         (8 * 12 + 12) + (12 * 8 + 8) + (8 * 1 + 1)},                                  /* 221 */
        /* 2. 28x28x1 -> Conv 3x3x1x32 -> 26x26x32 -> pool 13x13x32 = 5408 -> 128 -> 10 */
        {"HackBinghamtonArchives__CNN-Demo__model.yaml",
         (3 * 3 * 1 * 32 + 32) + (13 * 13 * 32 * 128 + 128) + (128 * 10 + 10)},        /* 693,962 */
        /* 3. Conv 32 (26x26), Conv 3x3x32x64 (24x24), pool 12x12x64 = 9216 -> 128 -> 10 */
        {"MeganaD__keras_mnist_server_study__model.yaml",
         (3 * 3 * 1 * 32 + 32) + (3 * 3 * 32 * 64 + 64) + (12 * 12 * 64 * 128 + 128) +
             (128 * 10 + 10)},                                                          /* 1,199,882 */
        /* 4. 64x64x3: Conv 32 -> 62, pool 31, Conv 3x3x32x32 -> 29, pool 14 (floor):
         *    14x14x32 = 6272 -> 64 -> 1 */
        {"DiabeticOwl__Cat-Dog__model.yaml",
         (3 * 3 * 3 * 32 + 32) + (3 * 3 * 32 * 32 + 32) + (14 * 14 * 32 * 64 + 64) +
             (64 * 1 + 1)},                                                             /* 411,681 */
        /* 5. PilotNet, 66x200x3, valid: 5x5/2 -> 31x98x24 -> 14x47x36 -> 5x22x48,
         *    3x3/1 -> 3x20x64 -> 1x18x64 = 1152 -> 100 -> 50 -> 10 -> 1 */
        {"Justblue0312__CNN-SDCar__model.yaml",
         (5 * 5 * 3 * 24 + 24) + (5 * 5 * 24 * 36 + 36) + (5 * 5 * 36 * 48 + 48) +
             (3 * 3 * 48 * 64 + 64) + (3 * 3 * 64 * 64 + 64) + (1152 * 100 + 100) +
             (100 * 50 + 50) + (50 * 10 + 10) + (10 * 1 + 1)},                          /* 252,219 */
        /* 7. same padding: 28 -> pool 14 -> pool 7 -> pool 3 (floor); 3x3x128 = 1152 */
        {"21WANGC__ARUW2018_RuneGame__model_architecture.json",
         (5 * 5 * 1 * 32 + 32) + (5 * 5 * 32 * 32 + 32) + (3 * 3 * 32 * 64 + 64) +
             (3 * 3 * 64 * 64 + 64) + (3 * 3 * 64 * 128 + 128) + (3 * 3 * 128 * 128 + 128) +
             (1152 * 256 + 256) + (256 * 10 + 10)},                                     /* 601,066 */
        /* 8. dict layout without InputLayer: 4 -> 24 -> 24 -> 2 */
        {"Hansanhoo__DQNCartPole__model_architecture.json",
         (4 * 24 + 24) + (24 * 24 + 24) + (24 * 2 + 2)},                                /* 770 */
        /* 9. (negative in SOURCES.md, but nncc has BatchNormalization now: 4 numbers per
         *    channel.) same padding, 28 -> pool 14 -> pool 7: 7x7x64 = 3136 */
        {"DatenDynamo__CNN-handwriting__model_architecture.json",
         (5 * 5 * 1 * 32 + 32) + 4 * 32 + (5 * 5 * 32 * 32 + 32) + 4 * 32 +
             (3 * 3 * 32 * 64 + 64) + 4 * 64 + (3 * 3 * 64 * 64 + 64) + 4 * 64 +
             (3136 * 512 + 512) + 4 * 512 + (512 * 1024 + 1024) + 4 * 1024 +
             (1024 * 10 + 10)},                                                         /* 2,230,506 */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        RunResult r;
        check_ok(&r, real(cases[i].file), cases[i].total);
    }
}

/* What else the summary shows: names, kinds, shapes, frozen statistics. */
static void test_real_export_details(void **state)
{
    (void)state;
    if (!file_exists(EXPORTS))
        skip();
    RunResult r;
    check_ok(&r, real("Justblue0312__CNN-SDCar__model.yaml"), 252219);
    assert_non_null(strstr(r.out, "Model: \"sequential\""));      /* config: {name: sequential} */
    assert_null(strstr(r.out, "InputLayer"));                     /* skipped */
    assert_non_null(strstr(r.out, "conv2d (Conv2D)"));
    assert_non_null(strstr(r.out, "(None, 31, 98, 24)"));         /* strides 2, via an alias */
    assert_non_null(strstr(r.out, "(None, 1, 18, 64)"));

    check_ok(&r, real("Hansanhoo__DQNCartPole__model_architecture.json"), 770);
    assert_non_null(strstr(r.out, "Model: \"sequential_1\""));
    assert_non_null(strstr(r.out, "dense_3 (Dense)"));

    /* the list layout keeps no model name: Keras's default */
    check_ok(&r, real("HackBinghamtonArchives__CNN-Demo__model.yaml"), 693962);
    assert_non_null(strstr(r.out, "Model: \"sequential\""));
    assert_non_null(strstr(r.out, "max_pooling2d_1 (MaxPooling2D)"));

    /* moving mean and variance: (32 + 32 + 64 + 64 + 512 + 1024) * 2 */
    check_ok(&r, real("DatenDynamo__CNN-handwriting__model_architecture.json"), 2230506);
    assert_int_equal(printed_count(r.out, "Non-trainable params: "),
                     (32 + 32 + 64 + 64 + 512 + 1024) * 2);

    /* 10: minified JSON, one line, Embedding(20000, 128) -> LSTM(128, sequences) ->
     * LSTM(64) -> Dense(64) -> Dropout -> Dense(1): Keras's counts, 20000 * 128 +
     * 4 * 128 * (128 + 128 + 1) + 4 * 64 * (128 + 64 + 1) + 64 * 65 + 65 */
    check_ok(&r, real("Mohammad-Jaafar__Sentiment-Analysis-LSTM__model_architecture.json"),
             2745217);
}

static void test_real_unsupported(void **state)
{
    (void)state;
    if (!file_exists(EXPORTS))
        skip();
    char expected[1024];
    /* 6: the document twice over; the second `backend:` is a repeated key */
    const char *lstm = real("JesseVent__lstm-rapper__model.yaml");
    snprintf(expected, sizeof expected, "%s:60:1: error: duplicate key 'backend'", lstm);
    check_error(lstm, expected);

    /* 6's first document alone compiles: LSTM(256) with Keras 2.0's hard_sigmoid on
     * [50, 46], Dense(46), Activation: 4 * 256 * (46 + 256 + 1) + 256 * 46 + 46 */
    RunResult r;
    const char *first = path_of("lstm.yaml");
    run_cmd(&r, "head -n 59 '%s' > '%s'", lstm, first);
    assert_int_equal(r.status, 0);
    check_ok(&r, first, 322094);
    assert_output_contains(&r, "lstm_1 (LSTM)");
}

/* ---- hand-written exports ----------------------------------------------------------------- */

/* Keras 2.0-2.2 layout: tuples, anchors and aliases, every layer kind. */
static const char list_layout[] =
    "backend: tensorflow\n"
    "class_name: Sequential\n"
    "config:\n"
    "- class_name: Conv2D\n"
    "  config:\n"
    "    batch_input_shape: !!python/tuple [null, 10, 10, 3]\n"
    "    filters: 4\n"
    "    kernel_size: !!python/tuple [3, 3]\n"
    "    padding: same\n"
    "    strides: &id001 !!python/tuple [1, 1]\n"
    "    dilation_rate: *id001\n"
    "    data_format: channels_last\n"
    "    kernel_initializer:\n"
    "      class_name: VarianceScaling\n"
    "      config: {distribution: uniform, mode: fan_avg, scale: 1.0, seed: null}\n"
    "    bias_initializer: {class_name: Zeros, config: {}}\n"
    "    kernel_regularizer: null\n"
    "    activation: relu\n"
    "    name: conv2d_1\n"
    "- class_name: AveragePooling2D\n"
    "  config: {name: avg, pool_size: &id002 !!python/tuple [2, 2], strides: *id002}\n"
    "- class_name: Convolution2D\n"
    "  config: {filters: 6, kernel_size: 2, use_bias: false, name: conv2d_2}\n"
    "- class_name: MaxPool2D\n"
    "  config: {pool_size: [2, 2], strides: null, padding: valid, name: pool}\n"
    "- class_name: BatchNormalization\n"
    "  config: {axis: -1, momentum: 0.9, epsilon: 0.001, center: true, scale: true,\n"
    "           gamma_initializer: {class_name: Ones, config: {}}, name: bn}\n"
    "- class_name: GlobalAveragePooling2D\n"
    "  config: {name: gap}\n"
    "- class_name: Dropout\n"
    "  config: {rate: 0.5, noise_shape: null, seed: 7, name: drop}\n"
    "- class_name: Dense\n"
    "  config: {units: 3, name: logits}\n"
    "- class_name: Activation\n"
    "  config: {activation: softmax, name: act}\n"
    "keras_version: 2.1.4\n";

static void test_list_layout(void **state)
{
    (void)state;
    const char *file = path_of("list.yaml");
    write_text(file, list_layout);
    RunResult r;
    /* 10x10x3 -> Conv same 4 -> 10x10x4 -> avg 5x5x4 -> Conv 2x2 no bias -> 4x4x6
     * -> max 2x2x6 -> BN 6 -> GAP 6 -> Dense 3 */
    check_ok(&r, file, (3 * 3 * 3 * 4 + 4) + (2 * 2 * 4 * 6) + 4 * 6 + (6 * 3 + 3));  /* 253 */
    assert_int_equal(printed_count(r.out, "Non-trainable params: "), 2 * 6);
    assert_non_null(strstr(r.out, "conv2d_2 (Conv2D)"));
    assert_non_null(strstr(r.out, "(None, 4, 4, 6)"));
    assert_non_null(strstr(r.out, "pool (MaxPooling2D)"));
    assert_non_null(strstr(r.out, "(None, 2, 2, 6)"));
    assert_non_null(strstr(r.out, "avg (AveragePooling2D)"));
    assert_non_null(strstr(r.out, "act (Activation)"));
}

/* Keras 2.4 layout, CRLF, with an InputLayer first. */
static const char dict_layout[] =
    "class_name: Sequential\r\n"
    "config:\r\n"
    "  name: my_seq\r\n"
    "  layers:\r\n"
    "  - class_name: InputLayer\r\n"
    "    config:\r\n"
    "      batch_input_shape: !!python/tuple\r\n"
    "      - null\r\n"
    "      - 6\r\n"
    "      dtype: float32\r\n"
    "      name: dense_input\r\n"
    "      sparse: false\r\n"
    "      ragged: false\r\n"
    "  - class_name: Dense\r\n"
    "    config:\r\n"
    "      name: hidden\r\n"
    "      units: 4\r\n"
    "      activation: relu\r\n"
    "      dtype: float32\r\n"
    "      kernel_initializer: {class_name: GlorotUniform, config: {seed: 3}}\r\n"
    "  - class_name: Dense\r\n"
    "    config: {name: out, units: 3, activation: softmax}\r\n"
    "keras_version: 2.4.0\r\n"
    "backend: tensorflow\r\n";

static void test_dict_layout(void **state)
{
    (void)state;
    const char *file = path_of("dict.yaml");
    write_text(file, dict_layout);
    RunResult r;
    check_ok(&r, file, (6 * 4 + 4) + (4 * 3 + 3));                                  /* 43 */
    assert_non_null(strstr(r.out, "Model: \"my_seq\""));
    assert_non_null(strstr(r.out, "hidden (Dense)"));
    assert_null(strstr(r.out, "dense_input"));
}

static void test_json(void **state)
{
    (void)state;
    const char *file = path_of("model.json");
    write_text(file,
               "{\"config\": {\"layers\": [\n"
               "  {\"config\": {\"units\": 5, \"batch_input_shape\": [null, 3], \"name\": \"d1\","
               " \"activation\": \"tanh\", \"use_bias\": true}, \"class_name\": \"Dense\"},\n"
               "  {\"class_name\": \"Dropout\", \"config\": {\"rate\": 0.1, \"name\": \"dr\"}},\n"
               "  {\"class_name\": \"Dense\", \"config\": {\"units\": 2, \"name\": \"d2\"}}],\n"
               " \"name\": \"json_model\"},\n"
               " \"class_name\": \"Sequential\", \"keras_version\": \"2.3.1\","
               " \"backend\": \"tensorflow\"}\n");
    RunResult r;
    check_ok(&r, file, (3 * 5 + 5) + (5 * 2 + 2));                                  /* 32 */
    assert_non_null(strstr(r.out, "Model: \"json_model\""));
    assert_non_null(strstr(r.out, "dr (Dropout)"));
}

/* `model: FILE` is found beside the native file, whatever the current folder. */
static void test_model_reference(void **state)
{
    (void)state;
    char sub[128], cmd[256];
    snprintf(sub, sizeof sub, "%s/sub", scratch);
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", sub);
    assert_int_equal(system(cmd), 0);
    write_text(path_of("sub/export.yaml"), dict_layout);
    const char *native = path_of("sub/native.yaml");
    write_text(native,
               "model: export.yaml\n"
               "compile: {optimizer: adam, loss: sparse_categorical_crossentropy,"
               " metrics: [accuracy]}\n"
               "data:\n"
               "  train: {format: inline, x: [[1, 2, 3, 4, 5, 6]], y: [1]}\n"
               "fit: {epochs: 2, batch_size: 1}\n");
    assert_false(file_exists("export.yaml"));   /* not in the current folder */
    RunResult r;
    check_ok(&r, native, 43);
    assert_non_null(strstr(r.out, "Model: \"my_seq\""));

    const char *out = path_of("native.c");
    run_cmd(&r, "%s '%s' -o '%s'", nncc_path(), native, out);
    if (r.status != 0)
        print_error("%s\n", r.out);
    assert_int_equal(r.status, 0);
    assert_true(file_exists(out));

    /* a name in the native file wins over the export's */
    const char *named = path_of("sub/named.yaml");
    write_text(named, "name: mine\nmodel: export.yaml\n");
    check_ok(&r, named, 43);
    assert_non_null(strstr(r.out, "Model: \"mine\""));

    /* a missing export is named as the model file sees it */
    const char *missing = path_of("sub/missing.yaml");
    write_text(missing, "model: nowhere.yaml\n");
    char expected[256];
    snprintf(expected, sizeof expected, "%s/nowhere.yaml: error: cannot open", sub);
    check_error(missing, expected);
}

static void test_refused_options(void **state)
{
    (void)state;
    char expected[512];
    const char *file = path_of("channels_first.yaml");
    write_text(file,
               "class_name: Sequential\n"
               "config:\n"
               "- class_name: Conv2D\n"
               "  config:\n"
               "    batch_input_shape: [null, 8, 8, 1]\n"
               "    filters: 2\n"
               "    kernel_size: 3\n"
               "    data_format: channels_first\n");
    snprintf(expected, sizeof expected,
             "%s:8:18: error: Conv2D: data_format 'channels_first' is not supported; nncc "
             "implements only Keras's default (channels_last)", file);
    check_error(file, expected);

    file = path_of("regularizer.yaml");
    write_text(file,
               "class_name: Sequential\n"
               "config:\n"
               "- class_name: Dense\n"
               "  config:\n"
               "    batch_input_shape: [null, 8]\n"
               "    units: 2\n"
               "    activity_regularizer: {class_name: L2, config: {l2: 0.01}}\n");
    snprintf(expected, sizeof expected, "%s:7:27: error: activity_regularizer is not supported",
             file);
    check_error(file, expected);

    file = path_of("dilation.yaml");
    write_text(file,
               "class_name: Sequential\n"
               "config:\n"
               "- class_name: Conv2D\n"
               "  config: {batch_input_shape: [null, 8, 8, 1], filters: 2, kernel_size: 3,\n"
               "           dilation_rate: [2, 2]}\n");
    snprintf(expected, sizeof expected, "%s:5:27: error: Conv2D: dilation_rate '[2, 2]'", file);
    check_error(file, expected);

    /* after Dense the last axis, counted with the batch, is 1, not 3 */
    file = path_of("axis.yaml");
    write_text(file,
               "class_name: Sequential\n"
               "config:\n"
               "- {class_name: Dense, config: {batch_input_shape: [null, 8], units: 2}}\n"
               "- {class_name: BatchNormalization, config: {axis: 3}}\n");
    snprintf(expected, sizeof expected,
             "%s:4:51: error: BatchNormalization: axis 3 is not supported; nncc normalises the "
             "last axis (-1 or 1)", file);
    check_error(file, expected);

    file = path_of("typo.yaml");
    write_text(file,
               "class_name: Sequential\n"
               "config:\n"
               "- {class_name: Dense, config: {batch_input_shape: [null, 8], unit: 2}}\n");
    snprintf(expected, sizeof expected,
             "%s:3:62: error: Dense: unknown key 'unit'; did you mean 'units'?", file);
    check_error(file, expected);

    file = path_of("functional.yaml");
    write_text(file, "class_name: Functional\nconfig: {layers: []}\n");
    snprintf(expected, sizeof expected, "%s:2:9: error: a functional model needs "
             "'input_layers', a list of [LAYER, 0, 0]", file);
    check_error(file, expected);

    file = path_of("subclassed.yaml");
    write_text(file, "class_name: MyModel\nconfig: {layers: []}\n");
    snprintf(expected, sizeof expected, "%s:1:13: error: nncc reads Sequential and functional "
             "Keras models; this one is 'MyModel'", file);
    check_error(file, expected);
}

static void test_bad_names(void **state)
{
    (void)state;
    char expected[512];
    const char *file = path_of("duplicate.yaml");
    write_text(file,
               "class_name: Sequential\n"
               "config:\n"
               "- class_name: Dense\n"
               "  config: {batch_input_shape: [null, 8], units: 2, name: same}\n"
               "- class_name: Dense\n"
               "  config: {units: 2, name: same}\n");
    snprintf(expected, sizeof expected,
             "%s:5:3: error: duplicate layer name 'same' (line 3 has it too)", file);
    check_error(file, expected);

    file = path_of("dash.yaml");
    write_text(file,
               "class_name: Sequential\n"
               "config:\n"
               "- class_name: Dense\n"
               "  config: {batch_input_shape: [null, 8], units: 2, name: my-dense}\n");
    snprintf(expected, sizeof expected,
             "%s:4:58: error: layer name 'my-dense' is not a C identifier", file);
    check_error(file, expected);
}



int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_exports),
        cmocka_unit_test(test_real_export_details),
        cmocka_unit_test(test_real_unsupported),
        cmocka_unit_test(test_list_layout),
        cmocka_unit_test(test_dict_layout),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_model_reference),
        cmocka_unit_test(test_refused_options),
        cmocka_unit_test(test_bad_names),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
