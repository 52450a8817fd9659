/* records.c - text records by field name: a CSV table, a JSON list of objects,
 * or JSON lines, read into one shape for the text and series loaders.
 *
 * What pandas' read_csv and read_json give a Keras user before Tokenizer or
 * windowed_dataset: rows of named string fields. CSV follows RFC 4180 (the
 * first row names the fields; a field may be "quoted", with "" for a quote and
 * line breaks inside; CRLF or LF). JSON is parsed by libyaml (JSON is YAML's
 * flow style), either one list of flat objects or one object per line (JSON
 * lines); numbers and booleans keep their text. Which of the two a file is
 * comes from its first non-blank character, '[' or '{'.
 *
 * Every record has every field: a CSV row with another field count, or a JSON
 * object missing a field another has, is an error naming FILE:LINE. So is a
 * record, JSON line or value beyond NN_MAX_LINE_BYTES, a row beyond
 * NN_MAX_FIELDS fields, and JSON nested deeper than a list of objects.
 */
#include "rt.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

/* Growing arrays: of strings (names, cells) and of line numbers. */
typedef struct {
    char **items;
    size_t n, cap;
} strings;

typedef struct {
    long *items;
    size_t n, cap;
} longs;

/* *items, with room for one more of size bytes; -1 after an error naming
 * path (NULL: cannot fail, aborting as nn_alloc does) when memory lacks. */
static int grow(void **items, size_t n, size_t *cap, size_t size, const char *path)
{
    if (n < *cap)
        return 0;
    size_t more = *cap ? 2 * *cap : 64;
    void *bigger = path ? nn_alloc_for(path, "its records", more, size) : nn_alloc(more, size);
    if (!bigger)
        return -1;
    if (n)
        memcpy(bigger, *items, n * size);
    free(*items);
    *items = bigger;
    *cap = more;
    return 0;
}

/* The CSV reader's cells and lines, which grow with the file, say so by name
 * when memory lacks; JSON's strings are each allocated anyway (path NULL). */
static int push(strings *s, char *item, const char *path)
{
    if (grow((void **)&s->items, s->n, &s->cap, sizeof *s->items, path) < 0)
        return -1;
    s->items[s->n++] = item;
    return 0;
}

static int push_line(longs *s, long line, const char *path)
{
    if (grow((void **)&s->items, s->n, &s->cap, sizeof *s->items, path) < 0)
        return -1;
    s->items[s->n++] = line;
    return 0;
}

static char *copy_span(const char *s, size_t len)
{
    char *c = nn_alloc(len + 1, 1);
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

static int line_error(const char *path, long line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int line_error(const char *path, long line, const char *fmt, ...)
{
    char place[4200], msg[600];
    snprintf(place, sizeof place, "%s:%ld", path, line);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return nn_error(place, "%s", msg);
}

void nn_records_free(nn_records *r)
{
    if (!r->text) {                 /* JSON: every string its own */
        for (int k = 0; k < r->n_fields; k++)
            free(r->names[k]);
        for (size_t i = 0; i < (size_t)r->n * (size_t)r->n_fields; i++)
            free(r->cells[i]);
    }
    free(r->text);
    free(r->names);
    free(r->cells);
    free(r->lines);
    memset(r, 0, sizeof *r);
}

/* ---- CSV (RFC 4180) ------------------------------------------------------------- */

/* Fields are unquoted in place, in the file's text, and end with a '\0'
 * written over their separator (a field never grows by unquoting): a cell
 * costs its pointer, however short, so a file of empty fields cannot
 * multiply its size by a malloc per field. */
typedef struct {
    const char *path;
    char *p, *end;
    const char *row;       /* where the current record starts */
    long line;
} csv_cursor;

/* One field at c->p; *last is set when it ends its row. */
static int csv_field(csv_cursor *c, char **out, int *last)
{
    long start_line = c->line;
    char *field = c->p, *w = c->p;
    int quoted = c->p < c->end && *c->p == '"';
    if (quoted)
        c->p++;
    for (;;) {
        if (c->p == c->end) {
            if (quoted)
                return line_error(c->path, start_line, "a quoted field is never closed");
            *last = 1;
            break;
        }
        if (c->p - c->row >= NN_MAX_LINE_BYTES)
            return line_error(c->path, start_line, "a record longer than %ld MiB",
                              NN_MAX_LINE_BYTES >> 20);
        char ch = *c->p;
        if (quoted && ch == '"') {
            if (c->p + 1 < c->end && c->p[1] == '"') {
                c->p++;                         /* "" is one quote */
            } else {
                quoted = 0, c->p++;
                continue;
            }
        } else if (!quoted && (ch == ',' || ch == '\n' || ch == '\r')) {
            c->p++;
            if (ch == '\r' && c->p < c->end && *c->p == '\n')
                c->p++;
            *last = ch != ',';
            c->line += ch != ',';
            break;
        } else if (ch == '\n') {
            c->line++;
        }
        *w++ = *c->p++;
    }
    *w = '\0';                 /* at most where the separator was, or the text's own '\0' */
    *out = field;
    return 0;
}

/* One row into s; its field count in *fields. */
static int csv_row(csv_cursor *c, strings *s, int *fields)
{
    int last = 0;
    long line = c->line;
    *fields = 0;
    c->row = c->p;
    while (!last) {
        if (*fields == NN_MAX_FIELDS)
            return line_error(c->path, line, "more than %d fields", NN_MAX_FIELDS);
        char *f = NULL;
        if (csv_field(c, &f, &last) < 0)
            return -1;
        if (push(s, f, c->path) < 0)
            return -1;
        ++*fields;
    }
    return 0;
}

static int read_csv_records(const char *path, char *text, size_t len, nn_records *r)
{
    csv_cursor c = {.path = path, .p = text, .end = text + len, .row = text, .line = 1};
    r->text = text;
    strings names = {0}, cells = {0};
    longs lines = {0};
    int fields, rc = csv_row(&c, &names, &fields);
    r->names = names.items, r->n_fields = fields;
    while (rc == 0 && c.p < c.end) {
        long line = c.line;
        if (*c.p == '\n' || *c.p == '\r') {     /* a blank line */
            c.p += (*c.p == '\r' && c.p + 1 < c.end && c.p[1] == '\n') ? 2 : 1;
            c.line++;
            continue;
        }
        rc = csv_row(&c, &cells, &fields);
        if (rc == 0 && fields != r->n_fields)
            rc = line_error(path, line, "%d field%s, but the header has %d", fields,
                            fields == 1 ? "" : "s", r->n_fields);
        if (rc == 0)
            rc = push_line(&lines, line, path);
    }
    r->cells = cells.items;
    r->n = r->n_fields ? (int)(cells.n / (size_t)r->n_fields) : 0;
    r->lines = lines.items;
    return rc;
}

/* ---- JSON and JSON lines, through libyaml -------------------------------------------- */

typedef struct {
    const char *path;
    long line0;            /* the line of the parser's first line: JSON lines parse one at a time */
    bool one_line;         /* JSON lines: every mark is on line0 */
    yaml_parser_t parser;
    yaml_event_t event;
    strings names;
    strings pending;       /* the current object's values, by field index */
    strings cells;
    longs lines;
} json_reader;

static long mark_line(const json_reader *j, yaml_mark_t mark)
{
    return j->one_line ? j->line0 : j->line0 + (long)mark.line;
}

static long event_line(const json_reader *j)
{
    return mark_line(j, j->event.start_mark);
}

static int next_event(json_reader *j)
{
    yaml_event_delete(&j->event);
    if (!yaml_parser_parse(&j->parser, &j->event)) {
        memset(&j->event, 0, sizeof j->event);
        return line_error(j->path, mark_line(j, j->parser.problem_mark),
                          "not valid JSON: %s", j->parser.problem ? j->parser.problem : "?");
    }
    return 0;
}

static int field_index(json_reader *j, const char *key)
{
    for (size_t k = 0; k < j->names.n; k++)
        if (strcmp(j->names.items[k], key) == 0)
            return (int)k;
    if (j->cells.n > 0 || j->names.n == NN_MAX_FIELDS)
        return -1;                          /* a field the first object lacked, or too many */
    push(&j->names, copy_span(key, strlen(key)), NULL);
    push(&j->pending, NULL, NULL);
    return (int)j->names.n - 1;
}

/* The object whose MAPPING_START is the current event. */
static int json_object(json_reader *j)
{
    long line = event_line(j);
    for (;;) {
        if (next_event(j) < 0)
            return -1;
        if (j->event.type == YAML_MAPPING_END_EVENT)
            break;
        if (j->event.type != YAML_SCALAR_EVENT)
            return line_error(j->path, event_line(j), "expected a field name");
        int k = field_index(j, (const char *)j->event.data.scalar.value);
        if (k < 0 && j->names.n == NN_MAX_FIELDS)
            return line_error(j->path, line, "more than %d fields", NN_MAX_FIELDS);
        if (k < 0)
            return line_error(j->path, event_line(j), "field '%s' is in no earlier object",
                              (const char *)j->event.data.scalar.value);
        if (next_event(j) < 0)
            return -1;
        if (j->event.type != YAML_SCALAR_EVENT)
            return line_error(j->path, event_line(j), "field '%s' must be a string or a number, "
                              "not a list or an object", j->names.items[k]);
        if (j->event.data.scalar.length > (size_t)NN_MAX_LINE_BYTES)
            return line_error(j->path, event_line(j), "field '%s' is longer than %ld MiB",
                              j->names.items[k], NN_MAX_LINE_BYTES >> 20);
        free(j->pending.items[k]);
        j->pending.items[k] = copy_span((const char *)j->event.data.scalar.value,
                                        j->event.data.scalar.length);
    }
    for (size_t k = 0; k < j->names.n; k++)
        if (!j->pending.items[k])
            return line_error(j->path, line, "this object has no field '%s'", j->names.items[k]);
    for (size_t k = 0; k < j->names.n; k++) {   /* whole records only: nn_records_free's count */
        push(&j->cells, j->pending.items[k], NULL);
        j->pending.items[k] = NULL;
    }
    push_line(&j->lines, line, NULL);
    return 0;
}

/* One document: a list of objects, or one object. */
static int json_document(json_reader *j, const char *text, size_t len)
{
    yaml_parser_initialize(&j->parser);
    yaml_parser_set_input_string(&j->parser, (const unsigned char *)text, len);
    int rc = 0, list = 0;
    do {
        if ((rc = next_event(j)) < 0)
            break;
        switch (j->event.type) {
        case YAML_SEQUENCE_START_EVENT:    /* one list of objects, nothing deeper */
            if (++list > 1)
                rc = line_error(j->path, event_line(j), "a list inside the list: expected "
                                "objects {\"field\": ...}");
            break;
        case YAML_SEQUENCE_END_EVENT:
            list--;
            break;
        case YAML_MAPPING_START_EVENT:
            rc = json_object(j);
            break;
        case YAML_SCALAR_EVENT:
            rc = line_error(j->path, event_line(j), "expected an object {\"field\": ...}");
            break;
        default:
            break;
        }
    } while (rc == 0 && j->event.type != YAML_STREAM_END_EVENT && list >= 0);
    yaml_event_delete(&j->event);
    yaml_parser_delete(&j->parser);
    return rc;
}

static int read_json_records(const char *path, const char *text, size_t len, nn_records *r)
{
    json_reader j = {.path = path};
    const char *first = text + strspn(text, " \t\r\n");
    int rc = 0;
    if (*first == '[') {
        j.line0 = 1;
        rc = json_document(&j, text, len);
    } else {                                 /* JSON lines: one object a line */
        long line = 1;
        j.one_line = true;
        for (const char *s = text, *end = text + len; rc == 0 && s < end; line++) {
            const char *nl = memchr(s, '\n', (size_t)(end - s));
            const char *e = nl ? nl : end;
            j.line0 = line;
            if (e - s > NN_MAX_LINE_BYTES)
                rc = line_error(path, line, "a line longer than %ld MiB", NN_MAX_LINE_BYTES >> 20);
            else if (s + strspn(s, " \t\r") < e)
                rc = json_document(&j, s, (size_t)(e - s));
            s = e + 1;
        }
    }
    for (size_t k = 0; k < j.pending.n; k++)
        free(j.pending.items[k]);
    free(j.pending.items);
    r->names = j.names.items, r->n_fields = (int)j.names.n;
    r->cells = j.cells.items;
    r->n = r->n_fields ? (int)(j.cells.n / (size_t)r->n_fields) : 0;
    r->lines = j.lines.items;
    return rc;
}

int nn_read_records(const char *path, nn_records *r)
{
    memset(r, 0, sizeof *r);
    size_t len;
    char *text = nn_read_text(path, &len);
    if (!text)
        return -1;
    const char *first = text + strspn(text, " \t\r\n");
    int rc = *first == '[' || *first == '{' ? read_json_records(path, text, len, r)
                                            : read_csv_records(path, text, len, r);
    if (r->text != text)
        free(text);                /* JSON: the strings were copied */
    if (rc == 0 && r->n == 0)
        rc = nn_error(path, "no records");
    if (rc < 0)
        nn_records_free(r);
    return rc;
}

int nn_records_field(const nn_records *r, const char *path, const char *name, const char *what)
{
    for (int k = 0; k < r->n_fields; k++)
        if (strcmp(r->names[k], name) == 0)
            return k;
    char list[1024] = "";
    for (int k = 0; k < r->n_fields && strlen(list) < sizeof list - 80; k++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s'%s'", k ? ", " : "",
                 r->names[k]);
    return nn_error(path, "no field named '%s' (the %s); the file has %s", name, what, list);
}
