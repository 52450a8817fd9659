/* test_image_output.c - models whose output is an image: an autoencoder's
 * training, data: noise, predict and activations, through trainers built with
 * `make trainer`.
 *
 *   train      Conv2D(1, 3x3, same, sigmoid) as an autoencoder (target: input),
 *              mse over every output element: one SGD step's loss and weights
 *              against PyTorch (tests/ref/image_output_ref.py printed them)
 *   bce        the same step with binary_crossentropy, which Keras (and nncc)
 *              computes from the sigmoid's logits, over every element
 *   predict    --npy writes [N, 4, 4, 1], the trained model's outputs per
 *              PyTorch; --out DIR writes input | output pictures; activations
 *              writes output.png
 *   noise      an identity model's evaluate loss is the mean square of the
 *              noise: stddev^2, and stddev^2 / 2 clipped to [0, 1] over zeros,
 *              within five standard errors; the same on every run
 */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* tests/ref/image_output_ref.py's output. */
static const double ref_loss = 0.0867156676;
static const double ref_kernel[9] = {0.0962559108, -0.212209994, 0.2925922, -0.001681119,
                                     0.511695349, -0.0990849642, 0.188846587, 0.087263637,
                                     -0.300660299};
static const double ref_bias = 0.0306264961;
static const double ref_y[32] = {
    0.445210913, 0.574835182, 0.570255165, 0.594363828, 0.55788575, 0.620242327, 0.591710693,
    0.565890867, 0.55266015, 0.514545497, 0.625274928, 0.550817595, 0.551743436, 0.592583094,
    0.547571332, 0.651965793, 0.587871553, 0.609896902, 0.600666017, 0.619914673, 0.580934531,
    0.60627187, 0.54858867, 0.538809828, 0.496952559, 0.497140813, 0.540821607, 0.610336808,
    0.527846492, 0.561190018, 0.651638298, 0.506336551};

static const double bce_loss = 0.670582705;
static const double bce_kernel[9] = {0.0929483886, -0.224801781, 0.28517558, -0.00240231261,
                                     0.525248076, -0.0978878624, 0.177473929, 0.0745649041,
                                     -0.30054241};
static const double bce_bias = 0.01219374;

#define SAMPLES "[[0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.1, 0.3, 0.5, 0.7, 0.9, 0, 0.25, 0.5, 0.75, 1],\n" \
                "              [1, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0, 0.5, 0.3, 0.6, 0.9, 0.2]]"

#define AE_YAML(loss)                                                                             \
    "input_shape: [4, 4, 1]\n"                                                                 \
    "layers:\n"                                                                                \
    "  - Conv2D: {name: c, filters: 1, kernel_size: 3, padding: same, activation: sigmoid,\n"  \
    "             weights: {kernel: [[0.1, -0.2, 0.3], [0, 0.5, -0.1], [0.2, 0.1, -0.3]], bias: [0.05]}}\n" \
    "compile: {optimizer: {name: sgd, learning_rate: 0.5}, loss: " loss "}\n"                  \
    "data:\n"                                                                                  \
    "  train: {format: inline, x: " SAMPLES "}\n"                                              \
    "  target: input\n"                                                                        \
    "fit: {epochs: 1, batch_size: 2, shuffle: false}\n"

static const nn_array *array_named(const nn_array *a, int n, const char *name)
{
    const nn_array *x = nn_npz_find(a, n, name);
    if (!x)
        fail_msg("no array '%s'", name);
    return x;
}

/* Trains the model one step into scratch/NAME.npz; checks the loss, kernel and bias. */
static const char *one_step(const char *name, const char *yaml, double loss_want,
                            const double *kernel_want, double bias_want)
{
    const char *t = build_model(name, yaml);
    char w[256], h[256];
    snprintf(w, sizeof w, "%s/%s.npz", scratch, name);
    snprintf(h, sizeof h, "%s/%s.csv", scratch, name);
    RunResult r;
    run_cmd(&r, "%s train --quiet --save %s --history %s", t, w, h);
    assert_int_equal(r.status, 0);
    double loss = history_loss(h, 1);
    if (!(fabs(loss - loss_want) < 1e-5 * loss_want))
        fail_msg("%s: loss %.9g, PyTorch's %.9g", name, loss, loss_want);
    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(w, &a, &n), 0);
    for (int k = 0; k < 9; k++)
        assert_true(fabs(array_named(a, n, "c.kernel")->f[k] - kernel_want[k]) < 1e-6);
    assert_true(fabs(array_named(a, n, "c.bias")->f[0] - bias_want) < 1e-6);
    nn_npz_free(a, n);
    return t;
}

static void test_bce(void **state)
{
    (void)state;
    one_step("ae_bce", AE_YAML("binary_crossentropy"), bce_loss, bce_kernel, bce_bias);
}

static void test_train_and_predict(void **state)
{
    (void)state;
    const char *t = one_step("ae", AE_YAML("mse"), ref_loss, ref_kernel, ref_bias);
    const char *w = in_scratch("ae.npz"), *x = in_scratch("x.npy"), *y = in_scratch("y.npy"),
               *pics = in_scratch("pics"), *acts = in_scratch("acts");
    RunResult r;

    /* predict --npy: [N, 4, 4, 1] */
    static const float xs[32] = {0, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f, 0.1f, 0.3f, 0.5f, 0.7f, 0.9f,
                                 0, 0.25f, 0.5f, 0.75f, 1, 1, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f,
                                 0.4f, 0.3f, 0.2f, 0.1f, 0, 0.5f, 0.3f, 0.6f, 0.9f, 0.2f};
    nn_array in = {.name = "x", .dtype = NN_F32, .rank = 4, .shape = {2, 4, 4, 1}, .size = 32,
                   .f = (float *)xs};
    assert_int_equal(nn_npy_write(x, &in), 0);
    run_cmd(&r, "%s predict --weights %s --npy %s --out %s", t, w, x, y);
    assert_int_equal(r.status, 0);
    nn_array out;
    assert_int_equal(nn_npy_read(y, &out), 0);
    assert_int_equal(out.rank, 4);
    assert_int_equal(out.shape[0], 2);
    assert_int_equal(out.shape[1], 4);
    assert_int_equal(out.shape[2], 4);
    assert_int_equal(out.shape[3], 1);
    for (int k = 0; k < 32; k++)
        assert_true(fabs(out.f[k] - ref_y[k]) < 1e-5);
    nn_array_free(&out);

    /* pictures: input | grey line | output, 4 x 9 */
    run_cmd(&r, "%s predict --weights %s --npy %s --out %s", t, w, x, pics);
    assert_int_equal(r.status, 0);
    int ph, pw;
    char path[256];
    snprintf(path, sizeof path, "%s/1.png", pics);
    assert_int_equal(nn_image_file_size(path, &ph, &pw), 0);
    assert_int_equal(ph, 4);
    assert_int_equal(pw, 9);
    run_cmd(&r, "%s predict --weights %s --npy %s", t, w, x);   /* no --out: says what to give */
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "give --out DIR");

    snprintf(path, sizeof path, "%s/1.png", pics);
    run_cmd(&r, "%s activations --weights %s --input %s --out %s", t, w, path, acts);
    assert_int_equal(r.status, 0);
    snprintf(path, sizeof path, "%s/output.png", acts);
    assert_int_equal(nn_image_file_size(path, &ph, &pw), 0);
    assert_int_equal(pw, 9);
}

/* An identity model over 64 zeros per sample: its mse is the noise's mean square. */
static const char *noise_yaml(const char *noise)
{
    static char yaml[16384];
    int len = snprintf(yaml, sizeof yaml,
                       "input_shape: [8, 8, 1]\n"
                       "layers:\n"
                       "  - Conv2D: {filters: 1, kernel_size: 1, weights: {kernel: [[1]], bias: [0]}}\n"
                       "compile: {optimizer: sgd, loss: mse}\n"
                       "data:\n"
                       "  target: input\n"
                       "  noise: %s\n"
                       "  test: {format: inline, x: [", noise);
    for (int s = 0; s < 50; s++) {
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "%s[", s ? ", " : "");
        for (int k = 0; k < 64; k++)
            len += snprintf(yaml + len, sizeof yaml - (size_t)len, "%s0", k ? "," : "");
        len += snprintf(yaml + len, sizeof yaml - (size_t)len, "]");
    }
    snprintf(yaml + len, sizeof yaml - (size_t)len, "]}\n");
    return yaml;
}

static double evaluate_loss(const char *trainer)
{
    RunResult r;
    const char *w = in_scratch("id.npz");
    run_cmd(&r, "%s init --save %s && %s evaluate --quiet --weights %s", trainer, w, trainer, w);
    assert_int_equal(r.status, 0);
    const char *at = strstr(r.out, "loss: ");
    assert_non_null(at);
    return atof(at + 6);
}

static void test_noise(void **state)
{
    (void)state;
    /* 3200 squares of N(0, s^2): mean s^2, standard error s^2 sqrt(2 / 3200) */
    const char *t = build_model("noisy", noise_yaml("{stddev: 0.1}"));
    double loss = evaluate_loss(t);
    assert_true(fabs(loss - 0.01) < 5 * 0.01 * sqrt(2.0 / 3200));
    assert_true(evaluate_loss(t) == loss);   /* the same noise on every run */
    /* clipped to [0, 1]: half the draws become 0, E = s^2 / 2, its spread below s^2 sqrt(2/3200) */
    t = build_model("clipped", noise_yaml("{stddev: 0.2, clip: [0, 1]}"));
    loss = evaluate_loss(t);
    assert_true(fabs(loss - 0.02) < 5 * 0.04 * sqrt(2.0 / 3200));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_train_and_predict),
        cmocka_unit_test(test_bce),
        cmocka_unit_test(test_noise),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
