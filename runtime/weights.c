/* weights.c - initial weights, and weight files in Keras's names and layouts.
 *
 * A weight file is an .npz: one float32 array per tensor ("dense.kernel"),
 * and for a checkpoint the optimizer's arrays ("optimizer.*") and the loop's
 * ("state.epoch", "state.rng", "state.seed"), so --resume continues exactly. */
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

int nn_save_weights(const nn_model *m, const char *path, const float *params,
                    const nn_optim *o, const nn_train_state *st)
{
    int max = m->n_tensors + (o ? 1 + 2 * m->n_tensors : 0) + 3;
    nn_array *arrays = nn_alloc((size_t)max, sizeof *arrays);
    int n = 0, n_optim = 0;
    for (int i = 0; i < m->n_tensors; i++)
        arrays[n++] = tensor_array(&m->tensors[i], (float *)params + m->tensors[i].offset);
    int64_t epoch = 0, rng = 0, seed = 0;
    if (o && st) {
        n_optim = nn_optim_state(o, arrays + n, max - n);
        if (n_optim < 0) {
            free(arrays);
            return nn_error(path, "cannot gather the optimizer's state");
        }
        n += n_optim;
        epoch = st->epoch;
        memcpy(&rng, &st->rng, sizeof rng);
        memcpy(&seed, &st->seed, sizeof seed);
        arrays[n++] = int_array("state.epoch", &epoch);
        arrays[n++] = int_array("state.rng", &rng);
        arrays[n++] = int_array("state.seed", &seed);
    }
    int rc = nn_npz_write(path, arrays, n);
    for (int i = m->n_tensors; i < m->n_tensors + n_optim; i++)
        nn_array_free(&arrays[i]);
    free(arrays);
    return rc;
}

static int load_int(const char *path, const nn_array *arrays, int n, const char *name,
                    int64_t *out)
{
    const nn_array *a = nn_npz_find(arrays, n, name);
    if (!a || a->dtype != NN_I64 || a->size != 1)
        return nn_error(path, "'%s' is missing: the file is not a checkpoint written by "
                              "train --save", name);
    *out = a->i[0];
    return 0;
}

static int load_state(const char *path, const nn_array *arrays, int n, nn_optim *o,
                      nn_train_state *st)
{
    int64_t epoch = 0, rng = 0, seed = 0;
    if (load_int(path, arrays, n, "state.epoch", &epoch) ||
        load_int(path, arrays, n, "state.rng", &rng) ||
        load_int(path, arrays, n, "state.seed", &seed))
        return -1;
    /* The loop counts epochs in int; a hostile file must not wrap it. */
    if (epoch < 0 || epoch > INT_MAX)
        return nn_error(path, "'state.epoch' is %lld, not an epoch count", (long long)epoch);
    if (nn_optim_load(o, arrays, n) != 0)
        return nn_error(path, "the optimizer's state does not fit this model and optimizer");
    st->epoch = epoch;
    memcpy(&st->rng, &rng, sizeof rng);
    memcpy(&st->seed, &seed, sizeof seed);
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
