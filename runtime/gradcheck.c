/* gradcheck.c - the generated backward pass against central differences of
 * the loss, on a random batch, for every trainable tensor. Each forward runs
 * in training mode with the same pass (same dropout masks) from the same
 * parameters (BatchNormalization's moving statistics are put back). */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* At most BATCH samples: fewer when one sample's activations are huge. */
enum { BATCH = 4, CHECKS_PER_TENSOR = 24 };

/* Relative to the largest gradient seen in the tensor: float forward passes
 * limit how well a difference quotient can agree. */
#define TOLERANCE 2e-2
#define STEP 1e-3f

static void random_labels(const nn_model *m, float *y, int n, nn_rng *rng)
{
    int k = m->output_size;
    for (int s = 0; s < n; s++) {
        if (m->loss == NN_LOSS_SPARSE_CE) {
            y[s] = (float)(nn_rng_next(rng) % (uint64_t)k);
        } else if (m->loss == NN_LOSS_CATEGORICAL_CE) {
            memset(y + s * k, 0, (size_t)k * sizeof *y);
            y[s * k + (int)(nn_rng_next(rng) % (uint64_t)k)] = 1.0f;
        } else if (m->loss == NN_LOSS_BINARY_CE) {
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

static bool check_tensor(Check *c, const nn_tensor *t, const float *grads, nn_rng *rng)
{
    int count = t->size < CHECKS_PER_TENSOR ? (int)t->size : CHECKS_PER_TENSOR;
    double scale = 0, worst = 0;
    for (size_t k = 0; k < t->size; k++)
        scale = fmax(scale, fabs(grads[t->offset + k]));
    for (int j = 0; j < count; j++) {
        size_t k = count == (int)t->size ? (size_t)j : nn_rng_next(rng) % t->size;
        float *w = c->saved + t->offset + k, w0 = *w;
        *w = w0 + STEP;
        double up = loss_at(c);
        *w = w0 - STEP;
        double down = loss_at(c);
        *w = w0;
        double numeric = (up - down) / (2.0 * STEP);
        worst = fmax(worst, fabs(numeric - grads[t->offset + k]));
    }
    double rel = worst / fmax(scale, 1e-3);
    bool ok = rel <= TOLERANCE;
    printf("%-40s %6d checked  max error %.2e  relative %.2e  %s\n", t->name, count, worst, rel,
           ok ? "ok" : "FAILED");
    return ok;
}

int nn_gradcheck(const nn_model *m, const nn_options *o)
{
    if (m->loss == NN_LOSS_NONE)
        return nn_error(m->name, "the model has no loss to check gradients of");
    uint64_t seed = o->has_seed ? o->seed : m->fit.seed;
    nn_rng rng = {seed ^ 0x5eedULL};
    Check c = {.m = m, .pass = {1, seed, 0}};
    nn_batch_init(&c.b, m, BATCH);
    c.params = nn_alloc(m->n_params, sizeof *c.params);
    c.saved = nn_alloc(m->n_params, sizeof *c.saved);
    float *grads = nn_alloc(m->n_params, sizeof *grads);
    nn_init_params(m, c.saved, seed);
    jitter(m, c.saved, &rng);
    int n = c.b.part;
    for (size_t i = 0; i < (size_t)n * (size_t)m->input_size; i++)
        c.b.x[i] = nn_rng_uniform(&rng);
    random_labels(m, c.b.y, n, &rng);

    memcpy(c.params, c.saved, m->n_params * sizeof *c.params);
    const float *out = m->forward(&c.pass, c.params, c.b.work, c.b.x, n);
    nn_loss(m, out, c.b.y, n, c.b.dout);
    m->backward(&c.pass, c.params, grads, c.b.work, c.b.x, c.b.dout, n);

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
