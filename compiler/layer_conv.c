/* layer_conv.c - the layer table's rows for the 2-D convolution and the
 * pools: Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D.
 * Windows and same padding follow TensorFlow (shape.c's window_out). Their C
 * is in templates/conv2d*.c.in, maxpool2d*, avgpool2d* and gap2d*. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>

#define F(field) offsetof(Layer, field)

const KerasKey channels_last_keras_keys[] = {
    {"data_format", KERAS_CHANNELS_LAST}, {NULL, 0},
};

/* ---- Conv2D ----------------------------------------------------------------------- */

static void conv2d_shape(Layer *l)
{
    need_image(l);
    l->out.rank = 3;
    l->out.dim[0] = window_out(l, l->in.dim[0], l->kh, l->sh, "height");
    l->out.dim[1] = window_out(l, l->in.dim[1], l->kw, l->sw, "width");
    l->out.dim[2] = l->filters;
}

static int conv2d_tensors(const Layer *l, TensorSpec *t)
{
    long shape[4] = {l->kh, l->kw, l->in.dim[2], l->filters};
    return kernel_and_bias(l, t, 4, shape);
}

/* The kernel transposed, for dx. */
static long conv2d_scratch(const Layer *l)
{
    return l->kh * l->kw * l->in.dim[2] * l->filters;
}

const KeySpec conv2d_keys[] = {
    {"filters", ARG_SIZE, F(filters), 0, true, NULL},
    {"kernel_size", ARG_SIZE_PAIR, F(kh), F(kw), true, NULL},
    {"activation", ARG_ACTIVATION, F(act), 0, false, NULL},
    {"use_bias", ARG_BOOL, F(use_bias), 0, false, NULL},
    {"strides", ARG_SIZE_PAIR, F(sh), F(sw), false, NULL},
    {"padding", ARG_PADDING, F(same), 0, false, NULL},
    KERNEL_BIAS_KEYS,
    {0},
};

const KerasKey conv2d_keras_keys[] = {
    {"dilation_rate", KERAS_ALL_ONES}, {"groups", KERAS_ALL_ONES}, {NULL, 0},
};

const LayerOps conv2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"filters", "kernel_size", "strides", "padding", NULL},
    .keras_name = "Conv2D", .aliases = (const char *const[]){"Convolution2D", NULL},
    .default_name = "conv2d", .keys = conv2d_keys,
    .keras = (const KerasKey *const[]){weighted_keras_keys, conv2d_keras_keys,
                                       channels_last_keras_keys, NULL},
    .shape = conv2d_shape, .tensors = conv2d_tensors, .tmpl = "conv2d",
    .scratch_size = conv2d_scratch,
    .forward_args = "n x P0 P1 y", .backward_args = "n x P0 dy dx G0 G1 scratch",
    .flags = LF_FEATURE_MAP,
};

/* ---- MaxPooling2D, AveragePooling2D ------------------------------------------------ */

static void pool_defaults(Layer *l)
{
    l->kh = l->kw = 2;
    l->sh = l->sw = 0;   /* not given: the pool size */
}

static void pool_finish(Layer *l)
{
    if (!l->sh)
        l->sh = l->kh, l->sw = l->kw;
}

static void pool_shape(Layer *l)
{
    need_image(l);
    l->out.rank = 3;
    l->out.dim[0] = window_out(l, l->in.dim[0], l->kh, l->sh, "height");
    l->out.dim[1] = window_out(l, l->in.dim[1], l->kw, l->sw, "width");
    l->out.dim[2] = l->in.dim[2];
}

static const KeySpec pool_keys[] = {
    {"pool_size", ARG_SIZE_PAIR, F(kh), F(kw), false, NULL},
    {"strides", ARG_SIZE_PAIR, F(sh), F(sw), false, NULL},
    {"padding", ARG_PADDING, F(same), 0, false, NULL},
    {0},
};

const LayerOps maxpool2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"pool_size", "strides", "padding", NULL},
    .keras_name = "MaxPooling2D", .aliases = (const char *const[]){"MaxPool2D", NULL},
    .default_name = "max_pooling2d", .keys = pool_keys,
    .keras = (const KerasKey *const[]){channels_last_keras_keys, NULL},
    .defaults = pool_defaults, .finish = pool_finish, .shape = pool_shape,
    .tmpl = "maxpool2d",
    .forward_args = "n x y", .backward_args = "n x y dy dx", .flags = LF_FEATURE_MAP,
};

const LayerOps avgpool2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"pool_size", "strides", "padding", NULL},
    .keras_name = "AveragePooling2D", .aliases = (const char *const[]){"AvgPool2D", NULL},
    .default_name = "average_pooling2d", .keys = pool_keys,
    .keras = (const KerasKey *const[]){channels_last_keras_keys, NULL},
    .defaults = pool_defaults, .finish = pool_finish, .shape = pool_shape,
    .tmpl = "avgpool2d",
    .forward_args = "n x y", .backward_args = "n x y dy dx", .flags = LF_FEATURE_MAP,
};

/* ---- GlobalAveragePooling2D (GlobalMaxPooling2D, in layer_spatial.c, shares these) ---- */

void global_pool_shape(Layer *l)
{
    need_image(l);
    l->out = vector_shape(l->in.dim[2]);
}

const KerasKey global_pool_keras_keys[] = {
    {"data_format", KERAS_CHANNELS_LAST}, {"keepdims", KERAS_FALSE}, {NULL, 0},
};

const LayerOps gap2d_ops = {
    .keras_name = "GlobalAveragePooling2D",
    .aliases = (const char *const[]){"GlobalAvgPool2D", NULL},
    .default_name = "global_average_pooling2d", .keys = (const KeySpec[]){{0}},
    .keras = (const KerasKey *const[]){global_pool_keras_keys, NULL},
    .shape = global_pool_shape, .tmpl = "gap2d",
    .forward_args = "n x y", .backward_args = "n x y dy dx", .flags = LF_FLAT_OUTPUT,
};
