/* test_init.c - Keras's initialisers and regularisers, through trainers built
 * with `make trainer`.
 *
 *   statistics   `init` of a model with one of each initialiser on large
 *                tensors: the sample mean and variance against Keras's formula
 *                (keras/initializers/initializers_v2.py), within five standard
 *                errors of the sample size; uniform and truncated bounds; the
 *                fans of Dense and Conv2D kernels, worked out here by hand
 *   seeds        the same seed gives the same bits; an initialiser's own seed
 *                gives the same values whatever the trainer's seed
 *   regularizer  one SGD step with kernel and bias regularisers: the loss (it
 *                includes the penalty, as Keras's does) and the weights after,
 *                against PyTorch (tests/ref/regularizer_ref.py printed them)
 */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* Dense kernels [in, out]: fan_in = in, fan_out = out. Conv2D kernels
 * [kh, kw, in, filters]: fan_in = kh*kw*in, fan_out = kh*kw*filters. */
static const char stats_yaml[] =
    "input_shape: [500]\n"
    "layers:\n"
    "  - Dense: {name: he_n, units: 400, kernel_initializer: he_normal,\n"
    "            bias_initializer: {name: constant, value: 0.3}}\n"
    "  - Dense: {name: he_u, units: 300, kernel_initializer: he_uniform, bias_initializer: ones}\n"
    "  - Dense: {name: glorot_n, units: 500, kernel_initializer: GlorotNormal}\n"
    "  - Dense: {name: lecun_n, units: 200, kernel_initializer: {class_name: LecunNormal, config: {seed: null}}}\n"
    "  - Dense: {name: lecun_u, units: 300, kernel_initializer: lecun_uniform}\n"
    "  - Dense: {name: normal, units: 400, kernel_initializer: {name: random_normal, mean: 0.5, stddev: 0.1}}\n"
    "  - Dense: {name: uniform, units: 500, kernel_initializer: random_uniform}\n"
    "  - Dense: {name: trunc, units: 400, kernel_initializer: truncated_normal}\n"
    "  - Reshape: {target_shape: [20, 20, 1]}\n"
    "  - Conv2D: {name: conv_u, filters: 64, kernel_size: 5, padding: same,\n"
    "             kernel_initializer: he_uniform}\n"
    "  - Conv2D: {name: conv_vs, filters: 32, kernel_size: [3, 5], padding: same,\n"
    "             kernel_initializer: {class_name: VarianceScaling,\n"
    "                                  config: {scale: 3.0, mode: fan_out, distribution: untruncated_normal}}}\n"
    "  - Flatten\n"
    "  - Dense: {name: out, units: 1}\n"
    "compile: {optimizer: sgd, loss: mse}\n";

static const nn_array *tensor(const nn_array *a, int n, const char *name)
{
    const nn_array *x = nn_npz_find(a, n, name);
    if (!x)
        fail_msg("no array '%s'", name);
    return x;
}

typedef struct {
    double mean, var, most;   /* sample mean and variance, largest |x - mean| */
} Stats;

static Stats stats_of(const nn_array *a, double centre)
{
    Stats s = {0, 0, 0};
    for (size_t k = 0; k < a->size; k++)
        s.mean += a->f[k];
    s.mean /= (double)a->size;
    for (size_t k = 0; k < a->size; k++) {
        double d = a->f[k] - s.mean;
        s.var += d * d;
        s.most = fmax(s.most, fabs(a->f[k] - centre));
    }
    s.var /= (double)(a->size - 1);
    return s;
}

/* Mean and variance within five standard errors of n draws; kurtosis: the
 * distribution's fourth moment over its variance squared (3 for a normal,
 * 1.8 for a uniform), which sets the spread of the sample variance. */
static void assert_moments(const nn_array *a, double mean, double var, double kurtosis)
{
    Stats s = stats_of(a, mean);
    double n = (double)a->size, mean_tol = 5 * sqrt(var / n),
           var_tol = 5 * var * sqrt((kurtosis - 1) / n);
    if (fabs(s.mean - mean) > mean_tol)
        fail_msg("%s: mean %g, Keras's %g (tolerance %g)", a->name, s.mean, mean, mean_tol);
    if (fabs(s.var - var) > var_tol)
        fail_msg("%s: variance %g, Keras's %g (tolerance %g)", a->name, s.var, var, var_tol);
}

/* Uniform in [-limit, limit]: inside, and reaching close to both ends. */
static void assert_uniform(const nn_array *a, double limit)
{
    assert_moments(a, 0, limit * limit / 3, 1.8);
    Stats s = stats_of(a, 0);
    if (!(s.most <= limit && s.most > limit * (1 - 20.0 / (double)a->size)))
        fail_msg("%s: largest |x| %g, limit %g", a->name, s.most, limit);
}

/* Keras's truncated normal of stddev sigma: |x - mean| <= 2 sigma, its
 * variance sigma^2 times that of a unit normal cut at +-2 (0.773741...). */
static void assert_truncated(const nn_array *a, double mean, double sigma)
{
    double cut = 1 - 4 * exp(-2.0) / sqrt(2 * M_PI) / erf(2 / sqrt(2.0));
    assert_moments(a, mean, sigma * sigma * cut, 2.6);
    Stats s = stats_of(a, mean);
    if (!(s.most <= 2 * sigma * (1 + 1e-6) && s.most > 1.99 * sigma))
        fail_msg("%s: largest |x - mean| %g, truncated at %g", a->name, s.most, 2 * sigma);
}

static void assert_all(const nn_array *a, float v)
{
    for (size_t k = 0; k < a->size; k++)
        if (a->f[k] != v)
            fail_msg("%s[%zu] = %g, not %g", a->name, k, a->f[k], v);
}

static void test_statistics(void **state)
{
    (void)state;
    const char *t = build_model("inits", stats_yaml);
    const char *w = in_scratch("inits.npz");
    RunResult r;
    run_cmd(&r, "%s init --seed 3 --save %s", t, w);
    assert_int_equal(r.status, 0);
    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(w, &a, &n), 0);
    const double corr = 0.87962566103423978;   /* Keras's stddev of a unit normal cut at +-2 */
    /* he_normal [500, 400]: truncated, stddev sqrt(2 / fan_in) / corr */
    assert_truncated(tensor(a, n, "he_n.kernel"), 0, sqrt(2.0 / 500) / corr);
    assert_all(tensor(a, n, "he_n.bias"), 0.3f);
    assert_uniform(tensor(a, n, "he_u.kernel"), sqrt(6.0 / 400));   /* [400, 300] */
    assert_all(tensor(a, n, "he_u.bias"), 1.0f);
    /* glorot_normal [300, 500]: fan_avg 400 */
    assert_truncated(tensor(a, n, "glorot_n.kernel"), 0, sqrt(1.0 / 400) / corr);
    assert_all(tensor(a, n, "glorot_n.bias"), 0.0f);
    assert_truncated(tensor(a, n, "lecun_n.kernel"), 0, sqrt(1.0 / 500) / corr);  /* [500, 200] */
    assert_uniform(tensor(a, n, "lecun_u.kernel"), sqrt(3.0 / 200));            /* [200, 300] */
    assert_moments(tensor(a, n, "normal.kernel"), 0.5, 0.01, 3);
    assert_uniform(tensor(a, n, "uniform.kernel"), 0.05);
    assert_truncated(tensor(a, n, "trunc.kernel"), 0, 0.05);
    /* Conv2D [5, 5, 1, 64]: fan_in 25 */
    assert_uniform(tensor(a, n, "conv_u.kernel"), sqrt(6.0 / 25));
    /* Conv2D [3, 5, 64, 32], fan_out 3 * 5 * 32 = 480: untruncated, variance 3 / 480 */
    assert_moments(tensor(a, n, "conv_vs.kernel"), 0, 3.0 / 480, 3);
    nn_npz_free(a, n);
}

static const char seeds_yaml[] =
    "input_shape: [40]\n"
    "layers:\n"
    "  - Dense: {name: a, units: 40, kernel_initializer: {class_name: HeNormal, config: {seed: 7}}}\n"
    "  - Dense: {name: b, units: 40, kernel_initializer: {name: he_normal, seed: 7}}\n"
    "  - Dense: {name: c, units: 40, kernel_initializer: he_normal}\n"
    "compile: {optimizer: sgd, loss: mse}\n";

static void test_seeds(void **state)
{
    (void)state;
    const char *t = build_model("seeds", seeds_yaml);
    const char *w1 = in_scratch("seeds1.npz"), *w1b = in_scratch("seeds1b.npz"),
               *w2 = in_scratch("seeds2.npz");
    RunResult r;
    run_cmd(&r, "%s init --seed 1 --save %s && %s init --seed 1 --save %s && cmp %s %s && "
                "%s init --seed 2 --save %s", t, w1, t, w1b, w1, w1b, t, w2);
    assert_int_equal(r.status, 0);
    nn_array *a, *b;
    int na, nb;
    assert_int_equal(nn_npz_read(w1, &a, &na), 0);
    assert_int_equal(nn_npz_read(w2, &b, &nb), 0);
    size_t bytes = 40 * 40 * sizeof(float);
    /* The initialiser's seed decides, the trainer's does not; both seeded alike. */
    assert_memory_equal(tensor(a, na, "a.kernel")->f, tensor(b, nb, "a.kernel")->f, bytes);
    assert_memory_equal(tensor(a, na, "a.kernel")->f, tensor(a, na, "b.kernel")->f, bytes);
    assert_memory_not_equal(tensor(a, na, "c.kernel")->f, tensor(b, nb, "c.kernel")->f, bytes);
    assert_memory_not_equal(tensor(a, na, "a.kernel")->f, tensor(a, na, "c.kernel")->f, bytes);
    nn_npz_free(a, na);
    nn_npz_free(b, nb);
}

/* tests/ref/regularizer_ref.py's output. */
static const double ref_loss = 2.1785625, ref_loss_after = 1.53299915;
static const double ref_kernel[6] = {0.28675, -0.43975, -0.03875, 0.77525, -1.1110625, 0.495875};
static const double ref_bias[2] = {0.50275, -0.1295};

static const char reg_yaml[] =
    "input_shape: [3]\n"
    "layers:\n"
    "  - Dense: {name: d, units: 2, kernel_regularizer: {l1: 0.1, l2: 0.2}, bias_regularizer: l2,\n"
    "            weights: {kernel: [[0.3, -0.6], [0.0, 0.9], [-1.2, 0.4]], bias: [0.5, -0.25]}}\n"
    "compile: {optimizer: {name: sgd, learning_rate: 0.1}, loss: mse}\n"
    "data:\n"
    "  train: {format: inline, x: [[1, -2, 0.5], [0, 1, -1], [2, 0.5, 1.5], [-1, -1, 0.25]],\n"
    "          y: [[0.5, -1], [1, 0], [-0.5, 2], [0.25, 0.75]]}\n"
    "  test: {format: inline, x: [[1, -2, 0.5], [0, 1, -1], [2, 0.5, 1.5], [-1, -1, 0.25]],\n"
    "         y: [[0.5, -1], [1, 0], [-0.5, 2], [0.25, 0.75]]}\n"
    "fit: {epochs: 1, batch_size: 4, shuffle: false}\n";

static void test_regularizer(void **state)
{
    (void)state;
    const char *t = build_model("reg", reg_yaml);
    const char *w = in_scratch("reg.npz"), *h = in_scratch("reg.csv");
    RunResult r;
    run_cmd(&r, "%s train --quiet --save %s --history %s", t, w, h);
    assert_int_equal(r.status, 0);
    double loss = history_loss(h, 1);
    assert_true(fabs(loss - ref_loss) < 1e-5 * ref_loss);   /* the history keeps 6 digits */

    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(w, &a, &n), 0);
    for (int k = 0; k < 6; k++)
        assert_true(fabs(tensor(a, n, "d.kernel")->f[k] - ref_kernel[k]) < 1e-6);
    for (int k = 0; k < 2; k++)
        assert_true(fabs(tensor(a, n, "d.bias")->f[k] - ref_bias[k]) < 1e-6);
    nn_npz_free(a, n);

    /* evaluate's loss at the new weights includes the penalty too */
    run_cmd(&r, "%s evaluate --weights %s 2>&1 | tail -1", t, w);
    assert_int_equal(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "loss: %.4f", ref_loss_after);
    assert_output_contains(&r, want);
}

/* A Keras export's initializers and regularizers are read as the native ones. */
static void test_keras_export(void **state)
{
    (void)state;
    const char *yaml = in_scratch("keras.yaml"), *c = in_scratch("keras.c");
    write_text(yaml,
               "class_name: Sequential\n"
               "config:\n"
               "- class_name: Dense\n"
               "  config:\n"
               "    batch_input_shape: [null, 8]\n"
               "    units: 2\n"
               "    kernel_initializer: {class_name: HeNormal, config: {seed: 5}}\n"
               "    bias_initializer: {class_name: Constant, config: {value: 0.25}}\n"
               "    kernel_regularizer: {class_name: L1L2, config: {l1: 0.0, l2: 0.01}}\n"
               "    bias_regularizer: null\n"
               "    activity_regularizer: null\n");
    RunResult r;
    /* he_normal of fan_in 8: stddev sqrt(2 / 8) / 0.87962566103423978 = 0.5684236, seed 5 */
    run_cmd(&r, "%s %s -o %s && grep -c 'NN_INIT_TRUNCATED_NORMAL.*{0.0f, 0.568423[56]f, 1, 5u}, "
                "{0.0f, 0.01f}' %s && grep -c 'NN_INIT_CONSTANT, .*{0.25f, 0.0f, 0, 0u}, {0, 0}' %s",
            nncc_path(), yaml, c, c, c);
    if (r.status != 0)
        fail_msg("%s", r.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statistics),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_regularizer),
        cmocka_unit_test(test_keras_export),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
