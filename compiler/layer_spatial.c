/* layer_spatial.c - the layer table's rows for the layers that move an image's
 * cells without weights: ZeroPadding2D, Cropping2D, UpSampling2D, and
 * GlobalMaxPooling2D. All are NHWC (Keras's channels_last, its only
 * data_format here).
 *
 * ZeroPadding2D and Cropping2D are one operation, a shift of the image with
 * zeros where nothing lands: by (top, left) to pad, by (-top, -left) to crop.
 * The gradient of a shift is the opposite shift, so both use the one pair of
 * templates, templates/shift2d*.c.in, with the offsets as holes. UpSampling2D
 * is in templates/upsampling2d*.c.in, GlobalMaxPooling2D in gmp2d*.c.in. */
#include "nncc.h"

#include <stddef.h>
#include <string.h>

#define F(field) offsetof(Layer, field)

/* Larger pads or crops are refused before any arithmetic on sizes. */
#define MAX_PAD 1000000L

/* ---- ZeroPadding2D, Cropping2D ------------------------------------------------------- */

/* One axis of Keras's padding or cropping: n (both sides) or [before, after]. */
static void read_sides(const Node *n, const char *key, long *before, long *after)
{
    if (n->kind == NODE_SCALAR) {
        *before = *after = node_int(n, key, 0, MAX_PAD);
        return;
    }
    if (n->kind != NODE_SEQ || n->n != 2)
        error_at(n, "%s: each axis is an integer or a list of two, [before, after]", key);
    *before = node_int(n->items[0], key, 0, MAX_PAD);
    *after = node_int(n->items[1], key, 0, MAX_PAD);
}

/* Keras's three forms: n; [rows, columns]; [[top, bottom], [left, right]]
 * (an axis of the second may be written as in the third, as Keras allows). */
static void read_edges(Layer *l, const Node *args, const char *key)
{
    const Node *v = args ? map_get(args, key) : NULL;
    if (!v)
        return;
    if (v->kind == NODE_SCALAR) {
        read_sides(v, key, &l->pad[0], &l->pad[1]);
        l->pad[2] = l->pad[3] = l->pad[0];
        return;
    }
    if (v->kind != NODE_SEQ || v->n != 2)
        error_at(v, "%s must be an integer, [rows, columns] or [[top, bottom], [left, right]]",
                 key);
    read_sides(v->items[0], key, &l->pad[0], &l->pad[1]);
    read_sides(v->items[1], key, &l->pad[2], &l->pad[3]);
}

static void zeropad2d_defaults(Layer *l)
{
    l->pad[0] = l->pad[1] = l->pad[2] = l->pad[3] = 1;
}

static void zeropad2d_parse(Layer *l, const Node *args)
{
    read_edges(l, args, "padding");
}

static void cropping2d_parse(Layer *l, const Node *args)
{
    read_edges(l, args, "cropping");
}

/* The input grown (sign 1) or shrunk (sign -1) by the edges; a crop must leave
 * at least one row and one column. */
static void edges_shape(Layer *l, int sign)
{
    need_image(l);
    long h = l->in.dim[0] + sign * (l->pad[0] + l->pad[1]);
    long w = l->in.dim[1] + sign * (l->pad[2] + l->pad[3]);
    if (h < 1 || w < 1)
        error_at(l->where, "%s crops %ld + %ld rows and %ld + %ld columns of an input %s: "
                           "nothing is left",
                 l->ops->keras_name, l->pad[0], l->pad[1], l->pad[2], l->pad[3],
                 shape_str(&l->in));
    l->out = (Shape){3, {h, w, l->in.dim[2]}};
    checked_mul(l, checked_mul(l, h, w), l->in.dim[2]);
}

static void zeropad2d_shape(Layer *l)
{
    edges_shape(l, 1);
}

static void cropping2d_shape(Layer *l)
{
    edges_shape(l, -1);
}

/* Where the input's top left cell lands in the output. */
static void zeropad2d_holes(Holes *h, const Layer *l)
{
    hole_long(h, "TOP", l->pad[0]);
    hole_long(h, "LEFT", l->pad[2]);
}

static void cropping2d_holes(Holes *h, const Layer *l)
{
    hole_long(h, "TOP", -l->pad[0]);
    hole_long(h, "LEFT", -l->pad[2]);
}

const LayerOps zeropad2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"padding", NULL},
    .keras_name = "ZeroPadding2D", .default_name = "zero_padding2d",
    .keys = (const KeySpec[]){{"padding", ARG_CUSTOM, 0, 0, false, NULL}, {0}},
    .keras = (const KerasKey *const[]){channels_last_keras_keys, NULL},
    .defaults = zeropad2d_defaults, .parse = zeropad2d_parse, .shape = zeropad2d_shape,
    .tmpl = "shift2d", .holes = zeropad2d_holes,
    .forward_args = "n x y", .backward_args = "n dy dx", .flags = LF_FEATURE_MAP,
};

const LayerOps cropping2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"cropping", NULL},
    .keras_name = "Cropping2D", .default_name = "cropping2d",
    .keys = (const KeySpec[]){{"cropping", ARG_CUSTOM, 0, 0, false, NULL}, {0}},
    .keras = (const KerasKey *const[]){channels_last_keras_keys, NULL},
    .parse = cropping2d_parse, .shape = cropping2d_shape,
    .tmpl = "shift2d", .holes = cropping2d_holes,
    .forward_args = "n x y", .backward_args = "n dy dx", .flags = LF_FEATURE_MAP,
};

/* ---- UpSampling2D ------------------------------------------------------------------- */

static void upsampling2d_defaults(Layer *l)
{
    l->size_h = l->size_w = 2;
}

/* Keras's other interpolations (bilinear, ...) blend cells: not implemented. */
static void upsampling2d_parse(Layer *l, const Node *args)
{
    (void)l;
    const Node *v = args ? map_get(args, "interpolation") : NULL;
    if (v && strcmp(node_str(v, "interpolation"), "nearest") != 0)
        error_at(v, "UpSampling2D: interpolation '%s' is not supported; nncc implements "
                    "only 'nearest'", v->text);
}

static void upsampling2d_shape(Layer *l)
{
    need_image(l);
    long h = checked_mul(l, l->in.dim[0], l->size_h), w = checked_mul(l, l->in.dim[1], l->size_w);
    l->out = (Shape){3, {h, w, l->in.dim[2]}};
    checked_mul(l, checked_mul(l, h, w), l->in.dim[2]);
}

static void upsampling2d_holes(Holes *h, const Layer *l)
{
    hole_long(h, "UH", l->size_h);
    hole_long(h, "UW", l->size_w);
}

static const KeySpec upsampling2d_keys[] = {
    {"size", ARG_SIZE_PAIR, F(size_h), F(size_w), false, NULL},
    {"interpolation", ARG_CUSTOM, 0, 0, false, NULL},
    {0},
};

const LayerOps upsampling2d_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"size", NULL},
    .keras_name = "UpSampling2D", .default_name = "up_sampling2d", .keys = upsampling2d_keys,
    .keras = (const KerasKey *const[]){channels_last_keras_keys, NULL},
    .defaults = upsampling2d_defaults, .parse = upsampling2d_parse,
    .shape = upsampling2d_shape, .tmpl = "upsampling2d", .holes = upsampling2d_holes,
    .forward_args = "n x y", .backward_args = "n dy dx", .flags = LF_FEATURE_MAP,
};

/* ---- GlobalMaxPooling2D ------------------------------------------------------------- */

const LayerOps gmp2d_ops = {
    .keras_name = "GlobalMaxPooling2D",
    .aliases = (const char *const[]){"GlobalMaxPool2D", NULL},
    .default_name = "global_max_pooling2d", .keys = (const KeySpec[]){{0}},
    .keras = (const KerasKey *const[]){global_pool_keras_keys, NULL},
    .shape = global_pool_shape, .tmpl = "gmp2d",
    .forward_args = "n x y", .backward_args = "n x dy dx", .flags = LF_FLAT_OUTPUT,
};
