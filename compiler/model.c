/* model.c - the model file's node tree into a Model: Keras's words, Keras's
 * defaults, Keras's layer names. Every value is checked here, at the node it
 * came from, so later stages can trust the Model. */
#include "nncc.h"
#include "nnrt.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const activation_names[ACT_COUNT] = {
    [ACT_LINEAR] = "linear", [ACT_RELU] = "relu", [ACT_SIGMOID] = "sigmoid",
    [ACT_TANH] = "tanh", [ACT_SOFTMAX] = "softmax", [ACT_ELU] = "elu", [ACT_SELU] = "selu",
    [ACT_SOFTPLUS] = "softplus", [ACT_SOFTSIGN] = "softsign", [ACT_SWISH] = "swish",
    [ACT_GELU] = "gelu", [ACT_HARD_SIGMOID] = "hard_sigmoid",
};

/* Sizes beyond this are refused before any arithmetic can overflow. */
#define MAX_DIM 1000000L

/* ---- small readers ------------------------------------------------------------ */

static int lookup(const char *word, const char *const *names, int count)
{
    for (int i = 0; i < count; i++)
        if (names[i] && strcasecmp(word, names[i]) == 0)
            return i;
    return -1;
}

Activation parse_activation(const Node *n)
{
    if (n->kind == NODE_SCALAR && !n->quoted &&
        (strcmp(n->text, "null") == 0 || strcmp(n->text, "None") == 0 || !*n->text))
        return ACT_LINEAR;
    const char *s = node_str(n, "activation");
    int a = lookup(s, activation_names, ACT_COUNT);
    if (a < 0) {
        static const char *const extra[] = {"silu", NULL};
        if (lookup(s, extra, 1) >= 0)
            return ACT_SWISH;
        static const char *choices[ACT_COUNT + 1];
        for (int i = 0; i < ACT_COUNT; i++)
            choices[i] = activation_names[i];
        unknown_word(n, "activation", choices);
    }
    return (Activation)a;
}

void parse_shape(const Node *n, Shape *s)
{
    if (n->kind != NODE_SEQ || n->n < 1 || n->n > 3)
        error_at(n, "input_shape must be a list of 1 to 3 positive integers, e.g. [28, 28, 1]");
    s->rank = n->n;
    for (int i = 0; i < n->n; i++)
        s->dim[i] = node_int(n->items[i], "input_shape", 1, MAX_DIM);
}

/* ---- numbers ------------------------------------------------------------------ */

static int list_depth(const Node *n)
{
    int d = 0;
    while (n->kind == NODE_SEQ && n->n > 0) {
        d++;
        n = n->items[0];
    }
    return d;
}

static void read_numbers(const Node *n, const NumArray *a, int depth, const char *what, long *pos)
{
    if (depth == a->rank) {
        if (n->kind == NODE_SEQ)
            error_at(n, "%s: expected a number here, got a list", what);
        a->values[(*pos)++] = (float)node_num(n, what);
        return;
    }
    if (n->kind != NODE_SEQ || n->n != a->dim[depth])
        error_at(n, "%s: expected a list of %ld here, got %s%d", what, a->dim[depth],
                 n->kind == NODE_SEQ ? "a list of " : "", n->kind == NODE_SEQ ? n->n : 1);
    for (int i = 0; i < n->n; i++)
        read_numbers(n->items[i], a, depth + 1, what, pos);
}

void parse_numbers(const Node *n, const char *what, NumArray *a)
{
    memset(a, 0, sizeof *a);
    a->where = n;
    a->rank = list_depth(n);
    if (a->rank > 4)
        error_at(n, "%s: at most 4 nested lists", what);
    a->count = 1;
    const Node *first = n;
    for (int d = 0; d < a->rank; d++, first = first->items[0]) {
        a->dim[d] = first->n;
        a->count *= first->n;   /* at most the YAML's node count: no overflow */
    }
    a->values = calloc((size_t)a->count, sizeof *a->values);
    if (!a->values)
        error_at(n, "out of memory");
    long pos = 0;
    read_numbers(n, a, 0, what, &pos);
}

/* ---- layers ------------------------------------------------------------------ */

static void set_name(Layer *l, const Node *args, int type_count)
{
    const Node *v = args ? map_get(args, "name") : NULL;
    if (v) {
        const char *s = node_str(v, "name");
        if (!is_c_identifier(s))
            error_at(v, "layer name '%s' is not a C identifier ([A-Za-z_][A-Za-z0-9_]*, at "
                        "most %d characters, not a C keyword)", s, MAX_NAME);
        snprintf(l->name, sizeof l->name, "%s", s);
    } else if (type_count == 0) {
        snprintf(l->name, sizeof l->name, "%s", l->ops->default_name);
    } else {
        snprintf(l->name, sizeof l->name, "%s_%d", l->ops->default_name, type_count);
    }
}

_Noreturn static void unknown_layer(const Node *type_node)
{
    static const char *choices[MAX_LAYER_KINDS + 1];
    int n = 0;
    for (const LayerOps *const *r = layer_table; *r; r++)
        choices[n++] = (*r)->keras_name;
    choices[n] = NULL;
    unknown_word(type_node, "layer", choices);
}

/* Keras's positional arguments, as a map of the row's keys: `Dense: 8` is
 * {units: 8}, `Conv2D: [32, 3]` {filters: 32, kernel_size: 3}; a row with one
 * positional argument takes a list whole (`Reshape: [7, 7, 64]`). The map's
 * keys are made here and stay, like the YAML's, until nncc exits; errors
 * point at the values. */
static const Node *positional_args(const LayerOps *ops, const Node *v, int layer)
{
    enum { MAX_POSITIONAL = 4 };
    static Node maps[MAX_LAYERS], keys[MAX_LAYERS][MAX_POSITIONAL];
    static Node *key_ptrs[MAX_LAYERS][MAX_POSITIONAL], *values[MAX_LAYERS][MAX_POSITIONAL];
    int wanted = 0;
    while (ops->positional && ops->positional[wanted])
        wanted++;
    if (wanted == 0) {
        char list[512] = "";
        for (const char *const *k = layer_native_keys(ops); *k; k++)
            snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s",
                     list[0] ? ", " : "", *k);
        error_at(v, "%s takes no positional arguments; give a map of its keys (%s)",
                 ops->keras_name, list);
    }
    int given = v->kind == NODE_SEQ && wanted > 1 ? v->n : 1;
    if (given > wanted)
        error_at(v, "%s takes at most %d positional argument%s, got %d", ops->keras_name,
                 wanted, wanted == 1 ? "" : "s", given);
    Node *map = &maps[layer];
    *map = (Node){.kind = NODE_MAP, .line = v->line, .col = v->col, .file = v->file,
                  .n = given, .keys = key_ptrs[layer], .items = values[layer]};
    for (int i = 0; i < given; i++) {
        Node *value = given > 1 || (v->kind == NODE_SEQ && wanted > 1) ? v->items[i] : (Node *)v;
        keys[layer][i] = (Node){.kind = NODE_SCALAR, .line = value->line, .col = value->col,
                                .file = value->file, .text = (char *)ops->positional[i]};
        key_ptrs[layer][i] = &keys[layer][i];
        values[layer][i] = value;
    }
    return map;
}

/* A layer is `Flatten`, `Flatten: {}` / `Flatten:`, `Dense: {units: 10, ...}`,
 * or with Keras's positional arguments `Dense: 10`, `Conv2D: [32, 3]`. */
static void parse_layer(Model *m, const Node *item, int *counts)
{
    const Node *type_node = item, *args = NULL;
    if (item->kind == NODE_MAP) {
        if (item->n != 1)
            error_at(item, "a layer is written as one key, its type, e.g. "
                           "'- Dense: {units: 10}'");
        type_node = item->keys[0];
        args = item->items[0];
        if (args->kind == NODE_SCALAR && !args->quoted && !*args->text)
            args = NULL;
    } else if (item->kind != NODE_SCALAR) {
        error_at(item, "a layer must be a type name or a map like '- Dense: {units: 10}'");
    }
    const LayerOps *ops = layer_ops(type_node->text);
    if (!ops)
        unknown_layer(type_node);
    if (args && args->kind != NODE_MAP)
        args = positional_args(ops, args, m->n_layers < MAX_LAYERS ? m->n_layers : 0);
    if (args)
        map_check_keys(args, ops->keras_name, layer_native_keys(ops));
    const Node *shape = args ? map_get(args, "input_shape") : NULL;
    if (shape) {
        if (m->n_layers > 0)
            error_at(shape, "input_shape belongs on the first layer (or at the top of the file)");
        if (m->input.rank)
            error_at(shape, "input_shape is given twice (also at the top of the file)");
        parse_shape(shape, &m->input);
    }
    add_layer(m, ops, item, args, counts);
    if (args)
        m->layers[m->n_layers - 1].input_names = map_get(args, "inputs");
}

void add_layer(Model *m, const LayerOps *ops, const Node *item, const Node *args, int *counts)
{
    if (m->n_layers == MAX_LAYERS)
        error_at(item, "too many layers (at most %d)", MAX_LAYERS);
    Layer *l = &m->layers[m->n_layers];
    memset(l, 0, sizeof *l);
    l->ops = ops;
    l->where = item;
    l->trainable = true;
    l->use_bias = true;
    l->sh = l->sw = 1;
    l->dh = l->dw = 1;
    if (ops->defaults)
        ops->defaults(l);
    set_name(l, args, counts[layer_index(ops)]++);
    layer_parse_args(l, args, item);
    if (ops->finish)
        ops->finish(l);
    m->n_layers++;
}

static void check_layer_names(const Model *m)
{
    for (int i = 0; i < m->n_layers; i++) {
        if (strcmp(m->layers[i].name, "input") == 0)
            error_at(m->layers[i].where, "a layer may not be named 'input': the name stands "
                                         "for the model's input in 'inputs:'");
        for (int j = 0; j < i; j++)
            if (strcmp(m->layers[i].name, m->layers[j].name) == 0)
                error_at(m->layers[i].where, "duplicate layer name '%s' (line %d has it too)",
                         m->layers[i].name, m->layers[j].where->line);
    }
}

/* A name in `inputs:` or `outputs:`: `input`, or a layer before `before`. */
static int find_layer(const Model *m, const Node *name, int before)
{
    const char *s = node_str(name, "a layer name");
    if (strcmp(s, "input") == 0)
        return MODEL_INPUT;
    for (int i = 0; i < m->n_layers; i++)
        if (strcmp(m->layers[i].name, s) == 0) {
            if (i >= before)
                error_at(name, "layer '%s' comes later in the file; a layer reads only "
                               "earlier ones (or 'input')", s);
            return i;
        }
    const char *names[MAX_LAYERS + 2];
    int n = 0;
    for (int i = 0; i < before; i++)
        names[n++] = m->layers[i].name;
    names[n++] = "input";
    names[n] = NULL;
    const char *close = closest_word(s, names);
    if (close)
        error_at(name, "no layer named '%s' before this one; did you mean '%s'?", s, close);
    error_at(name, "no layer named '%s' before this one", s);
}

/* `inputs:` as written: a name, a list of names, or nothing (the layer above). */
static void resolve_inputs(Model *m, int i)
{
    Layer *l = &m->layers[i];
    const Node *names = l->input_names;
    if (!names || names->kind == NODE_SCALAR) {
        l->n_inputs = 1;
        l->inputs[0] = names ? find_layer(m, names, i) : i - 1;   /* -1: the input */
        return;
    }
    if (names->kind != NODE_SEQ || names->n == 0)
        error_at(names, "inputs must be a layer name or a list of them, e.g. [a, b]");
    if (names->n > MAX_INPUTS)
        error_at(names, "a layer reads at most %d inputs", MAX_INPUTS);
    l->n_inputs = names->n;
    for (int k = 0; k < names->n; k++)
        l->inputs[k] = find_layer(m, names->items[k], i);
}

static void connect_layer(Model *m, int i)
{
    Layer *l = &m->layers[i];
    if (!l->n_inputs)   /* a functional export's reader has resolved inbound_nodes */
        resolve_inputs(m, i);
    const Node *where = l->input_names ? l->input_names : l->where;
    bool merge = l->ops->flags & LF_MERGE;
    if (merge && l->n_inputs < 2)
        error_at(where, "%s merges two or more inputs; give them as inputs: [a, b]",
                 l->ops->keras_name);
    if (!merge && l->n_inputs > 1)
        error_at(where, "%s reads one input, not %d", l->ops->keras_name, l->n_inputs);
}

/* Every layer must lead to the output: nothing is computed for nothing. */
static void check_used(const Model *m)
{
    bool used[MAX_LAYERS] = {false};
    used[m->output] = true;
    for (int i = m->output; i >= 0; i--)
        for (int k = 0; used[i] && k < m->layers[i].n_inputs; k++)
            if (m->layers[i].inputs[k] != MODEL_INPUT)
                used[m->layers[i].inputs[k]] = true;
    for (int i = 0; i < m->n_layers; i++)
        if (!used[i])
            error_at(m->layers[i].where, "layer '%s' does not lead to the model's output "
                     "('%s'); remove it or read it", m->layers[i].name,
                     m->layers[m->output].name);
}

bool model_is_graph(const Model *m)
{
    for (int i = 0; i < m->n_layers; i++)
        if (m->layers[i].n_inputs != 1 || m->layers[i].inputs[0] != i - 1)
            return true;
    return m->output != m->n_layers - 1;
}

const char *layer_input_names(const Model *m, const Layer *l)
{
    static char buf[MAX_INPUTS * (MAX_NAME + 1) + 1];
    buf[0] = '\0';
    for (int k = 0; k < l->n_inputs; k++)
        snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", k ? " " : "",
                 l->inputs[k] == MODEL_INPUT ? "input" : m->layers[l->inputs[k]].name);
    return buf;
}

void connect_layers(Model *m)
{
    check_layer_names(m);
    for (int i = 0; i < m->n_layers; i++)
        connect_layer(m, i);
    m->output = m->output_name ? find_layer(m, m->output_name, m->n_layers) : m->n_layers - 1;
    if (m->output == MODEL_INPUT)
        error_at(m->output_name, "the output must be a layer, not the input");
    check_used(m);
}

void parse_layers(Model *m, const Node *list)
{
    if (list->kind != NODE_SEQ)
        error_at(list, "layers must be a list, e.g. '- Dense: {units: 10}'");
    if (list->n == 0)
        error_at(list, "the model has no layers");
    int counts[MAX_LAYER_KINDS] = {0};
    for (int i = 0; i < list->n; i++)
        parse_layer(m, list->items[i], counts);
}

/* args[key], which must be there; where: the node to blame when args is absent. */
static const Node *need(const Node *args, const Node *where, const char *key, const char *what)
{
    const Node *v = args ? map_get(args, key) : NULL;
    if (!v)
        error_at(args ? args : where, "%s needs '%s'", what, key);
    return v;
}

/* ---- compile -------------------------------------------------------------------- */

/* The optimizers' arguments: where each goes and what it must be (the
 * argument types of the layer table: positive, fraction, non-negative, bool). */
typedef enum {
    OA_LEARNING_RATE, OA_MOMENTUM, OA_NESTEROV, OA_BETA_1, OA_BETA_2, OA_EPSILON, OA_RHO,
    OA_INITIAL_ACCUMULATOR_VALUE, OA_WEIGHT_DECAY, OA_CLIPNORM, OA_CLIPVALUE,
    OA_GLOBAL_CLIPNORM, OA_COUNT
} OptimizerArg;

static const struct {
    const char *key;
    size_t offset;        /* in OptimizerSpec: a double, or the bool of an ARG_BOOL */
    ArgType type;
    bool nullable;        /* Keras's default is None: null means not given */
} optimizer_args[OA_COUNT] = {
#define FIELD(f) offsetof(OptimizerSpec, f)
    [OA_LEARNING_RATE] = {"learning_rate", FIELD(learning_rate), ARG_POSITIVE, false},
    [OA_MOMENTUM] = {"momentum", FIELD(momentum), ARG_FRACTION, false},
    [OA_NESTEROV] = {"nesterov", FIELD(nesterov), ARG_BOOL, false},
    [OA_BETA_1] = {"beta_1", FIELD(beta_1), ARG_FRACTION, false},
    [OA_BETA_2] = {"beta_2", FIELD(beta_2), ARG_FRACTION, false},
    [OA_EPSILON] = {"epsilon", FIELD(epsilon), ARG_POSITIVE, false},
    [OA_RHO] = {"rho", FIELD(rho), ARG_FRACTION, false},
    [OA_INITIAL_ACCUMULATOR_VALUE] = {"initial_accumulator_value",
                                      FIELD(initial_accumulator_value), ARG_NONNEGATIVE, false},
    [OA_WEIGHT_DECAY] = {"weight_decay", FIELD(weight_decay), ARG_NONNEGATIVE, true},
    /* Keras clips only where the value is above 0. */
    [OA_CLIPNORM] = {"clipnorm", FIELD(clipnorm), ARG_NONNEGATIVE, true},
    [OA_CLIPVALUE] = {"clipvalue", FIELD(clipvalue), ARG_NONNEGATIVE, true},
    [OA_GLOBAL_CLIPNORM] = {"global_clipnorm", FIELD(global_clipnorm), ARG_NONNEGATIVE, true},
#undef FIELD
};

#define ARG(a) (1u << (a))
/* Keras 2.11+'s base Optimizer takes these for every optimizer. */
#define EVERY_OPTIMIZER (ARG(OA_LEARNING_RATE) | ARG(OA_WEIGHT_DECAY) | ARG(OA_CLIPNORM) | \
                         ARG(OA_CLIPVALUE) | ARG(OA_GLOBAL_CLIPNORM))
#define ADAM_ARGS (ARG(OA_BETA_1) | ARG(OA_BETA_2) | ARG(OA_EPSILON))

/* One row per optimizer, indexed by nn_opt_kind as runtime/optim.c's rows
 * (which hold its state buffers and update rule) are. A name matches in any
 * case, so Keras's class names (SGD, Adam, RMSprop, Nadam, Adamax, Adagrad,
 * AdamW) serve too. Keras's other defaults are common to all: beta_1 0.9,
 * beta_2 0.999, epsilon 1e-7, rho 0.9, initial_accumulator_value 0.1. */
static const struct {
    const char *name;
    double learning_rate, weight_decay;   /* Keras's defaults */
    unsigned args;                        /* what it takes besides EVERY_OPTIMIZER */
} optimizer_table[NN_OPT_COUNT] = {
    [NN_OPT_SGD] = {"sgd", 0.01, 0, ARG(OA_MOMENTUM) | ARG(OA_NESTEROV)},
    [NN_OPT_ADAM] = {"adam", 0.001, 0, ADAM_ARGS},
    [NN_OPT_RMSPROP] = {"rmsprop", 0.001, 0, ARG(OA_RHO) | ARG(OA_MOMENTUM) | ARG(OA_EPSILON)},
    [NN_OPT_NADAM] = {"nadam", 0.001, 0, ADAM_ARGS},
    [NN_OPT_ADAMAX] = {"adamax", 0.001, 0, ADAM_ARGS},
    [NN_OPT_ADAGRAD] = {"adagrad", 0.001, 0, ARG(OA_INITIAL_ACCUMULATOR_VALUE) | ARG(OA_EPSILON)},
    [NN_OPT_ADAMW] = {"adamw", 0.001, 0.004, ADAM_ARGS},
};

static const char *const *optimizer_names(void)
{
    static const char *names[NN_OPT_COUNT + 1];
    for (int k = 0; k < NN_OPT_COUNT; k++)
        names[k] = optimizer_table[k].name;
    return names;
}

/* Every key an optimizer map may have: name, lr (learning_rate's old name),
 * then the arguments. */
static const char *const *optimizer_keys(void)
{
    static const char *keys[OA_COUNT + 3] = {"name", "lr"};
    for (int a = 0; a < OA_COUNT; a++)
        keys[2 + a] = optimizer_args[a].key;
    return keys;
}

static double positive(const Node *n, const char *what)
{
    double v = node_num(n, what);
    if (!(v > 0))
        error_at(n, "%s must be positive, got %s", what, n->text);
    return v;
}

static double fraction(const Node *n, const char *what)
{
    double v = node_num(n, what);
    if (!(v >= 0 && v < 1))
        error_at(n, "%s must be at least 0 and less than 1, got %s", what, n->text);
    return v;
}

static double non_negative(const Node *n, const char *what)
{
    double v = node_num(n, what);
    if (!(v >= 0))
        error_at(n, "%s must be 0 or more, got %s", what, n->text);
    return v;
}

static bool is_null(const Node *n)
{
    return n->kind == NODE_SCALAR && !n->quoted &&
           (strcmp(n->text, "null") == 0 || strcmp(n->text, "None") == 0 || !*n->text);
}

static void optimizer_defaults(OptimizerSpec *o, int kind)
{
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->learning_rate = optimizer_table[kind].learning_rate;
    o->weight_decay = optimizer_table[kind].weight_decay;
    o->beta_1 = 0.9, o->beta_2 = 0.999, o->rho = 0.9, o->epsilon = 1e-7;
    o->initial_accumulator_value = 0.1;
}

static void read_optimizer_arg(OptimizerSpec *o, int a, const Node *v)
{
    const char *key = optimizer_args[a].key;
    char *field = (char *)o + optimizer_args[a].offset;
    if (optimizer_args[a].nullable && is_null(v)) {
        if (optimizer_table[o->kind].weight_decay > 0 && a == OA_WEIGHT_DECAY)
            error_at(v, "%s needs a weight_decay (Keras refuses None)",
                     optimizer_table[o->kind].name);
        *(double *)field = 0;
        return;
    }
    ArgType type = optimizer_args[a].type;
    if (type == ARG_BOOL)
        *(bool *)field = node_bool(v, key);
    else
        *(double *)field = type == ARG_POSITIVE ? positive(v, key)
                           : type == ARG_FRACTION ? fraction(v, key) : non_negative(v, key);
}

/* The clipping argument given (not null) under key, or NULL. */
static const Node *clip_given(const Node *n, const char *key)
{
    const Node *v = map_get(n, key);
    return v && !is_null(v) ? v : NULL;
}

/* Keras refuses clipnorm with global_clipnorm; with clipvalue as well, Keras
 * 2.11+ would apply only the norm (older Keras both), so it is refused too. */
static void check_clipping(const Node *n)
{
    const Node *norm = clip_given(n, "clipnorm"), *global = clip_given(n, "global_clipnorm");
    const Node *value = clip_given(n, "clipvalue");
    if (norm && global)
        error_at(global, "give clipnorm or global_clipnorm, not both (Keras refuses both)");
    if (value && (norm || global))
        error_at(value, "give clipvalue or %s, not both (Keras 2.11+ would ignore clipvalue)",
                 norm ? "clipnorm" : "global_clipnorm");
}

static void read_optimizer_args(OptimizerSpec *o, const Node *n, const Node *name)
{
    const Node *v;
    if ((v = map_get(n, "learning_rate")) && map_get(n, "lr"))
        error_at(map_get(n, "lr"), "give learning_rate or its old name lr, not both");
    unsigned takes = EVERY_OPTIMIZER | optimizer_table[o->kind].args;
    for (int a = 0; a < OA_COUNT; a++) {
        const char *key = optimizer_args[a].key;
        if (!(v = map_get(n, key)) && !(a == OA_LEARNING_RATE && (v = map_get(n, "lr"))))
            continue;
        if (!(takes & ARG(a))) {
            const char *args[OA_COUNT + 1] = {0};
            for (int b = 0, k = 0; b < OA_COUNT; b++)
                if (takes & ARG(b))
                    args[k++] = optimizer_args[b].key;
            char list[512];
            error_at(v, "%s is not an argument of %s (it takes: %s)", key, name->text,
                     listed(args, list, sizeof list));
        }
        if (a == OA_LEARNING_RATE)   /* a number, or a Keras schedule object */
            o->learning_rate = parse_learning_rate(&o->schedule, v);
        else
            read_optimizer_arg(o, a, v);
    }
    check_clipping(n);
}

static void parse_optimizer(OptimizerSpec *o, const Node *n)
{
    const Node *name = n;
    const char *const *names = optimizer_names();
    if (n->kind == NODE_MAP) {
        map_check_keys(n, "optimizer", optimizer_keys());
        name = map_get(n, "name");
        if (!name) {
            char list[256];
            error_at(n, "optimizer needs 'name' (%s)", listed(names, list, sizeof list));
        }
    }
    int kind = lookup(node_str(name, "optimizer"), names, NN_OPT_COUNT);
    if (kind < 0)
        unknown_word(name, "optimizer", names);
    optimizer_defaults(o, kind);
    if (n->kind == NODE_MAP)
        read_optimizer_args(o, n, name);
}

static void parse_compile(Model *m, const Node *n)
{
    static const char *const keys[] = {"optimizer", "loss", "metrics", NULL};
    if (n->kind != NODE_MAP)
        error_at(n, "compile must be a map with optimizer, loss and metrics");
    map_check_keys(n, "compile", keys);
    const Node *v;
    if ((v = map_get(n, "optimizer")))
        parse_optimizer(&m->optimizer, v);
    if ((v = map_get(n, "loss")))
        parse_loss(m, v);
    if ((v = map_get(n, "metrics")))
        parse_metrics(m, v);
}

/* ---- data ------------------------------------------------------------------------ */

static const char *const format_names[] = {"inline", "idx", "csv", "image_dir", "series", "text",
                                           NULL};
static const int format_kinds[] = {NN_DATA_INLINE, NN_DATA_IDX, NN_DATA_CSV, NN_DATA_IMAGE_DIR,
                                   NN_DATA_SERIES, NN_DATA_TEXT};

static const char *const *source_keys(int format)
{
    static const char *const inline_keys[] = {"format", "x", "y", NULL};
    static const char *const idx_keys[] = {"format", "images", "labels", NULL};
    static const char *const csv_keys[] = {"format", "path", "label_column", "header", NULL};
    static const char *const image_keys[] = {"format", "path", "target_size", "color_mode",
                                             "class_mode", "skip_bad_files", NULL};
    static const char *const series_keys[] = {"format", "path", "column", "window_size", "shift",
                                              "horizon", "split_time", NULL};
    static const char *const text_keys[] = {"format", "path", "text", "label", "num_words",
                                            "oov_token", "max_length", "padding", "truncating",
                                            NULL};
    switch (format) {
    case NN_DATA_INLINE: return inline_keys;
    case NN_DATA_IDX: return idx_keys;
    case NN_DATA_CSV: return csv_keys;
    case NN_DATA_SERIES: return series_keys;
    case NN_DATA_TEXT: return text_keys;
    default: return image_keys;
    }
}

/* A column given by its number (unquoted) or by its name in the header. */
static bool column_by_number(const Node *v)
{
    const char *text = node_str(v, "column");
    return !v->quoted && text[0] && strchr("+-.0123456789", text[0]);
}

/* The course's windowed_dataset(series, window_size, batch_size, shuffle_buffer). */
static void parse_series_source(SourceSpec *s, const Node *n)
{
    const Node *v;
    s->path = node_str(need(n, n, "path", "a series source"), "path");
    s->column_index = -1;
    if ((v = map_get(n, "column"))) {
        if (column_by_number(v))
            s->column_index = node_int(v, "column", -1, 1 << 20);
        else
            s->column = node_str(v, "column");
    }
    s->window_size = node_int(need(n, n, "window_size", "a series source"), "window_size", 1,
                              1 << 20);
    s->shift = (v = map_get(n, "shift")) ? node_int(v, "shift", 1, 1 << 20) : 1;
    s->horizon = (v = map_get(n, "horizon")) ? node_int(v, "horizon", 1, 1 << 20) : 1;
    s->split_time = (v = map_get(n, "split_time")) ? node_int(v, "split_time", 1, 1L << 30) : -1;
}

/* 'pre' or 'post', Keras's words for pad_sequences' padding and truncating. */
static bool is_post(const Node *v, const char *what)
{
    static const char *const sides[] = {"pre", "post", NULL};
    int side = lookup(node_str(v, what), sides, 2);
    if (side < 0)
        unknown_word(v, what, sides);
    return side == 1;
}

static void parse_text_source(SourceSpec *s, const Node *n)
{
    const Node *v;
    s->path = node_str(need(n, n, "path", "a text source"), "path");
    s->text_field = node_str(need(n, n, "text", "a text source"), "text");
    s->label_field = (v = map_get(n, "label")) ? node_str(v, "label") : "label";
}

static const char *const tokenizer_keys[] = {"num_words", "oov_token", "max_length", "padding",
                                             "truncating", NULL};

/* Tokenizer(num_words, oov_token) and pad_sequences(maxlen, padding, truncating). */
static void parse_tokenizer(TextSpec *t, const Node *n)
{
    const Node *v;
    t->where = n;
    if ((v = map_get(n, "num_words")))
        t->num_words = node_int(v, "num_words", 2, 1 << 24);
    if ((v = map_get(n, "oov_token")))
        t->oov_token = node_str(v, "oov_token");
    if ((v = map_get(n, "max_length")))
        t->max_length = node_int(v, "max_length", 1, 1 << 20);
    if ((v = map_get(n, "padding")))
        t->pad_post = is_post(v, "padding");
    if ((v = map_get(n, "truncating")))
        t->truncate_post = is_post(v, "truncating");
}

/* One tokenizer, fit on the training texts, reads every split, as in a Keras
 * script: its settings go on the first text source (train, else validation,
 * else test) and nowhere else. */
static void parse_text_data(Model *m, const Node *data)
{
    static const char *const splits[] = {"train", "validation", "test"};
    const SourceSpec *sources[] = {&m->train, &m->validation, &m->test};
    int owner = -1;
    for (int i = 0; i < 3; i++) {
        if (sources[i]->format != NN_DATA_TEXT)
            continue;
        const Node *n = map_get(data, splits[i]);
        if (owner < 0) {
            owner = i;
            parse_tokenizer(&m->text, n);
            continue;
        }
        for (const char *const *k = tokenizer_keys; *k; k++)
            if (map_get(n, *k))
                error_at(map_get(n, *k), "%s belongs on the %s source: one tokenizer, fit on the "
                         "training texts, reads every split", *k, splits[owner]);
    }
}

static void parse_image_source(SourceSpec *s, const Node *n)
{
    const Node *v;
    s->path = node_str(need(n, n, "path", "an image_dir source"), "path");
    s->channels = 3;
    if ((v = map_get(n, "target_size"))) {
        if (v->kind != NODE_SEQ || v->n != 2)
            error_at(v, "target_size must be [height, width]");
        s->target_h = node_int(v->items[0], "target_size", 1, 1 << 15);
        s->target_w = node_int(v->items[1], "target_size", 1, 1 << 15);
    }
    if ((v = map_get(n, "color_mode"))) {
        static const char *const modes[] = {"rgb", "grayscale", NULL};
        int mode = lookup(node_str(v, "color_mode"), modes, 2);
        if (mode < 0)
            unknown_word(v, "color_mode", modes);
        s->channels = mode == 0 ? 3 : 1;
    }
    if ((v = map_get(n, "class_mode"))) {
        static const char *const modes[] = {"binary", "sparse", "categorical", NULL};
        if (lookup(node_str(v, "class_mode"), modes, 3) < 0)
            unknown_word(v, "class_mode", modes);
    }
    if ((v = map_get(n, "skip_bad_files")))
        s->skip_bad_files = node_bool(v, "skip_bad_files");
}

/* label_column is an index, or a name from the header (as pandas' column names). */
static void parse_csv_source(SourceSpec *s, const Node *n)
{
    const Node *v, *header = map_get(n, "header");
    s->path = node_str(need(n, n, "path", "a csv source"), "path");
    s->label_column = -1;
    s->header = header ? node_bool(header, "header") : NN_HEADER_AUTO;
    if (!(v = map_get(n, "label_column")))
        return;
    const char *text = node_str(v, "label_column");
    if (!v->quoted && text[0] && strchr("+-.0123456789", text[0])) {   /* a number: it must be an index */
        s->label_column = node_int(v, "label_column", -1, 1 << 20);
        return;
    }
    s->label_name = text;
    if (s->header == 0)
        error_at(header, "label_column '%s' is a column name, which needs the header: "
                 "set header: true (or leave it out)", text);
}

static void parse_source(SourceSpec *s, const Node *n, const char *what)
{
    if (n->kind != NODE_MAP)
        error_at(n, "%s must be a map with a format, e.g. {format: idx, images: ..., labels: ...}",
                 what);
    const Node *f = need(n, n, "format", what);
    int i = lookup(node_str(f, "format"), format_names, 6);
    if (i < 0)
        unknown_word(f, "data format", format_names);
    s->format = format_kinds[i];
    s->where = n;
    map_check_keys(n, what, source_keys(s->format));
    const Node *v;
    switch (s->format) {
    case NN_DATA_INLINE:
        parse_numbers(need(n, n, "x", "an inline source"), "x", &s->x);
        if ((v = map_get(n, "y")))
            parse_numbers(v, "y", &s->y);
        break;
    case NN_DATA_IDX:
        s->images = node_str(need(n, n, "images", "an idx source"), "images");
        s->labels = node_str(need(n, n, "labels", "an idx source"), "labels");
        break;
    case NN_DATA_CSV:
        s->path = node_str(need(n, n, "path", "a csv source"), "path");
        parse_csv_source(s, n);
        break;
    case NN_DATA_SERIES:
        parse_series_source(s, n);
        break;
    case NN_DATA_TEXT:
        parse_text_source(s, n);
        break;
    default:
        parse_image_source(s, n);
        break;
    }
}

static void parse_augment(Model *m, const Node *n)
{
    static const char *const keys[] = {"horizontal_flip", "vertical_flip", "rotation_range",
                                       "width_shift_range", "height_shift_range", "zoom_range",
                                       "shear_range", "fill_mode", NULL};
    if (n->kind != NODE_MAP)
        error_at(n, "augment must be a map of ImageDataGenerator's arguments");
    map_check_keys(n, "augment", keys);
    const Node *v;
    if ((v = map_get(n, "horizontal_flip")))
        m->horizontal_flip = node_bool(v, "horizontal_flip");
    if ((v = map_get(n, "vertical_flip")))
        m->vertical_flip = node_bool(v, "vertical_flip");
    /* A shift below 1 is a fraction of the size, from 1 on a number of pixels
     * (Keras's rule, which nn_augment_batch follows). */
    struct { const char *key; double *dst; double max; } ranges[] = {
        {"rotation_range", &m->rotation_range, 360},
        {"width_shift_range", &m->width_shift_range, MAX_DIM},
        {"height_shift_range", &m->height_shift_range, MAX_DIM}, {"zoom_range", &m->zoom_range, 1},
        {"shear_range", &m->shear_range, 360},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        if (!(v = map_get(n, ranges[i].key)))
            continue;
        *ranges[i].dst = node_num(v, ranges[i].key);
        if (!(*ranges[i].dst >= 0 && *ranges[i].dst <= ranges[i].max))
            error_at(v, "%s must be between 0 and %g", ranges[i].key, ranges[i].max);
    }
    if ((v = map_get(n, "fill_mode")) && strcmp(node_str(v, "fill_mode"), "nearest") != 0)
        error_at(v, "fill_mode '%s' is not supported; nncc fills with 'nearest'", v->text);
}

/* target: input (each sample's label is its own clean input: an autoencoder),
 * noise: {stddev, clip: [lo, hi]} (Gaussian noise on the input after rescale,
 * then clipped, as the denoising tutorials' tf.random.normal and
 * clip_by_value do). */
static void parse_target(Model *m, const Node *n)
{
    const Node *v;
    if ((v = map_get(n, "target"))) {
        static const char *const targets[] = {"labels", "input", NULL};
        int i = lookup(node_str(v, "target"), targets, 2);
        if (i < 0)
            unknown_word(v, "target", targets);
        m->target_input = i == 1;
        m->target_where = v;
    }
    if (!(v = map_get(n, "noise")))
        return;
    static const char *const keys[] = {"stddev", "clip", NULL};
    map_check_keys(v, "noise", keys);
    m->noise_stddev = positive(need(v, v, "stddev", "noise"), "stddev");
    const Node *clip = map_get(v, "clip");
    if (clip) {
        if (clip->kind != NODE_SEQ || clip->n != 2)
            error_at(clip, "clip must be a list of two numbers, e.g. [0, 1]");
        m->noise_clip = true;
        m->noise_min = node_num(clip->items[0], "clip");
        m->noise_max = node_num(clip->items[1], "clip");
        if (!(m->noise_min < m->noise_max))
            error_at(clip, "clip's first number must be less than its second");
    }
}

static void parse_data(Model *m, const Node *n)
{
    static const char *const keys[] = {"train", "validation", "test", "dir", "rescale",
                                       "validation_split", "augment", "class_names", "target",
                                       "noise", NULL};
    if (n->kind != NODE_MAP)
        error_at(n, "data must be a map with train, validation, test, dir, rescale, ...");
    map_check_keys(n, "data", keys);
    const Node *v;
    if ((v = map_get(n, "train")))
        parse_source(&m->train, v, "train");
    if ((v = map_get(n, "validation")))
        parse_source(&m->validation, v, "validation");
    if ((v = map_get(n, "test")))
        parse_source(&m->test, v, "test");
    parse_text_data(m, n);
    if ((v = map_get(n, "dir")))
        m->data_dir = node_str(v, "dir");
    if ((v = map_get(n, "rescale")))
        m->rescale = positive(v, "rescale");
    if ((v = map_get(n, "validation_split")))
        m->validation_split = fraction(v, "validation_split");
    if ((v = map_get(n, "augment")))
        parse_augment(m, v);
    parse_target(m, n);
    if ((v = map_get(n, "class_names"))) {
        if (v->kind != NODE_SEQ)
            error_at(v, "class_names must be a list of names, one per output unit");
        m->class_names = calloc((size_t)v->n + 1, sizeof *m->class_names);
        if (!m->class_names)
            error_at(v, "out of memory");
        for (int i = 0; i < v->n; i++)
            m->class_names[i] = node_str(v->items[i], "class_names");
        m->n_class_names = v->n;
        m->class_names_where = v;
    }
}

/* ---- fit ---------------------------------------------------------------------------- */

static const char *const callback_names[] = {"StopAtThreshold", "EarlyStopping",
                                             "ModelCheckpoint", "CSVLogger",
                                             "LearningRateScheduler", "ReduceLROnPlateau", NULL};
static const int callback_kinds[] = {NN_CB_STOP_AT_THRESHOLD, NN_CB_EARLY_STOPPING,
                                     NN_CB_MODEL_CHECKPOINT, NN_CB_CSV_LOGGER,
                                     NN_CB_LEARNING_RATE_SCHEDULER, NN_CB_REDUCE_LR_ON_PLATEAU};

/* Keras's mode: auto (the monitor's own direction), min or max. */
static void parse_mode(CallbackSpec *c, const Node *n)
{
    static const char *const modes[] = {"auto", "min", "max", NULL};
    int mode = lookup(node_str(n, "mode"), modes, 3);
    if (mode < 0)
        unknown_word(n, "mode", modes);
    if (mode > 0)
        c->maximize = mode == 2;
}

static void parse_callback(Model *m, const Node *item)
{
    const Node *type = item, *args = NULL, *v;
    if (item->kind == NODE_MAP && item->n == 1) {
        type = item->keys[0];
        args = item->items[0];
        if (args->kind != NODE_MAP)
            error_at(args, "the arguments of a callback must be a map");
    }
    int i = lookup(node_str(type, "callback"), callback_names, 6);
    if (i < 0)
        unknown_word(type, "callback", callback_names);
    if (m->n_callbacks == MAX_CALLBACKS)
        error_at(item, "too many callbacks (at most %d)", MAX_CALLBACKS);
    static const char *const stop_keys[] = {"monitor", "threshold", NULL};
    static const char *const early_keys[] = {"monitor", "patience", "min_delta",
                                             "restore_best_weights", "mode", NULL};
    static const char *const checkpoint_keys[] = {"filepath", "monitor", "save_best_only",
                                                  "mode", NULL};
    static const char *const csv_keys[] = {"filename", NULL};
    static const char *const scheduler_keys[] = {"schedule", "verbose", NULL};
    static const char *const plateau_keys[] = {"monitor", "factor", "patience", "verbose", "mode",
                                               "min_delta", "cooldown", "min_lr", NULL};
    static const char *const *const keys[] = {stop_keys, early_keys, checkpoint_keys, csv_keys,
                                              scheduler_keys, plateau_keys};
    CallbackSpec *c = &m->callbacks[m->n_callbacks++];
    memset(c, 0, sizeof *c);
    c->kind = callback_kinds[i];
    if (args)
        map_check_keys(args, callback_names[i], keys[i]);
    if (c->kind != NN_CB_CSV_LOGGER && c->kind != NN_CB_LEARNING_RATE_SCHEDULER) {
        /* The default monitor, where none is given, is checked as one written at the callback. */
        Node implicit = {.kind = NODE_SCALAR, .line = type->line, .col = type->col,
                         .file = type->file,
                         .text = c->kind == NN_CB_STOP_AT_THRESHOLD ? "accuracy" : "val_loss"};
        v = args ? map_get(args, "monitor") : NULL;
        c->monitor = parse_monitor(m, v ? v : &implicit, &c->maximize);
    }
    if (c->kind == NN_CB_STOP_AT_THRESHOLD)
        c->threshold = node_num(need(args, item, "threshold", "StopAtThreshold"),
                                "threshold");
    if (c->kind == NN_CB_MODEL_CHECKPOINT)
        c->filepath = node_str(need(args, item, "filepath", "ModelCheckpoint"),
                               "filepath");
    if (c->kind == NN_CB_CSV_LOGGER)
        c->filepath = node_str(need(args, item, "filename", "CSVLogger"), "filename");
    bool changes_lr = c->kind == NN_CB_LEARNING_RATE_SCHEDULER ||
                      c->kind == NN_CB_REDUCE_LR_ON_PLATEAU;
    if (changes_lr) {
        lr_callback_defaults(c);
        parse_lr_callback(m, c, args, item);
    }
    if (!args)
        return;
    if ((v = map_get(args, "mode")))
        parse_mode(c, v);
    if ((v = map_get(args, "patience")))
        c->patience = node_int(v, "patience", 0, 1 << 30);
    if ((v = map_get(args, "min_delta")))
        c->min_delta = fabs(node_num(v, "min_delta"));
    if ((v = map_get(args, "restore_best_weights")))
        c->restore_best_weights = node_bool(v, "restore_best_weights");
    if ((v = map_get(args, "save_best_only")))
        c->save_best_only = node_bool(v, "save_best_only");
}

static void parse_fit(Model *m, const Node *n)
{
    static const char *const keys[] = {"epochs", "batch_size", "shuffle", "seed",
                                       "steps_per_epoch", "callbacks", "validation_split",
                                       "class_weight", NULL};
    if (n->kind != NODE_MAP)
        error_at(n, "fit must be a map with epochs, batch_size, ...");
    map_check_keys(n, "fit", keys);
    const Node *v;
    if ((v = map_get(n, "epochs")))
        m->epochs = node_int(v, "epochs", 1, 1000000);
    if ((v = map_get(n, "batch_size")))
        m->batch_size = node_int(v, "batch_size", 1, 1 << 20);
    if ((v = map_get(n, "shuffle")))
        m->shuffle = node_bool(v, "shuffle");
    if ((v = map_get(n, "seed")))
        m->seed = (unsigned long long)node_int(v, "seed", 0, INT64_MAX);
    if ((v = map_get(n, "steps_per_epoch")))
        m->steps_per_epoch = node_int(v, "steps_per_epoch", 1, 1L << 30);
    if ((v = map_get(n, "validation_split"))) {
        if (m->validation_split > 0)
            error_at(v, "validation_split is given in data as well; keep one");
        m->validation_split = fraction(v, "validation_split");
    }
    if ((v = map_get(n, "class_weight")))
        parse_class_weight(m, v);
    if ((v = map_get(n, "callbacks"))) {
        if (v->kind != NODE_SEQ)
            error_at(v, "callbacks must be a list");
        for (int i = 0; i < v->n; i++)
            parse_callback(m, v->items[i]);
    }
}

/* ---- the whole file ---------------------------------------------------------------- */

static void set_defaults(Model *m, const char *file)
{
    memset(m, 0, sizeof *m);
    m->file = file;
    m->loss = -1;
    m->rescale = 1;
    m->epochs = 1;
    m->batch_size = 32;
    m->shuffle = true;
    optimizer_defaults(&m->optimizer, NN_OPT_RMSPROP);   /* Keras's compile() default */
}

/* path as seen from the folder of file: a model file names its Keras export
 * relative to itself, wherever nncc is run from. The caller frees it. */
static char *beside(const char *file, const char *path)
{
    const char *slash = strrchr(file, '/');
    size_t dir_len = path[0] == '/' || !slash ? 0 : (size_t)(slash - file) + 1;
    size_t len = dir_len + strlen(path) + 1;
    char *joined = malloc(len);
    if (!joined)
        error_file(file, "out of memory");
    snprintf(joined, len, "%.*s%s", (int)dir_len, file, path);
    return joined;
}

static void parse_name(Model *m, const Node *v)
{
    const char *s = node_str(v, "name");
    if (!is_c_identifier(s))
        error_at(v, "model name '%s' is not a C identifier ([A-Za-z_][A-Za-z0-9_]*, at most "
                    "%d characters, not a C keyword)", s, MAX_NAME);
    snprintf(m->name, sizeof m->name, "%s", s);
}

/* Without a name, the file's base name serves if it is an identifier. */
static void default_name(Model *m, const Node *root)
{
    const char *base = strrchr(m->file, '/');
    base = base ? base + 1 : m->file;
    size_t len = strcspn(base, ".");
    if (len > MAX_NAME)
        len = MAX_NAME;
    snprintf(m->name, sizeof m->name, "%.*s", (int)len, base);
    if (!is_c_identifier(m->name))
        error_at(root, "the model needs a 'name:' that is a C identifier (the file name '%s' "
                       "is not one)", base);
}

static void parse_native(Model *m, const Node *root)
{
    static const char *const keys[] = {"name", "input_shape", "layers", "model", "outputs",
                                       "compile", "data", "fit", "predict", NULL};
    map_check_keys(root, "the model file", keys);
    const Node *v;
    if ((v = map_get(root, "name")))
        parse_name(m, v);
    if ((v = map_get(root, "input_shape")))
        parse_shape(v, &m->input);
    const Node *layers = map_get(root, "layers"), *model = map_get(root, "model");
    if (layers && model)
        error_at(model, "give either 'layers:' or 'model: FILE', not both");
    if (layers) {
        parse_layers(m, layers);
    } else if (model) {
        char *path = beside(m->file, node_str(model, "model"));
        Node *export = yaml_load(path);   /* which keeps its own copy of the path */
        free(path);
        keras_layers(m, export);
    } else {
        error_at(root, "the model has no 'layers:' (or 'model: FILE' naming a Keras export)");
    }
    m->output_name = map_get(root, "outputs");
    if ((v = map_get(root, "compile")))
        parse_compile(m, v);
    if ((v = map_get(root, "data")))
        parse_data(m, v);
    if ((v = map_get(root, "fit")))
        parse_fit(m, v);
    if ((v = map_get(root, "predict"))) {
        if (v->kind != NODE_SEQ || v->n == 0)
            error_at(v, "predict must be a list of inputs, e.g. [[10.0]]");
        parse_numbers(v, "predict", &m->predict);
    }
}

void model_from_yaml(Model *m, const Node *root, const char *file)
{
    set_defaults(m, file);
    if (root->kind != NODE_MAP)
        error_at(root, "a model file is a map with name, input_shape, layers, compile, ...");
    if (is_keras_export(root))
        keras_layers(m, root);
    else
        parse_native(m, root);
    if (!m->name[0])
        default_name(m, root);
    if (!m->input.rank)
        error_at(m->n_layers ? m->layers[0].where : root,
                 "the model has no input_shape: give it at the top (input_shape: [28, 28, 1]) "
                 "or on the first layer");
    connect_layers(m);
}

/* ---- what the model file knows, for lists and for tests ---------------------------------- */

const char *const *model_words(ModelWords what)
{
    static const char *activations[ACT_COUNT + 1];
    for (int i = 0; i < ACT_COUNT; i++)
        activations[i] = activation_names[i];
    switch (what) {
    case WORDS_OPTIMIZERS: return optimizer_names();
    case WORDS_OPTIMIZER_ARGS: return optimizer_keys() + 1;   /* lr and the rest */
    case WORDS_LOSSES: return loss_words();
    case WORDS_METRICS: return metric_words();
    case WORDS_CALLBACKS: return callback_names;
    default: return activations;
    }
}
