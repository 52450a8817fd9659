/* test_metrics.c - Keras's metrics (runtime/metrics.c) on values worked out
 * by hand, and the examples of Keras's own docstrings (keras/metrics:
 * Precision, Recall, AUC with num_thresholds=3), and their accumulation:
 * an epoch's value is the metric over every sample seen, not a mean of the
 * batches' values. */
#include "testutil.h"

#include <math.h>

#include "rt.h"

static nn_metric metric(nn_metric_kind kind)
{
    nn_metric x = {.kind = kind, .name = "m", .val_name = "val_m", .k = 5, .threshold = 0.5f,
                   .num_thresholds = 200};
    return x;
}

static nn_model model_of(nn_loss_kind loss, nn_output_act act, int k, const nn_metric *metrics,
                         int n_metrics)
{
    nn_model m = {.name = "t", .output_size = k, .output_act = act, .loss = loss,
                  .metrics = metrics, .n_metrics = n_metrics};
    return m;
}

/* The value of the model's only metric over one batch. */
static double value_of(const nn_model *m, const float *out, const float *y, int n)
{
    double *sums = calloc(nn_metrics_size(m), sizeof *sums), v;
    assert_int_equal(nn_metrics_update(m, out, y, n, sums), 0);
    nn_metrics_results(m, sums, &v);
    free(sums);
    return v;
}

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.10g, want %.10g (tolerance %g)", got, want, tol);
}

/* ---- accuracies --------------------------------------------------------------------------- */

static void test_accuracy_as_keras_chooses(void **state)
{
    (void)state;
    nn_metric acc = metric(NN_METRIC_ACCURACY);
    /* Sparse labels: argmax against the index; on a tie the first maximum wins. */
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 3, &acc, 1);
    const float z[] = {1, 1, 0, 0, 2, 1, 5, 0, 0};
    const float labels[] = {0, 1, 1};
    assert_close(value_of(&m, z, labels, 3), 2.0 / 3, 1e-12);

    /* One-hot labels: argmax against argmax. */
    m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_SOFTMAX, 3, &acc, 1);
    const float y[] = {1, 0, 0, 0, 0, 1, 0.6f, 0.4f, 0};
    assert_close(value_of(&m, z, y, 3), 2.0 / 3, 1e-12);

    /* One unit from logits: sigmoid(z) > 0.5, and sigmoid(0) = 0.5 is class 0. */
    m = model_of(NN_LOSS_BINARY_CE, NN_OUT_SIGMOID, 1, &acc, 1);
    const float zb[] = {0, 0.1f, -0.1f, 3}, yb[] = {0, 1, 1, 1};
    assert_close(value_of(&m, zb, yb, 4), 0.75, 1e-12);

    /* One linear output: binary accuracy at 0.5. */
    m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 1, &acc, 1);
    const float p[] = {0.7f, 0.5f, 0.2f}, t[] = {1, 1, 0};
    assert_close(value_of(&m, p, t, 3), 2.0 / 3, 1e-12);
}

static void test_binary_accuracy_per_unit(void **state)
{
    (void)state;
    /* Keras: the mean over the units of each sample, then over the samples:
     * sample 1 has 1 of 2 right, sample 2 both. */
    nn_metric b = metric(NN_METRIC_BINARY_ACCURACY);
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 2, &b, 1);
    const float p[] = {0.9f, 0.6f, 0.1f, 0.7f}, y[] = {1, 0, 0, 1};
    assert_close(value_of(&m, p, y, 2), (0.5 + 1.0) / 2, 1e-12);
    b.threshold = 0.65f;   /* BinaryAccuracy(threshold=0.65): 0.6 is now 0, right */
    assert_close(value_of(&m, p, y, 2), 1.0, 1e-12);
}

static void test_sparse_accuracy_compares_as_floats(void **state)
{
    (void)state;
    /* A label 1.5 is no class: Keras compares the argmax, as a float, with it. */
    nn_metric s = metric(NN_METRIC_SPARSE_CATEGORICAL_ACCURACY);
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_SOFTMAX, 3, &s, 1);
    const float z[] = {0, 5, 0, 0, 5, 0}, y[] = {1, 1.5f};
    assert_close(value_of(&m, z, y, 2), 0.5, 1e-12);
}

static void test_top_k(void **state)
{
    (void)state;
    /* tf.math.in_top_k: fewer than k predictions strictly above the target's,
     * so ties at the edge are all in. Predictions [0.1, 0.4, 0.3, 0.2]:
     * with k = 2 class 1 and 2 are in, 3 is not; [0.3, 0.3, 0.3, 0.1]: class
     * 2 ties with two others above none, so it is in. */
    nn_metric top = metric(NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY);
    top.k = 2;
    nn_model m = model_of(NN_LOSS_SPARSE_CE, NN_OUT_LINEAR, 4, &top, 1);
    const float p[] = {0.1f, 0.4f, 0.3f, 0.2f, 0.1f, 0.4f, 0.3f, 0.2f,
                       0.3f, 0.3f, 0.3f, 0.1f, 0.3f, 0.3f, 0.3f, 0.1f};
    const float y[] = {2, 3, 2, 3};
    assert_close(value_of(&m, p, y, 4), 2.0 / 4, 1e-12);
    /* The default k = 5 takes every one of 4 classes. */
    top.k = 5;
    assert_close(value_of(&m, p, y, 4), 1.0, 1e-12);

    /* The one-hot version: the label's argmax. */
    nn_metric dense = metric(NN_METRIC_TOP_K_CATEGORICAL_ACCURACY);
    dense.k = 1;
    m = model_of(NN_LOSS_CATEGORICAL_CE, NN_OUT_LINEAR, 4, &dense, 1);
    const float onehot[] = {0, 1, 0, 0, 0, 0, 0, 1};
    assert_close(value_of(&m, p, onehot, 2), 0.5, 1e-12);
}

/* ---- errors --------------------------------------------------------------------------------- */

static void test_mae_mse_rmse(void **state)
{
    (void)state;
    const float p[] = {1, 2, 0, 0}, y[] = {0, 4, 0, 1};
    /* Per sample: mae 1.5 and 0.5, mse 2.5 and 0.5. */
    nn_metric mae = metric(NN_METRIC_MAE), mse = metric(NN_METRIC_MSE);
    nn_metric rmse = metric(NN_METRIC_RMSE);
    nn_model m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 2, &mae, 1);
    assert_close(value_of(&m, p, y, 2), 1.0, 1e-12);
    m.metrics = &mse;
    assert_close(value_of(&m, p, y, 2), 1.5, 1e-12);
    /* RootMeanSquaredError: the root of the mean of all squared errors. */
    m.metrics = &rmse;
    assert_close(value_of(&m, p, y, 2), sqrt(6.0 / 4), 1e-12);
}

static void test_rmse_over_batches(void **state)
{
    (void)state;
    /* Two batches, errors {3} and {1}: Keras's epoch value is sqrt((9 + 1) / 2),
     * not the mean of the batches' 3 and 1. */
    nn_metric rmse = metric(NN_METRIC_RMSE);
    nn_model m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 1, &rmse, 1);
    double sums[2] = {0, 0}, v;
    const float p1[] = {3}, p2[] = {1}, zero[] = {0};
    assert_int_equal(nn_metrics_update(&m, p1, zero, 1, sums), 0);
    assert_int_equal(nn_metrics_update(&m, p2, zero, 1, sums), 0);
    nn_metrics_results(&m, sums, &v);
    assert_close(v, sqrt(5.0), 1e-12);
}

/* ---- confusion counts ---------------------------------------------------------------------- */

static void test_precision_recall_keras_examples(void **state)
{
    (void)state;
    /* Keras's docstrings: update_state([0, 1, 1, 1], [1, 0, 1, 1]) gives
     * precision 2/3 and recall 2/3. */
    const float y[] = {0, 1, 1, 1}, p[] = {1, 0, 1, 1};
    nn_metric pr = metric(NN_METRIC_PRECISION), re = metric(NN_METRIC_RECALL);
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 1, &pr, 1);
    assert_close(value_of(&m, p, y, 4), 2.0 / 3, 1e-12);
    m.metrics = &re;
    assert_close(value_of(&m, p, y, 4), 2.0 / 3, 1e-12);
}

static void test_precision_recall_by_hand(void **state)
{
    (void)state;
    /* Threshold 0.5, strictly above: 0.5 is a negative prediction. Labels
     * 1 1 0 0 1, predictions 0.9 0.5 0.6 0.2 0.7: tp 2 (0.9, 0.7), fp 1
     * (0.6), fn 1 (0.5). */
    const float y[] = {1, 1, 0, 0, 1}, p[] = {0.9f, 0.5f, 0.6f, 0.2f, 0.7f};
    nn_metric pr = metric(NN_METRIC_PRECISION), re = metric(NN_METRIC_RECALL);
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 1, &pr, 1);
    assert_close(value_of(&m, p, y, 5), 2.0 / 3, 1e-12);
    m.metrics = &re;
    assert_close(value_of(&m, p, y, 5), 2.0 / 3, 1e-12);
    /* Nothing predicted positive: 0, as divide_no_nan gives. */
    const float none[] = {0.1f, 0.1f, 0.1f, 0.1f, 0.1f};
    m.metrics = &pr;
    assert_close(value_of(&m, none, y, 5), 0.0, 0);
    /* From logits through a fused sigmoid: the metric sees probabilities. */
    m.output_act = NN_OUT_SIGMOID;
    const float z[] = {2.2f, 0, 0.4f, -1.4f, 0.8f};   /* sigmoid: .9 .5 .6 .2 .69 */
    assert_close(value_of(&m, z, y, 5), 2.0 / 3, 1e-12);
}

static void test_auc_keras_example(void **state)
{
    (void)state;
    /* Keras's AUC docstring, num_thresholds=3: update_state([0, 0, 1, 1],
     * [0, 0.5, 0.3, 0.9]): thresholds [-eps, 0.5, 1 + eps], tp [2, 1, 0],
     * fp [2, 0, 0], recall [1, 0.5, 0], fp_rate [1, 0, 0], AUC 0.75. */
    nn_metric auc = metric(NN_METRIC_AUC);
    auc.num_thresholds = 3;
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 1, &auc, 1);
    const float y[] = {0, 0, 1, 1}, p[] = {0, 0.5f, 0.3f, 0.9f};
    assert_close(value_of(&m, p, y, 4), 0.75, 1e-12);
}

static void test_auc_by_hand(void **state)
{
    (void)state;
    /* 200 thresholds and predictions in different buckets: the ROC curve
     * through every point, whose area is the share of (positive, negative)
     * pairs ranked right: 3 of 4 for positives .35 .8, negatives .1 .4. */
    nn_metric auc = metric(NN_METRIC_AUC);
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 1, &auc, 1);
    const float y[] = {0, 0, 1, 1}, p[] = {0.1f, 0.4f, 0.35f, 0.8f};
    assert_close(value_of(&m, p, y, 4), 0.75, 1e-12);
    /* A tie in one bucket is half right: the trapezoid from (0, 0) to (1, 1). */
    const float ty[] = {0, 1}, tp[] = {0.5f, 0.5f};
    assert_close(value_of(&m, tp, ty, 2), 0.5, 1e-12);
    /* Only one kind of label: recall or fp_rate is 0 everywhere, so is the area. */
    const float ones[] = {1, 1};
    assert_close(value_of(&m, p, ones, 2), 0.0, 0);

    /* Two batches add their counts: the same as one batch of both. */
    double sums[400] = {0}, v;
    assert_int_equal(nn_metrics_size(&m), 400);
    assert_int_equal(nn_metrics_update(&m, p, y, 2, sums), 0);
    assert_int_equal(nn_metrics_update(&m, p + 2, y + 2, 2, sums), 0);
    nn_metrics_results(&m, sums, &v);
    assert_close(v, 0.75, 1e-12);
}

static void test_probability_metrics_refuse_other_values(void **state)
{
    (void)state;
    /* Keras asserts predictions in [0, 1] for the confusion metrics. */
    nn_metric auc = metric(NN_METRIC_AUC);
    nn_model m = model_of(NN_LOSS_MSE, NN_OUT_LINEAR, 1, &auc, 1);
    const float p[] = {0.5f, 1.5f}, y[] = {0, 1};
    double sums[400] = {0};
    assert_int_equal(nn_metrics_update(&m, p, y, 2, sums), -1);
}

static void test_several_metrics(void **state)
{
    (void)state;
    /* Each metric has its own sums, one after another. */
    nn_metric list[] = {metric(NN_METRIC_MAE), metric(NN_METRIC_AUC), metric(NN_METRIC_RECALL)};
    nn_model m = model_of(NN_LOSS_BINARY_CE, NN_OUT_LINEAR, 1, list, 3);
    assert_int_equal(nn_metrics_size(&m), 2 + 400 + 2);
    const float y[] = {0, 0, 1, 1}, p[] = {0.1f, 0.4f, 0.35f, 0.8f};
    double *sums = calloc(nn_metrics_size(&m), sizeof *sums), v[3];
    assert_int_equal(nn_metrics_update(&m, p, y, 4, sums), 0);
    nn_metrics_results(&m, sums, v);
    assert_close(v[0], (0.1 + 0.4 + 0.65 + 0.2) / 4, 1e-7);
    assert_close(v[1], 0.75, 1e-12);
    assert_close(v[2], 0.5, 1e-12);
    free(sums);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy_as_keras_chooses),
        cmocka_unit_test(test_binary_accuracy_per_unit),
        cmocka_unit_test(test_sparse_accuracy_compares_as_floats),
        cmocka_unit_test(test_top_k),
        cmocka_unit_test(test_mae_mse_rmse),
        cmocka_unit_test(test_rmse_over_batches),
        cmocka_unit_test(test_precision_recall_keras_examples),
        cmocka_unit_test(test_precision_recall_by_hand),
        cmocka_unit_test(test_auc_keras_example),
        cmocka_unit_test(test_auc_by_hand),
        cmocka_unit_test(test_probability_metrics_refuse_other_values),
        cmocka_unit_test(test_several_metrics),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
