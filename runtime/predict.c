/* predict.c - the commands that run a model without training it (predict,
 * activations) and init, which writes the initial weights.
 *
 * predict prints one record per input. Inputs are image files, folders of
 * them, CSV files with the training CSV's columns, rows of numbers written on
 * the command line ("1.5,2.0"), sentences for a text model, an .npy array, a
 * series to forecast (--series), or the model file's predict: list. A classifier's record is its class and that class's probability
 * (for a single sigmoid unit, 1 - p when it says class 0), named from the
 * training set's class folders, else the weight file's meta.class_names, else
 * the model file's class_names; --all adds the output vector, and --format
 * csv|json writes records for scripts (docs/commands.md). A model whose
 * output is an image (a denoiser) writes each input and its output side by
 * side as a PNG file in --out DIR instead; --npy X.npy --out Y.npy writes any
 * output shape, [N, ...the output's shape]. */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <errno.h>

typedef struct {
    const nn_model *m;
    const nn_options *o;
    float *params;
    nn_batch b;
    nn_meta names;         /* the class names (and a text model's vocabulary), or none */
    nn_vocab *vocab;       /* a text model's, from names.vocabulary, or NULL */
    float *probs;          /* one input's outputs, as probabilities where the loss fuses */
    bool header_done;      /* --format csv: the header is out */
    bool resize_said;      /* the one notice of a resized image */
} Predictor;

/* ---- weights and class names ---------------------------------------------------- */

/* --weights, or else the initial weights: what a model whose weights are all
 * given in the model file (a hand-made filter) needs, and a warning otherwise. */
static int weights_for(const nn_model *m, const nn_options *o, float *params, nn_meta *meta)
{
    if (o->weights)
        return nn_load_weights(m, o->weights, params, meta, NULL, NULL);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].init != NN_INIT_VALUES) {
            nn_warning(o->program, "no --weights: using the untrained initial weights");
            break;
        }
    nn_init_params(m, params, o->has_seed ? o->seed : m->fit.seed);
    return 0;
}

/* The training set's class folders, where --data or the model says they
 * are; none (0) where they are not, as on another machine. */
static int folder_classes(const nn_model *m, const char *data_dir, char ***names)
{
    *names = NULL;
    if (m->data.train.format != NN_DATA_IMAGE_DIR)
        return 0;
    char *dir = nn_find_data(m, data_dir, NULL, m->data.train.path);
    struct stat st;
    int n = dir && stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? nn_list_classes(dir, names) : 0;
    free(dir);
    return n > 0 ? n : 0;
}

static void free_names(char **names, int n)
{
    for (int k = 0; k < n; k++)
        free(names[k]);
    free(names);
}

/* The data's names (folders or data: class_names) into meta, unless the
 * folders are missing and meta already holds the weight file's. */
static void choose_names(const nn_model *m, const char *data_dir, nn_meta *meta)
{
    char **folders;
    int n = folder_classes(m, data_dir, &folders);
    if (n > 0 || meta->n_classes == 0)
        nn_meta_set_classes(meta, m, folders, n);
    free_names(folders, n);
}

static int predictor_init(Predictor *p, const nn_model *m, const nn_options *o, int capacity)
{
    *p = (Predictor){.m = m, .o = o};
    p->params = nn_alloc(m->n_params, sizeof *p->params);
    p->probs = nn_alloc((size_t)m->output_size, sizeof *p->probs);
    nn_batch_init(&p->b, m, capacity);
    if (weights_for(m, o, p->params, &p->names) != 0)
        return -1;
    if (p->names.n_words > 0)
        p->vocab = nn_vocab_from_words(p->names.vocabulary, p->names.n_words);
    choose_names(m, o->data_dir, &p->names);
    return 0;
}

static void predictor_free(Predictor *p)
{
    nn_vocab_free(p->vocab);
    nn_meta_free(&p->names);
    nn_batch_free(&p->b);
    free(p->params);
    free(p->probs);
}

/* ---- records ------------------------------------------------------------------------ */

static const char *class_label(const Predictor *p, int k, char *buf, size_t len)
{
    if (k < p->names.n_classes)
        return p->names.class_names[k];
    snprintf(buf, len, "%d", k);
    return buf;
}

/* `a.png: dogs 0.8000`, with --all `a.png: dogs 0.8000 [0.2000 0.8000]`;
 * numbers (a regression) as `1.5,2: 3.1416`. */
static void print_text(const Predictor *p, const char *input, int k, const char *name, float prob)
{
    printf("%s:", input);
    if (k >= 0)
        printf(" %s %.4f", name, prob);
    if (k >= 0 && !p->o->all) {
        printf("\n");
        return;
    }
    for (int j = 0; j < p->m->output_size; j++)
        printf(k >= 0 && j == 0 ? " [%.4f" : " %.4f", p->probs[j]);
    printf(k >= 0 ? "]\n" : "\n");
}

/* RFC 4180: quoted when it holds a comma, a quote or a line end. */
static void csv_string(const char *s)
{
    if (!strpbrk(s, ",\"\r\n")) {
        fputs(s, stdout);
        return;
    }
    putchar('"');
    for (; *s; s++)
        fputs(*s == '"' ? "\"\"" : (char[]){*s, 0}, stdout);
    putchar('"');
}

static void print_csv(Predictor *p, const char *input, int k, const char *name, float prob)
{
    int units = p->m->output_size;
    if (!p->header_done) {
        printf(k >= 0 ? "input,class,index,probability" : "input");
        for (int j = 0; j < units; j++)
            printf(",output_%d", j);
        printf("\n");
        p->header_done = true;
    }
    csv_string(input);
    if (k >= 0) {
        putchar(',');
        csv_string(name);
        printf(",%d,%.9g", k, prob);
    }
    for (int j = 0; j < units; j++)
        printf(",%.9g", p->probs[j]);
    printf("\n");
}

static void json_string(const char *s)
{
    putchar('"');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c < 0x20)
            printf("\\u%04x", c);
        else
            putchar(c);
    }
    putchar('"');
}

/* JSON has no NaN or infinity: null stands for them. */
static void json_number(float v)
{
    printf(isfinite(v) ? "%.9g" : "null", v);
}

/* One JSON object per line (JSON Lines). */
static void print_json(const Predictor *p, const char *input, int k, const char *name, float prob)
{
    printf("{\"input\": ");
    json_string(input);
    if (k >= 0) {
        printf(", \"class\": ");
        json_string(name);
        printf(", \"index\": %d, \"probability\": ", k);
        json_number(prob);
    }
    printf(", \"outputs\": [");
    for (int j = 0; j < p->m->output_size; j++) {
        printf(j ? ", " : "");
        json_number(p->probs[j]);
    }
    printf("]}\n");
}

/* The record of one input whose outputs are in p->probs. */
static void print_record(Predictor *p, const char *input)
{
    int k = -1;
    float prob = 0;
    char buf[16];
    if (nn_output_kind_of(p->m) != NN_OUTPUT_NUMBERS)
        k = nn_predicted_class(p->m, p->probs, &prob);
    const char *name = k >= 0 ? class_label(p, k, buf, sizeof buf) : "";
    if (p->o->format == NN_FORMAT_CSV)
        print_csv(p, input, k, name, prob);
    else if (p->o->format == NN_FORMAT_JSON)
        print_json(p, input, k, name, prob);
    else
        print_text(p, input, k, name, prob);
}

static bool image_output(const nn_model *m)
{
    return m->output_rank == 3;
}

/* DIR/NAME.png: the input x and the output y side by side, in the input's
 * scale; NAME is the input's file name without folder and extension. */
static int write_pair(Predictor *p, const char *input, const float *x, const float *y)
{
    const char *base = strrchr(input, '/') ? strrchr(input, '/') + 1 : input;
    char name[300];
    snprintf(name, sizeof name, "%.*s.png", (int)strcspn(base, "."), base);
    char *path = nn_join_path(p->o->out, name);
    const nn_model *m = p->m;
    const float *panels[2] = {x, y};
    int c = m->output_shape[2] == m->input_shape[2] ? m->output_shape[2] : 1;
    int rc = m->input_rank == 3 && m->input_shape[0] == m->output_shape[0] &&
                     m->input_shape[1] == m->output_shape[1]
                 ? nn_write_side_by_side(path, panels, 2, m->output_shape[0], m->output_shape[1], c,
                                         1.0f / m->data.rescale)
                 : nn_write_side_by_side(path, panels + 1, 1, m->output_shape[0],
                                         m->output_shape[1], m->output_shape[2],
                                         1.0f / m->data.rescale);
    if (rc == 0)
        printf("%s: %s\n", input, path);
    free(path);
    return rc;
}

/* Runs the one input in p->b.x and prints its record (an image model: writes its picture). */
static int predict_one(Predictor *p, const char *input)
{
    nn_pass pass = {0};
    const float *out = p->m->forward(&pass, p->params, p->b.work, p->b.x, 1);
    nn_output_probs(p->m, out, p->probs, 1);
    if (image_output(p->m))
        return write_pair(p, input, p->b.x, p->probs);
    print_record(p, input);
    return 0;
}

/* ---- images --------------------------------------------------------------------------- */

/* An image file as the model's input, rescaled: input_shape (H, W, C), or
 * (H, W) for one grey channel as the course's Fashion-MNIST models have it.
 * An image of another size is resized, as Keras's load_img(target_size)
 * does; the first one of a run says so. */
static int load_input_image(Predictor *p, const char *path, float *x)
{
    const nn_model *m = p->m;
    if (m->input_rank < 2)
        return nn_error(path, "the model's input is not an image (input_shape has 1 "
                              "dimension): give rows of numbers (1.5,2.0) or a .csv file");
    int h = m->input_shape[0], w = m->input_shape[1], sh, sw;
    if (!p->resize_said && nn_image_file_size(path, &sh, &sw) == 0 && (sh != h || sw != w)) {
        fprintf(stderr, "%s: note: resized from %dx%d to %dx%d, the model's input (said once "
                        "per run)\n", path, sh, sw, h, w);
        p->resize_said = true;
    }
    int channels = m->input_rank == 3 ? m->input_shape[2] : 1;
    uint8_t *bytes = nn_alloc((size_t)m->input_size, 1);
    int rc = nn_load_image_file(path, h, w, channels, bytes);
    for (int i = 0; rc == 0 && i < m->input_size; i++)
        x[i] = bytes[i] * m->data.rescale;
    free(bytes);
    return rc;
}

static int predict_image(Predictor *p, const char *path)
{
    int rc = load_input_image(p, path, p->b.x);
    if (rc == 0)
        rc = predict_one(p, path);
    return rc;
}

static int predict_folder(Predictor *p, const char *dir)
{
    char **paths;
    int n = nn_list_images(dir, &paths);
    if (n < 0)
        return -1;
    int rc = n ? 0 : nn_error(dir, "no image files in this folder");
    for (int i = 0; i < n && rc == 0; i++)
        rc = predict_image(p, paths[i]);
    free_names(paths, n);
    return rc;
}

/* ---- numbers ---------------------------------------------------------------------------- */

static bool is_npy(const char *path)
{
    size_t n = strlen(path);
    return n >= 4 && strcasecmp(path + n - 4, ".npy") == 0;
}

/* The outputs of n inputs in x, in batches: as Keras's predict() gives them
 * (raw), or as probabilities where the loss fuses the activation. Each batch
 * is read where it lies in x (the forward pass never writes its input). */
static float *forward_all(Predictor *p, const float *x, int n, bool raw)
{
    const nn_model *m = p->m;
    size_t in = (size_t)m->input_size, units = (size_t)m->output_size;
    float *y = nn_alloc((size_t)n * units, sizeof *y);
    nn_pass pass = {0};
    for (int start = 0; start < n; start += p->b.part) {
        int k = n - start < p->b.part ? n - start : p->b.part;
        const float *o = m->forward(&pass, p->params, p->b.work, x + (size_t)start * in, k);
        /* The .npy holds Keras's predict(): logits with from_logits; a record
         * shows probabilities. */
        if (raw)
            nn_keras_output(m, o, y + (size_t)start * units, k);
        else
            nn_output_probs(m, o, y + (size_t)start * units, k);
    }
    return y;
}

/* Record s of outputs y, labelled PREFIX[first + s] (the number alone without a prefix). */
static void print_output(Predictor *p, const float *y, int s, const char *prefix, int first)
{
    size_t units = (size_t)p->m->output_size;
    char label[4200];
    if (prefix)
        snprintf(label, sizeof label, "%s[%d]", prefix, first + s);
    else
        snprintf(label, sizeof label, "%d", first + s);
    memcpy(p->probs, y + (size_t)s * units, units * sizeof *p->probs);
    print_record(p, label);
}

/* n inputs in x: each printed as a record labelled PREFIX[i], or, with out,
 * all written to an .npy file of shape [n, ...the output's shape] (an image
 * model: as pictures I.png in the folder out, unless it ends in .npy). */
static int predict_matrix(Predictor *p, const float *x, int n, const char *prefix,
                          const char *out)
{
    const nn_model *m = p->m;
    size_t in = (size_t)m->input_size, units = (size_t)m->output_size;
    int rc = 0;
    if (nn_check_token_ids(m, x, n, prefix ? prefix : out ? out : "predict", 0) != 0)
        return -1;
    bool npy = out && (!image_output(m) || is_npy(out));
    nn_array y = {.dtype = NN_F32, .rank = 1 + m->output_rank, .shape = {n},
                  .size = (size_t)n * units};
    for (int d = 0; d < m->output_rank; d++)
        y.shape[1 + d] = m->output_shape[d];
    y.f = forward_all(p, x, n, npy);
    if (npy) {
        rc = nn_npy_write(out, &y);
    } else if (image_output(m)) {
        for (int s = 0; s < n && rc == 0; s++) {
            char label[32];
            snprintf(label, sizeof label, "%d", s);
            rc = write_pair(p, label, x + (size_t)s * in, y.f + (size_t)s * units);
        }
    } else {
        for (int s = 0; s < n; s++)
            print_output(p, y.f, s, prefix, 0);
    }
    free(y.f);
    return rc;
}

/* The series source whose column predict --series reads. */
static const nn_source *series_source(const nn_model *m)
{
    const nn_source *sources[] = {&m->data.train, &m->data.validation, &m->data.test};
    for (int i = 0; i < 3; i++)
        if (sources[i]->format == NN_DATA_SERIES)
            return sources[i];
    return NULL;
}

/* predict --series FILE, the course's model_forecast: a forecast after every
 * window of the series, each labelled FILE[t] by the first step it forecasts;
 * the mean absolute error of the forecasts the file can check goes to stderr. */
static int predict_series(Predictor *p, const char *path)
{
    const nn_source *src = series_source(p->m);
    if (!src)
        return nn_error(path, "model '%s' reads no series (data: format: series)", p->m->name);
    float *v;
    int n, w = p->m->input_size, units = p->m->output_size;
    if (nn_read_series(src, path, &v, &n) < 0)
        return -1;
    if (n < w) {
        free(v);
        return nn_error(path, "%d values: too few for one window of %d", n, w);
    }
    int windows = n - w + 1;
    float *x = nn_alloc((size_t)windows * (size_t)w, sizeof *x);
    for (int s = 0; s < windows; s++)
        memcpy(x + (size_t)s * (size_t)w, v + s, (size_t)w * sizeof *v);
    float *y = forward_all(p, x, windows, false);
    double error = 0;
    long checked = 0;
    for (int s = 0; s < windows; s++) {
        print_output(p, y, s, path, w);
        for (int j = 0; j < units && s + w + j < n; j++, checked++)
            error += fabs((double)y[(size_t)s * (size_t)units + (size_t)j] - v[s + w + j]);
    }
    if (checked)
        fprintf(stderr, "%s: mae %.4f over the %ld forecast values the series holds\n", path,
                error / (double)checked, checked);
    free(y);
    free(x);
    free(v);
    return 0;
}

/* A sentence for a text model: Keras's Tokenizer with the weight file's vocabulary. */
static int predict_sentence(Predictor *p, const char *text)
{
    if (!p->vocab)
        return nn_error(p->o->weights ? p->o->weights : p->m->name, "no vocabulary to read "
                        "\"%.40s\" with: give --weights of a trained text model (its "
                        "meta.vocabulary)", text);
    nn_text_ids(p->vocab, &p->m->data.text, text, p->b.x);
    if (nn_check_token_ids(p->m, p->b.x, 1, text, 0) != 0)
        return -1;
    predict_one(p, text);
    return 0;
}

static bool reads_text(const nn_model *m)
{
    return m->data.train.format == NN_DATA_TEXT || m->data.validation.format == NN_DATA_TEXT ||
           m->data.test.format == NN_DATA_TEXT;
}

/* A CSV file read as evaluate --data reads one (the model's CSV settings: its
 * label column by index or name, its header), the label optional: predict
 * ignores it where it is there. */
static int predict_csv(Predictor *p, const char *path)
{
    nn_dataset d;
    if (nn_load_data_file(p->m, path, &d) != 0)
        return -1;
    int rc = predict_matrix(p, d.floats, d.n, path, NULL);
    nn_dataset_free(&d);
    return rc;
}

/* "1.5,2.0": its numbers into x (at most want), their count into *count;
 * false when a field is not a number. */
static bool parse_row(const char *s, float *x, int want, int *count)
{
    *count = 0;
    for (;;) {
        char *end;
        errno = 0;
        float v = strtof(s, &end);
        while (*end == ' ')
            end++;
        if (end == s || errno || !isfinite(v) || (*end != ',' && *end != '\0'))
            return false;
        if (*count < want)
            x[*count] = v;
        ++*count;
        if (*end == '\0')
            return true;
        s = end + 1;
    }
}

static int predict_row(Predictor *p, const char *arg, int count)
{
    int k = p->m->input_size;
    if (count != k)
        return nn_error(arg, "%d number%s, but model '%s' takes %d per input: write each input "
                             "as one argument, its numbers separated by commas", count,
                        count == 1 ? "" : "s", p->m->name, k);
    if (nn_check_token_ids(p->m, p->b.x, 1, arg, 0) != 0)
        return -1;
    return predict_one(p, arg);
}

static bool is_csv(const char *path)
{
    size_t n = strlen(path);
    return n > 4 && strcasecmp(path + n - 4, ".csv") == 0;
}

static int predict_arg(Predictor *p, const char *arg)
{
    if (reads_text(p->m))
        return predict_sentence(p, arg);
    int count;
    if (parse_row(arg, p->b.x, p->m->input_size, &count))
        return predict_row(p, arg, count);
    struct stat st;
    if (stat(arg, &st) != 0)
        return nn_error(arg, "no such file, and not a row of numbers");
    if (S_ISDIR(st.st_mode))
        return predict_folder(p, arg);
    return is_csv(arg) ? predict_csv(p, arg) : predict_image(p, arg);
}

/* The model file's `predict:` list, each labelled by its numbers. */
static int predict_listed(Predictor *p)
{
    const nn_model *m = p->m;
    int rc = 0;
    for (int s = 0; s < m->n_predict && rc == 0; s++) {
        memcpy(p->b.x, m->predict_inputs + (size_t)s * (size_t)m->input_size,
               (size_t)m->input_size * sizeof *p->b.x);
        char label[96] = "";
        for (int i = 0; i < m->input_size && strlen(label) < 64; i++)
            snprintf(label + strlen(label), sizeof label - strlen(label), "%s%g", i ? "," : "",
                     p->b.x[i]);
        if (strlen(label) >= 64)
            strcat(label, ",...");
        rc = predict_one(p, label);
    }
    return rc;
}

/* The inputs of an .npy array: its floats where they lie, or integers (uint8
 * images, token ids) converted into *owned. */
static int npy_inputs(const nn_array *a, const nn_model *m, const char *path, const float **x,
                      float **owned, int *n)
{
    *owned = NULL;
    if (a->rank < 1 || a->size == 0 || a->size % (size_t)m->input_size)
        return nn_error(path, "expected an array of inputs of %d numbers each (shape [N, ...])",
                        m->input_size);
    if (a->size / (size_t)m->input_size > INT32_MAX)
        return nn_error(path, "more than %d inputs in one file", INT32_MAX);
    *n = (int)(a->size / (size_t)m->input_size);
    if (a->dtype == NN_F32) {
        *x = a->f;
        return 0;
    }
    *owned = nn_alloc(a->size, sizeof **owned);
    for (size_t i = 0; i < a->size; i++)
        (*owned)[i] = (float)a->i[i];
    *x = *owned;
    return 0;
}

static int predict_npy(Predictor *p, const char *in, const char *out)
{
    nn_array a;
    if (nn_npy_read(in, &a) != 0)
        return -1;
    const float *x = NULL;
    float *owned;
    int n = 0;
    int rc = npy_inputs(&a, p->m, in, &x, &owned, &n);
    if (rc == 0)
        rc = predict_matrix(p, x, n, NULL, out);
    free(owned);
    nn_array_free(&a);
    return rc;
}

int nn_predict(const nn_model *m, const nn_options *o, char **inputs, int n_inputs)
{
    if (image_output(m) && !(o->out && (is_npy(o->out) ? o->npy != NULL : true)))
        return nn_error(m->name, "the model's output is an image: give --out DIR for PNG files "
                                 "(input | output), or --npy X.npy --out Y.npy for the numbers");
    if (!image_output(m) && o->out && !o->npy)
        return nn_error(m->name, "predict --out goes with --npy X.npy");
    if (image_output(m) && !is_npy(o->out) && mkdir(o->out, 0777) != 0 && errno != EEXIST)
        return nn_error(o->out, "cannot make the folder: %s", strerror(errno));
    Predictor p;
    int rc = predictor_init(&p, m, o, o->batch_size);
    if (rc == 0) {
        if (o->npy)
            rc = predict_npy(&p, o->npy, o->out);
        else if (o->series)
            rc = predict_series(&p, o->series);
        else if (n_inputs)
            for (int i = 0; i < n_inputs && rc == 0; i++)
                rc = predict_arg(&p, inputs[i]);
        else if (m->n_predict)
            rc = predict_listed(&p);
        else
            rc = nn_error(m->name, "nothing to predict: give inputs, --npy, or predict: in the "
                                   "model file");
    }
    predictor_free(&p);
    return rc;
}

/* ---- init, activations ---------------------------------------------------------------- */

int nn_init_weights(const nn_model *m, const nn_options *o)
{
    float *params = nn_alloc(m->n_params, sizeof *params);
    nn_init_params(m, params, o->has_seed ? o->seed : m->fit.seed);
    nn_meta meta = {0};
    choose_names(m, o->data_dir, &meta);
    int rc = nn_save_weights(m, o->save, params, &meta, NULL, NULL);
    nn_meta_free(&meta);
    free(params);
    return rc;
}

/* Feature maps of every convolution and pooling layer for one image, as PNG
 * grids, and index.txt saying which file is which layer; for a model whose
 * output is an image, also output.png: the input and the output side by side. */
int nn_activations(const nn_model *m, const nn_options *o)
{
    if (mkdir(o->out, 0777) != 0 && errno != EEXIST)
        return nn_error(o->out, "cannot make the folder: %s", strerror(errno));
    Predictor p;
    int rc = predictor_init(&p, m, o, 1);
    if (rc == 0)
        rc = load_input_image(&p, o->input, p.b.x);
    char *index = nn_join_path(o->out, "index.txt");
    FILE *f = rc == 0 ? fopen(index, "w") : NULL;
    if (rc == 0 && !f)
        rc = nn_error(index, "cannot write");
    if (rc == 0) {
        nn_pass pass = {0};
        nn_output_probs(m, m->forward(&pass, p.params, p.b.work, p.b.x, 1), p.probs, 1);
        for (int l = 0; l < m->n_layers && rc == 0; l++) {
            const nn_layer *L = &m->layers[l];
            if (!L->is_feature_map)
                continue;
            char name[300];
            snprintf(name, sizeof name, "%02d_%s.png", l, L->name);
            char *path = nn_join_path(o->out, name);
            /* Maps of at least 64 pixels across, as the course's plots show them. */
            int scale = L->shape[1] >= 64 ? 1 : (64 + L->shape[1] - 1) / L->shape[1];
            rc = nn_write_feature_grid(path, p.b.work + m->scratch_floats + L->out_offset,
                                       L->shape[0], L->shape[1], L->shape[2], scale, false);
            if (rc == 0) {
                fprintf(f, "%s\t%s (%s)\t%dx%dx%d\n", name, L->name, L->type, L->shape[0],
                        L->shape[1], L->shape[2]);
                printf("%s: %s (%s) %dx%dx%d\n", path, L->name, L->type, L->shape[0],
                       L->shape[1], L->shape[2]);
            }
            free(path);
        }
    }
    if (rc == 0 && image_output(m)) {
        rc = write_pair(&p, "output", p.b.x, p.probs);
        if (rc == 0)
            fprintf(f, "output.png\tthe input and the model's output\t%dx%dx%d\n",
                    m->output_shape[0], m->output_shape[1], m->output_shape[2]);
    }
    if (f && fclose(f) != 0 && rc == 0)
        rc = nn_error(index, "cannot write");
    free(index);
    predictor_free(&p);
    return rc;
}
