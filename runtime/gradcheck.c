/* gradcheck.c - the generated backward pass against finite differences of
 * the loss, on a random batch, for every trainable tensor. Each forward runs
 * in training mode with the same pass (same dropout masks) from the same
 * parameters (BatchNormalization's moving statistics are put back).
 *
 * Design note: why a verdict can be trusted.
 *
 * The loss along one weight, L(t) = loss(w + t), is smooth except at kinks:
 * a ReLU input or a max-pooling winner that changes sign or place as t moves.
 * A central difference across a kink is off by up to half the jump in slope,
 * and at a kink the analytic gradient is only one of the one-sided slopes; so
 * near kinks a difference quotient is no evidence either way. Each entry is
 * therefore probed at five points t = -h, -h/2, 0, h/2, h, which give four
 * slopes s1..s4 over intervals of h/2, and
 *   estimate   D = (L(h/2) - L(-h/2)) / h, the mean of s2 and s3;
 *   roughness  r = max(|s1 - 2 s2 + s3|, |s2 - 2 s3 + s4|).
 * Where L is smooth the slopes lie on a line: r = L'''h^2/4, six times D's
 * own truncation error L'''h^2/24. One kink of slope jump J adds to the slopes
 * a step (0 before it, J after it, a fraction of J in the interval it falls
 * in), which no line fits; going through the intervals it can fall in gives
 * |D - L'(0)| <= r/2 in each (a kink at 0 itself: D is the mean of the two
 * one-sided slopes, r = |J|). So r is a measured bound on what a kink did to
 * D, and an entry agrees when
 *   |D - g| <= RTOL |g| + ATOL scale + r + noise
 * (r, not r/2: room for a second kink), where g is the analytic gradient,
 * scale the tensor's largest |g|, and noise the float forward pass's share:
 * each loss carries a rounding error of about a unit in the last place of a
 * float (u = 2^-24) times |L| (measured: at most 1.2 u |L| where L is smooth),
 * and D divides the difference of two by h: noise = NOISE_ULPS u |L| / h.
 * An entry whose r alone exceeds ROUGH_SKIP of what a wrong gradient would
 * show, |g| + ATOL scale, is skipped as non-smooth: it can neither pass nor
 * fail, and the output counts it.
 *
 * A convolution weight touches every position of a feature map, so one step
 * can cross many small kinks, whose steps can partly cancel in r. What they
 * do to D shrinks with h, what a wrong gradient does does not: an entry that
 * disagrees at h is probed again at h / REFINE, then h / REFINE^2, and fails
 * only if it disagrees at each (it is skipped if it is non-smooth there).
 * Float noise at the smallest step is still ~4e-6 |L|, under ATOL scale for
 * these models. Measured at seeds 0-9 on every model in models/ with a loss:
 * no false failure (horse_or_human's deepest biases needed the second step
 * down at one seed in ten), while a bias gradient scaled by 1.05 fails
 * (tests/test_gradcheck.c plants one).
 *
 * A tensor passes only if at least half the entries it aimed for were
 * checked, so a run that skipped nearly everything does not pass by default. */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* At most BATCH samples and CHECKS_PER_TENSOR entries per tensor; fewer of
 * both where a forward pass is big (see cost_plan), but never fewer than
 * MIN_CHECKS entries. */
enum { BATCH = 4, CHECKS_PER_TENSOR = 24, MIN_CHECKS = 8, REFINE = 4, NOISE_ULPS = 4 };
/* Activation floats written by all the probes' forward passes together: about
 * ten seconds of one core for a big convolutional network. */
#define WORK_BUDGET 2.5e9

#define STEP 1e-3
#define RTOL 1e-2
#define ATOL 1e-3
#define ROUGH_SKIP 0.5
#define FLOAT_ULP 0x1p-24

static void random_labels(const nn_model *m, float *y, int n, nn_rng *rng)
{
    int k = m->output_size;
    for (int s = 0; s < n; s++) {
        nn_label_form form = nn_loss_labels(m);
        if (form == NN_LABELS_CLASS) {
            y[s] = (float)(nn_rng_next(rng) % (uint64_t)k);
        } else if (form == NN_LABELS_ONE_HOT) {
            memset(y + s * k, 0, (size_t)k * sizeof *y);
            y[s * k + (int)(nn_rng_next(rng) % (uint64_t)k)] = 1.0f;
        } else if (form == NN_LABELS_BINARY) {
            for (int j = 0; j < k; j++)
                y[s * k + j] = (float)(nn_rng_next(rng) & 1);
        } else {
            for (int j = 0; j < k; j++)
                y[s * k + j] = 2.0f * nn_rng_uniform(rng) - 1.0f;
        }
    }
}

typedef struct {
    const nn_model *m;
    nn_batch b;
    float *params, *saved;
    nn_pass pass;
    double loss;           /* at the unperturbed parameters */
    int checks;            /* entries to check per tensor */
} Check;

static double loss_at(Check *c)
{
    memcpy(c->params, c->saved, c->m->n_params * sizeof *c->params);
    const float *out = c->m->forward(&c->pass, c->params, c->b.work, c->b.x, c->b.part);
    return nn_loss(c->m, out, c->b.y, c->b.part, NULL);
}

/* Biases and other zero-initialised tensors get small random values so that
 * their gradients are exercised away from a special point. */
static void jitter(const nn_model *m, float *params, nn_rng *rng)
{
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        if (t->init != NN_INIT_ZEROS || !t->trainable)
            continue;
        for (size_t k = 0; k < t->size; k++)
            params[t->offset + k] = 0.2f * nn_rng_uniform(rng) - 0.1f;
    }
}

typedef struct {
    double estimate, roughness;
} Probe;

/* The loss at five points around entry `at` (see the design note), with the
 * steps that float rounding of w + t actually took. */
static Probe probe(Check *c, size_t at, double h)
{
    static const double where[5] = {-1, -0.5, 0, 0.5, 1};
    float *w = c->saved + at, w0 = *w;
    double t[5], loss[5], slope[4];
    for (int i = 0; i < 5; i++) {
        *w = w0 + (float)(where[i] * h);
        t[i] = (double)*w - w0;
        loss[i] = where[i] == 0 ? c->loss : loss_at(c);
    }
    *w = w0;
    for (int i = 0; i < 4; i++)
        slope[i] = (loss[i + 1] - loss[i]) / (t[i + 1] - t[i]);
    return (Probe){
        (loss[3] - loss[1]) / (t[3] - t[1]),
        fmax(fabs(slope[0] - 2 * slope[1] + slope[2]), fabs(slope[1] - 2 * slope[2] + slope[3])),
    };
}

typedef enum { AGREES, DISAGREES, NON_SMOOTH } Verdict;

static Verdict judge(const Check *c, Probe p, double g, double scale, double h)
{
    double noise = NOISE_ULPS * FLOAT_ULP * fabs(c->loss) / h;
    /* r combines eight losses over h/2 where D has two over h: 8 x the noise. */
    if (p.roughness > ROUGH_SKIP * (fabs(g) + ATOL * scale) + 8 * noise)
        return NON_SMOOTH;
    double allowed = RTOL * fabs(g) + ATOL * scale + p.roughness + noise;
    return fabs(p.estimate - g) <= allowed ? AGREES : DISAGREES;
}

/* The verdict on one entry; *error is |D - g| at the step that decided. */
static Verdict check_entry(Check *c, size_t at, double g, double scale, double *error)
{
    Verdict v = DISAGREES;
    for (double h = STEP; v == DISAGREES && h >= STEP / (REFINE * REFINE); h /= REFINE) {
        Probe p = probe(c, at, h);
        v = judge(c, p, g, scale, h);
        *error = fabs(p.estimate - g);
    }
    return v;
}

/* The j-th entry to try: every entry of a small tensor in order, else
 * distinct random ones (tried[] remembers them). */
static size_t pick(const nn_tensor *t, int j, int tries, size_t *tried, nn_rng *rng)
{
    if (t->size == (size_t)tries)
        return (size_t)j;
    for (;;) {
        size_t k = nn_rng_next(rng) % t->size;
        bool seen = false;
        for (int i = 0; i < j && !seen; i++)
            seen = tried[i] == k;
        if (!seen)
            return tried[j] = k;
    }
}

/* Up to c->checks smooth entries, from at most twice as many tries. */
static bool check_tensor(Check *c, const nn_tensor *t, const float *grads, nn_rng *rng)
{
    int tries = t->size < 2 * (size_t)c->checks ? (int)t->size : 2 * c->checks;
    int wanted = tries < c->checks ? tries : c->checks;
    size_t tried[2 * CHECKS_PER_TENSOR];  /* c->checks <= CHECKS_PER_TENSOR */
    double scale = 0, worst = 0;
    for (size_t k = 0; k < t->size; k++)
        scale = fmax(scale, fabs(grads[t->offset + k]));
    int checked = 0, skipped = 0, failed = 0;
    for (int j = 0; j < tries && checked < wanted; j++) {
        size_t k = t->offset + pick(t, j, tries, tried, rng);
        double error = 0;
        Verdict v = check_entry(c, k, grads[k], scale, &error);
        if (v == NON_SMOOTH) {
            skipped++;
            continue;
        }
        checked++;
        failed += v == DISAGREES;
        worst = fmax(worst, error);
    }
    bool enough = 2 * checked >= wanted, ok = enough && !failed;
    printf("%-32s %3d checked %3d skipped as non-smooth  max error %.2e  relative %.2e  %s\n",
           t->name, checked, skipped, worst, worst / fmax(scale, 1e-3),
           ok ? "ok" : failed ? "FAILED" : "FAILED: too few smooth entries to judge");
    return ok;
}

/* Samples in the batch and entries per tensor, so that the probes' forward
 * passes (four per entry) write at most WORK_BUDGET floats: the most samples
 * up to BATCH with which every tensor gets CHECKS_PER_TENSOR entries, else one
 * sample and as many entries as fit (a big image model). */
static int cost_plan(const nn_model *m, int *checks)
{
    int tensors = 0;
    for (int i = 0; i < m->n_tensors; i++)
        tensors += m->tensors[i].trainable;
    double per_entry_sample = 4.0 * fmax(tensors, 1) * fmax((double)m->work_floats, 1);
    double n = fmin(BATCH, floor(WORK_BUDGET / (per_entry_sample * CHECKS_PER_TENSOR)));
    n = fmax(n, 1);
    *checks = (int)fmin(CHECKS_PER_TENSOR, fmax(MIN_CHECKS, WORK_BUDGET / (per_entry_sample * n)));
    return (int)n;
}

int nn_gradcheck(const nn_model *m, const nn_options *o)
{
    if (m->loss == NN_LOSS_NONE)
        return nn_error(m->name, "the model has no loss to check gradients of");
    uint64_t seed = o->has_seed ? o->seed : m->fit.seed;
    nn_rng rng = {seed ^ 0x5eedULL};
    Check c = {.m = m, .pass = {1, seed, 0}};
    nn_batch_init(&c.b, m, cost_plan(m, &c.checks));
    c.params = nn_alloc(m->n_params, sizeof *c.params);
    c.saved = nn_alloc(m->n_params, sizeof *c.saved);
    float *grads = nn_alloc(m->n_params, sizeof *grads);
    nn_init_params(m, c.saved, seed);
    jitter(m, c.saved, &rng);
    int n = c.b.part;
    /* Token ids where an Embedding reads the input: whole numbers below input_ids. */
    for (size_t i = 0; i < (size_t)n * (size_t)m->input_size; i++)
        c.b.x[i] = m->input_ids ? fminf(floorf(nn_rng_uniform(&rng) * (float)m->input_ids),
                                        (float)(m->input_ids - 1))
                                : nn_rng_uniform(&rng);
    random_labels(m, c.b.y, n, &rng);

    memcpy(c.params, c.saved, m->n_params * sizeof *c.params);
    const float *out = m->forward(&c.pass, c.params, c.b.work, c.b.x, n);
    nn_loss(m, out, c.b.y, n, c.b.dout);
    m->backward(&c.pass, c.params, grads, c.b.work, c.b.x, c.b.dout, n);

    c.loss = loss_at(&c);
    bool ok = true;
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].trainable)
            ok = check_tensor(&c, &m->tensors[i], grads, &rng) && ok;
    printf("gradcheck %s\n", ok ? "passed" : "FAILED");
    if (!ok)
        nn_error(m->name, "analytic and numerical gradients disagree (above)");
    free(grads);
    free(c.params);
    free(c.saved);
    nn_batch_free(&c.b);
    return ok ? 0 : -1;
}
