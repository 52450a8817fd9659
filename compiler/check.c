/* check.c - the checks that need shapes, run once every shape is known and
 * before anything is planned or written, by --check and -o alike: the output
 * against the loss, inline weights against their tensors, inline samples and
 * predict rows against the input and output sizes, image folders against the
 * input. After it, plan.c and emit.c find nothing left to refuse but names
 * that would clash in the C (plan.c). */
#include "nncc.h"
#include "nnrt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A class is one of a flat output's units; a per-element loss (mse,
 * binary_crossentropy) takes an output of any shape, the mean over all its
 * elements as Keras's. An autoencoder's output has its input's shape. */
static void check_output(const Model *m)
{
    const Layer *last = &m->layers[m->output];
    bool per_class = m->loss == NN_LOSS_SPARSE_CE || m->loss == NN_LOSS_CATEGORICAL_CE;
    if (last->out.rank != 1 && per_class)
        error_at(last->where, "a classifier's output must be flat, got %s; add Flatten and Dense "
                              "layers at the end (or a per-element loss such as mse)",
                 shape_str(&last->out));
    if (m->target_input && shape_size(&last->out) != shape_size(&m->input))
        error_at(m->target_where, "target: input needs an output of the input's shape %s, got %s",
                 shape_str(&m->input), shape_str(&last->out));
    if (m->loss == NN_LOSS_BINARY_CE && last->act == ACT_SOFTMAX && last->out.dim[0] == 1)
        error_at(last->where, "softmax over a single unit is always 1; binary_crossentropy "
                              "wants activation: sigmoid");
    /* Keras would apply the activation twice (it warns); nncc refuses. */
    if (m->from_logits && (last->act == ACT_SOFTMAX || last->act == ACT_SIGMOID))
        error_at(m->loss_where, "from_logits: true says the output is logits, but the output "
                                "layer '%s' applies %s; drop the activation or from_logits",
                 last->name, activation_names[last->act]);
    if (m->class_weight && last->out.rank > 1)
        error_at(m->class_weight_where, "class_weight is not supported for an output of shape "
                                        "%s (Keras's rule: 3+ dimensional targets)",
                 shape_str(&last->out));
}

/* No gradient flows back through a layer flagged LF_NO_INPUT_GRADIENT (an
 * Embedding's token ids): a layer with something to learn, itself or before
 * it, whose output feeds only such layers would train on nothing. */
static void check_gradient_paths(const Model *m)
{
    bool learns[MAX_LAYERS];
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        learns[i] = l->trainable_params > 0;
        for (int k = 0; k < l->n_inputs; k++)
            learns[i] |= l->inputs[k] != MODEL_INPUT && learns[l->inputs[k]];
    }
    for (int i = 0; i < m->n_layers; i++) {
        int readers = 0, blocked = 0;
        const Layer *by = NULL;
        for (int j = i + 1; j < m->n_layers; j++)
            for (int k = 0; k < m->layers[j].n_inputs; k++)
                if (m->layers[j].inputs[k] == i) {
                    readers++;
                    if (m->layers[j].ops->flags & LF_NO_INPUT_GRADIENT)
                        blocked++, by = &m->layers[j];
                }
        if (learns[i] && i != m->output && readers && readers == blocked)
            error_at(by->where, "no gradient flows back through %s '%s' (its input is token "
                                "ids), so '%s' before it, which has weights to learn, would never "
                                "train; give it trainable: false, or feed the %s from the input",
                     by->ops->keras_name, by->name, m->layers[i].name, by->ops->keras_name);
    }
}

/* ---- inline weights -------------------------------------------------------------------- */

static bool same_dims(const NumArray *a, int rank, const long *shape)
{
    if (a->rank != rank)
        return false;
    for (int d = 0; d < rank; d++)
        if (a->dim[d] != shape[d])
            return false;
    return true;
}

static const char *dims_str(int rank, const long *dim)
{
    Shape s = {rank > 3 ? 3 : rank, {0}};
    static char buf[80];
    if (rank == 4) {   /* Shape holds three: a kernel's four are spelt here */
        snprintf(buf, sizeof buf, "(%ld, %ld, %ld, %ld)", dim[0], dim[1], dim[2], dim[3]);
        return buf;
    }
    for (int d = 0; d < s.rank; d++)
        s.dim[d] = dim[d];
    snprintf(buf, sizeof buf, "%s", shape_str(&s));
    return buf;
}

/* Keras's layout exactly, or for a one-channel, one-filter kernel the plain
 * [kh][kw] list the course writes its hand-made filters as. */
static void check_weight(const Layer *l, const InlineWeight *w, const TensorSpec *t)
{
    const NumArray *a = &w->values;
    bool plain_filter = t->rank == 4 && t->shape[2] == 1 && t->shape[3] == 1 &&
                        same_dims(a, 2, t->shape);
    if (same_dims(a, t->rank, t->shape) || plain_filter)
        return;
    char want[80];
    snprintf(want, sizeof want, "%s", dims_str(t->rank, t->shape));
    error_at(a->where, "weights.%s of %s must have shape %s, got %s", w->key, l->name, want,
             dims_str(a->rank, a->dim));
}

static void check_weights(const Layer *l)
{
    TensorSpec t[MAX_LAYER_TENSORS];
    int n = l->ops->tensors ? l->ops->tensors(l, t) : 0;
    for (int i = 0; i < l->n_weights; i++) {
        const InlineWeight *w = &l->weights[i];
        const char *roles[MAX_LAYER_TENSORS + 1];
        int k = 0;
        while (k < n && strcmp(t[k].role, w->key) != 0) {
            roles[k] = t[k].role;
            k++;
        }
        if (k < n) {
            check_weight(l, w, &t[k]);
            continue;
        }
        roles[n] = NULL;
        const char *close = closest_word(w->key, roles);
        error_at(w->values.where, "%s has no tensor '%s' to give weights to%s%s%s", l->name,
                 w->key, close ? "; did you mean '" : "", close ? close : "", close ? "'?" : "");
    }
}

/* ---- inline samples -------------------------------------------------------------------- */

/* A list of samples, each a number or a (nested) list of size numbers. */
static long check_samples(const NumArray *a, long size, const char *what)
{
    if (a->rank == 0 || a->dim[0] == 0)
        error_at(a->where, "%s must be a non-empty list of samples", what);
    long each = a->count / a->dim[0];
    if (each != size)
        error_at(a->where, "each sample of %s must have %ld number%s, these have %ld", what,
                 size, size == 1 ? "" : "s", each);
    return a->dim[0];
}

/* Where the input is token ids (model_input_ids), inline samples and predict
 * rows must hold whole numbers below it, as the trainer checks files it reads. */
static void check_ids(const Model *m, const NumArray *a, const char *what)
{
    long ids = model_input_ids(m), size = shape_size(&m->input);
    for (long k = 0; ids && k < a->count; k++) {
        float v = a->values[k];
        if (!(v >= 0 && v < (float)ids && v == floorf(v)))
            error_at(a->where, "%s: token id %g at step %ld of sample %ld is not a whole number "
                               "from 0 to %ld (the Embedding's input_dim is %ld)",
                     what, v, k % size, k / size, ids - 1, ids);
    }
}

static long label_size(const Model *m)
{
    return loss_takes_class_index(m->loss) ? 1 : shape_size(&m->layers[m->output].out);
}

/* A window is the model's input; the values after it, its output. */
static void check_series(const Model *m, const SourceSpec *s)
{
    long input = shape_size(&m->input), labels = label_size(m);
    if (s->window_size != input)
        error_at(map_get(s->where, "window_size"), "window_size %ld, but the model's input takes "
                 "%ld number%s", s->window_size, input, input == 1 ? "" : "s");
    if (m->loss >= 0 && s->horizon != labels)
        error_at(s->where, "each window's label is the next %ld value%s (horizon), but the model "
                 "gives %ld", s->horizon, s->horizon == 1 ? "" : "s", labels);
}

/* The rows pad_sequences makes are the model's input: max_length defaults to its length. */
static void check_text(Model *m)
{
    long input = shape_size(&m->input);
    if (!m->text.where)
        return;
    if (!m->text.max_length)
        m->text.max_length = input;
    if (m->text.max_length != input)
        error_at(map_get(m->text.where, "max_length"), "max_length %ld, but the model's input "
                 "takes %ld token ids", m->text.max_length, input);
}

/* image_dir without target_size: the model's input size, as nothing else fits. */
static void check_source(const Model *m, SourceSpec *s)
{
    if (s->format == NN_DATA_INLINE) {
        long nx = check_samples(&s->x, shape_size(&m->input), "x");
        check_ids(m, &s->x, "x");
        if (s->y.where && check_samples(&s->y, label_size(m), "y") != nx)
            error_at(s->y.where, "y has %ld samples but x has %ld", s->y.dim[0], nx);
    }
    if (s->format == NN_DATA_SERIES)
        check_series(m, s);
    if (s->format != NN_DATA_IMAGE_DIR)
        return;
    if (m->input.rank != 3)
        error_at(s->where, "image_dir data needs a model whose input_shape is [height, width, "
                           "channels]");
    if (!s->target_h) {
        s->target_h = m->input.dim[0];
        s->target_w = m->input.dim[1];
    }
    if (s->target_h != m->input.dim[0] || s->target_w != m->input.dim[1] ||
        s->channels != m->input.dim[2])
        error_at(s->where, "the images are %ldx%ldx%ld (target_size, color_mode) but the model's "
                           "input_shape is (%ld, %ld, %ld)", s->target_h, s->target_w,
                 s->channels, m->input.dim[0], m->input.dim[1], m->input.dim[2]);
}

void check_model(Model *m)
{
    check_output(m);
    check_gradient_paths(m);
    for (int i = 0; i < m->n_layers; i++)
        check_weights(&m->layers[i]);
    check_source(m, &m->train);
    check_source(m, &m->validation);
    check_source(m, &m->test);
    check_text(m);
    if (m->predict.where) {
        check_samples(&m->predict, shape_size(&m->input), "predict");
        check_ids(m, &m->predict, "predict");
    }
    if (model_input_ids(m) && m->rescale != 1.0)
        error_at(m->layers[0].where, "the input is token ids for an Embedding: data: rescale "
                                     "would change them; leave rescale out");
}

/* ---- data files ------------------------------------------------------------------------- */

/* dir/path, or path alone when it is absolute or dir is empty; the caller frees it. */
static char *join(const char *dir, size_t dir_len, const char *path)
{
    if (path[0] == '/')
        dir_len = 0;
    size_t len = dir_len + 1 + strlen(path) + 1;
    char *s = malloc(len);
    if (!s)
        error_at(NULL, "out of memory");
    snprintf(s, len, "%.*s%s%s", (int)dir_len, dir, dir_len ? "/" : "", path);
    return s;
}

/* A data path the trainer, run from here, finds in none of the first places
 * it looks (the current directory, then the model file's folder) gets a
 * warning: a typo or data not yet fetched, said before the trainer is built. */
static void warn_if_missing(const Model *m, const SourceSpec *s, const char *key)
{
    const Node *v = map_get(s->where, key);
    if (!v || v->kind != NODE_SCALAR)
        return;
    const char *dir = m->data_dir ? m->data_dir : "";
    char *here = join(dir, strlen(dir), v->text);
    const char *slash = strrchr(m->file, '/');
    char *beside = join(m->file, slash ? (size_t)(slash - m->file) + (slash == m->file) : 0, here);
    struct stat st;
    bool same = strcmp(here, beside) == 0;
    if (stat(here, &st) != 0 && stat(beside, &st) != 0)
        warn_at(v, "data '%s' not found (tried %s%s%s): the trainer will need --data DIR, or "
                "set data: dir:", v->text, here, same ? "" : ", ", same ? "" : beside);
    free(here);
    free(beside);
}

void warn_missing_data(const Model *m)
{
    const SourceSpec *sources[] = {&m->train, &m->validation, &m->test};
    static const char *const keys[] = {"path", "images", "labels"};
    for (int i = 0; i < 3; i++)
        for (int k = 0; k < 3 && sources[i]->where; k++)
            warn_if_missing(m, sources[i], keys[k]);
}
