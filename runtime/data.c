/* data.c - data sets in memory: loading a source of the model's data section,
 * checking it against the model, batching, and Keras's validation_split.
 *
 * The loaders (data_idx.c, data_csv.c, data_image.c) each fill an nn_dataset;
 * nn_load_source picks one by the source's format, finds its files
 * (nn_find_data), and then checks what came against the model's input_shape, so
 * that a mismatch is one clear line naming the file instead of a wrong answer
 * or a crash deep in a layer. nn_check_labels does the same for the labels.
 */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* nn_join_path with no folder is a strdup that cannot return NULL. */
static char *copy_string(const char *s)
{
    return nn_join_path(NULL, s);
}

void nn_dataset_free(nn_dataset *d)
{
    if (!d)
        return;
    free(d->bytes);
    free(d->floats);
    free(d->labels);
    if (d->class_names)
        for (int i = 0; i < d->n_classes; i++)
            free(d->class_names[i]);
    free(d->class_names);
    if (d->files)
        for (int i = 0; i < d->n; i++)
            free(d->files[i]);
    free(d->files);
    free(d->origin);
    nn_image_stream_free(d->stream);
    nn_vocab_free(d->vocab);
    memset(d, 0, sizeof *d);
}

void nn_dataset_truncate(nn_dataset *d, int n)
{
    if (n <= 0 || n >= d->n)
        return;
    if (d->files)
        for (int i = n; i < d->n; i++)
            free(d->files[i]);
    d->n = n;
}

/* Keras's rescale multiplies whatever the data is, so floats are scaled too;
 * callers pass 1 when the model has no rescale. */
static void samples_in_memory(const nn_dataset *d, const int *idx, int n, float scale, float *x)
{
    size_t size = (size_t)d->sample_size;
    for (int i = 0; i < n; i++) {
        size_t from = (size_t)idx[i] * size;
        float *xi = x + (size_t)i * size;
        if (d->bytes)
            for (size_t j = 0; j < size; j++)
                xi[j] = (float)d->bytes[from + j] * scale;
        else
            for (size_t j = 0; j < size; j++)
                xi[j] = d->floats[from + j] * scale;
    }
}

int nn_dataset_batch(const nn_dataset *d, const int *idx, int n, float scale, float *x, float *y)
{
    if (d->stream) {
        if (nn_image_stream_batch(d, idx, n, scale, x) != 0)
            return -1;
    } else {
        samples_in_memory(d, idx, n, scale, x);
    }
    size_t ls = (size_t)d->label_size;
    if (y && d->labels)
        for (int i = 0; i < n; i++)
            memcpy(y + (size_t)i * ls, d->labels + (size_t)idx[i] * ls, ls * sizeof(float));
    return 0;
}

/* The fraction as the YAML wrote it. Keras holds validation_split as a double
 * and splits at floor(n * (1 - split)); with 0.2f widened instead of 0.2,
 * 60,000 samples would split at 47,999, not 48,000. The shortest decimal that
 * reads back as the same float is the number the user wrote. */
static double as_written(float f)
{
    char buf[32];
    for (int digits = 1; digits <= 9; digits++) {
        snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
        double v = strtod(buf, NULL);
        if ((float)v == f)
            return v;
    }
    return f;
}

/* A copy of count elements of size bytes from src, starting at element first. */
static void *copy_tail(const void *src, size_t first, size_t count, size_t size)
{
    if (!src)
        return NULL;
    void *p = nn_alloc(count, size);
    memcpy(p, (const char *)src + first * size, count * size);
    return p;
}

int nn_dataset_split(nn_dataset *d, float fraction, nn_dataset *val)
{
    memset(val, 0, sizeof *val);
    double f = as_written(fraction);
    if (!(f > 0 && f < 1))
        return nn_error(d->origin, "validation_split must be between 0 and 1, got %g", f);
    int n_train = (int)floor(d->n * (1.0 - f));
    if (n_train < 1 || n_train >= d->n)
        return nn_error(d->origin, "%d samples are too few to split with validation_split %g: "
                        "each side needs at least one", d->n, f);

    size_t first = (size_t)n_train, n_val = (size_t)(d->n - n_train);
    size_t size = (size_t)d->sample_size, ls = (size_t)d->label_size;
    val->n = (int)n_val;
    val->h = d->h;
    val->w = d->w;
    val->c = d->c;
    val->sample_size = d->sample_size;
    val->label_size = d->label_size;
    val->bytes = copy_tail(d->bytes, first * size, n_val * size, 1);
    val->floats = copy_tail(d->floats, first * size, n_val * size, sizeof(float));
    val->labels = copy_tail(d->labels, first * ls, n_val * ls, sizeof(float));
    /* The file names move (d no longer owns the tail); both keep the class names. */
    val->files = copy_tail(d->files, first, n_val, sizeof(char *));
    if (d->stream)
        val->stream = nn_image_stream_split(d->stream, n_train, (int)n_val);
    val->n_classes = d->n_classes;
    if (d->class_names) {
        val->class_names = nn_alloc((size_t)d->n_classes, sizeof(char *));
        for (int i = 0; i < d->n_classes; i++)
            val->class_names[i] = copy_string(d->class_names[i]);
    }
    if (d->origin)
        val->origin = copy_string(d->origin);
    d->n = n_train;
    return 0;
}

/* ---- where the data is ------------------------------------------------------------ */

/* The model file's folder as nncc was given it ("" for the current one). */
static char *model_folder(const nn_model *m)
{
    const char *file = m->data.model_file ? m->data.model_file : "";
    const char *slash = strrchr(file, '/');
    size_t len = slash ? (size_t)(slash - file) + (slash == file) : 0;
    char *dir = nn_alloc(len + 1, 1);
    memcpy(dir, file, len);
    return dir;
}

/* The parent of the folder the running trainer is in, where `make` ran nncc
 * for generated/NAME (and make trainer OUT=DIR for a DIR one level down);
 * NULL where /proc/self/exe does not say. */
static char *trainer_parent(void)
{
    char buf[4096];
    ssize_t len = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (len <= 0)
        return NULL;
    buf[len] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(buf, '/');
        if (!slash)
            return NULL;
        slash[slash == buf] = '\0';    /* "/x" goes up to "/", not to "" */
    }
    return copy_string(buf);
}

/* Adds place unless the list has it: a model file given as "m.yaml" makes
 * its folder the current directory, tried once. */
static void add_place(char **places, int *n, char *place)
{
    for (int i = 0; i < *n; i++)
        if (strcmp(places[i], place) == 0) {
            free(place);
            return;
        }
    places[(*n)++] = place;
}

#define MAX_PLACES 3

/* Where nn_find_data looks for path, in order; returns how many places. */
static int data_places(const nn_model *m, const char *option_dir, const char *path,
                       char *places[MAX_PLACES])
{
    if (option_dir) {
        places[0] = nn_join_path(option_dir, path);
        return 1;
    }
    char *q = nn_join_path(m->data.dir, path);
    int n = 0;
    places[n++] = q;
    if (q[0] == '/')
        return n;
    char *folder = model_folder(m);
    add_place(places, &n, nn_join_path(folder, q));
    char *top = folder[0] == '/' ? NULL : trainer_parent();
    if (top) {
        char *seen = nn_join_path(top, folder);
        add_place(places, &n, nn_join_path(seen, q));
        free(seen);
        free(top);
    }
    free(folder);
    return n;
}

static void not_found(const nn_model *m, const nn_source *src, const char *path,
                      char *const *places, int n)
{
    char tried[3 * 4096 + 8] = "";
    for (int i = 0; i < n; i++)
        snprintf(tried + strlen(tried), sizeof tried - strlen(tried), "%s%s", i ? ", " : "",
                 places[i]);
    char where[4200];
    snprintf(where, sizeof where, "%s:%d", m->data.model_file ? m->data.model_file : m->name,
             src->line);
    nn_error(where, "data '%s' not found; tried %s: give the trainer --data DIR (the folder "
             "that holds it) or the model file data: dir:", path, tried);
}

char *nn_find_data(const nn_model *m, const char *option_dir, const nn_source *src,
                   const char *path)
{
    char *places[MAX_PLACES];
    int n = data_places(m, option_dir, path, places);
    char *found = NULL;
    struct stat st;
    for (int i = 0; i < n && !found; i++)
        if (stat(places[i], &st) == 0)
            found = copy_string(places[i]);
    if (!found && src)
        not_found(m, src, path, places, n);
    for (int i = 0; i < n; i++)
        free(places[i]);
    return found;
}

/* ---- loading a source and checking it against the model ----------------------- */

/* Where inline data was written: MODEL.yaml:LINE. */
static char *inline_place(const nn_model *m, const nn_source *src)
{
    const char *file = m->data.model_file ? m->data.model_file : m->source ? m->source : m->name;
    char buf[4096];
    if (src->line > 0)
        snprintf(buf, sizeof buf, "%s:%d", file, src->line);
    else
        snprintf(buf, sizeof buf, "%s", file);
    return copy_string(buf);
}

/* Inline labels are what the loss wants per sample (one-hot rows for
 * categorical cross-entropy), as nncc checked them. */
static int inline_label_size(const nn_model *m)
{
    return nn_label_width(m);
}

static int load_inline(const nn_model *m, const nn_source *src, const char *place, nn_dataset *d)
{
    if (src->count <= 0 || !src->x)
        return nn_error(place, "the inline data has no samples");
    const int *s = m->input_shape;
    d->n = src->count;
    d->h = m->input_rank >= 2 ? s[0] : 1;
    d->w = m->input_rank >= 2 ? s[1] : 1;
    d->c = m->input_rank == 3 ? s[2] : m->input_rank == 2 ? 1 : s[0];
    d->sample_size = m->input_size;
    d->floats = copy_tail(src->x, 0, (size_t)d->n * (size_t)d->sample_size, sizeof(float));
    if (src->y) {
        d->label_size = inline_label_size(m);
        d->labels = copy_tail(src->y, 0, (size_t)d->n * (size_t)d->label_size, sizeof(float));
    }
    return 0;
}

/* "28x28x1" for images, "4 numbers" for vectors. */
static void describe_samples(const nn_dataset *d, char *buf, size_t len)
{
    if (d->h == 1 && d->w == 1)
        snprintf(buf, len, "%d number%s", d->c, d->c == 1 ? "" : "s");
    else
        snprintf(buf, len, "%dx%dx%d", d->h, d->w, d->c);
}

/* The same numbers in the same order: total size, and for images (rank 2
 * or 3) height and width too. A 28x28 image set serves both input_shape
 * [28, 28] (Flatten's input, as the course writes it) and [28, 28, 1]; rows
 * of numbers (a CSV file's) fill any shape of their size, row-major. */
static int check_shape(const nn_model *m, const nn_dataset *d, const char *place)
{
    int ok = d->sample_size == m->input_size;
    if (ok && m->input_rank >= 2 && !(d->h == 1 && d->w == 1))
        ok = d->h == m->input_shape[0] && d->w == m->input_shape[1];
    if (ok)
        return 0;
    char have[64], want[64];
    describe_samples(d, have, sizeof have);
    nn_shape_text(m->input_rank, m->input_shape, want, sizeof want);
    return nn_error(place, "the data's samples are %s but the model's input_shape is %s", have, want);
}

static int load_idx_source(const nn_model *m, const nn_source *src, const char *option_dir,
                           char **place, nn_dataset *d)
{
    char *labels = nn_find_data(m, option_dir, src, src->labels);
    *place = labels ? nn_find_data(m, option_dir, src, src->images) : NULL;
    int rc = *place ? nn_load_idx(*place, labels, d) : -1;
    free(labels);
    return rc;
}

/* The training source reads the series before split_time; any other source
 * (validation, test, or a copy of the training source standing for the
 * validation part it leaves) the windows whose labels lie after it. */
static nn_series_part series_part(const nn_model *m, const nn_source *src)
{
    if (src->split_time < 0)
        return NN_SERIES_ALL;
    return src == &m->data.train ? NN_SERIES_BEFORE_SPLIT : NN_SERIES_AFTER_SPLIT;
}

static int load_file_source(const nn_model *m, const nn_source *src, const char *option_dir,
                            const nn_dataset *like, char **place, nn_dataset *d)
{
    *place = nn_find_data(m, option_dir, src, src->path);
    if (!*place)
        return -1;
    if (src->format == NN_DATA_CSV)
        return nn_load_csv(*place, src, 0, d);
    if (src->format == NN_DATA_SERIES)
        return nn_load_series(src, *place, series_part(m, src), d);
    if (src->format == NN_DATA_TEXT)
        return nn_load_text(m, src, *place, like, d);
    return nn_load_image_dir(*place, src->target_h, src->target_w, src->channels,
                             src->skip_bad_files, 0, d);
}

int nn_load_source(const nn_model *m, const nn_source *src, const char *option_dir,
                   const nn_dataset *like, nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    char *place = NULL;
    int rc;
    switch (src->format) {
    case NN_DATA_IDX:
        if (!src->images || !src->labels)
            return nn_error(m->data.model_file, "an idx data source needs images and labels");
        rc = load_idx_source(m, src, option_dir, &place, d);
        break;
    case NN_DATA_CSV:
    case NN_DATA_IMAGE_DIR:
    case NN_DATA_SERIES:
    case NN_DATA_TEXT:
        if (!src->path)
            return nn_error(m->data.model_file, "this data source needs a path");
        rc = load_file_source(m, src, option_dir, like, &place, d);
        break;
    case NN_DATA_INLINE:
        place = inline_place(m, src);
        rc = load_inline(m, src, place, d);
        break;
    default:
        return nn_error(m->data.model_file, "no data given for this step");
    }
    if (rc == 0 && !d->origin)
        d->origin = copy_string(place);
    if (rc == 0 && check_shape(m, d, place) < 0)
        rc = -1;
    if (rc == 0 && d->floats && nn_check_token_ids(m, d->floats, d->n, place, 0) < 0)
        rc = -1;
    if (rc < 0)
        nn_dataset_free(d);
    free(place);
    return rc;
}

/* The model's CSV source, whose label column and header a CSV file given on
 * the command line shares; pandas-like defaults if the model reads no CSV. */
static nn_source csv_format(const nn_model *m)
{
    const nn_source *sources[] = {&m->data.test, &m->data.validation, &m->data.train};
    for (int i = 0; i < 3; i++)
        if (sources[i]->format == NN_DATA_CSV)
            return *sources[i];
    return (nn_source){.format = NN_DATA_CSV, .label_column = -1, .header = NN_HEADER_AUTO};
}

int nn_load_data_file(const nn_model *m, const char *path, nn_dataset *d)
{
    nn_source fmt = csv_format(m);
    if (nn_load_csv(path, &fmt, m->input_size, d) != 0)
        return -1;
    if (d->sample_size == m->input_size && nn_check_token_ids(m, d->floats, d->n, path, 0) == 0)
        return 0;
    if (d->sample_size == m->input_size) {
        nn_dataset_free(d);
        return -1;
    }
    int columns = d->sample_size + (d->labels != NULL);
    nn_dataset_free(d);
    return nn_error(path, "%d columns, but model '%s' takes %d number%s per input (and a label "
                          "column, which may be left out)", columns, m->name, m->input_size,
                    m->input_size == 1 ? "" : "s");
}

/* ---- token ids ------------------------------------------------------------------- */

int nn_check_token_ids(const nn_model *m, const float *x, int n, const char *place, int first)
{
    size_t size = (size_t)m->input_size;
    for (int i = 0; m->input_ids && i < n; i++)
        for (size_t k = 0; k < size; k++) {
            float v = x[(size_t)i * size + k];
            if (!(v >= 0 && v < (float)m->input_ids && v == floorf(v)))
                return nn_error(place, "token id %g at step %zu of sample %d is not a whole "
                                "number from 0 to %d (the Embedding's input_dim is %d)", v, k,
                                first + i, m->input_ids - 1, m->input_ids);
        }
    return 0;
}

/* ---- labels ---------------------------------------------------------------------- */

/* The file a sample came from where the loader knows it, else the data set's origin. */
static const char *sample_place(const nn_dataset *d, int i)
{
    return d->files && d->files[i] ? d->files[i] : d->origin;
}

static int check_class_indices(const nn_dataset *d, const char *layer, int units)
{
    for (int i = 0; i < d->n; i++) {
        float y = d->labels[i];
        if (y >= 0 && y < units && y == floorf(y))
            continue;
        if (y != floorf(y))
            return nn_error(sample_place(d, i), "label %g of sample %d is not a class index "
                            "(a whole number from 0 to %d for the output layer '%s')",
                            y, i, units - 1, layer);
        return nn_error(sample_place(d, i), "label %g of sample %d is outside the %d classes "
                        "of the output layer '%s' (units: %d)", y, i, units, layer, units);
    }
    return 0;
}

static int check_binary(const nn_dataset *d, const char *layer)
{
    size_t total = (size_t)d->n * (size_t)d->label_size;
    for (size_t k = 0; k < total; k++) {
        float y = d->labels[k];
        if (y != 0 && y != 1) {
            int i = (int)(k / (size_t)d->label_size);
            return nn_error(sample_place(d, i), "label %g of sample %d is not 0 or 1, as "
                            "binary_crossentropy needs (output layer '%s')", y, i, layer);
        }
    }
    return 0;
}

static int label_size_error(const nn_model *m, const nn_dataset *d, const char *layer, const char *need)
{
    return nn_error(d->origin, "each label has %d number%s, but %s with the output layer '%s' "
                    "(units: %d) needs %s", d->label_size, d->label_size == 1 ? "" : "s",
                    nn_loss_name(m), layer, m->output_size, need);
}

static int check_one_per_unit(const nn_model *m, const nn_dataset *d, const char *layer)
{
    if (d->label_size != m->output_size)
        return label_size_error(m, d, layer, "one number per unit");
    return 0;
}

int nn_check_labels(const nn_model *m, const nn_dataset *d, const char *layer_name)
{
    if (!d->labels || m->data.target_input)   /* an autoencoder's labels go unread */
        return 0;
    switch (nn_loss_labels(m)) {
    case NN_LABELS_CLASS:
        if (d->label_size != 1)
            return label_size_error(m, d, layer_name, "one class index");
        return check_class_indices(d, layer_name, m->output_size);
    case NN_LABELS_ONE_HOT:
        /* Class indices (the batch one-hots them), or one-hot rows. */
        if (d->label_size == 1)
            return check_class_indices(d, layer_name, m->output_size);
        return check_one_per_unit(m, d, layer_name);
    case NN_LABELS_BINARY:
        if (check_one_per_unit(m, d, layer_name) < 0)
            return -1;
        return check_binary(d, layer_name);
    case NN_LABELS_PER_UNIT:
        return check_one_per_unit(m, d, layer_name);
    case NN_LABELS_NONE:   /* no loss (a model that only predicts): nothing to check against */
        break;
    }
    return 0;
}
