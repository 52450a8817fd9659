/* cli.c - a generated trainer's command line (docs/commands.md): reads the
 * arguments against the tables of commands and options below, sets up
 * threads and the floating-point mode, and hands over to train.c,
 * predict.c, gradcheck.c, summary.c, show_data.c or plot.c.
 *
 * A usage error is one line naming the option or command, with a "did you
 * mean" where one is close, then `try 'NAME --help'`; exit status 2. An
 * option a command does not use is such an error too: a user who gives it
 * expects it to do something. Exit status otherwise: 0 done, 1 a problem with
 * the model, data or files, 130 interrupted. */
#include "rt.h"
#include "h5.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__SSE__)
#include <xmmintrin.h>
#endif

/* ---- the tables ---------------------------------------------------------------------- */

enum { TRAIN, EVALUATE, PREDICT, SUMMARY, INIT, ACTIVATIONS, SHOW_DATA, PLOT, GRADCHECK, N_COMMANDS };
#define ON(c) (1u << (c))

static const struct {
    const char *name, *args, *what;
} commands[N_COMMANDS] = {
    [TRAIN] = {"train", "", "train the model, as Keras's fit() ('fit' is another name for it)"},
    [EVALUATE] = {"evaluate", "--weights W.npz",
                  "the loss and metrics on data: test (else the validation data)"},
    [PREDICT] = {"predict", "[INPUT ...]",
                 "the class (or outputs) of each INPUT: image files, folders of them, .csv "
                 "files, rows of numbers as 1.5,2.0, sentences for a text model; none: --npy, "
                 "--series or the model file's predict:"},
    [SUMMARY] = {"summary", "", "the layers, output shapes and parameter counts, as Keras's"},
    [INIT] = {"init", "--save W.npz", "write the initial weights, without training"},
    [ACTIVATIONS] = {"activations", "--input IMAGE --out DIR",
                     "the feature maps of one image, as PNG grids"},
    [SHOW_DATA] = {"show-data", "--out GRID.png",
                   "a grid of the first samples with their class names, as PNG (images only)"},
    [PLOT] = {"plot", "--history H.csv --out CURVES.png",
              "training curves from a history or CSVLogger file, as PNG"},
    [GRADCHECK] = {"gradcheck", "", "check the backward pass against numerical gradients"},
};

typedef enum {
    OPT_EPOCHS, OPT_BATCH_SIZE, OPT_LEARNING_RATE, OPT_SEED, OPT_THREADS, OPT_DATA, OPT_LIMIT,
    OPT_NO_SHUFFLE, OPT_SAVE, OPT_SAVE_EVERY, OPT_RESUME, OPT_HISTORY, OPT_QUIET, OPT_WEIGHTS, OPT_SHOW,
    OPT_CONFUSION, OPT_NPY, OPT_SERIES, OPT_OUT, OPT_INPUT, OPT_ALL, OPT_FORMAT, OPT_SKIP_MISSING,
    OPT_REPORT, OPT_SPLIT, OPT_COUNT, OPT_AUGMENTED, OPT_MAX_PIXELS, N_OPTIONS
} OptionId;

static const struct {
    const char *name, *value;  /* value NULL: a switch */
    unsigned commands;         /* the commands that take it */
    const char *what, *dflt;   /* dflt NULL: the model's, from option_default() */
} options[N_OPTIONS] = {
    [OPT_EPOCHS] = {"--epochs", "N", ON(TRAIN),
                    "epochs to reach, 1 to 1000000; with --resume counted from the start", NULL},
    [OPT_BATCH_SIZE] = {"--batch-size", "N", ON(TRAIN) | ON(EVALUATE) | ON(PREDICT),
                        "samples per batch, 1 to 1048576", NULL},
    [OPT_LEARNING_RATE] = {"--learning-rate", "X", ON(TRAIN),
                           "a positive number, in place of the optimizer's", NULL},
    [OPT_SEED] = {"--seed", "N",
                  ON(TRAIN) | ON(INIT) | ON(GRADCHECK) | ON(PREDICT) | ON(ACTIVATIONS) | ON(SHOW_DATA),
                  "0 to 2^63-1: initial weights, shuffling, dropout, augmentation", NULL},
    [OPT_THREADS] = {"--threads", "N",
                     ON(TRAIN) | ON(EVALUATE) | ON(PREDICT) | ON(ACTIVATIONS) | ON(GRADCHECK),
                     "OpenMP threads, 1 to 1024",
                     "OMP_NUM_THREADS, else every core (under mpirun: the cores / the ranks on the machine)"},
    [OPT_DATA] = {"--data", "DIR", ON(TRAIN) | ON(EVALUATE) | ON(PREDICT) | ON(INIT) | ON(SHOW_DATA),
                  "the folder relative data paths start from (predict, init: where the class "
                  "folders are); evaluate: also a .csv file to score", NULL},
    [OPT_LIMIT] = {"--limit", "N", ON(TRAIN) | ON(EVALUATE),
                   "use only the first N samples (train: before validation_split)", "all"},
    [OPT_NO_SHUFFLE] = {"--no-shuffle", NULL, ON(TRAIN), "do not shuffle the training set", NULL},
    [OPT_SAVE] = {"--save", "W.npz", ON(TRAIN) | ON(INIT),
                  "write the weights (train: a checkpoint after every epoch); W.h5: Keras's "
                  "HDF5 layout, without the optimizer's state", "none"},
    [OPT_SAVE_EVERY] = {"--save-every", "N", ON(TRAIN),
                        "also write the --save checkpoint every N steps (Keras's save_freq)",
                        "at epoch ends only"},
    [OPT_RESUME] = {"--resume", "W.npz", ON(TRAIN), "continue from a checkpoint", "none"},
    [OPT_HISTORY] = {"--history", "H.csv", ON(TRAIN) | ON(PLOT),
                     "train: write a line per epoch; plot: the file to draw", "none"},
    [OPT_QUIET] = {"--quiet", NULL, ON(TRAIN) | ON(EVALUATE) | ON(SHOW_DATA) | ON(PLOT),
                   "print no progress", "progress shown"},
    [OPT_WEIGHTS] = {"--weights", "W.npz", ON(TRAIN) | ON(EVALUATE) | ON(PREDICT) | ON(ACTIVATIONS),
                     "the weights to use, .npz or Keras .h5 (required by evaluate; train: start "
                     "from them, as Keras's load_weights then fit)", "the initial weights"},
    [OPT_SHOW] = {"--show", "N", ON(EVALUATE), "also show the first N samples", "0"},
    [OPT_CONFUSION] = {"--confusion", NULL, ON(EVALUATE),
                       "print the confusion matrix (rows: true class)", "off"},
    [OPT_NPY] = {"--npy", "X.npy", ON(PREDICT), "the inputs as one array [N, ...]", "none"},
    [OPT_SERIES] = {"--series", "FILE.csv", ON(PREDICT),
                    "forecast after every window of this series (the model's series column)",
                    "none"},
    [OPT_OUT] = {"--out", "PATH", ON(PREDICT) | ON(ACTIVATIONS) | ON(SHOW_DATA) | ON(PLOT),
                 "predict --npy: the outputs' .npy file; an image model's predict, "
                 "activations: the folder; show-data, plot: the PNG file", "none"},
    [OPT_INPUT] = {"--input", "IMAGE", ON(ACTIVATIONS), "the image", "none"},
    [OPT_ALL] = {"--all", NULL, ON(PREDICT), "text format: print the whole output vector too",
                 "off"},
    [OPT_FORMAT] = {"--format", "F", ON(PREDICT),
                    "text, csv (a header, then a line per input) or json (an object per line)",
                    "text"},
    [OPT_SKIP_MISSING] = {"--skip-missing", NULL, ON(TRAIN),
                          "with --weights: tensors not in the file keep their initial values",
                          "an error"},
    [OPT_REPORT] = {"--report", "DIR", ON(TRAIN),
                    "write a report page DIR/index.html with curves, confusion matrix, "
                    "predictions and feature maps, rewritten after every epoch", "none"},
    [OPT_SPLIT] = {"--split", "S", ON(SHOW_DATA), "train, validation or test", "train"},
    [OPT_COUNT] = {"--count", "N", ON(SHOW_DATA), "how many samples, 1 to 1024", "16"},
    [OPT_AUGMENTED] = {"--augmented", NULL, ON(SHOW_DATA),
                       "N draws of data: augment:'s transformations of the first sample", "off"},
    [OPT_MAX_PIXELS] = {"--max-pixels", "N",
                        ON(TRAIN) | ON(EVALUATE) | ON(PREDICT) | ON(ACTIVATIONS) | ON(SHOW_DATA),
                        "refuse image files of more than N pixels (width x height), by name, "
                        "before decoding them; 1 to 2^31", "67108864 (64 megapixels)"},
};

static const char *program;

/* The model's default for options that have one; dflt's text for the rest. */
static const char *option_default(const nn_model *m, OptionId id, char *buf, size_t len)
{
    switch (id) {
    case OPT_EPOCHS:
        snprintf(buf, len, "%d (fit: epochs)", m->fit.epochs);
        return buf;
    case OPT_BATCH_SIZE:
        snprintf(buf, len, "%d (fit: batch_size)", m->fit.batch_size);
        return buf;
    case OPT_LEARNING_RATE:
        snprintf(buf, len, "%g (the optimizer's)", (double)m->optimizer.learning_rate);
        return buf;
    case OPT_SEED:
        snprintf(buf, len, "%llu (fit: seed)", (unsigned long long)m->fit.seed);
        return buf;
    case OPT_DATA:
        snprintf(buf, len, "%s", m->data.dir && *m->data.dir ? m->data.dir : ".");
        return buf;
    case OPT_NO_SHUFFLE:
        return m->fit.shuffle ? "shuffled (fit: shuffle)" : "not shuffled (fit: shuffle: false)";
    default:
        return options[id].dflt;
    }
}

/* ---- usage errors and help ---------------------------------------------------------- */

/* The one line, then where help is; exit 2. command: -1 for none. */
_Noreturn static void usage_error(int command, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
_Noreturn static void usage_error(int command, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", program);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\ntry '%s%s%s --help'\n", program, command >= 0 ? " " : "",
            command >= 0 ? commands[command].name : "");
    exit(2);
}

static void print_option(const nn_model *m, OptionId id, bool with_commands)
{
    char value[40], dflt[160];
    snprintf(value, sizeof value, "%s%s%s", options[id].name, options[id].value ? " " : "",
             options[id].value ? options[id].value : "");
    printf("  %-22s %s; default: %s", value, options[id].what,
           option_default(m, id, dflt, sizeof dflt));
    for (int c = 0, n = 0; with_commands && c < N_COMMANDS; c++)
        if (options[id].commands & ON(c))
            printf("%s%s", n++ ? ", " : " [", commands[c].name);
    printf(with_commands ? "]\n" : "\n");
}

static void print_help(const nn_model *m, int command)
{
    if (command >= 0) {
        const char *args = commands[command].args;
        printf("usage: %s %s%s%s [OPTIONS]\n%s\n\noptions:\n", program, commands[command].name,
               *args ? " " : "", args, commands[command].what);
    } else {
        printf("usage: %s COMMAND [OPTIONS]   (%s COMMAND --help: the command's options)\n\n"
               "commands:\n", program, program);
        for (int c = 0; c < N_COMMANDS; c++)
            printf("  %-12s %s\n", commands[c].name, commands[c].what);
        printf("  %-12s this text; %s --version: the version\n\noptions [the commands that "
               "take them]:\n", "--help", program);
    }
    for (int id = 0; id < N_OPTIONS; id++)
        if (command < 0 || (options[id].commands & ON(command)))
            print_option(m, id, command < 0);
}

/* ---- parsing ------------------------------------------------------------------------- */

typedef struct {
    nn_options o;
    int command;
    char **inputs;
    int n_inputs;
} Args;

static long parse_long(int command, const char *opt, const char *s, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max)
        usage_error(command, "%s wants a whole number from %ld to %ld, got '%s'", opt, min, max, s);
    return v;
}

static float parse_positive(int command, const char *opt, const char *s)
{
    char *end;
    float v = strtof(s, &end);
    if (*end || end == s || !(v > 0) || !isfinite(v))
        usage_error(command, "%s wants a positive number, got '%s'", opt, s);
    return v;
}

static nn_format parse_format(int command, const char *s)
{
    static const char *const names[] = {"text", "csv", "json", NULL};
    for (int f = 0; names[f]; f++)
        if (strcmp(s, names[f]) == 0)
            return (nn_format)f;
    const char *close = nn_closest_word(s, names);
    usage_error(command, "--format is text, csv or json, not '%s'%s%s%s", s,
                close ? "; did you mean '" : "", close ? close : "", close ? "'?" : "");
}

static const char *parse_split(int command, const char *s)
{
    static const char *const names[] = {"train", "validation", "test", NULL};
    for (int i = 0; names[i]; i++)
        if (strcmp(s, names[i]) == 0)
            return names[i];
    const char *close = nn_closest_word(s, names);
    usage_error(command, "--split is train, validation or test, not '%s'%s%s%s", s,
                close ? "; did you mean '" : "", close ? close : "", close ? "'?" : "");
}

static void set_option(Args *a, OptionId id, const char *v)
{
    nn_options *o = &a->o;
    const char *opt = options[id].name;
    int c = a->command;
    switch (id) {
    case OPT_EPOCHS: o->epochs = (int)parse_long(c, opt, v, 1, 1000000); break;
    case OPT_BATCH_SIZE: o->batch_size = (int)parse_long(c, opt, v, 1, 1 << 20); break;
    case OPT_LEARNING_RATE: o->learning_rate = parse_positive(c, opt, v); break;
    case OPT_SEED:
        o->seed = (uint64_t)parse_long(c, opt, v, 0, 0x7fffffffffffffffL);
        o->has_seed = 1;
        break;
    case OPT_THREADS: o->threads = (int)parse_long(c, opt, v, 1, 1024); break;
    case OPT_DATA: o->data_dir = v; break;
    case OPT_LIMIT: o->limit = (int)parse_long(c, opt, v, 1, 1 << 30); break;
    case OPT_NO_SHUFFLE: o->shuffle = 0; break;
    case OPT_SAVE: o->save = v; break;
    case OPT_SAVE_EVERY: o->save_every = (int)parse_long(c, opt, v, 1, 1 << 30); break;
    case OPT_RESUME: o->resume = v; break;
    case OPT_HISTORY: o->history = v; break;
    case OPT_QUIET: o->quiet = 1; break;
    case OPT_WEIGHTS: o->weights = v; break;
    case OPT_SHOW: o->show = (int)parse_long(c, opt, v, 1, 1 << 20); break;
    case OPT_CONFUSION: o->confusion = 1; break;
    case OPT_NPY: o->npy = v; break;
    case OPT_SERIES: o->series = v; break;
    case OPT_OUT: o->out = v; break;
    case OPT_INPUT: o->input = v; break;
    case OPT_ALL: o->all = 1; break;
    case OPT_FORMAT: o->format = parse_format(c, v); break;
    case OPT_SKIP_MISSING: o->skip_missing = 1; break;
    case OPT_REPORT: o->report = v; break;
    case OPT_SPLIT: o->split = parse_split(c, v); break;
    case OPT_COUNT: o->count = (int)parse_long(c, opt, v, 1, 1024); break;
    case OPT_AUGMENTED: o->augmented = 1; break;
    case OPT_MAX_PIXELS: o->max_pixels = parse_long(c, opt, v, 1, 1L << 31); break;
    case N_OPTIONS: break;
    }
}

/* The commands that take an option, as "train" or "evaluate, predict". */
static const char *takers(OptionId id, char *buf, size_t len)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int c = 0; c < N_COMMANDS; c++)
        if (options[id].commands & ON(c))
            used += (size_t)snprintf(buf + used, len - used, "%s%s", used ? ", " : "",
                                     commands[c].name);
    return buf;
}

/* --NAME or --NAME=VALUE, known and taken by the command. */
static OptionId find_option(int command, const char *arg, size_t len)
{
    const char *names[N_OPTIONS + 1] = {0}, *mine[N_OPTIONS + 1] = {0};
    for (int id = 0, n = 0; id < N_OPTIONS; id++) {
        names[id] = options[id].name;
        if (strlen(names[id]) == len && strncmp(arg, names[id], len) == 0) {
            char buf[160];
            if (!(options[id].commands & ON(command)))
                usage_error(command, "%s does not take %s (an option of %s)",
                            commands[command].name, names[id], takers(id, buf, sizeof buf));
            return (OptionId)id;
        }
        if (options[id].commands & ON(command))
            mine[n++] = names[id];
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), arg);
    const char *close = nn_closest_word(name, mine);
    close = close ? close : nn_closest_word(name, names);
    usage_error(command, "unknown option '%s'%s%s%s", name, close ? "; did you mean '" : "",
                close ? close : "", close ? "'?" : "");
}

static int find_command(const nn_model *m, const char *name)
{
    if (strcmp(name, "fit") == 0)
        return TRAIN;
    const char *names[N_COMMANDS + 2] = {"fit"};
    for (int c = 0; c < N_COMMANDS; c++) {
        if (strcmp(name, commands[c].name) == 0)
            return c;
        names[c + 1] = commands[c].name;
    }
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        print_help(m, -1);
        exit(0);
    }
    if (strcmp(name, "--version") == 0) {
        printf("%s (nncc runtime %s)\n", m->name, NNRT_VERSION);
        exit(0);
    }
    const char *close = nn_closest_word(name, names);
    usage_error(-1, "unknown command '%s'%s%s%s", name, close ? "; did you mean '" : "",
                close ? close : "", close ? "'?" : "");
}

/* An argument that is an option (not a negative number, which is an input). */
static bool is_option(const char *arg)
{
    if (arg[0] != '-' || !arg[1])
        return false;
    char *end;
    strtod(arg, &end);
    return end == arg || (*end != '\0' && *end != ',');
}

static void parse_option(Args *a, int argc, char **argv, int *i)
{
    const char *arg = argv[*i];
    if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0)
        return;
    const char *eq = strchr(arg, '=');
    OptionId id = find_option(a->command, arg, eq ? (size_t)(eq - arg) : strlen(arg));
    const char *v = eq ? eq + 1 : NULL;
    if (!options[id].value && v)
        usage_error(a->command, "%s takes no value", options[id].name);
    if (options[id].value && !v) {
        if (*i + 1 >= argc)
            usage_error(a->command, "%s needs a value (%s)", options[id].name, options[id].value);
        v = argv[++*i];
    }
    set_option(a, id, v);
}

static Args parse_args(const nn_model *m, int argc, char **argv)
{
    Args a = {0};
    a.o.program = program;
    a.o.epochs = m->fit.epochs;
    a.o.batch_size = m->fit.batch_size;
    a.o.shuffle = m->fit.shuffle;
    if (argc < 2)
        usage_error(-1, "no command (train, evaluate, predict, summary, ...)");
    a.command = find_command(m, argv[1]);
    a.inputs = nn_alloc((size_t)argc, sizeof *a.inputs);
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            print_help(m, a.command);
            free(a.inputs);
            exit(0);
        }
        if (is_option(argv[i]))
            parse_option(&a, argc, argv, &i);
        else
            a.inputs[a.n_inputs++] = argv[i];
    }
    return a;
}

static void need(const Args *a, const char *value, const char *option)
{
    if (!value)
        usage_error(a->command, "%s needs %s", commands[a->command].name, option);
}

/* Only predict takes inputs. */
static void no_inputs(const Args *a)
{
    if (a->n_inputs && a->command != PREDICT)
        usage_error(a->command, "%s takes no argument '%s'", commands[a->command].name,
                    a->inputs[0]);
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

/* ---- dispatch ------------------------------------------------------------------------- */

/* `summary`: the model's layers as the rows of Keras's table (summary.c). */
void nn_model_summary(FILE *out, const nn_model *m)
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
    nn_print_summary(out, m->name, rows, n);
    free(rows);
}

static int run(const nn_model *m, const Args *a)
{
    no_inputs(a);
    switch (a->command) {
    case TRAIN:
        if (a->o.save_every)
            need(a, a->o.save, "--save W.npz with --save-every");
        if (a->o.skip_missing)
            need(a, a->o.weights, "--weights W with --skip-missing");
        if (a->o.save && nn_h5_check_writable(a->o.save) != 0)
            return -1;
        if (a->o.weights && a->o.resume)
            usage_error(a->command, "--weights starts from weights with a fresh optimizer at "
                                    "epoch 0; --resume continues a checkpoint: give one of them");
        return nn_train(m, &a->o);
    case EVALUATE:
        need(a, a->o.weights, "--weights W.npz");
        return nn_evaluate(m, &a->o);
    case PREDICT:
        if ((a->o.series && a->o.npy) || ((a->o.series || a->o.npy) && a->n_inputs))
            usage_error(a->command, "give inputs, --npy or --series, one of them");
        return nn_predict(m, &a->o, a->inputs, a->n_inputs);
    case SUMMARY:
        nn_model_summary(stdout, m);
        return 0;
    case INIT:
        need(a, a->o.save, "--save W.npz");
        if (nn_h5_check_writable(a->o.save) != 0)
            return -1;
        return nn_init_weights(m, &a->o);
    case ACTIVATIONS:
        need(a, a->o.input, "--input IMAGE");
        need(a, a->o.out, "--out DIR");
        return nn_activations(m, &a->o);
    case SHOW_DATA:
        need(a, a->o.out, "--out GRID.png");
        return nn_show_data(m, &a->o);
    case PLOT:
        need(a, a->o.history, "--history H.csv");
        need(a, a->o.out, "--out CURVES.png");
        return nn_plot_command(m, &a->o);
    default:
        return nn_gradcheck(m, &a->o);
    }
}

/* Several ranks on one machine share its cores: each gets its share (at
 * least 1), and no more than mpirun's binding leaves it. */
static int threads_per_rank(void)
{
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int share = (int)(online > 0 ? online : 1) / nn_dist_local_size();
    int bound = omp_get_num_procs();
    share = share < bound ? share : bound;
    return share > 0 ? share : 1;
}

int nnrt_main(const nn_model *m, int argc, char **argv)
{
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;
    program = slash ? slash + 1 : argc > 0 ? argv[0] : m->name;
    Args a = parse_args(m, argc, argv);
    if (nn_dist_init(&argc, &argv) != 0)
        return 1;
    if (a.o.threads > 0)
        omp_set_num_threads(a.o.threads);
    else if (nn_dist_local_size() > 1 && !getenv("OMP_NUM_THREADS"))
        omp_set_num_threads(threads_per_rank());
    if (a.o.max_pixels > 0)
        nn_set_max_pixels(a.o.max_pixels);
    flush_denormals();
    int rc = run(m, &a);
    free(a.inputs);
    fflush(stdout);
    return nn_dist_finalize(rc == 0 ? 0 : rc == 130 ? 130 : 1);
}
