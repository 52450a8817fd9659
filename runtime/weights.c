/* weights.c - initial weights, and weight files in Keras's names and layouts.
 *
 * A weight file is an .npz: one float32 array per tensor ("dense.kernel"),
 * and for a checkpoint the optimizer's arrays ("optimizer.*") and the loop's
 * ("state.*": the epoch, the step within it, the shuffling generator, the
 * unfinished epoch's sums), so --resume continues exactly. Every file also
 * holds "meta." arrays, what predict needs besides the weights to read an
 * input and name its class (docs/weight-files.md). */
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
        case NN_INIT_RANDOM_UNIFORM:
            for (size_t k = 0; k < t->size; k++)
                p[k] = (2.0f * nn_rng_uniform(&rng) - 1.0f) * 0.05f;
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

/* ---- meta ------------------------------------------------------------------------ */

void nn_meta_free(nn_meta *meta)
{
    for (int k = 0; k < meta->n_classes; k++)
        free(meta->class_names[k]);
    free(meta->class_names);
    memset(meta, 0, sizeof *meta);
}

void nn_meta_set_classes(nn_meta *meta, const nn_model *m, char *const *folders, int n)
{
    nn_meta_free(meta);
    bool from_folders = folders && n > 0;   /* an IDX set counts classes but names none */
    const char *const *names = from_folders ? (const char *const *)folders : m->data.class_names;
    n = from_folders ? n : m->data.n_class_names;
    meta->class_names = nn_alloc((size_t)(n > 0 ? n : 1), sizeof *meta->class_names);
    for (int k = 0; k < n; k++)
        meta->class_names[k] = nn_join_path(NULL, names[k]);
    meta->n_classes = n;
}

/* The names, each ended by a NUL byte: "horses\0humans\0". */
static uint8_t *pack_names(const nn_meta *meta, size_t *len)
{
    *len = 0;
    for (int k = 0; k < meta->n_classes; k++)
        *len += strlen(meta->class_names[k]) + 1;
    uint8_t *bytes = nn_alloc(*len, 1), *p = bytes;
    for (int k = 0; k < meta->n_classes; k++) {
        size_t l = strlen(meta->class_names[k]) + 1;
        memcpy(p, meta->class_names[k], l);
        p += l;
    }
    return bytes;
}

/* The meta arrays; returns how many (at most 3). Class names go in only when
 * there is one per class: others could not name what predict prints. */
typedef struct {
    float rescale;
    int64_t target_size[2];
    uint8_t *names;
} meta_storage;

static int meta_arrays(const nn_model *m, const nn_meta *meta, meta_storage *ms, nn_array *out)
{
    int n = 0;
    ms->rescale = m->data.rescale;
    out[n] = (nn_array){.name = "meta.rescale", .dtype = NN_F32, .size = 1, .f = &ms->rescale};
    n++;
    if (m->input_rank >= 2) {
        ms->target_size[0] = m->input_shape[0];
        ms->target_size[1] = m->input_shape[1];
        out[n] = (nn_array){.name = "meta.target_size", .dtype = NN_I64, .rank = 1, .shape = {2},
                            .size = 2, .i = ms->target_size};
        n++;
    }
    if (meta && meta->n_classes > 0 && meta->n_classes == nn_class_count(m)) {
        size_t len;
        ms->names = pack_names(meta, &len);
        out[n] = (nn_array){.name = "meta.class_names", .dtype = NN_U8, .rank = 1,
                            .shape = {(int)len}, .size = len, .u8 = ms->names};
        n++;
    }
    return n;
}

/* "'meta.NAME' in PATH is not ...": the ones we use must be what we wrote. */
static int decode_names(const char *path, const nn_model *m, const nn_array *a, nn_meta *meta)
{
    int want = nn_class_count(m), n = 0;
    bool ok = a->dtype == NN_I64 && a->rank == 1;
    for (size_t k = 0; ok && k < a->size; k++) {
        ok = a->i[k] >= 0 && a->i[k] <= 255;
        n += a->i[k] == 0;
    }
    if (!ok || (a->size && a->i[a->size - 1] != 0))
        return nn_error(path, "'meta.class_names' is not a uint8 array of names each ended by a "
                              "NUL byte");
    if (n != want)
        return nn_error(path, "'meta.class_names' holds %d names, but model '%s' has %d classes",
                        n, m->name, want);
    if (!meta)
        return 0;
    nn_meta_free(meta);
    meta->class_names = nn_alloc((size_t)n, sizeof *meta->class_names);
    size_t start = 0;
    for (int k = 0; k < n; k++) {
        size_t end = start;
        while (a->i[end] != 0)
            end++;
        meta->class_names[k] = nn_alloc(end - start + 1, 1);
        for (size_t j = start; j < end; j++)
            meta->class_names[k][j - start] = (char)a->i[j];
        start = end + 1;
    }
    meta->n_classes = n;
    return 0;
}

/* Checks the meta arrays this version uses against the model; arrays other
 * versions add are ignored. A file without them (older, or from numpy) is fine. */
static int load_meta(const char *path, const nn_model *m, const nn_array *arrays, int n,
                     nn_meta *meta)
{
    const nn_array *r = nn_npz_find(arrays, n, "meta.rescale");
    if (r && (r->dtype != NN_F32 || r->size != 1))
        return nn_error(path, "'meta.rescale' is not one float");
    if (r && r->f[0] != m->data.rescale)
        return nn_error(path, "the weights were trained on inputs rescaled by %g ('meta.rescale'), "
                              "but model '%s' rescales by %g", r->f[0], m->name, m->data.rescale);
    const nn_array *t = nn_npz_find(arrays, n, "meta.target_size");
    if (t && (t->dtype != NN_I64 || t->size != 2))
        return nn_error(path, "'meta.target_size' is not two integers");
    if (t && (m->input_rank < 2 || t->i[0] != m->input_shape[0] || t->i[1] != m->input_shape[1]))
        return nn_error(path, "the weights were trained on %lldx%lld images ('meta.target_size'), "
                              "but model '%s' takes %s", (long long)t->i[0], (long long)t->i[1],
                        m->name, m->input_rank < 2 ? "no images" : "other sizes");
    const nn_array *c = nn_npz_find(arrays, n, "meta.class_names");
    return c ? decode_names(path, m, c, meta) : 0;
}

/* ---- weight files -------------------------------------------------------------- */

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
                    const nn_meta *meta, const nn_optim *o, const nn_train_state *st)
{
    int max = m->n_tensors + (o ? 1 + 2 * m->n_tensors : 0) + 3 + STATE_COUNT;
    nn_array *arrays = nn_alloc((size_t)max, sizeof *arrays);
    int n = 0, n_optim = 0;
    for (int i = 0; i < m->n_tensors; i++)
        arrays[n++] = tensor_array(&m->tensors[i], (float *)params + m->tensors[i].offset);
    meta_storage ms = {0};
    n += meta_arrays(m, meta, &ms, arrays + n);
    int first_optim = n;
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
    for (int i = first_optim; i < first_optim + n_optim; i++)
        nn_array_free(&arrays[i]);
    free(ms.names);
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

/* "'dense.kernel' is (784, 64) in w.npz; model 'mnist' wants (784, 128)". */
static int shape_error(const char *path, const nn_model *m, const nn_tensor *t, const nn_array *a)
{
    char have[80], want[80];
    nn_shape_text(a->rank, a->shape, have, sizeof have);
    nn_shape_text(t->rank, t->shape, want, sizeof want);
    if (a->dtype != NN_F32)
        return nn_error(path, "'%s' holds integers; model '%s' wants float32 %s", t->name, m->name,
                        want);
    return nn_error(path, "'%s' is %s in this file; model '%s' wants %s", t->name, have, m->name,
                    want);
}

int nn_load_weights(const nn_model *m, const char *path, float *params, nn_meta *meta,
                    nn_optim *o, nn_train_state *st)
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
            rc = shape_error(path, m, t, a);
        else
            memcpy(params + t->offset, a->f, t->size * sizeof *params);
    }
    if (rc == 0)
        rc = load_meta(path, m, arrays, n, meta);
    if (rc == 0 && o && st)
        rc = load_state(path, arrays, n, o, st);
    nn_npz_free(arrays, n);
    return rc;
}
