/* plot.c - training curves, as Keras users draw them with matplotlib from
 * history.history: a panel per quantity, epochs across, training and
 * validation in one panel.
 *
 * The history is a table of named columns (nn_table), read from any CSV file
 * with a header (the trainer's --history, Keras's CSVLogger) or filled a row
 * per epoch by train --report, so that whatever columns a run logs get drawn
 * without this file knowing them: every column but epoch (the x axis) and
 * seconds (a timing, not a curve) is a curve; val_X is drawn in X's panel;
 * lr gets a panel of its own on a log scale, and only when it changes. */
#include "rt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- the table ---------------------------------------------------------------- */

void nn_table_free(nn_table *t)
{
    for (int i = 0; i < t->n_cols; i++)
        free(t->names[i]);
    free(t->names);
    free(t->values);
    memset(t, 0, sizeof *t);
}

static int column_of(const nn_table *t, const char *name)
{
    for (int i = 0; i < t->n_cols; i++)
        if (strcmp(t->names[i], name) == 0)
            return i;
    return -1;
}

static double cell(const nn_table *t, int row, int col)
{
    return t->values[(size_t)row * (size_t)t->n_cols + (size_t)col];
}

/* A new column, NAN in every row so far. */
static int add_column(nn_table *t, const char *name)
{
    int n = t->n_cols + 1;
    double *values = nn_alloc((size_t)(t->n_rows + 1) * (size_t)n, sizeof *values);
    for (int r = 0; r < t->n_rows; r++) {
        for (int c = 0; c < t->n_cols; c++)
            values[(size_t)r * n + c] = cell(t, r, c);
        values[(size_t)r * n + t->n_cols] = NAN;
    }
    free(t->values);
    t->values = values;
    char **names = nn_alloc((size_t)n, sizeof *names);
    if (t->n_cols)
        memcpy(names, t->names, (size_t)t->n_cols * sizeof *names);
    free(t->names);
    t->names = names;
    names[t->n_cols] = nn_alloc(strlen(name) + 1, 1);
    strcpy(names[t->n_cols], name);
    return t->n_cols++;
}

void nn_table_add_row(nn_table *t, const char *const *names, const double *values, int n)
{
    for (int i = 0; i < n; i++)
        if (column_of(t, names[i]) < 0)
            add_column(t, names[i]);
    double *grown = nn_alloc((size_t)(t->n_rows + 1) * (size_t)t->n_cols, sizeof *grown);
    if (t->values)
        memcpy(grown, t->values, (size_t)t->n_rows * (size_t)t->n_cols * sizeof *grown);
    free(t->values);
    t->values = grown;
    double *row = grown + (size_t)t->n_rows * (size_t)t->n_cols;
    for (int c = 0; c < t->n_cols; c++)
        row[c] = NAN;
    for (int i = 0; i < n; i++)
        row[column_of(t, names[i])] = values[i];
    t->n_rows++;
}

/* ---- reading a CSV history ---------------------------------------------------------- */

static char *trimmed(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && strchr(" \t\r\n", s[n - 1]))
        s[--n] = '\0';
    return s;
}

/* The fields of line, split at commas in place; how many (at most max). */
static int split_fields(char *line, char **fields, int max)
{
    int n = 0;
    for (char *p = line; n < max;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        fields[n++] = trimmed(p);
        if (!comma)
            break;
        p = comma + 1;
    }
    return n;
}

#define MAX_COLUMNS 64
#define MAX_LINE 4096

static int read_rows(FILE *f, const char *path, nn_table *t)
{
    char line[MAX_LINE], *fields[MAX_COLUMNS];
    const char **names = (const char **)t->names;
    double values[MAX_COLUMNS];
    for (int lineno = 2; fgets(line, sizeof line, f); lineno++) {
        if (*trimmed(line) == '\0')
            continue;
        int n = split_fields(line, fields, MAX_COLUMNS);
        if (n != t->n_cols)
            return nn_error(path, "line %d has %d fields; the header names %d", lineno, n,
                            t->n_cols);
        for (int i = 0; i < n; i++) {
            char *end;
            values[i] = *fields[i] ? strtod(fields[i], &end) : NAN;
            if (*fields[i] && *end)
                return nn_error(path, "line %d: '%s' (%s) is not a number", lineno, fields[i],
                                names[i]);
        }
        nn_table_add_row(t, names, values, n);   /* every name is a column: none added */
    }
    return 0;
}

int nn_table_read_csv(const char *path, nn_table *t)
{
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f)
        return nn_error(path, "cannot read: %s", strerror(errno));
    char line[MAX_LINE], *fields[MAX_COLUMNS];
    int rc = 0;
    if (!fgets(line, sizeof line, f) || *trimmed(line) == '\0') {
        rc = nn_error(path, "empty: a history starts with a header such as epoch,loss,accuracy");
    } else {
        int n = split_fields(line, fields, MAX_COLUMNS);
        for (int i = 0; i < n && rc == 0; i++) {
            char *end;
            if (!*fields[i] || (strtod(fields[i], &end), *end == '\0'))
                rc = nn_error(path, "line 1 should be a header of column names, such as "
                                    "epoch,loss,accuracy; field %d is '%s'", i + 1, fields[i]);
            else if (column_of(t, fields[i]) >= 0)
                rc = nn_error(path, "the header names '%s' twice", fields[i]);
            else
                add_column(t, fields[i]);
        }
        if (rc == 0)
            rc = read_rows(f, path, t);
    }
    fclose(f);
    if (rc != 0)
        nn_table_free(t);
    return rc;
}

/* ---- ticks ----------------------------------------------------------------------------- */

int nn_nice_ticks(double lo, double hi, int max_ticks, double *ticks)
{
    if (!(hi > lo) || max_ticks < 2)
        return 0;
    double raw = (hi - lo) / (max_ticks - 1), base = pow(10, floor(log10(raw)));
    double step = base;
    for (int i = 0; i < 3 && step < raw * (1 - 1e-9); i++)
        step = base * (double[]){2, 5, 10}[i];
    int n = 0;
    for (double k = ceil(lo / step - 1e-9); n < max_ticks && k * step <= hi + step * 1e-9; k++) {
        double v = k * step;
        ticks[n++] = fabs(v) < step * 1e-9 ? 0 : v;
    }
    return n;
}

/* ---- panels ---------------------------------------------------------------------------- */

#define PANEL_W 400
#define PANEL_H 280
#define PANELS_PER_ROW 3
#define MAX_TICKS 7
/* The plot area within a panel. */
#define LEFT 64
#define RIGHT 14
#define TOP 30
#define BOTTOM 40

static const nn_rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0}, GRID = {225, 225, 225};
/* matplotlib's first two colours: training blue, validation orange. */
static const nn_rgb SERIES[2] = {{31, 119, 180}, {255, 127, 14}};

typedef struct {
    int cols[2], n;        /* the column and, if there is one, its val_ partner */
    bool log_scale;
} panel;

typedef struct {
    int x, y, w, h;        /* the plot area on the canvas */
    double x0, x1, y0, y1; /* the values at its edges */
    bool log_scale;
} axes;

static bool column_is_drawn(const nn_table *t, int c)
{
    const char *name = t->names[c];
    if (strcmp(name, "epoch") == 0 || strcmp(name, "seconds") == 0)
        return false;
    double first = NAN;
    bool varies = false, any = false;
    for (int r = 0; r < t->n_rows; r++) {
        double v = cell(t, r, c);
        if (isnan(v))
            continue;
        if (any && v != first)
            varies = true;
        if (!any)
            first = v, any = true;
    }
    return any && (varies || strcmp(name, "lr") != 0);
}

/* The panels: each drawn column in order, its val_ partner with it. */
static int plan_panels(const nn_table *t, panel *panels)
{
    int n = 0;
    for (int c = 0; c < t->n_cols; c++) {
        const char *name = t->names[c];
        if (!column_is_drawn(t, c))
            continue;
        if (strncmp(name, "val_", 4) == 0) {
            int base = column_of(t, name + 4);
            if (base >= 0 && column_is_drawn(t, base))
                continue;   /* drawn with its training column */
        }
        panel *p = &panels[n++];
        p->cols[0] = c, p->n = 1;
        p->log_scale = strcmp(name, "lr") == 0;
        char val[256];
        snprintf(val, sizeof val, "val_%s", name);
        int partner = column_of(t, val);
        if (partner >= 0 && column_is_drawn(t, partner))
            p->cols[p->n++] = partner;
    }
    return n;
}

static double x_of_row(const nn_table *t, int row)
{
    int e = column_of(t, "epoch");
    return e >= 0 && !isnan(cell(t, row, e)) ? cell(t, row, e) : row + 1;
}

static double scaled(const axes *a, double v)
{
    return a->log_scale ? (v > 0 ? log10(v) : NAN) : v;
}

static int px_x(const axes *a, double x)
{
    return a->x + (int)lround((x - a->x0) / (a->x1 - a->x0) * (a->w - 1));
}

static int px_y(const axes *a, double y)
{
    return a->y + a->h - 1 - (int)lround((y - a->y0) / (a->y1 - a->y0) * (a->h - 1));
}

/* The ranges: every value of the panel's columns, 5% of room on each side. */
static void fit_ranges(const nn_table *t, const panel *p, axes *a)
{
    double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
    for (int r = 0; r < t->n_rows; r++)
        for (int i = 0; i < p->n; i++) {
            double v = scaled(a, cell(t, r, p->cols[i]));
            if (!isfinite(v))
                continue;
            double x = x_of_row(t, r);
            xlo = fmin(xlo, x), xhi = fmax(xhi, x), ylo = fmin(ylo, v), yhi = fmax(yhi, v);
        }
    if (!(xhi > xlo))
        xlo -= 1, xhi += 1;
    if (!(yhi > ylo)) {
        double d = fabs(ylo) > 0 ? fabs(ylo) * 0.1 : 1;
        ylo -= d, yhi += d;
    }
    double dx = (xhi - xlo) * 0.05, dy = (yhi - ylo) * 0.05;
    a->x0 = xlo - dx, a->x1 = xhi + dx, a->y0 = ylo - dy, a->y1 = yhi + dy;
}

static void tick_label(double v, bool log_scale, char *buf, size_t len)
{
    snprintf(buf, len, "%.4g", log_scale ? pow(10, v) : v);
}

/* A log axis (values are log10s): ticks at 1, 2 and 5 times powers of ten,
 * else only at the powers when those are too many, else as a linear axis. */
static int log_ticks(double lo, double hi, double *ticks)
{
    static const double steps[3] = {1, 2, 5};
    for (int every = 1; every <= 3; every += 2) {
        int n = 0;
        for (double d = floor(lo); d <= ceil(hi); d++)
            for (int i = 0; i < 3; i += every)
                if (d + log10(steps[i]) >= lo && d + log10(steps[i]) <= hi && n < MAX_TICKS)
                    ticks[n++] = d + log10(steps[i]);
        if (n >= 2 && n < MAX_TICKS)
            return n;
    }
    return nn_nice_ticks(lo, hi, 6, ticks);
}

static void draw_axes(nn_canvas *c, const axes *a, const char *title)
{
    double ticks[MAX_TICKS];
    char label[32];
    int n = a->log_scale ? log_ticks(a->y0, a->y1, ticks) : nn_nice_ticks(a->y0, a->y1, 6, ticks);
    for (int i = 0; i < n; i++) {
        int y = px_y(a, ticks[i]);
        nn_draw_line(c, a->x, y, a->x + a->w - 1, y, GRID);
        nn_draw_line(c, a->x - 4, y, a->x - 1, y, BLACK);
        tick_label(ticks[i], a->log_scale, label, sizeof label);
        nn_draw_text(c, a->x - 7 - nn_text_width(label, 1), y - 3, label, 1, BLACK);
    }
    n = nn_nice_ticks(a->x0, a->x1, MAX_TICKS, ticks);
    for (int i = 0; i < n; i++) {
        if (ticks[i] != floor(ticks[i]))
            continue;   /* epochs are whole */
        int x = px_x(a, ticks[i]);
        nn_draw_line(c, x, a->y + a->h, x, a->y + a->h + 3, BLACK);
        snprintf(label, sizeof label, "%.0f", ticks[i]);
        nn_draw_text(c, x - nn_text_width(label, 1) / 2, a->y + a->h + 7, label, 1, BLACK);
    }
    nn_frame_rect(c, a->x - 1, a->y - 1, a->w + 2, a->h + 2, BLACK);
    nn_draw_text(c, a->x + a->w / 2 - nn_text_width("epoch", 1) / 2, a->y + a->h + 22, "epoch",
                 1, BLACK);
    nn_draw_text(c, a->x + a->w / 2 - nn_text_width(title, 2) / 2, a->y - TOP + 6, title, 2, BLACK);
}

/* A series: lines between successive measured epochs, a 3x3 dot at each. */
static void draw_series(nn_canvas *c, const axes *a, const nn_table *t, int col, nn_rgb colour)
{
    int px = 0, py = 0;
    bool have_last = false;
    for (int r = 0; r < t->n_rows; r++) {
        double v = scaled(a, cell(t, r, col));
        if (!isfinite(v))
            continue;
        int x = px_x(a, x_of_row(t, r)), y = px_y(a, v);
        if (have_last) {
            nn_draw_line(c, px, py, x, y, colour);
            nn_draw_line(c, px, py + 1, x, y + 1, colour);   /* two pixels thick */
        }
        nn_fill_rect(c, x - 1, y - 1, 3, 3, colour);
        px = x, py = y, have_last = true;
    }
}

/* The series' names, each after a sample of its line, in the right-hand
 * corner (top or bottom) away from where the first series ends. */
static void draw_legend(nn_canvas *c, const axes *a, const nn_table *t, const panel *p)
{
    double last = NAN;
    for (int r = 0; r < t->n_rows; r++)
        if (isfinite(scaled(a, cell(t, r, p->cols[0]))))
            last = scaled(a, cell(t, r, p->cols[0]));
    bool ends_high = last > (a->y0 + a->y1) / 2;
    int width = 0;
    for (int i = 0; i < p->n; i++) {
        int w = nn_text_width(t->names[p->cols[i]], 1);
        width = w > width ? w : width;
    }
    int bw = width + 34, bh = 12 * p->n + 6, bx = a->x + a->w - bw - 6;
    int by = ends_high ? a->y + a->h - bh - 6 : a->y + 6;
    nn_fill_rect(c, bx, by, bw, bh, WHITE);
    nn_frame_rect(c, bx, by, bw, bh, GRID);
    for (int i = 0; i < p->n; i++) {
        int y = by + 6 + 12 * i;
        nn_fill_rect(c, bx + 6, y + 2, 18, 2, SERIES[i]);
        nn_draw_text(c, bx + 28, y, t->names[p->cols[i]], 1, BLACK);
    }
}

static void draw_panel(nn_canvas *c, const nn_table *t, const panel *p, int left, int top)
{
    axes a = {left + LEFT, top + TOP, PANEL_W - LEFT - RIGHT, PANEL_H - TOP - BOTTOM,
              0, 0, 0, 0, p->log_scale};
    fit_ranges(t, p, &a);
    char title[280];
    snprintf(title, sizeof title, "%s%s", t->names[p->cols[0]], p->log_scale ? " (log)" : "");
    draw_axes(c, &a, title);
    for (int i = 0; i < p->n; i++)
        draw_series(c, &a, t, p->cols[i], SERIES[i]);
    draw_legend(c, &a, t, p);
}

void nn_plot_history_canvas(const nn_table *t, nn_canvas *c)
{
    panel *panels = nn_alloc((size_t)t->n_cols + 1, sizeof *panels);
    int n = plan_panels(t, panels);
    int cols = n < PANELS_PER_ROW ? (n ? n : 1) : PANELS_PER_ROW, rows = n ? (n + cols - 1) / cols : 1;
    nn_canvas_init(c, cols * PANEL_W, rows * PANEL_H, WHITE);
    if (n == 0)
        nn_draw_text(c, 20, PANEL_H / 2, "no epochs to draw yet", 2, BLACK);
    for (int i = 0; i < n; i++)
        draw_panel(c, t, &panels[i], (i % cols) * PANEL_W, (i / cols) * PANEL_H);
    free(panels);
}

int nn_plot_history(const nn_table *t, const char *path)
{
    nn_canvas c;
    nn_plot_history_canvas(t, &c);
    int rc = nn_canvas_save(&c, path);
    nn_canvas_free(&c);
    return rc;
}

int nn_plot_command(const nn_model *m, const nn_options *o)
{
    (void)m;
    nn_table t;
    if (nn_table_read_csv(o->history, &t) != 0)
        return -1;
    int rc = nn_plot_history(&t, o->out);
    if (rc == 0 && !o->quiet)
        printf("%s: %d epoch%s of %d column%s\n", o->out, t.n_rows, t.n_rows == 1 ? "" : "s",
               t.n_cols, t.n_cols == 1 ? "" : "s");
    nn_table_free(&t);
    return rc;
}

/* ---- the confusion matrix ------------------------------------------------------------------ */

#define CONFUSION_TOP 34
#define CONFUSION_PAD 12

/* Rows the true classes, columns the predicted ones (sklearn's layout); each
 * cell coloured by its count over the largest count through viridis, as
 * sklearn's ConfusionMatrixDisplay does, its count written in it. */
nn_confusion_layout nn_confusion_canvas(nn_canvas *c, const long *counts, int k,
                                        const char *const *names)
{
    int cell = k <= 12 ? 44 : k <= 40 ? 480 / k : 12, label_w = 0;
    char text[280];
    for (int i = 0; i < k; i++) {
        snprintf(text, sizeof text, "%d %s", i, names[i]);
        int w = nn_text_width(text, 1);
        label_w = w > label_w ? w : label_w;
    }
    nn_confusion_layout L = {CONFUSION_PAD + label_w + 8, CONFUSION_TOP + 14, cell};
    int width = L.x + k * cell + CONFUSION_PAD, height = L.y + k * cell + 30;
    const char *title = "true class (rows) by predicted class (columns)";
    int tw = nn_text_width(title, 1) + 2 * CONFUSION_PAD;
    nn_canvas_init(c, width > tw ? width : tw, height, WHITE);
    nn_draw_text(c, CONFUSION_PAD, 12, title, 1, BLACK);
    long most = 1;
    for (int i = 0; i < k * k; i++)
        most = counts[i] > most ? counts[i] : most;
    for (int i = 0; i < k; i++) {
        snprintf(text, sizeof text, "%d %s", i, names[i]);
        nn_draw_text(c, L.x - 8 - nn_text_width(text, 1), L.y + i * cell + cell / 2 - 3, text, 1,
                     BLACK);
        snprintf(text, sizeof text, "%d", i);
        nn_draw_text(c, L.x + i * cell + (cell - nn_text_width(text, 1)) / 2, L.y - 12, text, 1,
                     BLACK);
        for (int j = 0; j < k; j++) {
            double t = (double)counts[i * k + j] / (double)most;
            nn_fill_rect(c, L.x + j * cell, L.y + i * cell, cell, cell, nn_viridis(t));
            snprintf(text, sizeof text, "%ld", counts[i * k + j]);
            if (nn_text_width(text, 1) < cell - 2)
                nn_draw_text(c, L.x + j * cell + (cell - nn_text_width(text, 1)) / 2,
                             L.y + i * cell + cell / 2 - 3, text, 1, t < 0.5 ? WHITE : BLACK);
        }
    }
    nn_draw_text(c, L.x + (k * cell - nn_text_width("predicted class", 1)) / 2,
                 L.y + k * cell + 10, "predicted class", 1, BLACK);
    return L;
}
