/* main.c - nncc's command line and its pipeline, read top to bottom:
 * load the YAML, build the Model, infer shapes, check, plan memory, emit C.
 * The C is made in memory and written only when every stage succeeded, to a
 * temporary file renamed over the output, so an error never leaves a file. */
#include "nncc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char usage[] =
    "usage: nncc MODEL.yaml -o OUT.c [--header OUT.h] [--no-main]\n"
    "       nncc MODEL.yaml --check\n"
    "       nncc MODEL.yaml --inference --weights W.npz -o OUT.c\n"
    "       nncc --help | --version\n"
    "\n"
    "Compiles a Keras-style model description into C that trains it. MODEL may also be a\n"
    "Keras export (.json, .yaml) or a Keras HDF5 file (model.h5: its model_config).\n"
    "  -o OUT.c        write the trainer (OUT.c: '-' for standard output)\n"
    "  --header OUT.h  also write a header declaring the model, for your own build\n"
    "  --no-main       leave out main(), to link the model into another program\n"
    "  --check         validate the model, infer shapes, print the summary; write nothing\n"
    "  --inference     write self-contained C for inference instead: NAME_predict(in, out),\n"
    "                  the weights of --weights W.npz (or a Keras W.h5) built in, no\n"
    "                  runtime, no malloc\n";

typedef struct {
    const char *model, *out, *header, *weights;
    bool no_main, check, inference;
} Options;

_Noreturn static void usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "nncc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n%s", usage);
    exit(2);
}

static const char *option_value(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc)
        usage_error("%s needs a value", argv[*i]);
    return argv[++*i];
}

static Options parse_args(int argc, char **argv)
{
    Options o = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("nncc %s\n", NNCC_VERSION);
            exit(0);
        } else if (strcmp(a, "-o") == 0) {
            o.out = option_value(argc, argv, &i);
        } else if (strcmp(a, "--header") == 0) {
            o.header = option_value(argc, argv, &i);
        } else if (strcmp(a, "--no-main") == 0) {
            o.no_main = true;
        } else if (strcmp(a, "--check") == 0) {
            o.check = true;
        } else if (strcmp(a, "--inference") == 0) {
            o.inference = true;
        } else if (strcmp(a, "--weights") == 0) {
            o.weights = option_value(argc, argv, &i);
        } else if (a[0] == '-' && a[1]) {
            usage_error("unknown option '%s'", a);
        } else if (o.model) {
            usage_error("more than one model file ('%s')", a);
        } else {
            o.model = a;
        }
    }
    if (!o.model)
        usage_error("%s", "no model file");
    if (!o.check && !o.out)
        usage_error("%s", "no output: give -o OUT.c (or --check)");
    if (o.check && (o.out || o.header))
        usage_error("%s", "--check writes nothing; leave out -o and --header");
    if (o.inference != (o.weights != NULL))
        usage_error("%s", "--inference and --weights W.npz go together");
    if (o.inference && (o.check || o.header || o.no_main))
        usage_error("%s", "--inference writes one C file; leave out --check, --header and --no-main");
    return o;
}

/* An output is written to a temporary file beside it, and renamed over it
 * only once every output is written: an error leaves no file, whole or half. */
typedef struct {
    const char *path;
    char tmp[4096];
} Staged;

static Staged *staged[2];
static int n_staged;

/* Removes the temporary files; error_file() exits, so this runs at exit. */
static void remove_staged(void)
{
    for (int i = 0; i < n_staged; i++)
        remove(staged[i]->tmp);
}

static void stage(Staged *s, const char *path, const char *text, size_t len)
{
    s->path = path;
    if (strcmp(path, "-") == 0) {
        /* A full disk or a closed pipe must not pass as success. */
        if (fwrite(text, 1, len, stdout) != len || fflush(stdout) != 0)
            error_file("<stdout>", "cannot write: %s", strerror(errno));
        return;
    }
    if (snprintf(s->tmp, sizeof s->tmp, "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof s->tmp)
        error_file(path, "path too long");
    FILE *f = fopen(s->tmp, "wb");
    if (!f)
        error_file(path, "cannot write: %s", strerror(errno));
    staged[n_staged++] = s;
    bool ok = fwrite(text, 1, len, f) == len;
    ok = (fflush(f) == 0) && ok;
    ok = (fclose(f) == 0) && ok;
    if (!ok)
        error_file(path, "cannot write: %s", strerror(errno));
}

static void commit_staged(void)
{
    for (int i = 0; i < n_staged; i++)
        if (rename(staged[i]->tmp, staged[i]->path) != 0)
            error_file(staged[i]->path, "cannot write: %s", strerror(errno));
    n_staged = 0;
}

typedef struct {
    char *text;
    size_t len;
} Output;

static Output emit_to_memory(const Model *m, const Plan *p, const Options *opt, bool header)
{
    Output o = {0};
    FILE *f = open_memstream(&o.text, &o.len);
    if (!f)
        error_at(NULL, "out of memory");
    if (header)
        emit_header(f, m);
    else if (opt->inference)
        emit_inference(f, m, p, opt->weights);
    else
        emit_trainer(f, m, p, !opt->no_main);
    fclose(f);
    return o;
}

int main(int argc, char **argv)
{
    Options o = parse_args(argc, argv);
    static Model m;
    model_from_yaml(&m, yaml_load(o.model), o.model);
    infer_shapes(&m);
    check_model(&m);
    Plan *plan = plan_model(&m, o.inference);   /* also for --check: planning finds clashing C names */
    warn_missing_data(&m);                      /* after every error: a failing run says one line */
    if (o.check) {
        summary_print(stdout, &m);
        plan_free(plan);
        return 0;
    }
    if (o.inference)
        plan_load_weights(plan, &m, o.weights);
    Output c = emit_to_memory(&m, plan, &o, false);
    Output h = {0};
    if (o.header)
        h = emit_to_memory(&m, plan, &o, true);
    static Staged out_c, out_h;
    atexit(remove_staged);
    stage(&out_c, o.out, c.text, c.len);
    if (o.header)
        stage(&out_h, o.header, h.text, h.len);
    commit_staged();
    free(c.text);
    free(h.text);
    emit_release();
    plan_free(plan);
    return 0;
}
