/* test_loss.c - every loss against values worked out by hand from Keras's
 * formulas, every gradient against central finite differences of the loss,
 * label smoothing, from_logits, class weights, extreme logits and the
 * probabilities predict shows. (tests/ref has them against PyTorch too;
 * test_metrics.c the metrics.) */
#include "testutil.h"

#include <math.h>

#include "rt.h"

static nn_model model_of(nn_loss_kind loss, nn_output_act act, int k)
{
    nn_model m = {.name = "t", .output_size = k, .output_act = act, .loss = loss};
    return m;
}

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.10g, want %.10g (tolerance %g)", got, want, tol);
}

/* ---- values by hand --------------------------------------------------------------- */

static void test_sparse_ce_logits(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 3);
    const float z[] = {2, 1, 0, 0, 0, 0};
    const float y[] = {0, 2};
    double want = (log(1 + exp(-1.0) + exp(-2.0)) + log(3.0)) / 2;
    assert_close(nn_loss(&m, z, y, 2, NULL), want, 1e-6);

    /* Its gradient is (softmax - onehot) / n. */
    float d[6];
    nn_loss(&m, z, y, 2, d);
    double s = 1 + exp(-1.0) + exp(-2.0);
    assert_close(d[0], (1 / s - 1) / 2, 1e-6);
    assert_close(d[1], exp(-1.0) / s / 2, 1e-6);
    assert_close(d[5], (1.0 / 3 - 1) / 2, 1e-6);
}

static void test_categorical_ce_logits(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 3);
    const float z[] = {2, 1, 0};
    const float y[] = {0.2f, 0.3f, 0.5f};
    double lse = 2 + log(1 + exp(-1.0) + exp(-2.0));
    double want = 0.2 * (lse - 2) + 0.3 * (lse - 1) + 0.5 * lse;
    assert_close(nn_loss(&m, z, y, 1, NULL), want, 1e-6);
}

static void test_binary_ce_logits(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_SIGMOID, 2);
    /* sample 1: -log sigmoid(0.5), -log(1 - sigmoid(-2)); sample 2: y = 0.25 */
    const float z[] = {0.5f, -2, 1, 0};
    const float y[] = {1, 0, 0.25f, 1};
    double s1 = (log(1 + exp(-0.5)) + log(1 + exp(-2.0))) / 2;
    double p = 1 / (1 + exp(-1.0));
    double s2 = (-(0.25 * log(p) + 0.75 * log(1 - p)) + log(2.0)) / 2;
    assert_close(nn_loss(&m, z, y, 2, NULL), (s1 + s2) / 2, 1e-6);
}

static void test_mse(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 2);
    const float out[] = {1, 2, 0, 0};
    const float y[] = {0, 4, 0, 1};
    assert_close(nn_loss(&m, out, y, 2, NULL), ((1 + 4) / 2.0 + 1 / 2.0) / 2, 1e-9);
    float d[4];
    nn_loss(&m, out, y, 2, d);
    assert_close(d[1], 2 * (2 - 4) / 2.0 / 2, 1e-7);   /* 2 (out - y) / K / n */
}

static void test_categorical_ce_probs(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_LINEAR, 3);
    const float p[] = {0.2f, 0.3f, 0.5f, 0.2f, 0.2f, 0.1f};
    const float y[] = {0, 0, 1, 1, 0, 0};
    /* Keras divides p by its sum first: the second sample is [0.4, 0.4, 0.2]. */
    assert_close(nn_loss(&m, p, y, 2, NULL), (-log(0.5) - log(0.4)) / 2, 1e-6);
    /* A zero probability is clipped to 1e-7. */
    const float p0[] = {0, 0.5f, 0.5f};
    const float y0[] = {1, 0, 0};
    assert_close(nn_loss(&m, p0, y0, 1, NULL), -log(1e-7), 1e-4);
}

static void test_sparse_ce_probs(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_LINEAR, 3);
    const float p[] = {0.2f, 0.3f, 0.5f, 0, 0.5f, 0.5f};
    const float y[] = {1, 1};
    /* The second: clip(0) = 1e-7 joins the normalising sum. */
    double want = (-log(0.3) - log(0.5 / (1 + 1e-7))) / 2;
    assert_close(nn_loss(&m, p, y, 2, NULL), want, 1e-6);
}

static void test_binary_ce_probs(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 1);
    const float p[] = {0.8f, 0.1f, 1.0f};
    const float y[] = {1, 0, 0};
    /* Keras adds epsilon inside the log; p = 1 is clipped to 1 - 1e-7. */
    double c = (double)(1.0f - 1e-7f);
    double want = (-log(0.8 + 1e-7) - log(1 - 0.1 + 1e-7) - log(1 - c + 1e-7)) / 3;
    assert_close(nn_loss(&m, p, y, 3, NULL), want, 1e-5);
    /* Where the clip is active no gradient passes. */
    float d[3];
    nn_loss(&m, p, y, 3, d);
    assert_true(d[2] == 0.0f);
    assert_close(d[0], -1 / (0.8 + 1e-7) / 3, 1e-6);
}

/* Keras's formulas (keras/losses.py) by hand, per sample the mean over the units. */
static void test_elementwise_losses(void **state)
{
    (void)state;
    const float out[] = {1, 2, 0, -3}, y[] = {0, 4, 0, 1};   /* errors 1, -2 | 0, -4 */
    nn_model m = model_of(NN_LOSS_MAE, NN_OUT_LINEAR, 2);
    assert_close(nn_loss(&m, out, y, 2, NULL), ((1 + 2) / 2.0 + 4 / 2.0) / 2, 1e-12);
    float d[4];
    nn_loss(&m, out, y, 2, d);
    assert_true(d[0] == 0.25f && d[1] == -0.25f && d[2] == 0.0f);   /* sign / K / n; 0 at 0 */

    /* Huber, delta 1: 0.5 e^2 inside, |e| - 0.5 outside; with delta 2: 2 |e| - 2. */
    m = model_of(NN_LOSS_HUBER, NN_OUT_LINEAR, 2);
    m.loss_args.delta = 1.0f;
    assert_close(nn_loss(&m, out, y, 2, NULL), ((0.5 + 1.5) / 2 + (0 + 3.5) / 2) / 2, 1e-12);
    m.loss_args.delta = 2.0f;
    assert_close(nn_loss(&m, out, y, 2, NULL), ((0.5 + 2) / 2 + (0 + 6) / 2) / 2, 1e-12);

    m = model_of(NN_LOSS_LOG_COSH, NN_OUT_LINEAR, 2);
    double want = ((log(cosh(1.0)) + log(cosh(2.0))) / 2 + (0 + log(cosh(4.0))) / 2) / 2;
    assert_close(nn_loss(&m, out, y, 2, NULL), want, 1e-12);
    /* Where cosh overflows a double, the stable form still gives |e| - log 2. */
    const float big[] = {1000}, zero[] = {0};
    m.output_size = 1;
    assert_close(nn_loss(&m, big, zero, 1, NULL), 1000 - log(2.0), 1e-9);
}

static void test_kl_divergence(void **state)
{
    (void)state;
    /* sum t log(t / p), t and p clipped to [1e-7, 1]: a zero label adds nothing
     * (1e-7 log(1e-7 / p) is tiny), a zero prediction counts as 1e-7. */
    nn_model m = model_of(NN_LOSS_KL_DIVERGENCE, NN_OUT_LINEAR, 2);
    const float p[] = {0.25f, 0.75f, 0, 1}, y[] = {0.5f, 0.5f, 1, 0};
    double e = (double)1e-7f;
    double s1 = 0.5 * log(0.5 / 0.25) + 0.5 * log(0.5 / 0.75);
    double s2 = log(1 / e) + e * log(e / 1);
    assert_close(nn_loss(&m, p, y, 2, NULL), (s1 + s2) / 2, 1e-9);
}

static void test_label_smoothing(void **state)
{
    (void)state;
    /* Categorical: y (1 - s) + s / K; with s = 0.3 and K = 3 the one-hot
     * [0, 1, 0] becomes [0.1, 0.8, 0.1]. */
    nn_model m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 3);
    m.loss_args.label_smoothing = 0.3f;
    const float z[] = {2, 1, 0}, y[] = {0, 1, 0};
    double lse = 2 + log(1 + exp(-1.0) + exp(-2.0));
    double want = 0.1 * (lse - 2) + 0.8 * (lse - 1) + 0.1 * lse;
    assert_close(nn_loss(&m, z, y, 1, NULL), want, 1e-6);

    /* Binary: y (1 - s) + s / 2; s = 0.2 makes 1 into 0.9. */
    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_SIGMOID, 1);
    m.loss_args.label_smoothing = 0.2f;
    const float zb[] = {0.5f}, yb[] = {1};
    double p = 1 / (1 + exp(-0.5));
    assert_close(nn_loss(&m, zb, yb, 1, NULL), -(0.9 * log(p) + 0.1 * log(1 - p)), 1e-6);
}

static void test_from_logits(void **state)
{
    (void)state;
    /* A linear output with from_logits is a fused one: the same numbers. */
    const float z[] = {0.3f, -1.2f, 2.0f, 0.7f}, y[] = {0, 0, 1, 0};
    nn_model fused = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 4);
    nn_model logits = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_LINEAR, 4);
    logits.loss_args.from_logits = 1;
    assert_close(nn_loss(&logits, z, y, 1, NULL), nn_loss(&fused, z, y, 1, NULL), 0);
    /* predict shows probabilities all the same. */
    float p[4];
    nn_output_probs(&logits, z, p, 1);
    assert_close(p[0] + p[1] + p[2] + p[3], 1, 1e-6);
    assert_true(p[2] > p[3] && p[3] > p[0]);
}

static void test_class_weights(void **state)
{
    (void)state;
    /* Keras's SUM_OVER_BATCH_SIZE: sum(w_i l_i) / n, not / sum(w). */
    nn_model m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 1);
    const float out[] = {1, 3, 0}, y[] = {0, 1, 0};   /* losses 1, 4, 0 */
    const float w[] = {2, 0.5f, 7};
    assert_close(nn_loss_weighted(&m, out, y, w, 3, NULL), (2 * 1 + 0.5 * 4 + 0) / 3.0, 1e-12);
    float d[3];
    nn_loss_weighted(&m, out, y, w, 3, d);
    assert_close(d[0], 2 * 2 * 1 / 3.0, 1e-6);   /* w * 2 e / n */

    /* The weights by class: the label itself, or a one-hot row's argmax. */
    static const float table[] = {1, 3};
    m.fit.class_weight = table, m.fit.n_class_weights = 2;
    float got[3];
    assert_int_equal(nn_class_weights(&m, y, 3, got), 0);
    assert_true(got[0] == 1 && got[1] == 3 && got[2] == 1);
    nn_model c = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 2);
    c.fit = m.fit;
    const float onehot[] = {0, 1, 1, 0};
    assert_int_equal(nn_class_weights(&c, onehot, 2, got), 0);
    assert_true(got[0] == 3 && got[1] == 1);
    /* A class the table does not have is an error. */
    const float two[] = {2};
    assert_int_equal(nn_class_weights(&m, two, 1, got), -1);
}

static void test_positions(void **state)
{
    (void)state;
    /* An output of 2 positions of 3 classes (a sequence, say): each position
     * is a softmax over its 3, and the loss the mean over all positions. */
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 6);
    m.output_units = 3;
    const float z[] = {2, 1, 0, 0, 0, 0}, y[] = {0, 2};
    double want = (log(1 + exp(-1.0) + exp(-2.0)) + log(3.0)) / 2;
    assert_close(nn_loss(&m, z, y, 1, NULL), want, 1e-6);
    assert_int_equal(nn_label_width(&m), 2);
}

/* ---- gradients by finite differences -------------------------------------------------- */

/* Central differences of nn_loss at every output against dout. The step is
 * taken in float, so the real distance between the two points is used. */
static void check_gradient(const nn_model *m, const float *out0, const float *y, int n)
{
    int total = n * m->output_size;
    float out[32], d[32];
    assert_true(total <= 32);
    memcpy(out, out0, (size_t)total * sizeof *out);
    nn_loss(m, out, y, n, d);
    for (int i = 0; i < total; i++) {
        float x = out0[i], hi = x + 1e-3f, lo = x - 1e-3f;
        out[i] = hi;
        double lhi = nn_loss(m, out, y, n, NULL);
        out[i] = lo;
        double llo = nn_loss(m, out, y, n, NULL);
        out[i] = x;
        double fd = (lhi - llo) / ((double)hi - lo);
        if (fabs(fd - d[i]) > 1e-3 * fabs(fd) + 1e-5)
            fail_msg("loss %d act %d: d[%d] = %.8g, finite difference %.8g", m->loss,
                     m->output_act, i, d[i], fd);
    }
}

static void test_gradients(void **state)
{
    (void)state;
    const float logits[] = {0.3f, -1.2f, 2.0f, 0.7f, -0.4f, 0.1f, 1.5f, -2.2f, 0.9f};
    const float probs[] = {0.2f, 0.5f, 0.3f, 0.6f, 0.15f, 0.25f, 0.1f, 0.1f, 0.8f};
    const float sparse[] = {2, 0, 1};
    const float onehot[] = {0, 0, 1, 1, 0, 0, 0, 1, 0};
    const float soft[] = {0.1f, 0.2f, 0.7f, 0.5f, 0.5f, 0, 0.3f, 0.3f, 0.4f};
    const float bits[] = {1, 0, 1, 0, 1, 1, 0, 0, 1};
    /* Probabilities that do not sum to one exercise Keras's normalisation. */
    const float loose[] = {0.2f, 0.6f, 0.5f, 0.9f, 0.05f, 0.3f, 0.4f, 0.4f, 0.1f};
    nn_model m;

    m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 3);
    check_gradient(&m, logits, sparse, 3);
    m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 3);
    check_gradient(&m, logits, onehot, 3);
    check_gradient(&m, logits, soft, 3);
    check_gradient(&m, logits, bits, 3);   /* targets summing to 2: sum(t) softmax - t */
    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_SIGMOID, 3);
    check_gradient(&m, logits, soft, 3);
    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_SIGMOID, 1);
    check_gradient(&m, logits, bits, 9);
    m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 3);
    check_gradient(&m, logits, soft, 3);
    m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_LINEAR, 3);
    check_gradient(&m, probs, sparse, 3);
    check_gradient(&m, loose, sparse, 3);
    m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_LINEAR, 3);
    check_gradient(&m, probs, soft, 3);
    check_gradient(&m, loose, onehot, 3);
    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 3);
    check_gradient(&m, probs, soft, 3);
    m.loss_args.label_smoothing = 0.2f;
    check_gradient(&m, probs, soft, 3);
    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 3);
    m.loss_args.from_logits = 1;
    check_gradient(&m, logits, bits, 3);
    m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 3);
    m.loss_args.label_smoothing = 0.1f;
    check_gradient(&m, logits, onehot, 3);
    m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_LINEAR, 3);
    m.loss_args.label_smoothing = 0.1f;
    check_gradient(&m, loose, onehot, 3);
    /* Away from the kinks of |e| and of Huber's delta. */
    m = model_of(NN_LOSS_MAE, NN_OUT_LINEAR, 3);
    check_gradient(&m, logits, soft, 3);
    m = model_of(NN_LOSS_HUBER, NN_OUT_LINEAR, 3);
    m.loss_args.delta = 1.0f;
    check_gradient(&m, logits, soft, 3);
    m = model_of(NN_LOSS_LOG_COSH, NN_OUT_LINEAR, 3);
    check_gradient(&m, logits, soft, 3);
    m = model_of(NN_LOSS_KL_DIVERGENCE, NN_OUT_LINEAR, 3);
    check_gradient(&m, probs, soft, 3);
}

/* ---- robustness ------------------------------------------------------------------------- */

static void assert_finite_loss(const nn_model *m, const float *z, const float *y, int n)
{
    float d[8];
    double l = nn_loss(m, z, y, n, d);
    assert_true(isfinite(l));
    for (int i = 0; i < n * m->output_size; i++)
        assert_true(isfinite(d[i]));
}

static void test_extreme_logits(void **state)
{
    (void)state;
    const float z[] = {100, -100, 0};
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 3);
    const float label[] = {1};
    assert_finite_loss(&m, z, label, 1);
    assert_close(nn_loss(&m, z, label, 1, NULL), 200, 1e-6);

    m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 3);
    const float onehot[] = {0, 1, 0};
    assert_finite_loss(&m, z, onehot, 1);

    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_SIGMOID, 1);
    const float zb[] = {100, -100}, yb[] = {0, 1};
    assert_finite_loss(&m, zb, yb, 2);
    assert_close(nn_loss(&m, zb, yb, 2, NULL), 100, 1e-6);

    /* The probability paths clip instead: an output of 0 or 1 is finite too. */
    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 1);
    const float pb[] = {1, 0};
    assert_finite_loss(&m, pb, yb, 2);
}

static void test_bad_label_is_nan(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 3);
    const float z[] = {1, 2, 3};
    const float bad[] = {3}, negative[] = {-1};
    float d[3];
    assert_true(isnan(nn_loss(&m, z, bad, 1, d)));
    assert_true(d[0] == 0 && d[1] == 0 && d[2] == 0);
    assert_true(isnan(nn_loss(&m, z, negative, 1, NULL)));
}

static void test_unfused_activation_refused(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_MSE, NN_OUT_SOFTMAX, 3);
    const float z[] = {1, 2, 3}, y[] = {0, 0, 1};
    assert_true(isnan(nn_loss(&m, z, y, 1, NULL)));
}

/* ---- probabilities ------------------------------------------------------------------------ */

static void test_output_probs(void **state)
{
    (void)state;
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 4);
    const float z[] = {1, 2, 3, 4, 100, -100, 0, 0};
    float p[8];
    nn_output_probs(&m, z, p, 2);
    double s = exp(1.0) + exp(2.0) + exp(3.0) + exp(4.0);
    assert_close(p[0], exp(1.0) / s, 1e-7);
    assert_close(p[3], exp(4.0) / s, 1e-7);
    for (int k = 0; k < 2; k++)
        assert_close(p[4 * k] + p[4 * k + 1] + p[4 * k + 2] + p[4 * k + 3], 1, 1e-6);
    assert_close(p[4], 1, 1e-7);

    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_SIGMOID, 2);
    const float zb[] = {0, -2};
    nn_output_probs(&m, zb, p, 1);
    assert_close(p[0], 0.5, 1e-7);
    assert_close(p[1], 1 / (1 + exp(2.0)), 1e-7);

    m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 2);
    nn_output_probs(&m, zb, p, 1);
    assert_true(p[0] == 0 && p[1] == -2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sparse_ce_logits),
        cmocka_unit_test(test_categorical_ce_logits),
        cmocka_unit_test(test_binary_ce_logits),
        cmocka_unit_test(test_mse),
        cmocka_unit_test(test_categorical_ce_probs),
        cmocka_unit_test(test_sparse_ce_probs),
        cmocka_unit_test(test_binary_ce_probs),
        cmocka_unit_test(test_elementwise_losses),
        cmocka_unit_test(test_kl_divergence),
        cmocka_unit_test(test_label_smoothing),
        cmocka_unit_test(test_from_logits),
        cmocka_unit_test(test_class_weights),
        cmocka_unit_test(test_positions),
        cmocka_unit_test(test_gradients),
        cmocka_unit_test(test_extreme_logits),
        cmocka_unit_test(test_bad_label_is_nan),
        cmocka_unit_test(test_unfused_activation_refused),
        cmocka_unit_test(test_output_probs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
