/* test_graph.c - models that are graphs: layers that name their inputs, merge
 * layers, a value read by several layers (whose gradient is the sum of theirs),
 * and Keras's functional exports read as the same graphs. The numbers are
 * checked by hand-computed training steps and by gradcheck through every
 * merge; the shape of the graph by comparing a Keras export with the native
 * file that says the same. */
#include "testutil.h"

/* `train` printed "loss: X" on its last epoch line. */
static double last_loss(const char *out)
{
    const char *at = NULL;
    for (const char *p = strstr(out, "loss: "); p; p = strstr(p + 1, "loss: "))
        at = p;
    assert_non_null(at);
    return strtod(at + 6, NULL);
}

/* a = w x with w = 0.5 given inline, y = a + a: the gradient of w is the sum
 * of the two readers' gradients. With mse, x = 1, label 0: y = 1, dL/dy = 2,
 * dL/dw = 2 * (1 + 1) = 4, and one SGD step at 0.1 leaves w = 0.1, so y = 0.2.
 * Were only one reader's gradient kept, w would be 0.3 and y 0.6. */
static void test_gradient_of_a_value_read_twice(void **state)
{
    (void)state;
    const char *trainer = build_model("twice",
        "input_shape: [1]\n"
        "layers:\n"
        "  - Dense: {name: a, units: 1, use_bias: false, weights: {kernel: [[0.5]]}}\n"
        "  - Add: {inputs: [a, a]}\n"
        "compile: {optimizer: {name: sgd, learning_rate: 0.1}, loss: mse}\n"
        "data:\n"
        "  train: {format: inline, x: [[1.0]], y: [[0.0]]}\n"
        "fit: {epochs: 1, batch_size: 1}\n");
    RunResult r;
    run_cmd(&r, "%s train --save %s --quiet && %s predict --weights %s 1", trainer,
            in_scratch("twice.npz"), trainer, in_scratch("twice.npz"));
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "1: 0.2000");
}

static const char residual[] =
    "input_shape: [6, 6, 2]\n"
    "layers:\n"
    "  - Conv2D: {name: a, filters: 4, kernel_size: 3, padding: same, activation: tanh}\n"
    "  - Conv2D: {name: b, filters: 4, kernel_size: 3, padding: same}\n"
    "  - Add: {name: res, inputs: [a, b]}\n"
    "  - Activation: {activation: tanh}\n"
    "  - Concatenate: {inputs: [activation, input, a]}\n"
    "  - GlobalAveragePooling2D\n"
    "  - Dense: {units: 3, activation: softmax}\n"
    "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
    "fit: {batch_size: 4}\n";

/* Inline data: random images whose class is the sign pattern of two of
 * their numbers. */
static void residual_data(char *yaml, size_t size)
{
    size_t len = (size_t)snprintf(yaml, size, "data:\n  train:\n    format: inline\n    x:\n");
    unsigned seed = 7;
    char labels[256] = "";
    for (int s = 0; s < 24; s++) {
        float v[72];
        len += (size_t)snprintf(yaml + len, size - len, "      - [");
        for (int i = 0; i < 72; i++) {
            seed = seed * 1103515245u + 12345u;
            v[i] = (float)((seed >> 8) % 2001) / 1000.0f - 1.0f;
            len += (size_t)snprintf(yaml + len, size - len, "%s%.3f", i ? ", " : "", v[i]);
        }
        len += (size_t)snprintf(yaml + len, size - len, "]\n");
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%d", s ? ", " : "",
                 v[0] > 0 ? (v[1] > 0 ? 2 : 1) : 0);
    }
    snprintf(yaml + len, size - len, "    y: [%s]\n", labels);
}

/* A residual block, a concatenation with the input and a value read by three
 * layers: gradcheck agrees with backward at several seeds, and training
 * lowers the loss. */
static void test_residual_network(void **state)
{
    (void)state;
    static char yaml[16384];
    size_t len = (size_t)snprintf(yaml, sizeof yaml, "%s", residual);
    residual_data(yaml + len, sizeof yaml - len);
    const char *trainer = build_model("res", yaml);
    RunResult r;
    for (int seed = 0; seed < 3; seed++) {
        run_cmd(&r, "%s gradcheck --seed %d", trainer, seed);
        if (r.status != 0)
            fail_msg("gradcheck --seed %d:\n%s", seed, r.out);
    }
    run_cmd(&r, "%s train --epochs 1", trainer);
    assert_int_equal(r.status, 0);
    double first = last_loss(r.out);
    run_cmd(&r, "%s train --epochs 30", trainer);
    assert_int_equal(r.status, 0);
    assert_true(last_loss(r.out) < 0.8 * first);
}

/* Each merge between two branches, by gradcheck. */
static void test_every_merge(void **state)
{
    (void)state;
    static const char *const merges[] = {"Add", "Subtract", "Multiply", "Average", "Maximum",
                                         "Concatenate"};
    for (size_t i = 0; i < sizeof merges / sizeof merges[0]; i++) {
        char name[32], yaml[1024];
        snprintf(name, sizeof name, "merge%zu", i);
        snprintf(yaml, sizeof yaml,
                 "input_shape: [5]\n"
                 "layers:\n"
                 "  - Dense: {name: a, units: 4, activation: tanh}\n"
                 "  - Dense: {name: b, units: 4, activation: sigmoid, inputs: input}\n"
                 "  - %s: {inputs: [a, b, a]}\n"
                 "  - Dense: {units: 2}\n"
                 "compile: {optimizer: sgd, loss: mse}\n",
                 merges[i]);
        if (strcmp(merges[i], "Subtract") == 0)   /* exactly two */
            *strstr(yaml, ", a]}") = '\0', strcat(yaml, "]}\n  - Dense: {units: 2}\n"
                                                      "compile: {optimizer: sgd, loss: mse}\n");
        RunResult r;
        const char *trainer = build_model(name, yaml);
        run_cmd(&r, "%s gradcheck --seed 1", trainer);
        if (r.status != 0)
            fail_msg("%s: gradcheck failed:\n%s", merges[i], r.out);
    }
}

/* The forward pass of generated C: from its first layer call to its return. */
static char *forward_calls(const char *c_path)
{
    FILE *f = fopen(c_path, "r");
    assert_non_null(f);
    static char text[1 << 20];
    size_t len = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[len] = '\0';
    char *begin = strstr(text, "static const float *forward(");
    assert_non_null(begin);
    char *end = strstr(begin, "\n}\n");
    assert_non_null(end);
    *end = '\0';
    /* Comments name lines of the model file, which differ. */
    char *calls = calloc(1, (size_t)(end - begin) + 1), *out = calls;
    assert_non_null(calls);
    for (char *line = strchr(begin, '\n') + 1; *line;) {
        size_t n = strcspn(line, "\n");
        if (strncmp(line + strspn(line, " "), "/*", 2) != 0) {
            memcpy(out, line, n);
            out += n;
            *out++ = '\n';
        }
        line += n + (line[n] == '\n');
    }
    return calls;
}

/* tests/data/functional_residual.json, as tf.keras 2.4's model.to_json()
 * writes a functional model (class_name Functional, inbound_nodes of
 * [layer, node, tensor, kwargs]), runs the same ops on the same buffers as
 * the native file that names the same inputs. */
static void test_functional_export(void **state)
{
    (void)state;
    write_text(in_scratch("native.yaml"),
               "name: residual\n"
               "input_shape: [8, 8, 1]\n"
               "layers:\n"
               "  - Conv2D: {filters: 4, kernel_size: 3, padding: same, activation: relu}\n"
               "  - Conv2D: {filters: 4, kernel_size: 3, padding: same}\n"
               "  - Add: {inputs: [conv2d, conv2d_1]}\n"
               "  - Concatenate: {inputs: [add, input]}\n"
               "  - GlobalAveragePooling2D\n"
               "  - Dense: {units: 2, activation: softmax}\n");
    RunResult r;
    run_cmd(&r, "%s tests/data/functional_residual.json -o %s && %s %s -o %s", nncc_path(),
            in_scratch("keras.c"), nncc_path(), in_scratch("native.yaml"),
            in_scratch("native.c"));
    if (r.status != 0)
        fail_msg("%s", r.out);
    char *keras = forward_calls(in_scratch("keras.c"));
    char *native = forward_calls(in_scratch("native.c"));
    assert_non_null(strstr(keras, "add_forward(n, (const float *const[]){W(conv2d_out), "
                                  "W(conv2d_1_out)}, W(add_out));"));
    assert_string_equal(keras, native);
    free(keras);
    free(native);
}

/* A graph's summary has Keras's "Connected to" column, as tf.keras 2.x prints
 * a functional model (98 columns; a merge's inputs one per line); nncc
 * --check and the trainer's `summary` print the same table. */
static void test_graph_summary(void **state)
{
    (void)state;
    RunResult r;
    run_cmd(&r, "%s tests/data/functional_residual.json --check", nncc_path());
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "\n Layer (type)                   Output Shape         Param #     "
                               "Connected to\n");
    assert_output_contains(&r, "\n input (InputLayer)             [(None, 8, 8, 1)]    0           "
                               "[]\n");
    char merge_row[256];   /* the second input under the first, in the last column */
    snprintf(merge_row, sizeof merge_row, "\n add (Add)                      (None, 8, 8, 4)      "
             "0           ['conv2d[0][0]',\n%65s'conv2d_1[0][0]']\n", "");
    assert_output_contains(&r, merge_row);
    static char check[sizeof r.out];
    snprintf(check, sizeof check, "%s", r.out);
    run_cmd(&r, "make --no-print-directory trainer MODEL=tests/data/functional_residual.json "
                "OUT=%s SAN=%s >/dev/null && %s summary", scratch, san(),
            in_scratch("functional_residual"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, check);
}

/* The functional export trains end to end when a native file names it with
 * `model:` and adds data: images whose class is whether their mean is above 0. */
static void test_functional_export_trains(void **state)
{
    (void)state;
    char cwd[1024], yaml[16384];
    assert_non_null(getcwd(cwd, sizeof cwd));
    int len = snprintf(yaml, sizeof yaml,
                       "model: %s/tests/data/functional_residual.json\n"
                       "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, "
                       "metrics: [accuracy]}\n"
                       "fit: {epochs: 40, batch_size: 8}\n"
                       "data:\n  train:\n    format: inline\n    x:\n", cwd);
    unsigned seed = 3;
    char labels[256] = "";
    for (int s = 0; s < 32; s++) {
        float sum = 0;
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "      - [");
        for (int i = 0; i < 64; i++) {
            seed = seed * 1103515245u + 12345u;
            float v = (float)((seed >> 8) % 201) / 100.0f - 1.0f + (s % 2 ? 0.3f : -0.3f);
            sum += v;
            len += snprintf(yaml + len, sizeof yaml - (size_t)len, "%s%.2f", i ? ", " : "", v);
        }
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "]\n");
        snprintf(labels + strlen(labels), sizeof labels - strlen(labels), "%s%d", s ? ", " : "",
                 sum > 0);
    }
    snprintf(yaml + len, sizeof yaml - (size_t)len, "    y: [%s]\n", labels);
    const char *trainer = build_model("functional", yaml);
    RunResult r;
    run_cmd(&r, "%s train", trainer);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "Epoch 40/40");
    assert_output_contains(&r, "accuracy: 1.0000");
}

/* What nncc refuses in a functional export, at the place it is written. */
static void test_functional_errors(void **state)
{
    (void)state;
    static const struct { const char *from, *to, *message; } cases[] = {
        {"\"input_layers\": [[\"input_1\", 0, 0]]",
         "\"input_layers\": [[\"input_1\", 0, 0], [\"input_2\", 0, 0]]",
         "this model has 2 inputs; nncc reads models with one input for now"},
        {"[[[\"conv2d\", 0, 0, {}]]]", "[[[\"conv2d\", 0, 0, {}]], [[\"input_1\", 0, 0, {}]]]",
         "Conv2D 'conv2d_1' is called 2 times (a shared layer)"},
        {"[[[\"conv2d\", 0, 0, {}]]]", "[[[\"conv2d_9\", 0, 0, {}]]]",
         "no layer named 'conv2d_9' before this one"},
    };
    FILE *f = fopen("tests/data/functional_residual.json", "r");
    assert_non_null(f);
    static char text[16384];
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *at = strstr(text, cases[i].from);
        assert_non_null(at);
        static char edited[17000];
        snprintf(edited, sizeof edited, "%.*s%s%s", (int)(at - text), text, cases[i].to,
                 at + strlen(cases[i].from));
        write_text(in_scratch("bad.json"), edited);
        RunResult r;
        run_cmd(&r, "%s %s --check", nncc_path(), in_scratch("bad.json"));
        assert_int_equal(r.status, 1);
        assert_output_contains(&r, in_scratch("bad.json"));
        assert_output_contains(&r, cases[i].message);
    }
}

/* WORK_PER_SAMPLE of the C that nncc writes for a stack of `blocks` residual
 * blocks of 8 units: a = tanh(Dense(x)), b = Dense(a), x' = a + b. */
static long residual_work(int blocks)
{
    char yaml[4096] = "name: stack\ninput_shape: [8]\nlayers:\n";
    const char *x = "input";
    char names[3][16];
    for (int i = 0; i < blocks; i++) {
        snprintf(yaml + strlen(yaml), sizeof yaml - strlen(yaml),
                 "  - Dense: {name: a%d, units: 8, activation: tanh, inputs: %s}\n"
                 "  - Dense: {name: b%d, units: 8}\n"
                 "  - Add: {name: s%d, inputs: [a%d, b%d]}\n", i, x, i, i, i, i);
        snprintf(names[i % 3], sizeof names[0], "s%d", i);
        x = names[i % 3];
    }
    strcat(yaml, "compile: {optimizer: sgd, loss: mse}\n");
    write_text(in_scratch("stack.yaml"), yaml);
    RunResult r;
    run_cmd(&r, "%s %s -o - | grep -o 'WORK_PER_SAMPLE = [0-9]*'", nncc_path(),
            in_scratch("stack.yaml"));
    assert_int_equal(r.status, 0);
    return strtol(r.out + strlen("WORK_PER_SAMPLE = "), NULL, 10);
}

/* Work memory is planned by lifetime: the values a block computes stay for
 * the backward pass (a with its tanh in place, b, the sum: 24 floats), but
 * gradients live only from their first writer to their producer, so another
 * block costs its values and no more room for gradients (a buffer each would
 * add 32 floats of gradients per block: a's, b's, the sum's and the second
 * reader's of a). */
static void test_work_by_lifetime(void **state)
{
    (void)state;
    long two = residual_work(2), four = residual_work(4), eight = residual_work(8);
    assert_int_equal(four - two, 2 * 24);
    assert_int_equal(eight - four, 4 * 24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gradient_of_a_value_read_twice),
        cmocka_unit_test(test_residual_network),
        cmocka_unit_test(test_every_merge),
        cmocka_unit_test(test_functional_export),
        cmocka_unit_test(test_functional_export_trains),
        cmocka_unit_test(test_functional_errors),
        cmocka_unit_test(test_graph_summary),
        cmocka_unit_test(test_work_by_lifetime),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
