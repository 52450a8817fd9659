/* weights.c - initial weights, and weight files in Keras's names and layouts.
 *
 * A weight file is an .npz: one float32 array per tensor ("dense.kernel"),
 * and for a checkpoint the optimizer's arrays ("optimizer.*") and the loop's
 * ("state.*": the epoch, the step within it, the shuffling generator, the
 * unfinished epoch's sums), so --resume continues exactly. Every file also
 * holds "meta." arrays, what predict needs besides the weights to read an
 * input and name its class (docs/weight-files.md). A file named .h5 or
 * .hdf5 is written as Keras's save_weights writes it, with the weights and
 * the meta arrays; one whose first bytes are HDF5's is read so (h5.c). */
#include "rt.h"
#include "h5.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- initial weights: one fill per nn_init ------------------------------------------ */

typedef void (*nn_fill)(const nn_tensor *t, float *p, nn_rng *rng);

static void fill_zeros(const nn_tensor *t, float *p, nn_rng *rng)
{
    (void)rng;
    memset(p, 0, t->size * sizeof *p);
}

static void fill_ones(const nn_tensor *t, float *p, nn_rng *rng)
{
    (void)rng;
    for (size_t k = 0; k < t->size; k++)
        p[k] = 1.0f;
}

static void fill_constant(const nn_tensor *t, float *p, nn_rng *rng)
{
    (void)rng;
    for (size_t k = 0; k < t->size; k++)
        p[k] = t->init_args.a;
}

static void fill_values(const nn_tensor *t, float *p, nn_rng *rng)
{
    (void)rng;
    memcpy(p, t->values, t->size * sizeof *p);
}

/* Keras: uniform in [-limit, limit], limit = sqrt(6 / (fan_in + fan_out)). */
static void fill_glorot_uniform(const nn_tensor *t, float *p, nn_rng *rng)
{
    float limit = sqrtf(6.0f / (float)(t->fan_in + t->fan_out));
    for (size_t k = 0; k < t->size; k++)
        p[k] = (2.0f * nn_rng_uniform(rng) - 1.0f) * limit;
}

static void fill_uniform(const nn_tensor *t, float *p, nn_rng *rng)
{
    float a = t->init_args.a, b = t->init_args.b;
    for (size_t k = 0; k < t->size; k++)
        p[k] = a + (b - a) * nn_rng_uniform(rng);
}

static void fill_normal(const nn_tensor *t, float *p, nn_rng *rng)
{
    for (size_t k = 0; k < t->size; k++)
        p[k] = (float)(t->init_args.a + t->init_args.b * nn_rng_normal(rng));
}

/* As TensorFlow's truncated_normal: a draw beyond two standard deviations is
 * drawn again. */
static void fill_truncated_normal(const nn_tensor *t, float *p, nn_rng *rng)
{
    for (size_t k = 0; k < t->size; k++) {
        double z;
        do
            z = nn_rng_normal(rng);
        while (fabs(z) > 2.0);
        p[k] = (float)(t->init_args.a + t->init_args.b * z);
    }
}

/* Keras's Orthogonal for a rows x cols matrix (all axes but the last
 * are rows): the Q of a normal matrix's QR, its signs corrected by diag(R) so
 * that it is uniformly distributed; transposed when rows < cols. Gram-Schmidt
 * on the columns of the tall normal matrix gives exactly that Q: its R has a
 * positive diagonal. Computed in double, then stored as float, times the gain
 * (init_args.a). */
static void fill_orthogonal(const nn_tensor *t, float *p, nn_rng *rng)
{
    int cols = t->shape[t->rank - 1], rows = (int)(t->size / (size_t)cols);
    int tall = rows > cols ? rows : cols, wide = rows > cols ? cols : rows;
    double *q = nn_alloc((size_t)tall * wide, sizeof *q);   /* column-major: wide columns */
    for (size_t k = 0; k < (size_t)tall * wide; k++)
        q[k] = nn_rng_normal(rng);
    for (int j = 0; j < wide; j++) {
        double *v = q + (size_t)j * tall;
        for (int i = 0; i < j; i++) {   /* modified Gram-Schmidt, in double */
            const double *u = q + (size_t)i * tall;
            double d = 0;
            for (int k = 0; k < tall; k++)
                d += u[k] * v[k];
            for (int k = 0; k < tall; k++)
                v[k] -= d * u[k];
        }
        double norm = 0;
        for (int k = 0; k < tall; k++)
            norm += v[k] * v[k];
        norm = sqrt(norm);
        for (int k = 0; k < tall; k++)
            v[k] /= norm;
    }
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            p[(size_t)r * cols + c] = t->init_args.a * (float)(rows >= cols ? q[(size_t)c * tall + r]
                                                                         : q[(size_t)r * tall + c]);
    free(q);
}

/* Keras's unit_forget_bias: an LSTM's bias (gates i, f, c, o) is one in the f gate. */
static void fill_forget_bias(const nn_tensor *t, float *p, nn_rng *rng)
{
    (void)rng;
    for (size_t k = 0; k < t->size; k++)
        p[k] = k >= t->size / 4 && k < t->size / 2 ? 1.0f : 0.0f;
}

static const nn_fill fills[] = {
    [NN_INIT_ZEROS] = fill_zeros, [NN_INIT_ONES] = fill_ones,
    [NN_INIT_GLOROT_UNIFORM] = fill_glorot_uniform, [NN_INIT_VALUES] = fill_values,
    [NN_INIT_UNIFORM] = fill_uniform, [NN_INIT_NORMAL] = fill_normal,
    [NN_INIT_TRUNCATED_NORMAL] = fill_truncated_normal, [NN_INIT_CONSTANT] = fill_constant,
    [NN_INIT_ORTHOGONAL] = fill_orthogonal, [NN_INIT_FORGET_BIAS] = fill_forget_bias,
};

/* The tensors in order from one generator; a tensor whose initialiser has its
 * own seed draws from that alone (Keras's seeded initialiser: the same values
 * whatever the trainer's seed), leaving the others' draws as they were. */
void nn_init_params(const nn_model *m, float *params, uint64_t seed)
{
    nn_rng rng = {seed};
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        nn_rng own = {t->init_args.seed};
        fills[t->init](t, params + t->offset, t->init_args.seeded ? &own : &rng);
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

static void free_strings(char **s, int n)
{
    for (int k = 0; k < n; k++)
        free(s[k]);
    free(s);
}

void nn_meta_free(nn_meta *meta)
{
    free_strings(meta->class_names, meta->n_classes);
    free_strings(meta->vocabulary, meta->n_words);
    memset(meta, 0, sizeof *meta);
}

void nn_meta_set_vocabulary(nn_meta *meta, const nn_vocab *v)
{
    free_strings(meta->vocabulary, meta->n_words);
    meta->n_words = v ? v->n : 0;
    meta->vocabulary = nn_alloc((size_t)meta->n_words + 1, sizeof *meta->vocabulary);
    for (int k = 0; k < meta->n_words; k++)
        meta->vocabulary[k] = nn_join_path(NULL, v->words[k]);
}

void nn_meta_set_classes(nn_meta *meta, const nn_model *m, char *const *folders, int n)
{
    free_strings(meta->class_names, meta->n_classes);
    bool from_folders = folders && n > 0;   /* an IDX set counts classes but names none */
    const char *const *names = from_folders ? (const char *const *)folders : m->data.class_names;
    n = from_folders ? n : m->data.n_class_names;
    meta->class_names = nn_alloc((size_t)(n > 0 ? n : 1), sizeof *meta->class_names);
    for (int k = 0; k < n; k++)
        meta->class_names[k] = nn_join_path(NULL, names[k]);
    meta->n_classes = n;
}

/* Strings, each ended by a NUL byte: "horses\0humans\0". */
static uint8_t *pack_strings(char *const *s, int n, size_t *len)
{
    *len = 0;
    for (int k = 0; k < n; k++)
        *len += strlen(s[k]) + 1;
    uint8_t *bytes = nn_alloc(*len + 1, 1), *p = bytes;
    for (int k = 0; k < n; k++) {
        size_t l = strlen(s[k]) + 1;
        memcpy(p, s[k], l);
        p += l;
    }
    return bytes;
}

static nn_array strings_array(const char *name, char *const *s, int n, uint8_t **storage)
{
    size_t len;
    *storage = pack_strings(s, n, &len);
    nn_array a = {.dtype = NN_U8, .rank = 1, .shape = {(int)len}, .size = len, .u8 = *storage};
    snprintf(a.name, sizeof a.name, "%s", name);
    return a;
}

/* The meta arrays; returns how many (at most 4). Class names go in only when
 * there is one per class: others could not name what predict prints. */
typedef struct {
    float rescale;
    int64_t target_size[2];
    uint8_t *names, *vocabulary;
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
    if (meta && meta->n_classes > 0 && meta->n_classes == nn_class_count(m))
        out[n++] = strings_array("meta.class_names", meta->class_names, meta->n_classes,
                                 &ms->names);
    if (meta && meta->n_words > 0)
        out[n++] = strings_array("meta.vocabulary", meta->vocabulary, meta->n_words,
                                 &ms->vocabulary);
    return n;
}

/* A uint8 array of NUL-ended strings into a list; "'meta.NAME' in PATH is
 * not ..." if it is not what we write. */
static int unpack_strings(const char *path, const nn_array *a, char ***list, int *count)
{
    int n = 0;
    bool ok = a->dtype == NN_I64 && a->rank == 1;
    for (size_t k = 0; ok && k < a->size; k++) {
        ok = a->i[k] >= 0 && a->i[k] <= 255;
        n += a->i[k] == 0;
    }
    if (!ok || (a->size && a->i[a->size - 1] != 0))
        return nn_error(path, "'%s' is not a uint8 array of strings each ended by a NUL byte",
                        a->name);
    char **s = nn_alloc((size_t)n + 1, sizeof *s);
    size_t start = 0;
    for (int k = 0; k < n; k++) {
        size_t end = start;
        while (a->i[end] != 0)
            end++;
        s[k] = nn_alloc(end - start + 1, 1);
        for (size_t j = start; j < end; j++)
            s[k][j - start] = (char)a->i[j];
        start = end + 1;
    }
    *list = s, *count = n;
    return 0;
}

static int decode_names(const char *path, const nn_model *m, const nn_array *a, nn_meta *meta)
{
    char **names;
    int n, want = nn_class_count(m);
    if (unpack_strings(path, a, &names, &n) < 0)
        return -1;
    if (n != want || !meta) {
        free_strings(names, n);
        return n != want ? nn_error(path, "'meta.class_names' holds %d names, but model '%s' has "
                                          "%d classes", n, m->name, want) : 0;
    }
    free_strings(meta->class_names, meta->n_classes);
    meta->class_names = names, meta->n_classes = n;
    return 0;
}

static int decode_vocabulary(const char *path, const nn_array *a, nn_meta *meta)
{
    char **words;
    int n;
    if (unpack_strings(path, a, &words, &n) < 0)
        return -1;
    if (!meta) {
        free_strings(words, n);
        return 0;
    }
    free_strings(meta->vocabulary, meta->n_words);
    meta->vocabulary = words, meta->n_words = n;
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
    if (c && decode_names(path, m, c, meta) < 0)
        return -1;
    const nn_array *v = nn_npz_find(arrays, n, "meta.vocabulary");
    return v ? decode_vocabulary(path, v, meta) : 0;
}

/* ---- weight files -------------------------------------------------------------- */

/* The loop's state, one int64 array each. A value that is not an int64 is
 * stored as its 64 bits (the generator's state, the seed, the float64 sums)
 * so that it comes back exactly. The first STATE_REQUIRED are in every
 * checkpoint; the others (the unfinished epoch's, the learning-rate
 * callbacks') were added later, and a checkpoint without them was written at
 * an epoch's end, where they are 0, or by a model without those callbacks. */
enum { STATE_EPOCH, STATE_RNG, STATE_SEED, STATE_STEP, STATE_SAMPLE,
       STATE_LOSS_SUM, STATE_SECONDS, STATE_LR, STATE_PLATEAU_BEST, STATE_PLATEAU_WAIT,
       STATE_PLATEAU_COOLDOWN, STATE_COUNT, STATE_REQUIRED = STATE_SEED + 1 };
static const char *const state_names[STATE_COUNT] = {
    "state.epoch", "state.rng", "state.seed", "state.step", "state.sample",
    "state.loss_sum", "state.seconds", "state.lr", "state.plateau.best", "state.plateau.wait",
    "state.plateau.cooldown",
};
/* The metrics' sums of the unfinished epoch, their 64 bits each. */
#define STATE_METRICS "state.metrics"

static void state_to_ints(const nn_train_state *st, int64_t v[STATE_COUNT])
{
    v[STATE_EPOCH] = st->epoch;
    memcpy(&v[STATE_RNG], &st->rng, sizeof v[0]);
    memcpy(&v[STATE_SEED], &st->seed, sizeof v[0]);
    v[STATE_STEP] = st->step;
    v[STATE_SAMPLE] = st->sample;
    memcpy(&v[STATE_LOSS_SUM], &st->loss_sum, sizeof v[0]);
    memcpy(&v[STATE_SECONDS], &st->seconds, sizeof v[0]);
    double lr = st->lr;
    memcpy(&v[STATE_LR], &lr, sizeof v[0]);
    memcpy(&v[STATE_PLATEAU_BEST], &st->plateau.best, sizeof v[0]);
    v[STATE_PLATEAU_WAIT] = st->plateau.wait;
    v[STATE_PLATEAU_COOLDOWN] = st->plateau.cooldown;
}

static void state_from_ints(const int64_t v[STATE_COUNT], nn_train_state *st)
{
    st->epoch = v[STATE_EPOCH];
    memcpy(&st->rng, &v[STATE_RNG], sizeof v[0]);
    memcpy(&st->seed, &v[STATE_SEED], sizeof v[0]);
    st->step = v[STATE_STEP];
    st->sample = v[STATE_SAMPLE];
    memcpy(&st->loss_sum, &v[STATE_LOSS_SUM], sizeof v[0]);
    memcpy(&st->seconds, &v[STATE_SECONDS], sizeof v[0]);
    double lr;
    memcpy(&lr, &v[STATE_LR], sizeof v[0]);
    st->lr = isfinite(lr) && lr > 0 ? (float)lr : 0;   /* 0: the model's rate */
    memcpy(&st->plateau.best, &v[STATE_PLATEAU_BEST], sizeof v[0]);
    st->plateau.wait = v[STATE_PLATEAU_WAIT];
    st->plateau.cooldown = v[STATE_PLATEAU_COOLDOWN];
}

/* Keras's save_weights layout: the tensors, in the groups of the layers;
 * the meta arrays beside them. */
static int save_h5(const nn_model *m, const char *path, const float *params, const nn_meta *meta)
{
    nn_array *arrays = nn_alloc((size_t)m->n_tensors + 1, sizeof *arrays), metas[4];
    const char **layers = nn_alloc((size_t)m->n_layers + 1, sizeof *layers);
    for (int i = 0; i < m->n_tensors; i++)
        arrays[i] = tensor_array(&m->tensors[i], (float *)params + m->tensors[i].offset);
    for (int i = 0; i < m->n_layers; i++)
        layers[i] = m->layers[i].name;
    meta_storage ms = {0};
    int n_meta = meta_arrays(m, meta, &ms, metas);
    int rc = nn_h5_write_weights(path, layers, m->n_layers, arrays, m->n_tensors, metas, n_meta);
    free(ms.names);
    free(ms.vocabulary);
    free(layers);
    free(arrays);
    return rc;
}

/* The sums as an int64 array of their bits, in bits (n_metric_sums of them). */
static nn_array metric_sums_array(const nn_train_state *st, int64_t *bits)
{
    nn_array a = {0};
    snprintf(a.name, sizeof a.name, "%s", STATE_METRICS);
    a.dtype = NN_I64;
    a.rank = 1;
    a.shape[0] = (int)st->n_metric_sums;
    a.size = st->n_metric_sums;
    memcpy(bits, st->metric_sums, st->n_metric_sums * sizeof *bits);
    a.i = bits;
    return a;
}

int nn_save_weights(const nn_model *m, const char *path, const float *params,
                    const nn_meta *meta, const nn_optim *o, const nn_train_state *st)
{
    if (nn_h5_name(path))
        return save_h5(m, path, params, meta);
    int max = m->n_tensors + (o ? 1 + NN_OPT_BUFFERS * m->n_tensors : 0) + 4 + STATE_COUNT + 1;
    nn_array *arrays = nn_alloc((size_t)max, sizeof *arrays);
    int n = 0, n_optim = 0;
    for (int i = 0; i < m->n_tensors; i++)
        arrays[n++] = tensor_array(&m->tensors[i], (float *)params + m->tensors[i].offset);
    meta_storage ms = {0};
    n += meta_arrays(m, meta, &ms, arrays + n);
    int first_optim = n;
    int64_t state[STATE_COUNT], *sums_bits = NULL;
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
        if (st->n_metric_sums > 0) {
            sums_bits = nn_alloc(st->n_metric_sums, sizeof *sums_bits);
            arrays[n++] = metric_sums_array(st, sums_bits);
        }
    }
    int rc = nn_npz_write(path, arrays, n);
    for (int i = first_optim; i < first_optim + n_optim; i++)
        nn_array_free(&arrays[i]);
    free(ms.names);
    free(ms.vocabulary);
    free(sums_bits);
    free(arrays);
    return rc;
}

/* Within an epoch the sums must be there, one per metric slot of this model;
 * at an epoch's end they are all 0 whatever the file says. */
static int load_metric_sums(const char *path, const nn_array *arrays, int n, bool mid_epoch,
                            nn_train_state *st)
{
    const nn_array *a = nn_npz_find(arrays, n, STATE_METRICS);
    if (st->n_metric_sums)
        memset(st->metric_sums, 0, st->n_metric_sums * sizeof *st->metric_sums);
    if (!mid_epoch || st->n_metric_sums == 0)
        return 0;
    if (!a || a->dtype != NN_I64 || a->size != st->n_metric_sums)
        return nn_error(path, "'%s' %s: the checkpoint stopped within an epoch of a model with "
                        "other metrics (resume it with the metrics it was written with)",
                        STATE_METRICS, a ? "does not fit this model's metrics" : "is missing");
    memcpy(st->metric_sums, a->i, st->n_metric_sums * sizeof *st->metric_sums);
    return 0;
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
    static const int counts[] = {STATE_EPOCH, STATE_STEP, STATE_SAMPLE, STATE_PLATEAU_WAIT,
                                 STATE_PLATEAU_COOLDOWN};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        int64_t x = v[counts[i]];
        if (x < 0 || x > INT_MAX)
            return nn_error(path, "'%s' is %lld, not a count", state_names[counts[i]],
                            (long long)x);
    }
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
    if (load_metric_sums(path, arrays, n, v[STATE_SAMPLE] > 0, st) != 0)
        return -1;
    state_from_ints(v, st);
    return 0;
}

/* "'dense.kernel' is (784, 64) in this file; model 'mnist' wants (784, 128)";
 * in an .h5, also the dataset it came from. */
static int shape_error(const char *path, const nn_model *m, const nn_tensor *t, const nn_array *a,
                       const char *where)
{
    char have[80], want[80], from[1100] = "";
    nn_shape_text(a->rank, a->shape, have, sizeof have);
    nn_shape_text(t->rank, t->shape, want, sizeof want);
    if (where)
        snprintf(from, sizeof from, " (dataset %s)", where);
    if (a->dtype != NN_F32)
        return nn_error(path, "'%s' holds integers; model '%s' wants float32 %s", t->name, m->name,
                        want);
    return nn_error(path, "'%s'%s is %s in this file; model '%s' wants %s", t->name, from, have,
                    m->name, want);
}

/* Asked about each .npz member before its data is read: a tensor of the
 * model with another shape or dtype is refused at once, so a small file whose
 * member inflates to gigabytes costs nothing (nn_npz_read_checked). */
static int check_member(void *ctx, const char *path, const nn_array *a)
{
    const nn_model *m = ctx;
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        if (strcmp(t->name, a->name) == 0)
            return nn_array_is_f32(a, t->rank, t->shape) ? 0 : shape_error(path, m, t, a, NULL);
    }
    return 0;
}

/* Every tensor of the model from w. skip_missing: one not there keeps what
 * params holds (its initial value), and a warning names them all. */
static int load_tensors(const nn_model *m, const char *path, nn_weight_file *w,
                        float *params, bool skip_missing)
{
    const char **names = nn_alloc((size_t)m->n_tensors + 1, sizeof *names);
    for (int i = 0; i < m->n_tensors; i++)
        names[i] = m->tensors[i].name;
    nn_weight_file_by_position(w, path, names, m->n_tensors);
    free(names);
    char missing[1024] = "";
    size_t used = 0;
    int n_missing = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        const nn_array *a = nn_npz_find(w->arrays, w->n, t->name);
        if (!a && skip_missing) {
            if (used < sizeof missing)
                used += (size_t)snprintf(missing + used, sizeof missing - used, "%s%s",
                                         n_missing ? ", " : "", t->name);
            n_missing++;
        } else if (!a) {
            return nn_error(path, "no array '%s': these weights are not for model '%s'%s", t->name,
                            m->name, w->keras ? " (start from what matches with --skip-missing)"
                                              : "");
        } else if (!nn_array_is_f32(a, t->rank, t->shape)) {
            return shape_error(path, m, t, a, w->where ? w->where[a - w->arrays] : NULL);
        } else {
            memcpy(params + t->offset, a->f, t->size * sizeof *params);
        }
    }
    if (n_missing)
        nn_warning(path, "%d tensor%s not in this file keep their initial values: %s", n_missing,
                   n_missing == 1 ? "" : "s", missing);
    return 0;
}

int nn_load_weights(const nn_model *m, const char *path, float *params, nn_meta *meta,
                    nn_optim *o, nn_train_state *st)
{
    nn_weight_file w;
    if (nn_weight_file_read_checked(path, check_member, (void *)m, &w) != 0)
        return -1;
    int rc = 0;
    if (o && st && w.keras)
        rc = nn_error(path, "an HDF5 file holds weights only: --resume continues a checkpoint "
                            "written by train --save W.npz (to start from these weights, give "
                            "--weights)");
    if (rc == 0)
        rc = load_tensors(m, path, &w, params, false);
    if (rc == 0)
        rc = load_meta(path, m, w.arrays, w.n, meta);
    if (rc == 0 && o && st)
        rc = load_state(path, w.arrays, w.n, o, st);
    nn_weight_file_free(&w);
    return rc;
}

int nn_load_start_weights(const nn_model *m, const char *path, float *params, bool skip_missing)
{
    nn_weight_file w;
    if (nn_weight_file_read_checked(path, check_member, (void *)m, &w) != 0)
        return -1;
    int rc = load_tensors(m, path, &w, params, skip_missing);
    if (rc == 0)
        rc = load_meta(path, m, w.arrays, w.n, NULL);
    nn_weight_file_free(&w);
    return rc;
}
