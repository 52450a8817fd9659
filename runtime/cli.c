/* cli.c - a generated trainer's command line (see the usage text below and
 * CONTRACT.md): reads the arguments, sets up threads and the floating-point
 * mode, and hands over to train.c, gradcheck.c or the commands here.
 * Exit status: 0 done, 1 a problem with the model, data or files, 2 a usage
 * error, 130 interrupted. */
#include "rt.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

static const char usage[] =
    "usage: %s COMMAND [OPTIONS]\n"
    "  train    [--epochs N] [--batch-size N] [--learning-rate X] [--seed N] [--threads N]\n"
    "           [--data DIR] [--limit N] [--no-shuffle] [--save W.npz] [--resume W.npz]\n"
    "           [--save-every N] [--history H.csv] [--quiet]\n"
    "  evaluate --weights W.npz [--data DIR] [--limit N] [--show N]\n"
    "  predict  [--weights W.npz] [INPUT ...]    INPUT: numbers, image files or folders\n"
    "  predict  [--weights W.npz] --npy X.npy [--out Y.npy]\n"
    "  summary\n"
    "  init     --seed N --save W.npz\n"
    "  activations [--weights W.npz] --input IMAGE --out DIR\n"
    "  (without --weights: the initial weights, for models whose weights are in the model file)\n"
    "  gradcheck [--seed N]\n";

typedef struct {
    nn_options o;
    const char *command, *npy, *npy_out, *input, *out_dir;
    char **inputs;
    int n_inputs;
} Args;

static const char *program;

_Noreturn static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", program);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    fprintf(stderr, usage, program);
    exit(2);
}

static long parse_long(const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        char msg[160];
        snprintf(msg, sizeof msg, "%s wants a whole number from %ld to %ld, got '%%s'", opt, min, max);
        usage_error(msg, s);
    }
    return v;
}

static float parse_positive(const char *opt, const char *s)
{
    char *end;
    float v = strtof(s, &end);
    if (*end || end == s || !(v > 0) || !isfinite(v)) {
        char msg[120];
        snprintf(msg, sizeof msg, "%s wants a positive number, got '%%s'", opt);
        usage_error(msg, s);
    }
    return v;
}

static const char *value_of(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage_error("%s needs a value", argv[*i]);
    return argv[++*i];
}

/* Options with a value, and where each goes. */
static bool string_option(Args *a, const char *opt, const char *v)
{
    struct { const char *name; const char **dst; } table[] = {
        {"--data", &a->o.data_dir}, {"--save", &a->o.save}, {"--resume", &a->o.resume},
        {"--history", &a->o.history}, {"--weights", &a->o.weights}, {"--npy", &a->npy},
        {"--out", &a->out_dir}, {"--input", &a->input},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(opt, table[i].name) == 0) {
            *table[i].dst = v;
            return true;
        }
    return false;
}

static bool number_option(Args *a, const char *opt, const char *v)
{
    if (strcmp(opt, "--epochs") == 0)
        a->o.epochs = (int)parse_long(opt, v, 1, 1000000);
    else if (strcmp(opt, "--batch-size") == 0)
        a->o.batch_size = (int)parse_long(opt, v, 1, 1 << 20);
    else if (strcmp(opt, "--threads") == 0)
        a->o.threads = (int)parse_long(opt, v, 1, 1024);
    else if (strcmp(opt, "--limit") == 0)
        a->o.limit = (int)parse_long(opt, v, 1, 1 << 30);
    else if (strcmp(opt, "--save-every") == 0)
        a->o.save_every = (int)parse_long(opt, v, 1, 1 << 30);
    else if (strcmp(opt, "--show") == 0)
        a->o.show = (int)parse_long(opt, v, 1, 1 << 20);
    else if (strcmp(opt, "--seed") == 0)
        a->o.seed = (uint64_t)parse_long(opt, v, 0, 0x7fffffffffffffffL), a->o.has_seed = 1;
    else if (strcmp(opt, "--learning-rate") == 0)
        a->o.learning_rate = parse_positive(opt, v);
    else
        return false;
    return true;
}

static Args parse_args(const nn_model *m, int argc, char **argv)
{
    Args a = {0};
    a.o.epochs = m->fit.epochs;
    a.o.batch_size = m->fit.batch_size;
    a.o.shuffle = m->fit.shuffle;
    if (argc < 2)
        usage_error("%s", "no command");
    a.command = argv[1];
    a.inputs = nn_alloc((size_t)argc, sizeof *a.inputs);
    for (int i = 2; i < argc; i++) {
        const char *opt = argv[i];
        if (strcmp(opt, "--no-shuffle") == 0)
            a.o.shuffle = 0;
        else if (strcmp(opt, "--quiet") == 0)
            a.o.quiet = 1;
        else if (strncmp(opt, "--", 2) == 0 && opt[2]) {
            const char *v = value_of(argc, argv, &i);
            if (!string_option(&a, opt, v) && !number_option(&a, opt, v))
                usage_error("unknown option '%s'", opt);
        } else {
            a.inputs[a.n_inputs++] = argv[i];
        }
    }
    if (strcmp(a.command, "predict") == 0 && a.npy)
        a.npy_out = a.out_dir, a.out_dir = NULL;
    return a;
}

static void need(const char *value, const char *option)
{
    if (!value)
        usage_error("this command needs %s", option);
}

static void no_inputs(const Args *a)
{
    if (a->n_inputs)
        usage_error("unexpected argument '%s'", a->inputs[0]);
}

/* TensorFlow runs with denormals flushed to zero; so do we, on every thread:
 * subnormal optimizer moments would otherwise slow training down. */
static void flush_denormals(void)
{
#if defined(__SSE__)
    #pragma omp parallel
    _mm_setcsr(_mm_getcsr() | 0x8040);
#endif
}

/* ---- weights ------------------------------------------------------------------- */

/* --weights, or else the initial weights: what a model whose weights are all
 * given in the model file (a hand-made filter) needs, and a warning otherwise. */
static int weights_for(const nn_model *m, const Args *a, float *params)
{
    if (a->o.weights)
        return nn_load_weights(m, a->o.weights, params, NULL, NULL);
    for (int i = 0; i < m->n_tensors; i++)
        if (m->tensors[i].init != NN_INIT_VALUES) {
            nn_warning(program, "no --weights: using the untrained initial weights");
            break;
        }
    nn_init_params(m, params, a->o.has_seed ? a->o.seed : m->fit.seed);
    return 0;
}

/* ---- predict ------------------------------------------------------------------- */

typedef struct {
    const nn_model *m;
    float *params;
    nn_batch b;
    char **classes;
    int n_classes;
} Predictor;

/* Class names for what predict prints: the training folders' names, or the
 * model file's class_names. Where the training folder is not (a trained
 * model on another machine), classes show as numbers, without an error. */
static void find_classes(Predictor *p, const char *data_dir)
{
    const nn_source *train = &p->m->data.train;
    if (train->format == NN_DATA_IMAGE_DIR) {
        char *dir = nn_join_path(data_dir ? data_dir : p->m->data.dir, train->path);
        struct stat st;
        int n = stat(dir, &st) == 0 && S_ISDIR(st.st_mode) ? nn_list_classes(dir, &p->classes) : 0;
        p->n_classes = n > 0 ? n : 0;
        free(dir);
    }
}

static const char *class_label(const Predictor *p, int k, char *buf, size_t len)
{
    if (k < p->n_classes)
        return p->classes[k];
    if (k < p->m->data.n_class_names)
        return p->m->data.class_names[k];
    snprintf(buf, len, "%d", k);
    return buf;
}

/* One line: the probabilities, then the class for a classifier. */
static void print_probs(const Predictor *p, const char *label, const float *probs)
{
    const nn_model *m = p->m;
    printf("%s:", label);
    for (int k = 0; k < m->output_size; k++)
        printf(" %.4f", probs[k]);
    char buf[32];
    if (m->output_act == NN_OUT_SIGMOID && m->output_size == 1) {
        printf(" %s", class_label(p, probs[0] > 0.5f, buf, sizeof buf));
    } else if (m->output_act == NN_OUT_SOFTMAX || m->loss == NN_LOSS_SPARSE_CE ||
               m->loss == NN_LOSS_CATEGORICAL_CE) {
        int best = nn_argmax(probs, m->output_size);
        printf(" -> %d", best);
        if (best < p->n_classes || best < m->data.n_class_names)
            printf(" %s", class_label(p, best, buf, sizeof buf));
    }
    printf("\n");
}

static void print_prediction(const Predictor *p, const char *label, const float *out)
{
    float *probs = nn_alloc((size_t)p->m->output_size, sizeof *probs);
    nn_output_probs(p->m, out, probs, 1);
    print_probs(p, label, probs);
    free(probs);
}

static const float *run_one(Predictor *p)
{
    nn_pass pass = {0};
    return p->m->forward(&pass, p->params, p->b.work, p->b.x, 1);
}

/* An image file as the model's input, rescaled: input_shape (H, W, C), or
 * (H, W) for one grey channel as the course's Fashion-MNIST models have it. */
static int load_input_image(const nn_model *m, const char *path, float *x)
{
    if (m->input_rank < 2)
        return nn_error(path, "the model's input is not an image (input_shape has 1 dimension)");
    int channels = m->input_rank == 3 ? m->input_shape[2] : 1;
    uint8_t *bytes = nn_alloc((size_t)m->input_size, 1);
    int rc = nn_load_image_file(path, m->input_shape[0], m->input_shape[1], channels, bytes);
    for (int i = 0; rc == 0 && i < m->input_size; i++)
        x[i] = bytes[i] * m->data.rescale;
    free(bytes);
    return rc;
}

static int predict_image(Predictor *p, const char *path)
{
    int rc = load_input_image(p->m, path, p->b.x);
    if (rc == 0)
        print_prediction(p, path, run_one(p));
    return rc;
}

static int predict_folder(Predictor *p, const char *dir)
{
    char **paths;
    int n = nn_list_images(dir, &paths);
    if (n < 0)
        return -1;
    int rc = n ? 0 : nn_error(dir, "no image files in this folder");
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = predict_image(p, paths[i]);
        free(paths[i]);
    }
    free(paths);
    return rc;
}

static bool is_number(const char *s)
{
    char *end;
    strtof(s, &end);
    return end != s && *end == '\0';
}

/* Numbers on the command line, input_size of them per sample. */
static int predict_numbers(Predictor *p, char **args, int n)
{
    int k = p->m->input_size;
    if (n % k)
        return nn_error(p->m->name, "%d numbers do not make whole inputs of %d numbers each", n, k);
    for (int s = 0; s < n; s += k) {
        char label[256] = "";
        for (int i = 0; i < k; i++) {
            p->b.x[i] = strtof(args[s + i], NULL);
            snprintf(label + strlen(label), sizeof label - strlen(label), "%s%s", i ? " " : "",
                     args[s + i]);
        }
        print_prediction(p, label, run_one(p));
    }
    return 0;
}

static int predict_inputs(Predictor *p, char **inputs, int n)
{
    int rc = 0;
    for (int i = 0; i < n && rc == 0;) {
        int run = 0;
        while (i + run < n && is_number(inputs[i + run]))
            run++;
        if (run) {
            rc = predict_numbers(p, inputs + i, run);
            i += run;
            continue;
        }
        struct stat st;
        if (stat(inputs[i], &st) != 0)
            rc = nn_error(inputs[i], "no such file, and not a number");
        else
            rc = S_ISDIR(st.st_mode) ? predict_folder(p, inputs[i]) : predict_image(p, inputs[i]);
        i++;
    }
    return rc;
}

/* The model file's `predict:` list. */
static int predict_listed(Predictor *p)
{
    const nn_model *m = p->m;
    for (int s = 0; s < m->n_predict; s++) {
        memcpy(p->b.x, m->predict_inputs + (size_t)s * (size_t)m->input_size,
               (size_t)m->input_size * sizeof *p->b.x);
        char label[64];
        snprintf(label, sizeof label, "%g%s", p->b.x[0], m->input_size > 1 ? " ..." : "");
        print_prediction(p, label, run_one(p));
    }
    return 0;
}

static int npy_to_floats(const nn_array *a, const nn_model *m, const char *path, float **x, int *n)
{
    if (a->rank < 1 || a->size == 0 || a->size % (size_t)m->input_size)
        return nn_error(path, "expected an array of inputs of %d numbers each (shape [N, ...])",
                        m->input_size);
    if (a->size / (size_t)m->input_size > INT32_MAX)
        return nn_error(path, "more than %d inputs in one file", INT32_MAX);
    *n = (int)(a->size / (size_t)m->input_size);
    *x = nn_alloc(a->size, sizeof **x);
    for (size_t i = 0; i < a->size; i++)
        (*x)[i] = a->dtype == NN_F32 ? a->f[i] : (float)a->i[i];
    return 0;
}

static int predict_npy(Predictor *p, const char *in, const char *out)
{
    const nn_model *m = p->m;
    nn_array a;
    if (nn_npy_read(in, &a) != 0)
        return -1;
    float *x = NULL;
    int n = 0;
    int rc = npy_to_floats(&a, m, in, &x, &n);
    nn_array_free(&a);
    if (rc)
        return -1;
    nn_array y = {.dtype = NN_F32, .rank = 2, .shape = {n, m->output_size}};
    y.size = (size_t)n * (size_t)m->output_size;
    y.f = nn_alloc(y.size, sizeof *y.f);
    nn_pass pass = {0};
    for (int start = 0; start < n; start += p->b.part) {
        int k = n - start < p->b.part ? n - start : p->b.part;
        memcpy(p->b.x, x + (size_t)start * (size_t)m->input_size,
               (size_t)k * (size_t)m->input_size * sizeof *x);
        const float *o = m->forward(&pass, p->params, p->b.work, p->b.x, k);
        nn_output_probs(m, o, y.f + (size_t)start * (size_t)m->output_size, k);
    }
    if (out) {
        rc = nn_npy_write(out, &y);
    } else {
        for (int s = 0; s < n; s++) {
            char label[32];
            snprintf(label, sizeof label, "%d", s);
            print_probs(p, label, y.f + (size_t)s * (size_t)m->output_size);
        }
    }
    free(x);
    free(y.f);
    return rc;
}

static int predict(const nn_model *m, const Args *a)
{
    Predictor p = {.m = m};
    p.params = nn_alloc(m->n_params, sizeof *p.params);
    nn_batch_init(&p.b, m, a->o.batch_size);
    int rc = weights_for(m, a, p.params);
    if (rc == 0 && m->layers[m->n_layers - 1].rank == 3)
        rc = nn_error(m->name, "the model's output is an image: draw it with `activations`");
    if (rc == 0) {
        find_classes(&p, a->o.data_dir);
        if (a->npy)
            rc = predict_npy(&p, a->npy, a->npy_out);
        else if (a->n_inputs)
            rc = predict_inputs(&p, a->inputs, a->n_inputs);
        else if (m->n_predict)
            rc = predict_listed(&p);
        else
            rc = nn_error(m->name, "nothing to predict: give inputs, --npy, or predict: in the "
                                   "model file");
    }
    for (int k = 0; k < p.n_classes; k++)
        free(p.classes[k]);
    free(p.classes);
    nn_batch_free(&p.b);
    free(p.params);
    return rc;
}

/* ---- init, activations ---------------------------------------------------------------- */

static int init_weights(const nn_model *m, const Args *a)
{
    float *params = nn_alloc(m->n_params, sizeof *params);
    nn_init_params(m, params, a->o.has_seed ? a->o.seed : m->fit.seed);
    int rc = nn_save_weights(m, a->o.save, params, NULL, NULL);
    free(params);
    return rc;
}

/* Feature maps of every convolution and pooling layer for one image, as PNG
 * grids, and index.txt saying which file is which layer. */
static int activations(const nn_model *m, const Args *a)
{
    if (mkdir(a->out_dir, 0777) != 0 && errno != EEXIST)
        return nn_error(a->out_dir, "cannot make the folder: %s", strerror(errno));
    Predictor p = {.m = m};
    p.params = nn_alloc(m->n_params, sizeof *p.params);
    nn_batch_init(&p.b, m, 1);
    int rc = weights_for(m, a, p.params);
    if (rc == 0)
        rc = load_input_image(m, a->input, p.b.x);
    char *index = nn_join_path(a->out_dir, "index.txt");
    FILE *f = rc == 0 ? fopen(index, "w") : NULL;
    if (rc == 0 && !f)
        rc = nn_error(index, "cannot write");
    if (rc == 0) {
        run_one(&p);
        for (int l = 0; l < m->n_layers && rc == 0; l++) {
            const nn_layer *L = &m->layers[l];
            if (!L->is_feature_map)
                continue;
            char name[300];
            snprintf(name, sizeof name, "%02d_%s.png", l, L->name);
            char *path = nn_join_path(a->out_dir, name);
            /* Maps of at least 64 pixels across, as the course's plots show them. */
            int scale = L->shape[1] >= 64 ? 1 : (64 + L->shape[1] - 1) / L->shape[1];
            rc = nn_write_feature_grid(path, p.b.work + m->scratch_floats + L->out_offset, L->shape[0], L->shape[1],
                                       L->shape[2], scale);
            if (rc != 0) {
                free(path);
                break;
            }
            fprintf(f, "%s\t%s (%s)\t%dx%dx%d\n", name, L->name, L->type, L->shape[0],
                    L->shape[1], L->shape[2]);
            printf("%s: %s (%s) %dx%dx%d\n", path, L->name, L->type, L->shape[0], L->shape[1],
                   L->shape[2]);
            free(path);
        }
    }
    if (f && fclose(f) != 0 && rc == 0)
        rc = nn_error(index, "cannot write");
    free(index);
    nn_batch_free(&p.b);
    free(p.params);
    return rc;
}

/* ---- dispatch ------------------------------------------------------------------------- */

/* `summary`: the model's layers as the rows of Keras's table (summary.c). */
static void print_summary(const nn_model *m)
{
    nn_summary_row *rows = nn_alloc((size_t)m->n_layers + 1, sizeof *rows);
    int n = 0;
    for (int i = 0; i < m->n_layers && !n; i++)
        if (m->layers[i].inputs)
            rows[n++] = nn_summary_input_row(m->input_rank, m->input_shape);
    for (int i = 0; i < m->n_layers; i++) {
        const nn_layer *l = &m->layers[i];
        rows[n++] = (nn_summary_row){l->name, l->type, l->rank,
                                     {l->shape[0], l->shape[1], l->shape[2]},
                                     l->params, l->trainable_params, l->inputs};
    }
    nn_print_summary(stdout, m->name, rows, n);
    free(rows);
}

static int run(const nn_model *m, const Args *a)
{
    const char *c = a->command;
    if (strcmp(c, "train") == 0) {
        no_inputs(a);
        if (a->o.save_every)
            need(a->o.save, "--save W.npz with --save-every");
        return nn_train(m, &a->o);
    }
    if (strcmp(c, "evaluate") == 0) {
        need(a->o.weights, "--weights W.npz");
        no_inputs(a);
        return nn_evaluate(m, &a->o);
    }
    if (strcmp(c, "predict") == 0)
        return predict(m, a);
    if (strcmp(c, "summary") == 0) {
        no_inputs(a);
        print_summary(m);
        return 0;
    }
    if (strcmp(c, "init") == 0) {
        need(a->o.save, "--save W.npz");
        no_inputs(a);
        return init_weights(m, a);
    }
    if (strcmp(c, "activations") == 0) {
        need(a->input, "--input IMAGE");
        need(a->out_dir, "--out DIR");
        no_inputs(a);
        return activations(m, a);
    }
    if (strcmp(c, "gradcheck") == 0) {
        no_inputs(a);
        return nn_gradcheck(m, &a->o);
    }
    if (strcmp(c, "--help") == 0 || strcmp(c, "-h") == 0) {
        printf(usage, program);
        return 0;
    }
    if (strcmp(c, "--version") == 0) {
        printf("%s (nncc runtime %s)\n", m->name, NNRT_VERSION);
        return 0;
    }
    usage_error("unknown command '%s'", c);
}

int nnrt_main(const nn_model *m, int argc, char **argv)
{
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    program = slash ? slash + 1 : argc > 0 ? argv[0] : m->name;
    Args a = parse_args(m, argc, argv);
    if (a.o.threads > 0)
        omp_set_num_threads(a.o.threads);
    flush_denormals();
    int rc = run(m, &a);
    free(a.inputs);
    fflush(stdout);
    return rc == 0 ? 0 : rc == 130 ? 130 : 1;
}
