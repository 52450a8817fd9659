/* rt.h - the runtime's modules as they see each other (not part of the seam).
 *
 *   cli.c        the trainer's command line: options, help, dispatch to the commands
 *   predict.c    predict, activations and init: the model run without training
 *   train.c      the training loop, evaluation, callbacks, history
 *   optim.c      Keras's optimizers, clipping, weight decay as loops over the flat buffers
 *   loss.c       losses (a table), from logits where the loss is fused
 *   metrics.c    Keras's metrics (a table): accuracies, mae, precision, AUC, ...
 *   data.c       data sets in memory, batching, shuffling, splitting
 *   data_idx.c   IDX files (gzip or raw)
 *   data_csv.c   CSV files
 *   data_image.c image files and class folders (stb_image), resizing
 *   augment.c    ImageDataGenerator's random transformations
 *   npz.c        .npy/.npz read and write (zlib for deflated members), atomic;
 *                its header is npz.h (nncc links npz.c too)
 *   image_out.c  PNG output: single maps and feature-map grids
 *   draw.c       an RGB canvas: rectangles, lines, text, images, viridis; atomic PNG
 *   plot.c       training curves from a history table: panels, axes, ticks, legend
 *   html_report.c  train --report DIR: the page, its pictures, rewritten each epoch
 *   show_data.c  show-data: a grid of samples with their class names
 *   progress.c   Keras's Epoch i/N, progress bar and per-epoch line
 *   summary.c    Keras's summary table (declared in nnrt.h; nncc links it too)
 *   weights.c    initialisation, weight files and checkpoints
 *   callbacks.c  StopAtThreshold, EarlyStopping, ModelCheckpoint, CSVLogger decisions,
 *                ReduceLROnPlateau's rate
 *   schedule.c   Keras's learning-rate schedule objects
 *   gradcheck.c  analytic against numerical gradients
 *   util.c       random numbers, paths
 *   report.c     errors, warnings, allocation; its header is report.h
 *
 * nncc links npz.c, summary.c and report.c and nothing else of the runtime:
 * they use libc and zlib only, and include only nnrt.h and their own headers.
 *
 * Errors: a function that can fail prints one line `PLACE: error: ...` on stderr
 * through nn_error() and returns -1; callers pass the -1 up and the command
 * exits with status 1. Nothing in the runtime calls exit() but cli.c.
 */
#ifndef NNRT_RT_H
#define NNRT_RT_H

#include "nnrt.h"
#include "npz.h"
#include "report.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>

/* ---- util.c ----------------------------------------------------------------- */

/* dir/path unless path is absolute or dir is NULL/empty; the result is malloc'd. */
char *nn_join_path(const char *dir, const char *path);
/* A shape as Python prints the tuple: (784, 128), (10,), (). */
void nn_shape_text(int rank, const int *shape, char *buf, size_t len);

/* splitmix64-based generator: a pure function of its state, saved in checkpoints. */
typedef struct { uint64_t state; } nn_rng;
uint64_t nn_rng_next(nn_rng *r);
float nn_rng_uniform(nn_rng *r);                 /* [0, 1) */
double nn_rng_normal(nn_rng *r);                 /* mean 0, stddev 1 */
void nn_shuffle(int *idx, int n, nn_rng *r);     /* Fisher-Yates */

/* ---- data.c and the loaders ------------------------------------------------------ */

/* Samples stay as bytes when they came as bytes (IDX, images): the batch
 * converts them, so 60,000 28x28 images cost 47 MB, not 188. */
typedef struct {
    int n;                 /* samples */
    int h, w, c;           /* image shape; a vector of k numbers is (1, 1, k) */
    int sample_size;       /* h*w*c */
    uint8_t *bytes;        /* n*sample_size, or NULL */
    float *floats;         /* n*sample_size, or NULL */
    int label_size;        /* numbers per label: 1 for a class index */
    float *labels;         /* n*label_size, or NULL when there are none */
    int n_classes;         /* class folders, or 0 */
    char **class_names;    /* n_classes names, or NULL */
    char **files;          /* image_dir: a path per sample, for messages */
    char *origin;          /* what it was read from, for messages */
    struct nn_image_stream *stream; /* image_dir too large to keep decoded, or NULL */
    int noise_stream;      /* data: noise: which set, so that each has its own noise */
    struct nn_vocab *vocab;        /* text: the vocabulary fit on this set, or NULL */
} nn_dataset;

/* An image folder whose decoded bytes would exceed the image memory limit
 * (data_image.c): bytes and floats are NULL, and each batch decodes from
 * d->files what the cache lacks. The cache is direct-mapped, sample i in slot
 * i % slots, and a miss that would evict an image the same batch reads
 * decodes beside the cache instead; so a batch's values never depend on the
 * cache's size or the thread count, only its speed does. */
typedef struct nn_image_stream {
    int h, w, c;           /* every sample decodes to h*w*c bytes */
    int threads;           /* for decoding; 0: OpenMP's default */
    int slots;             /* images the cache holds: at least 1 */
    uint8_t *cache;        /* slots*h*w*c bytes */
    int *tag;              /* the sample in each slot, or -1 */
    uint8_t *mark;         /* per slot, during a batch: read by a hit, or claimed by a miss */
} nn_image_stream;

void nn_dataset_free(nn_dataset *d);
/* Keeps only the first n samples (--limit); the rest of the memory stays. */
void nn_dataset_truncate(nn_dataset *d, int n);
/* x[i] = sample idx[i] (bytes times scale), y[i] = its label as stored.
 * Fails (-1, naming the file) only when a streamed image no longer decodes.
 * Not re-entrant for a streamed set: one batch at a time. */
int nn_dataset_batch(const nn_dataset *d, const int *idx, int n, float scale, float *x, float *y);
/* data: noise: onto x, the n samples idx[] of d after rescale (noise.c). */
void nn_add_noise(const nn_model *m, const nn_dataset *d, const int *idx, int n, float *x);
/* Moves the last `fraction` of d into val (Keras's validation_split: the tail, before shuffling). */
int nn_dataset_split(nn_dataset *d, float fraction, nn_dataset *val);

/* Where a data file or folder of the model is, malloc'd, or NULL. A relative
 * path is joined to data: dir: (if the model gives one) and looked for in
 * the current directory, then in the model file's folder as nncc was given
 * it, then in that folder seen from the parent of the trainer's own folder
 * (where `make` runs nncc for generated/NAME); with --data DIR (option_dir)
 * only in DIR. When it is nowhere, src (the source that names it) gets an
 * error listing every place tried; with src NULL nothing is printed. */
char *nn_find_data(const nn_model *m, const char *option_dir, const nn_source *src,
                   const char *path);
/* Loads a source of the model's data section into d; option_dir: --data DIR, or
 * NULL; like: the training set (or what the weight file says of it) whose
 * vocabulary and class names a text source uses, or NULL for the training set. */
int nn_load_source(const nn_model *m, const nn_source *src, const char *option_dir,
                   const nn_dataset *like, nn_dataset *d);

/* A CSV file named on the command line (evaluate --data FILE.csv), read with
 * the label column and header of the model's CSV source, if it has one; its
 * label column is optional (d->labels NULL without one). */
int nn_load_data_file(const nn_model *m, const char *path, nn_dataset *d);

/* ---- records.c, tokenizer.c, data_text.c, data_series.c: text and series --------- */

/* A file's records as strings by field: a CSV table with a header, a JSON
 * list of flat objects, or JSON lines (records.c says which rules). */
typedef struct {
    int n_fields, n;
    char **names;          /* n_fields */
    char **cells;          /* n * n_fields: record i's field k at i * n_fields + k */
    long *lines;           /* where each record starts in the file */
    char *text;            /* CSV: the file, which names and cells point into; JSON: NULL */
} nn_records;
int nn_read_records(const char *path, nn_records *r);
void nn_records_free(nn_records *r);
/* The field's index; an error listing the fields (what: what it is for) if none. */
int nn_records_field(const nn_records *r, const char *path, const char *name, const char *what);
/* The whole file, NUL-terminated, or NULL after an error naming it. */
char *nn_read_text(const char *path, size_t *len);
/* What the text readers (records.c, data_csv.c) accept, each refusal naming
 * FILE:LINE: a line (a CSV record, quoted line breaks included, a JSON line or
 * one JSON value) of at most NN_MAX_LINE_BYTES, a row or object of at most
 * NN_MAX_FIELDS fields. Far above any table or corpus a model trains on; a
 * binary file read as text, or a row of a million commas, stops there. */
#define NN_MAX_LINE_BYTES (16L << 20)
#define NN_MAX_FIELDS (1 << 20)

/* Keras's Tokenizer vocabulary: words[id - 1] has id (0 pads), with a hash table. */
typedef struct nn_vocab {
    int n;
    char **words;
    int *slots;            /* id of the word in each slot, 0 empty */
    size_t n_slots;
} nn_vocab;
/* fit_on_texts over texts[0], texts[stride], ...: ids by count; ids of num_words
 * and above are left out. */
nn_vocab *nn_vocab_fit(char *const *texts, size_t stride, int n, const nn_text_settings *s);
nn_vocab *nn_vocab_from_words(char *const *words, int n);
int nn_vocab_id(const nn_vocab *v, const char *word);   /* 0 if unknown */
void nn_vocab_free(nn_vocab *v);
/* texts_to_sequences and pad_sequences of one text: s->max_length ids. */
void nn_text_ids(const nn_vocab *v, const nn_text_settings *s, const char *text, float *ids);

/* A text source: the rows' ids and labels. like: the training set, whose
 * vocabulary and class names this set uses; NULL: fit them on these texts
 * (its first fit_rows only: validation_split's tail stays unseen). */
int nn_load_text(const nn_model *m, const nn_source *src, const char *path,
                 const nn_dataset *like, nn_dataset *d);
/* A series source's windows; part: which of split_time's sides. */
typedef enum { NN_SERIES_ALL, NN_SERIES_BEFORE_SPLIT, NN_SERIES_AFTER_SPLIT } nn_series_part;
int nn_load_series(const nn_source *src, const char *path, nn_series_part part, nn_dataset *d);
/* A series' values, as the source reads them from path. */
int nn_read_series(const nn_source *src, const char *path, float **values, int *n);

int nn_load_idx(const char *images_path, const char *labels_path, nn_dataset *d);
/* A numeric CSV file as fmt (a csv source) describes it: label_column or
 * label_name, header. input_size > 0 makes the label column optional: a file
 * with exactly input_size columns has none (d->labels NULL). */
int nn_load_csv(const char *path, const nn_source *fmt, int input_size, nn_dataset *d);
/* One sub-folder per class, sorted by name; each image decoded, converted to
 * `channels` and resized to h x w, kept as bytes. Prints Keras's
 * "Found N images belonging to K classes." When the bytes would need more
 * than the image memory limit (min(4 GiB, half the RAM), or the environment's
 * NNRT_IMAGE_CACHE_BYTES), every image is still decoded once to check it, but
 * the set streams from disk through a cache of that size (d->stream). */
int nn_load_image_dir(const char *dir, int h, int w, int channels, int skip_bad, int threads,
                      nn_dataset *d);
/* The streamed samples idx[0..n) into x, as nn_dataset_batch does with bytes. */
int nn_image_stream_batch(const nn_dataset *d, const int *idx, int n, float scale, float *x);
/* Gives the last n_tail of s's samples their own stream (nn_dataset_split),
 * sharing the cache's slots in proportion; s keeps the first n_keep. */
nn_image_stream *nn_image_stream_split(nn_image_stream *s, int n_keep, int n_tail);
void nn_image_stream_free(nn_image_stream *s);
/* One image file, converted and resized to h x w x channels bytes in out. */
int nn_load_image_file(const char *path, int h, int w, int channels, uint8_t *out);
/* An image file's height and width as stored; -1 (silently) if unreadable. */
int nn_image_file_size(const char *path, int *h, int *w);
/* Images with more pixels than this are refused, by name, before decoding
 * (--max-pixels; the default: 64 megapixels, 256 MB decoded as RGBA). */
#define NN_DEFAULT_MAX_PIXELS (1LL << 26)
void nn_set_max_pixels(long long pixels);
/* The class folders of dir, sorted as Keras sorts them; the image files under
 * dir, in Keras's walk order. Each returns the count (the strings and the
 * array are malloc'd) or -1. */
int nn_list_classes(const char *dir, char ***names);
int nn_list_images(const char *dir, char ***paths);
/* Checks every label against the loss and the output layer `layer_name`
 * (m->output_size units): class indices in [0, units) for the sparse and
 * categorical losses, 0 or 1 for binary_crossentropy, units numbers per label
 * otherwise. The error names the label, the sample and its file. */
int nn_check_labels(const nn_model *m, const nn_dataset *d, const char *layer_name);
/* Where the input is token ids (m->input_ids), n inputs x must hold whole
 * numbers below it; the error names PLACE and the sample (first + its index). */
int nn_check_token_ids(const nn_model *m, const float *x, int n, const char *place, int first);

/* ---- augment.c --------------------------------------------------------------------- */

/* Transforms each image of a batch in place (NHWC floats); a pure function of
 * (seed, step) and each image's place in its batch, first + i (first: where
 * x begins in the batch, when a rank has its share of it), so runs repeat. */
void nn_augment_batch(const nn_augment *a, float *x, int n, int h, int w, int c,
                      uint64_t seed, uint64_t step, uint64_t first);
bool nn_augment_active(const nn_augment *a);
/* One draw of those transformations, as apply_transform takes it: theta and
 * shear in degrees, tx along the width and ty along the height in pixels, zoom
 * factors. nn_transform_image applies it to one h x w x c image in place:
 * what nn_augment_batch does per sample, exposed for tests. */
typedef struct {
    float theta, tx, ty, shear, zx, zy;
    bool flip_h, flip_v;
} nn_transform;
void nn_transform_image(const nn_transform *t, float *img, int h, int w, int c);

/* ---- image_out.c ---------------------------------------------------------------------- */

/* One channel of an NHWC map as an 8-bit grey PNG, values clipped to [0, 255]. */
int nn_write_png(const char *path, const float *img, int h, int w, int c, int channel);
/* All c maps of an h x w x c activation side by side in a grid, each normalised
 * as the course does: (x - mean) / std * 64 + 128, clipped to [0, 255], and
 * enlarged scale times (nearest) so that small maps can be seen; in grey
 * (one channel) or in viridis (RGB). */
int nn_write_feature_grid(const char *path, const float *act, int h, int w, int c, int scale,
                          bool viridis);
/* n images of h x w x c in a row, a grey line between; each value times to_byte
 * (1 / the model's rescale) is the pixel. c 3: RGB; otherwise the first channel. */
int nn_write_side_by_side(const char *path, const float *const *imgs, int n, int h, int w, int c,
                          float to_byte);

/* ---- draw.c ---------------------------------------------------------------------------- */

typedef struct { uint8_t r, g, b; } nn_rgb;
typedef struct {
    int w, h;
    uint8_t *px;           /* h rows of w RGB pixels */
} nn_canvas;

/* px (h rows of w pixels of comp bytes) to PATH.tmp, renamed to PATH when whole. */
int nn_png_save(const char *path, const uint8_t *px, int w, int h, int comp);
void nn_canvas_init(nn_canvas *c, int w, int h, nn_rgb background);
void nn_canvas_free(nn_canvas *c);
int nn_canvas_save(const nn_canvas *c, const char *path);
void nn_put_pixel(nn_canvas *c, int x, int y, nn_rgb col);       /* clipped */
nn_rgb nn_get_pixel(const nn_canvas *c, int x, int y);           /* x, y inside */
void nn_fill_rect(nn_canvas *c, int x, int y, int w, int h, nn_rgb col);
void nn_frame_rect(nn_canvas *c, int x, int y, int w, int h, nn_rgb col);
void nn_draw_line(nn_canvas *c, int x0, int y0, int x1, int y1, nn_rgb col);
/* Text with its top-left corner at (x, y), every font pixel scale x scale. */
void nn_draw_text(nn_canvas *c, int x, int y, const char *text, int scale, nn_rgb col);
int nn_text_width(const char *text, int scale);
#define NN_TEXT_HEIGHT 8   /* a line of text at scale 1, descenders included */
nn_rgb nn_viridis(double t);                                     /* t in [0, 1] */
/* An h x w image of floats in [lo, hi] (grey or RGB) drawn out_h x out_w (nearest). */
void nn_draw_image(nn_canvas *c, int x, int y, const float *img, int h, int w, int channels,
                   float lo, float hi, int out_h, int out_w);

/* ---- show_data.c ---------------------------------------------------------------------------- */

/* n images of h x w x c floats in [lo, hi], each with two lines of caption
 * under it (captions[2i], captions[2i+1]; NULL: none); wrong (or NULL) marks
 * the ones to frame and caption in red. */
typedef struct {
    int n, h, w, c;
    const float *images;
    float lo, hi;
    const char **captions;
    const bool *wrong;
} nn_sample_grid;
void nn_draw_sample_grid(nn_canvas *c, const nn_sample_grid *g);
/* A series window's w values in blue, then its h label values in orange, as
 * a line plot of 200 x 80 pixels at (x, y), values lo..hi bottom to top. */
void nn_draw_window(nn_canvas *c, int x, int y, const float *v, int w, const float *label, int h,
                    float lo, float hi);
/* Word ids as the words of v, padding (0) left out, into out (len bytes). */
void nn_decode_ids(const nn_vocab *v, const float *ids, int n, char *out, size_t len);
/* The model's input as an image: H x W x C, or H x W grey; false for a vector. */
bool nn_input_image_shape(const nn_model *m, int *h, int *w, int *c);

/* ---- plot.c ------------------------------------------------------------------------------ */

/* A history: named columns of numbers, a row per epoch (NAN: not measured). */
typedef struct {
    int n_cols, n_rows;
    char **names;
    double *values;        /* n_rows * n_cols, row-major */
} nn_table;

void nn_table_free(nn_table *t);
/* Appends a row of values for names (a column is added for a new name; the
 * rows before have NAN in it). */
void nn_table_add_row(nn_table *t, const char *const *names, const double *values, int n);
/* A history or CSVLogger file: a header of names, then rows of numbers. */
int nn_table_read_csv(const char *path, nn_table *t);
/* The curves of every column but epoch and seconds, against epoch (or the
 * row number): val_X in X's panel, lr alone on a log scale. */
int nn_plot_history(const nn_table *t, const char *path);
void nn_plot_history_canvas(const nn_table *t, nn_canvas *c);
/* Where the cells of a confusion matrix are: row i, column j at
 * (x + j*cell, y + i*cell). */
typedef struct { int x, y, cell; } nn_confusion_layout;
/* counts[true * k + predicted] of k classes as a coloured matrix. */
nn_confusion_layout nn_confusion_canvas(nn_canvas *c, const long *counts, int k,
                                        const char *const *names);
/* Tick positions at 1, 2 or 5 times a power of ten covering [lo, hi]; the count. */
int nn_nice_ticks(double lo, double hi, int max_ticks, double *ticks);
/* ---- progress.c -------------------------------------------------------------------------- */

typedef struct {
    int epoch, epochs, steps;
    int first;             /* the step this run started after (a resumed epoch's) */
    int done;              /* the last step reported: what the last line shows */
    double start;
    bool tty, quiet;
    double last_draw;      /* when the bar was last drawn (redrawn at most every 0.05 s) */
    int width;             /* its width, to blank what a shorter line leaves */
} nn_progress;

double nn_now(void);
/* epochs 0: no "Epoch i/N" line (evaluate's bar). */
void nn_progress_begin(nn_progress *p, int epoch, int epochs, int steps, bool quiet);
/* The epoch continues after `steps` steps an earlier run did (--resume): the
 * bar starts there, and times and the ETA count only the steps run now. */
void nn_progress_skip(nn_progress *p, int steps);
/* metrics: "loss", value, "accuracy", value, ... (n pairs) */
void nn_progress_step(nn_progress *p, int step, const char *const *names, const double *values, int n);
/* The epoch's last line: the bar at the last step reported (fewer than
 * `steps` when the epoch was interrupted or its data ran out), the seconds
 * this run spent on it and their time per step. */
void nn_progress_end(nn_progress *p, const char *const *names, const double *values, int n);

/* ---- loss.c ---------------------------------------------------------------------------------- */

/* The labels a loss wants, per position of the output: a class index, a
 * one-hot row or a class index (made one-hot per batch), 0 or 1 per unit, or
 * any number per unit. */
typedef enum {
    NN_LABELS_NONE, NN_LABELS_CLASS, NN_LABELS_ONE_HOT, NN_LABELS_BINARY, NN_LABELS_PER_UNIT
} nn_label_form;
nn_label_form nn_loss_labels(const nn_model *m);
/* Keras's name of the model's loss, for messages. */
const char *nn_loss_name(const nn_model *m);
/* Numbers per sample in a batch's labels. */
int nn_label_width(const nn_model *m);

/* Mean loss over n samples of out (logits where m->output_act fuses), and, if
 * dout is not NULL, its gradient with respect to out (already divided by n). */
double nn_loss(const nn_model *m, const float *out, const float *y, int n, float *dout);
/* The regularisers' l1 * sum|w| + l2 * sum w^2 over every tensor that has one;
 * with grads, also adds its gradient into the trainable tensors' (regularize.c). */
double nn_weight_penalty(const nn_model *m, const float *params, float *grads);
/* The same with each sample's loss times weights[s] (Keras's sample weights,
 * from class_weight), still divided by the number of samples. */
double nn_loss_weighted(const nn_model *m, const float *out, const float *y, const float *weights,
                        int n, float *dout);
/* The fit: class_weight of each of n samples by its label; -1 (an error
 * naming the class) for a class without a weight. */
int nn_class_weights(const nn_model *m, const float *y, int n, float *weights);
/* The model's output as Keras's metrics see it: the fused activation applied. */
void nn_keras_output(const nn_model *m, const float *out, float *pred, int n);
/* Turns the model's raw output into what predict shows (softmax/sigmoid applied). */
void nn_output_probs(const nn_model *m, const float *out, float *probs, int n);
/* The index of the first largest of x[0..k): the class accuracy, evaluate and
 * predict all name, so that they agree on ties. */
int nn_argmax(const float *x, int k);
/* What the output is: a single sigmoid unit choosing between two classes, a
 * distribution over output_size classes (softmax, or a categorical loss), or
 * numbers (regression, multi-label). */
typedef enum { NN_OUTPUT_NUMBERS, NN_OUTPUT_BINARY, NN_OUTPUT_CLASSES } nn_output_kind;
nn_output_kind nn_output_kind_of(const nn_model *m);
/* The classes a name is wanted for: 2 for a binary output, else output_size. */
int nn_class_count(const nn_model *m);
/* The class a probability vector (nn_output_probs) picks, and its probability:
 * for a binary output, class 1 when p > 0.5, with probability p or 1 - p. */
int nn_predicted_class(const nn_model *m, const float *probs, float *prob);

/* ---- metrics.c --------------------------------------------------------------------------------- */

/* Each metric adds a batch to its sums (a few doubles; AUC's per threshold
 * bucket) and computes its value from them, so an epoch's value is Keras's
 * over every sample seen, and the sums go into checkpoints. */
size_t nn_metrics_size(const nn_model *m);
/* Adds n samples (out as the forward pass gave it, labels as the loss wants
 * them) to sums; -1 on an error (precision, recall or AUC of a value outside
 * [0, 1], which Keras refuses too). */
int nn_metrics_update(const nn_model *m, const float *out, const float *y, int n, double *sums);
/* values[i] = metric i's value from the sums. */
void nn_metrics_results(const nn_model *m, const double *sums, double *values);

/* ---- optim.c ----------------------------------------------------------------------------------- */

#define NN_OPT_BUFFERS 2
typedef struct {
    nn_optimizer cfg;      /* cfg.learning_rate is read at every step: a schedule sets it */
    const nn_model *model;
    /* Laid out as params; NULL when unused. Which buffer is what, and its
     * checkpoint name, is the optimizer's row in optim.c (SGD: m the velocity;
     * Adam: m, v the moments; RMSprop: m the momentum, v the mean square ...). */
    float *state[NN_OPT_BUFFERS];
    float *clipped;        /* the clipped gradients, laid out as params, when clipping */
    int64_t iterations;
    /* Nadam's product of momentum factors over the first product_steps steps;
     * recomputed from iterations after a resume. */
    double product;
    int64_t product_steps;
    nn_update *update;     /* the step being taken (nn_optim_begin) */
} nn_optim;

void nn_optim_init(nn_optim *o, const nn_model *m, const nn_optimizer *cfg);
void nn_optim_free(nn_optim *o);
/* One update of every trainable tensor from grads. */
void nn_optim_step(nn_optim *o, float *params, const float *grads);
/* The step nn_optim_step takes, for a backward pass that applies it itself
 * (pass->update, nn_update_span): begin before backward, end after it. */
const nn_update *nn_optim_begin(nn_optim *o, float *params);
void nn_optim_end(nn_optim *o);
/* The state as arrays for a checkpoint: "optimizer.iterations" (NN_I64, one
 * element), then "optimizer.<tensor>.<buffer>" (m, v, u, accumulator: the row's
 * names) for each buffer in use, shaped like the tensor. At most
 * 1 + NN_OPT_BUFFERS*n_tensors arrays; returns how many were
 * filled (free them with nn_array_free), or -1. */
int nn_optim_state(const nn_optim *o, nn_array *out, int max);
/* Restores what nn_optim_state saved; -1 if an array is missing or misshapen,
 * and then o is unchanged. */
int nn_optim_load(nn_optim *o, const nn_array *arrays, int n);

/* ---- weights.c ------------------------------------------------------------------------------------- */

/* Keras's initialisers: glorot_uniform kernels, zero biases, ones for gamma
 * and moving variance, inline values where the model gives them. */
void nn_init_params(const nn_model *m, float *params, uint64_t seed);

/* ReduceLROnPlateau's memory between epochs, as Keras keeps it. */
typedef struct {
    double best;           /* +inf or -inf at first */
    int64_t wait, cooldown;   /* epochs without improvement; cooldown_counter */
} nn_plateau;

/* What a checkpoint holds besides the tensors: where the loop is, so that a
 * resumed run continues with the same bits, at an epoch's end or within one. */
typedef struct {
    int64_t epoch;         /* epochs done */
    uint64_t rng;          /* the shuffling generator's state as epoch `epoch` (0-based),
                              the next or the unfinished one, starts: it redraws its order */
    uint64_t seed;
    /* The unfinished epoch's progress; all 0 at an epoch's end. */
    int64_t step;          /* its batches done */
    int64_t sample;        /* its samples done: where in its shuffled order it is */
    double *metric_sums;   /* its metrics' sums (nn_metrics_size), or NULL without metrics */
    size_t n_metric_sums;
    double loss_sum;       /* the sum of its batches' mean losses times their sizes */
    double seconds;        /* the time spent on it */
    /* Kept across epochs: the learning-rate callbacks'. */
    float lr;              /* the rate a LearningRateScheduler or ReduceLROnPlateau set last;
                              0: none has (the optimizer's own) */
    nn_plateau plateau;
} nn_train_state;

/* What a weight file says besides the weights (its "meta." arrays): the
 * class names, one per class, or none. rescale and target size are the
 * model's own, so they are written from it and only checked on reading. */
typedef struct {
    char **class_names;
    int n_classes;
    char **vocabulary;     /* a text model's words by id - 1 (meta.vocabulary), or none */
    int n_words;
} nn_meta;
void nn_meta_free(nn_meta *meta);
/* meta's vocabulary becomes a copy of v's words (none if v is NULL). */
void nn_meta_set_vocabulary(nn_meta *meta, const struct nn_vocab *v);
/* meta's names become copies of the data's: the class folders' (folders[0..n),
 * n > 0), else the model file's data: class_names. */
void nn_meta_set_classes(nn_meta *meta, const nn_model *m, char *const *folders, int n);

/* Writes every tensor as LAYER.kind, the meta arrays (meta may be NULL: no
 * class names), then (when o and st are given) the optimizer's and the
 * loop's state, atomically. A path named .h5/.hdf5 gets Keras's HDF5 layout
 * and the tensors only. */
int nn_save_weights(const nn_model *m, const char *path, const float *params,
                    const nn_meta *meta, const nn_optim *o, const nn_train_state *st);
/* Reads the tensors into params (every one must be there, with its shape),
 * checks the meta arrays against the model and, when meta is not NULL, reads
 * the class names into it (none if the file has none); with o and st also
 * the training state, which must then be there too. */
int nn_load_weights(const nn_model *m, const char *path, float *params, nn_meta *meta,
                    nn_optim *o, nn_train_state *st);
/* train --weights: Keras's load_weights before fit. The tensors into params,
 * the meta arrays checked; skip_missing: a tensor not in the file keeps the
 * value params holds, and a warning names them. */
int nn_load_start_weights(const nn_model *m, const char *path, float *params, bool skip_missing);

/* Class k's name: the data's folders', the weight file's (meta, may be NULL),
 * the model file's data: class_names, or else k as a number in buf. */
const char *nn_class_label(const nn_model *m, const nn_dataset *d, const nn_meta *meta, int k,
                           char *buf, size_t len);
/* The class a label stands for: a class index as stored, or the hot one of a one-hot row. */
int nn_label_class(const float *y, int size);

/* ---- callbacks.c ------------------------------------------------------------------------------------ */

/* One epoch's logs, as Keras passes them to callbacks: loss, the metrics,
 * val_loss, the validation metrics, in that order (Keras's History's). */
#define NN_MAX_LOGS (2 * (NN_MAX_METRICS + 1) + 4)
typedef struct {
    int n;
    const char *names[NN_MAX_LOGS];
    double values[NN_MAX_LOGS];
} nn_logs;

void nn_logs_add(nn_logs *l, const char *name, double value);
/* NAN for a name the logs do not have. */
double nn_logs_get(const nn_logs *l, const char *name);

typedef enum { NN_CB_CONTINUE = 0, NN_CB_STOP = 1, NN_CB_SAVE = 2, NN_CB_RESTORE_BEST = 4 } nn_cb_action;

/* What one callback remembers between epochs. */
typedef struct {
    double best;
    int wait;
    int best_epoch;
} nn_cb_state;

void nn_callback_begin(const nn_callback *c, nn_cb_state *s);
/* Keras's decision at the end of epoch (0-based): a mask of nn_cb_action.
 * NN_CB_SAVE: write the checkpoint (ModelCheckpoint) or keep these weights as
 * the best (EarlyStopping with restore_best_weights). */
int nn_callback_epoch_end(const nn_callback *c, nn_cb_state *s, const nn_logs *logs, int epoch);

/* LearningRateScheduler and ReduceLROnPlateau change the optimizer's rate: */
void nn_plateau_begin(const nn_callback *c, nn_plateau *p);
/* Keras's ReduceLROnPlateau.on_epoch_end with the monitored value (NAN: not
 * in the logs, nothing changes): the rate for the next epoch. */
float nn_reduce_lr_on_plateau(const nn_callback *c, nn_plateau *p, double current, float lr);

/* ---- schedule.c ------------------------------------------------------------------------------------ */

/* The rate of the optimizer step that follows `step` steps (Keras's
 * optimizer.iterations), by Keras's formula for the schedule, in float32 as
 * TensorFlow computes it. */
float nn_lr_at(const nn_lr_schedule *s, int64_t step);

/* ---- train.c ------------------------------------------------------------------------------------------ */

typedef enum { NN_FORMAT_TEXT, NN_FORMAT_CSV, NN_FORMAT_JSON } nn_format;

/* The command line, as cli.c parsed it. */
typedef struct {
    const char *program;   /* the trainer's name, for messages */
    int epochs, batch_size, threads, limit, shuffle, quiet, show, confusion;
    int save_every;        /* --save-every: also a checkpoint every N steps (0: at epoch ends only) */
    float learning_rate;   /* 0: the model's */
    uint64_t seed;
    int has_seed;
    const char *data_dir, *save, *resume, *history, *weights;
    const char *npy, *out, *input;   /* predict --npy, predict/activations --out, --input */
    const char *series;              /* predict --series */
    int all;                         /* predict --all */
    const char *split;               /* show-data --split: train, validation, test */
    int count, augmented;            /* show-data --count, --augmented */
    const char *report;              /* train --report DIR */
    int skip_missing;                /* train --skip-missing */
    nn_format format;                /* predict --format */
    long long max_pixels;            /* --max-pixels: 0, the default (NN_DEFAULT_MAX_PIXELS) */
} nn_options;

int nn_train(const nn_model *m, const nn_options *o);
int nn_evaluate(const nn_model *m, const nn_options *o);
/* Analytic gradients against central differences on a random batch; 0 if all agree. */
int nn_gradcheck(const nn_model *m, const nn_options *o);

/* plot.c's `plot`: --history H.csv drawn into --out curves.png. */
int nn_plot_command(const nn_model *m, const nn_options *o);
/* show_data.c's `show-data`: --out grid.png of the first --count samples of --split. */
int nn_show_data(const nn_model *m, const nn_options *o);

/* html_report.c: train --report DIR. nn_report_epoch, after every epoch,
 * rewrites DIR/index.html and its pictures from the epoch's logs (names[i] =
 * values[i]) and the weights; the first call makes *r and loads the test
 * data (read as the training set, train, is: a text source's vocabulary),
 * else it shows the training's validation data, val, or none. */
typedef struct nn_report nn_report;
int nn_report_epoch(nn_report **r, const nn_model *m, const nn_options *o, float *params,
                    const nn_dataset *train, const nn_dataset *val, int epoch,
                    const char *const *names, const double *values, int n, double seconds);
void nn_report_free(nn_report *r);

/* `summary`'s table of the model (Keras's model.summary()). */
void nn_model_summary(FILE *out, const nn_model *m);

/* ---- predict.c ---------------------------------------------------------------------------------------- */

/* predict's inputs: numbers rows, image files, folders, CSV files (or none:
 * --npy, or the model file's predict: list). */
int nn_predict(const nn_model *m, const nn_options *o, char **inputs, int n_inputs);
int nn_activations(const nn_model *m, const nn_options *o);
/* The initial weights into o->save, with the meta arrays. */
int nn_init_weights(const nn_model *m, const nn_options *o);

/* A batch's worth of buffers for the model's passes. The work buffer holds
 * `part` samples: a batch whose activations would take more than
 * NN_WORK_BUDGET bytes passes in parts (gradients summed), unless the model
 * needs whole batches (BatchNormalization). */
#define NN_WORK_BUDGET ((size_t)256 << 20)
typedef struct {
    int capacity, part;
    float *x, *y, *work, *dout, *part_grads;
} nn_batch;

void nn_batch_init(nn_batch *b, const nn_model *m, int capacity);
void nn_batch_free(nn_batch *b);

/* ---- dist.c ---------------------------------------------------------------------------------------- */

/* Data-parallel training with Open MPI (make MPI=1, run under mpirun); without
 * it, or run alone, a job of one process of rank 0 where these do nothing.
 * A collective that fails or that some rank does not join within
 * NNRT_MPI_TIMEOUT seconds ends the job with a message naming the rank;
 * `what` says which collective, for that message. */
int nn_dist_init(int *argc, char ***argv);
int nn_dist_rank(void);
int nn_dist_size(void);
int nn_dist_local_size(void);          /* the ranks on this machine */
void nn_dist_bcast(void *buf, size_t bytes, const char *what);   /* rank 0's to every rank */
void nn_dist_sum_doubles(double *buf, size_t n, const char *what);   /* in place, over the ranks */
/* A step's gradient sum, bucket by bucket (buckets of whole tensors, about
 * NN_DIST_BUCKET_FLOATS each, from the last tensor down): begin before the
 * backward pass; nn_dist_grads_ready as the pass's grads_ready starts each
 * bucket whose gradients are final while the backward pass goes on; end
 * starts the others and waits for all. Every rank starts the same buckets in
 * the same order, so a rank that passes no hook (a batch in parts, no samples)
 * only starts them later. */
#define NN_DIST_BUCKET_FLOATS ((size_t)1 << 16)
void nn_dist_sum_begin(const nn_model *m, float *grads);
void nn_dist_grads_ready(const nn_pass *pass, size_t from);
void nn_dist_sum_end(const char *what);
/* Ends MPI: rc != 0 on any rank ends the whole job (MPI_Abort) naming it. */
int nn_dist_finalize(int rc);
/* NNRT_TEST_FAULT=RANK:STEP:hang|exit|kill, for the tests: -1 (exit) or never returns. */
int nn_dist_test_fault(int64_t step);

#endif
