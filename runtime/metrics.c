/* metrics.c - Keras's metrics as a table: one row per kind, with how many
 * sums it keeps, how a batch adds to them, and its value from them.
 *
 * Keras's metrics see y_pred, the model's output (probabilities where the
 * loss is fused: nn_keras_output; logits where the loss says from_logits,
 * as Keras's do), and y_true as the loss wants it. Three ways to accumulate:
 *   - a mean of per-position values (MeanMetricWrapper: the accuracies, mae,
 *     mse): sums = {total, count};
 *   - rmse (RootMeanSquaredError): sqrt of the mean of every squared error;
 *   - confusion counts at thresholds (Precision, Recall, AUC), as
 *     keras/utils/metrics_utils.py's update_confusion_matrix_variables: a
 *     label is positive where it is not 0, a prediction where it is above the
 *     threshold. AUC keeps, per bucket of its evenly spaced thresholds
 *     (num_thresholds, [0 - eps, 1/(T-1), ..., 1 + eps]), the positive and
 *     negative labels whose prediction falls there: bucket ceil(p (T-1)) - 1,
 *     at least 0, in float32, as Keras's optimised path
 *     (_update_confusion_matrix_variables_optimized) does; the counts at
 *     threshold i are the sums over buckets >= i. Its value is Keras's
 *     default: the ROC curve, with the trapezoidal rule ("interpolation").
 * Precision, recall and AUC refuse a prediction outside [0, 1], as Keras's
 * assertions do.
 */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct metric_ctx metric_ctx;
/* One position's value, for the mean metrics. */
typedef double position_value_fn(const metric_ctx *c, const float *p, const float *t);

struct metric_ctx {
    const nn_model *m;
    const nn_metric *metric;
    position_value_fn *value;      /* its row's */
    int k;                         /* units per position */
    int ylen;                      /* label numbers per position */
};

typedef struct {
    nn_metric_kind kind;
    position_value_fn *value;      /* a mean metric's, or NULL */
    size_t (*slots)(const nn_metric *metric);
    int (*update)(const metric_ctx *c, const float *p, const float *t, double *sums);
    double (*result)(const nn_metric *metric, const double *sums);
} metric_row;

/* ---- the mean metrics ----------------------------------------------------------------- */

static double binary_accuracy(const metric_ctx *c, const float *p, const float *t)
{
    double right = 0;
    for (int j = 0; j < c->k; j++)
        right += t[j] == (p[j] > c->metric->threshold ? 1.0f : 0.0f);
    return right / c->k;
}

static double categorical_accuracy(const metric_ctx *c, const float *p, const float *t)
{
    return nn_argmax(p, c->k) == nn_argmax(t, c->k);
}

/* Keras compares the argmax, as a float, with the label as it is. */
static double sparse_categorical_accuracy(const metric_ctx *c, const float *p, const float *t)
{
    return (float)nn_argmax(p, c->k) == t[0];
}

/* Keras's choice for `accuracy`: binary for one unit, sparse for one label
 * number per position, categorical otherwise. */
static double accuracy(const metric_ctx *c, const float *p, const float *t)
{
    if (c->k == 1)
        return binary_accuracy(c, p, t);
    return c->ylen == 1 ? sparse_categorical_accuracy(c, p, t) : categorical_accuracy(c, p, t);
}

/* tf.math.in_top_k: fewer than k predictions above the target's; never for
 * a target that is no class or a prediction that is not finite. */
static double in_top_k(const metric_ctx *c, const float *p, int target)
{
    if (target < 0 || target >= c->k || !isfinite(p[target]))
        return 0;
    int above = 0;
    for (int j = 0; j < c->k; j++) {
        if (!isfinite(p[j]))
            return 0;
        above += p[j] > p[target];
    }
    return above < c->metric->k;
}

static double top_k_accuracy(const metric_ctx *c, const float *p, const float *t)
{
    return in_top_k(c, p, nn_argmax(t, c->k));
}

static double sparse_top_k_accuracy(const metric_ctx *c, const float *p, const float *t)
{
    return t[0] >= 0 && t[0] < c->k ? in_top_k(c, p, (int)t[0]) : 0;
}

static double mean_absolute_error(const metric_ctx *c, const float *p, const float *t)
{
    double sum = 0;
    for (int j = 0; j < c->k; j++)
        sum += fabs((double)p[j] - t[j]);
    return sum / c->k;
}

static double mean_squared_error(const metric_ctx *c, const float *p, const float *t)
{
    double sum = 0;
    for (int j = 0; j < c->k; j++)
        sum += ((double)p[j] - t[j]) * ((double)p[j] - t[j]);
    return sum / c->k;
}

static size_t two_slots(const nn_metric *metric)
{
    (void)metric;
    return 2;
}

static int mean_update(const metric_ctx *c, const float *p, const float *t, double *sums)
{
    sums[0] += c->value(c, p, t);
    sums[1] += 1;
    return 0;
}

static double ratio(const nn_metric *metric, const double *sums)
{
    (void)metric;
    return sums[1] > 0 ? sums[0] / sums[1] : 0.0;
}

/* ---- rmse ----------------------------------------------------------------------------- */

static int squares_update(const metric_ctx *c, const float *p, const float *t, double *sums)
{
    for (int j = 0; j < c->k; j++)
        sums[0] += ((double)p[j] - t[j]) * ((double)p[j] - t[j]);
    sums[1] += c->k;
    return 0;
}

static double root_of_ratio(const nn_metric *metric, const double *sums)
{
    return sqrt(ratio(metric, sums));
}

/* ---- confusion counts ----------------------------------------------------------------- */

static int check_probability(const metric_ctx *c, float p)
{
    if (p >= 0.0f && p <= 1.0f)
        return 0;
    return nn_error(c->m->name, "%s: a prediction is %g, not in [0, 1]: the metric wants "
                    "probabilities (a sigmoid or softmax output)", c->metric->name, (double)p);
}

/* sums: the true positives, then the predictions on the other side: false
 * positives (precision) or false negatives (recall). */
static int confusion_update(const metric_ctx *c, const float *p, const float *t, double *sums)
{
    bool precision = c->metric->kind == NN_METRIC_PRECISION;
    for (int j = 0; j < c->k; j++) {
        if (check_probability(c, p[j]) != 0)
            return -1;
        bool label = t[j] != 0, predicted = p[j] > c->metric->threshold;
        sums[0] += label && predicted;
        sums[1] += precision ? !label && predicted : label && !predicted;
    }
    return 0;
}

/* tp / (tp + fp) or tp / (tp + fn), 0 where nothing was counted (divide_no_nan). */
static double confusion_ratio(const nn_metric *metric, const double *sums)
{
    (void)metric;
    double all = sums[0] + sums[1];
    return all > 0 ? sums[0] / all : 0.0;
}

/* sums: positives per bucket, then negatives per bucket. */
static size_t auc_slots(const nn_metric *metric)
{
    return 2 * (size_t)metric->num_thresholds;
}

static int auc_update(const metric_ctx *c, const float *p, const float *t, double *sums)
{
    int thresholds = c->metric->num_thresholds;
    for (int j = 0; j < c->k; j++) {
        if (check_probability(c, p[j]) != 0)
            return -1;
        int bucket = (int)ceilf(p[j] * (float)(thresholds - 1)) - 1;
        bucket = bucket < 0 ? 0 : bucket;
        sums[(t[j] != 0 ? 0 : thresholds) + bucket] += 1;
    }
    return 0;
}

static double divide_no_nan(double a, double b)
{
    return b != 0 ? a / b : 0.0;
}

static double auc_result(const nn_metric *metric, const double *sums)
{
    int thresholds = metric->num_thresholds;
    const double *pos = sums, *neg = sums + thresholds;
    double all_pos = 0, all_neg = 0;
    for (int i = 0; i < thresholds; i++)
        all_pos += pos[i], all_neg += neg[i];
    /* From the highest threshold down: tp and fp are the counts at or above it. */
    double tp = 0, fp = 0, area = 0;
    double recall = 0, fp_rate = 0;
    for (int i = thresholds - 1; i >= 0; i--) {
        tp += pos[i], fp += neg[i];
        double r = divide_no_nan(tp, all_pos), f = divide_no_nan(fp, all_neg);
        if (i < thresholds - 1)
            area += (f - fp_rate) * (r + recall) / 2.0;
        recall = r, fp_rate = f;
    }
    return area;
}

/* ---- the table ------------------------------------------------------------------------ */

static const metric_row metric_rows[] = {
    {NN_METRIC_ACCURACY, accuracy, two_slots, mean_update, ratio},
    {NN_METRIC_BINARY_ACCURACY, binary_accuracy, two_slots, mean_update, ratio},
    {NN_METRIC_CATEGORICAL_ACCURACY, categorical_accuracy, two_slots, mean_update, ratio},
    {NN_METRIC_SPARSE_CATEGORICAL_ACCURACY, sparse_categorical_accuracy, two_slots, mean_update,
     ratio},
    {NN_METRIC_TOP_K_CATEGORICAL_ACCURACY, top_k_accuracy, two_slots, mean_update, ratio},
    {NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY, sparse_top_k_accuracy, two_slots, mean_update,
     ratio},
    {NN_METRIC_MAE, mean_absolute_error, two_slots, mean_update, ratio},
    {NN_METRIC_MSE, mean_squared_error, two_slots, mean_update, ratio},
    {NN_METRIC_RMSE, NULL, two_slots, squares_update, root_of_ratio},
    {NN_METRIC_PRECISION, NULL, two_slots, confusion_update, confusion_ratio},
    {NN_METRIC_RECALL, NULL, two_slots, confusion_update, confusion_ratio},
    {NN_METRIC_AUC, NULL, auc_slots, auc_update, auc_result},
};

static const metric_row *row_of(nn_metric_kind kind)
{
    for (size_t i = 0; i < sizeof metric_rows / sizeof metric_rows[0]; i++)
        if (metric_rows[i].kind == kind)
            return &metric_rows[i];
    return NULL;
}

size_t nn_metrics_size(const nn_model *m)
{
    size_t n = 0;
    for (int i = 0; i < m->n_metrics; i++)
        n += row_of(m->metrics[i].kind)->slots(&m->metrics[i]);
    return n;
}

int nn_metrics_update(const nn_model *m, const float *out, const float *y, int n, double *sums)
{
    if (m->n_metrics == 0 || n <= 0)
        return 0;
    int k = m->output_units > 0 ? m->output_units : m->output_size;
    int positions = m->output_size / k, ylen = nn_label_width(m) / positions;
    float *pred = nn_alloc((size_t)n * (size_t)m->output_size, sizeof *pred);
    nn_keras_output(m, out, pred, n);
    int rc = 0;
    for (int i = 0; i < m->n_metrics && rc == 0; i++) {
        const metric_row *r = row_of(m->metrics[i].kind);
        metric_ctx c = {m, &m->metrics[i], r->value, k, ylen};
        for (long at = 0; at < (long)n * positions && rc == 0; at++)
            rc = r->update(&c, pred + at * k, y + at * ylen, sums);
        sums += r->slots(c.metric);
    }
    free(pred);
    return rc;
}

void nn_metrics_results(const nn_model *m, const double *sums, double *values)
{
    for (int i = 0; i < m->n_metrics; i++) {
        const metric_row *r = row_of(m->metrics[i].kind);
        values[i] = r->result(&m->metrics[i], sums);
        sums += r->slots(&m->metrics[i]);
    }
}
