/* data_text.c - a text source: sentences into padded rows of word ids, with labels.
 *
 * The course's text pipeline in one step: read the records (records.c: CSV,
 * JSON or JSON lines), fit Keras's Tokenizer on the training texts
 * (tokenizer.c), turn every text into max_length ids and take its label.
 * A validation or test source uses the training set's vocabulary and class
 * names (`like`), as a Keras script reuses its fitted tokenizer.
 *
 * Labels are numbers (0/1, a class index) or names. Names become class
 * indices: by data: class_names when the model gives them, else by the
 * training set's names, else sorted as Keras sorts class folders.
 */
#include "rt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int is_number(const char *s, float *v)
{
    char *end;
    double x = strtod(s, &end);
    if (end == s || !isfinite(x) || fabs(x) > FLT_MAX)
        return 0;
    while (*end == ' ' || *end == '\t')
        end++;
    *v = (float)x;
    return *end == '\0';
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The distinct labels of a column, sorted, as d's class names. */
static void classes_from_labels(const nn_records *r, int col, nn_dataset *d)
{
    char **names = nn_alloc((size_t)r->n, sizeof *names);
    for (int i = 0; i < r->n; i++)
        names[i] = r->cells[(size_t)i * (size_t)r->n_fields + (size_t)col];
    qsort(names, (size_t)r->n, sizeof *names, by_name);
    int k = 0;
    for (int i = 0; i < r->n; i++)
        if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
            names[k++] = names[i];
    d->class_names = nn_alloc((size_t)k, sizeof *d->class_names);
    for (int i = 0; i < k; i++)
        d->class_names[i] = nn_join_path(NULL, names[i]);
    d->n_classes = k;
    free(names);
}

static int all_numbers(const nn_records *r, int col)
{
    float v;
    for (int i = 0; i < r->n; i++)
        if (!is_number(r->cells[(size_t)i * (size_t)r->n_fields + (size_t)col], &v))
            return 0;
    return 1;
}

/* The names labels are looked up in, or NULL when labels are numbers. */
static void choose_classes(const nn_model *m, const nn_records *r, int col,
                           const nn_dataset *like, nn_dataset *d, char *const **names,
                           int *n_names)
{
    *names = NULL, *n_names = 0;
    if (m->data.n_class_names > 0) {
        *names = (char *const *)m->data.class_names, *n_names = m->data.n_class_names;
    } else if (like && like->n_classes > 0) {
        *names = like->class_names, *n_names = like->n_classes;
    } else if (!like && !all_numbers(r, col)) {
        classes_from_labels(r, col, d);
        *names = d->class_names, *n_names = d->n_classes;
    }
}

static int read_label(const char *path, long line, const char *cell, char *const *names,
                      int n_names, float *y)
{
    if (!names) {
        if (is_number(cell, y))
            return 0;
        char place[4200];
        snprintf(place, sizeof place, "%s:%ld", path, line);
        return nn_error(place, "label '%.60s' is not a number, and the training labels were", cell);
    }
    for (int k = 0; k < n_names; k++)
        if (strcmp(names[k], cell) == 0) {
            *y = (float)k;
            return 0;
        }
    char place[4200];
    snprintf(place, sizeof place, "%s:%ld", path, line);
    return nn_error(place, "label '%.60s' is none of the %d classes ('%s', ...)", cell, n_names,
                    names[0]);
}

/* How many rows the tokenizer learns from: validation_split's tail is held out. */
static int fit_rows(const nn_model *m, const nn_source *src, int n)
{
    bool split = src == &m->data.train && m->data.validation.format == NN_DATA_NONE &&
                 m->data.validation_split > 0;
    int rows = split ? (int)floor(n * (1.0 - m->data.validation_split)) : n;
    return rows > 0 ? rows : n;
}

static int fill_rows(const nn_model *m, const nn_source *src, const char *path, const nn_records *r,
                     const nn_dataset *like, nn_dataset *d)
{
    int t = nn_records_field(r, path, src->text_field, "text");
    int l = t < 0 ? -1 : nn_records_field(r, path, src->label_field, "label");
    if (l < 0)
        return -1;
    char *const *names;
    int n_names;
    choose_classes(m, r, l, like, d, &names, &n_names);
    const nn_text_settings *s = &m->data.text;
    d->vocab = like ? NULL : nn_vocab_fit(r->cells + t, (size_t)r->n_fields, fit_rows(m, src, r->n), s);
    const nn_vocab *vocab = like ? like->vocab : d->vocab;
    d->n = r->n;
    d->h = d->w = 1;
    d->c = d->sample_size = s->max_length;
    d->label_size = 1;
    d->floats = nn_alloc_for(path, "the token ids", (size_t)d->n * (size_t)s->max_length,
                             sizeof *d->floats);
    if (!d->floats)
        return -1;
    d->labels = nn_alloc((size_t)d->n, sizeof *d->labels);
    for (int i = 0; i < r->n; i++) {
        char *const *row = r->cells + (size_t)i * (size_t)r->n_fields;
        nn_text_ids(vocab, s, row[t], d->floats + (size_t)i * (size_t)s->max_length);
        if (read_label(path, r->lines[i], row[l], names, n_names, &d->labels[i]) < 0)
            return -1;
    }
    return 0;
}

int nn_load_text(const nn_model *m, const nn_source *src, const char *path,
                 const nn_dataset *like, nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    if (like && !like->vocab)
        return nn_error(path, "no vocabulary to read this text with: the training set's or the "
                              "weight file's (meta.vocabulary)");
    nn_records r;
    if (nn_read_records(path, &r) < 0)
        return -1;
    int rc = fill_rows(m, src, path, &r, like, d);
    nn_records_free(&r);
    if (rc < 0)
        nn_dataset_free(d);
    else
        d->origin = nn_join_path(NULL, path);
    return rc;
}
