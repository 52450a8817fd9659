/* layer_reshape.c - the layer table's rows for the layers that change how
 * values are laid out or scaled, without weights: Rescaling (y = x * scale +
 * offset, templates/rescaling*.c.in) and Reshape. Reshape is no op at all, as
 * Flatten: NHWC buffers are contiguous, so its output is its input's buffer
 * read with another shape. */
#include "nncc.h"

#include <stddef.h>

#define F(field) offsetof(Layer, field)

/* ---- Rescaling ----------------------------------------------------------------------- */

static void rescaling_holes(Holes *h, const Layer *l)
{
    hole_float(h, "SCALE", l->scale);
    hole_float(h, "OFFSET", l->offset);
}

static const KeySpec rescaling_keys[] = {
    {"scale", ARG_NUMBER, F(scale), 0, true, NULL},
    {"offset", ARG_NUMBER, F(offset), 0, false, NULL},
    {0},
};

const LayerOps rescaling_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"scale", "offset", NULL},
    .keras_name = "Rescaling", .default_name = "rescaling", .keys = rescaling_keys,
    .shape = same_shape, .tmpl = "rescaling",
    .forward_args = "n x y", .backward_args = "n dy dx", .holes = rescaling_holes,
};

/* ---- Reshape ------------------------------------------------------------------------- */

/* Sizes beyond this are refused before any arithmetic can overflow. */
#define MAX_DIM 1000000L

/* target_shape: 1 to 3 sizes, one of which may be -1, the size the others
 * leave; it stays -1 until reshape_shape knows the input. The key is required,
 * so args holds it. */
static void reshape_parse(Layer *l, const Node *args)
{
    const Node *v = map_get(args, "target_shape");
    if (v->kind != NODE_SEQ || v->n < 1 || v->n > 3)
        error_at(v, "target_shape must be a list of 1 to 3 sizes, e.g. [7, 7, 1] or [-1, 4]");
    bool open = false;
    l->target.rank = v->n;
    for (int i = 0; i < v->n; i++) {
        long d = node_int(v->items[i], "target_shape", -1, MAX_DIM);
        if (d == 0)
            error_at(v->items[i], "target_shape's sizes must be positive, or -1 for the one "
                                  "that the others leave");
        if (d == -1 && open)
            error_at(v->items[i], "target_shape may leave one size open (-1), not two");
        open |= d == -1;
        l->target.dim[i] = d;
    }
}

static void reshape_shape(Layer *l)
{
    long size = shape_size(&l->in), known = 1;
    int open = -1;
    for (int i = 0; i < l->target.rank; i++) {
        if (l->target.dim[i] == -1)
            open = i;
        else
            known = checked_mul(l, known, l->target.dim[i]);
    }
    if (open >= 0 && size % known != 0)
        error_at(l->where, "Reshape: target_shape %s cannot hold its input %s: %ld values are "
                           "not a multiple of %ld", shape_str(&l->target), shape_str(&l->in),
                 size, known);
    if (open < 0 && known != size)
        error_at(l->where, "Reshape: target_shape %s holds %ld values, its input %s holds %ld",
                 shape_str(&l->target), known, shape_str(&l->in), size);
    l->out = l->target;
    if (open >= 0)
        l->out.dim[open] = size / known;
}

static const KeySpec reshape_keys[] = {
    {"target_shape", ARG_CUSTOM, 0, 0, true, NULL},
    {0},
};

const LayerOps reshape_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"target_shape", NULL},
    .keras_name = "Reshape", .default_name = "reshape", .keys = reshape_keys,
    .parse = reshape_parse, .shape = reshape_shape,
};
