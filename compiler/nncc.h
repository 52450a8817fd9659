/* nncc.h - the compiler's stages and the data that passes between them.
 *
 *   yaml.c   file  -> Node tree (every node keeps its line and column)
 *   model.c  Node  -> Model (Keras words, defaults and layer names)
 *   keras.c  a Keras to_yaml()/to_json() export -> the same Model
 *   shape.c  shapes, parameter counts and the checks that need them
 *   plan.c   Model -> Plan: the tensor table, the work buffers, the ops
 *   emit.c   Plan  -> C, from the templates built into nncc
 *   diag.c   FILE:LINE:COL: error: ..., "did you mean"
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

/* ---- diag.c ------------------------------------------------------------------- */

_Noreturn void error_at(const Node *where, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
_Noreturn void error_file(const char *file, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void warn_at(const Node *where, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The closest of choices (NULL-terminated) to word, or NULL if none is close. */
const char *closest_word(const char *word, const char *const *choices);

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

/* ---- model.c, keras.c: the IR --------------------------------------------------- */

typedef enum {
    LAYER_DENSE, LAYER_FLATTEN, LAYER_DROPOUT, LAYER_ACTIVATION,
    LAYER_CONV2D, LAYER_MAXPOOL2D, LAYER_AVGPOOL2D, LAYER_GLOBALAVGPOOL2D,
    LAYER_BATCHNORM,
    LAYER_KIND_COUNT
} LayerKind;

typedef enum {
    ACT_LINEAR, ACT_RELU, ACT_SIGMOID, ACT_TANH, ACT_SOFTMAX,
    ACT_ELU, ACT_SELU, ACT_SOFTPLUS, ACT_SOFTSIGN, ACT_SWISH, ACT_GELU,
    ACT_COUNT
} Activation;

typedef struct { int rank; long dim[3]; } Shape;   /* without the batch */

typedef struct {
    LayerKind kind;
    char name[MAX_NAME + 1];
    const Node *where;            /* the layer's YAML node, for errors and comments */
    bool trainable;
    Activation act;               /* Dense, Conv2D, Activation */
    long units;                   /* Dense */
    bool use_bias;                /* Dense, Conv2D */
    long filters;                 /* Conv2D */
    long kh, kw, sh, sw;          /* Conv2D kernel, pools' pool_size; strides */
    bool same;                    /* padding: same */
    double rate;                  /* Dropout */
    double momentum, epsilon;     /* BatchNormalization */
    const Node *weights;          /* inline `weights:` or NULL */
    Shape in, out;                /* shape.c */
    long params, trainable_params;
} Layer;

typedef struct {
    int kind;                     /* nn_opt_kind */
    double learning_rate, momentum, beta_1, beta_2, epsilon, rho;
    bool nesterov;
} OptimizerSpec;

typedef struct {
    int format;                   /* nn_data_format */
    const Node *where;
    const char *images, *labels, *path;
    long label_column;            /* -1: last */
    bool header;
    long target_h, target_w, channels;
    bool skip_bad_files;
    const Node *x, *y;            /* inline lists */
} SourceSpec;

typedef struct {
    int kind;                     /* nn_callback_kind */
    const char *monitor, *filepath;
    double threshold, min_delta;
    long patience;
    bool restore_best_weights, save_best_only;
} CallbackSpec;

#define MAX_LAYERS 256
#define MAX_CALLBACKS 8

typedef struct {
    const char *file;             /* the model file */
    char name[MAX_NAME + 1];
    Shape input;
    int n_layers;
    Layer layers[MAX_LAYERS];

    OptimizerSpec optimizer;
    int loss;                     /* nn_loss_kind */
    bool metric_accuracy;

    SourceSpec train, validation, test;
    const char *data_dir;         /* as written, or the model file's folder */
    const Node *class_names;      /* list of names for numbered classes, or NULL */
    double rescale, validation_split;
    bool horizontal_flip, vertical_flip;
    double rotation_range, width_shift_range, height_shift_range, zoom_range, shear_range;

    long epochs, batch_size, steps_per_epoch;
    bool shuffle;
    unsigned long long seed;
    int n_callbacks;
    CallbackSpec callbacks[MAX_CALLBACKS];

    const Node *predict;          /* `predict:` list or NULL */
} Model;

void model_from_yaml(Model *m, const Node *root, const char *file);
/* A Keras export's layer list (Sequential config) into m->layers and m->input. */
void keras_layers(Model *m, const Node *root);
/* Shared by the native and the Keras readers. */
Activation parse_activation(const Node *n);
void parse_shape(const Node *n, Shape *s);
void parse_layers(Model *m, const Node *list);
/* Appends a layer: Keras's defaults, then the native arguments in args (NULL: none),
 * then its name (args' `name`, else Keras's default, numbered by counts[kind]). */
void add_layer(Model *m, LayerKind kind, const Node *item, const Node *args,
               int counts[LAYER_KIND_COUNT]);
void check_layer_names(const Model *m);   /* error_at() the second of two equal names */
bool is_keras_export(const Node *root);

extern const char *const layer_type_names[LAYER_KIND_COUNT];   /* "Dense", ... */
extern const char *const activation_names[ACT_COUNT];          /* "relu", ... */

/* ---- shape.c ---------------------------------------------------------------------- */

/* Fills in every layer's in/out shapes and parameter counts; error_at() on any
 * impossible shape or a size too large to allocate. */
void infer_shapes(Model *m);
long shape_size(const Shape *s);
void summary_print(FILE *out, const Model *m);

/* ---- plan.c and emit.c ----------------------------------------------------------------- */

/* The plan: one flat parameter buffer holding every tensor, one work buffer
 * holding every activation and gradient (offsets per sample), and the ops that
 * the forward pass runs in order and the backward pass in reverse. A Keras
 * layer becomes one op, plus an activation op when it has one; Flatten becomes
 * none (NHWC is already flat). */
typedef enum {
    OP_DENSE, OP_CONV2D, OP_MAXPOOL2D, OP_AVGPOOL2D, OP_GAP2D, OP_BATCHNORM,
    OP_DROPOUT, OP_ACT, OP_SOFTMAX
} OpKind;

typedef enum { TENSOR_KERNEL, TENSOR_BIAS, TENSOR_GAMMA, TENSOR_BETA, TENSOR_MEAN, TENSOR_VAR } TensorRole;

typedef struct {
    const Layer *layer;
    TensorRole role;
    char name[MAX_NAME + 24];     /* "dense.kernel" */
    int rank;
    long shape[4];
    long offset, size;
    bool trainable;
    int init;                     /* nn_init */
    long fan_in, fan_out;
    float *values;                /* inline weights, or NULL */
} Tensor;

typedef struct {
    const Layer *layer;
    char name[MAX_NAME + 8];      /* "dense_out" */
    long offset, size;            /* per sample, in floats */
} Buffer;

#define NO_BUF (-1)
typedef struct {
    OpKind kind;
    const Layer *layer;
    char fn[MAX_NAME + 16];       /* function prefix: "dense", "dense_relu" */
    Activation act;               /* OP_ACT */
    long size;                    /* OP_ACT, OP_SOFTMAX, OP_DROPOUT: floats per sample */
    int in, out;                  /* value buffers; NO_BUF: the model's input x */
    int din, dout;                /* gradient buffers; din NO_BUF: not needed */
    int aux;                      /* dropout mask, batch statistics; or NO_BUF */
    int tensor[4];                /* kernel, bias / gamma, beta, mean, var; -1 if none */
} Op;

#define MAX_TENSORS (4 * MAX_LAYERS)
#define MAX_BUFS (6 * MAX_LAYERS)
#define MAX_OPS (2 * MAX_LAYERS)
typedef struct Plan {
    Tensor tensors[MAX_TENSORS];
    int n_tensors;
    long n_params;
    Buffer bufs[MAX_BUFS];
    int n_bufs;
    long work_floats;             /* per sample */
    Op ops[MAX_OPS];
    int n_ops;
    int layer_out[MAX_LAYERS];    /* the buffer holding each layer's output */
    int output_act;               /* nn_output_act: what the loss fuses */
} Plan;

Plan *plan_model(const Model *m);
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
/* templates/NAME.c.in, built in by compiler/embed.c; NULL if there is none. */
const char *template_text(const char *name);

#endif
