/* layer_merge.c - the layer table's rows for Keras's merge layers: Add,
 * Subtract, Multiply, Average, Maximum and Concatenate. They read two or more
 * earlier layers (`inputs: [a, b]`), which makes the model a graph; the
 * planner sums the gradients of a value read twice. Elementwise merges want
 * equal shapes (Keras 2 would broadcast some; nncc says so instead). Their C
 * is in templates/add*.c.in, subtract*, multiply*, average*, maximum* and
 * concatenate*. */
#include "nncc.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

static bool same_shapes(const Shape *a, const Shape *b)
{
    return a->rank == b->rank && memcmp(a->dim, b->dim, (size_t)a->rank * sizeof a->dim[0]) == 0;
}

static void elementwise_shape(Layer *l)
{
    for (int k = 1; k < l->n_inputs; k++)
        if (!same_shapes(&l->ins[k], &l->ins[0]))
            error_at(l->where, "%s needs inputs of one shape, got %s and %s",
                     l->ops->keras_name, shape_str(&l->ins[0]), shape_str(&l->ins[k]));
    l->out = l->in;
}

static void subtract_shape(Layer *l)
{
    if (l->n_inputs != 2)
        error_at(l->where, "Subtract takes exactly two inputs, got %d", l->n_inputs);
    elementwise_shape(l);
}

static void n_in_holes(Holes *h, const Layer *l)
{
    hole_long(h, "N_IN", l->n_inputs);
}

#define ELEMENTWISE(row, keras, name, template, shape_rule)                                  \
    const LayerOps row##_ops = {                                                           \
        .keras_name = keras, .default_name = name, .keys = (const KeySpec[]){{0}},           \
        .shape = shape_rule, .tmpl = template, .forward_args = "n xs y",                      \
        .backward_args = "n xs y dy dxs", .holes = n_in_holes, .flags = LF_MERGE,            \
    }

ELEMENTWISE(add, "Add", "add", "add", elementwise_shape);
ELEMENTWISE(subtract, "Subtract", "subtract", "subtract", subtract_shape);
ELEMENTWISE(multiply, "Multiply", "multiply", "multiply", elementwise_shape);
ELEMENTWISE(average, "Average", "average", "average", elementwise_shape);
ELEMENTWISE(maximum, "Maximum", "maximum", "maximum", elementwise_shape);

/* ---- Concatenate ---------------------------------------------------------------------- */

/* Keras counts axes with the batch (axis 1 is the first of a sample's) or
 * from the end (-1, the default, is the last); nncc's shapes have no batch. */
static int concat_axis(const Layer *l)
{
    return (int)(l->axis < 0 ? l->in.rank + l->axis : l->axis - 1);
}

static void concatenate_defaults(Layer *l)
{
    l->axis = -1;
}

static void concatenate_parse(Layer *l, const Node *args)
{
    const Node *v = args ? map_get(args, "axis") : NULL;
    if (v)
        l->axis = node_int(v, "axis", -3, 3);
    if (l->axis == 0)
        error_at(v, "Concatenate cannot join along axis 0, the batch");
}

static void concatenate_shape(Layer *l)
{
    int axis = concat_axis(l);
    if (axis < 0 || axis >= l->in.rank)
        error_at(l->where, "Concatenate's axis %ld does not exist in its inputs %s", l->axis,
                 shape_str(&l->in));
    l->out = l->in;
    for (int k = 1; k < l->n_inputs; k++) {
        Shape s = l->ins[k];
        bool fits = s.rank == l->in.rank;
        for (int d = 0; fits && d < s.rank; d++)
            fits = d == axis || s.dim[d] == l->in.dim[d];
        if (!fits)
            error_at(l->where, "Concatenate along axis %ld needs inputs that differ only "
                     "there, got %s and %s", l->axis, shape_str(&l->in), shape_str(&s));
        l->out.dim[axis] += s.dim[axis];
    }
}

/* Each sample is OUTER runs, one from each input in turn: input k's run is
 * its size along the axis times the sizes after it. */
static void concatenate_holes(Holes *h, const Layer *l)
{
    int axis = concat_axis(l);
    long outer = 1, inner = 1;
    for (int d = 0; d < axis; d++)
        outer *= l->in.dim[d];
    for (int d = axis + 1; d < l->in.rank; d++)
        inner *= l->in.dim[d];
    long runs[MAX_INPUTS];
    for (int k = 0; k < l->n_inputs; k++)
        runs[k] = l->ins[k].dim[axis] * inner;
    hole_long(h, "N_IN", l->n_inputs);
    hole_long(h, "OUTER", outer);
    hole_long(h, "RUN", l->out.dim[axis] * inner);
    hole_list(h, "RUNS", runs, l->n_inputs);
}

static const KeySpec concatenate_keys[] = {
    {"axis", ARG_CUSTOM, 0, 0, false, NULL},
    {0},
};

const LayerOps concatenate_ops = {
    /* Keras's positional arguments, in order (`Conv2D: [32, 3]`) */
    .positional = (const char *const[]){"axis", NULL},
    .keras_name = "Concatenate", .default_name = "concatenate", .keys = concatenate_keys,
    .defaults = concatenate_defaults, .parse = concatenate_parse, .shape = concatenate_shape,
    .tmpl = "concatenate", .forward_args = "n xs y", .backward_args = "n dy dxs",
    .holes = concatenate_holes, .flags = LF_MERGE,
};
