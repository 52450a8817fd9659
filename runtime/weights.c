/* weights.c - initial weights, and weight files in Keras's names and layouts.
 *
 * A weight file is an .npz: one float32 array per tensor ("dense.kernel"),
 * and for a checkpoint the optimizer's arrays ("optimizer.*") and the loop's
 * ("state.*": the epoch, the step within it, the shuffling generator, the
 * unfinished epoch's sums), so --resume continues exactly. */
#include "rt.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

void nn_init_params(const nn_model *m, float *params, uint64_t seed)
{
    nn_rng rng = {seed};
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        float *p = params + t->offset;
        switch (t->init) {
        case NN_INIT_ZEROS:
            memset(p, 0, t->size * sizeof *p);
            break;
        case NN_INIT_ONES:
            for (size_t k = 0; k < t->size; k++)
                p[k] = 1.0f;
            break;
        case NN_INIT_VALUES:
            memcpy(p, t->values, t->size * sizeof *p);
            break;
        case NN_INIT_GLOROT_UNIFORM: {
            /* Keras: uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)). */
            float limit = sqrtf(6.0f / (float)(t->fan_in + t->fan_out));
            for (size_t k = 0; k < t->size; k++)
                p[k] = (2.0f * nn_rng_uniform(&rng) - 1.0f) * limit;
            break;
        }
        }
    }
}

static nn_array tensor_array(const nn_tensor *t, float *data)
{
    nn_array a = {0};
    snprintf(a.name, sizeof a.name, "%s", t->name);
    a.dtype = NN_F32;
    a.rank = t->rank;
    memcpy(a.shape, t->shape, sizeof a.shape);
    a.size = t->size;
    a.f = data;
    return a;
}

static nn_array int_array(const char *name, int64_t *value)
{
    nn_array a = {0};
    snprintf(a.name, sizeof a.name, "%s", name);
    a.dtype = NN_I64;
    a.size = 1;
    a.i = value;
    return a;
}

/* The loop's state, one int64 array each. A value that is not an int64 is
 * stored as its 64 bits (the generator's state, the seed, the float64 sums)
 * so that it comes back exactly. The first STATE_REQUIRED are in every
 * checkpoint; the others (the unfinished epoch's) were added later, and a
 * checkpoint without them was written at an epoch's end, where they are 0. */
enum { STATE_EPOCH, STATE_RNG, STATE_SEED, STATE_STEP, STATE_SAMPLE, STATE_CORRECT,
       STATE_LOSS_SUM, STATE_SECONDS, STATE_COUNT, STATE_REQUIRED = STATE_SEED + 1 };
static const char *const state_names[STATE_COUNT] = {
    "state.epoch", "state.rng", "state.seed", "state.step", "state.sample", "state.correct",
    "state.loss_sum", "state.seconds",
};

static void state_to_ints(const nn_train_state *st, int64_t v[STATE_COUNT])
{
    v[STATE_EPOCH] = st->epoch;
    memcpy(&v[STATE_RNG], &st->rng, sizeof v[0]);
    memcpy(&v[STATE_SEED], &st->seed, sizeof v[0]);
    v[STATE_STEP] = st->step;
    v[STATE_SAMPLE] = st->sample;
    v[STATE_CORRECT] = st->correct;
    memcpy(&v[STATE_LOSS_SUM], &st->loss_sum, sizeof v[0]);
    memcpy(&v[STATE_SECONDS], &st->seconds, sizeof v[0]);
}

static void state_from_ints(const int64_t v[STATE_COUNT], nn_train_state *st)
{
    st->epoch = v[STATE_EPOCH];
    memcpy(&st->rng, &v[STATE_RNG], sizeof v[0]);
    memcpy(&st->seed, &v[STATE_SEED], sizeof v[0]);
    st->step = v[STATE_STEP];
    st->sample = v[STATE_SAMPLE];
    st->correct = v[STATE_CORRECT];
    memcpy(&st->loss_sum, &v[STATE_LOSS_SUM], sizeof v[0]);
    memcpy(&st->seconds, &v[STATE_SECONDS], sizeof v[0]);
}

int nn_save_weights(const nn_model *m, const char *path, const float *params,
                    const nn_optim *o, const nn_train_state *st)
{
    int max = m->n_tensors + (o ? 1 + 2 * m->n_tensors : 0) + STATE_COUNT;
    nn_array *arrays = nn_alloc((size_t)max, sizeof *arrays);
    int n = 0, n_optim = 0;
    for (int i = 0; i < m->n_tensors; i++)
        arrays[n++] = tensor_array(&m->tensors[i], (float *)params + m->tensors[i].offset);
    int64_t state[STATE_COUNT];
    if (o && st) {
        n_optim = nn_optim_state(o, arrays + n, max - n);
        if (n_optim < 0) {
            free(arrays);
            return nn_error(path, "cannot gather the optimizer's state");
        }
        n += n_optim;
        state_to_ints(st, state);
        for (int k = 0; k < STATE_COUNT; k++)
            arrays[n++] = int_array(state_names[k], &state[k]);
    }
    int rc = nn_npz_write(path, arrays, n);
    for (int i = m->n_tensors; i < m->n_tensors + n_optim; i++)
        nn_array_free(&arrays[i]);
    free(arrays);
    return rc;
}

/* state_names[k] into *out: -1 if a required one is missing or misshapen. */
static int load_int(const char *path, const nn_array *arrays, int n, int k, int64_t *out)
{
    const nn_array *a = nn_npz_find(arrays, n, state_names[k]);
    if (!a && k >= STATE_REQUIRED) {
        *out = 0;
        return 0;
    }
    if (!a || a->dtype != NN_I64 || a->size != 1)
        return nn_error(path, "'%s' is missing: the file is not a checkpoint written by "
                              "train --save", state_names[k]);
    *out = a->i[0];
    return 0;
}

/* The counts must fit the loop's ints: a hostile file must not wrap them. */
static int check_counts(const char *path, const int64_t v[STATE_COUNT])
{
    static const int counts[] = {STATE_EPOCH, STATE_STEP, STATE_SAMPLE, STATE_CORRECT};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int64_t x = v[counts[i]];
        if (x < 0 || x > INT_MAX)
            return nn_error(path, "'%s' is %lld, not a count", state_names[counts[i]],
                            (long long)x);
    }
    if (v[STATE_CORRECT] > v[STATE_SAMPLE])
        return nn_error(path, "'state.correct' is more than 'state.sample'");
    return 0;
}

static int load_state(const char *path, const nn_array *arrays, int n, nn_optim *o,
                      nn_train_state *st)
{
    int64_t v[STATE_COUNT];
    for (int k = 0; k < STATE_COUNT; k++)
        if (load_int(path, arrays, n, k, &v[k]) != 0)
            return -1;
    if (check_counts(path, v) != 0)
        return -1;
    if (nn_optim_load(o, arrays, n) != 0)
        return nn_error(path, "the optimizer's state does not fit this model and optimizer");
    state_from_ints(v, st);
    return 0;
}

int nn_load_weights(const nn_model *m, const char *path, float *params, nn_optim *o,
                    nn_train_state *st)
{
    nn_array *arrays;
    int n;
    if (nn_npz_read(path, &arrays, &n) != 0)
        return -1;
    int rc = 0;
    for (int i = 0; i < m->n_tensors && rc == 0; i++) {
        const nn_tensor *t = &m->tensors[i];
        const nn_array *a = nn_npz_find(arrays, n, t->name);
        if (!a)
            rc = nn_error(path, "no array '%s': these weights are not for model '%s'", t->name,
                          m->name);
        else if (!nn_array_is_f32(a, t->rank, t->shape))
            rc = nn_error(path, "'%s' has the wrong shape or type for model '%s'", t->name,
                          m->name);
        else
            memcpy(params + t->offset, a->f, t->size * sizeof *params);
    }
    if (rc == 0 && o && st)
        rc = load_state(path, arrays, n, o, st);
    nn_npz_free(arrays, n);
    return rc;
}
