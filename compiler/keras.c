/* keras.c - a model written by Keras's model.to_yaml() or model.to_json() into
 * the same Model that the native format gives.
 *
 * Keras writes a Sequential model as {class_name: Sequential, config: ...} in
 * one of two layouts: up to Keras 2.2.0, `config` is the list of layers and the
 * input shape is the first layer's `batch_input_shape`; from 2.2.4 on it is
 * {name: ..., layers: [...]}, often with an InputLayer first. Each layer is
 * {class_name: Dense, config: {...}}, and its config spells out every argument,
 * defaults included.
 *
 * The arguments the native format knows too (units, strides, ...) are handed
 * to add_layer(), so one piece of code checks them for both formats. Every
 * other key either does not touch the numbers (dtype, a dropout seed) or must
 * hold Keras's default (data_format: channels_last, no regularizer, ...): a
 * model that Keras would train differently is refused, naming the key, rather
 * than compiled into something else. A key this file does not know is refused
 * for the same reason.
 */
#include "nncc.h"

#include <ctype.h>
#include <string.h>

/* ---- layer classes -------------------------------------------------------------------- */

/* An InputLayer is read for its shape, then skipped; it has no row. */
static const LayerOps input_layer = {.keras_name = "InputLayer"};

_Noreturn static void unsupported_class(const Node *n)
{
    char list[1024] = "";
    const char *names[4 * MAX_LAYER_KINDS + 2];
    int count = 0;
    for (const LayerOps *const *r = layer_table; *r; r++) {
        names[count++] = (*r)->keras_name;
        for (const char *const *a = (*r)->aliases; a && *a; a++)
            names[count++] = *a;
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                 (*r)->keras_name);
    }
    names[count++] = input_layer.keras_name;
    names[count] = NULL;
    snprintf(list + strlen(list), sizeof list - strlen(list), ", %s", input_layer.keras_name);
    const char *close = closest_word(n->text, names);
    if (close)
        error_at(n, "layer '%s' is not supported by nncc (supported: %s); did you mean '%s'?",
                 n->text, list, close);
    error_at(n, "layer '%s' is not supported by nncc (supported: %s)", n->text, list);
}

/* Keras's class names are exact, unlike the native format's: no case folding. */
static const LayerOps *class_ops(const Node *class_name)
{
    const char *s = node_str(class_name, "class_name");
    if (strcmp(s, input_layer.keras_name) == 0)
        return &input_layer;
    const LayerOps *ops = layer_ops(s);
    bool exact = ops && strcmp(s, ops->keras_name) == 0;
    for (const char *const *a = ops ? ops->aliases : NULL; a && *a; a++)
        exact |= strcmp(s, *a) == 0;
    if (!exact)
        unsupported_class(class_name);
    return ops;
}

/* ---- what each config key means to nncc ------------------------------------------------ */

/* Keys of every layer's config besides the row's. An argument of the native
 * format (name, trainable, the row's keys) is handed to add_layer(); any other
 * key has a rule: it must hold Keras's default, or it changes nothing. */
static const KerasKey layer_keys[] = {
    {"batch_input_shape", KERAS_IGNORE}, {"dtype", KERAS_IGNORE}, {NULL, 0},
};
static const KerasKey input_keys[] = {
    {"batch_input_shape", KERAS_IGNORE}, {"batch_shape", KERAS_IGNORE},
    {"dtype", KERAS_IGNORE}, {"name", KERAS_IGNORE}, {"sparse", KERAS_FALSE},
    {"ragged", KERAS_FALSE}, {"optional", KERAS_FALSE}, {NULL, 0},
};
#define MAX_PASSED 16   /* arguments of one layer, at most; YAML keys are unique */

/* What the reader carries from one layer to the next. */
typedef struct {
    Model *m;
    int counts[MAX_LAYER_KINDS];      /* for Keras's default names */
    int rank;                         /* of the next layer's input, no batch; 0: unknown */
    const char *type;                 /* the class name, for messages */
    bool functional;                  /* layers name their inputs (inbound_nodes) */
    const char *input_name;           /* a functional model's InputLayer */
} Reader;

/* ---- values ------------------------------------------------------------------------------ */

static bool is_null(const Node *n)
{
    return n->kind == NODE_SCALAR && !n->quoted &&
           (!*n->text || strcmp(n->text, "null") == 0 || strcmp(n->text, "~") == 0);
}

/* A value, short, for "X is not supported": a scalar's text, a list of them
 * as "[2, 2]", an object's class. */
static const char *brief(const Node *n)
{
    static char buf[64];
    if (n->kind == NODE_SCALAR)
        return n->text;
    if (n->kind == NODE_SEQ) {
        snprintf(buf, sizeof buf, "[");
        for (int i = 0; i < n->n; i++)
            snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", i ? ", " : "",
                     n->items[i]->kind == NODE_SCALAR ? n->items[i]->text : "...");
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "]");
        return buf;
    }
    const Node *class_name = map_get(n, "class_name");
    return class_name && class_name->kind == NODE_SCALAR ? class_name->text : "a map";
}

_Noreturn static void not_default(const Reader *r, const char *key, const Node *v,
                                  const char *keras_default)
{
    error_at(v, "%s: %s '%.60s' is not supported; nncc implements only Keras's default (%s)",
             r->type, key, brief(v), keras_default);
}

/* Keras 2.0-2.2 write glorot_uniform as the VarianceScaling it is. */
static bool is_glorot_scaling(const Node *config)
{
    const Node *scale = map_get(config, "scale"), *mode = map_get(config, "mode"),
               *distribution = map_get(config, "distribution");
    return scale && mode && distribution && node_num(scale, "scale") == 1 &&
           strcmp(node_str(mode, "mode"), "fan_avg") == 0 &&
           strcmp(node_str(distribution, "distribution"), "uniform") == 0;
}

/* An initializer as Keras writes it: "zeros", or {class_name: Zeros, config: {}}.
 * A seed is no matter: nncc draws its own numbers. */
static bool initializer_is(const Node *v, const char *want)
{
    if (v->kind == NODE_SCALAR)
        return same_word(v->text, want);
    const Node *class_name = map_get(v, "class_name");
    if (!class_name)
        return false;
    const char *s = node_str(class_name, "class_name");
    if (same_word(want, "GlorotUniform") && strcmp(s, "VarianceScaling") == 0)
        return is_glorot_scaling(map_get(v, "config"));
    return same_word(s, want);
}

/* 1, or a list of ones: dilation_rate (1, 1), groups 1. */
static bool all_ones(const Node *v, const char *key)
{
    if (v->kind == NODE_SCALAR)
        return node_int(v, key, -1000000, 1000000) == 1;
    if (v->kind != NODE_SEQ || v->n == 0)
        return false;
    for (int i = 0; i < v->n; i++)
        if (v->items[i]->kind != NODE_SCALAR || !all_ones(v->items[i], key))
            return false;
    return true;
}

/* BatchNormalization normalises over all but one axis; nncc's is the channels,
 * the last: -1, or counted with the batch, the input's rank. */
static void check_axis(const Reader *r, const Node *v)
{
    const Node *axis = v;
    if (v->kind == NODE_SEQ && v->n == 1)
        axis = v->items[0];
    long a = axis->kind == NODE_SCALAR ? node_int(axis, "axis", -10, 10) : 0;
    if (axis->kind != NODE_SCALAR || (a != -1 && r->rank && a != r->rank)) {
        char last[32] = "";
        if (r->rank)
            snprintf(last, sizeof last, " or %d", r->rank);
        error_at(v, "%s: axis %s is not supported; nncc normalises the last axis (-1%s)",
                 r->type, axis->kind == NODE_SCALAR ? axis->text : "[...]", last);
    }
}

static void check_default(const Reader *r, const char *key, KerasRule rule, const Node *v)
{
    switch (rule) {
    case KERAS_NONE:
        if (!is_null(v))
            not_default(r, key, v, "null");
        break;
    case KERAS_FALSE:
    case KERAS_TRUE:
        if (!is_null(v) && node_bool(v, key) != (rule == KERAS_TRUE))
            not_default(r, key, v, rule == KERAS_TRUE ? "true" : "false");
        break;
    case KERAS_CHANNELS_LAST:
        if (!is_null(v) && strcmp(node_str(v, key), "channels_last") != 0)
            not_default(r, key, v, "channels_last");
        break;
    case KERAS_ALL_ONES:
        if (!all_ones(v, key))
            not_default(r, key, v, "1");
        break;
    case KERAS_GLOROT:
    case KERAS_ZEROS:
    case KERAS_ONES: {
        const char *want = rule == KERAS_GLOROT ? "GlorotUniform" : rule == KERAS_ZEROS ? "Zeros" : "Ones";
        if (!initializer_is(v, want))
            not_default(r, key, v, want);
        break;
    }
    case KERAS_RANDOM_UNIFORM:
        if (!initializer_is(v, "RandomUniform"))
            not_default(r, key, v, "RandomUniform");
        break;
    case KERAS_LAST_AXIS:
        check_axis(r, v);
        break;
    default:
        break;
    }
}

/* ---- one layer ---------------------------------------------------------------------------- */

/* batch_input_shape (Keras 3: batch_shape) without its batch size. The first
 * layer's, and the InputLayer's, give the model's input; Keras ignores later ones. */
static void read_input_shape(Reader *r, const char *key, const Node *v)
{
    if (v->kind != NODE_SEQ || v->n < 2)
        error_at(v, "%s must be a list: the batch size (null), then 1 to 3 sizes, e.g. "
                    "[null, 28, 28, 1]", key);
    for (int i = 1; i < v->n; i++)
        if (is_null(v->items[i]))
            error_at(v->items[i], "%s has a size left open (null); nncc needs every size but "
                                  "the batch's", key);
    Node sizes = *v;
    sizes.items++;
    sizes.n--;
    Shape s = {0};
    parse_shape(&sizes, &s);
    Model *m = r->m;
    bool differs = m->input.rank && m->input.rank != s.rank;
    for (int i = 0; m->input.rank && i < s.rank; i++)
        differs |= m->input.dim[i] != s.dim[i];
    if (differs)
        error_at(v, "%s differs from the input_shape given before", key);
    m->input = s;
    r->rank = s.rank;
}

static bool is_argument(const LayerOps *ops, const char *key)
{
    if (ops == &input_layer || keras_rule(ops, key))   /* Keras's spelling has a rule */
        return false;
    if (strcmp(key, "name") == 0 || strcmp(key, "trainable") == 0)
        return true;
    for (const KeySpec *k = ops->keys; k->key; k++)
        if (strcmp(k->key, key) == 0)
            return true;
    return false;
}

/* The rule for a key that is not an argument; error_at() if there is none. */
static const KerasKey *key_rule(const Reader *r, const LayerOps *ops, const Node *key)
{
    const KerasKey *common = ops == &input_layer ? input_keys : layer_keys;
    const KerasKey *rule = keras_rule(ops, key->text);
    for (int i = 0; !rule && common[i].key; i++)
        if (strcmp(common[i].key, key->text) == 0)
            rule = &common[i];
    if (rule)
        return rule;
    enum { MAX_KNOWN = 128 };
    const char *known[MAX_KNOWN + 1];
    int n = 0;
    for (int i = 0; common[i].key; i++)
        known[n++] = common[i].key;
    for (const KerasKey *const *list = ops->keras; list && *list; list++)
        for (const KerasKey *k = *list; k->key && n < MAX_KNOWN; k++)
            known[n++] = k->key;
    for (const KeySpec *k = ops->keys; k && k->key && n < MAX_KNOWN; k++)
        known[n++] = k->key;
    known[n] = NULL;
    const char *close = closest_word(key->text, known);
    if (close)
        error_at(key, "%s: unknown key '%s'; did you mean '%s'?", r->type, key->text, close);
    error_at(key, "%s: unknown key '%s' (nncc cannot tell what Keras would do with it)",
             r->type, key->text);
}

/* Checks every key of config and gathers those add_layer() reads into args,
 * a map that points at config's own nodes (so errors point into the file). */
static void sort_keys(const Reader *r, const LayerOps *ops, const Node *config, Node *args,
                      Node *arg_keys[MAX_PASSED], Node *arg_values[MAX_PASSED])
{
    *args = *config;
    args->n = 0;
    args->keys = arg_keys;
    args->items = arg_values;
    for (int i = 0; i < config->n; i++) {
        const Node *key = config->keys[i];
        Node *v = config->items[i];
        if (!is_argument(ops, key->text)) {
            const KerasKey *rule = key_rule(r, ops, key);
            check_default(r, rule->key, rule->rule, v);
        } else if (!is_null(v)) {   /* null: Keras's default, as if left out */
            arg_keys[args->n] = config->keys[i];
            arg_values[args->n++] = v;
        }
    }
}

/* ---- a functional model's graph ---------------------------------------------------- */

/* The layer a name stands for: the InputLayer, or an earlier layer. */
static int inbound_layer(const Reader *r, const Node *name)
{
    const char *s = node_str(name, "a layer name");
    if (r->input_name && strcmp(s, r->input_name) == 0)
        return MODEL_INPUT;
    for (int i = 0; i < r->m->n_layers - 1; i++)
        if (strcmp(r->m->layers[i].name, s) == 0)
            return i;
    error_at(name, "no layer named '%s' before this one (Keras lists a functional model's "
                   "layers in the order they run)", s);
}

static void add_inbound(const Reader *r, Layer *l, const Node *name)
{
    if (l->n_inputs == MAX_INPUTS)
        error_at(name, "a layer reads at most %d inputs", MAX_INPUTS);
    l->inputs[l->n_inputs++] = inbound_layer(r, name);
}

/* Keras 3 writes a call's arguments with tensors as {keras_history: [LAYER, 0, 0]}. */
static void find_histories(const Reader *r, Layer *l, const Node *n)
{
    const Node *history = n->kind == NODE_MAP ? map_get(n, "keras_history") : NULL;
    if (history && history->kind == NODE_SEQ && history->n >= 1) {
        add_inbound(r, l, history->items[0]);
        return;
    }
    for (int i = 0; n->kind != NODE_SCALAR && i < n->n; i++)
        find_histories(r, l, n->items[i]);
}

/* inbound_nodes: one call of the layer. Keras 2 writes its inputs as
 * [[LAYER, node, tensor, kwargs], ...]; Keras 3 as {args: [...], kwargs: {...}}. */
static void read_inbound(const Reader *r, Layer *l, const Node *nodes)
{
    if (!nodes || nodes->kind != NODE_SEQ || nodes->n == 0)
        error_at(nodes ? nodes : l->where, "%s: a layer of a functional model needs its "
                 "inbound_nodes", r->type);
    if (nodes->n > 1)
        error_at(nodes->items[1], "%s '%s' is called %d times (a shared layer); nncc reads "
                 "layers called once", r->type, l->name, nodes->n);
    const Node *call = nodes->items[0];
    if (call->kind == NODE_MAP) {
        find_histories(r, l, call);
    } else {
        for (int i = 0; call->kind == NODE_SEQ && i < call->n; i++) {
            const Node *tensor = call->items[i];
            if (tensor->kind != NODE_SEQ || tensor->n < 1)
                error_at(tensor, "an inbound node is [LAYER, node, tensor, kwargs]");
            add_inbound(r, l, tensor->items[0]);
        }
    }
    if (l->n_inputs == 0)
        error_at(call, "%s '%s' has no inputs in its inbound_nodes", r->type, l->name);
}

static void read_layer(Reader *r, const Node *item)
{
    static const char *const item_keys[] = {"class_name", "config", "module",
                                            "registered_name", "build_config", NULL};
    static const char *const functional_keys[] = {"class_name", "config", "module",
                                                  "registered_name", "build_config", "name",
                                                  "inbound_nodes", NULL};
    if (item->kind != NODE_MAP)
        error_at(item, "a Keras layer is a map {class_name: ..., config: {...}}");
    map_check_keys(item, "a Keras layer", r->functional ? functional_keys : item_keys);
    const Node *class_name = map_get(item, "class_name");
    if (!class_name)
        error_at(item, "a Keras layer needs 'class_name'");
    const LayerOps *ops = class_ops(class_name);
    r->type = class_name->text;
    const Node *config = map_get(item, "config"), *v;
    if (config && config->kind != NODE_MAP)
        error_at(config, "the config of %s must be a map", r->type);
    if (ops == &input_layer && r->m->n_layers > 0)
        error_at(item, "an InputLayer belongs before the first layer");
    const char *shape_key = map_get(config, "batch_shape") ? "batch_shape" : "batch_input_shape";
    if (r->m->n_layers == 0 && (v = map_get(config, shape_key)))
        read_input_shape(r, shape_key, v);

    Node args, *arg_keys[MAX_PASSED], *arg_values[MAX_PASSED];
    if (config)
        sort_keys(r, ops, config, &args, arg_keys, arg_values);
    if (ops == &input_layer) {
        r->input_name = (v = map_get(config, "name")) ? node_str(v, "name") : NULL;
        return;
    }
    add_layer(r->m, ops, item, config ? &args : NULL, r->counts);
    Layer *l = &r->m->layers[r->m->n_layers - 1];
    if (ops->flags & LF_FLAT_OUTPUT)
        r->rank = 1;
    else if (l->target.rank)   /* a Reshape says its output's rank */
        r->rank = l->target.rank;
    if (r->functional)
        read_inbound(r, l, map_get(item, "inbound_nodes"));
}

/* ---- the model ------------------------------------------------------------------------------ */

bool is_keras_export(const Node *root)
{
    return root->kind == NODE_MAP && map_get(root, "class_name") && map_get(root, "config");
}

/* The model's name, if nothing named it: Keras's, else Keras's default for a
 * whole-file export (the list layout does not keep one). A referenced export
 * leaves it to the native file's default. */
static void take_name(Model *m, const Node *root, const Node *name)
{
    if (m->name[0])
        return;
    if (name && name->kind == NODE_SCALAR && is_c_identifier(name->text))
        snprintf(m->name, sizeof m->name, "%s", name->text);
    else if (strcmp(root->file, m->file) == 0)
        snprintf(m->name, sizeof m->name, "sequential");
}

/* input_layers / output_layers: [[LAYER, 0, 0], ...], or one [LAYER, 0, 0]. The
 * first entry's layer name; more than one is refused for now. */
static const Node *only_endpoint(const Node *config, const char *key, const char *what)
{
    const Node *list = map_get(config, key);
    if (!list || list->kind != NODE_SEQ || list->n == 0)
        error_at(list ? list : config, "a functional model needs '%s', a list of [LAYER, 0, 0]",
                 key);
    if (list->items[0]->kind == NODE_SCALAR)
        return list->items[0];
    if (list->n > 1)
        error_at(list, "this model has %d %ss; nncc reads models with one %s for now",
                 list->n, what, what);
    const Node *entry = list->items[0];
    if (entry->kind != NODE_SEQ || entry->n < 1)
        error_at(entry, "%s holds [LAYER, node, tensor] entries", key);
    return entry->items[0];
}

/* The layer list of a Sequential or a functional model's config, checked. */
static const Node *model_layers(Reader *r, const Node *class_name, const Node *config,
                                bool *frozen)
{
    static const char *const sequential_keys[] = {"name", "layers", "trainable", "dtype",
                                                  "build_input_shape", NULL};
    static const char *const functional_keys[] = {"name", "layers", "trainable",
                                                  "input_layers", "output_layers", NULL};
    const char *kind = node_str(class_name, "class_name");
    r->functional = strcmp(kind, "Functional") == 0 || strcmp(kind, "Model") == 0;
    if (!r->functional && strcmp(kind, "Sequential") != 0)
        error_at(class_name, "nncc reads Sequential and functional Keras models; this one is "
                             "'%s'", class_name->text);
    if (config->kind != NODE_MAP) {   /* Keras up to 2.2.0: the list of layers */
        if (r->functional)
            error_at(config, "the config of a functional model must be a map");
        return config;
    }
    map_check_keys(config, r->functional ? "the config of a functional model"
                                         : "the config of a Sequential model",
                   r->functional ? functional_keys : sequential_keys);
    const Node *layers = map_get(config, "layers"), *v;
    if (!layers)
        error_at(config, "the config of a Keras model needs 'layers'");
    if ((v = map_get(config, "trainable")))
        *frozen = !node_bool(v, "trainable");
    if (r->functional) {
        only_endpoint(config, "input_layers", "input");
        r->m->output_name = only_endpoint(config, "output_layers", "output");
    }
    return layers;
}

void keras_layers(Model *m, const Node *root)
{
    static const char *const top_keys[] = {"class_name", "config", "keras_version", "backend",
                                           "module", "registered_name", "build_config",
                                           "compile_config", NULL};
    if (root->kind != NODE_MAP)
        error_at(root, "a Keras export is a map {class_name: Sequential, config: ...}");
    map_check_keys(root, "a Keras export", top_keys);
    const Node *class_name = map_get(root, "class_name"), *config = map_get(root, "config");
    if (!class_name || !config)
        error_at(root, "a Keras export needs 'class_name: Sequential' and 'config'");

    Reader r = {.m = m, .rank = m->input.rank};
    bool frozen = false;
    const Node *layers = model_layers(&r, class_name, config, &frozen), *v;
    if (layers->kind != NODE_SEQ)
        error_at(layers, "the layers of a Keras model must be a list");
    take_name(m, root, config->kind == NODE_MAP ? map_get(config, "name") : NULL);
    for (int i = 0; i < layers->n; i++)
        read_layer(&r, layers->items[i]);
    if (m->n_layers == 0)
        error_at(layers, "the model has no layers");
    if (!m->input.rank && config->kind == NODE_MAP && (v = map_get(config, "build_input_shape")))
        read_input_shape(&r, "build_input_shape", v);
    for (int i = 0; frozen && i < m->n_layers; i++)
        m->layers[i].trainable = false;   /* model.trainable = False freezes every layer */
}
