/* layer_act.c - the layer table's rows for the activation layers that take
 * arguments: LeakyReLU, ReLU (max_value, negative_slope, threshold), ELU
 * (alpha) and PReLU (a trained alpha). Unlike the activation op of a Dense,
 * a Conv2D or an Activation layer, each is an op of its own with its own output
 * buffer, and backward takes the derivative at the input x: a clipped or
 * thresholded function cannot be undone from its output. Their C is in
 * templates/leaky_relu*.c.in, relu*, elu* and prelu*. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>

#define F(field) offsetof(Layer, field)

/* @ALPHA@: LeakyReLU's slope below 0, ELU's scale below 0. */
static void alpha_holes(Holes *h, const Layer *l)
{
    hole_float(h, "ALPHA", l->alpha);
}

/* ---- LeakyReLU ---------------------------------------------------------------------- */

static void leaky_relu_defaults(Layer *l)
{
    l->alpha = 0.3;
}

/* Keras 2 calls the slope alpha, Keras 3 negative_slope: either, not both. */
static void leaky_relu_parse(Layer *l, const Node *args)
{
    (void)l;
    const Node *slope = args ? map_get(args, "negative_slope") : NULL;
    if (slope && map_get(args, "alpha"))
        error_at(slope, "LeakyReLU takes alpha (Keras 2) or negative_slope (Keras 3), not both");
}

static const KeySpec leaky_relu_keys[] = {
    {"alpha", ARG_NONNEGATIVE, F(alpha), 0, false, NULL},
    {"negative_slope", ARG_NONNEGATIVE, F(alpha), 0, false, NULL},
    {0},
};

const LayerOps leaky_relu_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"alpha", NULL},
    .keras_name = "LeakyReLU", .default_name = "leaky_re_lu", .keys = leaky_relu_keys,
    .defaults = leaky_relu_defaults, .parse = leaky_relu_parse, .shape = same_shape,
    .tmpl = "leaky_relu", .forward_args = "n x y", .backward_args = "n x dy dx",
    .holes = alpha_holes,
};

/* ---- ReLU: Keras's layer, with its three arguments -------------------------------------- */

static void relu_defaults(Layer *l)
{
    l->max_value = -1;   /* none */
}

static void relu_holes(Holes *h, const Layer *l)
{
    hole_long(h, "CLIP", l->max_value >= 0);
    hole_float(h, "MAX_VALUE", l->max_value >= 0 ? l->max_value : 0);
    hole_float(h, "SLOPE", l->alpha);
    hole_float(h, "THRESHOLD", l->threshold);
}

/* Keras refuses negative values for all three. */
static const KeySpec relu_keys[] = {
    {"max_value", ARG_NONNEGATIVE, F(max_value), 0, false, NULL},
    {"negative_slope", ARG_NONNEGATIVE, F(alpha), 0, false, NULL},
    {"threshold", ARG_NONNEGATIVE, F(threshold), 0, false, NULL},
    {0},
};

const LayerOps relu_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"max_value", NULL},
    .keras_name = "ReLU", .default_name = "re_lu", .keys = relu_keys,
    .defaults = relu_defaults, .shape = same_shape,
    .tmpl = "relu", .forward_args = "n x y", .backward_args = "n x dy dx",
    .holes = relu_holes,
};

/* ---- ELU ---------------------------------------------------------------------------- */

static void elu_defaults(Layer *l)
{
    l->alpha = 1.0;
}

static const KeySpec elu_keys[] = {
    {"alpha", ARG_NUMBER, F(alpha), 0, false, NULL},
    {0},
};

const LayerOps elu_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"alpha", NULL},
    .keras_name = "ELU", .default_name = "elu", .keys = elu_keys,
    .defaults = elu_defaults, .shape = same_shape,
    .tmpl = "elu", .forward_args = "n x y", .backward_args = "n x dy dx",
    .holes = alpha_holes,
};

/* ---- PReLU: alpha of the input's shape, 1 along the shared axes --------------------- */

/* shared_axes: an axis or a list of them, counted as Keras counts them, the
 * batch being axis 0; prelu_shape checks them against the input's rank. */
static void prelu_parse(Layer *l, const Node *args)
{
    const Node *v = args ? map_get(args, "shared_axes") : NULL;
    if (!v)
        return;
    const Node *const *axes = v->kind == NODE_SEQ ? (const Node *const *)v->items : &v;
    for (int i = 0; i < (v->kind == NODE_SEQ ? v->n : 1); i++)
        l->shared_axes |= 1u << (node_int(axes[i], "shared_axes", 1, 3) - 1);
}

static void prelu_shape(Layer *l)
{
    for (int axis = l->in.rank + 1; axis <= 3; axis++)
        if (l->shared_axes >> (axis - 1) & 1)
            error_at(l->where, "PReLU: shared_axes names axis %d, but its input %s has axes 1 "
                               "to %d (axis 0 is the batch)", axis, shape_str(&l->in), l->in.rank);
    l->out = l->in;
}

static int prelu_tensors(const Layer *l, TensorSpec *t)
{
    t[0] = (TensorSpec){"alpha", l->in.rank, {0}, NN_INIT_ZEROS, false};
    for (int i = 0; i < l->in.rank; i++)
        t[0].shape[i] = l->shared_axes >> i & 1 ? 1 : l->in.dim[i];
    return 1;
}

/* The templates see the input as D0 x D1 x D2 (its axes right-aligned, 1 in
 * front) and find the alpha of element (a, b, c) at a * S0 + b * S1 + c * S2:
 * row-major over alpha's shape, stride 0 along a shared axis. ALPHAS: its size. */
static void prelu_holes(Holes *h, const Layer *l)
{
    static const char *const dims[] = {"D0", "D1", "D2"}, *const strides[] = {"S0", "S1", "S2"};
    long stride = 1;
    for (int i = 2; i >= 0; i--) {
        int axis = i - (3 - l->in.rank);   /* the input's own axis; < 0: in front */
        long d = axis >= 0 ? l->in.dim[axis] : 1;
        bool shared = axis < 0 || (l->shared_axes >> axis & 1);
        hole_long(h, dims[i], d);
        hole_long(h, strides[i], shared ? 0 : stride);
        stride *= shared ? 1 : d;
    }
    hole_long(h, "ALPHAS", stride);
}

/* Backward's work buffer: each sample's share of dalpha, summed over the batch
 * in sample order afterwards, so that no sum depends on the thread count. */
static long prelu_partial_size(const Layer *l)
{
    TensorSpec t;
    prelu_tensors(l, &t);
    long size = 1;
    for (int i = 0; i < t.rank; i++)
        size *= t.shape[i];
    return size;
}

static const KeySpec prelu_keys[] = {
    {"shared_axes", ARG_CUSTOM, 0, 0, false, NULL},
    {"alpha_initializer", ARG_INITIALIZER, 0, 0, false, "zeros"},
    {0},
};

static const KerasKey prelu_keras_keys[] = {
    {"alpha_initializer", KERAS_ZEROS}, {"alpha_regularizer", KERAS_NONE},
    {"alpha_constraint", KERAS_NONE}, {NULL, 0},
};

const LayerOps prelu_ops = {
    .keras_name = "PReLU", .default_name = "p_re_lu", .keys = prelu_keys,
    .keras = (const KerasKey *const[]){prelu_keras_keys, NULL},
    .parse = prelu_parse, .shape = prelu_shape, .tensors = prelu_tensors,
    .aux = "part", .aux_size = prelu_partial_size,
    .tmpl = "prelu", .forward_args = "n x P0 y", .backward_args = "n x P0 aux dy dx G0",
    .holes = prelu_holes,
};
