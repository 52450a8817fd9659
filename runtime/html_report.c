/* html_report.c - train --report DIR: a static page of the run, rewritten
 * after every epoch, that opens from disk (no script, font or anything else
 * from the network):
 *
 *   DIR/index.html        settings, timings, the history table, the pictures
 *                         below, the confusion matrix as a table with each
 *                         class's precision and recall, the model summary
 *   DIR/curves.png        every logged column per epoch (plot.c)
 *   DIR/confusion.png     on the test data, else the validation data
 *   DIR/predictions.png   16 of those samples, spread over them, predicted
 *                         and true class, wrong ones framed in red
 *   DIR/maps_LAYER.png, DIR/maps_LAYER_viridis.png
 *                         the feature maps of the first sample, per
 *                         convolution or pooling layer, grey and viridis
 *
 * Every file is written beside its name and renamed over it (nn_png_save,
 * write_page), the page last: a browser reloading it mid-run sees one epoch
 * or the next, never a half-written file. The report keeps the history it
 * draws in memory (a table of whatever named values the loop passes), so it
 * follows the columns a run logs without knowing them. */
#include "rt.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define PREDICTION_SAMPLES 16

struct nn_report {
    char *dir;
    nn_table history;
    nn_dataset test;           /* the model file's test data, loaded here, or empty */
    const nn_dataset *eval;    /* what the confusion matrix and predictions show, or NULL */
    const char *eval_name;     /* "test" or "validation" */
    nn_batch batch;
    int *predicted;            /* per eval sample */
    float *prob;
    long *confusion;           /* classes x classes */
};

void nn_report_free(nn_report *r)
{
    if (!r)
        return;
    free(r->dir);
    nn_table_free(&r->history);
    nn_dataset_free(&r->test);
    nn_batch_free(&r->batch);
    free(r->predicted);
    free(r->prob);
    free(r->confusion);
    free(r);
}

static char *in_dir(const nn_report *r, const char *name)
{
    return nn_join_path(r->dir, name);
}

/* The samples the matrix and predictions need labels for; a model that
 * outputs numbers gets neither. */
static int choose_eval_data(nn_report *r, const nn_model *m, const nn_options *o,
                            const nn_dataset *train, const nn_dataset *val)
{
    if (nn_output_kind_of(m) == NN_OUTPUT_NUMBERS)
        return 0;
    if (m->data.test.format != NN_DATA_NONE) {
        if (nn_load_source(m, &m->data.test, o->data_dir, train, &r->test) != 0)
            return -1;
        nn_dataset_truncate(&r->test, o->limit);
        if (nn_check_labels(m, &r->test, m->layers[m->n_layers - 1].name) != 0)
            return -1;
        r->eval = &r->test, r->eval_name = "test";
    } else if (val && val->n > 0) {
        r->eval = val, r->eval_name = "validation";
    }
    if (r->eval && !r->eval->labels)
        r->eval = NULL;
    if (r->eval) {
        int k = nn_class_count(m);
        r->predicted = nn_alloc((size_t)r->eval->n, sizeof *r->predicted);
        r->prob = nn_alloc((size_t)r->eval->n, sizeof *r->prob);
        r->confusion = nn_alloc((size_t)k * (size_t)k, sizeof *r->confusion);
    }
    return 0;
}

static int report_begin(nn_report **out, const nn_model *m, const nn_options *o,
                        const nn_dataset *train, const nn_dataset *val)
{
    if (mkdir(o->report, 0777) != 0 && errno != EEXIST)
        return nn_error(o->report, "cannot make the report folder: %s", strerror(errno));
    nn_report *r = nn_alloc(1, sizeof *r);
    r->dir = nn_join_path(NULL, o->report);
    nn_batch_init(&r->batch, m, o->batch_size);
    *out = r;
    return choose_eval_data(r, m, o, train, val);
}

/* ---- predictions ----------------------------------------------------------------------- */

/* Every eval sample's predicted class into r, and the confusion counts. */
static int predict_eval(nn_report *r, const nn_model *m, float *params)
{
    const nn_dataset *d = r->eval;
    nn_batch *b = &r->batch;
    int k = nn_class_count(m);
    int *idx = nn_alloc((size_t)b->part, sizeof *idx);
    float *y = nn_alloc((size_t)b->part * (size_t)d->label_size, sizeof *y);
    float *probs = nn_alloc((size_t)m->output_size, sizeof *probs);
    memset(r->confusion, 0, (size_t)k * (size_t)k * sizeof *r->confusion);
    nn_pass pass = {0};
    int rc = 0;
    for (int start = 0; start < d->n && rc == 0; start += b->part) {
        int n = d->n - start < b->part ? d->n - start : b->part;
        for (int s = 0; s < n; s++)
            idx[s] = start + s;
        if ((rc = nn_dataset_batch(d, idx, n, m->data.rescale, b->x, y)) != 0)
            break;
        const float *out = m->forward(&pass, params, b->work, b->x, n);
        for (int s = 0; s < n; s++) {
            nn_output_probs(m, out + (size_t)s * (size_t)m->output_size, probs, 1);
            int p = nn_predicted_class(m, probs, &r->prob[start + s]);
            int truth = nn_label_class(y + (size_t)s * (size_t)d->label_size, d->label_size);
            r->predicted[start + s] = p;
            if (truth >= 0 && truth < k)
                r->confusion[truth * k + p]++;
        }
    }
    free(probs);
    free(y);
    free(idx);
    return rc;
}

static int truth_of(const nn_report *r, int i)
{
    const nn_dataset *d = r->eval;
    return nn_label_class(d->labels + (size_t)i * (size_t)d->label_size, d->label_size);
}

static int write_confusion_png(const nn_report *r, const nn_model *m)
{
    int k = nn_class_count(m);
    const char **names = nn_alloc((size_t)k, sizeof *names);
    char (*bufs)[16] = nn_alloc((size_t)k, sizeof *bufs);
    for (int i = 0; i < k; i++)
        names[i] = nn_class_label(m, r->eval, NULL, i, bufs[i], sizeof bufs[i]);
    nn_canvas c;
    nn_confusion_canvas(&c, r->confusion, k, names);
    char *path = in_dir(r, "confusion.png");
    int rc = nn_canvas_save(&c, path);
    free(path);
    nn_canvas_free(&c);
    free(bufs);
    free(names);
    return rc;
}

/* 16 samples spread evenly over the data (a class folder's set is sorted
 * by class: its first 16 would all be one class), captioned "Coat 0.93"
 * and "true: Shirt". */
static int write_predictions_png(const nn_report *r, const nn_model *m)
{
    int n = r->eval->n < PREDICTION_SAMPLES ? r->eval->n : PREDICTION_SAMPLES;
    int *idx = nn_alloc((size_t)n, sizeof *idx);
    for (int i = 0; i < n; i++)
        idx[i] = (int)((long long)i * r->eval->n / n);
    float *images = nn_alloc((size_t)n * (size_t)m->input_size, sizeof *images);
    const char **captions = nn_alloc((size_t)n * 2, sizeof *captions);
    char (*text)[2][80] = nn_alloc((size_t)n, sizeof *text);
    bool *wrong = nn_alloc((size_t)n, sizeof *wrong);
    int rc = nn_dataset_batch(r->eval, idx, n, m->data.rescale, images, NULL);
    for (int i = 0; i < n && rc == 0; i++) {
        char b1[16], b2[16];
        int k = idx[i], truth = truth_of(r, k);
        snprintf(text[i][0], 80, "%s %.2f", nn_class_label(m, r->eval, NULL, r->predicted[k], b1,
                                                           sizeof b1), (double)r->prob[k]);
        snprintf(text[i][1], 80, "true: %s", nn_class_label(m, r->eval, NULL, truth, b2, sizeof b2));
        captions[2 * i] = text[i][0], captions[2 * i + 1] = text[i][1];
        wrong[i] = truth != r->predicted[k];
    }
    if (rc == 0) {
        float lo = INFINITY, hi = -INFINITY;
        for (size_t i = 0; i < (size_t)n * (size_t)m->input_size; i++)
            lo = fminf(lo, images[i]), hi = fmaxf(hi, images[i]);
        nn_sample_grid g = {n, 0, 0, 0, images, lo, hi, captions, wrong};
        nn_input_image_shape(m, &g.h, &g.w, &g.c);
        nn_canvas c;
        nn_draw_sample_grid(&c, &g);
        char *path = in_dir(r, "predictions.png");
        rc = nn_canvas_save(&c, path);
        free(path);
        nn_canvas_free(&c);
    }
    free(wrong);
    free(text);
    free(captions);
    free(images);
    free(idx);
    return rc;
}

/* The feature maps of the first eval sample (else a grey image), grey and viridis. */
static int write_feature_maps(nn_report *r, const nn_model *m, float *params)
{
    nn_batch *b = &r->batch;
    int first = 0;
    if (r->eval && nn_dataset_batch(r->eval, &first, 1, m->data.rescale, b->x, NULL) != 0)
        return -1;
    if (!r->eval)
        for (int i = 0; i < m->input_size; i++)
            b->x[i] = 0.5f;
    nn_pass pass = {0};
    m->forward(&pass, params, b->work, b->x, 1);
    int rc = 0;
    for (int l = 0; l < m->n_layers && rc == 0; l++) {
        const nn_layer *L = &m->layers[l];
        if (!L->is_feature_map)
            continue;
        int scale = L->shape[1] >= 64 ? 1 : (64 + L->shape[1] - 1) / L->shape[1];
        for (int viridis = 0; viridis < 2 && rc == 0; viridis++) {
            char name[300];
            snprintf(name, sizeof name, "maps_%s%s.png", L->name, viridis ? "_viridis" : "");
            char *path = in_dir(r, name);
            rc = nn_write_feature_grid(path, b->work + m->scratch_floats + L->out_offset,
                                       L->shape[0], L->shape[1], L->shape[2], scale, viridis);
            free(path);
        }
    }
    return rc;
}

/* ---- the page ------------------------------------------------------------------------------ */

static void put_escaped(FILE *f, const char *s)
{
    for (; *s; s++)
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
}

static void put_row(FILE *f, const char *key, const char *value)
{
    fputs("<tr><th>", f);
    put_escaped(f, key);
    fputs("</th><td>", f);
    put_escaped(f, value);
    fputs("</td></tr>\n", f);
}

static void put_settings(FILE *f, const nn_report *r, const nn_model *m, const nn_options *o,
                         int epoch)
{
    char v[256];
    fputs("<h2>Settings and timings</h2>\n<table class=\"kv\">\n", f);
    put_row(f, "model file", m->data.model_file ? m->data.model_file : m->name);
    snprintf(v, sizeof v, "%d of %d%s", epoch + 1, o->epochs, o->resume ? " (resumed)" : "");
    put_row(f, "epochs done", v);
    snprintf(v, sizeof v, "%d", o->batch_size);
    put_row(f, "batch size", v);
    snprintf(v, sizeof v, "%g", (double)(o->learning_rate > 0 ? o->learning_rate
                                                               : m->optimizer.learning_rate));
    put_row(f, "learning rate", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)(o->has_seed ? o->seed : m->fit.seed));
    put_row(f, "seed", v);
    put_row(f, "shuffle", o->shuffle ? "yes" : "no");
    if (m->fit.steps_per_epoch) {
        snprintf(v, sizeof v, "%d", m->fit.steps_per_epoch);
        put_row(f, "steps per epoch", v);
    }
    if (o->limit) {
        snprintf(v, sizeof v, "the first %d samples", o->limit);
        put_row(f, "--limit", v);
    }
    if (r->eval) {
        snprintf(v, sizeof v, "%d %s samples (%s)", r->eval->n, r->eval_name,
                 r->eval->origin ? r->eval->origin : "");
        put_row(f, "evaluated on", v);
    }
    int sec = -1;
    double total = 0;
    for (int c = 0; c < r->history.n_cols; c++)
        sec = strcmp(r->history.names[c], "seconds") == 0 ? c : sec;
    for (int row = 0; sec >= 0 && row < r->history.n_rows; row++)
        total += r->history.values[(size_t)row * (size_t)r->history.n_cols + (size_t)sec];
    snprintf(v, sizeof v, "%.1f s in %d epoch%s (%.1f s an epoch; the history's seconds)",
             total, r->history.n_rows, r->history.n_rows == 1 ? "" : "s",
             r->history.n_rows ? total / r->history.n_rows : 0.0);
    put_row(f, "training time", v);
    time_t now = time(NULL);
    strftime(v, sizeof v, "%Y-%m-%d %H:%M:%S UTC", gmtime(&now));
    put_row(f, "written", v);
    fputs("</table>\n", f);
}

static void put_history(FILE *f, const nn_table *t)
{
    fputs("<h2>History</h2>\n<p><img src=\"curves.png\" alt=\"training curves\"></p>\n"
          "<table>\n<tr>", f);
    for (int c = 0; c < t->n_cols; c++) {
        fputs("<th>", f);
        put_escaped(f, t->names[c]);
        fputs("</th>", f);
    }
    fputs("</tr>\n", f);
    for (int row = 0; row < t->n_rows; row++) {
        fputs("<tr>", f);
        for (int c = 0; c < t->n_cols; c++) {
            double v = t->values[(size_t)row * (size_t)t->n_cols + (size_t)c];
            if (isnan(v))
                fputs("<td></td>", f);
            else
                fprintf(f, v == floor(v) && fabs(v) < 1e9 ? "<td>%.0f</td>" : "<td>%.4f</td>", v);
        }
        fputs("</tr>\n", f);
    }
    fputs("</table>\n", f);
}

/* sklearn's confusion_matrix and classification_report's precision and recall. */
static void put_confusion(FILE *f, const nn_report *r, const nn_model *m)
{
    int k = nn_class_count(m);
    long total = 0, right = 0;
    fprintf(f, "<h2>Confusion matrix (%s data)</h2>\n<p><img src=\"confusion.png\" "
               "alt=\"confusion matrix\"></p>\n<table>\n<tr><th>true \\ predicted</th>",
            r->eval_name);
    char buf[16];
    for (int j = 0; j < k; j++)
        fprintf(f, "<th>%d</th>", j);
    fputs("<th>recall</th></tr>\n", f);
    for (int i = 0; i < k; i++) {
        long row = 0;
        fprintf(f, "<tr><th>%d ", i);
        put_escaped(f, nn_class_label(m, r->eval, NULL, i, buf, sizeof buf));
        fputs("</th>", f);
        for (int j = 0; j < k; j++) {
            long v = r->confusion[i * k + j];
            row += v;
            fprintf(f, i == j ? "<td class=\"diag\">%ld</td>" : "<td>%ld</td>", v);
        }
        total += row, right += r->confusion[i * k + i];
        fprintf(f, row ? "<td>%.4f</td></tr>\n" : "<td></td></tr>\n",
                row ? (double)r->confusion[i * k + i] / (double)row : 0.0);
    }
    fputs("<tr><th>precision</th>", f);
    for (int j = 0; j < k; j++) {
        long col = 0;
        for (int i = 0; i < k; i++)
            col += r->confusion[i * k + j];
        fprintf(f, col ? "<td>%.4f</td>" : "<td></td>", col ? (double)r->confusion[j * k + j] / col : 0.0);
    }
    fprintf(f, "<td></td></tr>\n</table>\n<p>accuracy %.4f (%ld of %ld)</p>\n",
            total ? (double)right / total : 0.0, right, total);
    int h, w, c;
    if (nn_input_image_shape(m, &h, &w, &c))
        fprintf(f, "<h2>Predictions (%s samples)</h2>\n<p>Predicted class and its "
                   "probability, then the true class; wrong ones in red.</p>\n<p><img "
                   "src=\"predictions.png\" alt=\"predictions\"></p>\n", r->eval_name);
}

static void put_feature_maps(FILE *f, const nn_report *r, const nn_model *m)
{
    bool any = false;
    for (int l = 0; l < m->n_layers; l++) {
        const nn_layer *L = &m->layers[l];
        if (!L->is_feature_map)
            continue;
        if (!any)
            fprintf(f, "<h2>Feature maps (the first %s sample)</h2>\n",
                    r->eval ? r->eval_name : "grey");
        any = true;
        fputs("<h3>", f);
        put_escaped(f, L->name);
        fprintf(f, " (%s) %dx%dx%d</h3>\n<p>", L->type, L->shape[0], L->shape[1], L->shape[2]);
        for (int viridis = 0; viridis < 2; viridis++) {
            fputs("<img class=\"map\" src=\"maps_", f);
            put_escaped(f, L->name);
            fprintf(f, "%s.png\" alt=\"feature maps\"> ", viridis ? "_viridis" : "");
        }
        fputs("</p>\n", f);
    }
}

static void put_summary(FILE *f, const nn_model *m)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem)
        return;
    nn_model_summary(mem, m);
    fclose(mem);
    fputs("<h2>Model</h2>\n<pre>", f);
    put_escaped(f, text);
    fputs("</pre>\n", f);
    free(text);
}

static const char STYLE[] =
    "body{font-family:sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0}"
    "td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}"
    "table.kv th,table.kv td{text-align:left}"
    "td.diag{background:#e8f0e0}"
    "img{border:1px solid #ddd;max-width:100%;image-rendering:pixelated}"
    "img.map{max-width:min(480px,48%)}"
    "pre{background:#f6f6f6;padding:1em;overflow:auto}";

static int write_page(const nn_report *r, const nn_model *m, const nn_options *o, int epoch)
{
    char *path = in_dir(r, "index.html"), *tmp = in_dir(r, "index.html.tmp");
    FILE *f = fopen(tmp, "w");
    int rc = 0;
    if (!f) {
        rc = nn_error(tmp, "cannot write the report: %s", strerror(errno));
    } else {
        fputs("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>", f);
        put_escaped(f, m->name);
        fprintf(f, " - training report</title>\n<style>%s</style>\n</head>\n<body>\n<h1>", STYLE);
        put_escaped(f, m->name);
        fprintf(f, "</h1>\n<p>After epoch %d of %d. This page is rewritten after every epoch: "
                   "reload it to follow the run.</p>\n", epoch + 1, o->epochs);
        put_history(f, &r->history);
        if (r->eval)
            put_confusion(f, r, m);
        put_feature_maps(f, r, m);
        put_settings(f, r, m, o, epoch);
        put_summary(f, m);
        fputs("</body>\n</html>\n", f);
        if (ferror(f) | fclose(f) || rename(tmp, path) != 0) {
            remove(tmp);
            rc = nn_error(path, "cannot write the report");
        }
    }
    free(tmp);
    free(path);
    return rc;
}

/* ---- after an epoch --------------------------------------------------------------------------- */

int nn_report_epoch(nn_report **r, const nn_model *m, const nn_options *o, float *params,
                    const nn_dataset *train, const nn_dataset *val, int epoch,
                    const char *const *names, const double *values, int n, double seconds)
{
    if (!o->report)
        return 0;
    if (!*r && report_begin(r, m, o, train, val) != 0)
        return -1;
    nn_report *rep = *r;
    const char **row_names = nn_alloc((size_t)n + 2, sizeof *row_names);
    double *row = nn_alloc((size_t)n + 2, sizeof *row);
    row_names[0] = "epoch", row[0] = epoch + 1;
    for (int i = 0; i < n; i++)
        row_names[i + 1] = names[i], row[i + 1] = values[i];
    row_names[n + 1] = "seconds", row[n + 1] = seconds;
    nn_table_add_row(&rep->history, row_names, row, n + 2);
    free(row);
    free(row_names);
    char *curves = in_dir(rep, "curves.png");
    int rc = nn_plot_history(&rep->history, curves);
    free(curves);
    if (rc == 0 && rep->eval)
        rc = predict_eval(rep, m, params);
    int h, w, c;
    if (rc == 0 && rep->eval)
        rc = write_confusion_png(rep, m);
    if (rc == 0 && rep->eval && nn_input_image_shape(m, &h, &w, &c))
        rc = write_predictions_png(rep, m);
    if (rc == 0)
        rc = write_feature_maps(rep, m, params);
    if (rc == 0)
        rc = write_page(rep, m, o, epoch);
    return rc;
}
