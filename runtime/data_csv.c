/* data_csv.c - numeric CSV files: one sample per row, one column the label.
 *
 * What pandas' read_csv of a plain numeric table gives a Keras user: fields
 * separated by commas, an optional first row of names (header), any column
 * the label (label_column; -1 the last; none for predict), the rest the
 * features in order.
 * CRLF or LF line ends, with or without a final newline; blank lines are
 * skipped. Every row must have as many fields as the first, and every field
 * must be a finite number that fits a float: a bad file is an error naming
 * FILE:LINE and the field, never a silent zero.
 */
#include "rt.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The parse so far: every number of every data row, in file order. */
typedef struct {
    const char *path;
    int header;            /* the first non-blank row holds names */
    int line;              /* current line, from 1 */
    int first_line;        /* the row that fixed the width, 0 before it */
    int ncols;
    int rows;              /* data rows */
    float *cells;          /* rows * ncols */
    size_t n_cells;
} csv_reader;

/* The whole file, NUL-terminated. */
static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        nn_error(path, "cannot open: %s", strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0;
    char *buf = nn_alloc(cap, 1);
    for (;;) {
        if (n + 1 == cap) {
            char *bigger = nn_alloc(cap * 2, 1);
            memcpy(bigger, buf, n);
            free(buf);
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        if (got == 0)
            break;
        n += got;
    }
    if (ferror(f)) {
        nn_error(path, "cannot read: %s", strerror(errno));
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

static int is_blank(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\r';
}

/* Parses [s, e) as one finite float; 0 on success. */
static int parse_number(const char *s, const char *e, float *out)
{
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    if (s == e)
        return -1;
    /* s points at a non-blank and e at a separator, a blank or the end of
     * the line, none of which continues a number: strtod stops by e. */
    char *end;
    double v = strtod(s, &end);
    if (end != e || !isfinite(v) || fabs(v) > FLT_MAX)
        return -1;
    *out = (float)v;
    return 0;
}

static int row_error(const csv_reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int row_error(const csv_reader *r, const char *fmt, ...)
{
    char place[4096], msg[512];
    snprintf(place, sizeof place, "%s:%d", r->path, r->line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nn_error(place, "%s", msg);
}

static int field_error(const csv_reader *r, int k, const char *s, const char *e)
{
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    int shown = e - s > 40 ? 40 : (int)(e - s);
    const char *hint = !r->header && r->rows == 0 && r->first_line == r->line
                           ? " (if the first row holds column names, set header: true)" : "";
    return row_error(r, "field %d '%.*s%s' is not a number%s", k, shown, s,
                     e - s > shown ? "..." : "", hint);
}

static int count_fields(const char *s, const char *e)
{
    size_t n = 1;
    for (; s < e; s++)
        n += *s == ',';
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* One non-blank line [s, e): the header, or a row of numbers. */
static int read_row(csv_reader *r, const char *s, const char *e)
{
    int fields = count_fields(s, e);
    if (!r->first_line) {
        r->first_line = r->line;
        r->ncols = fields;
        if (r->header)
            return 0;
    } else if (fields != r->ncols) {
        return row_error(r, "%d field%s, but line %d has %d", fields, fields == 1 ? "" : "s",
                         r->first_line, r->ncols);
    }
    if (r->rows == INT_MAX)
        return row_error(r, "too many rows");
    for (int k = 1; k <= fields; k++) {
        const char *comma = memchr(s, ',', (size_t)(e - s));
        const char *end = comma ? comma : e;
        float v;
        if (parse_number(s, end, &v) < 0)
            return field_error(r, k, s, end);
        r->cells[r->n_cells++] = v;
        s = end + 1;
    }
    r->rows++;
    return 0;
}

static int is_blank_line(const char *s, const char *e)
{
    while (s < e && is_blank(*s))
        s++;
    return s == e;
}

static int read_rows(csv_reader *r, const char *text, size_t len)
{
    const char *end = text + len;
    for (const char *s = text; s < end;) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        r->line++;
        if (!is_blank_line(s, e) && read_row(r, s, e) < 0)
            return -1;
        s = e + 1;
    }
    return 0;
}

/* Splits the cells into features (every column but the label's) and labels. */
static void fill_dataset(const csv_reader *r, int label_column, nn_dataset *d)
{
    d->n = r->rows;
    d->h = d->w = 1;
    bool labelled = label_column != NN_CSV_NO_LABEL;
    d->c = d->sample_size = r->ncols - labelled;
    d->floats = nn_alloc((size_t)d->n * (size_t)d->sample_size, sizeof(float));
    d->label_size = labelled;
    d->labels = labelled ? nn_alloc((size_t)d->n, sizeof(float)) : NULL;
    float *x = d->floats;
    for (int i = 0; i < r->rows; i++) {
        const float *row = r->cells + (size_t)i * (size_t)r->ncols;
        for (int k = 0; k < r->ncols; k++) {
            if (k == label_column)
                d->labels[i] = row[k];
            else
                *x++ = row[k];
        }
    }
    d->origin = nn_join_path(NULL, r->path);
}

int nn_load_csv(const char *path, int label_column, int header, nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    size_t len;
    char *text = read_text(path, &len);
    if (!text)
        return -1;
    /* Each number takes a character and a separator, so the file's length
     * bounds the cells: no reallocation, whatever the file holds. */
    csv_reader r = {.path = path, .header = header};
    r.cells = nn_alloc(len / 2 + 1, sizeof(float));
    int rc = read_rows(&r, text, len);
    free(text);

    int col = label_column == -1 ? r.ncols - 1 : label_column;
    if (rc == 0 && !r.first_line)
        rc = nn_error(path, "empty file: no rows");
    else if (rc == 0 && label_column != NN_CSV_NO_LABEL && (label_column < -1 || col >= r.ncols))
        rc = nn_error(path, "label_column %d is outside the %d columns (0 to %d, or -1 for the last)",
                      label_column, r.ncols, r.ncols - 1);
    else if (rc == 0 && r.ncols < 2 && label_column != NN_CSV_NO_LABEL)
        rc = nn_error(path, "only one column: no features besides the labels");
    else if (rc == 0 && r.rows == 0)
        rc = nn_error(path, "no data rows after the header");
    if (rc == 0)
        fill_dataset(&r, col, d);
    free(r.cells);
    return rc;
}
