/* optim.c - Keras's optimizers (SGD, Adam, RMSprop, Nadam, Adamax, Adagrad,
 * AdamW) and its gradient clipping and weight decay, as loops over the flat
 * parameter buffer.
 *
 * One row per optimizer in `rows` below, indexed by nn_opt_kind: its state
 * buffers (checkpoint name, whether it exists only with momentum, whether it
 * starts at initial_accumulator_value), what it computes once per step
 * (prepare: bias corrections, Nadam's momentum schedule) and its update of one
 * tensor. The names, Keras defaults and arguments of each optimizer are the
 * compiler's row (compiler/model.c, optimizer_table); the two tables share the
 * nn_opt_kind numbering.
 *
 * Each optimizer walks the trainable tensors and updates params[off, off+size)
 * from grads at the same place. Its state buffers have the layout of params,
 * so a tensor's state sits at the tensor's offset too:
 *
 *   SGD      m: the velocity (only when momentum > 0)
 *   Adam     m, v: the first and second moments (AdamW likewise)
 *   RMSprop  v: the mean square of the gradient; m: the momentum (if > 0)
 *   Nadam    m, v: as Adam's
 *   Adamax   m: the first moment; u: the decayed largest |gradient|
 *   Adagrad  accumulator: the sum of squared gradients
 *
 * A step does what Keras 2.11+'s Optimizer.apply_gradients does
 * (keras/optimizers/optimizer.py): clip the gradients (clipnorm per tensor,
 * else global_clipnorm over all trainable tensors, else clipvalue element by
 * element: Keras applies only the first one given), then the decoupled weight
 * decay w -= lr * weight_decay * w, then the optimizer's update. The learning
 * rate is cfg.learning_rate as it is when the step starts: a schedule sets it
 * between steps, and nothing here keeps a copy.
 *
 * The formulas are Keras's (tf.keras 2.x), not the papers': Adam folds the bias
 * correction into the learning rate and adds epsilon outside the square root
 * without correcting it, so a trained model matches Keras step by step.
 * Every update is element-wise, so threads cannot change the result; the
 * norms for clipping are summed by one thread, in order, in double.
 *
 * nn_optim_state / nn_optim_load turn the state into named arrays for
 * checkpoints ("optimizer.iterations", "optimizer.<tensor>.m", ...).
 */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Below this many elements a tensor is updated by one thread: starting the
 * team would cost more than the loop. The update rules below are serial; a
 * tensor is split among threads in chunks of UPDATE_CHUNK elements
 * (update_tensor), or updated tile by tile inside a backward pass that was
 * given an nn_update (nn_update_span). Every rule is element-wise, so the
 * split changes no result. */
#define PARALLEL_MIN 32768
#define UPDATE_CHUNK 4096

/* Nadam's momentum schedule, u_t = beta_1 (1 - 0.5 * 0.96^t), as Keras 2.11+'s
 * keras/optimizers/nadam.py writes it (the legacy Nadam had 0.96^(0.004 t)). */
#define NADAM_DECAY 0.96

/* What one step's update needs besides the state: the same for every tensor. */
typedef struct {
    float lr;              /* cfg.learning_rate at this step */
    float lr_t;            /* Adam(W): lr sqrt(1 - b2^t) / (1 - b1^t); Adamax: lr / (1 - b1^t) */
    float m_coef, g_coef;  /* Nadam: m_hat = m_coef * m + g_coef * g */
    float v_coef;          /* Nadam: v_hat = v_coef * v, 1 / (1 - b2^t) */
} Step;

typedef void prepare_fn(nn_optim *o, Step *s);
typedef void update_fn(const nn_optimizer *c, const Step *s, float *restrict w,
                       const float *restrict g, float *const *state, size_t n);

typedef enum { ALWAYS, WITH_MOMENTUM } BufferUse;
typedef struct {
    const char *name;              /* in checkpoints: optimizer.<tensor>.<name> */
    BufferUse use;
    bool starts_at_accumulator;    /* initial_accumulator_value, not 0 */
} BufferSpec;

typedef struct {
    BufferSpec buffers[NN_OPT_BUFFERS];   /* name NULL: no such buffer */
    prepare_fn *prepare;                  /* NULL: the step needs only lr */
    update_fn *update;
} OptimizerRow;

/* ---- the update rules, one tensor at a time ------------------------------- */

static void sgd_update(const nn_optimizer *c, const Step *s, float *restrict w,
                       const float *restrict g, float *const *state, size_t n)
{
    const float lr = s->lr, mu = c->momentum;
    float *restrict vel = state[0];
    if (!vel) {
#pragma omp simd
        for (size_t i = 0; i < n; i++)
            w[i] -= lr * g[i];
    } else if (c->nesterov) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            vel[i] = mu * vel[i] - lr * g[i];
            w[i] += mu * vel[i] - lr * g[i];
        }
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            vel[i] = mu * vel[i] - lr * g[i];
            w[i] += vel[i];
        }
    }
}

/* s->lr_t carries Adam's bias correction (adam_prepare). AdamW's too: its
 * decay is the step's weight decay, done before. */
static void adam_update(const nn_optimizer *c, const Step *s, float *restrict w,
                        const float *restrict g, float *const *state, size_t n)
{
    const float b1 = c->beta_1, b2 = c->beta_2, eps = c->epsilon, lr_t = s->lr_t;
    const float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
    float *restrict m = state[0], *restrict v = state[1];
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + one_b1 * g[i];
        v[i] = b2 * v[i] + one_b2 * g[i] * g[i];
        w[i] -= lr_t * m[i] / (sqrtf(v[i]) + eps);
    }
}

/* Keras's RMSprop with centered=False; state[0] (the momentum) is NULL without
 * momentum. With momentum Keras calls TensorFlow's ApplyRMSProp kernel, which
 * puts epsilon inside the square root; without, its own Python, which adds it
 * outside. */
static void rmsprop_update(const nn_optimizer *c, const Step *s, float *restrict w,
                           const float *restrict g, float *const *state, size_t n)
{
    const float lr = s->lr, rho = c->rho, one_rho = 1.0f - rho;
    const float mu = c->momentum, eps = c->epsilon;
    float *restrict mom = state[0], *restrict avg = state[1];
    if (!mom) {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            avg[i] = rho * avg[i] + one_rho * g[i] * g[i];
            w[i] -= lr * g[i] / (sqrtf(avg[i]) + eps);
        }
    } else {
#pragma omp simd
        for (size_t i = 0; i < n; i++) {
            avg[i] = rho * avg[i] + one_rho * g[i] * g[i];
            mom[i] = mu * mom[i] + lr * g[i] / sqrtf(avg[i] + eps);
            w[i] -= mom[i];
        }
    }
}

/* Keras's Nadam (keras/optimizers/nadam.py): Adam's moments, then
 * m_hat = u_{t+1} m / (1 - prod_{i<=t+1} u_i) + (1 - u_t) g / (1 - prod_{i<=t} u_i),
 * v_hat = v / (1 - b2^t), w -= lr m_hat / (sqrt(v_hat) + eps). */
static void nadam_update(const nn_optimizer *c, const Step *s, float *restrict w,
                         const float *restrict g, float *const *state, size_t n)
{
    const float b1 = c->beta_1, b2 = c->beta_2, eps = c->epsilon, lr = s->lr;
    const float one_b1 = 1.0f - b1, one_b2 = 1.0f - b2;
    const float m_coef = s->m_coef, g_coef = s->g_coef, v_coef = s->v_coef;
    float *restrict m = state[0], *restrict v = state[1];
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + one_b1 * g[i];
        v[i] = b2 * v[i] + one_b2 * g[i] * g[i];
        w[i] -= lr * (m_coef * m[i] + g_coef * g[i]) / (sqrtf(v_coef * v[i]) + eps);
    }
}

/* Keras's Adamax (keras/optimizers/adamax.py): u = max(b2 u, |g|),
 * w -= lr m / ((1 - b1^t) (u + eps)); s->lr_t is lr / (1 - b1^t). */
static void adamax_update(const nn_optimizer *c, const Step *s, float *restrict w,
                          const float *restrict g, float *const *state, size_t n)
{
    const float b1 = c->beta_1, b2 = c->beta_2, eps = c->epsilon, lr_t = s->lr_t;
    const float one_b1 = 1.0f - b1;
    float *restrict m = state[0], *restrict u = state[1];
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        m[i] = b1 * m[i] + one_b1 * g[i];
        u[i] = fmaxf(b2 * u[i], fabsf(g[i]));
        w[i] -= lr_t * m[i] / (u[i] + eps);
    }
}

/* Keras's Adagrad (keras/optimizers/adagrad.py): epsilon inside the root. */
static void adagrad_update(const nn_optimizer *c, const Step *s, float *restrict w,
                           const float *restrict g, float *const *state, size_t n)
{
    const float lr = s->lr, eps = c->epsilon;
    float *restrict acc = state[0];
#pragma omp simd
    for (size_t i = 0; i < n; i++) {
        acc[i] += g[i] * g[i];
        w[i] -= lr * g[i] / sqrtf(acc[i] + eps);
    }
}

/* ---- what a step computes once ----------------------------------------------- */

/* The powers are taken in double: beta_2^t in float loses its digits after a
 * few thousand steps. t is the step being taken, iterations + 1. */
static double step_number(const nn_optim *o)
{
    return (double)o->iterations + 1.0;
}

static void adam_prepare(nn_optim *o, Step *s)
{
    double t = step_number(o), b1 = o->cfg.beta_1, b2 = o->cfg.beta_2;
    s->lr_t = (float)(s->lr * sqrt(1.0 - pow(b2, t)) / (1.0 - pow(b1, t)));
}

static void adamax_prepare(nn_optim *o, Step *s)
{
    s->lr_t = (float)(s->lr / (1.0 - pow(o->cfg.beta_1, step_number(o))));
}

static double nadam_factor(double beta_1, double t)
{
    return beta_1 * (1.0 - 0.5 * pow(NADAM_DECAY, t));
}

/* The running product of the factors is kept (Keras keeps it in a variable);
 * when it does not belong to the previous step (a resumed run) it is
 * recomputed from step 1, in the same order, so it has the same bits. */
static void nadam_prepare(nn_optim *o, Step *s)
{
    double t = step_number(o), b1 = o->cfg.beta_1, b2 = o->cfg.beta_2;
    if (o->product_steps != o->iterations) {
        o->product = 1.0;
        o->product_steps = 0;
    }
    while (o->product_steps < o->iterations + 1)
        o->product *= nadam_factor(b1, (double)++o->product_steps);
    double u_t = nadam_factor(b1, t), u_next = nadam_factor(b1, t + 1.0);
    s->m_coef = (float)(u_next / (1.0 - o->product * u_next));
    s->g_coef = (float)((1.0 - u_t) / (1.0 - o->product));
    s->v_coef = (float)(1.0 / (1.0 - pow(b2, t)));
}

static const OptimizerRow rows[NN_OPT_COUNT] = {
    [NN_OPT_SGD] = {{{"m", WITH_MOMENTUM, false}}, NULL, sgd_update},
    [NN_OPT_ADAM] = {{{"m", ALWAYS, false}, {"v", ALWAYS, false}}, adam_prepare, adam_update},
    [NN_OPT_RMSPROP] = {{{"m", WITH_MOMENTUM, false}, {"v", ALWAYS, false}}, NULL,
                        rmsprop_update},
    [NN_OPT_NADAM] = {{{"m", ALWAYS, false}, {"v", ALWAYS, false}}, nadam_prepare,
                      nadam_update},
    [NN_OPT_ADAMAX] = {{{"m", ALWAYS, false}, {"u", ALWAYS, false}}, adamax_prepare,
                       adamax_update},
    [NN_OPT_ADAGRAD] = {{{"accumulator", ALWAYS, true}}, NULL, adagrad_update},
    [NN_OPT_ADAMW] = {{{"m", ALWAYS, false}, {"v", ALWAYS, false}}, adam_prepare, adam_update},
};

static const OptimizerRow *row_of(const nn_optim *o)
{
    return &rows[o->cfg.kind];
}

/* One step's update as a backward pass applies it (nn_update_span). */
struct nn_update {
    const nn_optimizer *cfg;
    const OptimizerRow *row;
    Step step;
    float *params;
    float *state[NN_OPT_BUFFERS];   /* laid out as params; NULL when unused */
};

/* params[off, off+n) from g: the row's rule on the state at the same place. */
static void update_range(const nn_update *u, size_t off, const float *g, size_t n)
{
    float *state[NN_OPT_BUFFERS];
    for (int b = 0; b < NN_OPT_BUFFERS; b++)
        state[b] = u->state[b] ? u->state[b] + off : NULL;
    u->row->update(u->cfg, &u->step, u->params + off, g, state, n);
}

void nn_update_span(const nn_update *u, const float *w, const float *g, size_t n)
{
    update_range(u, (size_t)(w - u->params), g, n);
}

/* A whole tensor, in chunks shared among the threads. */
static void update_tensor(const nn_update *u, size_t off, const float *g, size_t n)
{
    #pragma omp parallel for schedule(static) if (n >= PARALLEL_MIN)
    for (size_t c = 0; c < n; c += UPDATE_CHUNK)
        update_range(u, off + c, g + c, n - c < UPDATE_CHUNK ? n - c : UPDATE_CHUNK);
}

/* ---- the state --------------------------------------------------------------------- */

static bool buffer_used(const BufferSpec *b, const nn_optimizer *c)
{
    return b->name && (b->use == ALWAYS || c->momentum > 0);
}

static bool clips(const nn_optimizer *c)
{
    return c->clipnorm > 0 || c->global_clipnorm > 0 || c->clipvalue > 0;
}

void nn_optim_init(nn_optim *o, const nn_model *m, const nn_optimizer *cfg)
{
    memset(o, 0, sizeof *o);
    o->cfg = *cfg;
    o->model = m;
    o->product = 1.0;
    const OptimizerRow *row = row_of(o);
    for (int b = 0; b < NN_OPT_BUFFERS; b++) {
        if (!buffer_used(&row->buffers[b], cfg))
            continue;
        o->state[b] = nn_alloc(m->n_params, sizeof(float));
        for (size_t i = 0; row->buffers[b].starts_at_accumulator && i < m->n_params; i++)
            o->state[b][i] = cfg->initial_accumulator_value;
    }
    if (clips(cfg))
        o->clipped = nn_alloc(m->n_params, sizeof(float));
    o->update = nn_alloc(1, sizeof *o->update);
}

void nn_optim_free(nn_optim *o)
{
    for (int b = 0; b < NN_OPT_BUFFERS; b++) {
        free(o->state[b]);
        o->state[b] = NULL;
    }
    free(o->clipped);
    o->clipped = NULL;
    free(o->update);
    o->update = NULL;
}

/* ---- clipping and weight decay ---------------------------------------------------- */

static double sum_squares(const float *g, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += (double)g[i] * g[i];
    return sum;
}

/* TensorFlow's clip_by_norm and clip_by_global_norm: g * clip / max(norm, clip). */
static void scale_into(float *out, const float *g, size_t n, double norm, double clip)
{
    float scale = (float)(clip / fmax(norm, clip));
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = g[i] * scale;
}

static void clamp_into(float *out, const float *g, size_t n, float limit)
{
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        out[i] = fminf(fmaxf(g[i], -limit), limit);
}

/* Keras's _clip_gradients: the gradients the update is to use. */
static const float *clip_gradients(nn_optim *o, const float *grads)
{
    const nn_optimizer *c = &o->cfg;
    const nn_model *m = o->model;
    if (!o->clipped)
        return grads;
    double global = 0;
    for (int k = 0; c->global_clipnorm > 0 && !(c->clipnorm > 0) && k < m->n_tensors; k++)
        if (m->tensors[k].trainable)
            global += sum_squares(grads + m->tensors[k].offset, m->tensors[k].size);
    for (int k = 0; k < m->n_tensors; k++) {
        const nn_tensor *t = &m->tensors[k];
        const float *g = grads + t->offset;
        float *out = o->clipped + t->offset;
        if (!t->trainable)
            continue;
        if (c->clipnorm > 0)
            scale_into(out, g, t->size, sqrt(sum_squares(g, t->size)), c->clipnorm);
        else if (c->global_clipnorm > 0)
            scale_into(out, g, t->size, sqrt(global), c->global_clipnorm);
        else
            clamp_into(out, g, t->size, c->clipvalue);
    }
    return o->clipped;
}

/* Keras's _apply_weight_decay: w -= w * weight_decay * lr, before the update. */
static void decay_weights(float *w, size_t n, float decay)
{
#pragma omp parallel for simd if (n >= PARALLEL_MIN)
    for (size_t i = 0; i < n; i++)
        w[i] -= w[i] * decay;
}

const nn_update *nn_optim_begin(nn_optim *o, float *params)
{
    nn_update *u = o->update;
    *u = (nn_update){.cfg = &o->cfg, .row = row_of(o), .step = {.lr = o->cfg.learning_rate},
                     .params = params};
    for (int b = 0; b < NN_OPT_BUFFERS; b++)
        u->state[b] = o->state[b];
    if (u->row->prepare)
        u->row->prepare(o, &u->step);
    return u;
}

void nn_optim_end(nn_optim *o)
{
    o->iterations++;
}

void nn_optim_step(nn_optim *o, float *params, const float *grads)
{
    const nn_model *model = o->model;
    const nn_update *u = nn_optim_begin(o, params);
    const float *use = clip_gradients(o, grads);
    const float decay = o->cfg.weight_decay * u->step.lr;
    for (int k = 0; k < model->n_tensors; k++) {
        const nn_tensor *t = &model->tensors[k];
        if (!t->trainable)
            continue;
        if (decay > 0)
            decay_weights(params + t->offset, t->size, decay);
        update_tensor(u, t->offset, use + t->offset, t->size);
    }
    nn_optim_end(o);
}

/* ---- checkpoints ------------------------------------------------------------ */

#define ITERATIONS_NAME "optimizer.iterations"

/* "optimizer.<tensor>.<buffer>" into name, or -1 if it does not fit. */
static int state_name(const nn_optim *o, char name[128], const nn_tensor *t, int b)
{
    int len = snprintf(name, 128, "optimizer.%s.%s", t->name, row_of(o)->buffers[b].name);
    if (len < 0 || len >= 128)
        return nn_error(NULL, "tensor name '%s' is too long for a checkpoint", t->name);
    return 0;
}

static int count_state_arrays(const nn_optim *o)
{
    int buffers = 0, trainable = 0;
    for (int b = 0; b < NN_OPT_BUFFERS; b++)
        buffers += o->state[b] != NULL;
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
        for (int b = 0; b < NN_OPT_BUFFERS && t->trainable; b++) {
            if (!o->state[b])
                continue;
            a = &out[n];
            memset(a, 0, sizeof *a);
            if (state_name(o, a->name, t, b) < 0) {
                for (int j = 0; j < n; j++)
                    nn_array_free(&out[j]);
                return -1;
            }
            a->dtype = NN_F32;
            a->rank = t->rank;
            memcpy(a->shape, t->shape, sizeof a->shape);
            a->size = t->size;
            a->f = nn_alloc(t->size, sizeof(float));
            memcpy(a->f, o->state[b] + t->offset, t->size * sizeof(float));
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
            for (int b = 0; b < NN_OPT_BUFFERS && t->trainable; b++) {
                float *buf = o->state[b];
                char name[128];
                if (!buf)
                    continue;
                if (state_name(o, name, t, b) < 0)
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
