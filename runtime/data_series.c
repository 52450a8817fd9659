/* data_series.c - a time series as windows: the course's windowed_dataset.
 *
 * One column of a CSV file (records.c) is the series. Each sample is
 * window_size consecutive values and its label the `horizon` values after
 * them; a window starts every `shift` values (the course: shift 1, horizon 1).
 * split_time divides the series as the course does (x_train = series[:split],
 * x_valid = series[split:]): the training windows lie wholly before it, the
 * validation windows are those whose labels start at or after it, so they
 * begin window_size values earlier, as model_forecast's do.
 */
#include "rt.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static int column_of(const nn_source *src, const nn_records *r, const char *path)
{
    if (src->column)
        return nn_records_field(r, path, src->column, "series");
    int col = src->column_index < 0 ? r->n_fields + src->column_index : src->column_index;
    if (col < 0 || col >= r->n_fields)
        return nn_error(path, "column %d is outside the file's %d columns", src->column_index,
                        r->n_fields);
    return col;
}

int nn_read_series(const nn_source *src, const char *path, float **values, int *n)
{
    nn_records r;
    if (nn_read_records(path, &r) < 0)
        return -1;
    int col = column_of(src, &r, path), rc = col < 0 ? -1 : 0;
    float *v = nn_alloc((size_t)r.n + 1, sizeof *v);
    for (int i = 0; rc == 0 && i < r.n; i++) {
        const char *cell = r.cells[(size_t)i * (size_t)r.n_fields + (size_t)col];
        char *end;
        double x = strtod(cell, &end);
        if (end == cell || *end || !isfinite(x) || fabs(x) > FLT_MAX) {
            char place[4200];
            snprintf(place, sizeof place, "%s:%ld", path, r.lines[i]);
            rc = nn_error(place, "'%.40s' in column '%s' is not a number", cell, r.names[col]);
        }
        v[i] = (float)x;
    }
    *n = r.n;
    nn_records_free(&r);
    if (rc < 0)
        free(v);
    else
        *values = v;
    return rc;
}

/* The values [from, to) of the series that the part reads. */
static void part_bounds(const nn_source *src, nn_series_part part, int n, int *from, int *to)
{
    int split = src->split_time >= 0 && src->split_time < n ? src->split_time : n;
    *from = 0, *to = n;
    if (part == NN_SERIES_BEFORE_SPLIT)
        *to = split;
    else if (part == NN_SERIES_AFTER_SPLIT)
        *from = split - src->window_size > 0 ? split - src->window_size : 0;
}

/* Each window is a copy: n values make about n windows of w values, so the
 * memory is w times the series' (allocated by name, where it may lack). */
static int fill_windows(const nn_source *src, const char *path, const float *v, int from, int to,
                        nn_dataset *d)
{
    int w = src->window_size, h = src->horizon;
    d->n = (to - from - w - h) / src->shift + 1;
    d->h = d->w = 1;
    d->c = d->sample_size = w;
    d->label_size = h;
    d->floats = nn_alloc_for(path, "the windows", (size_t)d->n * (size_t)w, sizeof *d->floats);
    d->labels = nn_alloc_for(path, "the windows' labels", (size_t)d->n * (size_t)h,
                             sizeof *d->labels);
    if (!d->floats || !d->labels)
        return -1;
    for (int i = 0; i < d->n; i++) {
        const float *start = v + from + (size_t)i * (size_t)src->shift;
        memcpy(d->floats + (size_t)i * (size_t)w, start, (size_t)w * sizeof *start);
        memcpy(d->labels + (size_t)i * (size_t)h, start + w, (size_t)h * sizeof *start);
    }
    return 0;
}

int nn_load_series(const nn_source *src, const char *path, nn_series_part part, nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    float *v;
    int n;
    if (nn_read_series(src, path, &v, &n) < 0)
        return -1;
    int from, to, rc = 0;
    part_bounds(src, part, n, &from, &to);
    if (to - from < src->window_size + src->horizon)
        rc = nn_error(path, "%d values%s: too few for one window of %d and its %d label%s",
                      to - from, part == NN_SERIES_ALL ? "" : part == NN_SERIES_BEFORE_SPLIT
                      ? " before split_time" : " from split_time - window_size on",
                      src->window_size, src->horizon, src->horizon == 1 ? "" : "s");
    else
        rc = fill_windows(src, path, v, from, to, d);
    free(v);
    if (rc == 0)
        d->origin = nn_join_path(NULL, path);
    else
        nn_dataset_free(d);
    return rc;
}
