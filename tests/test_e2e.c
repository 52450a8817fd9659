/* test_e2e.c - nncc end to end, as a user runs it: model files written here,
 * trainers built with `make trainer`, and their commands run through a shell.
 *
 *   hello        the course's first model learns y = 3x + 1: predict(10) ~ 31
 *   gradcheck    the generated backward pass of every activation, loss and
 *                layer kind agrees with finite differences
 *   determinism  same seed and threads, same bits; 2 epochs = 1 + resume 1
 *   weights      Keras's names, layouts and glorot limits, readable by numpy;
 *                predict agrees with numpy's forward pass
 *   errors       NaN loss, usage errors, foreign weights, bad labels, Ctrl-C
 *   mid-epoch    Ctrl-C, or kill -9 after a --save-every checkpoint, then
 *                --resume: the same bits as a run never stopped; a
 *                checkpoint of an older trainer; Keras's input-ran-out stop
 *   fashion      a real data set, evaluate and predict --npy
 *   history      --history and validation_split
 *   categorical  class-index labels train exactly as their one-hot rows
 *
 * Trainers go into one scratch folder for the whole run; `make` gets SAN from
 * the environment so that `make test SAN=1` checks sanitised trainers too.
 */
#include "testutil.h"

#include <math.h>
#include <stb_image_write.h>

#include "rt.h"





static bool have_numpy(void)
{
    RunResult r;
    run_cmd(&r, "/usr/bin/python3 -c 'import numpy'");
    return r.status == 0;
}

static const nn_array *find_array(const nn_array *a, int n, const char *name)
{
    const nn_array *x = nn_npz_find(a, n, name);
    if (!x)
        fail_msg("no array '%s'", name);
    return x;
}

/* Every member of two .npz files: same names in the same order, same types,
 * shapes and bits. */
static void assert_same_npz(const char *p, const char *q)
{
    nn_array *a, *b;
    int na, nb;
    assert_int_equal(nn_npz_read(p, &a, &na), 0);
    assert_int_equal(nn_npz_read(q, &b, &nb), 0);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_int_equal(a[i].dtype, b[i].dtype);
        assert_int_equal(a[i].rank, b[i].rank);
        assert_memory_equal(a[i].shape, b[i].shape, sizeof a[i].shape);
        assert_int_equal(a[i].size, b[i].size);
        if (a[i].dtype == NN_F32 && memcmp(a[i].f, b[i].f, a[i].size * sizeof(float)) != 0)
            fail_msg("%s differs between %s and %s", a[i].name, p, q);
        if (a[i].dtype == NN_I64 && memcmp(a[i].i, b[i].i, a[i].size * sizeof(int64_t)) != 0)
            fail_msg("%s differs between %s and %s", a[i].name, p, q);
    }
    nn_npz_free(a, na);
    nn_npz_free(b, nb);
}

/* Four samples of three numbers: the inline data of the small models. */
#define X4 "[[0.1, 0.2, 0.3], [0.5, -0.4, 0.9], [1.0, 0.0, -1.0], [0.3, 0.3, 0.3]]"

/* ---- 1. hello ------------------------------------------------------------------- */

static void test_hello(void **state)
{
    (void)state;
    const char *t = build_file("models/hello.yaml", "hello");
    const char *w = in_scratch("hello.npz");
    RunResult r;
    run_cmd(&r, "%s train --save %s --quiet", t, w);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");   /* --quiet: nothing at all */

    /* y = 3x + 1 at x = 10, as the course's model.predict([10.0]) gives. */
    run_cmd(&r, "%s predict --weights %s 10", t, w);
    assert_int_equal(r.status, 0);
    double y;
    assert_int_equal(sscanf(r.out, "10: %lf", &y), 1);
    if (!(fabs(y - 31) <= 0.5))
        fail_msg("hello predicts %g for 10, want 31 +- 0.5", y);

    /* The model file's own `predict: [[10.0]]` prints the same line. */
    RunResult own;
    run_cmd(&own, "%s predict --weights %s", t, w);
    assert_int_equal(own.status, 0);
    assert_string_equal(own.out, r.out);

    run_cmd(&r, "%s summary", t);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "Total params: 2\n");
    assert_output_contains(&r, "Trainable params: 2\n");
}

/* ---- 2. gradcheck ------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const char *yaml;       /* input_shape, layers, compile, data */
    const char *tensors;    /* every trainable tensor, space-separated */
    const char *absent;     /* tensors gradcheck must not list */
} GradCase;

#define MSE_DATA                                                                        \
    "compile: {optimizer: adam, loss: mse}\n"                                           \
    "data:\n  train: {format: inline, x: " X4 ",\n"                                    \
    "          y: [[0.1, 0.2], [0.3, -0.1], [0.0, 0.5], [-0.2, 0.2]]}\n"

/* Dense(5, act) -> Dense(2) with mse: every activation away from the output,
 * so softmax too gets its own Jacobian. */
#define ACT_CASE(act)                                                                   \
    {"act_" act,                                                                        \
     "input_shape: [3]\nlayers:\n  - Dense: {units: 5, activation: " act "}\n"         \
     "  - Dense: {units: 2}\n" MSE_DATA,                                                \
     "dense.kernel dense.bias dense_1.kernel dense_1.bias", ""}

#define HIDDEN "input_shape: [3]\nlayers:\n  - Dense: {units: 5, activation: tanh}\n"
#define DATA_Y(loss, y)                                                                 \
    "compile: {optimizer: adam, loss: " loss "}\n"                                      \
    "data:\n  train: {format: inline, x: " X4 ",\n          y: " y "}\n"
#define ONE_HOT3 "[[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0]]"
#define TWO_DENSE "dense.kernel dense.bias dense_1.kernel dense_1.bias"

static const GradCase grad_cases[] = {
    ACT_CASE("linear"), ACT_CASE("relu"), ACT_CASE("sigmoid"), ACT_CASE("tanh"),
    ACT_CASE("softmax"), ACT_CASE("elu"), ACT_CASE("selu"), ACT_CASE("softplus"),
    ACT_CASE("softsign"), ACT_CASE("swish"), ACT_CASE("gelu"),
    /* Losses: fused with the last activation (from logits) ... */
    {"sparse_fused", HIDDEN "  - Dense: {units: 3, activation: softmax}\n"
     DATA_Y("sparse_categorical_crossentropy", "[0, 2, 1, 0]"), TWO_DENSE, ""},
    {"categorical_fused", HIDDEN "  - Dense: {units: 3, activation: softmax}\n"
     DATA_Y("categorical_crossentropy", ONE_HOT3), TWO_DENSE, ""},
    {"binary_fused", HIDDEN "  - Dense: {units: 1, activation: sigmoid}\n"
     DATA_Y("binary_crossentropy", "[[0], [1], [1], [0]]"), TWO_DENSE, ""},
    /* ... and on probabilities that do not match the loss (not fused; outputs
     * strictly inside (0, 1), where the clipping passes gradients). */
    {"sparse_probs", HIDDEN "  - Dense: {units: 3, activation: sigmoid}\n"
     DATA_Y("sparse_categorical_crossentropy", "[0, 2, 1, 0]"), TWO_DENSE, ""},
    {"categorical_probs", HIDDEN "  - Dense: {units: 3, activation: sigmoid}\n"
     DATA_Y("categorical_crossentropy", ONE_HOT3), TWO_DENSE, ""},
    {"binary_probs", HIDDEN "  - Dense: {units: 2, activation: softmax}\n"
     DATA_Y("binary_crossentropy", "[[0, 1], [1, 0], [1, 1], [0, 0]]"), TWO_DENSE, ""},
    /* The sigmoid fused through an Activation layer at the end. */
    {"binary_activation_last", HIDDEN "  - Dense: {units: 1}\n"
     "  - Activation: {activation: sigmoid}\n"
     DATA_Y("binary_crossentropy", "[[0], [1], [1], [0]]"), TWO_DENSE, ""},
    {"activation_layer", "input_shape: [3]\nlayers:\n  - Dense: {units: 4}\n"
     "  - Activation: {activation: tanh}\n  - Dense: {units: 2}\n" MSE_DATA, TWO_DENSE,
     "activation.kernel"},
    {"dropout", "input_shape: [3]\nlayers:\n  - Dense: {units: 8, activation: relu}\n"
     "  - Dropout: {rate: 0.5}\n  - Dense: {units: 2}\n" MSE_DATA, TWO_DENSE, "dropout.kernel"},
    {"flatten", "input_shape: [4, 3, 2]\nlayers:\n  - Flatten\n"
     "  - Dense: {units: 3, activation: tanh}\n  - Dense: {units: 2}\n"
     "compile: {optimizer: sgd, loss: mse}\n"
     "data:\n  train: {format: inline,\n"
     "    x: [[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, "
     "23]],\n    y: [[0.5, -0.5]]}\n", TWO_DENSE, ""},
    {"no_bias", "input_shape: [3]\nlayers:\n"
     "  - Dense: {units: 4, activation: tanh, use_bias: false}\n  - Dense: {units: 2}\n" MSE_DATA,
     "dense.kernel dense_1.kernel dense_1.bias", "dense.bias"},
    {"frozen", "input_shape: [3]\nlayers:\n"
     "  - Dense: {units: 4, activation: tanh, trainable: false}\n  - Dense: {units: 2}\n"
     MSE_DATA, "dense_1.kernel dense_1.bias", "dense.kernel dense.bias"},
    {"named", "input_shape: [3]\nlayers:\n  - Dense: {units: 4, activation: relu, name: hidden}\n"
     "  - Dense: {units: 2, name: out}\n" MSE_DATA, "hidden.kernel hidden.bias out.kernel out.bias",
     "dense.kernel"},
};

static const GradCase *grad_case(const char *name)
{
    for (size_t i = 0; i < sizeof grad_cases / sizeof grad_cases[0]; i++)
        if (strcmp(grad_cases[i].name, name) == 0)
            return &grad_cases[i];
    fail_msg("no gradcheck case '%s'", name);
    return NULL;
}

/* The line gradcheck printed for a tensor: "NAME  N checked ... relative R  ok". */
static const char *tensor_line(const char *out, const char *name)
{
    size_t len = strlen(name);
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, len) == 0 && p[len] == ' ')
            return p;
    return NULL;
}

static void check_gradcheck_output(const GradCase *c, const char *out)
{
    char names[256];
    snprintf(names, sizeof names, "%s", c->tensors);
    int listed = 0;
    for (char *save, *tok = strtok_r(names, " ", &save); tok; tok = strtok_r(NULL, " ", &save)) {
        const char *line = tensor_line(out, tok);
        if (!line)
            fail_msg("%s: gradcheck does not list %s:\n%s", c->name, tok, out);
        double rel;
        const char *r = strstr(line, "relative ");
        if (!r || sscanf(r, "relative %lf", &rel) != 1)
            fail_msg("%s: no relative error for %s", c->name, tok);
        /* float differences agree to ~1e-5 here; a wrong derivative is off by O(1). */
        if (!(rel < 2e-3))
            fail_msg("%s: %s relative error %g", c->name, tok, rel);
        listed++;
    }
    /* Only the trainable tensors: one "checked" line each. */
    int lines = 0;
    for (const char *p = out; (p = strstr(p, " checked ")); p++)
        lines++;
    if (lines != listed)
        fail_msg("%s: %d tensors checked, want %d:\n%s", c->name, lines, listed, out);
    snprintf(names, sizeof names, "%s", c->absent);
    for (char *save, *tok = strtok_r(names, " ", &save); tok; tok = strtok_r(NULL, " ", &save))
        if (tensor_line(out, tok))
            fail_msg("%s: gradcheck lists %s, which is not trainable or not there", c->name, tok);
}

static void test_gradcheck(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof grad_cases / sizeof grad_cases[0]; i++) {
        const GradCase *c = &grad_cases[i];
        char name[64];
        snprintf(name, sizeof name, "g_%s", c->name);
        const char *t = build_model(name, c->yaml);
        RunResult r;
        run_cmd(&r, "%s gradcheck", t);
        if (r.status != 0 || !strstr(r.out, "gradcheck passed\n"))
            fail_msg("%s: gradcheck exit %d:\n%s", c->name, r.status, r.out);
        check_gradcheck_output(c, r.out);
    }
}

static void test_frozen_summary(void **state)
{
    (void)state;
    /* The frozen Dense(3 -> 4) holds 16 parameters, the trainable Dense(4 -> 2) 10. */
    const char *t = build_model("g_frozen", grad_case("frozen")->yaml);
    RunResult r;
    run_cmd(&r, "%s summary", t);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "Total params: 26\n");
    assert_output_contains(&r, "Trainable params: 10\n");
    assert_output_contains(&r, "Non-trainable params: 16\n");
}

/* ---- 3. determinism ---------------------------------------------------------------- */

/* Shuffling (12 samples, 3 batches an epoch), dropout and the optimizer's state. */
#define DET_MODEL(OPTIMIZER)                                                                   \
    "input_shape: [3]\n"                                                                     \
    "layers:\n"                                                                              \
    "  - Dense: {units: 8, activation: relu}\n"                                              \
    "  - Dropout: {rate: 0.25}\n"                                                            \
    "  - Dense: {units: 3, activation: softmax}\n"                                           \
    "compile: {optimizer: " OPTIMIZER ", loss: sparse_categorical_crossentropy, "              \
    "metrics: [accuracy]}\n"                                                                 \
    "data:\n"                                                                                \
    "  train:\n"                                                                             \
    "    format: inline\n"                                                                   \
    "    x: [[0.1, 0.2, 0.3], [0.5, -0.4, 0.9], [1.0, 0.0, -1.0], [0.3, 0.3, 0.3],\n"         \
    "        [-0.7, 0.1, 0.2], [0.9, 0.8, -0.3], [0.0, -1.0, 0.5], [0.2, 0.6, -0.8],\n"       \
    "        [-0.5, -0.5, -0.5], [0.4, -0.2, 0.1], [0.8, 0.3, 0.6], [-0.1, 0.9, -0.4]]\n"     \
    "    y: [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2]\n"                                          \
    "fit: {batch_size: 4, epochs: 3}\n"
static const char det_yaml[] = DET_MODEL("adam");
/* Nadam keeps a product over all steps besides its buffers; with clipping
 * and weight decay, every part of a step is in the resumed run. */
static const char det_nadam_yaml[] =
    DET_MODEL("{name: nadam, learning_rate: 0.01, global_clipnorm: 0.5, weight_decay: 0.1}");

static void test_same_seed_same_bits(void **state)
{
    (void)state;
    const char *t = build_model("det", det_yaml);
    RunResult r;
    for (int i = 0; i < 2; i++) {
        run_cmd(&r, "%s train --seed 7 --threads 2 --quiet --save %s", t,
                in_scratch(i ? "det_b.npz" : "det_a.npz"));
        assert_int_equal(r.status, 0);
    }
    run_cmd(&r, "cmp %s %s", in_scratch("det_a.npz"), in_scratch("det_b.npz"));
    assert_int_equal(r.status, 0);

    /* ... and another seed really gives other weights. */
    run_cmd(&r, "%s train --seed 8 --threads 2 --quiet --save %s", t, in_scratch("det_c.npz"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, "cmp -s %s %s", in_scratch("det_a.npz"), in_scratch("det_c.npz"));
    assert_int_equal(r.status, 1);
}

/* 2 epochs in one run, and 1 + 1 with --resume: the same bits. */
static void assert_resume_same_bits(const char *name, const char *yaml)
{
    const char *t = build_model(name, yaml);
    const char *whole = in_scratch("whole.npz"), *half = in_scratch("half.npz"),
               *resumed = in_scratch("resumed.npz");
    RunResult r;
    run_cmd(&r, "%s train --epochs 2 --seed 5 --threads 2 --quiet --save %s", t, whole);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --epochs 1 --seed 5 --threads 2 --quiet --save %s", t, half);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --epochs 2 --resume %s --threads 2 --quiet --save %s", t, half, resumed);
    assert_int_equal(r.status, 0);
    /* Weights, the optimizer's buffers and iterations, epoch and generator state. */
    assert_same_npz(whole, resumed);

    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(resumed, &a, &n), 0);
    assert_int_equal(find_array(a, n, "state.epoch")->i[0], 2);
    assert_int_equal(find_array(a, n, "optimizer.iterations")->i[0], 6);  /* 2 x 3 steps */
    nn_npz_free(a, n);

    /* The resumed epoch did train: its weights moved from the first epoch's. */
    run_cmd(&r, "cmp -s %s %s", half, resumed);
    assert_int_equal(r.status, 1);
}

static void test_resume_same_bits(void **state)
{
    (void)state;
    assert_resume_same_bits("det", det_yaml);
    assert_resume_same_bits("det_nadam", det_nadam_yaml);
}

/* A batch whose activations exceed the work budget passes in parts: the same
 * training up to the order of float sums (dropout masks included). */
static void test_batch_in_parts(void **state)
{
    (void)state;
    const char *t = build_model("det", det_yaml);
    const char *whole = in_scratch("parts_whole.npz"), *parts = in_scratch("parts_split.npz");
    RunResult r;
    run_cmd(&r, "%s train --seed 3 --threads 1 --quiet --save %s", t, whole);
    assert_int_equal(r.status, 0);
    /* det's work is 46 floats per sample: under 100 bytes, parts of one sample. */
    run_cmd(&r, "NNRT_WORK_BYTES=100 %s train --seed 3 --threads 1 --quiet --save %s", t, parts);
    assert_int_equal(r.status, 0);
    nn_array *a, *b;
    int na, nb;
    assert_int_equal(nn_npz_read(whole, &a, &na), 0);
    assert_int_equal(nn_npz_read(parts, &b, &nb), 0);
    assert_int_equal(na, nb);
    bool trained = false;
    for (int i = 0; i < na; i++) {
        if (a[i].dtype != NN_F32)
            continue;
        for (size_t k = 0; k < a[i].size; k++) {
            assert_true(fabsf(a[i].f[k] - b[i].f[k]) <= 1e-5f + 1e-4f * fabsf(a[i].f[k]));
            trained |= a[i].f[k] != 0.0f;
        }
    }
    assert_true(trained);
    nn_npz_free(a, na);
    nn_npz_free(b, nb);
}

/* ---- 4. weight files ------------------------------------------------------------------- */

static const char wts_yaml[] =
    "input_shape: [5]\n"
    "layers:\n"
    "  - Dense: {units: 3, activation: relu}\n"
    "  - Dense: {units: 2}\n"
    "compile: {optimizer: sgd, loss: mse}\n"
    "data:\n  train: {format: inline, x: [[1, 2, 3, 4, 5]], y: [[0, 1]]}\n";

static void assert_glorot(const nn_array *a, int fan_in, int fan_out)
{
    double limit = sqrt(6.0 / (fan_in + fan_out)), most = 0;
    assert_int_equal(a->rank, 2);
    assert_int_equal(a->shape[0], fan_in);
    assert_int_equal(a->shape[1], fan_out);
    for (size_t k = 0; k < a->size; k++) {
        if (!(fabs(a->f[k]) <= limit))
            fail_msg("%s[%zu] = %g is outside the glorot limit %g", a->name, k, a->f[k], limit);
        most = fmax(most, fabs(a->f[k]));
    }
    /* Uniform over the whole range, not a narrower one. */
    assert_true(most > limit / 2);
}

static void test_weight_files(void **state)
{
    (void)state;
    const char *t = build_model("wts", wts_yaml);
    const char *w = in_scratch("wts.npz"), *w2 = in_scratch("wts2.npz");
    RunResult r;
    run_cmd(&r, "%s init --seed 1 --save %s", t, w);
    assert_int_equal(r.status, 0);

    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(w, &a, &n), 0);
    assert_int_equal(n, 5);   /* init: the tensors and meta.rescale, no training state */
    assert_non_null(find_array(a, n, "meta.rescale"));
    assert_glorot(find_array(a, n, "dense.kernel"), 5, 3);
    assert_glorot(find_array(a, n, "dense_1.kernel"), 3, 2);
    const nn_array *b = find_array(a, n, "dense.bias");
    assert_int_equal(b->rank, 1);
    assert_int_equal(b->shape[0], 3);
    for (size_t k = 0; k < b->size; k++)
        assert_true(b->f[k] == 0.0f);
    nn_npz_free(a, n);

    /* The seed decides the weights. */
    run_cmd(&r, "%s init --seed 1 --save %s && cmp %s %s", t, w2, w, w2);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s init --seed 2 --save %s && cmp -s %s %s", t, w2, w, w2);
    assert_int_equal(r.status, 1);

    if (!have_numpy()) {
        print_message("numpy not found: skipping the numpy checks\n");
        return;
    }
    run_cmd(&r, "/usr/bin/python3 -c \"import numpy; d = numpy.load('%s'); "
                "print(sorted(d.files), d['dense.kernel'].shape, d['dense_1.kernel'].shape, "
                "d['dense.bias'].shape, d['dense.kernel'].dtype, d['meta.rescale'].shape, "
                "d['meta.rescale'].dtype, float(d['meta.rescale']))\"", w);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "['dense.bias', 'dense.kernel', 'dense_1.bias', 'dense_1.kernel', "
                               "'meta.rescale'] (5, 3) (3, 2) (3,) float32 () float32 1.0\n");

    /* predict against numpy's forward pass with the same weights, with the
     * biases set to something other than zero first. */
    run_cmd(&r, "/usr/bin/python3 -c \"import numpy; d = dict(numpy.load('%s')); "
                "d['dense.bias'] = numpy.array([0.1, -0.2, 0.3], 'f4'); "
                "d['dense_1.bias'] = numpy.array([0.5, -0.5], 'f4'); numpy.savez('%s', **d); "
                "x = numpy.array([1, -2, 0.5, 3, -1], 'f4'); "
                "h = numpy.maximum(x @ d['dense.kernel'] + d['dense.bias'], 0); "
                "y = h @ d['dense_1.kernel'] + d['dense_1.bias']; print('%%.6f %%.6f' %% tuple(y))\"",
            w, w2);
    assert_int_equal(r.status, 0);
    double want[2], got[2];
    assert_int_equal(sscanf(r.out, "%lf %lf", &want[0], &want[1]), 2);
    run_cmd(&r, "%s predict --weights %s 1,-2,0.5,3,-1", t, w2);
    assert_int_equal(r.status, 0);
    assert_int_equal(sscanf(r.out, "1,-2,0.5,3,-1: %lf %lf", &got[0], &got[1]), 2);
    for (int k = 0; k < 2; k++)
        if (!(fabs(got[k] - want[k]) <= 1e-4))
            fail_msg("output %d: predict %g, numpy %g", k, got[k], want[k]);
}

/* ---- 5. errors ------------------------------------------------------------------------ */

static void test_nan_loss(void **state)
{
    (void)state;
    /* x = 1e30: the first step's loss (~1e60) is finite in double, but its
     * kernel gradient overflows a float, so the second step (epoch 2: one
     * batch of 6 an epoch) meets inf * 0 = NaN. */
    const char *t = build_model("nan",
                                "input_shape: [1]\nlayers:\n  - Dense: {units: 1}\n"
                                "compile: {optimizer: sgd, loss: mse}\n"
                                "data:\n  train: {format: inline, x: [1.0e30, 0, 1, 2, 3, 4],\n"
                                "                 y: [-2, 1, 4, 7, 10, 13]}\n"
                                "fit: {batch_size: 6, epochs: 5}\n");
    RunResult r;
    run_cmd(&r, "%s train --quiet --no-shuffle", t);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "the loss became NaN at epoch 2, step 1");

    /* A learning rate of 1e30 on the course's data: it blows up within a few
     * epochs, and the message says where. */
    const char *hello = build_file("models/hello.yaml", "hello");
    run_cmd(&r, "%s train --learning-rate 1e30 --batch-size 2 --quiet", hello);
    assert_int_equal(r.status, 1);
    const char *at = strstr(r.out, "at epoch ");
    int epoch, step;
    assert_non_null(at);
    assert_int_equal(sscanf(at, "at epoch %d, step %d", &epoch, &step), 2);
    assert_in_range(epoch, 1, 500);
    assert_in_range(step, 1, 3);
}

static void test_usage_and_foreign_weights(void **state)
{
    (void)state;
    const char *hello = build_file("models/hello.yaml", "hello");
    RunResult r;
    /* predict without --weights uses the initial weights (for models whose
     * weights are all in the model file) and warns; evaluate needs them. */
    run_cmd(&r, "%s predict 10 2>&1 >/dev/null", hello);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "warning: no --weights");
    run_cmd(&r, "%s evaluate", hello);
    assert_int_equal(r.status, 2);
    assert_output_contains(&r, "--weights");
    run_cmd(&r, "%s train --epochs zero", hello);
    assert_int_equal(r.status, 2);
    run_cmd(&r, "%s fly", hello);
    assert_int_equal(r.status, 2);

    const char *hw = in_scratch("hello_init.npz");
    run_cmd(&r, "%s init --seed 1 --save %s", hello, hw);
    assert_int_equal(r.status, 0);

    /* hello's weights in a model whose first layer is 'hidden'. */
    const char *named = build_model("g_named", grad_case("named")->yaml);
    run_cmd(&r, "%s predict --weights %s 1 2 3", named, hw);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "'hidden.kernel'");

    /* Same names, other shapes: dense.kernel is [1, 1] there, [5, 3] here;
     * the one line names both. */
    const char *wts = build_model("wts", wts_yaml);
    run_cmd(&r, "%s predict --weights %s 1,2,3,4,5", wts, hw);
    assert_int_equal(r.status, 1);
    char want[600];
    snprintf(want, sizeof want, "%s: error: 'dense.kernel' is (1, 1) in this file; model 'wts' "
                                "wants (5, 3)\n", hw);
    assert_string_equal(r.out, want);

    /* A missing file is an error, not a crash. */
    run_cmd(&r, "%s predict --weights %s 10", hello, in_scratch("nothing.npz"));
    assert_int_equal(r.status, 1);
}

static void test_label_out_of_range(void **state)
{
    (void)state;
    const char *t = build_model("badlabel",
                                "input_shape: [3]\nlayers:\n  - Dense: {units: 4, activation: relu}\n"
                                "  - Dense: {units: 3, activation: softmax, name: classes}\n"
                                "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
                                "data:\n  train: {format: inline, x: " X4 ", y: [0, 2, 5, 1]}\n");
    RunResult r;
    run_cmd(&r, "%s train --quiet --save %s", t, in_scratch("badlabel.npz"));
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "label 5 ");
    assert_output_contains(&r, "'classes'");
    assert_false(file_exists(in_scratch("badlabel.npz")));
}

static void test_sigint(void **state)
{
    (void)state;
    const char *hello = build_file("models/hello.yaml", "hello");
    const char *w = in_scratch("sigint.npz");
    RunResult r;
    /* A background job of a script ignores SIGINT until the trainer sets its
     * handler; the watchdog ends, after 60 s, a trainer that never got the
     * signal, and itself as soon as the trainer is gone. */
    run_cmd(&r, "%s train --epochs 100000 --save %s --quiet & pid=$!; "
                "(i=0; while kill -0 $pid; do i=$((i+1)); [ $i -gt 600 ] && kill -KILL $pid; "
                "sleep 0.1; done) >/dev/null 2>&1 & "
                "sleep 1; kill -INT $pid; wait $pid; echo rc=$?",
            hello, w);
    assert_output_contains(&r, "rc=130\n");
    assert_true(file_exists(w));
    /* The checkpoint loads, for predict and for resuming. */
    run_cmd(&r, "%s predict --weights %s 10", hello, w);
    assert_int_equal(r.status, 0);
    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(w, &a, &n), 0);
    int64_t done = find_array(a, n, "state.epoch")->i[0];
    nn_npz_free(a, n);
    assert_true(done >= 1 && done < 100000);
    run_cmd(&r, "%s train --epochs %lld --resume %s --quiet", hello, (long long)done + 1, w);
    assert_int_equal(r.status, 0);
}

/* ---- 5b. interrupted within an epoch: the same bits as a run never stopped ----------------- */

/* 1000 rows of three numbers and a class, as a CSV: 800 train, 200 held
 * out; batches of 2, so an epoch has 400 steps to be interrupted in. */
static const char *mid_epoch_model(void)
{
    const char *csv = in_scratch("mid.csv");
    if (!file_exists(csv)) {
        FILE *f = fopen(csv, "w");
        assert_non_null(f);
        for (int i = 0; i < 1000; i++) {
            double a = sin(i * 0.7), b = cos(i * 1.3), c = sin(i * 0.11 + 1);
            fprintf(f, "%.4f,%.4f,%.4f,%d\n", a, b, c, (a + b > 0) + (c > 0.3));
        }
        assert_int_equal(fclose(f), 0);
    }
    return build_model("mid",
                       "input_shape: [3]\n"
                       "layers:\n"
                       "  - Dense: {units: 16, activation: relu}\n"
                       "  - Dropout: {rate: 0.25}\n"
                       "  - Dense: {units: 3, activation: softmax}\n"
                       "compile: {optimizer: adam, loss: categorical_crossentropy, "
                       "metrics: [accuracy, auc, {name: top_k_categorical_accuracy, k: 2}]}\n"
                       "data:\n  train: {format: csv, path: mid.csv}\n  validation_split: 0.2\n"
                       "fit: {batch_size: 2, epochs: 3, seed: 5}\n");
}

static int64_t npz_int(const char *path, const char *name)
{
    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(path, &a, &n), 0);
    int64_t v = find_array(a, n, name)->i[0];
    nn_npz_free(a, n);
    return v;
}

/* Runs `t train ARGS` in the background until the checkpoint `ckpt` first
 * appears (so training runs and Ctrl-C is handled), then sends it `sig`.
 * The watchdog ends, after 60 s, a trainer that never stopped. Its output
 * goes to `out`; returns its exit status. */
static int train_until_saved(const char *t, const char *args, const char *ckpt, const char *sig,
                             const char *out)
{
    RunResult r;
    run_cmd(&r, "%s train %s >%s 2>&1 & pid=$!; "
                "(i=0; while kill -0 $pid; do i=$((i+1)); [ $i -gt 6000 ] && kill -KILL $pid; "
                "sleep 0.01; done) >/dev/null 2>&1 & "
                "while [ ! -f %s ] && kill -0 $pid 2>/dev/null; do sleep 0.001; done; "
                "kill -%s $pid; wait $pid; echo rc=$?",
            t, args, out, ckpt, sig);
    int rc = -1;
    const char *at = strstr(r.out, "rc=");
    assert_non_null(at);
    assert_int_equal(sscanf(at, "rc=%d", &rc), 1);
    return rc;
}

/* The loss and accuracy columns of a --history file (not the seconds). */
static void history_metrics(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    size_t used = 0;
    buf[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char *last = strrchr(line, ',');
        assert_non_null(last);
        *last = '\0';
        used += (size_t)snprintf(buf + used, len - used, "%s\n", line);
        assert_true(used < len);
    }
    fclose(f);
}

/* Resumes `part` up to the epoch it stopped in, and trains the same epochs in
 * one go: the two checkpoints must be equal bit for bit, weights, Adam's
 * state and the loop's. */
static void assert_resume_continues(const char *t, const char *part, const char *whole,
                                    bool with_history)
{
    int64_t epochs = npz_int(part, "state.epoch") + 1;
    RunResult r;
    run_cmd(&r, "%s train --epochs %lld --resume %s --save %s --threads 2 --quiet%s%s", t,
            (long long)epochs, part, part, with_history ? " --history " : "",
            with_history ? in_scratch("mid_part.csv") : "");
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --epochs %lld --save %s --threads 2 --quiet%s%s", t, (long long)epochs,
            whole, with_history ? " --history " : "", with_history ? in_scratch("mid_whole.csv") : "");
    assert_int_equal(r.status, 0);
    assert_same_npz(whole, part);
    assert_int_equal(npz_int(part, "optimizer.iterations"), epochs * 400);
    if (with_history) {
        static char a[65536], b[65536];
        history_metrics(in_scratch("mid_part.csv"), a, sizeof a);
        history_metrics(in_scratch("mid_whole.csv"), b, sizeof b);
        assert_string_equal(a, b);
    }
}

static void test_sigint_mid_epoch(void **state)
{
    (void)state;
    const char *t = mid_epoch_model();
    const char *part = in_scratch("mid_int.npz"), *out = in_scratch("mid_int.out");
    char args[512];
    snprintf(args, sizeof args, "--epochs 100000 --threads 2 --save-every 3 --save %s --history %s",
             part, in_scratch("mid_part.csv"));
    assert_int_equal(train_until_saved(t, args, part, "INT", out), 130);

    /* Where it stopped, as the checkpoint and the last lines say it. */
    int64_t epoch = npz_int(part, "state.epoch"), step = npz_int(part, "state.step");
    print_message("interrupted after step %lld of epoch %lld\n", (long long)step,
                  (long long)epoch + 1);
    assert_in_range(step, 0, 399);
    assert_int_equal(npz_int(part, "state.sample"), step * 2);
    RunResult r;
    run_cmd(&r, "tail -n 2 %s", out);
    char want[128];
    snprintf(want, sizeof want, "interrupted after step %lld of epoch %lld; weights saved to %s\n",
             (long long)step, (long long)epoch + 1, part);
    assert_output_contains(&r, want);
    if (step > 0) {
        /* The bar as far as it got, without validation (the epoch did not end). */
        snprintf(want, sizeof want, "%3lld/400 [", (long long)step);
        assert_output_contains(&r, want);
        assert_null(strstr(r.out, "val_loss"));
    }
    assert_resume_continues(t, part, in_scratch("mid_whole.npz"), true);
}

static void test_kill_after_save(void **state)
{
    (void)state;
    const char *t = mid_epoch_model();
    const char *part = in_scratch("mid_kill.npz");
    char args[512];
    snprintf(args, sizeof args, "--epochs 100000 --threads 2 --save-every 7 --save %s --quiet", part);
    assert_int_equal(train_until_saved(t, args, part, "KILL", in_scratch("mid_kill.out")),
                     128 + 9);
    print_message("killed; the checkpoint is at step %lld of epoch %lld\n",
                  (long long)npz_int(part, "state.step"),
                  (long long)npz_int(part, "state.epoch") + 1);
    /* --save-every counts steps from the start: the save was at a multiple of 7
     * (or at an epoch's end). */
    int64_t it = npz_int(part, "optimizer.iterations");
    assert_true(it % 7 == 0 || it % 400 == 0);
    assert_resume_continues(t, part, in_scratch("mid_kill_whole.npz"), false);
}

/* A checkpoint of an older trainer has no state.step, .sample, ... : it was
 * written at an epoch's end, and resumes as it did. */
static void test_resume_old_checkpoint(void **state)
{
    (void)state;
    const char *t = build_model("det", det_yaml);
    const char *old = in_scratch("old.npz"), *whole = in_scratch("old_whole.npz");
    RunResult r;
    run_cmd(&r, "%s train --epochs 1 --seed 5 --threads 2 --quiet --save %s", t, old);
    assert_int_equal(r.status, 0);
    nn_array *a;
    int n, kept = 0;
    assert_int_equal(nn_npz_read(old, &a, &n), 0);
    for (int i = 0; i < n; i++) {
        bool added = strncmp(a[i].name, "state.", 6) == 0 && strcmp(a[i].name, "state.epoch") &&
                     strcmp(a[i].name, "state.rng") && strcmp(a[i].name, "state.seed");
        if (added)
            nn_array_free(&a[i]);
        else
            a[kept++] = a[i];
    }
    assert_int_equal(kept, n - 5);
    assert_int_equal(nn_npz_write(old, a, kept), 0);
    nn_npz_free(a, kept);
    run_cmd(&r, "%s train --epochs 3 --resume %s --save %s --threads 2 --quiet", t, old, old);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --epochs 3 --seed 5 --threads 2 --quiet --save %s", t, whole);
    assert_int_equal(r.status, 0);
    assert_same_npz(whole, old);

    run_cmd(&r, "%s train --save-every 2", t);
    assert_int_equal(r.status, 2);
    assert_output_contains(&r, "--save W.npz with --save-every");
}

/* Keras's DataHandler: steps_per_epoch beyond the data ends the epoch where
 * the data ends, warns once, and stops training; the data is not reused. */
static void test_input_ran_out(void **state)
{
    (void)state;
    /* det_yaml's 12 samples make 3 batches of 4 (Keras: ceil(12 / 4)). */
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%s", det_yaml);
    snprintf(strstr(yaml, "fit: "), sizeof yaml - (size_t)(strstr(yaml, "fit: ") - yaml),
             "fit: {batch_size: 4, epochs: 3, steps_per_epoch: 5}\n");
    const char *t = build_model("ranout", yaml);
    const char *w = in_scratch("ranout.npz");
    RunResult r;
    run_cmd(&r, "%s train --seed 5 --save %s", t, w);
    assert_int_equal(r.status, 0);
    /* 30 * 3/5 = 18 cells of the bar, the last one its head. */
    assert_output_contains(&r, "3/5 [=================>............] - ");
    assert_output_contains(&r, "your input ran out of data; interrupting training: 12 samples "
                               "make 3 batches of 4, fewer than steps_per_epoch (5)");
    assert_null(strstr(strstr(r.out, "ran out") + 1, "ran out"));
    assert_null(strstr(r.out, "Epoch 2/3"));
    assert_int_equal(npz_int(w, "state.epoch"), 1);
    assert_int_equal(npz_int(w, "optimizer.iterations"), 3);

    /* --limit 10: batches of 4, 4 and 2, as a whole pass without
     * steps_per_epoch gives them: the same bits. */
    run_cmd(&r, "%s train --seed 5 --limit 10 --threads 2 --quiet --save %s", t, w);
    assert_output_contains(&r, "10 samples make 3 batches of 4");
    assert_output_contains(&r, "a larger --limit");
    const char *whole = build_model("det", det_yaml);
    run_cmd(&r, "%s train --epochs 1 --seed 5 --limit 10 --threads 2 --quiet --save %s", whole,
            in_scratch("ranout_pass.npz"));
    assert_int_equal(r.status, 0);
    assert_same_npz(in_scratch("ranout_pass.npz"), w);
}

/* ---- 6. Fashion-MNIST -------------------------------------------------------------------- */

#define FASHION "/usr/share/datasets/fashion-mnist"

static void test_fashion(void **state)
{
    (void)state;
    if (!file_exists(FASHION "/train-images-idx3-ubyte.gz")) {
        print_message("no %s: skipping\n", FASHION);
        skip();
    }
    const char *t = build_file("models/fashion_mlp.yaml", "fashion_mlp");
    const char *w = in_scratch("fashion.npz");
    RunResult r;
    run_cmd(&r, "%s train --limit 2000 --epochs 1 --quiet --save %s", t, w);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s evaluate --weights %s --limit 1000", t, w);
    assert_int_equal(r.status, 0);
    double loss, acc;
    /* Keras's bar over the 32 batches of 32 (the last of 8), ending in the scores. */
    assert_int_equal(strncmp(r.out, "32/32 [==============================] - ", 41), 0);
    assert_non_null(strstr(r.out, "loss: "));
    assert_int_equal(sscanf(strstr(r.out, "loss: "), "loss: %lf - accuracy: %lf", &loss, &acc), 2);
    if (!(acc > 0.6 && acc <= 1 && loss > 0 && isfinite(loss)))
        fail_msg("after 2000 samples: loss %g, accuracy %g", loss, acc);

    /* predict --npy: the first test images, as the model sees them. */
    enum { N = 20 };
    nn_dataset d = {0};
    assert_int_equal(nn_load_idx(FASHION "/t10k-images-idx3-ubyte.gz",
                                 FASHION "/t10k-labels-idx1-ubyte.gz", &d), 0);
    nn_array x = {.dtype = NN_F32, .rank = 3, .shape = {N, 28, 28}, .size = N * 784};
    x.f = nn_alloc(x.size, sizeof *x.f);
    for (size_t k = 0; k < x.size; k++)
        x.f[k] = d.bytes[k] / 255.0f;
    int labels[N];
    for (int s = 0; s < N; s++)
        labels[s] = (int)d.labels[s];
    /* The first test image as a PNG file, for predict on an image. */
    assert_true(stbi_write_png(in_scratch("first.png"), 28, 28, 1, d.bytes, 28) != 0);
    nn_dataset_free(&d);
    const char *xp = in_scratch("x.npy"), *yp = in_scratch("y.npy");
    assert_int_equal(nn_npy_write(xp, &x), 0);
    free(x.f);

    run_cmd(&r, "%s predict --weights %s --npy %s --out %s", t, w, xp, yp);
    assert_int_equal(r.status, 0);
    nn_array y;
    assert_int_equal(nn_npy_read(yp, &y), 0);
    assert_int_equal(y.dtype, NN_F32);
    assert_int_equal(y.rank, 2);
    assert_int_equal(y.shape[0], N);
    assert_int_equal(y.shape[1], 10);
    int right = 0;
    for (int s = 0; s < N; s++) {
        double sum = 0;
        int best = 0;
        for (int k = 0; k < 10; k++) {
            float p = y.f[s * 10 + k];
            assert_true(p >= 0 && p <= 1);
            sum += p;
            best = p > y.f[s * 10 + best] ? k : best;
        }
        if (!(fabs(sum - 1) < 1e-5))
            fail_msg("row %d sums to %.8f", s, sum);
        right += best == labels[s];
    }
    assert_true(right >= N / 2);

    /* Without --out it prints the same probabilities, one line per sample
     * (with --all: the class, its probability, then the vector). */
    run_cmd(&r, "%s predict --weights %s --npy %s --all", t, w, xp);
    assert_int_equal(r.status, 0);
    const char *line = r.out;
    for (int s = 0; s < N; s++) {
        int idx;
        assert_int_equal(sscanf(line, "%d:", &idx), 1);
        assert_int_equal(idx, s);
        const char *p = strchr(line, '[');
        assert_non_null(p);
        p++;
        int used;
        for (int k = 0; k < 10; k++) {
            double v;
            assert_int_equal(sscanf(p, "%lf%n", &v, &used), 1);
            p += used;
            assert_true(fabs(v - y.f[s * 10 + k]) <= 5.1e-5);
        }
        line = strchr(line, '\n');
        assert_non_null(line);
        line++;
    }
    /* A model whose input_shape is (28, 28) reads a grey image file: the
     * same probabilities as the first row of --npy. */
    run_cmd(&r, "%s predict --weights %s --all %s", t, w, in_scratch("first.png"));
    assert_int_equal(r.status, 0);
    const char *probs = strstr(r.out, "[");
    assert_non_null(probs);
    probs += 1;
    for (int k = 0; k < 10; k++) {
        double v;
        int used;
        assert_int_equal(sscanf(probs, "%lf%n", &v, &used), 1);
        probs += used;
        assert_true(fabs(v - y.f[k]) <= 5.1e-5);
    }
    nn_array_free(&y);
}

/* ---- 7. history and validation_split -------------------------------------------------------- */

static void test_history(void **state)
{
    (void)state;
    /* 8 samples, the last quarter held out: 6 train in 3 batches of 2. */
    const char *t = build_model("hist",
        "input_shape: [3]\nlayers:\n  - Dense: {units: 4, activation: relu}\n"
        "  - Dense: {units: 2, activation: softmax}\n"
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
        "data:\n  validation_split: 0.25\n"
        "  train:\n    format: inline\n"
        "    x: [[0.1, 0.2, 0.3], [0.5, -0.4, 0.9], [1.0, 0.0, -1.0], [0.3, 0.3, 0.3],\n"
        "        [-0.7, 0.1, 0.2], [0.9, 0.8, -0.3], [0.0, -1.0, 0.5], [0.2, 0.6, -0.8]]\n"
        "    y: [0, 1, 1, 0, 0, 1, 1, 0]\n"
        "fit: {batch_size: 2, epochs: 3}\n");
    const char *h = in_scratch("history.csv");
    RunResult r;
    run_cmd(&r, "%s train --history %s", t, h);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "Epoch 1/3\n");
    assert_output_contains(&r, "Epoch 3/3\n");

    /* The per-epoch lines: 3/3 steps, and val_loss, val_accuracy after the split. */
    double printed[3];
    const char *p = r.out;
    for (int e = 0; e < 3; e++) {
        p = strstr(p, "3/3 [");
        assert_non_null(p);
        const char *lp = strstr(p, " - loss: ");
        assert_non_null(lp);
        double acc, vl, va;
        assert_int_equal(sscanf(lp, " - loss: %lf - accuracy: %lf - val_loss: %lf - val_accuracy: %lf",
                                &printed[e], &acc, &vl, &va), 4);
        p = lp;
    }
    assert_null(strstr(p, "3/3 ["));

    FILE *f = fopen(h, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n");
    for (int e = 0; e < 3; e++) {
        assert_non_null(fgets(line, sizeof line, f));
        int epoch;
        double loss, acc, vl, va, secs;
        assert_int_equal(sscanf(line, "%d,%lf,%lf,%lf,%lf,%lf", &epoch, &loss, &acc, &vl, &va,
                                &secs), 6);
        assert_int_equal(epoch, e + 1);
        assert_true(fabs(loss - printed[e]) <= 5.1e-5);
        assert_true(acc >= 0 && acc <= 1 && va >= 0 && va <= 1);
        assert_true(isfinite(vl) && vl > 0 && secs >= 0);
    }
    assert_null(fgets(line, sizeof line, f));
    fclose(f);
}

/* class_weight multiplies each sample's loss, and Keras divides by the batch
 * size, not by the weights' sum: with every class weighing 2, SGD's steps
 * are those of twice the learning rate, to the bit (doubling is exact), and
 * the loss is twice as large. */
static void test_class_weight_scales_the_loss(void **state)
{
    (void)state;
    const char *model =
        "input_shape: [3]\nlayers:\n  - Dense: {units: 4, activation: relu}\n"
        "  - Dense: {units: 2, activation: softmax}\n"
        "compile: {optimizer: {name: sgd, learning_rate: %s}, "
        "loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
        "data:\n  train: {format: inline, x: " X4 ", y: [0, 1, 1, 0]}\n"
        "fit: {batch_size: 3, epochs: 2, seed: 3%s}\n";
    char plain[1024], weighted[1024];
    snprintf(plain, sizeof plain, model, "0.02", "");
    snprintf(weighted, sizeof weighted, model, "0.01", ", class_weight: {0: 2.0, 1: 2.0}");
    const char *a = build_model("cw_plain", plain), *b = build_model("cw_weighted", weighted);
    RunResult r;
    run_cmd(&r, "%s train --save %s --history %s --quiet", a, in_scratch("cw_a.npz"),
            in_scratch("cw_a.csv"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --save %s --history %s --quiet", b, in_scratch("cw_b.npz"),
            in_scratch("cw_b.csv"));
    assert_int_equal(r.status, 0);
    assert_same_npz(in_scratch("cw_a.npz"), in_scratch("cw_b.npz"));
    FILE *fa = fopen(in_scratch("cw_a.csv"), "r"), *fb = fopen(in_scratch("cw_b.csv"), "r");
    char la[256], lb[256];
    assert_non_null(fgets(la, sizeof la, fa));
    assert_non_null(fgets(lb, sizeof lb, fb));
    for (int e = 0; e < 2; e++) {
        double loss_a, loss_b, acc_a, acc_b;
        assert_non_null(fgets(la, sizeof la, fa));
        assert_non_null(fgets(lb, sizeof lb, fb));
        assert_int_equal(sscanf(la, "%*d,%lf,%lf", &loss_a, &acc_a), 2);
        assert_int_equal(sscanf(lb, "%*d,%lf,%lf", &loss_b, &acc_b), 2);
        assert_true(fabs(loss_b - 2 * loss_a) <= 1e-5 * loss_b);
        assert_true(acc_a == acc_b);   /* metrics are not weighted */
    }
    fclose(fa);
    fclose(fb);
}

/* ---- 8. categorical cross-entropy with class indices ------------------------------------------ */

static void test_categorical_class_indices(void **state)
{
    (void)state;
    /* The same six samples as one-hot rows (inline) and as class indices (a CSV
     * file's last column): the batches one-hot the indices, so the training
     * is the same to the bit. */
    const char *layers =
        "input_shape: [3]\nlayers:\n  - Dense: {units: 4, activation: tanh}\n"
        "  - Dense: {units: 3, activation: softmax}\n"
        "compile: {optimizer: adam, loss: categorical_crossentropy, metrics: [accuracy]}\n"
        "fit: {batch_size: 2, epochs: 4}\n";
    char yaml[2048];
    snprintf(yaml, sizeof yaml, "%sdata:\n  train:\n    format: inline\n"
             "    x: [[0.1, 0.2, 0.3], [0.5, -0.4, 0.9], [1.0, 0.0, -1.0], [0.3, 0.3, 0.3],\n"
             "        [-0.7, 0.1, 0.2], [0.9, 0.8, -0.3]]\n"
             "    y: [[1, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]]\n", layers);
    const char *onehot = build_model("cat_onehot", yaml);
    write_text(in_scratch("cat.csv"), "0.1,0.2,0.3,0\n0.5,-0.4,0.9,2\n1.0,0.0,-1.0,1\n"
                                      "0.3,0.3,0.3,0\n-0.7,0.1,0.2,1\n0.9,0.8,-0.3,2\n");
    snprintf(yaml, sizeof yaml, "%sdata:\n  train: {format: csv, path: cat.csv, header: false}\n",
             layers);
    const char *index = build_model("cat_index", yaml);
    RunResult r;
    run_cmd(&r, "%s train --seed 3 --quiet --save %s", onehot, in_scratch("cat_onehot.npz"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --seed 3 --quiet --save %s", index, in_scratch("cat_index.npz"));
    assert_int_equal(r.status, 0);
    assert_same_npz(in_scratch("cat_onehot.npz"), in_scratch("cat_index.npz"));

    /* A class index beyond the 3 units is refused there too. */
    write_text(in_scratch("cat.csv"), "0.1,0.2,0.3,0\n0.5,-0.4,0.9,3\n");
    run_cmd(&r, "%s train --quiet", index);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "label 3 ");
}

/* ---- 7. where the data is found ------------------------------------------------------- */

/* As a user lays it out: SCRATCH/place/sub/NAME.yaml compiled from
 * SCRATCH/place as `nncc sub/NAME.yaml -o gen/NAME.c` (the C names the
 * folder "sub", relative), the trainer built into gen/. Returns place. */
static const char *build_below(const char *name, const char *yaml)
{
    static char root[1024], top[600];
    assert_non_null(getcwd(root, sizeof root));
    snprintf(top, sizeof top, "%s", in_scratch("place"));
    char model[700];
    RunResult r;
    run_cmd(&r, "mkdir -p %s/sub %s/gen", top, top);
    snprintf(model, sizeof model, "%s/sub/%s.yaml", top, name);
    write_text(model, yaml);
    const char *nncc = nncc_path(), *sep = nncc[0] == '/' ? "" : "/";
    run_cmd(&r, "cd %s && %s%s%s sub/%s.yaml -o gen/%s.c && cc -std=c11 -O1 -fopenmp %s -I%s/runtime "
                "-o gen/%s gen/%s.c %s/%s/libnnrt.a " TRAINER_LIBS,
            top, nncc[0] == '/' ? "" : root, sep, nncc, name, name,
            strcmp(san(), "1") == 0 ? "-fsanitize=address,undefined -fno-omit-frame-pointer" : "",
            root, name, name, root, build_dir());
    if (r.status != 0)
        fail_msg("building %s below %s failed:\n%s", name, top, r.out);
    return top;
}

/* y = 2x + 1, fixed, so that losses are worked out by hand. */
static const char fix_yaml[] =
    "name: fix\ninput_shape: [1]\nlayers:\n"
    "  - Dense: {units: 1, weights: {kernel: [[2]], bias: [1]}}\n"
    "compile: {optimizer: sgd, loss: mse}\n"
    "data:\n  train: {format: csv, path: lin.csv, label_column: y}\n";

static void test_data_found(void **state)
{
    (void)state;
    const char *top = build_below("fix", fix_yaml);
    char csv[700], w[700];
    snprintf(csv, sizeof csv, "%s/sub/lin.csv", top);
    snprintf(w, sizeof w, "%s/w.npz", top);
    write_text(csv, "x,y\n1,3\n2,6\n3,10\n");
    RunResult r;
    /* From another folder: found beside the model, seen from the trainer's parent. */
    run_cmd(&r, "cd / && %s/gen/fix train --epochs 1 --learning-rate 0.0001 --quiet", top);
    if (r.status != 0)
        fail_msg("train from / failed:\n%s", r.out);
    /* evaluate --data FILE.csv: (2*1+1-3)^2, (2*2+1-6)^2, (2*3+1-10)^2 = 0, 1, 9; mean 10/3. */
    run_cmd(&r, "cd / && %s/gen/fix init --seed 0 --save %s && %s/gen/fix evaluate --weights %s "
                "--data %s", top, w, top, w, csv);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "loss: 3.3333\n");
    /* A file of inputs only: nothing to score. */
    char inputs[700];
    snprintf(inputs, sizeof inputs, "%s/inputs.csv", top);
    write_text(inputs, "x\n1\n2\n");
    run_cmd(&r, "%s/gen/fix evaluate --weights %s --data %s", top, w, inputs);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "inputs.csv: error: no label column");
    /* --data DIR wins: the file is looked for there only. */
    run_cmd(&r, "cd / && %s/gen/fix train --epochs 1 --quiet --data %s/gen", top, top);
    assert_int_equal(r.status, 1);
    char want[2048];
    snprintf(want, sizeof want, "sub/fix.yaml:7: error: data 'lin.csv' not found; tried "
             "%s/gen/lin.csv: give the trainer --data DIR", top);
    assert_output_contains(&r, want);
    /* Nowhere: every place tried, in order, and the fix. */
    assert_int_equal(unlink(csv), 0);
    run_cmd(&r, "cd / && %s/gen/fix train --epochs 1 --quiet", top);
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof want, "sub/fix.yaml:7: error: data 'lin.csv' not found; tried lin.csv, "
             "sub/lin.csv, %s/sub/lin.csv: give the trainer --data DIR (the folder that holds "
             "it) or the model file data: dir:\n", top);
    assert_output_contains(&r, want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello),
        cmocka_unit_test(test_gradcheck),
        cmocka_unit_test(test_frozen_summary),
        cmocka_unit_test(test_same_seed_same_bits),
        cmocka_unit_test(test_resume_same_bits),
        cmocka_unit_test(test_batch_in_parts),
        cmocka_unit_test(test_weight_files),
        cmocka_unit_test(test_nan_loss),
        cmocka_unit_test(test_usage_and_foreign_weights),
        cmocka_unit_test(test_label_out_of_range),
        cmocka_unit_test(test_sigint),
        cmocka_unit_test(test_sigint_mid_epoch),
        cmocka_unit_test(test_kill_after_save),
        cmocka_unit_test(test_resume_old_checkpoint),
        cmocka_unit_test(test_input_ran_out),
        cmocka_unit_test(test_fashion),
        cmocka_unit_test(test_history),
        cmocka_unit_test(test_class_weight_scales_the_loss),
        cmocka_unit_test(test_categorical_class_indices),
        cmocka_unit_test(test_data_found),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
