/* loss.c - Keras's losses, their gradients, and Keras's accuracy.
 *
 * A batch of n outputs of K = output_size numbers each. Where the model's last
 * activation is fused with the loss (softmax with a categorical cross-entropy,
 * sigmoid with the binary one) the outputs are logits and the loss is computed
 * from them in the stable form Keras uses for from_logits. Otherwise the
 * outputs are final and we take Keras's probability path with its clipping to
 * [1e-7, 1 - 1e-7] (and its quirks: categorical CE first divides p by its sum,
 * binary CE adds epsilon inside the log), so a model whose last layer is not
 * the matching activation still gets Keras's numbers.
 *
 * Labels: one float class index per sample for sparse categorical CE, K floats
 * per sample otherwise. The loss is the mean over samples (and, for MSE and
 * binary CE, over the K outputs, as Keras averages over the last axis). Sums
 * are in double; the gradient is d(mean loss)/d(out).
 */
#include "rt.h"

#include <math.h>
#include <string.h>

/* Keras's backend epsilon, a float32 in Keras. */
#define CLIP_EPS 1e-7f

/* One sample's loss; also writes scale * d(loss)/d(z) into d unless d is NULL. */
typedef double sample_loss_fn(const float *z, const float *y, int k, float *d, double scale);

/* The class index a sparse label stands for, or -1 if it is none (Keras
 * truncates the float label to an integer). */
static int class_label(float y, int k)
{
    return y >= 0 && y < (float)k ? (int)y : -1;
}

static int label_size(const nn_model *m)
{
    return m->loss == NN_LOSS_SPARSE_CE ? 1 : m->output_size;
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
static float clip_prob(float p, bool *passes)
{
    *passes = p >= CLIP_EPS && p <= 1.0f - CLIP_EPS;
    return p < CLIP_EPS ? CLIP_EPS : p > 1.0f - CLIP_EPS ? 1.0f - CLIP_EPS : p;
}

/* ---- from logits ---------------------------------------------------------------- */

/* -sum_j t_j log softmax(z)_j with t the one-hot of label, or y if label < 0.
 * The gradient, sum(t) softmax(z) - t, allows targets that do not sum to one. */
static double softmax_ce(const float *z, const float *y, int label, int k, float *d, double scale)
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
        double t = label >= 0 ? (j == label) : y[j];
        loss += t * (lse - z[j]);
        sum_t += t;
    }
    for (int j = 0; d && j < k; j++) {
        double t = label >= 0 ? (j == label) : y[j];
        d[j] = (float)(scale * (sum_t * exp(z[j] - lse) - t));
    }
    return loss;
}

static double sparse_ce_logits(const float *z, const float *y, int k, float *d, double scale)
{
    int label = class_label(y[0], k);
    if (label < 0) {
        if (d)
            memset(d, 0, (size_t)k * sizeof *d);
        return NAN;
    }
    return softmax_ce(z, y, label, k, d, scale);
}

static double categorical_ce_logits(const float *z, const float *y, int k, float *d, double scale)
{
    return softmax_ce(z, y, -1, k, d, scale);
}

/* max(z, 0) - z y + log(1 + e^-|z|): never overflows, whatever z is. */
static double binary_ce_logits(const float *z, const float *y, int k, float *d, double scale)
{
    double loss = 0;
    for (int j = 0; j < k; j++) {
        double zj = z[j];
        loss += (zj > 0 ? zj : 0) - zj * y[j] + log1p(exp(-fabs(zj)));
        if (d)
            d[j] = (float)(scale / k * (sigmoid(zj) - y[j]));
    }
    return loss / k;
}

/* ---- from final outputs ------------------------------------------------------------ */

static double mse(const float *p, const float *y, int k, float *d, double scale)
{
    double loss = 0;
    for (int j = 0; j < k; j++) {
        double e = (double)p[j] - y[j];
        loss += e * e;
        if (d)
            d[j] = (float)(scale * 2.0 * e / k);
    }
    return loss / k;
}

/* Keras: q = p / sum(p), then -sum y log clip(q). With g = dL/dq, the
 * normalisation turns it into dL/dp_j = (g_j - sum_k g_k q_k) / sum(p). */
static double categorical_ce_probs(const float *p, const float *y, int k, float *d, double scale)
{
    double sum_p = 0;
    for (int j = 0; j < k; j++)
        sum_p += p[j];
    double loss = 0, g_dot_q = 0;
    for (int j = 0; j < k; j++) {
        bool passes;
        float q = (float)(p[j] / sum_p);
        double c = clip_prob(q, &passes);
        loss -= y[j] * log(c);
        g_dot_q += passes ? -y[j] : 0.0;   /* g_j q_j = -y_j where it passes */
    }
    for (int j = 0; d && j < k; j++) {
        bool passes;
        float q = (float)(p[j] / sum_p);
        double c = clip_prob(q, &passes);
        double g = passes ? -y[j] / c : 0.0;
        d[j] = (float)(scale * (g - g_dot_q) / sum_p);
    }
    return loss;
}

/* Keras clips p, takes its log and applies sparse softmax CE to that:
 * -log(c_label / sum(c)) with c = clip(p). */
static double sparse_ce_probs(const float *p, const float *y, int k, float *d, double scale)
{
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

/* Keras: -(y log(c + eps) + (1 - y) log(1 - c + eps)), c = clip(p). */
static double binary_ce_probs(const float *p, const float *y, int k, float *d, double scale)
{
    double loss = 0;
    for (int j = 0; j < k; j++) {
        bool passes;
        double c = clip_prob(p[j], &passes);
        double a = c + CLIP_EPS, b = 1.0 - c + CLIP_EPS;
        loss -= y[j] * log(a) + (1.0 - y[j]) * log(b);
        if (d)
            d[j] = passes ? (float)(scale / k * ((1.0 - y[j]) / b - y[j] / a)) : 0.0f;
    }
    return loss / k;
}

/* ---- the batch ---------------------------------------------------------------------- */

static sample_loss_fn *pick_loss(const nn_model *m)
{
    bool linear = m->output_act == NN_OUT_LINEAR;
    switch (m->loss) {
    case NN_LOSS_MSE:
        return linear ? mse : NULL;
    case NN_LOSS_BINARY_CE:
        return linear ? binary_ce_probs : m->output_act == NN_OUT_SIGMOID ? binary_ce_logits : NULL;
    case NN_LOSS_SPARSE_CE:
        return linear ? sparse_ce_probs : m->output_act == NN_OUT_SOFTMAX ? sparse_ce_logits : NULL;
    case NN_LOSS_CATEGORICAL_CE:
        return linear ? categorical_ce_probs
                      : m->output_act == NN_OUT_SOFTMAX ? categorical_ce_logits : NULL;
    case NN_LOSS_NONE:
        return NULL;
    }
    return NULL;
}

/* A sparse label that is no class gives NaN, which the training loop reports. */
double nn_loss(const nn_model *m, const float *out, const float *y, int n, float *dout)
{
    sample_loss_fn *loss = pick_loss(m);
    if (!loss) {
        if (m->loss == NN_LOSS_NONE)
            nn_error(NULL, "the model has no loss (no compile section): it can predict, not train");
        else
            nn_error(NULL, "the model's output activation is not fused with its loss");
        return NAN;
    }
    if (n <= 0)
        return 0.0;
    int k = m->output_size, ylen = label_size(m);
    double sum = 0;
    for (int s = 0; s < n; s++) {
        size_t at = (size_t)s * (size_t)k;
        sum += loss(out + at, y + (size_t)s * (size_t)ylen, k, dout ? dout + at : NULL, 1.0 / n);
    }
    return sum / n;
}

/* ---- accuracy and predictions ----------------------------------------------------------- */

int nn_argmax(const float *x, int k)
{
    int best = 0;
    for (int j = 1; j < k; j++)
        if (x[j] > x[best])
            best = j;
    return best;
}

/* Keras picks the accuracy from the shapes: one output is binary accuracy
 * (prediction thresholded at 0.5, compared exactly with the label), one label
 * per sample is sparse categorical, else categorical (argmax vs argmax). The
 * argmax of logits is that of their softmax. */
int nn_correct(const nn_model *m, const float *out, const float *y, int n)
{
    int k = m->output_size, ylen = label_size(m), correct = 0;
    for (int s = 0; s < n; s++) {
        const float *z = out + (size_t)s * (size_t)k, *t = y + (size_t)s * (size_t)ylen;
        if (k == 1) {
            float p;
            nn_output_probs(m, z, &p, 1);
            correct += t[0] == (p > 0.5f ? 1.0f : 0.0f);
        } else if (ylen == 1) {
            correct += nn_argmax(z, k) == class_label(t[0], k);
        } else {
            correct += nn_argmax(z, k) == nn_argmax(t, k);
        }
    }
    return correct;
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

void nn_output_probs(const nn_model *m, const float *out, float *probs, int n)
{
    int k = m->output_size;
    size_t total = (size_t)n * (size_t)k;
    if (n <= 0)
        return;
    switch (m->output_act) {
    case NN_OUT_SOFTMAX:
        for (int s = 0; s < n; s++)
            softmax(out + (size_t)s * k, probs + (size_t)s * k, k);
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

nn_output_kind nn_output_kind_of(const nn_model *m)
{
    if (m->output_size == 1 && (m->output_act == NN_OUT_SIGMOID || m->loss == NN_LOSS_BINARY_CE))
        return NN_OUTPUT_BINARY;
    if (m->output_act == NN_OUT_SOFTMAX || m->loss == NN_LOSS_SPARSE_CE ||
        m->loss == NN_LOSS_CATEGORICAL_CE)
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
