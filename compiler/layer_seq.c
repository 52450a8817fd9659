/* layer_seq.c - the layer table's rows for sequences, [steps, features]:
 * Embedding, Conv1D, MaxPooling1D, AveragePooling1D, GlobalAveragePooling1D,
 * GlobalMaxPooling1D.
 *
 * Design note: a sequence is an image of one row. emit.c's op_holes gives a
 * rank-2 input H 1, W steps, C features, so the 1-D layers run the 2-D
 * templates (conv2d, maxpool2d, avgpool2d, gap2d, gmp2d) with the row's
 * height fixed at 1: kh = sh = dh = 1, and their Keras arguments go into the
 * width's fields (kw, sw, dw). Their emitted C still names every size as a
 * constant (W is the sequence's length). Only Embedding has templates of its
 * own, templates/embedding*.c.in. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define F(field) offsetof(Layer, field)

/* ---- Embedding ---------------------------------------------------------------------- */

static void embedding_parse(Layer *l, const Node *args)
{
    const Node *v = args ? map_get(args, "mask_zero") : NULL;
    if (v && node_bool(v, "mask_zero"))
        error_at(v, "mask_zero: true is not supported: nncc has no masking (token 0 is an "
                    "ordinary token here); leave it false");
    v = args ? map_get(args, "input_length") : NULL;
    if (v)
        l->input_length = node_int(v, "input_length", 1, 1000000L);
}

/* Token ids [T] (or any shape) -> one vector of output_dim per id. */
static void embedding_shape(Layer *l)
{
    if (l->in.rank > 2)
        error_at(l->where, "Embedding expects token ids, a sequence [steps], got %s",
                 shape_str(&l->in));
    long steps = l->in.dim[l->in.rank - 1];
    if (l->input_length && l->input_length != steps)
        error_at(l->where, "Embedding's input_length %ld differs from its input's length %ld "
                           "(input %s)", l->input_length, steps, shape_str(&l->in));
    l->out = l->in;
    l->out.dim[l->out.rank++] = l->output_dim;
    checked_mul(l, shape_size(&l->in), l->output_dim);
}

static int embedding_tensors(const Layer *l, TensorSpec *t)
{
    t[0] = (TensorSpec){"embeddings", 2, {l->input_dim, l->output_dim}, NN_INIT_UNIFORM, false};
    return 1;
}

static void embedding_holes(Holes *h, const Layer *l)
{
    hole_long(h, "INPUT_DIM", l->input_dim);
    hole_long(h, "OUTPUT_DIM", l->output_dim);
}

static const KerasKey embedding_keras_keys[] = {
    {"embeddings_constraint", KERAS_NONE},
    {"sparse", KERAS_FALSE}, {"lora_rank", KERAS_NONE}, {NULL, 0},
};

static const KeySpec embedding_keys[] = {
    {"input_dim", ARG_SIZE, F(input_dim), 0, true, NULL},
    {"output_dim", ARG_SIZE, F(output_dim), 0, true, NULL},
    {"embeddings_initializer", ARG_INITIALIZER, 0, 0, false, "uniform"},
    {"embeddings_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},
    {"activity_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},
    {"input_length", ARG_CUSTOM, 0, 0, false, NULL},
    {"mask_zero", ARG_CUSTOM, 0, 0, false, NULL},
    {0},
};

const LayerOps embedding_ops = {
    .positional = (const char *const[]){"input_dim", "output_dim", NULL},
    .keras_name = "Embedding", .default_name = "embedding",
    .keys = embedding_keys, .keras = (const KerasKey *const[]){embedding_keras_keys, NULL},
    .parse = embedding_parse, .shape = embedding_shape, .tensors = embedding_tensors,
    .tmpl = "embedding", .holes = embedding_holes,
    .forward_args = "n x P0 y", .backward_args = "n x dy G0",
    .flags = LF_NO_INPUT_GRADIENT,
};

/* ---- Conv1D: Conv2D's templates on a 1 x T image ------------------------------------- */

static void conv1d_parse(Layer *l, const Node *args)
{
    const Node *v = args ? map_get(args, "padding") : NULL;
    if (!v)
        return;
    const char *s = node_str(v, "padding");
    l->causal = strcasecmp(s, "causal") == 0;
    l->same = strcasecmp(s, "same") == 0;
    static const char *const choices[] = {"valid", "same", "causal", NULL};
    if (!l->causal && !l->same && strcasecmp(s, "valid") != 0)
        unknown_word(v, "padding", choices);
}

/* TensorFlow's lengths: same and causal keep ceil(T / s); valid drops what a
 * window of (k - 1) d + 1 steps does not cover. */
static void conv1d_shape(Layer *l)
{
    need_sequence(l);
    long t = l->in.dim[0], span = (l->kw - 1) * l->dw + 1;
    if (l->causal)
        t = (t + l->sw - 1) / l->sw;
    else
        t = window_out(l, t, span, l->sw, "length");
    l->out = (Shape){2, {t, l->filters, 0}};
    if (l->dw > 1 && l->sw > 1)   /* as Keras: TensorFlow refuses the pair */
        error_at(l->where, "Conv1D: strides > 1 together with dilation_rate > 1 is not "
                           "supported (nor by Keras)");
}

static int conv1d_tensors(const Layer *l, TensorSpec *t)
{
    long shape[3] = {l->kw, l->in.dim[1], l->filters};
    return kernel_and_bias(l, t, 3, shape);
}

/* The kernel transposed, for dx. */
static long conv1d_scratch(const Layer *l)
{
    return l->kw * l->in.dim[1] * l->filters;
}

static void one_row(Layer *l)
{
    l->kh = l->sh = l->dh = 1;
}

static const KeySpec conv1d_keys[] = {
    {"filters", ARG_SIZE, F(filters), 0, true, NULL},
    {"kernel_size", ARG_SIZE_1D, F(kw), 0, true, NULL},
    {"strides", ARG_SIZE_1D, F(sw), 0, false, NULL},
    {"padding", ARG_CUSTOM, 0, 0, false, NULL},
    {"dilation_rate", ARG_SIZE_1D, F(dw), 0, false, NULL},
    {"activation", ARG_ACTIVATION, F(act), 0, false, NULL},
    {"use_bias", ARG_BOOL, F(use_bias), 0, false, NULL},
    KERNEL_BIAS_KEYS,
    {0},
};

static const KerasKey conv1d_keras_keys[] = {{"groups", KERAS_ALL_ONES}, {NULL, 0}};

const LayerOps conv1d_ops = {
    .positional = (const char *const[]){"filters", "kernel_size", "strides", "padding", NULL},
    .keras_name = "Conv1D", .aliases = (const char *const[]){"Convolution1D", NULL},
    .default_name = "conv1d", .keys = conv1d_keys,
    .keras = (const KerasKey *const[]){weighted_keras_keys, conv1d_keras_keys,
                                       channels_last_keras_keys, NULL},
    .defaults = one_row, .parse = conv1d_parse, .shape = conv1d_shape,
    .tensors = conv1d_tensors, .tmpl = "conv2d", .scratch_size = conv1d_scratch,
    .forward_args = "n x P0 P1 y", .backward_args = "n x y P0 dy dx G0 G1 scratch",
    .flags = LF_OWN_RELU,
};

/* ---- MaxPooling1D, AveragePooling1D: the 2-D pools' templates ---------------------- */

static void pool1d_defaults(Layer *l)
{
    one_row(l);
    l->kw = 2;
    l->sw = 0;   /* not given: the pool size */
}

static void pool1d_finish(Layer *l)
{
    if (!l->sw)
        l->sw = l->kw;
}

static void pool1d_shape(Layer *l)
{
    need_sequence(l);
    l->out = (Shape){2, {window_out(l, l->in.dim[0], l->kw, l->sw, "length"), l->in.dim[1], 0}};
}

static const KeySpec pool1d_keys[] = {
    {"pool_size", ARG_SIZE_1D, F(kw), 0, false, NULL},
    {"strides", ARG_SIZE_1D, F(sw), 0, false, NULL},
    {"padding", ARG_PADDING, F(same), 0, false, NULL},
    {0},
};

const LayerOps maxpool1d_ops = {
    .positional = (const char *const[]){"pool_size", "strides", "padding", NULL},
    .keras_name = "MaxPooling1D", .aliases = (const char *const[]){"MaxPool1D", NULL},
    .default_name = "max_pooling1d", .keys = pool1d_keys,
    .keras = (const KerasKey *const[]){channels_last_keras_keys, NULL},
    .defaults = pool1d_defaults, .finish = pool1d_finish, .shape = pool1d_shape,
    .tmpl = "maxpool2d", .forward_args = "n x y", .backward_args = "n x y dy dx",
};

const LayerOps avgpool1d_ops = {
    .positional = (const char *const[]){"pool_size", "strides", "padding", NULL},
    .keras_name = "AveragePooling1D", .aliases = (const char *const[]){"AvgPool1D", NULL},
    .default_name = "average_pooling1d", .keys = pool1d_keys,
    .keras = (const KerasKey *const[]){channels_last_keras_keys, NULL},
    .defaults = pool1d_defaults, .finish = pool1d_finish, .shape = pool1d_shape,
    .tmpl = "avgpool2d", .forward_args = "n x y", .backward_args = "n x y dy dx",
};

/* ---- GlobalAveragePooling1D, GlobalMaxPooling1D: over the steps ----------------------- */

static void global_pool1d_shape(Layer *l)
{
    need_sequence(l);
    l->out = vector_shape(l->in.dim[1]);
}

const LayerOps gap1d_ops = {
    .keras_name = "GlobalAveragePooling1D",
    .aliases = (const char *const[]){"GlobalAvgPool1D", NULL},
    .default_name = "global_average_pooling1d", .keys = (const KeySpec[]){{0}},
    .keras = (const KerasKey *const[]){global_pool_keras_keys, NULL},
    .shape = global_pool1d_shape, .tmpl = "gap2d",
    .forward_args = "n x y", .backward_args = "n x y dy dx", .flags = LF_FLAT_OUTPUT,
};

const LayerOps gmp1d_ops = {
    .keras_name = "GlobalMaxPooling1D",
    .aliases = (const char *const[]){"GlobalMaxPool1D", NULL},
    .default_name = "global_max_pooling1d", .keys = (const KeySpec[]){{0}},
    .keras = (const KerasKey *const[]){global_pool_keras_keys, NULL},
    .shape = global_pool1d_shape, .tmpl = "gmp2d",
    .forward_args = "n x y", .backward_args = "n x dy dx", .flags = LF_FLAT_OUTPUT,
};
