/* plan.c - lays the model out in memory and turns layers into ops.
 *
 * Parameters: one flat buffer, tensors in layer order with Keras's names and
 * layouts (Dense kernel [in, out], Conv2D kernel [kh, kw, in, filters]).
 * Work: every value an op produces and the gradient flowing back into it, each
 * a buffer with a per-sample size; an activation whose derivative can be read
 * off its output (relu, sigmoid, tanh, ...) runs in place.
 * Fusion: a final softmax before a cross-entropy loss, or a final sigmoid
 * before binary cross-entropy, is left to the loss, which works from logits
 * as Keras does. */
#include "nncc.h"
#include "rt.h"

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

static int add_buffer(Plan *p, const Layer *l, const char *what, long size)
{
    /* The C names each offset in an enum, and an enum constant is an int. */
    if (size > INT32_MAX - p->work_floats)
        error_at(l->where, "the model is too large: its activations take more than %d floats "
                           "per sample", INT32_MAX);
    Buffer *b = &p->bufs[p->n_bufs];
    b->layer = l;
    snprintf(b->name, sizeof b->name, "%s_%s", l->name, what);
    b->offset = p->work_floats;
    b->size = size;
    p->work_floats += size;
    return p->n_bufs++;
}

/* ---- inline weights ---------------------------------------------------------- */

static int list_depth(const Node *n)
{
    int d = 0;
    while (n->kind == NODE_SEQ && n->n > 0) {
        d++;
        n = n->items[0];
    }
    return d;
}

static void read_values(const Node *n, const long *shape, int rank, const char *what,
                        float *out, long *pos)
{
    if (rank == 0) {
        out[(*pos)++] = (float)node_num(n, what);
        return;
    }
    if (n->kind != NODE_SEQ || n->n != shape[0])
        error_at(n, "%s: expected a list of %ld here, got %s%d", what, shape[0],
                 n->kind == NODE_SEQ ? "a list of " : "", n->kind == NODE_SEQ ? n->n : 1);
    for (int i = 0; i < n->n; i++)
        read_values(n->items[i], shape + 1, rank - 1, what, out, pos);
}

/* weights: {kernel: [...], bias: [...]} in Keras's layout. A single-channel,
 * single-filter Conv2D kernel may be written as a plain [kh][kw] list, as the
 * course writes its hand-made filters. */
static float *inline_values(const Tensor *t, const char *key)
{
    const Node *v = map_get(t->layer->weights, key);
    if (!v)
        return NULL;
    char what[MAX_NAME + 40];
    snprintf(what, sizeof what, "weights.%s of %s, shape (%ld%s%s", key, t->layer->name,
             t->shape[0], t->rank > 1 ? ", ..." : "", ")");
    long shape[4];
    int rank = t->rank;
    memcpy(shape, t->shape, sizeof shape);
    if (t->role == TENSOR_KERNEL && t->rank == 4 && shape[2] == 1 && shape[3] == 1 &&
        list_depth(v) == 2)
        rank = 2;
    float *values = calloc((size_t)t->size, sizeof *values);
    if (!values)
        error_at(v, "out of memory");
    long pos = 0;
    read_values(v, shape, rank, what, values, &pos);
    return values;
}

static const char *const role_names[] = {
    [TENSOR_KERNEL] = "kernel", [TENSOR_BIAS] = "bias", [TENSOR_GAMMA] = "gamma",
    [TENSOR_BETA] = "beta", [TENSOR_MEAN] = "moving_mean", [TENSOR_VAR] = "moving_variance",
};

static void check_weight_keys(const Layer *l)
{
    if (!l->weights)
        return;
    static const char *const dense_keys[] = {"kernel", "bias", NULL};
    static const char *const bn_keys[] = {"gamma", "beta", "moving_mean", "moving_variance", NULL};
    if (l->weights->kind != NODE_MAP)
        error_at(l->weights, "weights must be a map, e.g. {kernel: [...], bias: [...]}");
    map_check_keys(l->weights, "weights", l->kind == LAYER_BATCHNORM ? bn_keys : dense_keys);
    if (l->kind != LAYER_DENSE && l->kind != LAYER_CONV2D && l->kind != LAYER_BATCHNORM)
        error_at(l->weights, "%s has no weights", layer_type_names[l->kind]);
}

/* ---- tensors --------------------------------------------------------------------- */

static int add_tensor(Plan *p, const Layer *l, TensorRole role, int rank, const long *shape)
{
    Tensor *t = &p->tensors[p->n_tensors];
    t->layer = l;
    t->role = role;
    snprintf(t->name, sizeof t->name, "%s.%s", l->name, role_names[role]);
    t->rank = rank;
    t->size = 1;
    for (int i = 0; i < rank; i++) {
        t->shape[i] = shape[i];
        t->size *= shape[i];
    }
    t->offset = p->n_params;
    p->n_params += t->size;
    t->trainable = l->trainable && role != TENSOR_MEAN && role != TENSOR_VAR;
    t->init = role == TENSOR_KERNEL ? NN_INIT_GLOROT_UNIFORM
            : role == TENSOR_GAMMA || role == TENSOR_VAR ? NN_INIT_ONES : NN_INIT_ZEROS;
    if (role == TENSOR_KERNEL) {
        long receptive = rank == 4 ? shape[0] * shape[1] : 1;
        t->fan_in = receptive * shape[rank - 2];
        t->fan_out = receptive * shape[rank - 1];
    }
    if (l->weights && (t->values = inline_values(t, role_names[role])))
        t->init = NN_INIT_VALUES;
    return p->n_tensors++;
}

static void layer_tensors(Plan *p, const Layer *l, Op *op)
{
    check_weight_keys(l);
    for (int i = 0; i < 4; i++)
        op->tensor[i] = -1;
    long c = l->in.dim[l->in.rank - 1];
    if (l->kind == LAYER_DENSE) {
        long shape[2] = {l->in.dim[0], l->units};
        op->tensor[0] = add_tensor(p, l, TENSOR_KERNEL, 2, shape);
    } else if (l->kind == LAYER_CONV2D) {
        long shape[4] = {l->kh, l->kw, c, l->filters};
        op->tensor[0] = add_tensor(p, l, TENSOR_KERNEL, 4, shape);
    } else if (l->kind == LAYER_BATCHNORM) {
        for (int r = TENSOR_GAMMA; r <= TENSOR_VAR; r++)
            op->tensor[r - TENSOR_GAMMA] = add_tensor(p, l, (TensorRole)r, 1, &c);
        return;
    }
    long units = l->out.dim[l->out.rank - 1];
    if (op->tensor[0] >= 0 && l->use_bias)
        op->tensor[1] = add_tensor(p, l, TENSOR_BIAS, 1, &units);
    if (l->weights && map_get(l->weights, "bias") && !l->use_bias)
        error_at(map_get(l->weights, "bias"), "%s has use_bias: false but weights give a bias",
                 l->name);
}

/* ---- ops -------------------------------------------------------------------------- */

static const OpKind op_kinds[LAYER_KIND_COUNT] = {
    [LAYER_DENSE] = OP_DENSE, [LAYER_DROPOUT] = OP_DROPOUT, [LAYER_ACTIVATION] = OP_ACT,
    [LAYER_CONV2D] = OP_CONV2D, [LAYER_MAXPOOL2D] = OP_MAXPOOL2D,
    [LAYER_AVGPOOL2D] = OP_AVGPOOL2D, [LAYER_GLOBALAVGPOOL2D] = OP_GAP2D,
    [LAYER_BATCHNORM] = OP_BATCHNORM,
};

/* Activations whose derivative needs the input, not just the output. */
static bool needs_input(Activation a)
{
    return a == ACT_SWISH || a == ACT_GELU;
}

static Op *new_op(Plan *p, OpKind kind, const Layer *l, int in, int din)
{
    Op *op = &p->ops[p->n_ops++];
    memset(op, 0, sizeof *op);
    op->kind = kind;
    op->layer = l;
    op->in = in;
    op->din = din;
    op->aux = NO_BUF;
    for (int i = 0; i < 4; i++)
        op->tensor[i] = -1;
    snprintf(op->fn, sizeof op->fn, "%s", l->name);
    return op;
}

/* The activation after a layer's linear part; in place when it may be. */
static void add_activation(Plan *p, const Layer *l, Activation act, int *cur, int *dcur)
{
    long size = shape_size(&l->out);
    Op *op = new_op(p, act == ACT_SOFTMAX ? OP_SOFTMAX : OP_ACT, l, *cur, *dcur);
    op->act = act;
    op->size = size;
    snprintf(op->fn, sizeof op->fn, "%s_%s", l->name, activation_names[act]);
    if (needs_input(act) || *cur == NO_BUF) {  /* never overwrite the model's input */
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

static void plan_layer(Plan *p, const Model *m, int i, int *cur, int *dcur)
{
    const Layer *l = &m->layers[i];
    bool last = i == m->n_layers - 1;
    if (l->kind == LAYER_FLATTEN) {
        p->layer_out[i] = *cur;
        return;
    }
    Activation act = l->act;
    if (last && fused_output(m, act) != NN_OUT_LINEAR) {
        p->output_act = fused_output(m, act);
        act = ACT_LINEAR;
    }
    if (l->kind != LAYER_ACTIVATION) {
        Op *op = new_op(p, op_kinds[l->kind], l, *cur, *dcur);
        long size = shape_size(&l->out);
        op->size = size;
        layer_tensors(p, l, op);
        op->out = add_buffer(p, l, "out", size);
        op->dout = add_buffer(p, l, "dout", size);
        if (l->kind == LAYER_DROPOUT)
            op->aux = add_buffer(p, l, "mask", size);
        if (l->kind == LAYER_BATCHNORM)  /* batch mean and 1/std per channel: 2C floats */
            op->aux = add_buffer(p, l, "stats", 2 * l->out.dim[l->out.rank - 1]);
        *cur = op->out;
        *dcur = op->dout;
    }
    if (act != ACT_LINEAR)
        add_activation(p, l, act, cur, dcur);
    p->layer_out[i] = *cur;
}

Plan *plan_model(const Model *m)
{
    Plan *p = plan_new();
    int cur = NO_BUF, dcur = NO_BUF;
    for (int i = 0; i < m->n_layers; i++)
        plan_layer(p, m, i, &cur, &dcur);
    if (p->n_ops == 0)
        error_at(m->layers[0].where, "the model computes nothing: it needs a layer besides "
                                     "Flatten");
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
    nn_array *arrays;
    int n;
    if (nn_npz_read(path, &arrays, &n) != 0)
        exit(1);   /* nn_npz_read said what is wrong, naming the file */
    for (int i = 0; i < p->n_tensors; i++) {
        Tensor *t = &p->tensors[i];
        const nn_array *a = nn_npz_find(arrays, n, t->name);
        if (!a)
            error_file(path, "no array '%s': these weights are not for model '%s'", t->name,
                       m->name);
        if (!fits(a, t))
            error_file(path, "'%s' has the wrong shape or type for model '%s'", t->name,
                       m->name);
        take_values(t, a, path);
    }
    nn_npz_free(arrays, n);
}

void plan_free(Plan *p)
{
    for (int i = 0; i < p->n_tensors; i++)
        free(p->tensors[i].values);
    free(p);
}
