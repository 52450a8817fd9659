/* loss.c - Keras's losses and their gradients, as a table: one row per loss
 * with its name, the labels it wants, and its per-position function on final
 * outputs and, for the cross-entropies, on logits.
 *
 * A batch of n outputs of output_size numbers each, which are positions of
 * K = output_units numbers (the output's last axis; one position for a flat
 * output). Where the model's last activation is fused with the loss (softmax
 * with a categorical cross-entropy, sigmoid with the binary one), or the loss
 * says from_logits, the outputs are logits and the loss is computed from them
 * in the stable form Keras uses for from_logits. Otherwise the outputs are
 * final and we take Keras's probability path with its clipping to
 * [1e-7, 1 - 1e-7] (and its quirks: categorical CE first divides p by its sum,
 * binary CE adds epsilon inside the log), so a model whose last layer is not
 * the matching activation still gets Keras's numbers.
 *
 * Labels: one float class index per position for sparse categorical CE, K
 * floats per position otherwise. Each position's loss is Keras's reduction
 * over the last axis (a mean for the element-wise losses, a sum for the
 * cross-entropies and the KL divergence); the batch's loss is Keras's
 * SUM_OVER_BATCH_SIZE: the sum of the positions' losses, each times its
 * sample's weight (class_weight; 1 without), divided by their number, not by
 * the weights' sum. Sums are in double; the gradient is d(loss)/d(out).
 */
#include "rt.h"

#include <math.h>
#include <string.h>

/* Keras's backend epsilon, a float32 in Keras. */
#define CLIP_EPS 1e-7f

/* One position's loss; also writes scale * d(loss)/d(z) into d unless d is NULL. */
typedef double position_loss_fn(const float *z, const float *y, int k, float *d, double scale,
                                const nn_loss_args *a);

/* The class index a sparse label stands for, or -1 if it is none (Keras
 * truncates the float label to an integer). */
static int class_label(float y, int k)
{
    return y >= 0 && y < (float)k ? (int)y : -1;
}

static int units(const nn_model *m)
{
    return m->output_units > 0 ? m->output_units : m->output_size;
}

static double sigmoid(double z)
{
    if (z >= 0)
        return 1.0 / (1.0 + exp(-z));
    double e = exp(z);
    return e / (1.0 + e);
}

/* Probabilities are clipped as tf.clip_by_value does, which passes no gradient
 * where it clips. */
static float clip_to(float p, float lo, float hi, bool *passes)
{
    *passes = p >= lo && p <= hi;
    return p < lo ? lo : p > hi ? hi : p;
}

static float clip_prob(float p, bool *passes)
{
    return clip_to(p, CLIP_EPS, 1.0f - CLIP_EPS, passes);
}

/* Keras's label smoothing: towards 1/K for the categorical cross-entropy,
 * towards 1/2 for the binary one. */
static double smooth(double t, double s, double towards)
{
    return t * (1.0 - s) + s * towards;
}

/* ---- cross-entropies from logits ---------------------------------------------------- */

/* -sum_j t_j log softmax(z)_j with t the one-hot of label, or y if label < 0,
 * smoothed. The gradient, sum(t) softmax(z) - t, allows targets that do not
 * sum to one. */
static double softmax_ce(const float *z, const float *y, int label, int k, float *d,
                         double scale, double smoothing)
{
    double zmax = z[0];
    for (int j = 1; j < k; j++)
        zmax = z[j] > zmax ? z[j] : zmax;
    double sum_exp = 0;
    for (int j = 0; j < k; j++)
        sum_exp += exp(z[j] - zmax);
    double lse = zmax + log(sum_exp);

    double loss = 0, sum_t = 0;
    for (int j = 0; j < k; j++) {
        double t = smooth(label >= 0 ? (j == label) : y[j], smoothing, 1.0 / k);
        loss += t * (lse - z[j]);
        sum_t += t;
    }
    for (int j = 0; d && j < k; j++) {
        double t = smooth(label >= 0 ? (j == label) : y[j], smoothing, 1.0 / k);
        d[j] = (float)(scale * (sum_t * exp(z[j] - lse) - t));
    }
    return loss;
}

static double sparse_ce_logits(const float *z, const float *y, int k, float *d, double scale,
                               const nn_loss_args *a)
{
    (void)a;
    int label = class_label(y[0], k);
    if (label < 0) {
        if (d)
            memset(d, 0, (size_t)k * sizeof *d);
        return NAN;
    }
    return softmax_ce(z, y, label, k, d, scale, 0.0);
}

static double categorical_ce_logits(const float *z, const float *y, int k, float *d,
                                    double scale, const nn_loss_args *a)
{
    return softmax_ce(z, y, -1, k, d, scale, a->label_smoothing);
}

/* max(z, 0) - z y + log(1 + e^-|z|): never overflows, whatever z is. */
static double binary_ce_logits(const float *z, const float *y, int k, float *d, double scale,
                               const nn_loss_args *a)
{
    double loss = 0;
    for (int j = 0; j < k; j++) {
        double zj = z[j], t = smooth(y[j], a->label_smoothing, 0.5);
        loss += (zj > 0 ? zj : 0) - zj * t + log1p(exp(-fabs(zj)));
        if (d)
            d[j] = (float)(scale / k * (sigmoid(zj) - t));
    }
    return loss / k;
}

/* ---- cross-entropies from final outputs ----------------------------------------------- */

/* Keras: q = p / sum(p), then -sum t log clip(q). With g = dL/dq, the
 * normalisation turns it into dL/dp_j = (g_j - sum_k g_k q_k) / sum(p). */
static double categorical_ce_probs(const float *p, const float *y, int k, float *d,
                                   double scale, const nn_loss_args *a)
{
    double sum_p = 0;
    for (int j = 0; j < k; j++)
        sum_p += p[j];
    double loss = 0, g_dot_q = 0;
    for (int j = 0; j < k; j++) {
        bool passes;
        double t = smooth(y[j], a->label_smoothing, 1.0 / k);
        double c = clip_prob((float)(p[j] / sum_p), &passes);
        loss -= t * log(c);
        g_dot_q += passes ? -t : 0.0;   /* g_j q_j = -t_j where it passes */
    }
    for (int j = 0; d && j < k; j++) {
        bool passes;
        double t = smooth(y[j], a->label_smoothing, 1.0 / k);
        double c = clip_prob((float)(p[j] / sum_p), &passes);
        double g = passes ? -t / c : 0.0;
        d[j] = (float)(scale * (g - g_dot_q) / sum_p);
    }
    return loss;
}

/* Keras clips p, takes its log and applies sparse softmax CE to that:
 * -log(c_label / sum(c)) with c = clip(p). */
static double sparse_ce_probs(const float *p, const float *y, int k, float *d, double scale,
                              const nn_loss_args *a)
{
    (void)a;
    int label = class_label(y[0], k);
    if (label < 0) {
        if (d)
            memset(d, 0, (size_t)k * sizeof *d);
        return NAN;
    }
    double sum_c = 0;
    bool passes;
    for (int j = 0; j < k; j++)
        sum_c += clip_prob(p[j], &passes);
    double c_label = clip_prob(p[label], &passes);
    for (int j = 0; d && j < k; j++) {
        double c = clip_prob(p[j], &passes);
        double g = 1.0 / sum_c - (j == label ? 1.0 / c : 0.0);
        d[j] = passes ? (float)(scale * g) : 0.0f;
    }
    return log(sum_c) - log(c_label);
}

/* Keras: -(t log(c + eps) + (1 - t) log(1 - c + eps)), c = clip(p). */
static double binary_ce_probs(const float *p, const float *y, int k, float *d, double scale,
                              const nn_loss_args *a)
{
    double loss = 0;
    for (int j = 0; j < k; j++) {
        bool passes;
        double c = clip_prob(p[j], &passes), t = smooth(y[j], a->label_smoothing, 0.5);
        double pos = c + CLIP_EPS, neg = 1.0 - c + CLIP_EPS;
        loss -= t * log(pos) + (1.0 - t) * log(neg);
        if (d)
            d[j] = passes ? (float)(scale / k * ((1.0 - t) / neg - t / pos)) : 0.0f;
    }
    return loss / k;
}

/* ---- element-wise losses: the mean over the last axis of f(out - y) ------------------- */

/* f(e) and f'(e) of one error e = out - y. */
typedef double error_fn(double e, double *slope, const nn_loss_args *a);

static double elementwise(error_fn *f, const float *p, const float *y, int k, float *d,
                          double scale, const nn_loss_args *a)
{
    double loss = 0;
    for (int j = 0; j < k; j++) {
        double slope;
        loss += f((double)p[j] - y[j], &slope, a);
        if (d)
            d[j] = (float)(scale * slope / k);
    }
    return loss / k;
}

static double squared(double e, double *slope, const nn_loss_args *a)
{
    (void)a;
    *slope = 2.0 * e;
    return e * e;
}

/* TensorFlow's gradient of |e| is sign(e): 0 at 0. */
static double absolute(double e, double *slope, const nn_loss_args *a)
{
    (void)a;
    *slope = (e > 0) - (e < 0);
    return fabs(e);
}

/* Keras: e^2 / 2 where |e| <= delta, else delta |e| - delta^2 / 2. */
static double huber(double e, double *slope, const nn_loss_args *a)
{
    double delta = a->delta;
    if (fabs(e) <= delta) {
        *slope = e;
        return 0.5 * e * e;
    }
    *slope = e > 0 ? delta : -delta;
    return delta * fabs(e) - 0.5 * delta * delta;
}

/* Keras: e + softplus(-2e) - log 2, which is log(cosh(e)) without overflow;
 * its derivative is tanh(e). */
static double log_cosh(double e, double *slope, const nn_loss_args *a)
{
    (void)a;
    *slope = tanh(e);
    double x = -2.0 * e;
    double softplus = x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
    return e + softplus - log(2.0);
}

#define ELEMENTWISE(name, f)                                                              \
    static double name(const float *p, const float *y, int k, float *d, double scale,     \
                       const nn_loss_args *a)                                             \
    {                                                                                     \
        return elementwise(f, p, y, k, d, scale, a);                                      \
    }
ELEMENTWISE(mse, squared)
ELEMENTWISE(mae, absolute)
ELEMENTWISE(huber_loss, huber)
ELEMENTWISE(log_cosh_loss, log_cosh)

/* Keras: sum t log(t / p) with t = clip(y, eps, 1), p = clip(out, eps, 1). */
static double kl_divergence(const float *p, const float *y, int k, float *d, double scale,
                            const nn_loss_args *a)
{
    (void)a;
    double loss = 0;
    for (int j = 0; j < k; j++) {
        bool passes, ignored;
        double t = clip_to(y[j], CLIP_EPS, 1.0f, &ignored);
        double q = clip_to(p[j], CLIP_EPS, 1.0f, &passes);
        loss += t * log(t / q);
        if (d)
            d[j] = passes ? (float)(-scale * t / q) : 0.0f;
    }
    return loss;
}

/* ---- the table ------------------------------------------------------------------------ */

typedef struct {
    nn_loss_kind kind;
    const char *name;              /* Keras's, for messages */
    nn_label_form labels;
    position_loss_fn *from_outputs;
    position_loss_fn *from_logits; /* NULL: the loss takes final outputs only */
    nn_output_act fused;           /* the activation it computes from logits, or LINEAR */
} loss_row;

static const loss_row losses[] = {
    {NN_LOSS_MSE, "mean_squared_error", NN_LABELS_PER_UNIT, mse, NULL, NN_OUT_LINEAR},
    {NN_LOSS_BINARY_CE, "binary_crossentropy", NN_LABELS_BINARY, binary_ce_probs,
     binary_ce_logits, NN_OUT_SIGMOID},
    {NN_LOSS_SPARSE_CE, "sparse_categorical_crossentropy", NN_LABELS_CLASS, sparse_ce_probs,
     sparse_ce_logits, NN_OUT_SOFTMAX},
    {NN_LOSS_CATEGORICAL_CE, "categorical_crossentropy", NN_LABELS_ONE_HOT,
     categorical_ce_probs, categorical_ce_logits, NN_OUT_SOFTMAX},
    {NN_LOSS_MAE, "mean_absolute_error", NN_LABELS_PER_UNIT, mae, NULL, NN_OUT_LINEAR},
    {NN_LOSS_HUBER, "huber", NN_LABELS_PER_UNIT, huber_loss, NULL, NN_OUT_LINEAR},
    {NN_LOSS_LOG_COSH, "log_cosh", NN_LABELS_PER_UNIT, log_cosh_loss, NULL, NN_OUT_LINEAR},
    {NN_LOSS_KL_DIVERGENCE, "kl_divergence", NN_LABELS_PER_UNIT, kl_divergence, NULL,
     NN_OUT_LINEAR},
};

static const loss_row *loss_row_of(const nn_model *m)
{
    for (size_t i = 0; i < sizeof losses / sizeof losses[0]; i++)
        if (losses[i].kind == m->loss)
            return &losses[i];
    return NULL;
}

const char *nn_loss_name(const nn_model *m)
{
    const loss_row *r = loss_row_of(m);
    return r ? r->name : "the loss";
}

nn_label_form nn_loss_labels(const nn_model *m)
{
    const loss_row *r = loss_row_of(m);
    return r ? r->labels : NN_LABELS_NONE;
}

int nn_label_width(const nn_model *m)
{
    return nn_loss_labels(m) == NN_LABELS_CLASS ? m->output_size / units(m) : m->output_size;
}

/* The row's function for the model's output: logits where the activation is
 * fused or the loss says from_logits, final outputs where the output is
 * linear; NULL for an activation the loss cannot take over. */
static position_loss_fn *pick_loss(const nn_model *m, const loss_row *r)
{
    if (m->output_act == NN_OUT_LINEAR)
        return m->loss_args.from_logits && r->from_logits ? r->from_logits : r->from_outputs;
    return m->output_act == r->fused ? r->from_logits : NULL;
}

/* A sparse label that is no class gives NaN, which the training loop reports. */
double nn_loss_weighted(const nn_model *m, const float *out, const float *y, const float *weights,
                        int n, float *dout)
{
    const loss_row *r = loss_row_of(m);
    position_loss_fn *loss = r ? pick_loss(m, r) : NULL;
    if (!loss) {
        if (m->loss == NN_LOSS_NONE)
            nn_error(NULL, "the model has no loss (no compile section): it can predict, not train");
        else
            nn_error(NULL, "the model's output activation is not fused with its loss");
        return NAN;
    }
    if (n <= 0)
        return 0.0;
    int k = units(m), positions = m->output_size / k;
    int ylen = r->labels == NN_LABELS_CLASS ? 1 : k;
    double count = (double)n * positions, sum = 0;
    for (int s = 0; s < n; s++) {
        double w = weights ? weights[s] : 1.0;
        for (int p = 0; p < positions; p++) {
            size_t at = (size_t)s * (size_t)m->output_size + (size_t)p * (size_t)k;
            const float *t = y + ((size_t)s * (size_t)positions + (size_t)p) * (size_t)ylen;
            sum += w * loss(out + at, t, k, dout ? dout + at : NULL, w / count, &m->loss_args);
        }
    }
    return sum / count;
}

double nn_loss(const nn_model *m, const float *out, const float *y, int n, float *dout)
{
    return nn_loss_weighted(m, out, y, NULL, n, dout);
}

/* Keras's class_weight map (data_adapter): the class of a label is its argmax
 * where it has several numbers, else the number itself, truncated. */
int nn_class_weights(const nn_model *m, const float *y, int n, float *weights)
{
    const nn_fit *fit = &m->fit;
    int width = nn_label_width(m);
    for (int s = 0; s < n; s++) {
        const float *t = y + (size_t)s * (size_t)width;
        int c = width > 1 ? nn_argmax(t, width) : t[0] >= 0 && t[0] < fit->n_class_weights
                                                      ? (int)t[0] : -1;
        if (c < 0 || c >= fit->n_class_weights)
            return nn_error(m->name, "a label of class %g has no weight in fit: class_weight "
                            "(which gives classes 0 to %d)", width > 1 ? (double)c : t[0],
                            fit->n_class_weights - 1);
        weights[s] = fit->class_weight[c];
    }
    return 0;
}

/* ---- predictions ----------------------------------------------------------------------- */

int nn_argmax(const float *x, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (x[j] > x[best])
            best = j;
    return best;
}

static void softmax(const float *z, float *p, int k)
{
    float zmax = z[nn_argmax(z, k)];
    double sum = 0;
    for (int j = 0; j < k; j++)
        sum += exp((double)z[j] - zmax);
    for (int j = 0; j < k; j++)
        p[j] = (float)(exp((double)z[j] - zmax) / sum);
}

static void apply_activation(const nn_model *m, nn_output_act act, const float *out,
                             float *probs, int n)
{
    int k = units(m);
    size_t total = (size_t)n * (size_t)m->output_size;
    if (n <= 0)
        return;
    switch (act) {
    case NN_OUT_SOFTMAX:
        for (size_t at = 0; at < total; at += (size_t)k)
            softmax(out + at, probs + at, k);
        break;
    case NN_OUT_SIGMOID:
        for (size_t i = 0; i < total; i++)
            probs[i] = (float)sigmoid(out[i]);
        break;
    case NN_OUT_LINEAR:
        memmove(probs, out, total * sizeof *probs);
        break;
    }
}

void nn_keras_output(const nn_model *m, const float *out, float *pred, int n)
{
    apply_activation(m, m->output_act, out, pred, n);
}

/* A from_logits loss's activation is applied too: predict shows probabilities. */
void nn_output_probs(const nn_model *m, const float *out, float *probs, int n)
{
    const loss_row *r = loss_row_of(m);
    nn_output_act act = m->output_act;
    if (act == NN_OUT_LINEAR && m->loss_args.from_logits && r && r->from_logits)
        act = r->fused;
    apply_activation(m, act, out, probs, n);
}

nn_output_kind nn_output_kind_of(const nn_model *m)
{
    nn_label_form labels = nn_loss_labels(m);
    if (m->output_size == 1 && (m->output_act == NN_OUT_SIGMOID || labels == NN_LABELS_BINARY))
        return NN_OUTPUT_BINARY;
    if (m->output_act == NN_OUT_SOFTMAX || labels == NN_LABELS_CLASS ||
        labels == NN_LABELS_ONE_HOT)
        return NN_OUTPUT_CLASSES;
    return NN_OUTPUT_NUMBERS;
}

int nn_class_count(const nn_model *m)
{
    return nn_output_kind_of(m) == NN_OUTPUT_BINARY ? 2 : m->output_size;
}

int nn_predicted_class(const nn_model *m, const float *probs, float *prob)
{
    if (m->output_size == 1) {
        int k = probs[0] > 0.5f;
        *prob = k ? probs[0] : 1.0f - probs[0];
        return k;
    }
    int k = nn_argmax(probs, m->output_size);
    *prob = probs[k];
    return k;
}
