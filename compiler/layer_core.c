/* layer_core.c - the layer table's rows for Dense, Flatten, Dropout and
 * Activation: their arguments, shape rules and tensors. Their C is in
 * templates/dense*.c.in, dropout*.c.in, activation*.c.in and softmax*.c.in. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>

#define F(field) offsetof(Layer, field)

/* Keras config keys of layers with a kernel and a bias (their initializers and
 * regularizers are arguments). */
const KerasKey weighted_keras_keys[] = {
    {"kernel_constraint", KERAS_NONE},
    {"bias_constraint", KERAS_NONE}, {"lora_rank", KERAS_NONE}, {NULL, 0},
};

/* kernel, then bias if the layer has one: Keras's order and names. */
int kernel_and_bias(const Layer *l, TensorSpec *t, int rank, const long *kernel_shape)
{
    t[0] = (TensorSpec){"kernel", rank, {0}, NN_INIT_GLOROT_UNIFORM, false};
    for (int i = 0; i < rank; i++)
        t[0].shape[i] = kernel_shape[i];
    if (!l->use_bias)
        return 1;
    t[1] = (TensorSpec){"bias", 1, {l->out.dim[l->out.rank - 1]}, NN_INIT_ZEROS, false};
    return 2;
}

/* ---- Dense ------------------------------------------------------------------------ */

/* A vector, or as Keras allows a sequence [T, F]: then each step, its last
 * axis, goes through the same kernel, giving [T, units]. */
static void dense_shape(Layer *l)
{
    if (l->in.rank > 2)
        error_at(l->where, "Dense expects a flat input, got %s; add a Flatten layer before it",
                 shape_str(&l->in));
    l->out = l->in;
    l->out.dim[l->in.rank - 1] = l->units;
}

static long dense_features(const Layer *l)
{
    return l->in.dim[l->in.rank - 1];
}

/* The kernel transposed, for dx. */
static long dense_scratch(const Layer *l)
{
    return dense_features(l) * l->units;
}

static int dense_tensors(const Layer *l, TensorSpec *t)
{
    long shape[2] = {dense_features(l), l->units};
    return kernel_and_bias(l, t, 2, shape);
}

/* IN and OUT per row: a sample is ROWS rows (its steps, or 1). */
static void dense_holes(Holes *h, const Layer *l)
{
    hole_long(h, "IN", dense_features(l));
    hole_long(h, "OUT", l->units);
    hole_long(h, "ROWS", shape_size(&l->in) / dense_features(l));
    /* the product (templates/dense*.c.in, which the recurrent layers share) as
     * FN_mm; the layer's templates (dense_layer*.c.in) call it */
    hole_part(h, "PRODUCT", "dense", "mm", NULL, NULL, NULL, NULL);
    hole_part(h, "PRODUCT_BACKWARD", "dense_backward", "mm", NULL, NULL, NULL, NULL);
}

static const KeySpec dense_keys[] = {
    {"units", ARG_SIZE, F(units), 0, true, NULL},
    {"activation", ARG_ACTIVATION, F(act), 0, false, NULL},
    {"use_bias", ARG_BOOL, F(use_bias), 0, false, NULL},
    KERNEL_BIAS_KEYS,
    {0},
};

const LayerOps dense_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"units", "activation", NULL},
    .keras_name = "Dense", .default_name = "dense",
    .keys = dense_keys, .keras = (const KerasKey *const[]){weighted_keras_keys, NULL},
    .shape = dense_shape, .tensors = dense_tensors,
    .tmpl = "dense_layer", .parts = "mm", .holes = dense_holes,
    .scratch_size = dense_scratch, .flags = LF_OWN_RELU | LF_OWN_UPDATE,
    .forward_args = "n x P0 P1 y", .backward_args = "pass n x y P0 P1 dy dx G0 G1 scratch",
};

/* ---- Flatten: NHWC is already flat, so no op; its output is its input's buffer ---- */

static void flatten_shape(Layer *l)
{
    l->out = vector_shape(shape_size(&l->in));
}

static const KerasKey flatten_keras_keys[] = {{"data_format", KERAS_CHANNELS_LAST}, {NULL, 0}};

const LayerOps flatten_ops = {
    .keras_name = "Flatten", .default_name = "flatten",
    .keys = (const KeySpec[]){{0}}, .keras = (const KerasKey *const[]){flatten_keras_keys, NULL},
    .shape = flatten_shape, .flags = LF_FLAT_OUTPUT,
};

/* ---- Dropout ---------------------------------------------------------------------- */

void same_shape(Layer *l)
{
    l->out = l->in;
}

static long dropout_mask_size(const Layer *l)
{
    return shape_size(&l->out);
}

static const KeySpec dropout_keys[] = {
    {"rate", ARG_FRACTION, F(rate), 0, true, NULL},
    {0},
};

static const KerasKey dropout_keras_keys[] = {
    {"seed", KERAS_IGNORE}, {"noise_shape", KERAS_NONE}, {NULL, 0},
};

const LayerOps dropout_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"rate", NULL},
    .keras_name = "Dropout", .default_name = "dropout",
    .keys = dropout_keys, .keras = (const KerasKey *const[]){dropout_keras_keys, NULL},
    .shape = same_shape, .aux = "mask", .aux_size = dropout_mask_size,
    .tmpl = "dropout",
    .forward_args = "pass n x aux y", .backward_args = "n aux dy dx",
    .flags = LF_INFERENCE_IDENTITY,
};

/* ---- Activation: only the activation op that follows any layer ------------------- */

static const KeySpec activation_keys[] = {
    {"activation", ARG_ACTIVATION, F(act), 0, true, NULL},
    {0},
};

const LayerOps activation_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"activation", NULL},
    .keras_name = "Activation", .default_name = "activation",
    .keys = activation_keys, .shape = same_shape, .flags = LF_OWN_ACTIVATION,
};
