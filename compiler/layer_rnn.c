/* layer_rnn.c - the layer table's rows for the recurrent layers: SimpleRNN,
 * LSTM and GRU (Keras's arguments, defaults, weight names and layouts), and
 * Bidirectional, which wraps one of them.
 *
 * A recurrent layer reads a sequence [T, F] and keeps `units` (U) numbers of
 * state; its G = k U gate columns (k: 1, LSTM 4 in Keras's order i, f, c, o,
 * GRU 3 in z, r, h) come from kernel [F, G], recurrent_kernel [U, G] and bias.
 * Its C (templates/lstm*.c.in, gru*, simple_rnn*) runs the input's share of
 * all T steps as one of Dense's products, then the steps, and keeps what
 * backpropagation through time needs in the row's work buffer (aux). The cell's
 * own activations are the layer's: nothing follows it as an activation op. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>
#include <string.h>

#define F(field) offsetof(Layer, field)

/* ---- arguments -------------------------------------------------------------------- */

static void rnn_defaults(Layer *l)
{
    l->cell_act = ACT_TANH;
    l->recurrent_act = ACT_SIGMOID;
    l->unit_forget_bias = true;
    l->reset_after = true;
}

/* The cell's activations are differentiated from their outputs alone. */
static void need_output_derivative(const Layer *l, const Node *args, const char *key,
                                   Activation a)
{
    if (a == ACT_SWISH || a == ACT_GELU || a == ACT_SOFTMAX)
        error_at(args && map_get(args, key) ? map_get(args, key) : l->where,
                 "%s: %s '%s' is not supported in a recurrent cell", l->ops->keras_name, key,
                 activation_names[a]);
}

/* dropout and recurrent_dropout: Keras's arguments, 0 only. */
static void rnn_parse(Layer *l, const Node *args)
{
    static const char *const dropouts[] = {"dropout", "recurrent_dropout"};
    for (int i = 0; i < 2; i++) {
        const Node *v = args ? map_get(args, dropouts[i]) : NULL;
        if (v && node_num(v, dropouts[i]) != 0)
            error_at(v, "%s: %s %s is not supported; nncc's recurrent layers take 0 only",
                     l->ops->keras_name, dropouts[i], v->text);
    }
    need_output_derivative(l, args, "activation", l->cell_act);
    need_output_derivative(l, args, "recurrent_activation", l->recurrent_act);
    const Node *v = args ? map_get(args, "reset_after") : NULL;
    if (v && !l->reset_after)
        error_at(v, "GRU: reset_after false is not supported; nncc's GRU is Keras 2's default "
                    "(reset_after true, a bias of two rows)");
}

#define RNN_KEYS                                                                      \
    {"units", ARG_SIZE, F(units), 0, true, NULL},                                      \
    {"activation", ARG_ACTIVATION, F(cell_act), 0, false, NULL},                       \
    {"use_bias", ARG_BOOL, F(use_bias), 0, false, NULL},                               \
    {"return_sequences", ARG_BOOL, F(return_sequences), 0, false, NULL},               \
    {"go_backwards", ARG_BOOL, F(go_backwards), 0, false, NULL},                       \
    {"dropout", ARG_CUSTOM, 0, 0, false, NULL},                                        \
    {"recurrent_dropout", ARG_CUSTOM, 0, 0, false, NULL},                              \
    {"kernel_initializer", ARG_INITIALIZER, 0, 0, false, "glorot_uniform"},            \
    {"recurrent_initializer", ARG_INITIALIZER, 0, 0, false, "orthogonal"},             \
    {"bias_initializer", ARG_INITIALIZER, 0, 0, false, "zeros"},                      \
    {"kernel_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},                        \
    {"recurrent_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},                     \
    {"bias_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},                          \
    {"activity_regularizer", ARG_REGULARIZER, 0, 0, false, NULL}

static const KeySpec simple_rnn_keys[] = {RNN_KEYS, {0}};
static const KeySpec lstm_keys[] = {
    RNN_KEYS,
    {"recurrent_activation", ARG_ACTIVATION, F(recurrent_act), 0, false, NULL},
    {"unit_forget_bias", ARG_BOOL, F(unit_forget_bias), 0, false, NULL},
    {0},
};
static const KeySpec gru_keys[] = {
    RNN_KEYS,
    {"recurrent_activation", ARG_ACTIVATION, F(recurrent_act), 0, false, NULL},
    {"reset_after", ARG_BOOL, F(reset_after), 0, false, NULL},
    {0},
};

/* Keras config keys of the recurrent layers that are not arguments. */
static const KerasKey rnn_keras_keys[] = {
    {"recurrent_constraint", KERAS_NONE}, {"return_state", KERAS_FALSE},
    {"stateful", KERAS_FALSE}, {"time_major", KERAS_FALSE}, {"unroll", KERAS_IGNORE},
    {"implementation", KERAS_IGNORE}, {"zero_output_for_mask", KERAS_IGNORE},
    {"seed", KERAS_IGNORE}, {NULL, 0},
};

/* ---- shapes and tensors ------------------------------------------------------------- */

static void rnn_shape(Layer *l)
{
    if (l->in.rank != 2)
        error_at(l->where, "%s expects a sequence [steps, features], got %s; give "
                           "input_shape: [T, F], or return_sequences: true on the layer before",
                 l->ops->keras_name, shape_str(&l->in));
    l->out = l->return_sequences ? (Shape){2, {l->in.dim[0], l->units, 0}}
                                 : vector_shape(l->units);
}

/* kernel [F, G], recurrent_kernel [U, G] and bias, in Keras's order; bias_rows 2:
 * GRU's input and recurrent biases. */
static int rnn_tensors_of(const Layer *l, TensorSpec *t, long gates, int bias_rows)
{
    long g = gates * l->units;
    t[0] = (TensorSpec){"kernel", 2, {l->in.dim[1], g}, NN_INIT_GLOROT_UNIFORM, false};
    t[1] = (TensorSpec){"recurrent_kernel", 2, {l->units, g}, NN_INIT_ORTHOGONAL, false};
    if (!l->use_bias)
        return 2;
    if (bias_rows == 2)
        t[2] = (TensorSpec){"bias", 2, {2, g}, NN_INIT_ZEROS, false};
    else
        t[2] = (TensorSpec){"bias", 1, {g}, NN_INIT_ZEROS, false};
    return 3;
}

static int simple_rnn_tensors(const Layer *l, TensorSpec *t)
{
    return rnn_tensors_of(l, t, 1, 1);
}

static int lstm_tensors(const Layer *l, TensorSpec *t)
{
    int n = rnn_tensors_of(l, t, 4, 1);
    if (n == 3 && l->unit_forget_bias)
        t[2].init = NN_INIT_FORGET_BIAS;
    return n;
}

static int gru_tensors(const Layer *l, TensorSpec *t)
{
    return rnn_tensors_of(l, t, 3, 2);
}

/* Work memory per sample (the templates' first comment lays it out):
 *   proj T G, gates T G, rec T G, cs and hs (T + 1) U each, dh and dc U each. */
static long rnn_aux_of(const Layer *l, long gates)
{
    long t = l->in.dim[0], u = l->units, g = gates * u;
    return 3 * t * g + 2 * (t + 1) * u + 2 * u;
}

static long simple_rnn_aux(const Layer *l) { return rnn_aux_of(l, 1); }
static long lstm_aux(const Layer *l) { return rnn_aux_of(l, 4); }
static long gru_aux(const Layer *l) { return rnn_aux_of(l, 3); }

/* A kernel transposed (Dense's backward): the recurrent one at every step, the
 * input one for dx. */
static long rnn_scratch_of(const Layer *l, long gates)
{
    long f = l->in.dim[1], u = l->units;
    return (f > u ? f : u) * gates * u;
}

static long simple_rnn_scratch(const Layer *l) { return rnn_scratch_of(l, 1); }
static long lstm_scratch(const Layer *l) { return rnn_scratch_of(l, 4); }
static long gru_scratch(const Layer *l) { return rnn_scratch_of(l, 3); }

/* ---- templates ------------------------------------------------------------------------ */

/* The function a cell calls for activation a: sigmoid and tanh have call-free
 * versions (templates/activations.c.in), so that the loops over the units
 * vectorise; the others are their layers'. */
static const char *cell_function(Activation a)
{
    return a == ACT_SIGMOID ? "sigmoid_inline" : a == ACT_TANH ? "tanh_inline"
                                                               : activation_names[a];
}

/* @T@, @F@, @UNITS@, ..., and Dense's products as parts: FN_x, x . kernel over
 * the n T rows; FN_h, h . recurrent_kernel over the n samples of a step. */
static void rnn_holes_of(Holes *h, const Layer *l, long gates)
{
    long t = l->in.dim[0], f = l->in.dim[1], u = l->units;
    hole_long(h, "T", t);
    hole_long(h, "F", f);
    hole_long(h, "UNITS", u);
    hole_long(h, "GATES", gates);
    hole_long(h, "GO_BACKWARDS", l->go_backwards);
    hole_long(h, "RETURN_SEQUENCES", l->return_sequences);
    hole_word(h, "CELL_ACT", activation_names[l->cell_act]);
    hole_word(h, "REC_ACT", activation_names[l->recurrent_act]);
    hole_word(h, "CELL_FN", cell_function(l->cell_act));
    hole_word(h, "REC_FN", cell_function(l->recurrent_act));
    /* ROWS 1: the caller passes n x T (or n) rows as the batch. */
    static const char *const sizes[] = {"IN", "OUT", "ROWS", NULL};
    const long x_sizes[] = {f, gates * u, 1}, h_sizes[] = {u, gates * u, 1};
    hole_part(h, "X_PRODUCT", "dense", "x", sizes, x_sizes, NULL, NULL);
    hole_part(h, "H_PRODUCT", "dense", "h", sizes, h_sizes, NULL, NULL);
    hole_part(h, "X_PRODUCT_BACKWARD", "dense_backward", "x", sizes, x_sizes, NULL, NULL);
    hole_part(h, "H_PRODUCT_BACKWARD", "dense_backward", "h", sizes, h_sizes, NULL, NULL);
    hole_template(h, "RNN_COMMON", "rnn_common");
    hole_template(h, "RNN_INPUT_BACKWARD", "rnn_input_backward");
}

static void simple_rnn_holes(Holes *h, const Layer *l) { rnn_holes_of(h, l, 1); }
static void lstm_holes(Holes *h, const Layer *l) { rnn_holes_of(h, l, 4); }
static void gru_holes(Holes *h, const Layer *l) { rnn_holes_of(h, l, 3); }

#define RNN_ROW(kind)                                                                     \
    .keys = kind##_keys,                                                                  \
    .keras = (const KerasKey *const[]){weighted_keras_keys, rnn_keras_keys, NULL},        \
    .defaults = rnn_defaults, .parse = rnn_parse, .shape = rnn_shape,                     \
    .tensors = kind##_tensors, .aux = "state", .aux_size = kind##_aux,                    \
    .scratch_size = kind##_scratch, .tmpl = #kind, .holes = kind##_holes,                 \
    .forward_args = "n x P0 P1 P2 aux y",                                                 \
    .backward_args = "n x P0 P1 dy dx G0 G1 G2 aux scratch",                              \
    .flags = LF_SCRATCH_ALWAYS

const LayerOps simple_rnn_ops = {
    .positional = (const char *const[]){"units", "activation", NULL},
    .keras_name = "SimpleRNN", .default_name = "simple_rnn", RNN_ROW(simple_rnn),
};

const LayerOps lstm_ops = {
    .positional = (const char *const[]){"units", "activation", NULL},
    .keras_name = "LSTM", .default_name = "lstm", RNN_ROW(lstm),
};

const LayerOps gru_ops = {
    .positional = (const char *const[]){"units", "activation", NULL},
    .keras_name = "GRU", .default_name = "gru", RNN_ROW(gru),
};

/* ---- Bidirectional: one recurrent layer run forwards and backwards ----------------------
 * The wrapped layer's arguments are read by its own row into the Bidirectional's
 * Layer; its shape, tensors, work memory and templates are its row's, twice:
 * forward_NAME and backward_NAME (Keras's names), the second going backwards. */

enum { MERGE_CONCAT, MERGE_SUM, MERGE_AVE, MERGE_MUL, N_MERGES };
static const char *const merge_modes[N_MERGES + 1] = {"concat", "sum", "ave", "mul", NULL};

static bool is_recurrent(const LayerOps *ops)
{
    return ops == &simple_rnn_ops || ops == &lstm_ops || ops == &gru_ops;
}

/* layer: {LSTM: {units: 8, ...}}: the wrapped row reads its arguments into l. */
static void read_inner(Layer *l, const Node *v)
{
    if (v->kind != NODE_MAP || v->n != 1)
        error_at(v, "Bidirectional: layer must be one recurrent layer, e.g. "
                    "layer: {LSTM: {units: 32}}");
    const LayerOps *inner = layer_ops(v->keys[0]->text);
    static const char *const rnns[] = {"SimpleRNN", "LSTM", "GRU", NULL};
    if (!inner)
        unknown_word(v->keys[0], "recurrent layer", rnns);
    if (!is_recurrent(inner))
        error_at(v->keys[0], "Bidirectional wraps a recurrent layer (SimpleRNN, LSTM, GRU), "
                             "not %s", inner->keras_name);
    const Node *args = v->items[0];
    if (args->kind == NODE_SCALAR && !args->quoted && !*args->text)
        args = NULL;
    if (args && args->kind != NODE_MAP)
        error_at(args, "%s: its arguments must be a map, e.g. {units: 32}", inner->keras_name);
    static const char *const inner_keys[] = {
        "units", "activation", "recurrent_activation", "use_bias", "return_sequences",
        "go_backwards", "dropout", "recurrent_dropout", "kernel_initializer",
        "recurrent_initializer", "bias_initializer", "unit_forget_bias", "reset_after", "name",
        "trainable", NULL,
    };
    if (args)
        map_check_keys(args, inner->keras_name, inner_keys);
    const LayerOps *outer = l->ops;
    l->ops = l->inner = inner;
    inner->defaults(l);
    layer_parse_args(l, args, v);
    l->ops = outer;
    const Node *name = args ? map_get(args, "name") : NULL;
    if (name && !is_c_identifier(node_str(name, "name")))
        error_at(name, "layer name '%s' is not a C identifier", name->text);
    snprintf(l->inner_name, sizeof l->inner_name, "%s", name ? name->text : inner->default_name);
    if (!l->use_bias)
        error_at(args ? map_get(args, "use_bias") : v,
                 "Bidirectional: a wrapped layer without a bias is not supported");
}

static void bidirectional_parse(Layer *l, const Node *args)
{
    read_inner(l, map_get(args, "layer"));
    const Node *v = map_get(args, "merge_mode");
    if (!v)
        return;
    const char *s = node_str(v, "merge_mode");
    for (l->merge_mode = 0; l->merge_mode < N_MERGES; l->merge_mode++)
        if (strcmp(s, merge_modes[l->merge_mode]) == 0)
            return;
    unknown_word(v, "merge_mode", merge_modes);
}

/* The wrapped layer as its own row sees it; backwards: the backward_ one. */
static Layer inner_layer(const Layer *l, bool backwards)
{
    Layer inner = *l;
    inner.ops = l->inner;
    inner.go_backwards = l->go_backwards != backwards;
    rnn_shape(&inner);
    return inner;
}

static void bidirectional_shape(Layer *l)
{
    rnn_shape(l);   /* the wrapped layer's output; concat doubles its last axis */
    if (l->merge_mode == MERGE_CONCAT)
        l->out.dim[l->out.rank - 1] = checked_mul(l, l->out.dim[l->out.rank - 1], 2);
}

/* Keras's order: the forward layer's tensors, then the backward one's. */
static void bidirectional_finish(Layer *l)
{
    TensorSpec t[MAX_LAYER_TENSORS];
    int n = l->inner->tensors(l, t);
    for (int i = 0; i < 2 * n; i++)
        snprintf(l->roles[i], sizeof l->roles[i], "%s_%s.%s", i < n ? "forward" : "backward",
                 l->inner_name, t[i % n].role);
}

static int bidirectional_tensors(const Layer *l, TensorSpec *t)
{
    Layer inner = inner_layer(l, false);
    int n = l->inner->tensors(&inner, t);
    for (int i = 0; i < n; i++) {
        t[n + i] = t[i];
        t[i].role = l->roles[i];
        t[n + i].role = l->roles[n + i];
    }
    return 2 * n;
}

/* Each direction's own work memory and output, their output gradients, and the
 * backward layer's dx before it is added to the forward one's. */
static long bidirectional_aux(const Layer *l)
{
    Layer inner = inner_layer(l, false);
    return 2 * l->inner->aux_size(&inner) + 4 * shape_size(&inner.out) + shape_size(&l->in);
}

static long bidirectional_scratch(const Layer *l)
{
    Layer inner = inner_layer(l, false);
    return l->inner->scratch_size(&inner);
}

static void bidirectional_holes(Holes *h, const Layer *l)
{
    Layer fw = inner_layer(l, false), bw = inner_layer(l, true);
    char backward[64];
    snprintf(backward, sizeof backward, "%s_backward", l->inner->tmpl);
    hole_part(h, "FORWARD_LAYER", l->inner->tmpl, "fw", NULL, NULL, l->inner->holes, &fw);
    hole_part(h, "BACKWARD_LAYER", l->inner->tmpl, "bw", NULL, NULL, l->inner->holes, &bw);
    hole_part(h, "FORWARD_LAYER_BACKWARD", backward, "fw", NULL, NULL, l->inner->holes, &fw);
    hole_part(h, "BACKWARD_LAYER_BACKWARD", backward, "bw", NULL, NULL, l->inner->holes, &bw);
    hole_word(h, "INNER", l->inner->keras_name);
    hole_word(h, "MERGE", merge_modes[l->merge_mode]);
    hole_long(h, "MERGE_MODE", l->merge_mode);
    hole_long(h, "INNER_AUX", l->inner->aux_size(&fw));
    hole_long(h, "INNER_OUT", shape_size(&fw.out));
    hole_long(h, "STEPS", l->in.dim[0]);
    hole_long(h, "UNITS", l->units);
    hole_long(h, "RETURN_SEQUENCES", l->return_sequences);
}

static const KeySpec bidirectional_keys[] = {
    {"layer", ARG_LAYER, 0, 0, true, NULL},
    {"merge_mode", ARG_CUSTOM, 0, 0, false, NULL},
    {0},
};

const LayerOps bidirectional_ops = {
    .keras_name = "Bidirectional", .default_name = "bidirectional",
    .keys = bidirectional_keys, .parse = bidirectional_parse, .finish = bidirectional_finish,
    .shape = bidirectional_shape, .tensors = bidirectional_tensors,
    .aux = "state", .aux_size = bidirectional_aux, .scratch_size = bidirectional_scratch,
    .tmpl = "bidirectional", .holes = bidirectional_holes,
    .forward_args = "n x P0 P1 P2 P3 P4 P5 aux y",
    .backward_args = "n x P0 P1 P3 P4 dy dx G0 G1 G2 G3 G4 G5 aux scratch",
    .flags = LF_SCRATCH_ALWAYS,
};
