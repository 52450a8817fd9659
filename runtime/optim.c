/* optim.c - SGD, Adam and RMSprop with Keras's update rules, as loops over the
 * flat parameter buffer.
 *
 * Each optimizer walks the trainable tensors and updates params[off, off+size)
 * from grads at the same place. Its state buffers (m, v) have the layout of
 * params, so a tensor's state sits at the tensor's offset too:
 *
 *   SGD      m: the velocity (only when momentum > 0)
 *   Adam     m, v: the first and second moments
 *   RMSprop  v: the mean square of the gradient; m: the momentum (if > 0)
 *
 * The formulas are Keras's (tf.keras 2.x), not the papers': Adam folds the bias
 * correction into the learning rate and adds epsilon outside the square root
 * without correcting it, so a trained model matches Keras step by step.
 * Every update is element-wise, so threads cannot change the result.
 *
 * nn_optim_state / nn_optim_load turn the state into named arrays for
 * checkpoints ("optimizer.iterations", "optimizer.<tensor>.m", ...).
 */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many elements a tensor is updated by one thread: starting the
 * team would cost more than the loop. */
#define PARALLEL_MIN 32768

static bool uses_m(const nn_optimizer *c)
{
    return c->kind == NN_OPT_ADAM || c->momentum > 0;
}

static bool uses_v(const nn_optimizer *c)
{
    return c->kind == NN_OPT_ADAM || c->kind == NN_OPT_RMSPROP;
}

void nn_optim_init(nn_optim *o, const nn_model *m, const nn_optimizer *cfg)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->model = m;
    if (uses_m(cfg))
        o->m = nn_alloc(m->n_params, sizeof(float));
    if (uses_v(cfg))
        o->v = nn_alloc(m->n_params, sizeof(float));
}

void nn_optim_free(nn_optim *o)
{
    free(o->m);
    free(o->v);
    o->m = o->v = NULL;
}

/* ---- the update rules, one tensor at a time ------------------------------- */

static void sgd_update(const nn_optimizer *c, float *restrict w, const float *restrict g,
                       float *restrict vel, size_t n)
{
    const float lr = c->learning_rate, mu = c->momentum;
    if (!vel) {
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++)
            w[i] -= lr * g[i];
    } else if (c->nesterov) {
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            vel[i] = mu * vel[i] - lr * g[i];
            w[i] += mu * vel[i] - lr * g[i];
        }
    } else {
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            vel[i] = mu * vel[i] - lr * g[i];
            w[i] += vel[i];
        }
    }
}

/* lr_t carries Adam's bias correction, computed once per step. */
static void adam_update(const nn_optimizer *c, float lr_t, float *restrict w,
                        const float *restrict g, float *restrict m, float *restrict v, size_t n)
{
    const float b1 = c->beta_1, b2 = c->beta_2, eps = c->epsilon;
    const float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + one_b1 * g[i];
        v[i] = b2 * v[i] + one_b2 * g[i] * g[i];
        w[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
    }
}

/* Keras's RMSprop with centered=False; mom is NULL without momentum. With
 * momentum Keras calls TensorFlow's ApplyRMSProp kernel, which puts epsilon
 * inside the square root; without, its own Python, which adds it outside. */
static void rmsprop_update(const nn_optimizer *c, float *restrict w, const float *restrict g,
                           float *restrict mom, float *restrict avg, size_t n)
{
    const float lr = c->learning_rate, rho = c->rho, one_rho = 1.0f - rho;
    const float mu = c->momentum, eps = c->epsilon;
    if (!mom) {
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            avg[i] = rho * avg[i] + one_rho * g[i] * g[i];
            w[i] -= lr * g[i] / (sqrtf(avg[i]) + eps);
        }
    } else {
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
        for (size_t i = 0; i < n; i++) {
            avg[i] = rho * avg[i] + one_rho * g[i] * g[i];
            mom[i] = mu * mom[i] + lr * g[i] / sqrtf(avg[i] + eps);
            w[i] -= mom[i];
        }
    }
}

/* Adam's learning rate at step iterations+1. The powers are taken in double:
 * beta_2^t in float loses its digits after a few thousand steps. */
static float adam_lr(const nn_optim *o)
{
    double t = (double)o->iterations + 1.0;
    double b1 = o->cfg.beta_1, b2 = o->cfg.beta_2;
    return (float)(o->cfg.learning_rate * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)));
}

void nn_optim_step(nn_optim *o, float *params, const float *grads)
{
    const nn_model *model = o->model;
    float lr_t = o->cfg.kind == NN_OPT_ADAM ? adam_lr(o) : 0.0f;
    for (int k = 0; k < model->n_tensors; k++) {
        const nn_tensor *t = &model->tensors[k];
        if (!t->trainable)
            continue;
        float *w = params + t->offset;
        const float *g = grads + t->offset;
        float *m = o->m ? o->m + t->offset : NULL;
        float *v = o->v ? o->v + t->offset : NULL;
        switch (o->cfg.kind) {
        case NN_OPT_SGD: sgd_update(&o->cfg, w, g, m, t->size); break;
        case NN_OPT_ADAM: adam_update(&o->cfg, lr_t, w, g, m, v, t->size); break;
        case NN_OPT_RMSPROP: rmsprop_update(&o->cfg, w, g, m, v, t->size); break;
        }
    }
    o->iterations++;
}

/* ---- checkpoints ------------------------------------------------------------ */

#define ITERATIONS_NAME "optimizer.iterations"

/* The state buffers in the order they are saved, with their name suffixes. */
static const char *const buffer_names[2] = {"m", "v"};

static float *state_buffer(const nn_optim *o, int b)
{
    return b == 0 ? o->m : o->v;
}

/* "optimizer.<tensor>.<buffer>" into name, or -1 if it does not fit. */
static int state_name(char name[128], const nn_tensor *t, int b)
{
    int len = snprintf(name, 128, "optimizer.%s.%s", t->name, buffer_names[b]);
    if (len < 0 || len >= 128)
        return nn_error(NULL, "tensor name '%s' is too long for a checkpoint", t->name);
    return 0;
}

static int count_state_arrays(const nn_optim *o)
{
    int buffers = (o->m != NULL) + (o->v != NULL), trainable = 0;
    for (int k = 0; k < o->model->n_tensors; k++)
        trainable += o->model->tensors[k].trainable != 0;
    return 1 + buffers * trainable;
}

int nn_optim_state(const nn_optim *o, nn_array *out, int max)
{
    int need = count_state_arrays(o);
    if (need > max)
        return nn_error(NULL, "optimizer state needs %d arrays, room for %d", need, max);

    nn_array *a = &out[0];
    memset(a, 0, sizeof *a);
    snprintf(a->name, sizeof a->name, "%s", ITERATIONS_NAME);
    a->dtype = NN_I64;
    a->size = 1;
    a->i = nn_alloc(1, sizeof(int64_t));
    a->i[0] = o->iterations;

    int n = 1;
    for (int k = 0; k < o->model->n_tensors; k++) {
        const nn_tensor *t = &o->model->tensors[k];
        for (int b = 0; b < 2 && t->trainable; b++) {
            if (!state_buffer(o, b))
                continue;
            a = &out[n];
            memset(a, 0, sizeof *a);
            if (state_name(a->name, t, b) < 0) {
                for (int j = 0; j < n; j++)
                    nn_array_free(&out[j]);
                return -1;
            }
            a->dtype = NN_F32;
            a->rank = t->rank;
            memcpy(a->shape, t->shape, sizeof a->shape);
            a->size = t->size;
            a->f = nn_alloc(t->size, sizeof(float));
            memcpy(a->f, state_buffer(o, b) + t->offset, t->size * sizeof(float));
            n++;
        }
    }
    return n;
}

/* The saved array must have the tensor's shape exactly. */
static int check_state_array(const nn_array *a, const char *name, const nn_tensor *t)
{
    if (!a)
        return nn_error(NULL, "the checkpoint has no '%s' (saved with another optimizer?)", name);
    bool same = a->dtype == NN_F32 && a->f && a->rank == t->rank && a->size == t->size;
    for (int d = 0; same && d < t->rank; d++)
        same = a->shape[d] == t->shape[d];
    if (!same)
        return nn_error(NULL, "'%s' in the checkpoint is not a float array shaped like %s",
                        name, t->name);
    return 0;
}

/* Checks every array before copying any, so a bad checkpoint leaves o as it was. */
int nn_optim_load(nn_optim *o, const nn_array *arrays, int n)
{
    const nn_array *it = nn_npz_find(arrays, n, ITERATIONS_NAME);
    if (!it || it->dtype != NN_I64 || !it->i || it->size != 1 || it->i[0] < 0)
        return nn_error(NULL, "the checkpoint has no valid '%s'", ITERATIONS_NAME);

    for (int copy = 0; copy < 2; copy++) {
        for (int k = 0; k < o->model->n_tensors; k++) {
            const nn_tensor *t = &o->model->tensors[k];
            for (int b = 0; b < 2 && t->trainable; b++) {
                float *buf = state_buffer(o, b);
                char name[128];
                if (!buf)
                    continue;
                if (state_name(name, t, b) < 0)
                    return -1;
                const nn_array *a = nn_npz_find(arrays, n, name);
                if (!copy && check_state_array(a, name, t) < 0)
                    return -1;
                if (copy)
                    memcpy(buf + t->offset, a->f, t->size * sizeof(float));
            }
        }
    }
    o->iterations = it->i[0];
    return 0;
}
