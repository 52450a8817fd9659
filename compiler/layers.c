/* layers.c - the layer table, and the readers of the arguments it describes.
 *
 * A row (LayerOps, nncc.h) says all nncc knows about a kind of layer: its
 * Keras names, its arguments with their types, its shape rule, its tensors,
 * its templates and the arguments of their calls. The rows live in the files
 * of their families, next to their functions; layers.def lists them. Reading
 * a layer's arguments is generic: each KeySpec names a type, a type has one
 * reader here, and the reader checks the value at its node, so the native
 * format and Keras exports get the same checks and messages. */
#include "nncc.h"

#include <string.h>
#include <strings.h>

#define LAYER(x) extern const LayerOps x##_ops;
#include "layers.def"
#undef LAYER

const LayerOps *const layer_table[] = {
#define LAYER(x) &x##_ops,
#include "layers.def"
#undef LAYER
    NULL,
};

/* Sizes beyond this are refused before any arithmetic can overflow. */
#define MAX_DIM 1000000L

const LayerOps *layer_ops(const char *name)
{
    for (const LayerOps *const *r = layer_table; *r; r++) {
        if (strcasecmp(name, (*r)->keras_name) == 0)
            return *r;
        for (const char *const *a = (*r)->aliases; a && *a; a++)
            if (strcmp(name, *a) == 0)
                return *r;
    }
    return NULL;
}

int layer_index(const LayerOps *ops)
{
    int i = 0;
    while (layer_table[i] != ops)
        i++;
    return i;
}

/* ---- keys ------------------------------------------------------------------------- */

/* Every layer takes these; a layer with tensors also trainable and weights. */
static const char *const common_keys[] = {"name", "input_shape", "inputs", NULL};
static const char *const tensor_keys[] = {"trainable", "weights", NULL};

const char *const *layer_native_keys(const LayerOps *ops)
{
    enum { MAX_KEYS = 40 };
    static const char *keys[MAX_KEYS + 1];
    int n = 0;
    for (const KeySpec *k = ops->keys; k->key && n < MAX_KEYS; k++)
        keys[n++] = k->key;
    for (const char *const *k = common_keys; *k && n < MAX_KEYS; k++)
        keys[n++] = *k;
    for (const char *const *k = tensor_keys; ops->tensors && *k && n < MAX_KEYS; k++)
        keys[n++] = *k;
    keys[n] = NULL;
    return keys;
}

const KerasKey *keras_rule(const LayerOps *ops, const char *key)
{
    for (const KerasKey *const *list = ops->keras; list && *list; list++)
        for (const KerasKey *k = *list; k->key; k++)
            if (strcmp(k->key, key) == 0)
                return k;
    return NULL;
}

/* ---- one reader per argument type ------------------------------------------------- */

/* A size given as an int or as a pair (Keras's kernel_size: 3 or [3, 5]). */
static void int_or_pair(const Node *n, const char *what, long *a, long *b)
{
    if (n->kind == NODE_SCALAR) {
        *a = *b = node_int(n, what, 1, MAX_DIM);
        return;
    }
    if (n->kind != NODE_SEQ || n->n != 2)
        error_at(n, "%s must be an integer or a list of two integers", what);
    *a = node_int(n->items[0], what, 1, MAX_DIM);
    *b = node_int(n->items[1], what, 1, MAX_DIM);
}

/* 3 or [3]: a 1-D layer's size, which Keras's config writes as a tuple. */
static long int_or_single(const Node *n, const char *what)
{
    if (n->kind == NODE_SEQ && n->n == 1)
        n = n->items[0];
    if (n->kind != NODE_SCALAR)
        error_at(n, "%s must be an integer or a list of one integer", what);
    return node_int(n, what, 1, MAX_DIM);
}

static bool parse_padding(const Node *n)
{
    const char *s = node_str(n, "padding");
    if (strcasecmp(s, "valid") == 0)
        return false;
    if (strcasecmp(s, "same") == 0)
        return true;
    static const char *const choices[] = {"valid", "same", NULL};
    unknown_word(n, "padding", choices);
}

static double ranged(const Node *v, const char *key, ArgType type)
{
    double x = node_num(v, key);
    if (type == ARG_FRACTION && !(x >= 0 && x < 1))
        error_at(v, "%s must be at least 0 and less than 1, got %s", key, v->text);
    if (type == ARG_UNIT_RANGE && !(x >= 0 && x <= 1))
        error_at(v, "%s must be between 0 and 1, got %s", key, v->text);
    if (type == ARG_POSITIVE && !(x > 0))
        error_at(v, "%s must be positive, got %s", key, v->text);
    if (type == ARG_NONNEGATIVE && !(x >= 0))
        error_at(v, "%s must be at least 0, got %s", key, v->text);
    return x;
}

/* The choices for the tensor a key names: kernel_initializer -> "kernel". */
static TensorChoice *choice_for(Layer *l, const char *key)
{
    int len = (int)(strrchr(key, '_') - key);
    for (int i = 0; i < l->n_choices; i++)
        if ((int)strlen(l->choices[i].role) == len && strncmp(l->choices[i].role, key, len) == 0)
            return &l->choices[i];
    if (l->n_choices == MAX_LAYER_TENSORS)
        error_at(l->where, "%s: too many initializers and regularizers", l->name);
    TensorChoice *c = &l->choices[l->n_choices++];
    snprintf(c->role, sizeof c->role, "%.*s", len, key);
    return c;
}

/* Keras names the key of a tensor ROLE_kernel after ROLE alone
 * (depthwise_initializer, recurrent_initializer). */
const TensorChoice *layer_choice(const Layer *l, const char *role)
{
    for (int i = 0; i < l->n_choices; i++) {
        const char *r = l->choices[i].role;
        size_t n = strlen(r);
        if (strcmp(r, role) == 0 || (strncmp(r, role, n) == 0 && strcmp(role + n, "_kernel") == 0))
            return &l->choices[i];
    }
    return NULL;
}

static void read_arg(Layer *l, const KeySpec *k, const Node *v)
{
    char *base = (char *)l;
    switch (k->type) {
    case ARG_SIZE:
        *(long *)(base + k->field) = node_int(v, k->key, 1, MAX_DIM);
        break;
    case ARG_SIZE_PAIR:
        int_or_pair(v, k->key, (long *)(base + k->field), (long *)(base + k->field2));
        break;
    case ARG_SIZE_1D:
        *(long *)(base + k->field) = int_or_single(v, k->key);
        break;
    case ARG_FRACTION:
    case ARG_UNIT_RANGE:
    case ARG_POSITIVE:
    case ARG_NUMBER:
    case ARG_NONNEGATIVE:
        *(double *)(base + k->field) = ranged(v, k->key, k->type);
        break;
    case ARG_BOOL:
        *(bool *)(base + k->field) = node_bool(v, k->key);
        break;
    case ARG_ACTIVATION:
        *(Activation *)(base + k->field) = parse_activation(v);
        break;
    case ARG_PADDING:
        *(bool *)(base + k->field) = parse_padding(v);
        break;
    case ARG_INITIALIZER:
        parse_initializer(v, k->key, &choice_for(l, k->key)->init);
        break;
    case ARG_REGULARIZER:
        parse_regularizer(v, k->key, &choice_for(l, k->key)->reg);
        break;
    case ARG_CUSTOM:
    case ARG_LAYER:
        break;
    }
}

/* weights: {kernel: [...], bias: [...]}: the numbers now, their shapes once
 * the layer's shape is known (check.c). */
static void read_weights(Layer *l, const Node *v)
{
    if (v->kind != NODE_MAP)
        error_at(v, "weights must be a map, e.g. {kernel: [...], bias: [...]}");
    if (v->n > MAX_LAYER_TENSORS)
        error_at(v, "weights: %s has at most %d tensors", l->ops->keras_name, MAX_LAYER_TENSORS);
    for (int i = 0; i < v->n; i++) {
        InlineWeight *w = &l->weights[l->n_weights++];
        snprintf(w->key, sizeof w->key, "%s", node_str(v->keys[i], "weights"));
        char what[MAX_NAME + 40];
        snprintf(what, sizeof what, "weights.%s of %s", w->key, l->name);
        parse_numbers(v->items[i], what, &w->values);
    }
}

void layer_parse_args(Layer *l, const Node *args, const Node *where)
{
    for (const KeySpec *k = l->ops->keys; k->key; k++) {
        const Node *v = args ? map_get(args, k->key) : NULL;
        if (v)
            read_arg(l, k, v);
        else if (k->required)
            error_at(args ? args : where, "%s needs '%s'", l->ops->keras_name, k->key);
    }
    if (l->ops->parse)
        l->ops->parse(l, args);
    const Node *v;
    if (args && (v = map_get(args, "trainable")))
        l->trainable = node_bool(v, "trainable");
    if (args && (v = map_get(args, "weights")))
        read_weights(l, v);
}
