/* plan.c - lays the model out in memory and turns layers into ops.
 *
 * Parameters: one flat buffer, tensors in layer order with Keras's names and
 * layouts, as each row's tensors() gives them (Dense kernel [in, out], Conv2D
 * kernel [kh, kw, in, filters]).
 * Work: every value an op produces and the gradient flowing back into it, each
 * a buffer with a per-sample size; an activation whose derivative can be read
 * off its output (relu, sigmoid, tanh, ...) runs in place. A value that
 * several layers read gets the sum of their gradients (sum_gradients).
 * Fusion: a final softmax before a cross-entropy loss, or a final sigmoid
 * before binary cross-entropy, is left to the loss, which works from logits
 * as Keras does; a relu after a layer whose row has LF_OWN_RELU (Dense) is
 * applied by the layer's own templates. */
#include "nncc.h"
#include "h5.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static Plan *plan_new(void)
{
    Plan *p = calloc(1, sizeof *p);
    if (!p)
        error_at(NULL, "out of memory");
    return p;
}

/* A work buffer; lifetime.c gives it its offset once every op is known. */
static int add_buffer(Plan *p, const Layer *l, const char *what, long size)
{
    if (p->n_bufs == MAX_BUFS)
        error_at(l->where, "the model is too large: more than %d work buffers", MAX_BUFS);
    Buffer *b = &p->bufs[p->n_bufs];
    b->layer = l;
    snprintf(b->name, sizeof b->name, "%s_%.16s", l->name, what);
    b->size = size;
    return p->n_bufs++;
}

/* ---- tensors --------------------------------------------------------------------- */

/* The inline weights given for this tensor, as the check stage accepted them. */
static float *inline_values(const Layer *l, const char *role, long size)
{
    for (int i = 0; i < l->n_weights; i++)
        if (strcmp(l->weights[i].key, role) == 0) {
            float *v = malloc((size_t)size * sizeof *v);
            if (!v)
                error_at(l->where, "out of memory");
            memcpy(v, l->weights[i].values.values, (size_t)size * sizeof *v);
            return v;
        }
    return NULL;
}

/* Keras's fans (initializers_v2.py's _compute_fans): a vector's are its
 * length; otherwise the receptive field (all axes but the last two) times the
 * input and the output axis. */
static void keras_fans(const TensorSpec *spec, long *fan_in, long *fan_out)
{
    if (spec->rank == 1) {
        *fan_in = *fan_out = spec->shape[0];
        return;
    }
    long receptive = 1;
    for (int i = 0; i + 2 < spec->rank; i++)
        receptive *= spec->shape[i];
    *fan_in = receptive * spec->shape[spec->rank - 2];
    *fan_out = receptive * spec->shape[spec->rank - 1];
}

/* The numbers of a layer's default fill, as Keras's default initialisers
 * have them: Orthogonal(gain=1) for recurrent kernels, RandomUniform(-0.05,
 * 0.05) for embeddings. */
static void default_fill_args(Tensor *t)
{
    if (t->init == NN_INIT_ORTHOGONAL)
        t->init_a = 1;
    if (t->init == NN_INIT_UNIFORM)
        t->init_a = -0.05f, t->init_b = 0.05f;
}

/* The layer's default for the tensor, or the initialiser and regulariser the
 * model file chose; the fans stay in the table only for the fill that reads them. */
static void tensor_init(Tensor *t, const Layer *l, const TensorSpec *spec)
{
    long fan_in, fan_out;
    keras_fans(spec, &fan_in, &fan_out);
    t->init = spec->init;
    default_fill_args(t);
    const TensorChoice *c = layer_choice(l, spec->role);
    if (c && c->init.given) {
        t->init = init_fill(&c->init, fan_in, fan_out, &t->init_a, &t->init_b);
        t->init_seeded = c->init.seeded;
        t->init_seed = c->init.seed;
    }
    if (c)
        t->l1 = c->reg.l1, t->l2 = c->reg.l2;
    if (t->init == NN_INIT_GLOROT_UNIFORM)
        t->fan_in = fan_in, t->fan_out = fan_out;
}

static int add_tensor(Plan *p, const Layer *l, const TensorSpec *spec)
{
    Tensor *t = &p->tensors[p->n_tensors];
    t->layer = l;
    t->role = spec->role;
    snprintf(t->name, sizeof t->name, "%s.%s", l->name, spec->role);
    snprintf(t->ident, sizeof t->ident, "%s_%s", l->name, spec->role);
    for (char *c = t->ident; *c; c++)   /* Bidirectional's forward_lstm.kernel */
        *c = *c == '.' ? '_' : *c;
    t->rank = spec->rank;
    t->size = 1;
    for (int i = 0; i < spec->rank; i++) {
        t->shape[i] = spec->shape[i];
        t->size *= spec->shape[i];
    }
    t->offset = p->n_params;
    p->n_params += t->size;
    t->trainable = l->trainable && !spec->statistic;
    tensor_init(t, l, spec);
    if ((t->values = inline_values(l, spec->role, t->size)))
        t->init = NN_INIT_VALUES;
    return p->n_tensors++;
}

static void layer_tensors(Plan *p, const Layer *l, Op *op)
{
    TensorSpec specs[MAX_LAYER_TENSORS];
    int n = l->ops->tensors ? l->ops->tensors(l, specs) : 0;
    for (int i = 0; i < n; i++)
        op->tensor[i] = add_tensor(p, l, &specs[i]);
}

/* ---- ops -------------------------------------------------------------------------- */

/* Activations whose derivative needs the input, not just the output. */
static bool needs_input(Activation a)
{
    return a == ACT_SWISH || a == ACT_GELU;
}

static Op *new_op(Plan *p, const Layer *l, const char *tmpl)
{
    Op *op = &p->ops[p->n_ops++];
    memset(op, 0, sizeof *op);
    op->ops = l->ops;
    op->layer = l;
    op->tmpl = tmpl;
    op->aux = NO_BUF;
    for (int i = 0; i < MAX_LAYER_TENSORS; i++)
        op->tensor[i] = -1;
    snprintf(op->fn, sizeof op->fn, "%s", l->name);
    return op;
}

static void read_inputs(const Plan *p, const Layer *l, Op *op)
{
    op->n_in = l->n_inputs;
    for (int k = 0; k < l->n_inputs; k++) {
        int from = l->inputs[k];
        op->in[k] = from == MODEL_INPUT ? NO_BUF : p->layer_out[from];
        bool ids = l->ops->flags & LF_NO_INPUT_GRADIENT;
        op->din[k] = from == MODEL_INPUT || ids ? NO_BUF : p->layer_dout[from];
        op->add_to[k] = NO_BUF;
    }
}

/* The activation after a layer's own op (or of an Activation layer); in place
 * when it may be: never over the model's input, nor over a value that another
 * layer reads too. */
static void add_activation(Plan *p, const Layer *l, Activation act, int *cur, int *dcur,
                           bool shared)
{
    long size = shape_size(&l->out);
    Op *op = new_op(p, l, act == ACT_SOFTMAX ? "softmax" : "activation");
    op->ops = NULL;
    op->act = act;
    op->size = size;
    op->n_in = 1;
    op->in[0] = *cur;
    op->din[0] = *dcur;
    op->add_to[0] = NO_BUF;
    snprintf(op->fn, sizeof op->fn, "%s_%s", l->name, activation_names[act]);
    if (needs_input(act) || *cur == NO_BUF || shared) {
        op->out = add_buffer(p, l, "act", size);
        op->dout = add_buffer(p, l, "dact", size);
    } else {
        op->out = *cur;
        op->dout = *dcur;
    }
    *cur = op->out;
    *dcur = op->dout;
}

/* Whether the loss takes over this (final) activation. */
static int fused_output(const Model *m, Activation act)
{
    if (act == ACT_SOFTMAX &&
        (m->loss == NN_LOSS_SPARSE_CE || m->loss == NN_LOSS_CATEGORICAL_CE))
        return NN_OUT_SOFTMAX;
    if (act == ACT_SIGMOID && m->loss == NN_LOSS_BINARY_CE)
        return NN_OUT_SIGMOID;
    return NN_OUT_LINEAR;
}

/* The activation a layer runs: its own, unless the loss applies it. */
static Activation layer_act(const Model *m, const Layer *l)
{
    return l == &m->layers[m->output] && fused_output(m, l->act) != NN_OUT_LINEAR ? ACT_LINEAR
                                                                                  : l->act;
}

static bool makes_op(const Model *m, const Layer *l)
{
    return l->ops->tmpl || layer_act(m, l) != ACT_LINEAR;
}

/* How many ops read layer i's value buffer: a layer that makes no op
 * (Flatten) passes its buffer on, and its readers count instead. */
static int buffer_readers(const Model *m, int i)
{
    int n = 0;
    for (int j = i + 1; j < m->n_layers; j++)
        for (int k = 0; k < m->layers[j].n_inputs; k++)
            if (m->layers[j].inputs[k] == i)
                n += makes_op(m, &m->layers[j]) ? 1 : buffer_readers(m, j);
    return n;
}

/* Whether a gradient must flow back into each layer's output: only if it or
 * a layer before it has something to learn. A frozen front (fine-tuning) or a
 * Rescaling of the input then costs no backward work and no memory. */
static void find_learners(const Model *m, bool *learns)
{
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        learns[i] = l->trainable_params > 0;
        for (int k = 0; k < l->n_inputs; k++)
            learns[i] |= l->inputs[k] != MODEL_INPUT && learns[l->inputs[k]];
    }
}

static void plan_layer(Plan *p, const Model *m, int i, bool learns)
{
    int first_op = p->n_ops;
    const Layer *l = &m->layers[i];
    int first = l->inputs[0];
    int cur = first == MODEL_INPUT ? NO_BUF : p->layer_out[first];
    int dcur = first == MODEL_INPUT ? NO_BUF : p->layer_dout[first];
    bool shared = first != MODEL_INPUT && buffer_readers(m, first) > 1;
    const LayerOps *ops = l->ops->variant ? l->ops->variant(l) : l->ops;
    if (ops->tmpl) {
        Op *op = new_op(p, l, ops->tmpl);
        op->ops = ops;
        read_inputs(p, l, op);
        op->size = shape_size(&l->out);
        layer_tensors(p, l, op);
        op->out = add_buffer(p, l, "out", op->size);
        op->dout = add_buffer(p, l, "dout", op->size);
        if (ops->aux)
            op->aux = add_buffer(p, l, ops->aux, ops->aux_size(l));
        bool dx = op->din[0] != NO_BUF || (ops->flags & LF_SCRATCH_ALWAYS);
        if (dx && ops->scratch_size && ops->scratch_size(l) > p->scratch_floats)
            p->scratch_floats = ops->scratch_size(l);
        cur = op->out;
        dcur = op->dout;
        shared = false;   /* the activation reads the op's own output */
    }
    if (l->ops->tmpl && (l->ops->flags & LF_OWN_RELU) && layer_act(m, l) == ACT_RELU)
        p->ops[p->n_ops - 1].act = ACT_RELU;   /* the layer's own op applies it */
    else if (layer_act(m, l) != ACT_LINEAR)
        add_activation(p, l, layer_act(m, l), &cur, &dcur, shared);
    p->layer_out[i] = cur;
    p->layer_dout[i] = learns ? dcur : NO_BUF;
    for (int k = first_op; !learns && k < p->n_ops; k++)
        for (int j = 0; j < p->ops[k].n_in; j++)
            p->ops[k].din[j] = NO_BUF;
}

bool op_has_backward(const Plan *p, const Op *op)
{
    for (int i = 0; i < MAX_LAYER_TENSORS; i++)
        if (op->tensor[i] >= 0 && p->tensors[op->tensor[i]].trainable)
            return true;
    for (int k = 0; k < op->n_in; k++)
        if (op->din[k] != NO_BUF)
            return true;
    return false;
}

/* Backward runs the ops in reverse: the last reader of a value writes its
 * gradient, each earlier one writes its own buffer and adds it in. An op in
 * place turns the gradient it was given into its input's, writing nothing new. */
static void sum_gradients(Plan *p, const Model *m)
{
    bool written[MAX_BUFS] = {false};
    if (p->layer_dout[m->output] != NO_BUF)
        written[p->layer_dout[m->output]] = true;
    for (int i = p->n_ops - 1; i >= 0; i--) {
        Op *op = &p->ops[i];
        bool in_place = op->out == op->in[0];
        for (int k = 0; k < op->n_in && !in_place; k++) {
            int d = op->din[k];
            if (d == NO_BUF)
                continue;
            if (!written[d]) {
                written[d] = true;
                continue;
            }
            char what[16];
            snprintf(what, sizeof what, "din%d", k);
            op->add_to[k] = d;
            op->din[k] = add_buffer(p, op->layer, what, p->bufs[d].size);
        }
    }
}

/* ---- names the C will hold ------------------------------------------------------------ */

/* Every identifier the model adds to the C, so that two layers whose names
 * differ (a, a_relu) cannot meet as a_relu_forward. Checked here, before
 * anything is written, so that --check refuses what -o would. */
enum { MAX_C_NAMES = 4 * MAX_OPS + MAX_TENSORS + MAX_BUFS, C_NAME = 2 * MAX_NAME + 32 };
typedef struct {
    int n;
    char name[MAX_C_NAMES][C_NAME];
    const Node *where[MAX_C_NAMES];
} Names;

static void claim(Names *ns, const Node *where, const char *a, const char *b)
{
    char name[C_NAME];
    snprintf(name, sizeof name, "%s%s", a, b);
    for (int i = 0; i < ns->n; i++)
        if (strcmp(ns->name[i], name) == 0)
            error_at(where, "the name '%s' in the generated C would clash with one from line "
                            "%d; rename a layer", name, ns->where[i]->line);
    ns->where[ns->n] = where;
    snprintf(ns->name[ns->n++], C_NAME, "%s", name);
}

static void claim_names(const Plan *p)
{
    static Names ns;
    ns.n = 0;
    static const char *const suffixes[] = {"_forward", "_backward", "_IN", "_OUT"};
    for (int i = 0; i < p->n_ops; i++) {
        const Op *op = &p->ops[i];
        for (int k = 0; k < 4; k++)
            claim(&ns, op->layer->where, op->fn, suffixes[k]);
        const char *parts = op->ops && op->ops->parts ? op->ops->parts : "";
        for (const char *w = parts; *w; w += strcspn(w, " "), w += strspn(w, " ")) {
            char part[C_NAME];
            snprintf(part, sizeof part, "%s_%.*s", op->fn, (int)strcspn(w, " "), w);
            for (int k = 0; k < 4; k++)
                claim(&ns, op->layer->where, part, suffixes[k]);
        }
    }
    for (int i = 0; i < p->n_tensors; i++)
        claim(&ns, p->tensors[i].layer->where, p->tensors[i].ident, "");
    for (int i = 0; i < p->n_bufs; i++)
        claim(&ns, p->bufs[i].layer->where, p->bufs[i].name, "");
}

Plan *plan_model(const Model *m, bool inference)
{
    Plan *p = plan_new();
    static bool learns[MAX_LAYERS];
    find_learners(m, learns);
    for (int i = 0; i < m->n_layers; i++)
        plan_layer(p, m, i, learns[i]);
    if (p->n_ops == 0)
        error_at(m->layers[0].where, "the model computes nothing: it needs a layer besides "
                                     "Flatten and Reshape");
    p->output_act = fused_output(m, m->layers[m->output].act);
    sum_gradients(p, m);
    claim_names(p);
    plan_lifetimes(p, m, inference);
    return p;
}

/* ---- weights from a file --------------------------------------------------------- */

/* Tensor shapes are below INT32_MAX (shape.c), so they fit the runtime's ints. */
static bool fits(const nn_array *a, const Tensor *t)
{
    int shape[NN_MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        shape[d] = (int)t->shape[d];
    return nn_array_is_f32(a, t->rank, shape);
}

/* Checked here, where the file can be named: a weight the C cannot spell
 * (inf, nan) would otherwise fail later, in the user's compiler. */
static void take_values(Tensor *t, const nn_array *a, const char *path)
{
    for (size_t i = 0; i < a->size; i++)
        if (!isfinite(a->f[i]))
            error_file(path, "'%s' holds a value that is not a finite number", t->name);
    free(t->values);
    t->values = malloc((size_t)t->size * sizeof *t->values);
    if (!t->values)
        error_file(path, "out of memory");
    memcpy(t->values, a->f, (size_t)t->size * sizeof *t->values);
}

void plan_load_weights(Plan *p, const Model *m, const char *path)
{
    nn_weight_file w;
    if (nn_weight_file_read(path, &w) != 0)
        exit(1);   /* the reader said what is wrong, naming the file */
    const char **names = calloc((size_t)p->n_tensors + 1, sizeof *names);
    if (!names)
        error_file(path, "out of memory");
    for (int i = 0; i < p->n_tensors; i++)
        names[i] = p->tensors[i].name;
    nn_weight_file_by_position(&w, path, names, p->n_tensors);
    free(names);
    for (int i = 0; i < p->n_tensors; i++) {
        Tensor *t = &p->tensors[i];
        const nn_array *a = nn_npz_find(w.arrays, w.n, t->name);
        if (!a)
            error_file(path, "no array '%s': these weights are not for model '%s'", t->name,
                       m->name);
        if (!fits(a, t))
            error_file(path, "'%s'%s%s%s has the wrong shape or type for model '%s'", t->name,
                       w.where ? " (dataset " : "", w.where ? w.where[a - w.arrays] : "",
                       w.where ? ")" : "", m->name);
        take_values(t, a, path);
    }
    nn_weight_file_free(&w);
}

void plan_free(Plan *p)
{
    for (int i = 0; i < p->n_tensors; i++)
        free(p->tensors[i].values);
    free(p);
}
