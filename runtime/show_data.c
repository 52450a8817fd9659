/* show_data.c - `show-data`: the samples a model learns from, as the course
 * looks at them with plt.imshow: a grid of the first N images of a split,
 * after rescale and resize, each with its class name under it; with
 * --augmented, N draws of ImageDataGenerator's transformations of the first
 * image. The grid itself (nn_draw_sample_grid) also shows train --report's
 * predictions.
 *
 * A series' samples are windows, drawn as line plots (the window, then the
 * values it is labelled with in another colour); a text's are rows of word
 * ids, shown as the words the vocabulary gives them, with their class. */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A sample's picture is drawn this many pixels across, at least (small
 * images enlarged by whole factors) or at most (large ones shrunk). */
#define SAMPLE_PX 96
#define CAPTION_LINES 2
#define GAP 8
#define MAX_GRID_COLUMNS 8

static const nn_rgb WHITE = {255, 255, 255}, BLACK = {0, 0, 0};

static int sample_px(int w)
{
    return w >= SAMPLE_PX ? SAMPLE_PX : w * (SAMPLE_PX / w);
}

/* The caption, cut to the cell's width, centred under it. */
static void draw_caption(nn_canvas *c, int x, int y, int width, const char *text, nn_rgb col)
{
    char line[64];
    snprintf(line, sizeof line, "%s", text);
    for (size_t n = strlen(line); n > 1 && nn_text_width(line, 1) > width; n--)
        line[n - 1] = '\0';
    nn_draw_text(c, x + (width - nn_text_width(line, 1)) / 2, y, line, 1, col);
}

void nn_draw_sample_grid(nn_canvas *c, const nn_sample_grid *g)
{
    int cols = g->n < MAX_GRID_COLUMNS ? g->n : MAX_GRID_COLUMNS;
    cols = cols > 0 ? cols : 1;
    int rows = (g->n + cols - 1) / cols, cw = sample_px(g->w);
    int ch = (int)lround((double)cw * g->h / g->w);
    int cell_w = cw + GAP, cell_h = ch + GAP / 2 + CAPTION_LINES * 11 + GAP;
    nn_canvas_init(c, cols * cell_w + GAP, rows * cell_h + GAP, WHITE);
    size_t size = (size_t)g->h * (size_t)g->w * (size_t)g->c;
    for (int i = 0; i < g->n; i++) {
        int x = GAP + (i % cols) * cell_w, y = GAP + (i / cols) * cell_h;
        nn_draw_image(c, x, y, g->images + (size_t)i * size, g->h, g->w, g->c, g->lo, g->hi, ch, cw);
        nn_rgb col = g->wrong && g->wrong[i] ? (nn_rgb){214, 39, 40} : BLACK;
        if (g->wrong && g->wrong[i])
            for (int k = 1; k <= 2; k++)
                nn_frame_rect(c, x - k, y - k, cw + 2 * k, ch + 2 * k, col);
        for (int l = 0; l < CAPTION_LINES; l++)
            if (g->captions[i * CAPTION_LINES + l])
                draw_caption(c, x, y + ch + GAP / 2 + 11 * l, cw,
                             g->captions[i * CAPTION_LINES + l], col);
    }
}

bool nn_input_image_shape(const nn_model *m, int *h, int *w, int *c)
{
    if (m->input_rank < 2 || m->input_rank > 3)
        return false;
    *h = m->input_shape[0], *w = m->input_shape[1];
    *c = m->input_rank == 3 ? m->input_shape[2] : 1;
    return true;
}

/* ---- show-data ----------------------------------------------------------------------- */

/* The split as train and evaluate take it: a source of the model file, or
 * the validation_split tail of the training data. */
static int load_split(const nn_model *m, const nn_options *o, nn_dataset *d)
{
    const nn_data *data = &m->data;
    const char *split = o->split ? o->split : "train";
    const nn_source *src = strcmp(split, "train") == 0        ? &data->train
                           : strcmp(split, "validation") == 0 ? &data->validation
                                                              : &data->test;
    if (src->format != NN_DATA_NONE)
        return nn_load_source(m, src, o->data_dir, NULL, d);
    if (src == &data->validation && data->validation_split > 0 &&
        data->train.format != NN_DATA_NONE) {
        nn_dataset train;
        if (nn_load_source(m, &data->train, o->data_dir, NULL, &train) != 0)
            return -1;
        int rc = nn_dataset_split(&train, data->validation_split, d);
        nn_dataset_free(&train);
        return rc;
    }
    return nn_error(data->model_file, "the model file gives no %s data", split);
}

const char *nn_class_label(const nn_model *m, const nn_dataset *d, const nn_meta *meta, int k,
                           char *buf, size_t len)
{
    if (d && d->class_names && k >= 0 && k < d->n_classes)
        return d->class_names[k];
    if (meta && k >= 0 && k < meta->n_classes)
        return meta->class_names[k];
    if (k >= 0 && k < m->data.n_class_names)
        return m->data.class_names[k];
    snprintf(buf, len, "%d", k);
    return buf;
}

int nn_label_class(const float *y, int size)
{
    return size == 1 ? (int)lroundf(y[0]) : nn_argmax(y, size);
}

/* The lowest and highest value of the n numbers: the grey levels' ends. */
static void value_range(const float *x, size_t n, float *lo, float *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < n; i++)
        *lo = fminf(*lo, x[i]), *hi = fmaxf(*hi, x[i]);
}

/* The samples into g: the first `count`, or `count` augmented draws of the first. */
static int fill_grid(const nn_model *m, const nn_options *o, const nn_dataset *d, int count,
                     float *images, nn_sample_grid *g, char (*names)[64])
{
    size_t size = (size_t)m->input_size;
    int *idx = nn_alloc((size_t)count, sizeof *idx);
    for (int i = 0; i < count; i++)
        idx[i] = o->augmented ? 0 : i;
    float *y = nn_alloc((size_t)count * (size_t)(d->label_size ? d->label_size : 1), sizeof *y);
    int rc = nn_dataset_batch(d, idx, count, m->data.rescale, images, d->labels ? y : NULL);
    uint64_t seed = o->has_seed ? o->seed : m->fit.seed;
    for (int i = 0; rc == 0 && o->augmented && i < count; i++)
        nn_augment_batch(&m->data.augment, images + i * size, 1, g->h, g->w, g->c, seed,
                         (uint64_t)i, 0);
    for (int i = 0; rc == 0 && i < count; i++) {
        char buf[16];
        if (d->labels)
            snprintf(names[i], 64, "%s", nn_class_label(m, d, NULL, nn_label_class(y + (size_t)i *
                                                        d->label_size, d->label_size), buf,
                                                        sizeof buf));
        else
            snprintf(names[i], 64, "sample %d", i);
        g->captions[i * CAPTION_LINES] = names[i];
    }
    value_range(images, (size_t)count * size, &g->lo, &g->hi);
    free(y);
    free(idx);
    return rc;
}

/* ---- series and text ------------------------------------------------------------------- */

#define WINDOW_W 200
#define WINDOW_H 80
#define WINDOW_COLUMNS 4
#define TEXT_CHARS 100
static const nn_rgb BLUE = {31, 119, 180}, ORANGE = {255, 127, 14};

/* Point k of a window of n (values lo..hi bottom to top) in the panel at (x, y). */
static void window_point(int x, int y, int k, int n, float v, float lo, float hi, int *px, int *py)
{
    double t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    *px = x + (int)lround((double)k * (WINDOW_W - 1) / (n > 1 ? n - 1 : 1));
    *py = y + WINDOW_H - 1 - (int)lround(t * (WINDOW_H - 1));
}

/* A window's w values in blue, then its h label values in orange, joined by lines. */
void nn_draw_window(nn_canvas *c, int x, int y, const float *v, int w, const float *label, int h,
                    float lo, float hi)
{
    nn_frame_rect(c, x - 1, y - 1, WINDOW_W + 2, WINDOW_H + 2, BLACK);
    int n = w + h, x0 = 0, y0 = 0;
    for (int k = 0; k < n; k++) {
        int x1, y1;
        window_point(x, y, k, n, k < w ? v[k] : label[k - w], lo, hi, &x1, &y1);
        if (k > 0)
            nn_draw_line(c, x0, y0, x1, y1, k < w ? BLUE : ORANGE);
        nn_put_pixel(c, x1, y1, k < w ? BLUE : ORANGE);
        x0 = x1, y0 = y1;
    }
}

static int show_series(const nn_dataset *d, int count, const char *path)
{
    int w = d->sample_size, h = d->label_size, cols = count < WINDOW_COLUMNS ? count : WINDOW_COLUMNS;
    int rows = (count + cols - 1) / cols, cell_w = WINDOW_W + 2 * GAP, cell_h = WINDOW_H + 11 + 2 * GAP;
    float lo, hi, llo, lhi;
    value_range(d->floats, (size_t)count * (size_t)w, &lo, &hi);
    value_range(d->labels, (size_t)count * (size_t)h, &llo, &lhi);
    lo = fminf(lo, llo), hi = fmaxf(hi, lhi);
    nn_canvas c;
    nn_canvas_init(&c, cols * cell_w + GAP, rows * cell_h + GAP, WHITE);
    for (int i = 0; i < count; i++) {
        int x = GAP + (i % cols) * cell_w, y = GAP + (i / cols) * cell_h;
        nn_draw_window(&c, x, y, d->floats + (size_t)i * (size_t)w, w,
                       d->labels + (size_t)i * (size_t)h, h, lo, hi);
        char caption[64];
        snprintf(caption, sizeof caption, "window %d, next %g", i, (double)d->labels[(size_t)i * h]);
        draw_caption(&c, x, y + WINDOW_H + 4, WINDOW_W, caption, BLACK);
    }
    int rc = nn_canvas_save(&c, path);
    nn_canvas_free(&c);
    return rc;
}

void nn_decode_ids(const nn_vocab *v, const float *ids, int n, char *out, size_t len)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n && used + 1 < len; i++) {
        int id = (int)ids[i];
        if (id <= 0)
            continue;
        const char *word = v && id <= v->n ? v->words[id - 1] : "?";
        int wrote = snprintf(out + used, len - used, "%s%s", used ? " " : "", word);
        used += wrote > 0 ? (size_t)wrote : 0;
    }
    if (used >= len)
        out[len - 1] = '\0';
}

static int show_text(const nn_model *m, const nn_dataset *d, int count, const char *path)
{
    int line_h = NN_TEXT_HEIGHT + 4;
    nn_canvas c;
    nn_canvas_init(&c, 2 * GAP + nn_text_width("m", 1) * TEXT_CHARS, 2 * GAP + count * line_h, WHITE);
    char *words = nn_alloc((size_t)d->sample_size * 64 + 1, 1);
    for (int i = 0; i < count; i++) {
        char label[16], line[TEXT_CHARS + 1];
        const char *name = d->labels ? nn_class_label(m, d, NULL, nn_label_class(d->labels + i,
                                                      1), label, sizeof label) : "";
        nn_decode_ids(d->vocab, d->floats + (size_t)i * (size_t)d->sample_size, d->sample_size,
                      words, (size_t)d->sample_size * 64 + 1);
        snprintf(line, sizeof line, "%s: %s", name, words);
        nn_draw_text(&c, GAP, GAP + i * line_h, line, 1, BLACK);
    }
    free(words);
    int rc = nn_canvas_save(&c, path);
    nn_canvas_free(&c);
    return rc;
}

/* A series or a text split: true when it is one (*rc the result). */
static bool show_sequence(const nn_model *m, const nn_options *o, int *rc)
{
    nn_data_format f = m->data.train.format;
    if (f != NN_DATA_SERIES && f != NN_DATA_TEXT)
        return false;
    nn_dataset d = {0};
    *rc = load_split(m, o, &d);
    int count = o->count ? o->count : 16;
    count = count <= d.n ? count : d.n;
    if (*rc == 0 && count == 0)
        *rc = nn_error(d.origin, "holds no samples");
    if (*rc == 0)
        *rc = f == NN_DATA_SERIES ? show_series(&d, count, o->out) : show_text(m, &d, count, o->out);
    if (*rc == 0 && !o->quiet)
        printf("%s: the first %d %s samples\n", o->out, count, o->split ? o->split : "train");
    nn_dataset_free(&d);
    return true;
}

int nn_show_data(const nn_model *m, const nn_options *o)
{
    int h, w, c, shown;
    if (show_sequence(m, o, &shown))
        return shown;
    if (!nn_input_image_shape(m, &h, &w, &c))
        return nn_error(m->name, "show-data draws images, series and texts, and this model's "
                                 "input is a vector of %d number%s", m->input_size,
                        m->input_size == 1 ? "" : "s");
    if (o->augmented && !nn_augment_active(&m->data.augment))
        return nn_error(m->data.model_file, "--augmented: the model file's data: augment: "
                                            "gives no transformation");
    nn_dataset d = {0};
    if (load_split(m, o, &d) != 0)
        return -1;
    int count = o->count ? o->count : 16;
    count = o->augmented || count <= d.n ? count : d.n;
    nn_sample_grid g = {.n = count, .h = h, .w = w, .c = c};
    float *images = nn_alloc((size_t)count * (size_t)m->input_size, sizeof *images);
    g.images = images;
    g.captions = nn_alloc((size_t)count * CAPTION_LINES, sizeof *g.captions);
    char (*names)[64] = nn_alloc((size_t)count, sizeof *names);
    int rc = count > 0 && d.n > 0 ? fill_grid(m, o, &d, count, images, &g, names)
                                  : nn_error(d.origin, "holds no samples");
    if (rc == 0) {
        nn_canvas c;
        nn_draw_sample_grid(&c, &g);
        rc = nn_canvas_save(&c, o->out);
        nn_canvas_free(&c);
    }
    const char *split = o->split ? o->split : "train";
    if (rc == 0 && !o->quiet && o->augmented)
        printf("%s: %d augmented draws of the first %s sample\n", o->out, count, split);
    else if (rc == 0 && !o->quiet)
        printf("%s: the first %d %s samples\n", o->out, count, split);
    free(names);
    free(g.captions);
    free(images);
    nn_dataset_free(&d);
    return rc;
}
