/* layer_lambda.c - the layer table's row for Lambda, as nncc can compile it:
 * elementwise arithmetic on x written out, `Lambda: {expression: "x * 100"}`.
 * The expression is parsed by expr.c; the forward template gets it back as C
 * (templates/lambda.c.in), the backward its derivative, taken symbolically.
 *
 * Keras exports a Lambda's function as marshalled Python bytecode, which says
 * nothing nncc could trust or read: such a layer is refused, with the native
 * spelling to write instead. */
#include "nncc.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const lambda_vars[] = {"x", NULL};
static const char *const lambda_c_vars[] = {"x[i]", NULL};

static void lambda_parse(Layer *l, const Node *args)
{
    const Node *v = args ? map_get(args, "function") : NULL;
    if (v)
        error_at(v, "Lambda: Keras exports the function as marshalled Python bytecode, which "
                    "nncc cannot read; write the layer as Lambda: {expression: \"x * 100\"} "
                    "(elementwise arithmetic on x) in a native model file");
    v = args ? map_get(args, "expression") : NULL;
    if (!v)
        error_at(args ? args : l->where, "Lambda needs 'expression', e.g. \"x * 100\"");
    l->expr = expr_parse(v, "expression", lambda_vars);
}

static char *c_text(const Expr *e)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    if (!f)
        error_at(NULL, "out of memory");
    expr_emit(f, e, lambda_c_vars);
    fclose(f);
    return text;
}

static void lambda_holes(Holes *h, const Layer *l)
{
    Expr *d = expr_derivative(l->expr, 0);
    char *y = c_text(l->expr), *dy = c_text(d);
    hole_text(h, "EXPR", y);
    hole_text(h, "DERIVATIVE", dy);
    free(y);
    free(dy);
    expr_free(d);
}

static const KeySpec lambda_keys[] = {
    {"expression", ARG_CUSTOM, 0, 0, false, NULL},
    {"function", ARG_CUSTOM, 0, 0, false, NULL},
    {0},
};

/* What Keras's config holds beside the function: nothing nncc computes. */
static const KerasKey lambda_keras_keys[] = {
    {"function_type", KERAS_IGNORE}, {"module", KERAS_IGNORE}, {"output_shape", KERAS_IGNORE},
    {"output_shape_type", KERAS_IGNORE}, {"output_shape_module", KERAS_IGNORE},
    {"arguments", KERAS_IGNORE}, {NULL, 0},
};

const LayerOps lambda_ops = {
    .keras_name = "Lambda", .default_name = "lambda", .keys = lambda_keys,
    .positional = (const char *const[]){"expression", NULL},
    .keras = (const KerasKey *const[]){lambda_keras_keys, NULL},
    .parse = lambda_parse, .shape = same_shape, .tmpl = "lambda",
    .forward_args = "n x y", .backward_args = "n x dy dx", .holes = lambda_holes,
};
