/* layer_conv2.c - the layer table's rows for the 2-D convolutions beside
 * Conv2D: Conv2DTranspose, DepthwiseConv2D and SeparableConv2D. Windows and
 * same padding follow TensorFlow (shape.c's window_out, emit.c's pad_before).
 * Their C is in templates/conv2d_transpose*.c.in, depthwise_conv2d*.c.in and
 * separable_conv2d*.c.in; the last two include depthwise_steps*.c.in, the
 * depthwise convolution both run. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>

#define F(field) offsetof(Layer, field)

/* ---- Conv2DTranspose ---------------------------------------------------------------- */

/* Keras's deconv_output_length without output_padding: same, n * s; valid,
 * n * s + max(k - s, 0), which is (n - 1) * s + k unless the stride exceeds the
 * window (then the last s - k rows are the bias alone). */
static long transpose_out(const Layer *l, long n, long k, long s)
{
    long out = checked_mul(l, n, s);
    return l->same || k <= s ? out : out + (k - s);
}

static void conv2d_transpose_shape(Layer *l)
{
    need_image(l);
    l->out.rank = 3;
    l->out.dim[0] = transpose_out(l, l->in.dim[0], l->kh, l->sh);
    l->out.dim[1] = transpose_out(l, l->in.dim[1], l->kw, l->sw);
    l->out.dim[2] = l->filters;
}

/* Keras's layout puts the filters before the input channels: [kh, kw, filters, in]. */
static int conv2d_transpose_tensors(const Layer *l, TensorSpec *t)
{
    long shape[4] = {l->kh, l->kw, l->filters, l->in.dim[2]};
    return kernel_and_bias(l, t, 4, shape);
}

/* The padding of the convolution this layer transposes, which runs from its
 * output to its input: the rows and columns cropped off the top and left. */
static void conv2d_transpose_holes(Holes *h, const Layer *l)
{
    hole_long(h, "PT", l->same ? pad_before(l->out.dim[0], l->in.dim[0], l->kh, l->sh) : 0);
    hole_long(h, "PL", l->same ? pad_before(l->out.dim[1], l->in.dim[1], l->kw, l->sw) : 0);
}

static const KerasKey conv2d_transpose_keras_keys[] = {
    {"output_padding", KERAS_NONE}, {NULL, 0},
};

const LayerOps conv2d_transpose_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"filters", "kernel_size", "strides", "padding", NULL},
    .keras_name = "Conv2DTranspose",
    .aliases = (const char *const[]){"Convolution2DTranspose", NULL},
    .default_name = "conv2d_transpose", .keys = conv2d_keys,
    .keras = (const KerasKey *const[]){weighted_keras_keys, conv2d_keras_keys,
                                       channels_last_keras_keys, conv2d_transpose_keras_keys,
                                       NULL},
    .shape = conv2d_transpose_shape, .tensors = conv2d_transpose_tensors,
    .tmpl = "conv2d_transpose",
    .forward_args = "n x P0 P1 y", .backward_args = "n x P0 dy dx G0 G1",
    .holes = conv2d_transpose_holes, .flags = LF_FEATURE_MAP,
};

/* ---- DepthwiseConv2D, SeparableConv2D --------------------------------------------------- */

static void depthwise_defaults(Layer *l)
{
    l->depth_multiplier = 1;
}

/* Windows over the input as Conv2D's, channels deep. */
static void window_shape(Layer *l, long channels)
{
    l->out.rank = 3;
    l->out.dim[0] = window_out(l, l->in.dim[0], l->kh, l->sh, "height");
    l->out.dim[1] = window_out(l, l->in.dim[1], l->kw, l->sw, "width");
    l->out.dim[2] = channels;
}

/* Input channel c gives outputs c * depth_multiplier + m. */
static void depthwise_shape(Layer *l)
{
    need_image(l);
    window_shape(l, checked_mul(l, l->in.dim[2], l->depth_multiplier));
}

/* The depthwise step's outputs of one sample. */
static long depthwise_size(const Layer *l)
{
    return checked_mul(l, l->out.dim[0] * l->out.dim[1],
                       checked_mul(l, l->in.dim[2], l->depth_multiplier));
}

/* Its work buffer holds the depthwise outputs and their gradients. */
static void separable_shape(Layer *l)
{
    need_image(l);
    window_shape(l, l->filters);
    checked_mul(l, 2, depthwise_size(l));
}

static TensorSpec depthwise_kernel(const Layer *l)
{
    return (TensorSpec){"depthwise_kernel", 4, {l->kh, l->kw, l->in.dim[2], l->depth_multiplier},
                        NN_INIT_GLOROT_UNIFORM, false};
}

/* After the kernels, a zero bias over the output channels if the layer has one. */
static int and_bias(const Layer *l, TensorSpec *t, int n)
{
    if (l->use_bias)
        t[n++] = (TensorSpec){"bias", 1, {l->out.dim[2]}, NN_INIT_ZEROS, false};
    return n;
}

static int depthwise_tensors(const Layer *l, TensorSpec *t)
{
    t[0] = depthwise_kernel(l);
    return and_bias(l, t, 1);
}

static int separable_tensors(const Layer *l, TensorSpec *t)
{
    t[0] = depthwise_kernel(l);
    t[1] = (TensorSpec){"pointwise_kernel", 4,
                        {1, 1, l->in.dim[2] * l->depth_multiplier, l->filters},
                        NN_INIT_GLOROT_UNIFORM, false};
    return and_bias(l, t, 2);
}

static long separable_aux_size(const Layer *l)
{
    return 2 * depthwise_size(l);
}

/* The depthwise step's templates, included as holes, and the holes they use. */
static void depthwise_holes(Holes *h, const Layer *l)
{
    hole_long(h, "DM", l->depth_multiplier);
    hole_long(h, "DC", l->in.dim[2] * l->depth_multiplier);
    hole_template(h, "DEPTHWISE", "depthwise_steps");
    hole_template(h, "DEPTHWISE_BACKWARD", "depthwise_steps_backward");
}

#define DEPTHWISE_KEYS                                                              \
    {"kernel_size", ARG_SIZE_PAIR, F(kh), F(kw), true, NULL},                        \
    {"strides", ARG_SIZE_PAIR, F(sh), F(sw), false, NULL},                           \
    {"padding", ARG_PADDING, F(same), 0, false, NULL},                               \
    {"depth_multiplier", ARG_SIZE, F(depth_multiplier), 0, false, NULL},             \
    {"activation", ARG_ACTIVATION, F(act), 0, false, NULL},                          \
    {"use_bias", ARG_BOOL, F(use_bias), 0, false, NULL},                             \
    {"depthwise_initializer", ARG_INITIALIZER, 0, 0, false, "glorot_uniform"},       \
    {"bias_initializer", ARG_INITIALIZER, 0, 0, false, "zeros"}

static const KeySpec depthwise_keys[] = {DEPTHWISE_KEYS, {0}};

static const KeySpec separable_keys[] = {
    {"filters", ARG_SIZE, F(filters), 0, true, NULL},
    DEPTHWISE_KEYS,
    {"pointwise_initializer", ARG_INITIALIZER, 0, 0, false, "glorot_uniform"},
    {0},
};

/* Keras config keys of the depthwise kernel and of the bias. */
static const KerasKey depthwise_keras_keys[] = {
    {"depthwise_initializer", KERAS_GLOROT}, {"depthwise_regularizer", KERAS_NONE},
    {"depthwise_constraint", KERAS_NONE}, {"bias_initializer", KERAS_ZEROS},
    {"bias_regularizer", KERAS_NONE}, {"bias_constraint", KERAS_NONE},
    {"activity_regularizer", KERAS_NONE}, {NULL, 0},
};

/* SeparableConv2D's config also holds Conv2D's kernel keys, which it never reads. */
static const KerasKey separable_keras_keys[] = {
    {"pointwise_initializer", KERAS_GLOROT}, {"pointwise_regularizer", KERAS_NONE},
    {"pointwise_constraint", KERAS_NONE}, {"kernel_initializer", KERAS_IGNORE},
    {"kernel_regularizer", KERAS_IGNORE}, {"kernel_constraint", KERAS_IGNORE}, {NULL, 0},
};

const LayerOps depthwise_conv2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"kernel_size", "strides", "padding", "depth_multiplier", NULL},
    .keras_name = "DepthwiseConv2D", .default_name = "depthwise_conv2d",
    .keys = depthwise_keys,
    .keras = (const KerasKey *const[]){depthwise_keras_keys, conv2d_keras_keys,
                                       channels_last_keras_keys, NULL},
    .defaults = depthwise_defaults, .shape = depthwise_shape, .tensors = depthwise_tensors,
    .tmpl = "depthwise_conv2d",
    .forward_args = "n x P0 P1 y", .backward_args = "n x P0 dy dx G0 G1",
    .holes = depthwise_holes, .flags = LF_FEATURE_MAP,
};

const LayerOps separable_conv2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"filters", "kernel_size", "strides", "padding", NULL},
    .keras_name = "SeparableConv2D",
    .aliases = (const char *const[]){"SeparableConvolution2D", NULL},
    .default_name = "separable_conv2d", .keys = separable_keys,
    .keras = (const KerasKey *const[]){depthwise_keras_keys, separable_keras_keys,
                                       conv2d_keras_keys, channels_last_keras_keys, NULL},
    .defaults = depthwise_defaults, .shape = separable_shape, .tensors = separable_tensors,
    .aux = "depthwise", .aux_size = separable_aux_size,
    .tmpl = "separable_conv2d",
    .forward_args = "n x P0 P1 P2 aux y", .backward_args = "n x P0 P1 aux dy dx G0 G1 G2",
    .holes = depthwise_holes, .flags = LF_FEATURE_MAP,
};
