/* test_conv.c - the convolutional layers' templates (Conv2D, MaxPooling2D,
 * AveragePooling2D, GlobalAveragePooling2D, BatchNormalization), through the
 * C that nncc generates for small models.
 *
 * Each test writes a model file, compiles it with ./nncc --no-main, and builds a
 * driver (its source is below) that includes the generated C and checks the
 * layer named probe: its output against a naive reference written in the driver,
 * the gradient of sum(output * r) with respect to every trained tensor and the
 * probe's input against central differences, and for hand-made cases the values
 * the test worked out by hand. Geometries cover strides, rectangular kernels and
 * pools, same padding with an odd total, partial average windows, max ties, and
 * BatchNormalization in training, inference and frozen. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include <math.h>
#include <stdbool.h>

/* The driver, written into each scratch folder as drv.c. */
static const char driver_source[] =
    "/* drv.c, written by tests/test_conv.c: checks the layer named probe of the model\n"
    " * in m.c (included, for its buffer offsets and functions) against references\n"
    " * written here. Built with -DT_KIND (1 Conv2D, 2 MaxPooling2D, 3 AveragePooling2D,\n"
    " * 4 GlobalAveragePooling2D, 5 BatchNormalization) and the probe's geometry T_*.\n"
    " * The layer before the probe, named feed, is a 1x1 convolution (or a Dense)\n"
    " * whose kernel is the identity: its output is x, and the gradient with respect\n"
    " * to the probe's input lands in its buffer feed_dout.\n"
    " * Without T_PRINT: output against the reference, then every gradient against\n"
    " * central differences. With T_PRINT: prints the probe's output for the inputs\n"
    " * given as arguments, for the test to compare with values worked out by hand. */\n"
    "#include \"m.c\"\n"
    "\n"
    "#include <stdio.h>\n"
    "#include <stdlib.h>\n"
    "\n"
    "#define N T_N\n"
    "#define NX (N * T_H * T_W * T_C)\n"
    "\n"
    "static unsigned long long rng = 88172645463325252ULL;\n"
    "static double uniform(double lo, double hi)\n"
    "{\n"
    "    rng ^= rng << 13;\n"
    "    rng ^= rng >> 7;\n"
    "    rng ^= rng << 17;\n"
    "    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;\n"
    "}\n"
    "\n"
    "static int failures;\n"
    "static void expect(const char *what, long i, double got, double want, double tol)\n"
    "{\n"
    "    if (!(fabs(got - want) <= tol * fmax(1.0, fabs(want))) && failures++ < 20)\n"
    "        printf(\"FAIL %s[%ld]: got %.9g, want %.9g\\n\", what, i, got, want);\n"
    "}\n"
    "\n"
    "/* TensorFlow's output length and padding before, from first principles. */\n"
    "static int out_len(int in, int k, int s)\n"
    "{\n"
    "    return T_SAME ? (in + s - 1) / s : (in - k) / s + 1;\n"
    "}\n"
    "static int pad_before(int in, int k, int s)\n"
    "{\n"
    "    int total = (out_len(in, k, s) - 1) * s + k - in;\n"
    "    return T_SAME && total > 0 ? total / 2 : 0;\n"
    "}\n"
    "\n"
    "/* The probe's output for x, naively, in double. */\n"
    "static void reference(const float *x, const float *p, double *ref)\n"
    "{\n"
    "    const int OH = out_len(T_H, T_KH, T_SH), OW = out_len(T_W, T_KW, T_SW);\n"
    "    const int pt = pad_before(T_H, T_KH, T_SH), pl = pad_before(T_W, T_KW, T_SW);\n"
    "    (void)p, (void)OH, (void)OW, (void)pt, (void)pl;\n"
    "#if T_KIND == 1 || T_KIND == 2 || T_KIND == 3\n"
    "    const int F = T_KIND == 1 ? T_F : T_C;\n"
    "    for (int s = 0; s < N; s++)\n"
    "        for (int oh = 0; oh < OH; oh++)\n"
    "            for (int ow = 0; ow < OW; ow++)\n"
    "                for (int f = 0; f < F; f++) {\n"
    "                    double acc = T_KIND == 2 ? -INFINITY : 0;\n"
    "                    int cells = 0;\n"
    "#if T_KIND == 1 && T_BIAS\n"
    "                    acc = p[probe_bias + f];\n"
    "#endif\n"
    "                    for (int kh = 0; kh < T_KH; kh++)\n"
    "                        for (int kw = 0; kw < T_KW; kw++) {\n"
    "                            int ih = oh * T_SH - pt + kh, iw = ow * T_SW - pl + kw;\n"
    "                            if (ih < 0 || ih >= T_H || iw < 0 || iw >= T_W)\n"
    "                                continue;\n"
    "                            const float *xp = x + ((s * T_H + ih) * T_W + iw) * T_C;\n"
    "                            cells++;\n"
    "#if T_KIND == 1\n"
    "                            for (int c = 0; c < T_C; c++)\n"
    "                                acc += (double)xp[c] *\n"
    "                                       p[probe_kernel + ((kh * T_KW + kw) * T_C + c) * T_F + f];\n"
    "#elif T_KIND == 2\n"
    "                            acc = fmax(acc, xp[f]);\n"
    "#else\n"
    "                            acc += xp[f];\n"
    "#endif\n"
    "                        }\n"
    "                    ref[((s * OH + oh) * OW + ow) * F + f] = T_KIND == 3 ? acc / cells : acc;\n"
    "                }\n"
    "#elif T_KIND == 4\n"
    "    for (int s = 0; s < N; s++)\n"
    "        for (int c = 0; c < T_C; c++) {\n"
    "            double sum = 0;\n"
    "            for (int i = 0; i < T_H * T_W; i++)\n"
    "                sum += x[(s * T_H * T_W + i) * T_C + c];\n"
    "            ref[s * T_C + c] = sum / (T_H * T_W);\n"
    "        }\n"
    "#elif T_KIND == 5\n"
    "    const int count = N * T_H * T_W;\n"
    "    for (int c = 0; c < T_C; c++) {\n"
    "        double mean = 0, var = 0;\n"
    "        for (int i = 0; i < count; i++)\n"
    "            mean += x[i * T_C + c] / (double)count;\n"
    "        for (int i = 0; i < count; i++)\n"
    "            var += (x[i * T_C + c] - mean) * (x[i * T_C + c] - mean) / count;\n"
    "        for (int i = 0; i < count; i++)\n"
    "            ref[i * T_C + c] = p[probe_gamma + c] * (x[i * T_C + c] - mean) / sqrt(var + T_EPS) +\n"
    "                               p[probe_beta + c];\n"
    "        /* Keras's moving statistics; an image's variance unbiased, as the fused kernel. */\n"
    "        double unbiased = T_RANK == 3 ? var * count / (count - 1) : var;\n"
    "        ref[NX + c] = p[probe_moving_mean + c] * T_MOM + mean * (1 - T_MOM);\n"
    "        ref[NX + T_C + c] = p[probe_moving_variance + c] * T_MOM + unbiased * (1 - T_MOM);\n"
    "    }\n"
    "#endif\n"
    "}\n"
    "\n"
    "/* sum(output * r) for params and x, from params restored to saved first (a\n"
    " * training forward moves BatchNormalization's statistics). */\n"
    "static double loss(float *params, const float *saved, float *work, const float *x,\n"
    "                   const float *r)\n"
    "{\n"
    "    memcpy(params, saved, m_model.n_params * sizeof *params);\n"
    "    nn_pass pass = {.training = 1, .seed = 1};\n"
    "    const float *out = m_model.forward(&pass, params, work, x, N);\n"
    "    double sum = 0;\n"
    "    for (int i = 0; i < N * m_model.output_size; i++)\n"
    "        sum += (double)out[i] * r[i];\n"
    "    return sum;\n"
    "}\n"
    "\n"
    "/* Inline values as given, a frozen zero-initialised tensor (the bias of a\n"
    " * hand-made filter) zero, anything else random. */\n"
    "static void init_params(float *params)\n"
    "{\n"
    "    for (int t = 0; t < m_model.n_tensors; t++) {\n"
    "        const nn_tensor *ts = &m_model.tensors[t];\n"
    "        int positive = strstr(ts->name, \"gamma\") || strstr(ts->name, \"variance\");\n"
    "        for (size_t j = 0; j < ts->size; j++)\n"
    "            params[ts->offset + j] =\n"
    "                ts->values ? ts->values[j]\n"
    "                : ts->init == NN_INIT_ZEROS && !ts->trainable ? 0.0f\n"
    "                : positive ? (float)uniform(0.5, 1.5) : (float)uniform(-1, 1);\n"
    "    }\n"
    "}\n"
    "\n"
    "/* Max pooling: distinct values 0.05 apart, so that a step of 0.01 never changes\n"
    " * a window's winner; all negative, so that a padded zero would win if counted. */\n"
    "static void init_input(float *x, int argc, char **argv)\n"
    "{\n"
    "    for (int i = 0; i < NX; i++)\n"
    "        x[i] = argc > 1 ? strtof(argv[1 + i % (argc - 1)], NULL)\n"
    "             : T_KIND == 2 ? -1.0f - 0.05f * (float)i\n"
    "                           : (float)uniform(-1, 1);\n"
    "    for (int i = NX - 1; T_KIND == 2 && argc == 1 && i > 0; i--) {\n"
    "        int j = (int)uniform(0, i + 1);\n"
    "        float t = x[i];\n"
    "        x[i] = x[j], x[j] = t;\n"
    "    }\n"
    "}\n"
    "\n"
    "#ifdef T_PRINT\n"
    "static void print_values(const char *tag, const float *v, int count)\n"
    "{\n"
    "    printf(\"%s:\", tag);\n"
    "    for (int i = 0; i < count; i++)\n"
    "        printf(\" %.9g\", v[i]);\n"
    "    printf(\"\\n\");\n"
    "}\n"
    "#endif\n"
    "\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    float *params = calloc(m_model.n_params, sizeof(float));\n"
    "    float *saved = calloc(m_model.n_params, sizeof(float));\n"
    "    float *grads = calloc(m_model.n_params, sizeof(float));\n"
    "    float *work = calloc(m_model.scratch_floats + (size_t)N * m_model.work_floats, sizeof(float));\n"
    "    float *r = calloc((size_t)N * m_model.output_size, sizeof(float));\n"
    "    float x[NX];\n"
    "    double *ref = calloc((size_t)N * probe_OUT + 2 * T_C, sizeof(double));\n"
    "    init_params(params);\n"
    "    init_input(x, argc, argv);\n"
    "    for (int i = 0; i < N * m_model.output_size; i++)\n"
    "        r[i] = (float)uniform(-1, 1);\n"
    "    memcpy(saved, params, m_model.n_params * sizeof *params);\n"
    "    const float *probe = work + m_model.scratch_floats + (size_t)N * probe_out;\n"
    "#ifdef T_PRINT\n"
    "    nn_pass infer = {0}, train = {.training = 1};\n"
    "    m_model.forward(&infer, params, work, x, N);\n"
    "    print_values(\"out\", probe, N * probe_OUT);\n"
    "#if T_KIND == 5\n"
    "    m_model.forward(&train, params, work, x, N);\n"
    "    print_values(\"train\", probe, N * probe_OUT);\n"
    "    print_values(\"moving\", params + probe_moving_mean, 2 * T_C);\n"
    "#elif T_KIND == 2\n"
    "    float dy[N * probe_OUT], dx[N * probe_IN];\n"
    "    for (int i = 0; i < N * probe_OUT; i++)\n"
    "        dy[i] = (float)(i + 1);\n"
    "    probe_backward(N, x, probe, dy, dx);\n"
    "    print_values(\"dx\", dx, N * probe_IN);\n"
    "#endif\n"
    "    (void)train, (void)loss, (void)reference, (void)expect, (void)grads, (void)ref;\n"
    "#else\n"
    "    /* The output, and the moving statistics a training step leaves. */\n"
    "    nn_pass pass = {.training = 1, .seed = 1};\n"
    "    m_model.forward(&pass, params, work, x, N);\n"
    "    reference(x, saved, ref);\n"
    "    for (int i = 0; i < N * probe_OUT; i++)\n"
    "        expect(\"output\", i, probe[i], ref[i], 1e-5);\n"
    "#if T_KIND == 5\n"
    "    for (int c = 0; c < 2 * T_C; c++)\n"
    "        expect(\"moving\", c, params[probe_moving_mean + c], ref[NX + c], 1e-5);\n"
    "#endif\n"
    "    m_model.backward(&pass, params, grads, work, x, r, N);\n"
    "    float dx[NX];\n"
    "    memcpy(dx, work + m_model.scratch_floats + (size_t)N * feed_dout, sizeof dx);\n"
    "\n"
    "    const float e = 1e-2f;\n"
    "    for (int t = 0; t < m_model.n_tensors; t++) {\n"
    "        const nn_tensor *ts = &m_model.tensors[t];\n"
    "        int checked = ts->trainable && strncmp(ts->name, \"feed.\", 5) != 0;\n"
    "        for (size_t j = 0; checked && j < ts->size; j++) {\n"
    "            float *p = saved + ts->offset + j, v = *p;\n"
    "            *p = v + e;\n"
    "            double up = loss(params, saved, work, x, r);\n"
    "            *p = v - e;\n"
    "            double down = loss(params, saved, work, x, r);\n"
    "            *p = v;\n"
    "            expect(ts->name, (long)j, grads[ts->offset + j], (up - down) / (2 * e), 1e-2);\n"
    "        }\n"
    "    }\n"
    "    for (int i = 0; i < NX; i++) {\n"
    "        float v = x[i];\n"
    "        x[i] = v + e;\n"
    "        double up = loss(params, saved, work, x, r);\n"
    "        x[i] = v - e;\n"
    "        double down = loss(params, saved, work, x, r);\n"
    "        x[i] = v;\n"
    "        expect(\"dx\", i, dx[i], (up - down) / (2 * e), 1e-2);\n"
    "    }\n"
    "    printf(\"%d failures\\n\", failures);\n"
    "#endif\n"
    "    free(params), free(saved), free(grads), free(work), free(r), free(ref);\n"
    "    return failures != 0;\n"
    "}\n";

/* The probe's kind (the driver's T_KIND) and geometry. */
enum { CONV = 1, MAXPOOL, AVGPOOL, GAP, BATCHNORM };
typedef struct {
    int kind, n, h, w, c;
    int f, kh, kw, sh, sw, same, bias;   /* Conv2D and pools */
    int rank;                            /* of the input: 3, or 1 for a vector */
    double eps, momentum;                /* BatchNormalization */
} Probe;

/* The first layer: a 1x1 convolution (a Dense for a vector) with the identity
 * kernel, trainable so that its backward runs and hands the probe a dx. */
static void identity_feed(char *buf, size_t len, const Probe *p)
{
    int at = snprintf(buf, len, p->rank == 1
                                    ? "  - Dense: {units: %d, use_bias: false, name: feed, "
                                      "weights: {kernel: ["
                                    : "  - Conv2D: {filters: %d, kernel_size: 1, use_bias: false, "
                                      "name: feed, weights: {kernel: [[[",
                      p->c);
    for (int i = 0; i < p->c; i++) {
        at += snprintf(buf + at, len - (size_t)at, "%s[", i ? ", " : "");
        for (int j = 0; j < p->c; j++)
            at += snprintf(buf + at, len - (size_t)at, "%s%d", j ? ", " : "", i == j);
        at += snprintf(buf + at, len - (size_t)at, "]");
    }
    snprintf(buf + at, len - (size_t)at, p->rank == 1 ? "]}}\n" : "]]]}}\n");
}

/* Compiles a model of the given input_shape and layers (YAML list items) and a
 * driver for p, runs the driver with args; its output and status in r. */
static void run_driver(const char *input_shape, const char *layers, const Probe *p, bool print,
                       const char *args, RunResult *r)
{
    char dir[64], path[128], yaml[8192];
    make_scratch(dir, sizeof dir);
    snprintf(yaml, sizeof yaml,
             "name: m\ninput_shape: %s\nlayers:\n%scompile:\n  optimizer: sgd\n"
             "  loss: mean_squared_error\n", input_shape, layers);
    snprintf(path, sizeof path, "%s/m.yaml", dir);
    write_text(path, yaml);
    run_cmd(r, "%s %s/m.yaml --no-main -o %s/m.c", nncc_path(), dir, dir);
    if (r->status != 0)
        fail_msg("nncc failed:\n%s\n%s", r->out, yaml);
    snprintf(path, sizeof path, "%s/drv.c", dir);
    write_text(path, driver_source);
    const char *san = getenv("SAN");
    bool sanitize = san && strcmp(san, "1") == 0;
    /* As the Makefile builds trainers, so that GCC's warnings at -O3 show. */
    run_cmd(r,
            "cc -std=c11 -D_DEFAULT_SOURCE -Wall -Wextra -Werror -fopenmp %s "
            "-Iruntime -I%s -DT_KIND=%d -DT_N=%d -DT_H=%d -DT_W=%d -DT_C=%d -DT_F=%d "
            "-DT_KH=%d -DT_KW=%d -DT_SH=%d -DT_SW=%d -DT_SAME=%d -DT_BIAS=%d -DT_RANK=%d "
            "-DT_EPS=%.17g -DT_MOM=%.17g %s -o %s/drv %s/drv.c %s/libnnrt.a " TRAINER_LIBS,
            sanitize ? "-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined"
                     : "-O3 -march=native -ffp-contract=fast",
            dir,
            p->kind, p->n, p->h, p->w, p->c, p->f ? p->f : 1, p->kh ? p->kh : 1,
            p->kw ? p->kw : 1, p->sh ? p->sh : 1, p->sw ? p->sw : 1, p->same, p->bias,
            p->rank ? p->rank : 3, p->eps ? p->eps : 1e-3, p->momentum ? p->momentum : 0.99,
            print ? "-DT_PRINT" : "", dir, dir, build_dir());
    if (r->status != 0)
        fail_msg("the driver did not build:\n%s", r->out);
    run_cmd(r, "%s/drv %s", dir, args ? args : "");
    rm_tree(dir);
}

/* Reference output and gradient checks for a probe between an identity feed
 * and a Dense layer. */
static void check_probe(const char *input_shape, const char *probe_yaml, Probe p)
{
    char layers[4096];
    identity_feed(layers, sizeof layers, &p);
    size_t at = strlen(layers);
    snprintf(layers + at, sizeof layers - at, "  - %s\n  - Flatten\n  - Dense: {units: 3}\n",
             probe_yaml);
    RunResult r;
    run_driver(input_shape, layers, &p, false, NULL, &r);
    if (r.status != 0 || strncmp(r.out, "0 failures", 10) != 0)
        fail_msg("%s on %s:\n%s", probe_yaml, input_shape, r.out);
}

/* The numbers the driver printed after "tag:". */
static int read_values(const char *out, const char *tag, double *v, int max)
{
    char key[32];
    snprintf(key, sizeof key, "%s:", tag);
    const char *p = strstr(out, key);
    if (!p)
        fail_msg("no '%s' in:\n%s", key, out);
    p += strlen(key);
    int count = 0;
    for (char *end; count < max; p = end) {
        v[count] = strtod(p, &end);
        if (end == p)
            break;
        count++;
    }
    return count;
}

static void expect_values(const char *out, const char *tag, const double *want, int count)
{
    double got[64];
    assert_int_equal(read_values(out, tag, got, 64), count);
    for (int i = 0; i < count; i++)
        if (!(fabs(got[i] - want[i]) <= 1e-5 * fmax(1.0, fabs(want[i]))))
            fail_msg("%s[%d]: got %.9g, want %.9g\n%s", tag, i, got[i], want[i], out);
}

/* ---- Conv2D ------------------------------------------------------------------- */

static void conv_strided_same_rectangular(void **state)
{
    (void)state;
    check_probe("[7, 6, 3]",
                "Conv2D: {filters: 4, kernel_size: [3, 2], strides: [2, 1], padding: same, "
                "name: probe}",
                (Probe){.kind = CONV, .n = 2, .h = 7, .w = 6, .c = 3, .f = 4, .kh = 3, .kw = 2,
                        .sh = 2, .sw = 1, .same = 1, .bias = 1});
}

/* Height: 6 by 3 with stride 2 pads 1 in all, below. Width: 6 by 4 with stride
 * 1 pads 3, 1 on the left and 2 on the right. No bias. */
static void conv_same_odd_padding(void **state)
{
    (void)state;
    check_probe("[6, 6, 2]",
                "Conv2D: {filters: 5, kernel_size: [3, 4], strides: [2, 1], padding: same, "
                "use_bias: false, name: probe}",
                (Probe){.kind = CONV, .n = 2, .h = 6, .w = 6, .c = 2, .f = 5, .kh = 3, .kw = 4,
                        .sh = 2, .sw = 1, .same = 1, .bias = 0});
}

static void conv_valid_strided(void **state)
{
    (void)state;
    check_probe("[5, 7, 2]",
                "Conv2D: {filters: 3, kernel_size: [2, 3], strides: [1, 2], name: probe}",
                (Probe){.kind = CONV, .n = 3, .h = 5, .w = 7, .c = 2, .f = 3, .kh = 2, .kw = 3,
                        .sh = 1, .sw = 2, .bias = 1});
}

/* The course's hand-made filter on two 5x5 images. out[i][j] is the 1-2-1
 * weighted sum of image row i+2, columns j..j+2, minus that of row i.
 * Image 1: a 3x3 square of 9s in the bottom right corner; the weighted sums of
 * its rows 2-4 are 9, 27, 36 and of rows 0-1 zero, so output rows 0 and 1 are
 * 9 27 36 and row 2 is 0 0 0. Image 2: every pixel holds its row number, so
 * each output is (1 + 2 + 1) * 2 = 8. */
static void conv_hand_made_filter(void **state)
{
    (void)state;
    const char *layers =
        "  - Conv2D: {filters: 1, kernel_size: 3, trainable: false, name: probe,\n"
        "             weights: {kernel: [[-1, -2, -1], [0, 0, 0], [1, 2, 1]]}}\n"
        "  - Flatten\n"
        "  - Dense: {units: 1}\n";
    const char *images = "0 0 0 0 0  0 0 0 0 0  0 0 9 9 9  0 0 9 9 9  0 0 9 9 9 "
                         "0 0 0 0 0  1 1 1 1 1  2 2 2 2 2  3 3 3 3 3  4 4 4 4 4";
    const double want[18] = {9, 27, 36, 9, 27, 36, 0, 0, 0, 8, 8, 8, 8, 8, 8, 8, 8, 8};
    RunResult r;
    run_driver("[5, 5, 1]", layers,
               &(Probe){.kind = CONV, .n = 2, .h = 5, .w = 5, .c = 1, .f = 1, .kh = 3, .kw = 3,
                        .bias = 1},
               true, images, &r);
    assert_int_equal(r.status, 0);
    expect_values(r.out, "out", want, 18);
}

/* ---- pooling ------------------------------------------------------------------ */

/* Height: 5 by 2, stride 2: 1 row of padding, below. Width: 7 by 3, stride 2:
 * 2 columns, 1 on each side. All inputs are negative, so a padded zero that
 * took part would win. */
static void maxpool_same_rectangular(void **state)
{
    (void)state;
    check_probe("[5, 7, 3]",
                "MaxPooling2D: {pool_size: [2, 3], strides: 2, padding: same, name: probe}",
                (Probe){.kind = MAXPOOL, .n = 2, .h = 5, .w = 7, .c = 3, .kh = 2, .kw = 3,
                        .sh = 2, .sw = 2, .same = 1});
}

static void maxpool_valid_overlapping(void **state)
{
    (void)state;
    check_probe("[5, 6, 2]", "MaxPooling2D: {pool_size: 3, strides: 1, name: probe}",
                (Probe){.kind = MAXPOOL, .n = 2, .h = 5, .w = 6, .c = 2, .kh = 3, .kw = 3,
                        .sh = 1, .sw = 1});
}

/* A 4x4 image in 2x2 windows, with ties:
 *   5 5 | 1 2      window 0: all 5: the first, (0, 0)
 *   5 5 | 3 3      window 1: 3 twice: the first, (1, 2)
 *   0 7 | 4 4      window 2: 7 three times: the first, (2, 1)
 *   7 7 | 4 4      window 3: all 4: the first, (2, 2)
 * dy = 1 2 3 4 goes to those cells only. */
static void maxpool_ties_go_to_the_first(void **state)
{
    (void)state;
    Probe p = {.kind = MAXPOOL, .n = 1, .h = 4, .w = 4, .c = 1, .kh = 2, .kw = 2, .sh = 2,
               .sw = 2};
    char layers[1024];
    identity_feed(layers, sizeof layers, &p);
    strcat(layers, "  - MaxPooling2D: {name: probe}\n  - Flatten\n  - Dense: {units: 1}\n");
    RunResult r;
    run_driver("[4, 4, 1]", layers, &p, true, "5 5 1 2  5 5 3 3  0 7 4 4  7 7 4 4", &r);
    assert_int_equal(r.status, 0);
    expect_values(r.out, "out", (const double[]){5, 3, 7, 4}, 4);
    expect_values(r.out, "dx", (const double[]){1, 0, 0, 0, 0, 0, 2, 0, 0, 3, 4, 0, 0, 0, 0, 0},
                  16);
}

/* Height: 5 by 3, stride 2: 2 rows of padding, 1 on each side. Width: 7 by 2,
 * stride 3: 1 column, on the right. Windows at the edges are partial and
 * divide by the cells they hold. */
static void avgpool_same_partial_windows(void **state)
{
    (void)state;
    check_probe("[5, 7, 3]",
                "AveragePooling2D: {pool_size: [3, 2], strides: [2, 3], padding: same, "
                "name: probe}",
                (Probe){.kind = AVGPOOL, .n = 2, .h = 5, .w = 7, .c = 3, .kh = 3, .kw = 2,
                        .sh = 2, .sw = 3, .same = 1});
}

static void avgpool_valid_default(void **state)
{
    (void)state;
    check_probe("[5, 6, 2]", "AveragePooling2D: {name: probe}",
                (Probe){.kind = AVGPOOL, .n = 2, .h = 5, .w = 6, .c = 2, .kh = 2, .kw = 2,
                        .sh = 2, .sw = 2});
}

static void global_average_pooling(void **state)
{
    (void)state;
    check_probe("[3, 4, 5]", "GlobalAveragePooling2D: {name: probe}",
                (Probe){.kind = GAP, .n = 2, .h = 3, .w = 4, .c = 5});
}

/* ---- BatchNormalization -------------------------------------------------------- */

/* Training: batch statistics over 3 samples x 6 positions per channel, the
 * moving statistics after one step, and gradients through the batch mean and
 * variance. */
static void batchnorm_image_training(void **state)
{
    (void)state;
    check_probe("[2, 3, 4]", "BatchNormalization: {momentum: 0.5, epsilon: 0.01, name: probe}",
                (Probe){.kind = BATCHNORM, .n = 3, .h = 2, .w = 3, .c = 4, .eps = 0.01,
                        .momentum = 0.5});
}

static void batchnorm_vector_training(void **state)
{
    (void)state;
    check_probe("[5]", "BatchNormalization: {momentum: 0.9, name: probe}",
                (Probe){.kind = BATCHNORM, .n = 4, .h = 1, .w = 1, .c = 5, .rank = 1,
                        .momentum = 0.9});
}

/* gamma (2, 0.5), beta (1, -1), moving mean (0.5, -2), moving variance
 * (3.999, 0.249): with epsilon 0.001 the deviations are 2 and 0.5, so
 *   x = 1.5, -1.5 -> 2 * 1 / 2 + 1 = 2,   0.5 * 0.5 / 0.5 - 1 = -0.5
 *   x = -3.5, 0   -> 2 * -4 / 2 + 1 = -3, 0.5 * 2 / 0.5 - 1 = 1 */
#define BN_WEIGHTS "weights: {gamma: [2, 0.5], beta: [1, -1], moving_mean: [0.5, -2], " \
                   "moving_variance: [3.999, 0.249]}"
static const double bn_want[4] = {2, -0.5, -3, 1};

static void batchnorm_inference(void **state)
{
    (void)state;
    Probe p = {.kind = BATCHNORM, .n = 2, .h = 1, .w = 1, .c = 2, .rank = 1};
    char layers[1024];
    identity_feed(layers, sizeof layers, &p);
    strcat(layers, "  - BatchNormalization: {name: probe, " BN_WEIGHTS "}\n"
                   "  - Dense: {units: 1}\n");
    RunResult r;
    run_driver("[2]", layers, &p, true, "1.5 -1.5 -3.5 0", &r);
    assert_int_equal(r.status, 0);
    expect_values(r.out, "out", bn_want, 4);
    /* A training step normalises with the batch's own statistics instead: the
     * batch means are -1 and -0.75, the biased variances 6.25 and 0.5625, so
     * each channel's two values normalise to +-1 / sqrt(1 + eps / var). */
    double sd0 = sqrt(1 + 0.001 / 6.25), sd1 = sqrt(1 + 0.001 / 0.5625);
    expect_values(r.out, "train",
                  (const double[]){2 / sd0 + 1, -0.5 / sd1 - 1, -2 / sd0 + 1, 0.5 / sd1 - 1}, 4);
    /* Moving statistics: 0.99 old + 0.01 batch (mean -1, 0.75; biased variance
     * 6.25, 0.5625 for a flat input). */
    expect_values(r.out, "moving",
                  (const double[]){0.99 * 0.5 + 0.01 * -1, 0.99 * -2 + 0.01 * -0.75,
                                   0.99 * 3.999 + 0.01 * 6.25, 0.99 * 0.249 + 0.01 * 0.5625},
                  4);
}

/* A frozen BatchNormalization runs in inference mode even in training, as in
 * Keras 2, and leaves its moving statistics alone. As an image: one sample of
 * 1x2 positions, channels interleaved. */
static void batchnorm_frozen_image(void **state)
{
    (void)state;
    Probe p = {.kind = BATCHNORM, .n = 1, .h = 1, .w = 2, .c = 2};
    char layers[1024];
    identity_feed(layers, sizeof layers, &p);
    strcat(layers, "  - BatchNormalization: {name: probe, trainable: false, " BN_WEIGHTS "}\n"
                   "  - Flatten\n  - Dense: {units: 1}\n");
    RunResult r;
    run_driver("[1, 2, 2]", layers, &p, true, "1.5 -1.5 -3.5 0", &r);
    assert_int_equal(r.status, 0);
    expect_values(r.out, "out", bn_want, 4);
    expect_values(r.out, "train", bn_want, 4);
    expect_values(r.out, "moving", (const double[]){0.5, -2, 3.999, 0.249}, 4);
}

/* ---- Winograd ------------------------------------------------------------------------------ */

/* Two 3x3 stride-1 convolutions, same padding on odd sizes then valid, that
 * NNCC_WINOGRAD=2x2 and =4x4 run by Winograd's algorithm (compiler/layer_conv.c)
 * and =never directly; tanh between them, smooth for gradcheck. Four samples of
 * 7x5x3 values in [-1, 1] and two targets each. */
static void write_winograd_model(const char *name)
{
    char yaml[16384];
    int len = snprintf(yaml, sizeof yaml,
                       "name: %s\ninput_shape: [7, 5, 3]\nlayers:\n"
                       "  - Conv2D: {filters: 8, kernel_size: 3, padding: same, activation: tanh}\n"
                       "  - Conv2D: {filters: 4, kernel_size: 3, activation: tanh}\n"
                       "  - Flatten\n  - Dense: {units: 2}\n"
                       "compile: {optimizer: {name: adam, learning_rate: 0.01}, loss: mse}\n"
                       "fit: {epochs: 3, batch_size: 4}\n"
                       "data:\n  train:\n    format: inline\n    x:\n", name);
    for (int s = 0; s < 4; s++) {
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "      - [");
        for (int i = 0; i < 7 * 5 * 3; i++)
            len += snprintf(yaml + len, sizeof yaml - (size_t)len, "%s%.2f", i ? ", " : "",
                            ((i * (s + 3) + s) % 9) / 4.0 - 1.0);
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "]\n");
    }
    snprintf(yaml + len, sizeof yaml - (size_t)len,
             "    y: [[0.5, -0.5], [-0.3, 0.2], [0.1, 0.6], [-0.6, -0.1]]\n");
    char path[600];
    snprintf(path, sizeof path, "%s/%s.yaml", scratch, name);
    write_text(path, yaml);
}

/* How many layers of the generated C in the scratch folder run Winograd's
 * steps with tiles of `tile` (2x2, 4x4). */
static int winograd_layers(const char *name, const char *tile)
{
    char c_file[64], heading[64];
    snprintf(c_file, sizeof c_file, "%s.c", name);
    snprintf(heading, sizeof heading, "), Winograd F(%s, 3x3), ", tile);
    FILE *f = fopen(in_scratch(c_file), "r");
    assert_non_null(f);
    char line[512];
    int count = 0;
    while (fgets(line, sizeof line, f))
        count += strstr(line, heading) != NULL;
    fclose(f);
    return count;
}

/* Both layers by Winograd's algorithm with tiles of `tile`: its gradients
 * agree with finite differences, and no sum is split between threads (the
 * weights come out the same bits on 1, 2 and 3 threads). */
static void check_winograd(const char *tile)
{
    RunResult r;
    setenv("NNCC_WINOGRAD", tile, 1);
    char name[16], trainer[600];
    snprintf(name, sizeof name, "wino%c", tile[0]);
    write_winograd_model(name);
    char yaml[64];
    snprintf(yaml, sizeof yaml, "%s.yaml", name);
    snprintf(trainer, sizeof trainer, "%s", build_file(in_scratch(yaml), name));
    assert_int_equal(winograd_layers(name, tile), 2);
    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed\n"))
        fail_msg("%s gradcheck:\n%s", tile, r.out);
    run_cmd(&r, "%s train --threads 1 --quiet --save %s && %s train --threads 2 --quiet --save %s"
                " && %s train --threads 3 --quiet --save %s && cmp %s %s && cmp %s %s",
            trainer, in_scratch("one.npz"), trainer, in_scratch("two.npz"), trainer,
            in_scratch("three.npz"), in_scratch("one.npz"), in_scratch("two.npz"),
            in_scratch("one.npz"), in_scratch("three.npz"));
    if (r.status != 0)
        fail_msg("%s on 1, 2 and 3 threads:\n%s", tile, r.out);
}

static void conv_winograd_forced(void **state)
{
    (void)state;
    RunResult r;
    setenv("NNCC_WINOGRAD", "never", 1);
    write_winograd_model("direct");
    build_file(in_scratch("direct.yaml"), "direct");
    assert_int_equal(winograd_layers("direct", "2x2") + winograd_layers("direct", "4x4"), 0);
    check_winograd("2x2");
    check_winograd("4x4");

    setenv("NNCC_WINOGRAD", "always", 1);
    run_cmd(&r, "%s %s --check", nncc_path(), in_scratch("wino2.yaml"));
    assert_int_not_equal(r.status, 0);
    assert_output_contains(&r, "NNCC_WINOGRAD is 'always'; supported: auto, never, 2x2, 4x4");
    unsetenv("NNCC_WINOGRAD");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(conv_strided_same_rectangular),
        cmocka_unit_test(conv_same_odd_padding),
        cmocka_unit_test(conv_valid_strided),
        cmocka_unit_test(conv_hand_made_filter),
        cmocka_unit_test(maxpool_same_rectangular),
        cmocka_unit_test(maxpool_valid_overlapping),
        cmocka_unit_test(maxpool_ties_go_to_the_first),
        cmocka_unit_test(avgpool_same_partial_windows),
        cmocka_unit_test(avgpool_valid_default),
        cmocka_unit_test(global_average_pooling),
        cmocka_unit_test(batchnorm_image_training),
        cmocka_unit_test(batchnorm_vector_training),
        cmocka_unit_test(batchnorm_inference),
        cmocka_unit_test(batchnorm_frozen_image),
        cmocka_unit_test_setup_teardown(conv_winograd_forced, scratch_setup, scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
