/* nnrt.h - the seam between a trainer that nncc generated and the runtime library.
 *
 * nncc emits, per model, everything that depends on a shape: one forward and one
 * backward function per layer with constant sizes, the parameter table, and a
 * constant nn_model descriptor that ties them together with the defaults the YAML
 * gave. The runtime (libnnrt) holds everything else and knows no model: the
 * command line, the training loop, optimizers, losses, metrics, data loaders,
 * .npz files, progress output, images.
 *
 * Memory, as llm.c does it:
 *   params  one flat float buffer; tensor t lives at params + t.offset.
 *   grads   the same layout as params (only trainable tensors are written).
 *   work    first scratch_floats that an op may use while it runs (a transposed
 *           kernel), then activations, their gradients and dropout masks for
 *           a batch of n samples: a buffer planned at compile time with
 *           offset OFF and per-sample size SIZE lives at
 *           work + scratch_floats + n*OFF, sample s at ... + s*SIZE. The
 *           runtime allocates scratch_floats + capacity*work_floats, one
 *           buffer per caller, so the generated functions are reentrant.
 *
 * A generated trainer's main is `return nnrt_main(&NAME_model, argc, argv);`.
 */
#ifndef NNRT_H
#define NNRT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NNRT_VERSION "0.1.0"
#define NN_MAX_RANK 4

/* ---- what the descriptor points at ------------------------------------- */

/* How a tensor starts (runtime/weights.c has one fill per kind). nncc turns
 * Keras's initialisers into these, working out their numbers (nn_init_args)
 * from Keras's arguments and the tensor's fans (compiler/init.c). */
typedef enum {
    NN_INIT_ZEROS, NN_INIT_ONES, NN_INIT_GLOROT_UNIFORM, NN_INIT_VALUES,
    NN_INIT_UNIFORM,            /* in [a, b) */
    NN_INIT_NORMAL,             /* mean a, stddev b */
    NN_INIT_TRUNCATED_NORMAL,   /* mean a, stddev b, redrawn beyond 2 stddev */
    NN_INIT_CONSTANT,           /* a */
    NN_INIT_ORTHOGONAL,         /* Keras's Orthogonal (gain 1): recurrent kernels */
    NN_INIT_FORGET_BIAS,        /* an LSTM's bias with unit_forget_bias: ones for the f gate */
} nn_init;

typedef struct {
    float a, b;
    int seeded;                 /* the initialiser's own seed, drawn from instead of the trainer's */
    uint64_t seed;
} nn_init_args;

/* kernel_regularizer, bias_regularizer: l1 * sum|w| + l2 * sum w^2 joins the loss. */
typedef struct {
    float l1, l2;
} nn_regularizer;

/* One parameter tensor, e.g. "dense.kernel" [784, 128]. */
typedef struct {
    const char *name;
    int rank;
    int shape[NN_MAX_RANK];
    size_t offset, size;   /* in floats, within params and grads */
    int trainable;         /* 0: frozen by the user, or a BatchNormalization statistic */
    nn_init init;
    int fan_in, fan_out;   /* for glorot_uniform, as Keras computes them */
    const float *values;   /* NN_INIT_VALUES: weights given inline in the YAML */
    nn_init_args init_args;
    nn_regularizer reg;
} nn_tensor;

/* One Keras layer, for summary and activations. */
typedef struct {
    const char *name, *type;      /* "conv2d", "Conv2D" */
    int rank;                     /* output shape without the batch */
    int shape[3];
    long params, trainable_params;
    size_t out_offset, out_size;  /* its output in work (see above) */
    int is_feature_map;           /* conv/pool: drawn by `activations` */
    int line;                     /* in the model file */
    const char *inputs;           /* a graph's: the layers it reads, "a b" ("input": the
                                     model's input); NULL: the layer above */
} nn_layer;

/* What a pass needs besides buffers: training switches dropout on and lets
 * BatchNormalization use batch statistics. seed, step and the sample's place
 * in its batch make dropout masks a function of those alone, so neither
 * threads nor passing a batch in parts can change them. */
typedef struct nn_update nn_update;
typedef struct nn_pass {
    int training;
    uint64_t seed, step;
    uint64_t first;        /* the batch's first sample, when it passes in parts */
    /* Called by the backward pass (GRADS_READY) once the gradients from
     * offset `from` to the end of grads are final, or NULL: under mpirun their
     * sum over the ranks starts while the earlier layers' backward runs. */
    void (*grads_ready)(const struct nn_pass *pass, size_t from);
    /* Not NULL: backward applies the optimizer's step itself, each tensor as
     * soon as its gradient is complete (nn_model.fused_update) */
    const nn_update *update;
} nn_pass;

/* The optimizer's update of params[w - params, + n) from the gradient g, for
 * a backward pass given pass->update: w points into the params the trainer
 * passes (backward sees them as const; the update holds them writable). */
void nn_update_span(const nn_update *u, const float *w, const float *g, size_t n);

typedef const float *(*nn_forward_fn)(const nn_pass *pass, float *params, float *work,
                                     const float *x, int n);
typedef void (*nn_backward_fn)(const nn_pass *pass, const float *params, float *grads,
                               float *work, const float *x, const float *dout, int n);

/* ---- what the YAML said about compile, data and fit --------------------- */

typedef enum {
    NN_OPT_SGD, NN_OPT_ADAM, NN_OPT_RMSPROP, NN_OPT_NADAM, NN_OPT_ADAMAX, NN_OPT_ADAGRAD,
    NN_OPT_ADAMW, NN_OPT_COUNT
} nn_opt_kind;
typedef struct {
    nn_opt_kind kind;
    float learning_rate, momentum, beta_1, beta_2, epsilon, rho;
    int nesterov;
    float initial_accumulator_value;   /* Adagrad */
    float weight_decay;                /* decoupled: w -= lr * weight_decay * w; 0: none */
    float clipnorm, clipvalue, global_clipnorm;   /* 0: not given; at most one applies */
} nn_optimizer;

/* compile.optimizer.learning_rate as a Keras schedule object: the rate of each
 * optimizer step, a function of the steps done before it (schedule.c). */
typedef enum {
    NN_LR_CONSTANT, NN_LR_EXPONENTIAL_DECAY, NN_LR_PIECEWISE_CONSTANT_DECAY,
    NN_LR_INVERSE_TIME_DECAY, NN_LR_COSINE_DECAY, NN_LR_KINDS
} nn_lr_kind;

#define NN_MAX_BOUNDARIES 16
typedef struct {
    nn_lr_kind kind;
    float initial_learning_rate, decay_steps, decay_rate, alpha;
    int staircase;
    int n_boundaries;                             /* PiecewiseConstantDecay */
    int64_t boundaries[NN_MAX_BOUNDARIES];
    float values[NN_MAX_BOUNDARIES + 1];
} nn_lr_schedule;

typedef enum {
    NN_LOSS_NONE = -1,             /* a Keras export without compile: can predict, not train */
    NN_LOSS_MSE, NN_LOSS_BINARY_CE, NN_LOSS_SPARSE_CE, NN_LOSS_CATEGORICAL_CE,
    NN_LOSS_MAE, NN_LOSS_HUBER, NN_LOSS_LOG_COSH, NN_LOSS_KL_DIVERGENCE
} nn_loss_kind;

/* A loss's arguments, Keras's defaults where a loss does not take one. */
typedef struct {
    float delta;                   /* huber: 1 */
    float label_smoothing;         /* binary and categorical cross-entropy: 0 */
    int from_logits;               /* the cross-entropies: the output is logits */
} nn_loss_args;

/* A metric as compile: metrics: gave it. name is Keras's log name ("mae",
 * "auc"), val_name the validation one ("val_mae"). */
typedef enum {
    NN_METRIC_ACCURACY,            /* Keras picks binary, sparse or categorical by the shapes */
    NN_METRIC_BINARY_ACCURACY, NN_METRIC_CATEGORICAL_ACCURACY,
    NN_METRIC_SPARSE_CATEGORICAL_ACCURACY, NN_METRIC_TOP_K_CATEGORICAL_ACCURACY,
    NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY, NN_METRIC_MAE, NN_METRIC_MSE, NN_METRIC_RMSE,
    NN_METRIC_PRECISION, NN_METRIC_RECALL, NN_METRIC_AUC
} nn_metric_kind;

#define NN_MAX_METRICS 8
typedef struct {
    nn_metric_kind kind;
    const char *name, *val_name;
    int k;                         /* top-k: 5 */
    float threshold;               /* binary_accuracy, precision, recall: 0.5 */
    int num_thresholds;            /* auc: 200 */
} nn_metric;

/* What the model's last step is. With a fused loss the generated forward stops
 * at the logits and the runtime applies softmax/sigmoid (loss from logits, as
 * Keras does); otherwise the output is final and output_act is NN_OUT_LINEAR. */
typedef enum { NN_OUT_LINEAR, NN_OUT_SOFTMAX, NN_OUT_SIGMOID } nn_output_act;

typedef enum {
    NN_DATA_NONE, NN_DATA_INLINE, NN_DATA_IDX, NN_DATA_CSV, NN_DATA_IMAGE_DIR, NN_DATA_SERIES,
    NN_DATA_TEXT
} nn_data_format;

#define NN_HEADER_AUTO (-1)

typedef struct {
    nn_data_format format;
    const char *images, *labels;   /* idx */
    const char *path;              /* csv, image_dir */
    int label_column;              /* csv; -1: the last column */
    const char *label_name;        /* csv: the label column's name in the header, or NULL */
    int header;                    /* csv: 1 the first row holds names, 0 it does not,
                                      NN_HEADER_AUTO it does if it holds no number */
    int target_h, target_w;        /* image_dir */
    int channels;                  /* image_dir: 1 grayscale, 3 rgb */
    int skip_bad_files;            /* image_dir */
    const float *x, *y;            /* inline */
    int count;                     /* inline: number of samples */
    const char *column;            /* series: the values' column by name, or NULL: by index */
    int column_index;              /* series: -1 the last */
    int window_size, shift, horizon;   /* series: window_size inputs, the next horizon
                                          values the label, a window every shift values */
    int split_time;                /* series: the train part ends here, the validation
                                      part's labels start here; -1 no split */
    const char *text_field, *label_field;   /* text */
    int line;                      /* where the YAML gave it, for errors */
} nn_source;

typedef struct {
    int horizontal_flip, vertical_flip;
    float rotation_range, width_shift_range, height_shift_range, zoom_range, shear_range;
} nn_augment;

/* data: noise: Gaussian noise added to every input after rescale (a denoiser's),
 * a function of fit's seed, the set and the sample, so every command and
 * epoch sees the same noisy image; then clipped to [min, max] if clip. */
typedef struct {
    float stddev;
    int clip;
    float min, max;
} nn_noise;
/* Keras's Tokenizer and pad_sequences settings, for every text source. */
typedef struct {
    int num_words;                 /* ids below it are kept; 0: every word */
    const char *oov_token;         /* id 1 for unknown words, or NULL: they are dropped */
    int max_length;                /* the rows' length: the model's input length */
    int pad_post, truncate_post;   /* 'post' rather than Keras's default 'pre' */
} nn_text_settings;

typedef struct {
    nn_source train, validation, test;
    const char *dir;               /* data: dir: as written, or NULL; --data overrides */
    const char *model_file;        /* as nncc was given it: where relative data paths are
                                      looked for after the current directory (data.c) */
    float rescale;
    float validation_split;
    const char *const *class_names;  /* data: class_names, for labels that are numbers */
    int n_class_names;
    nn_augment augment;
    int target_input;              /* data: target: input: the label is the clean input */
    nn_noise noise;
    nn_text_settings text;
} nn_data;

typedef enum {
    NN_CB_STOP_AT_THRESHOLD, NN_CB_EARLY_STOPPING, NN_CB_MODEL_CHECKPOINT, NN_CB_CSV_LOGGER,
    NN_CB_LEARNING_RATE_SCHEDULER, NN_CB_REDUCE_LR_ON_PLATEAU
} nn_callback_kind;


typedef struct {
    nn_callback_kind kind;
    const char *monitor;           /* "loss", "val_loss", a metric's name or val_name */
    int maximize;                  /* the monitored value should grow (mode, or Keras's auto) */
    float threshold;               /* StopAtThreshold */
    int patience;                  /* EarlyStopping */
    float min_delta;
    int restore_best_weights;
    const char *filepath;          /* ModelCheckpoint, CSVLogger */
    int save_best_only;
    /* LearningRateScheduler: the new rate at the start of each epoch (0-based),
     * from the model file's expression, generated as C. */
    float (*schedule)(int epoch, float lr);
    int verbose;                   /* LearningRateScheduler, ReduceLROnPlateau */
    double factor, min_lr;         /* ReduceLROnPlateau (patience, min_delta above) */
    int cooldown;
} nn_callback;

#define NN_MAX_CALLBACKS 8
typedef struct {
    int epochs, batch_size, shuffle;
    uint64_t seed;
    int steps_per_epoch;           /* 0: the whole data set */
    const float *class_weight;     /* a weight per class index, or NULL */
    int n_class_weights;
    int n_callbacks;
    nn_callback callbacks[NN_MAX_CALLBACKS];
} nn_fit;

/* ---- the model ------------------------------------------------------------ */

typedef struct {
    const char *name;              /* a C identifier */
    const char *source;            /* the model file it came from */
    int input_rank;
    int input_shape[3];            /* H, W, C; T, F (a sequence); or (n) */
    int input_size, output_size;
    int output_rank;               /* the output's shape without the batch */
    int output_shape[3];
    int input_ids;                 /* > 0: the input is token ids for an Embedding, each a
                                      whole number from 0 to input_ids - 1; 0: any numbers */
    int output_units;              /* the output's last axis, over which a loss sums or
                                      averages (Keras's axis=-1); 0: output_size */
    nn_output_act output_act;

    const nn_tensor *tensors;
    int n_tensors;
    size_t n_params;
    const nn_layer *layers;
    int n_layers;
    size_t work_floats;            /* per sample */
    size_t scratch_floats;         /* at the start of work, whatever the batch */
    int whole_batches;             /* BatchNormalization: a batch may not pass in parts */
    int fused_update;              /* backward updates every trainable tensor given
                                      pass->update (no clipping, decay or regulariser) */

    nn_forward_fn forward;
    nn_backward_fn backward;

    nn_optimizer optimizer;
    nn_lr_schedule lr_schedule;    /* NN_LR_CONSTANT: optimizer.learning_rate throughout */
    nn_loss_kind loss;
    nn_loss_args loss_args;
    const nn_metric *metrics;
    int n_metrics;
    nn_data data;
    nn_fit fit;
    const float *predict_inputs;   /* `predict:` in the YAML, n_predict * input_size */
    int n_predict;
} nn_model;

int nnrt_main(const nn_model *model, int argc, char **argv);

/* ---- helpers the generated code calls --------------------------------------- */

/* splitmix64's finaliser: the runtime's random numbers all come from it. */
static inline uint64_t nn_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* A reproducible uniform number in [0, 1) from (seed, stream, index). Inline:
 * dropout calls it once per element, in the generated code's inner loops. */
static inline float nn_uniform(uint64_t seed, uint64_t stream, uint64_t index)
{
    uint64_t z = nn_mix64(seed ^ nn_mix64(stream * 0x9e3779b97f4a7c15ULL + index));
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

/* Keras's summary table. The compiler prints it with the same function. */
typedef struct {
    const char *name, *type;
    int rank;
    long shape[3];
    long params, trainable_params;
    const char *inputs;            /* as nn_layer's; a graph gets Keras's "Connected to" */
} nn_summary_row;
void nn_print_summary(FILE *out, const char *model_name, const nn_summary_row *rows, int n);
/* A graph's table starts with its input, as Keras's InputLayer row. */
nn_summary_row nn_summary_input_row(int rank, const int *shape);

#endif
