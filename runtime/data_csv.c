/* data_csv.c - numeric CSV files: one sample per row, one column the label.
 *
 * What pandas' read_csv of a plain numeric table gives a Keras user: fields
 * separated by commas, an optional first row of names (header), any column
 * the label (label_column by index, -1 the last, or label_name from the
 * header), the rest the features in order. CRLF or LF line ends, with or
 * without a final newline; blank lines are skipped. Every row must have as
 * many fields as the first, and every field of a data row must be a finite
 * number that fits a float: a bad file is an error naming FILE:LINE and the
 * column, never a silent zero. A line beyond NN_MAX_LINE_BYTES or
 * NN_MAX_FIELDS fields is refused before its fields are read.
 *
 * The header is never guessed at the cost of a row: header: true on a first
 * row of numbers is an error, and by default (NN_HEADER_AUTO) the first row
 * is the header only if none of its fields is a number; one with some
 * numbers and some text is an error naming the column.
 */
#include "rt.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* The parse so far: every number of every data row, in file order. */
typedef struct {
    const char *path;
    const nn_source *fmt;
    int line;              /* current line, from 1 */
    int first_line;        /* the row that fixed the width, 0 before it */
    int header_line;       /* the header's line, 0 if the file has none */
    char *names;           /* the header as written, for messages */
    int named;             /* the column fmt->label_name names, -1 none */
    int ncols;
    int rows;              /* data rows */
    float *cells;          /* rows * ncols */
    size_t n_cells;
} csv_reader;

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
    const char *hint = r->fmt->header != 1 && r->rows == 0 && r->first_line == r->line
                           ? " (if the first row holds column names, set header: true)" : "";
    return row_error(r, "column %d '%.*s%s' is not a number%s", k, shown, s,
                     e - s > shown ? "..." : "", hint);
}

static int count_fields(const char *s, const char *e)
{
    size_t n = 1;
    for (; s < e; s++)
        n += *s == ',';
    return n > INT_MAX ? INT_MAX : (int)n;
}

/* The end of the field that starts at s, in a line that ends at e. */
static const char *field_end(const char *s, const char *e)
{
    const char *comma = memchr(s, ',', (size_t)(e - s));
    return comma ? comma : e;
}

static int count_numbers(const char *s, const char *e, int fields)
{
    int numbers = 0;
    for (int k = 0; k < fields; k++, s = field_end(s, e) + 1) {
        float v;
        numbers += parse_number(s, field_end(s, e), &v) == 0;
    }
    return numbers;
}

/* A header field is the name, give or take blanks and pandas' double quotes. */
static int is_name(const char *s, const char *e, const char *name)
{
    while (s < e && is_blank(*s))
        s++;
    while (e > s && is_blank(e[-1]))
        e--;
    if (e - s >= 2 && *s == '"' && e[-1] == '"')
        s++, e--;
    return strlen(name) == (size_t)(e - s) && memcmp(s, name, (size_t)(e - s)) == 0;
}

/* The first non-blank row: names, or the first row of numbers. */
static int read_first_row(csv_reader *r, const char *s, const char *e, int fields, int *header)
{
    int numbers = count_numbers(s, e, fields);
    if (r->fmt->header == 1 && numbers == fields)
        return row_error(r, "header: true, but this first row holds only numbers: it is data, "
                         "not column names (set header: false, or leave it out)");
    *header = r->fmt->header == 1 || (r->fmt->header == NN_HEADER_AUTO && numbers == 0);
    if (!*header)
        return 0;
    r->header_line = r->line;
    r->names = nn_alloc((size_t)(e - s) + 1, 1);
    memcpy(r->names, s, (size_t)(e - s));
    r->names[e - s] = '\0';
    for (int k = 0; k < fields && r->fmt->label_name; k++, s = field_end(s, e) + 1)
        if (r->named < 0 && is_name(s, field_end(s, e), r->fmt->label_name))
            r->named = k;
    return 0;
}

/* One non-blank line [s, e): the header, or a row of numbers. */
static int read_row(csv_reader *r, const char *s, const char *e)
{
    int fields = count_fields(s, e);
    if (fields > NN_MAX_FIELDS)
        return row_error(r, "%d fields, more than %d", fields, NN_MAX_FIELDS);
    if (!r->first_line) {
        r->first_line = r->line;
        r->ncols = fields;
        int header;
        if (read_first_row(r, s, e, fields, &header) < 0)
            return -1;
        if (header)
            return 0;
    } else if (fields != r->ncols) {
        return row_error(r, "%d field%s, but line %d has %d", fields, fields == 1 ? "" : "s",
                         r->first_line, r->ncols);
    }
    if (r->rows == INT_MAX)
        return row_error(r, "too many rows");
    for (int k = 1; k <= fields; k++) {
        const char *end = field_end(s, e);
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
        if (e - s > NN_MAX_LINE_BYTES)
            return row_error(r, "a line longer than %ld MiB", NN_MAX_LINE_BYTES >> 20);
        if (!is_blank_line(s, e) && read_row(r, s, e) < 0)
            return -1;
        s = e + 1;
    }
    return 0;
}

/* Splits the cells into features (every column but the label's) and labels;
 * label_column -1: all features, no labels. */
static int fill_dataset(const csv_reader *r, int label_column, nn_dataset *d)
{
    d->n = r->rows;
    d->h = d->w = 1;
    d->c = d->sample_size = label_column < 0 ? r->ncols : r->ncols - 1;
    d->floats = nn_alloc_for(r->path, "the samples", (size_t)d->n * (size_t)d->sample_size,
                             sizeof(float));
    if (!d->floats)
        return -1;
    if (label_column >= 0) {
        d->label_size = 1;
        d->labels = nn_alloc((size_t)d->n, sizeof(float));
    }
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
    return 0;
}

/* The label column by its name in the header. */
static int named_column(const csv_reader *r, int *col)
{
    const char *name = r->fmt->label_name;
    if (!r->header_line)
        return nn_error(r->path, "label_column '%s' is a column name, but the file has no header: "
                        "line %d holds numbers", name, r->first_line);
    if (r->named < 0) {
        char place[4200];
        snprintf(place, sizeof place, "%s:%d", r->path, r->header_line);
        return nn_error(place, "no column named '%s' in the header '%.200s'", name, r->names);
    }
    *col = r->named;
    return 0;
}

/* Which column holds the labels: -1 none (a file of exactly input_size columns). */
static int find_label_column(const csv_reader *r, int input_size, int *col)
{
    if (input_size > 0 && r->ncols == input_size) {
        *col = -1;
        return 0;
    }
    if (r->fmt->label_name)
        return named_column(r, col);
    int given = r->fmt->label_column;
    *col = given == -1 ? r->ncols - 1 : given;
    if (given < -1 || *col >= r->ncols)
        return nn_error(r->path, "label_column %d is outside the %d columns (0 to %d, or -1 for "
                        "the last)", given, r->ncols, r->ncols - 1);
    if (r->ncols < 2)
        return nn_error(r->path, "only one column: no features besides the labels");
    return 0;
}

int nn_load_csv(const char *path, const nn_source *fmt, int input_size, nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    size_t len;
    char *text = nn_read_text(path, &len);
    if (!text)
        return -1;
    /* Each number takes a character and a separator, so the file's length
     * bounds the cells: no reallocation, whatever the file holds. */
    csv_reader r = {.path = path, .fmt = fmt, .named = -1};
    r.cells = nn_alloc_for(path, "its numbers", len / 2 + 1, sizeof(float));
    int rc = r.cells ? read_rows(&r, text, len) : -1;
    free(text);

    int col = -1;
    if (rc == 0 && !r.first_line)
        rc = nn_error(path, "empty file: no rows");
    else if (rc == 0 && r.rows == 0)
        rc = nn_error(path, "no data rows after the header");
    else if (rc == 0)
        rc = find_label_column(&r, input_size, &col);
    if (rc == 0)
        rc = fill_dataset(&r, col, d);
    free(r.cells);
    free(r.names);
    return rc;
}
