/* layer_conv.c - the layer table's rows for the 2-D convolution and the
 * pools: Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D.
 * Windows and same padding follow TensorFlow (shape.c's window_out). Their C
 * is in templates/conv2d*.c.in, maxpool2d*, avgpool2d* and gap2d*. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

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

/* ---- Conv2D by Winograd's F(2x2, 3x3) or F(4x4, 3x3) (templates/conv2d_winograd*.c.in) ----
 * For a 3x3 stride-1 kernel without dilation on an image, a tile of MxM
 * outputs takes (M+2)^2 multiplies per channel pair instead of 9 M^2: 16 for
 * 36 (M = 2), 36 for 144 (M = 4), for the cost of transforming each tile's
 * (M+2)^2 inputs and its outputs (about 4 vector ops per transformed value).
 * The cost rule below counts those, and the tiles a size that is not a
 * multiple of M wastes, against the direct convolution's multiplies; with few
 * channels the products are too short to pay for the transforms, and a tile
 * block's transformed inputs (R x (M+2)^2 x channels floats, on the stack)
 * must stay small. Measured on horse_or_human (CPU samples per layer of a
 * training epoch): 3 channels, direct 1.5x faster than F(2x2); 16, 32 and 64
 * channels, F(2x2) 1.3x, 1.5x and 1.6x faster than direct, and F(4x4) 1.35x,
 * 1.44x and 1.35x faster than F(2x2). The environment variable
 * NNCC_WINOGRAD (auto, never, 2x2, 4x4; docs/commands.md) overrides the rule
 * where the algorithm applies, so that tests run every way. */

enum { WINOGRAD_STACK_BYTES = 256 << 10 };

static bool winograd_applies(const Layer *l)
{
    return l->in.rank == 3 && l->kh == 3 && l->kw == 3 && l->sh == 1 && l->sw == 1 &&
           l->dh == 1 && l->dw == 1;
}

/* Multiply-adds and transform ops of F(MxM, 3x3) for the layer's forward pass. */
static double winograd_cost(const Layer *l, int m)
{
    double c = (double)l->in.dim[2], f = (double)l->filters, xi = (m + 2.0) * (m + 2.0);
    double tiles = (double)((l->out.dim[0] + m - 1) / m) * (double)((l->out.dim[1] + m - 1) / m);
    return tiles * (xi * c * f + 4.0 * xi * (c + f));
}

/* The tile size the rule picks: 4, 2, or 0 for the direct convolution. */
static int winograd_tile(const Layer *l)
{
    double c = (double)l->in.dim[2], f = (double)l->filters;
    double direct = 9.0 * c * f * (double)l->out.dim[0] * (double)l->out.dim[1];
    int best = 0;
    double best_cost = 0.7 * direct;
    for (int m = 2; m <= 4; m += 2) {
        bool fits = 12.0 * (m + 2.0) * (m + 2.0) * c * 4.0 <= WINOGRAD_STACK_BYTES;
        if (c >= 8 && f >= 8 && fits && winograd_cost(l, m) < best_cost)
            best = m, best_cost = winograd_cost(l, m);
    }
    return best;
}

static const LayerOps conv2d_winograd2_ops, conv2d_winograd4_ops;

static const LayerOps *conv2d_variant(const Layer *l)
{
    static const char *const choices[] = {"auto", "never", "2x2", "4x4", NULL};
    const char *force = getenv("NNCC_WINOGRAD");
    int choice = 0;
    while (force && *force && choices[choice] && strcmp(force, choices[choice]) != 0)
        choice++;
    if (force && *force && !choices[choice])
        error_at(NULL, "NNCC_WINOGRAD is '%s'; supported: auto, never, 2x2, 4x4", force);
    int m = !winograd_applies(l) ? 0 : choice == 0 ? winograd_tile(l) : choice == 1 ? 0
          : 2 * (choice - 1);
    return m == 4 ? &conv2d_winograd4_ops : m == 2 ? &conv2d_winograd2_ops : l->ops;
}

/* Tiles of dkernel's chunk: about 32 KB of v and q per 16 products. */
static long winograd_chunk(const Layer *l, int m)
{
    return 8192 * 16 / ((m + 2) * (m + 2)) / (l->in.dim[2] + l->filters) + 1;
}

/* The transformed kernel (forward and dx); du and a chunk's v and q (dkernel). */
static long winograd_scratch(const Layer *l, int m)
{
    long c = l->in.dim[2], f = l->filters, xi = (m + 2) * (m + 2);
    return xi * c * f + xi * winograd_chunk(l, m) * (c + f);
}

static long winograd2_scratch(const Layer *l)
{
    return winograd_scratch(l, 2);
}

static long winograd4_scratch(const Layer *l)
{
    return winograd_scratch(l, 4);
}

/* The products and steps of the forward pass, and dx's products (filters to
 * channels, on the forward's tiles). */
static void winograd_holes(Holes *h, const Layer *l, int m)
{
    long pt = l->same ? pad_before(l->in.dim[0], l->out.dim[0], 3, 1) : 0;
    long pl = l->same ? pad_before(l->in.dim[1], l->out.dim[1], 3, 1) : 0;
    static const char *const keys[] = {"H", "W", "C", "OH", "OW", "OC", "PT", "PL", "M", NULL};
    const long fwd[] = {l->in.dim[0], l->in.dim[1], l->in.dim[2],
                        l->out.dim[0], l->out.dim[1], l->out.dim[2], pt, pl, m};
    const long dx[] = {l->in.dim[0], l->in.dim[1], l->out.dim[2],
                       l->out.dim[0], l->out.dim[1], l->in.dim[2], pt, pl, m};
    hole_part(h, "STEPS", "conv2d_winograd_core", "fwd", keys, fwd, NULL, NULL);
    hole_part(h, "RUN", "conv2d_winograd_run", "fwd", keys, fwd, NULL, NULL);
    hole_part(h, "DX_STEPS", "conv2d_winograd_core", "dx", keys, dx, NULL, NULL);
    hole_long(h, "CHUNK", winograd_chunk(l, m));
    hole_long(h, "M", m);
}

static void winograd2_holes(Holes *h, const Layer *l)
{
    winograd_holes(h, l, 2);
}

static void winograd4_holes(Holes *h, const Layer *l)
{
    winograd_holes(h, l, 4);
}

/* Training runs Winograd; --inference runs the direct template, which needs no scratch. */
#define CONV2D_WINOGRAD_OPS(M)                                                                 \
    {                                                                                          \
        .keras_name = "Conv2D", .default_name = "conv2d", .keys = conv2d_keys,                 \
        .tensors = conv2d_tensors, .tmpl = "conv2d_winograd", .inference_tmpl = "conv2d",      \
        .scratch_size = winograd##M##_scratch, .holes = winograd##M##_holes,                   \
        .forward_args = "n x P0 P1 y scratch", .inference_args = "n x P0 P1 y",                \
        .backward_args = "n x y P0 dy dx G0 G1 scratch",                                       \
        .flags = LF_FEATURE_MAP | LF_SCRATCH_ALWAYS | LF_OWN_RELU,                             \
    }
static const LayerOps conv2d_winograd2_ops = CONV2D_WINOGRAD_OPS(2);
static const LayerOps conv2d_winograd4_ops = CONV2D_WINOGRAD_OPS(4);

const LayerOps conv2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"filters", "kernel_size", "strides", "padding", NULL},
    .keras_name = "Conv2D", .aliases = (const char *const[]){"Convolution2D", NULL},
    .default_name = "conv2d", .keys = conv2d_keys,
    .keras = (const KerasKey *const[]){weighted_keras_keys, conv2d_keras_keys,
                                       channels_last_keras_keys, NULL},
    .shape = conv2d_shape, .tensors = conv2d_tensors, .tmpl = "conv2d",
    .scratch_size = conv2d_scratch,
    .forward_args = "n x P0 P1 y", .backward_args = "n x y P0 dy dx G0 G1 scratch",
    .flags = LF_FEATURE_MAP | LF_OWN_RELU, .variant = conv2d_variant,
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
