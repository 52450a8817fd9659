/* nncc.h - the compiler's stages and the data that passes between them.
 *
 *   yaml.c    file  -> Node tree (every node keeps its line and column)
 *   model.c   Node  -> Model: every value parsed and checked, layers connected
 *   keras.c   a Keras to_yaml()/to_json() export -> the same Model
 *   layers.c  the layer table; layer_*.c its rows, one per kind of layer
 *   shape.c   shapes and parameter counts, by each row's rule
 *   check.c   the checks that need shapes (weights, samples, data, output)
 *   plan.c    Model -> Plan: the tensor table, the work buffers, the ops
 *   lifetime.c  the work buffers' offsets, by when each is in use
 *   emit.c    Plan  -> C, from the templates built into nncc
 *   diag.c    FILE:LINE:COL: error: ..., "did you mean"
 *
 * Every stage reports a problem with the model through error_at(), which prints
 * the message and exits with status 1; nothing is written before all stages ran.
 */
#ifndef NNCC_H
#define NNCC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#define NNCC_VERSION "0.1.0"
#define MAX_NAME 63

/* ---- yaml.c ------------------------------------------------------------------- */

typedef enum { NODE_SCALAR, NODE_SEQ, NODE_MAP } NodeKind;

typedef struct Node Node;
struct Node {
    NodeKind kind;
    int line, col;           /* 1-based, of the node's first character */
    const char *file;
    const char *tag;         /* "!!python/tuple" and the like, or NULL */
    char *text;              /* SCALAR */
    bool quoted;             /* SCALAR written in quotes: always a string */
    int n;                   /* SEQ: items; MAP: pairs */
    Node **items;            /* SEQ items, MAP values */
    Node **keys;             /* MAP keys (scalars) */
};

/* Reads FILE (YAML, and so JSON too). Aliases are resolved; a document that
 * would expand to more than a sane number of nodes is refused. */
Node *yaml_load(const char *path);
/* Frees every loaded node, for a program that loads many files (tests/fuzz/). */
void yaml_release(void);

/* ---- diag.c ------------------------------------------------------------------- */

_Noreturn void error_at(const Node *where, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
_Noreturn void error_file(const char *file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void warn_at(const Node *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* "unknown WHAT 'n'; did you mean ...?", or with every choice listed. */
_Noreturn void unknown_word(const Node *n, const char *what, const char *const *choices);
/* "unknown WHAT 'n'; supported: ..." with every choice and no guess, for
 * words whose near spellings are other things (auroc is not auc). */
_Noreturn void unsupported_word(const Node *n, const char *what, const char *const *choices);
/* The closest of choices (NULL-terminated) to word, or NULL if none is close. */
const char *closest_word(const char *word, const char *const *choices);
/* "a, b, c": the choices (NULL-terminated), as many as fit in buf; returns buf. */
const char *listed(const char *const *choices, char *buf, size_t len);

/* Typed access that reports the node's position on a mismatch. */
Node *map_get(const Node *map, const char *key);            /* NULL if absent */
void map_check_keys(const Node *map, const char *what, const char *const *allowed);
const char *node_str(const Node *n, const char *what);
long node_int(const Node *n, const char *what, long min, long max);
double node_num(const Node *n, const char *what);            /* also "A/B" */
bool node_bool(const Node *n, const char *what);
bool is_c_identifier(const char *s);
/* Keras's two spellings of a name are one: GlorotUniform, glorot_uniform. */
bool same_word(const char *a, const char *b);

/* ---- expr.c: arithmetic in the model file ------------------------------------------ */

typedef enum { EX_NUM, EX_VAR, EX_NEG, EX_ADD, EX_SUB, EX_MUL, EX_DIV, EX_POW, EX_CALL } ExprOp;
/* FN_SIGN and FN_LE (1 if a <= b) only appear in derivatives. */
typedef enum {
    FN_EXP, FN_LOG, FN_SQRT, FN_ABS, FN_TANH, FN_MIN, FN_MAX, FN_POW, FN_SIGN, FN_LE, FN_COUNT
} ExprFn;

typedef struct Expr Expr;
struct Expr {
    ExprOp op;
    double num;                   /* EX_NUM */
    int var;                      /* EX_VAR: an index into the caller's names */
    int fn;                       /* EX_CALL: an ExprFn */
    Expr *a, *b;                  /* operands, arguments */
};

/* The scalar's text as Python arithmetic of the NULL-terminated vars: numbers,
 * + - * / ** (Python's precedence), parentheses, exp log sqrt abs tanh min max
 * pow (also as math.exp, tf.math.exp, np.exp). error_at() at the column of
 * the first thing wrong. */
Expr *expr_parse(const Node *scalar, const char *what, const char *const *vars);
double expr_eval(const Expr *e, const double *vars);
/* As a C float expression, fully parenthesised; c_vars[i] is variable i's C. */
void expr_emit(FILE *out, const Expr *e, const char *const *c_vars);
/* d e / d var, with constants folded so that it reads as written by hand. */
Expr *expr_derivative(const Expr *e, int var);
void expr_free(Expr *e);

/* ---- the IR: layers, the layer table, the model ---------------------------------- */

typedef enum {
    ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX,
    ACT_ELU, ACT_SELU, ACT_SOFTPLUS, ACT_SOFTSIGN, ACT_SWISH, ACT_GELU, ACT_HARD_SIGMOID,
    ACT_COUNT
} Activation;

typedef struct { int rank; long dim[3]; } Shape;   /* without the batch */

/* Numbers written in the model file as (nested) lists, already read: a
 * rectangular array of count floats whose nesting gives rank and dim. */
typedef struct {
    int rank;
    long dim[4];
    long count;
    float *values;
    const Node *where;            /* for errors only */
} NumArray;

/* ---- init.c: initialisers and regularisers ------------------------------------------------ */

#define MAX_INIT_ARGS 3
typedef struct {
    bool given;                   /* false: the layer's default for the tensor */
    int kind;                     /* its row in init.c's table */
    double args[MAX_INIT_ARGS];   /* the row's arguments, Keras's defaults where not given */
    bool seeded;                  /* its own `seed:`, drawn from instead of the trainer's */
    unsigned long long seed;
} InitSpec;

typedef struct {
    double l1, l2;                /* adds l1 * sum|w| + l2 * sum w^2 to the loss */
} RegSpec;

/* kernel_initializer: he_normal, {name: random_normal, stddev: 0.1} or Keras's
 * {class_name: HeNormal, config: {...}}; error_at() on what Keras would refuse. */
void parse_initializer(const Node *v, const char *key, InitSpec *s);
/* kernel_regularizer: l2, {l2: 0.001}, {class_name: L2, config: {l2: 0.001}} or null. */
void parse_regularizer(const Node *v, const char *key, RegSpec *s);
/* The runtime's fill (nn_init) and its numbers a, b for a tensor with these fans. */
int init_fill(const InitSpec *s, long fan_in, long fan_out, float *a, float *b);
const char *const *initializer_names(void);     /* NULL-terminated */
const char *const *regularizer_names(void);

typedef struct LayerOps LayerOps;
typedef struct Holes Holes;       /* a template's @NAME@s and their values (emit.c) */

#define MAX_INPUTS 8
#define MAX_LAYER_TENSORS 6         /* Bidirectional(LSTM): two kernels, recurrent kernels, biases */
#define MODEL_INPUT (-1)          /* Layer.inputs: the model's input */

typedef struct {
    char key[24];                 /* "kernel", "bias", "gamma", ... */
    NumArray values;
} InlineWeight;

/* What the model file chose for one of a layer's tensors (ROLE_initializer,
 * ROLE_regularizer). */
typedef struct {
    char role[24];                /* "kernel", "bias", "gamma", ... */
    InitSpec init;
    RegSpec reg;
} TensorChoice;

/* One layer, with every value parsed and checked: later stages never read YAML. */
typedef struct {
    const LayerOps *ops;          /* its row in the layer table */
    char name[MAX_NAME + 1];
    const Node *where;            /* the layer's place in the model file, for errors */
    bool trainable;
    Activation act;               /* Dense, Conv2D, Activation */
    long units;                   /* Dense */
    bool use_bias;                /* Dense, Conv2D */
    long filters;                 /* Conv2D */
    long kh, kw, sh, sw;          /* Conv2D kernel, pools' pool_size; strides */
    long dh, dw;                  /* dilation_rate (Conv1D's is dw: a sequence is 1 x T) */
    bool same;                    /* padding: same */
    bool causal;                  /* Conv1D's padding: causal (all of it before) */
    long input_dim, output_dim;   /* Embedding */
    long input_length;            /* Embedding: 0, or the steps it must be given */
    bool strides_given;           /* pools: strides default to pool_size */
    double rate;                  /* Dropout */
    double momentum, epsilon;     /* BatchNormalization */
    double alpha;                 /* LeakyReLU, ELU, ...: the slope or scale below 0 */
    double max_value, threshold;  /* ReLU; max_value < 0: none */
    double scale, offset;         /* Rescaling */
    unsigned shared_axes;         /* PReLU: bit k-1 set for Keras's axis k (the batch is 0) */
    long pad[4];                  /* ZeroPadding2D, Cropping2D: top, bottom, left, right */
    long size_h, size_w;          /* UpSampling2D */
    long depth_multiplier;        /* DepthwiseConv2D, SeparableConv2D */
    Shape target;                 /* Reshape */
    Expr *expr;                   /* Lambda: y as a function of x */
    long axis;                    /* Concatenate: the axis without the batch, from 0 */
    /* SimpleRNN, LSTM, GRU (and Bidirectional's inner layer): activations of their
     * own, not an op after the layer */
    Activation cell_act, recurrent_act;
    bool return_sequences, go_backwards, unit_forget_bias, reset_after;
    const LayerOps *inner;        /* Bidirectional: the row of the layer it wraps */
    char inner_name[MAX_NAME + 1];   /* and that layer's name (lstm, gru_1, ...) */
    int merge_mode;               /* Bidirectional: concat, sum, ave, mul */
    char roles[MAX_LAYER_TENSORS][MAX_NAME + 40];   /* Bidirectional: forward_lstm.kernel, ... */
    int n_weights;                /* inline `weights:` */
    InlineWeight weights[MAX_LAYER_TENSORS];
    int n_choices;                /* kernel_initializer, bias_regularizer, ... */
    TensorChoice choices[MAX_LAYER_TENSORS];

    int n_inputs;                 /* the layers it reads, earlier in the file */
    int inputs[MAX_INPUTS];       /* indices in Model.layers, or MODEL_INPUT */
    const Node *input_names;      /* `inputs:` as written, resolved by the model stage */
    Shape ins[MAX_INPUTS];        /* shape.c: the shapes of the inputs */
    Shape in, out;                /* shape.c: in is the first input's shape */
    long params, trainable_params;
} Layer;

/* ---- layers.c: the layer table ---------------------------------------------------------
 * Everything nncc knows about a kind of layer sits in its row: every stage
 * reads rows instead of switching on the kind. A row lives in the file of its
 * family (layer_core.c, layer_conv.c, ...), next to the functions it names, and
 * is listed once in layers.def. docs/adding-a-layer.md tells how to add one. */

/* How an argument is read; each type has one reader with its messages. */
typedef enum {
    ARG_SIZE,          /* an integer from 1 */
    ARG_SIZE_PAIR,     /* 3 or [3, 5] into two fields */
    ARG_SIZE_1D,       /* 3 or [3] (Keras's tuple of a 1-D layer) */
    ARG_FRACTION,      /* [0, 1) */
    ARG_UNIT_RANGE,    /* [0, 1] */
    ARG_POSITIVE,      /* > 0 */
    ARG_BOOL,
    ARG_ACTIVATION,
    ARG_PADDING,       /* valid | same, into a bool */
    ARG_NUMBER,        /* any finite number */
    ARG_NONNEGATIVE,   /* >= 0 */
    ARG_INITIALIZER,   /* ROLE_initializer: an initialiser for the tensor ROLE (init.c) */
    ARG_REGULARIZER,   /* ROLE_regularizer: its regulariser (init.c) */
    ARG_CUSTOM,        /* read by the row's parse() */
    ARG_LAYER,         /* a wrapped layer, {LSTM: {...}} (a Keras export's {class_name,
                          config} is made so by keras.c), read by the row's parse() */
} ArgType;

typedef struct {
    const char *key;
    ArgType type;
    size_t field, field2;         /* offsetof(Layer, ...); field2: a pair's second */
    bool required;
    const char *expect;           /* ARG_INITIALIZER: Keras's default, as the row's tensors() gives it */
} KeySpec;

/* The keys of a layer with a kernel and a bias (Dense, Conv1D, Conv2D):
 * Keras's initialisers and regularisers for both. */
#define KERNEL_BIAS_KEYS                                                        \
    {"kernel_initializer", ARG_INITIALIZER, 0, 0, false, "glorot_uniform"},    \
    {"bias_initializer", ARG_INITIALIZER, 0, 0, false, "zeros"},              \
    {"kernel_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},                \
    {"bias_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},                  \
    {"activity_regularizer", ARG_REGULARIZER, 0, 0, false, NULL}

/* What a key of a Keras config must hold when nncc has no argument for it. */
typedef enum {
    KERAS_IGNORE,        /* no effect on the numbers nncc computes */
    KERAS_NONE,          /* must be null: regularizers, constraints, ... */
    KERAS_FALSE, KERAS_TRUE,
    KERAS_CHANNELS_LAST, /* data_format */
    KERAS_ALL_ONES,      /* dilation_rate, groups */
    KERAS_GLOROT, KERAS_ZEROS, KERAS_ONES,   /* initializers */
    KERAS_LAST_AXIS,     /* BatchNormalization's axis */
} KerasRule;

typedef struct {
    const char *key;
    KerasRule rule;
} KerasKey;

/* A parameter tensor of a layer, before it has a place: "kernel" [3, 3, 1, 64]. */
typedef struct {
    const char *role;
    int rank;
    long shape[4];
    int init;                     /* nn_init */
    bool statistic;               /* updated by the forward pass, never trained */
} TensorSpec;

enum {
    LF_FEATURE_MAP = 1 << 0,      /* `activations` draws its output */
    LF_WHOLE_BATCH = 1 << 1,      /* needs a whole batch at once (batch statistics) */
    LF_INFERENCE_IDENTITY = 1 << 2,  /* passes values through outside training */
    LF_FLAT_OUTPUT = 1 << 3,      /* its output is a vector whatever its input */
    LF_MERGE = 1 << 4,            /* reads two or more inputs */
    LF_OWN_ACTIVATION = 1 << 5,   /* the layer is an activation: no op of its own */
    LF_SCRATCH_ALWAYS = 1 << 6,   /* its backward uses scratch even with no dx to give
                                     (the RNNs' recurrent kernel, transposed) */
    LF_NO_INPUT_GRADIENT = 1 << 7,   /* reads token ids: no gradient flows back (Embedding) */
    LF_OWN_RELU = 1 << 8,         /* its templates apply a relu activation themselves
                                     (hole RELU), forward and backward: no op for it */
    LF_OWN_UPDATE = 1 << 9,       /* its backward takes the optimizer's step for its
                                     tensors when given pass->update (nn_update_span) */
};

struct LayerOps {
    const char *keras_name;       /* "Conv2D": the native and the Keras class name */
    const char *const *aliases;   /* Keras's other names for it, NULL-terminated, or NULL */
    const char *default_name;     /* "conv2d", numbered _1, _2, ... as Keras does */
    const KeySpec *keys;          /* its arguments, {0}-terminated */
    const char *const *positional;   /* Keras's positional ones, in order: `Dense: 8` */
    const KerasKey *const *keras; /* rules for Keras config keys it has no argument for */
    void (*defaults)(Layer *);    /* Keras's defaults, before the arguments (or NULL) */
    /* After the generic arguments: the ARG_CUSTOM ones (args may be NULL). */
    void (*parse)(Layer *, const Node *args);
    void (*finish)(Layer *);      /* after the arguments: derived values (or NULL) */
    void (*shape)(Layer *);       /* ins -> out and params; error_at() on what cannot be */
    int (*tensors)(const Layer *, TensorSpec *out);   /* its parameters (or NULL) */
    const char *aux;              /* the name of its own work buffer (or NULL) */
    long (*aux_size)(const Layer *);   /* floats per sample */
    long (*scratch_size)(const Layer *);  /* floats its backward uses for dx, any batch */
    const char *tmpl;             /* templates/TMPL.c.in and TMPL_backward.c.in (or NULL: no op) */
    const char *parts;            /* the hole_part names its templates add, "mm": their
                                     functions FN_mm_forward ... are claimed too (plan.c) */
    const char *inference_tmpl;   /* for --inference, if not tmpl */
    /* The arguments of its calls, words joined by ", ": n, pass, x (its input),
     * y (its output), dy, dx, aux, scratch, P0..P5 (its tensors), G0..G5 (their gradients),
     * xs and dxs (all inputs and their gradients, for merges). */
    const char *forward_args, *backward_args, *inference_args;
    /* Its templates' own holes beyond the common ones (emit.c's op_holes). */
    void (*holes)(Holes *, const Layer *);
    unsigned flags;
    /* The row that runs this layer when its shapes choose between ways of
     * computing it (Conv2D: Winograd or direct; or NULL: this row). plan.c
     * takes the op's templates, calls, buffers and flags from it. */
    const LayerOps *(*variant)(const Layer *);
};

#define MAX_LAYER_KINDS 64
extern const LayerOps *const layer_table[];   /* NULL-terminated */
const LayerOps *layer_ops(const char *name);  /* by Keras's name or an alias; NULL if unknown */
/* Reads a layer's arguments (args may be NULL) into l, per its row's keys. */
void layer_parse_args(Layer *l, const Node *args, const Node *where);
/* The keys a native layer of this kind takes: its own and the common ones. */
const char *const *layer_native_keys(const LayerOps *ops);
const KerasKey *keras_rule(const LayerOps *ops, const char *key);
/* What the model file chose for the layer's tensor `role`, or NULL. */
const TensorChoice *layer_choice(const Layer *l, const char *role);

/* Shared by rows of several families. */
extern const KerasKey weighted_keras_keys[];   /* initializers, regularizers, ... */
extern const KerasKey channels_last_keras_keys[];   /* data_format */
extern const KerasKey conv2d_keras_keys[];     /* dilation_rate, groups: 1 */
extern const KeySpec conv2d_keys[];            /* Conv2D's arguments, Conv2DTranspose's too */
/* kernel (Glorot uniform) and, with use_bias, a zero bias over the last axis. */
int kernel_and_bias(const Layer *l, TensorSpec *t, int rank, const long *kernel_shape);
void same_shape(Layer *l);
/* The global pools: one value per channel of an image; keepdims false only. */
void global_pool_shape(Layer *l);
extern const KerasKey global_pool_keras_keys[];

/* ---- model.c, keras.c: the model ----------------------------------------------------- */

/* compile.optimizer.learning_rate as a Keras schedule object (schedule.c). */
#define MAX_BOUNDARIES 16
typedef struct {
    int kind;                     /* nn_lr_kind: NN_LR_CONSTANT (0) when a number */
    const char *class_name;       /* as Keras names it, for messages */
    double initial_learning_rate, decay_steps, decay_rate, alpha;
    bool staircase;
    int n_boundaries;             /* PiecewiseConstantDecay */
    long long boundaries[MAX_BOUNDARIES];
    double values[MAX_BOUNDARIES + 1];
} ScheduleSpec;

typedef struct {
    int kind;                     /* nn_opt_kind */
    double learning_rate, momentum, beta_1, beta_2, epsilon, rho;
    bool nesterov;
    double initial_accumulator_value, weight_decay;
    double clipnorm, clipvalue, global_clipnorm;   /* 0: not given */
    ScheduleSpec schedule;
} OptimizerSpec;

typedef struct {
    int format;                   /* nn_data_format */
    const Node *where;
    const char *images, *labels, *path;
    long label_column;            /* -1: last */
    const char *label_name;       /* label_column given as a header name, or NULL */
    int header;                   /* 1, 0, or NN_HEADER_AUTO (not given) */
    long target_h, target_w, channels;
    bool skip_bad_files;
    NumArray x, y;                /* inline samples: each item of the top list is one */
    const char *column;           /* series: the column by name, or NULL: column_index */
    long column_index;            /* series: -1 the last */
    long window_size, shift, horizon, split_time;   /* series; split_time -1: none */
    const char *text_field, *label_field;           /* text */
} SourceSpec;

/* The Tokenizer and pad_sequences settings that every text source shares. */
typedef struct {
    const Node *where;            /* the first text source that set one, or NULL */
    long num_words;               /* 0: all */
    const char *oov_token;
    long max_length;              /* 0: not given, the model's input length */
    bool pad_post, truncate_post;
} TextSpec;

typedef struct {
    int kind;                     /* nn_callback_kind */
    const char *monitor, *filepath;
    double threshold, min_delta;
    long patience;
    bool restore_best_weights, save_best_only;
    bool maximize;                /* mode, or Keras's auto for the monitor */
    Expr *schedule;               /* LearningRateScheduler: of epoch and lr */
    long verbose, cooldown;       /* LearningRateScheduler, ReduceLROnPlateau */
    double factor, min_lr;
} CallbackSpec;

/* A metric of compile: metrics:, as losses.c reads it. */
typedef struct {
    int kind;                     /* nn_metric_kind */
    char name[MAX_NAME + 1];      /* Keras's log name: "mae", "auc" */
    char val_name[MAX_NAME + 5];  /* "val_mae" */
    long k, num_thresholds;
    double threshold;
    bool maximize;                /* Keras's mode auto: should it grow? */
    const Node *where;
} MetricSpec;
#define MAX_METRICS 8

#define MAX_LAYERS 256
#define MAX_CALLBACKS 8

typedef struct {
    const char *file;             /* the model file */
    char name[MAX_NAME + 1];
    Shape input;
    int n_layers;
    Layer layers[MAX_LAYERS];
    int output;                   /* the layer whose output the model gives */
    const Node *output_name;      /* `outputs:` as written, or NULL */

    OptimizerSpec optimizer;
    int loss;                     /* nn_loss_kind */
    const Node *loss_where;
    double huber_delta, label_smoothing;
    bool from_logits;
    int n_metrics;
    MetricSpec metrics[MAX_METRICS];

    SourceSpec train, validation, test;
    const char *data_dir;         /* data: dir: as written, or NULL */
    int n_class_names;            /* names for numbered classes */
    const char **class_names;
    const Node *class_names_where;
    double rescale, validation_split;
    bool horizontal_flip, vertical_flip;
    double rotation_range, width_shift_range, height_shift_range, zoom_range, shear_range;
    bool target_input;            /* data: target: input, an autoencoder's */
    const Node *target_where;
    double noise_stddev;          /* data: noise: Gaussian, added to inputs only */
    bool noise_clip;
    double noise_min, noise_max;
    TextSpec text;

    long epochs, batch_size, steps_per_epoch;
    bool shuffle;
    unsigned long long seed;
    int n_callbacks;
    CallbackSpec callbacks[MAX_CALLBACKS];
    int n_class_weights;          /* fit: class_weight, by class index */
    double *class_weight;
    const Node *class_weight_where;

    NumArray predict;             /* `predict:` rows, or count 0 */
} Model;

void model_from_yaml(Model *m, const Node *root, const char *file);
/* schedule.c: compile.optimizer.learning_rate, a number or a Keras schedule
 * object ({class_name: ExponentialDecay, config: {...}}); returns the rate
 * of the first step. */
double parse_learning_rate(ScheduleSpec *s, const Node *n);
/* LearningRateScheduler's and ReduceLROnPlateau's own arguments and
 * defaults (Keras's), once the common ones are read; args may be NULL. */
void lr_callback_defaults(CallbackSpec *c);
void parse_lr_callback(const Model *m, CallbackSpec *c, const Node *args, const Node *item);
/* The variables of a LearningRateScheduler's expression, in order. */
extern const char *const lr_schedule_vars[];
/* A Keras export's layer list (Sequential config) into m->layers and m->input. */
void keras_layers(Model *m, const Node *root);
/* Shared by the native and the Keras readers. */
Activation parse_activation(const Node *n);
void parse_shape(const Node *n, Shape *s);
void parse_layers(Model *m, const Node *list);
/* Reads (nested) lists of numbers into a; error_at() if they are ragged. */
void parse_numbers(const Node *n, const char *what, NumArray *a);
/* Appends a layer: Keras's defaults, then the arguments in args (NULL: none),
 * then its name (args' `name`, else Keras's default, numbered by counts). */
void add_layer(Model *m, const LayerOps *ops, const Node *item, const Node *args,
               int *counts);
/* Names to indices: `inputs:` (default: the layer before) and `outputs:`. */
void connect_layers(Model *m);
/* Whether some layer reads other than the layer above (summaries show inputs). */
bool model_is_graph(const Model *m);
/* "a b": the names of the layers l reads ("input": the model's), in a static buffer. */
const char *layer_input_names(const Model *m, const Layer *l);
bool is_keras_export(const Node *root);
/* ---- losses.c: compile's loss and metrics, fit's class_weight -------------------- */

/* `loss: NAME`, `{name: NAME, ARG: ...}` or Keras's `{class_name: ..., config: {...}}`. */
void parse_loss(Model *m, const Node *n);
/* A list of names or maps ({name: sparse_top_k_categorical_accuracy, k: 3}); checked
 * against the loss, so parse the loss first. */
void parse_metrics(Model *m, const Node *n);
/* {CLASS: WEIGHT, ...}: classes 0 to C-1 (or the names of data: class_names). */
void parse_class_weight(Model *m, const Node *n);
/* A callback's monitor: loss, val_loss, or a metric the model logs, with val_;
 * the string stays; *maximize is Keras's mode auto for it. */
const char *parse_monitor(const Model *m, const Node *n, bool *maximize);
/* Whether the loss wants one class index per sample (sparse). */
bool loss_takes_class_index(int loss);
const char *const *loss_words(void);
const char *const *metric_words(void);

/* The words the model file takes for each (NULL-terminated). */
typedef enum {
    WORDS_OPTIMIZERS, WORDS_LOSSES, WORDS_METRICS, WORDS_CALLBACKS, WORDS_ACTIVATIONS,
    WORDS_OPTIMIZER_ARGS
} ModelWords;
const char *const *model_words(ModelWords what);

extern const char *const activation_names[ACT_COUNT];          /* "relu", ... */
int layer_index(const LayerOps *ops);           /* its row's number, for counts */

/* ---- shape.c ---------------------------------------------------------------------- */

/* Fills in every layer's in/out shapes and parameter counts; error_at() on any
 * impossible shape or a size too large to allocate. */
void infer_shapes(Model *m);
long shape_size(const Shape *s);
const char *shape_str(const Shape *s);          /* "(26, 26, 64)" */
/* For shape rules: sizes checked against overflow; windows as TensorFlow counts them. */
long checked_mul(const Layer *l, long a, long b);
void need_image(const Layer *l);
/* A sequence: [steps, features]; the 1-D layers run the 2-D templates on it
 * as an image 1 x steps (emit.c's op_holes: H 1, W steps, C features). */
void need_sequence(const Layer *l);
long window_out(const Layer *l, long n, long k, long s, const char *axis);
Shape vector_shape(long n);
void summary_print(FILE *out, const Model *m);
/* > 0: the model's input is token ids, whole numbers below this (the smallest
 * input_dim of the layers flagged LF_NO_INPUT_GRADIENT that read it); 0: numbers. */
long model_input_ids(const Model *m);

/* ---- check.c ------------------------------------------------------------------------ */

/* Every check that needs shapes: inline weights, inline samples and predict
 * rows against the sizes they must have, image folders against the input, the
 * output against the loss. --check and -o run the same checks. */
void check_model(Model *m);
/* A `warning:` for each data file or folder not found where the trainer,
 * run from nncc's directory, looks first. */
void warn_missing_data(const Model *m);

/* ---- plan.c and emit.c ----------------------------------------------------------------- */

/* The plan: one flat parameter buffer holding every tensor, one work buffer
 * holding every activation and gradient (offsets per sample), and the ops that
 * the forward pass runs in order and the backward pass in reverse. A layer
 * becomes one op from its row's templates, plus an activation op when it has
 * one; a layer without templates (Flatten) becomes none (NHWC is already flat). */
typedef struct {
    const Layer *layer;
    char name[2 * MAX_NAME + 40]; /* "dense.kernel", "bidirectional.forward_lstm.bias" */
    const char *role;             /* "kernel", "forward_lstm.kernel" */
    char ident[2 * MAX_NAME + 40];   /* name as a C identifier: "dense_kernel" */
    int rank;
    long shape[4];
    long offset, size;
    bool trainable;
    int init;                     /* nn_init */
    long fan_in, fan_out;         /* Keras's, for NN_INIT_GLOROT_UNIFORM */
    float init_a, init_b;         /* the fill's numbers (nn_init_args) */
    bool init_seeded;
    unsigned long long init_seed;
    double l1, l2;                /* its regulariser's factors */
    float *values;                /* inline weights, or NULL */
} Tensor;

typedef struct {
    const Layer *layer;
    char name[MAX_NAME + 24];     /* "dense_out" */
    long offset, size;            /* per sample, in floats */
} Buffer;

#define NO_BUF (-1)
typedef struct {
    const LayerOps *ops;          /* NULL: an activation op */
    const Layer *layer;
    const char *tmpl;             /* its templates' name */
    char fn[MAX_NAME + 16];       /* function prefix: "dense", "dense_relu" */
    Activation act;               /* activation ops */
    long size;                    /* floats per sample of its output */
    int n_in;
    int in[MAX_INPUTS];           /* value buffers read; NO_BUF: the model's input x */
    int din[MAX_INPUTS];          /* their gradients; NO_BUF: not needed */
    int add_to[MAX_INPUTS];       /* NO_BUF, or where din[i] is added once written:
                                     a value read twice gets the sum of its gradients */
    int out, dout;
    int aux;                      /* the row's own work buffer, or NO_BUF */
    int tensor[MAX_LAYER_TENSORS];   /* its parameters; -1 if none */
} Op;

#define MAX_TENSORS (MAX_LAYER_TENSORS * MAX_LAYERS)
#define MAX_BUFS (8 * MAX_LAYERS)
#define MAX_OPS (2 * MAX_LAYERS)
typedef struct Plan {
    Tensor tensors[MAX_TENSORS];
    int n_tensors;
    long n_params;
    Buffer bufs[MAX_BUFS];
    int n_bufs;
    long work_floats;             /* per sample */
    long scratch_floats;          /* the most that one op uses while it runs */
    Op ops[MAX_OPS];
    int n_ops;
    int layer_out[MAX_LAYERS];    /* the buffer holding each layer's output */
    int layer_dout[MAX_LAYERS];   /* and the gradient flowing back into it */
    int output_act;               /* nn_output_act: what the loss fuses */
} Plan;

/* Plans ops and memory, for training or for --inference (forward passes
 * only); error_at() if two names would clash in the C. */
Plan *plan_model(const Model *m, bool inference);
/* Whether the op has work in the backward pass: a tensor to learn or a
 * gradient to pass back. */
bool op_has_backward(const Plan *p, const Op *op);
/* lifetime.c: the buffers' offsets, sharing floats between buffers not in use
 * at the same time. */
void plan_lifetimes(Plan *p, const Model *m, bool inference);
/* Writes the trainer's C to out. header: also a .h for --no-main users. */
void emit_trainer(FILE *out, const Model *m, const Plan *p, bool with_main);
void emit_header(FILE *out, const Model *m);
/* --inference: every tensor's values from the .npz at path (error_file() on a
 * missing or misshapen one), then the self-contained C of NAME_predict. */
void plan_load_weights(Plan *p, const Model *m, const char *path);
void emit_inference(FILE *out, const Model *m, const Plan *p, const char *weights);
/* Frees what emitting made, once its output is written. */
void emit_release(void);
void plan_free(Plan *p);
/* The shortest float literal ("0.1f", "100.0f") that reads back to (float)v. */
void float_text(char buf[48], double v);
/* For a row's holes(): @NAME@ in its templates becomes v, as C. */
void hole_long(Holes *h, const char *name, long v);
void hole_float(Holes *h, const char *name, double v);
/* c: C made by nncc itself (expr_emit's), never text from the model file. */
void hole_text(Holes *h, const char *name, const char *c);
void hole_list(Holes *h, const char *name, const long *v, int n);   /* "1, 2, 3" */
/* @NAME@ becomes template tmpl's text, its holes filled from h as it stands. */
void hole_template(Holes *h, const char *name, const char *tmpl);
/* @NAME@ becomes template tmpl's text for a part of the layer: its functions
 * named FN_part, and the holes keys[i] (NULL-terminated) set to values[i] for it
 * alone (an RNN's products are Dense's, of other sizes); with holes, also those
 * that holes(h, l) sets (Bidirectional's two layers are its inner row's, for l). */
void hole_part(Holes *h, const char *name, const char *tmpl, const char *part,
               const char *const *keys, const long *values,
               void (*holes)(Holes *, const Layer *), const Layer *l);
/* @NAME@ becomes a C identifier or word made by the compiler (never from YAML). */
void hole_word(Holes *h, const char *name, const char *word);
/* TensorFlow's same padding before the first of in cells (a window k, stride s,
 * out outputs): what op_holes gives as @PT@ and @PL@. */
long pad_before(long in, long out, long k, long s);
/* templates/NAME.c.in, built in by compiler/embed.c; NULL if there is none. */
const char *template_text(const char *name);

#endif
