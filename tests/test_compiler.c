/* test_compiler.c - nncc as a user runs it: `./nncc FILE.yaml -o OUT.c` and
 * `./nncc FILE.yaml --check`, from the repository's root (make nncc first).
 *
 * Error cases are files, tests/cases/NAME.yaml, so that a reader can run nncc
 * on them by hand. The first line of each says what nncc must answer:
 *
 *     # expect: LINE:COL: error: FRAGMENT ... FRAGMENT
 *
 * stderr must be exactly one line, `tests/cases/NAME.yaml:LINE:COL: error: `
 * followed by a message that starts with the first fragment and holds the
 * others in order. Lines and columns were counted by hand (1-based; the
 * expect line itself is line 1). A failing run must exit 1, write nothing and
 * leave an existing output file as it was.
 *
 * The positive checks compare against numbers worked out by hand (parameter
 * counts in the comments beside each model) and against generated/, which
 * must be what this nncc emits for models/.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <glob.h>
#include <stdbool.h>


/* ---- running nncc ---------------------------------------------------------------------- */

typedef struct {
    int status;                  /* exit status, or 128 + signal */
    char *out, *err;             /* what it printed, NUL-terminated */
    size_t out_len;
} Run;

/* The whole file, NUL-terminated; NULL if it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    assert_non_null(buf);
    size_t got;
    while ((got = fread(buf + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n - 1 == 0) {
            cap *= 2;
            buf = realloc(buf, cap);
            assert_non_null(buf);
        }
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = n;
    return buf;
}


static void run_free(Run *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

/* Runs ./nncc with the arguments (NULL-terminated) directly, no shell between,
 * so that any bytes can be in a file name; stdout and stderr go to files. */
static void nncc(Run *r, ...)
{
    const char *argv[16] = {nncc_path()};
    int argc = 1;
    va_list ap;
    va_start(ap, r);
    for (const char *a; (a = va_arg(ap, const char *)) != NULL;) {
        assert_true(argc < 15);
        argv[argc++] = a;
    }
    va_end(ap);
    argv[argc] = NULL;
    char out_path[512], err_path[512];
    snprintf(out_path, sizeof out_path, "%s/nncc.stdout", scratch);
    snprintf(err_path, sizeof err_path, "%s/nncc.stderr", scratch);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int out = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        int err = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (out < 0 || err < 0 || dup2(out, 1) < 0 || dup2(err, 2) < 0)
            _exit(127);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    r->out = slurp(out_path, &r->out_len);
    r->err = slurp(err_path, NULL);
    assert_non_null(r->out);
    assert_non_null(r->err);
    unlink(out_path);
    unlink(err_path);
}

static int sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int sh(const char *fmt, ...)
{
    char cmd[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int st = system(cmd);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static bool one_line(const char *s)
{
    size_t len = strlen(s);
    return len > 0 && s[len - 1] == '\n' && strchr(s, '\n') == s + len - 1;
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    if (access(nncc_path(), X_OK) != 0) {
        fprintf(stderr, "test_compiler: %s is missing: run `make nncc` in the repository's root\n",
                nncc_path());
        return -1;
    }
    return scratch_setup(state);
}


/* ---- usage ------------------------------------------------------------------------------ */

static void expect_usage_error(Run *r, const char *what)
{
    if (r->status != 2 || !strstr(r->err, what) || !strstr(r->err, "usage: nncc"))
        fail_msg("expected exit 2 with '%s' and the usage, got %d: %s", what, r->status, r->err);
    assert_string_equal(r->out, "");
    run_free(r);
}

static void test_usage(void **state)
{
    (void)state;
    Run r;
    nncc(&r, NULL);
    expect_usage_error(&r, "no model file");
    nncc(&r, "--frobnicate", "models/hello.yaml", NULL);
    expect_usage_error(&r, "unknown option '--frobnicate'");
    nncc(&r, "models/hello.yaml", "-o", NULL);
    expect_usage_error(&r, "-o needs a value");
    nncc(&r, "models/hello.yaml", NULL);
    expect_usage_error(&r, "no output");
    nncc(&r, "models/hello.yaml", "--check", "-o", in_scratch("x.c"), NULL);
    expect_usage_error(&r, "--check writes nothing");
    nncc(&r, "models/hello.yaml", "models/fashion_mlp.yaml", "--check", NULL);
    expect_usage_error(&r, "more than one model file");
    assert_false(file_exists(in_scratch("x.c")));

    nncc(&r, "--help", NULL);
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "usage: nncc MODEL.yaml -o OUT.c"));
    assert_string_equal(r.err, "");
    run_free(&r);

    nncc(&r, "--version", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "nncc 0.1.0\n");
    run_free(&r);

    /* A file that is not there is a problem with the model, not with usage. */
    nncc(&r, "tests/cases/no_such_model.yaml", "--check", NULL);
    assert_int_equal(r.status, 1);
    assert_true(one_line(r.err));
    assert_non_null(strstr(r.err, "tests/cases/no_such_model.yaml: error: cannot open"));
    run_free(&r);
}

/* ---- the error cases in tests/cases ----------------------------------------------------- */

typedef struct {
    char place[64];              /* "LINE:COL" */
    char fragments[8][256];
    int n;
} Expect;

static void parse_expect(const char *file, const char *text, Expect *e)
{
    const char *tag = "# expect: ";
    const char *nl = strchr(text, '\n');
    if (strncmp(text, tag, strlen(tag)) != 0 || !nl)
        fail_msg("%s: the first line must be '# expect: LINE:COL: error: TEXT'", file);
    char line[1024];
    snprintf(line, sizeof line, "%.*s", (int)(nl - text - strlen(tag)), text + strlen(tag));
    char *err = strstr(line, ": error: ");
    if (!err)
        fail_msg("%s: the expect line has no ': error: '", file);
    snprintf(e->place, sizeof e->place, "%.*s", (int)(err - line), line);
    e->n = 0;
    for (char *p = err + strlen(": error: "); p && e->n < 8;) {
        char *dots = strstr(p, " ... ");
        snprintf(e->fragments[e->n++], sizeof e->fragments[0], "%.*s",
                 dots ? (int)(dots - p) : (int)strlen(p), p);
        p = dots ? dots + 5 : NULL;
    }
}

/* FILE:LINE:COL: error: MESSAGE, one line, MESSAGE as the fragments say. */
static void check_message(const char *file, const Expect *e, const char *err)
{
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:%s: error: %s", file, e->place, e->fragments[0]);
    if (!one_line(err) || strncmp(err, prefix, strlen(prefix)) != 0)
        fail_msg("%s: expected one line starting\n  %s\ngot\n  %s", file, prefix, err);
    const char *at = err + strlen(prefix);
    for (int i = 1; i < e->n; i++) {
        const char *found = strstr(at, e->fragments[i]);
        if (!found)
            fail_msg("%s: expected '%s' in the message, got\n  %s", file, e->fragments[i], err);
        at = found + strlen(e->fragments[i]);
    }
}

static void check_case(const char *file)
{
    char *text = slurp(file, NULL);
    assert_non_null(text);
    Expect e;
    parse_expect(file, text, &e);
    free(text);

    /* -o over an existing file: exit 1, the file as it was, nothing beside it. */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/out", scratch);
    assert_int_equal(mkdir(dir, 0755), 0);
    const char *old = in_scratch("out/old.c"), *fresh = in_scratch("out/new.c");
    const char *before = "/* written before the failing run */\n";
    write_text(old, before);
    Run r;
    nncc(&r, file, "-o", old, NULL);
    if (r.status != 1)
        fail_msg("%s: -o exited %d, expected 1; stderr: %s", file, r.status, r.err);
    check_message(file, &e, r.err);
    assert_string_equal(r.out, "");
    run_free(&r);
    char *after = slurp(old, NULL);
    if (!after || strcmp(after, before) != 0)
        fail_msg("%s: the failing run changed the existing output file", file);
    free(after);

    /* -o to a new file: exit 1, no file. */
    nncc(&r, file, "-o", fresh, NULL);
    assert_int_equal(r.status, 1);
    check_message(file, &e, r.err);
    run_free(&r);
    if (file_exists(fresh) || count_entries(dir) != 1)
        fail_msg("%s: a failing run left a file in %s", file, dir);
    rm_tree(dir);

    /* --check: the same message, nothing on stdout. */
    nncc(&r, file, "--check", NULL);
    if (r.status != 1)
        fail_msg("%s: --check exited %d, expected 1", file, r.status);
    check_message(file, &e, r.err);
    assert_string_equal(r.out, "");
    run_free(&r);
}

static void test_error_cases(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("tests/cases/*.yaml", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 40);   /* the cases are there, not silently gone */
    for (size_t i = 0; i < g.gl_pathc; i++)
        check_case(g.gl_pathv[i]);
    globfree(&g);
}

/* ---- the summary and parameter counts ---------------------------------------------------- */

static void test_summary_fashion_mlp(void **state)
{
    (void)state;
    /* Keras: Flatten 784; Dense 784*128 + 128 = 100480; Dense 128*10 + 10 = 1290. */
    static const char expected[] =
        "Model: \"fashion_mlp\"\n"
        "_________________________________________________________________\n"
        " Layer (type)                Output Shape              Param #\n"
        "=================================================================\n"
        " flatten (Flatten)           (None, 784)               0\n"
        "\n"
        " dense (Dense)               (None, 128)               100480\n"
        "\n"
        " dense_1 (Dense)             (None, 10)                1290\n"
        "\n"
        "=================================================================\n"
        "Total params: 101,770\n"
        "Trainable params: 101,770\n"
        "Non-trainable params: 0\n"
        "_________________________________________________________________\n";
    Run r;
    nncc(&r, "models/fashion_mlp.yaml", "--check", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    assert_string_equal(r.out, expected);
    run_free(&r);
}

/* The text with every run of blanks made one space and each line trimmed, so
 * that rows compare however the columns are padded. */
static char *squeeze(const char *s)
{
    char *t = malloc(strlen(s) + 2), *o = t;
    assert_non_null(t);
    *o++ = '\n';
    bool line_start = true;
    for (; *s; s++) {
        if (*s == ' ' || *s == '\t') {
            if (!line_start && s[1] != ' ' && s[1] != '\t' && s[1] != '\n' && s[1])
                *o++ = ' ';
            continue;
        }
        *o++ = *s;
        line_start = *s == '\n';
    }
    *o = '\0';
    return t;
}

/* Checks the summary of model (YAML text) against rows in order, then the totals. */
static void expect_summary(const char *model, const char *const *rows, const char *total,
                           const char *trainable, const char *frozen)
{
    const char *path = in_scratch("summary.yaml");
    write_text(path, model);
    Run r;
    nncc(&r, path, "--check", NULL);
    if (r.status != 0)
        fail_msg("--check exited %d: %s", r.status, r.err);
    char *text = squeeze(r.out);
    const char *at = text;
    char want[256];
    for (int i = 0; rows[i]; i++) {
        snprintf(want, sizeof want, "\n%s\n", rows[i]);
        const char *found = strstr(at, want);
        if (!found)
            fail_msg("no row '%s' (in order) in\n%s", rows[i], r.out);
        at = found + strlen(want) - 1;
    }
    snprintf(want, sizeof want, "\nTotal params: %s\nTrainable params: %s\nNon-trainable params: %s\n",
             total, trainable, frozen);
    if (!strstr(text, want))
        fail_msg("expected%s in\n%s", want, r.out);
    free(text);
    run_free(&r);
}

static void test_param_counts(void **state)
{
    (void)state;
    /* 784*512+512 = 401920, 512*256+256 = 131328, 256*10+10 = 2570: 535818 */
    expect_summary("name: mlp\ninput_shape: [28, 28]\nlayers:\n  - Flatten\n"
                   "  - Dense: {units: 512, activation: relu}\n"
                   "  - Dense: {units: 256, activation: relu}\n"
                   "  - Dense: {units: 10, activation: softmax}\n",
                   (const char *const[]){"flatten (Flatten) (None, 784) 0",
                                         "dense (Dense) (None, 512) 401920",
                                         "dense_1 (Dense) (None, 256) 131328",
                                         "dense_2 (Dense) (None, 10) 2570", NULL},
                   "535,818", "535,818", "0");

    /* The course's CNN: 3*3*1*64+64 = 640 -> 26x26, pool 13x13,
     * 3*3*64*64+64 = 36928 -> 11x11, pool 5x5, 5*5*64 = 1600,
     * 1600*128+128 = 204928, 128*10+10 = 1290: 243786 */
    expect_summary("name: cnn\ninput_shape: [28, 28, 1]\nlayers:\n"
                   "  - Conv2D: {filters: 64, kernel_size: 3, activation: relu}\n"
                   "  - MaxPooling2D: {pool_size: 2}\n"
                   "  - Conv2D: {filters: 64, kernel_size: 3, activation: relu}\n"
                   "  - MaxPooling2D: {pool_size: 2}\n"
                   "  - Flatten\n"
                   "  - Dense: {units: 128, activation: relu}\n"
                   "  - Dense: {units: 10, activation: softmax}\n",
                   (const char *const[]){"conv2d (Conv2D) (None, 26, 26, 64) 640",
                                         "max_pooling2d (MaxPooling2D) (None, 13, 13, 64) 0",
                                         "conv2d_1 (Conv2D) (None, 11, 11, 64) 36928",
                                         "max_pooling2d_1 (MaxPooling2D) (None, 5, 5, 64) 0",
                                         "flatten (Flatten) (None, 1600) 0",
                                         "dense (Dense) (None, 128) 204928",
                                         "dense_1 (Dense) (None, 10) 1290", NULL},
                   "243,786", "243,786", "0");

    /* Default names count per type. 8*16+16 = 144; a frozen 16*4 without bias
     * = 64; batch norm on 4: gamma, beta (trainable) + mean, variance = 16, 8
     * of them frozen; 4*3+3 = 15. Total 239; frozen 64+8 = 72. */
    expect_summary("name: names\ninput_shape: [8]\nlayers:\n"
                   "  - Dense: {units: 16, activation: relu}\n"
                   "  - Dropout: {rate: 0.2}\n"
                   "  - Dense: {units: 4, use_bias: false, trainable: false}\n"
                   "  - Dropout: {rate: 0.5}\n"
                   "  - BatchNormalization\n"
                   "  - Activation: {activation: tanh}\n"
                   "  - Dense: {units: 3, activation: softmax, name: head}\n",
                   (const char *const[]){"dense (Dense) (None, 16) 144",
                                         "dropout (Dropout) (None, 16) 0",
                                         "dense_1 (Dense) (None, 4) 64",
                                         "dropout_1 (Dropout) (None, 4) 0",
                                         "batch_normalization (BatchNormalization) (None, 4) 16",
                                         "activation (Activation) (None, 4) 0",
                                         "head (Dense) (None, 3) 15", NULL},
                   "239", "167", "72");

    /* Strides and padding as TensorFlow: same, stride 2: ceil(28/2) = 14,
     * 3*3*3*16+16 = 448; pool 3 stride 2 valid: (14-3)/2+1 = 6; pool 2: 3;
     * global average: 16; 16*1+1 = 17. Total 465. */
    expect_summary("name: strided\ninput_shape: [28, 28, 3]\nlayers:\n"
                   "  - Conv2D: {filters: 16, kernel_size: 3, strides: 2, padding: same}\n"
                   "  - MaxPooling2D: {pool_size: 3, strides: 2}\n"
                   "  - AveragePooling2D\n"
                   "  - GlobalAveragePooling2D\n"
                   "  - Dense: {units: 1, activation: sigmoid}\n",
                   (const char *const[]){"conv2d (Conv2D) (None, 14, 14, 16) 448",
                                         "max_pooling2d (MaxPooling2D) (None, 6, 6, 16) 0",
                                         "average_pooling2d (AveragePooling2D) (None, 3, 3, 16) 0",
                                         "global_average_pooling2d (GlobalAveragePooling2D) (None, 16) 0",
                                         "dense (Dense) (None, 1) 17", NULL},
                   "465", "465", "0");

    /* input_shape on the first layer, as Keras allows; a 3x5 kernel on 10x12x2:
     * 8x8x3, 3*5*2*3+3 = 93; 8*8*3 = 192, 192*2+2 = 386. Total 479. */
    expect_summary("name: first\nlayers:\n"
                   "  - Conv2D: {filters: 3, kernel_size: [3, 5], input_shape: [10, 12, 2]}\n"
                   "  - Flatten\n"
                   "  - Dense: {units: 2}\n",
                   (const char *const[]){"conv2d (Conv2D) (None, 8, 8, 3) 93",
                                         "flatten (Flatten) (None, 192) 0",
                                         "dense (Dense) (None, 2) 386", NULL},
                   "479", "479", "0");

    /* Keras's class spellings of the default initialisers are the same
     * initialisers: 3*2+2 = 8. */
    expect_summary("name: init\ninput_shape: [3]\nlayers:\n"
                   "  - Dense: {units: 2, kernel_initializer: GlorotUniform, "
                   "bias_initializer: Zeros}\n",
                   (const char *const[]){"dense (Dense) (None, 2) 8", NULL}, "8", "8", "0");

    /* The course's first program: one neuron on one input, 1*1+1 = 2. */
    char *hello = slurp("models/hello.yaml", NULL);
    assert_non_null(hello);
    expect_summary(hello, (const char *const[]){"dense (Dense) (None, 1) 2", NULL}, "2", "2", "0");
    free(hello);
}

/* ---- the C that nncc writes ------------------------------------------------------------------ */

/* Each line of err warns of data not on this machine (models/horse_or_human's
 * images, say), which changes nothing nncc writes; anything else is noise. */
static bool only_data_warnings(const char *err)
{
    for (const char *line = err; *line; line = strchr(line, '\n') + 1) {
        const char *nl = strchr(line, '\n'), *w = strstr(line, ": warning: data '");
        if (!nl || !w || w > nl)
            return false;
    }
    return true;
}

static void emit(const char *model, const char *out)
{
    Run r;
    nncc(&r, model, "-o", out, NULL);
    if (r.status != 0)
        fail_msg("nncc %s -o %s exited %d: %s", model, out, r.status, r.err);
    if (!only_data_warnings(r.err))
        fail_msg("nncc %s -o %s printed: %s", model, out, r.err);
    assert_string_equal(r.out, "");
    run_free(&r);
}

/* As the Makefile builds a trainer, warnings being errors. */
static void expect_compiles(const char *c_file)
{
    if (sh("cc -std=c11 -Wall -Wextra -Werror -O2 -fopenmp -Iruntime -c -o /dev/null '%s'",
           c_file) != 0)
        fail_msg("the C that nncc wrote (%s) does not compile cleanly", c_file);
}

static void test_output_compiles(void **state)
{
    (void)state;
    emit("models/hello.yaml", in_scratch("hello.c"));
    expect_compiles(in_scratch("hello.c"));
    emit("models/fashion_mlp.yaml", in_scratch("fashion_mlp.c"));
    expect_compiles(in_scratch("fashion_mlp.c"));
    /* Layers with nothing to learn first: nothing flows back through them. */
    write_text(in_scratch("pool_first.yaml"),
               "name: pool_first\ninput_shape: [8, 8, 2]\nlayers:\n"
               "  - MaxPooling2D\n  - Dropout: {rate: 0.5}\n"
               "  - Conv2D: {filters: 2, kernel_size: 3, activation: relu}\n"
               "  - Flatten\n  - Dense: {units: 3, activation: softmax}\n"
               "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n");
    emit(in_scratch("pool_first.yaml"), in_scratch("pool_first.c"));
    expect_compiles(in_scratch("pool_first.c"));
}

/* Keras's class names name the optimizers too (any case), and what an
 * optimizer was given reaches the trainer: AdamW's Keras default weight_decay
 * 0.004 (keras/optimizers/adamw.py) and the clipping. */
static void test_optimizer_spellings(void **state)
{
    (void)state;
    static const char *const names[] = {"SGD", "Adam", "RMSprop", "Nadam", "Adamax", "Adagrad",
                                        "AdamW"};
    static const char model[] = "name: opt\ninput_shape: [2]\nlayers:\n  - Dense: {units: 1}\n"
                                "compile: {optimizer: %s, loss: mse}\n";
    char text[512], expect[64];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(text, sizeof text, model, names[i]);
        write_text(in_scratch("opt.yaml"), text);
        emit(in_scratch("opt.yaml"), in_scratch("opt.c"));
        char *c = slurp(in_scratch("opt.c"), NULL);
        snprintf(expect, sizeof expect, "NN_OPT_%s", names[i]);
        for (char *p = expect; *p; p++)
            *p = (char)toupper((unsigned char)*p);
        if (!strstr(c, expect))
            fail_msg("optimizer %s: no %s in the trainer", names[i], expect);
        free(c);
    }
    snprintf(text, sizeof text, model, "{name: AdamW, learning_rate: 0.01, clipnorm: 1.5}");
    write_text(in_scratch("opt.yaml"), text);
    emit(in_scratch("opt.yaml"), in_scratch("opt.c"));
    char *c = slurp(in_scratch("opt.c"), NULL);
    assert_non_null(strstr(c, ".kind = NN_OPT_ADAMW, .learning_rate = 0.01f"));
    assert_non_null(strstr(c, ".weight_decay = 0.004f, .clipnorm = 1.5f"));
    free(c);
    expect_compiles(in_scratch("opt.c"));
}

/* Keras reads a shift range from 1 on as pixels: 4 must be accepted. */
static void test_pixel_shift_ranges(void **state)
{
    (void)state;
    write_text(in_scratch("shift.yaml"),
               "name: shift\ninput_shape: [8, 8, 1]\nlayers:\n"
               "  - Flatten\n  - Dense: {units: 2, activation: softmax}\n"
               "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
               "data: {augment: {width_shift_range: 4, height_shift_range: 2.5}}\n");
    Run r;
    nncc(&r, in_scratch("shift.yaml"), "--check", NULL);
    if (r.status != 0)
        fail_msg("nncc --check exited %d: %s", r.status, r.err);
    run_free(&r);
}

/* Keras's log names and mode auto, as the descriptor carries them: a function
 * logs as written (mae), a class as its default name (AUC: auc), and auto
 * makes an accuracy, auc, precision or recall grow and an error shrink. */
static void test_metric_names_and_modes(void **state)
{
    (void)state;
    write_text(in_scratch("modes.yaml"),
               "name: modes\ninput_shape: [3]\nlayers:\n  - Dense: {units: 1, activation: sigmoid}\n"
               "compile:\n  loss: {class_name: BinaryCrossentropy, config: {label_smoothing: 0.1}}\n"
               "  metrics: [mae, AUC, {class_name: Precision, config: {thresholds: 0.7}}]\n"
               "fit:\n  callbacks:\n"
               "    - EarlyStopping: {monitor: val_auc}\n"
               "    - ModelCheckpoint: {filepath: w.npz, monitor: val_mae}\n"
               "    - EarlyStopping: {monitor: precision, mode: min}\n"
               "    - StopAtThreshold: {monitor: acc_not_logged_here_so_val_loss, threshold: 1}\n");
    Run r;
    nncc(&r, in_scratch("modes.yaml"), "-o", in_scratch("modes.c"), NULL);
    assert_int_equal(r.status, 1);   /* the last monitor is not in the logs */
    assert_non_null(strstr(r.err, "the model logs loss, mae, auc, precision, val_loss, val_mae, "
                                  "val_auc, val_precision"));
    run_free(&r);
    sh("sed -i '$d' %s", in_scratch("modes.yaml"));
    nncc(&r, in_scratch("modes.yaml"), "-o", in_scratch("modes.c"), NULL);
    if (r.status != 0)
        fail_msg("nncc exited %d: %s", r.status, r.err);
    run_free(&r);
    char *c = slurp(in_scratch("modes.c"), NULL);
    assert_non_null(c);
    static const char *const want[] = {
        ".name = \"mae\", .val_name = \"val_mae\"", ".name = \"auc\", .val_name = \"val_auc\"",
        ".kind = NN_METRIC_PRECISION, .name = \"precision\"", ".threshold = 0.7f",
        ".label_smoothing = 0.1f", ".monitor = \"val_auc\"", ".monitor = \"val_mae\"",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(c, want[i]))
            fail_msg("the generated C has no %s", want[i]);
    /* In callback order: val_auc grows, val_mae shrinks, precision with mode min shrinks. */
    const char *a = strstr(c, ".monitor = \"val_auc\""), *b = strstr(c, ".monitor = \"val_mae\"");
    const char *p = strstr(c, ".monitor = \"precision\"");
    assert_non_null(p);
    assert_non_null(strstr(a, ".maximize = 1}"));
    assert_true(strstr(a, ".maximize = 1}") < b);
    assert_true(strstr(b, ".maximize = 0}") < p);
    assert_non_null(strstr(p, ".maximize = 0}"));
    free(c);
}

static void test_same_input_same_bytes(void **state)
{
    (void)state;
    emit("models/fashion_mlp.yaml", in_scratch("a.c"));
    emit("models/fashion_mlp.yaml", in_scratch("b.c"));
    size_t la, lb;
    char *a = slurp(in_scratch("a.c"), &la), *b = slurp(in_scratch("b.c"), &lb);
    assert_true(la > 0);
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(b);
    /* -o - writes the same bytes to stdout. */
    Run r;
    nncc(&r, "models/fashion_mlp.yaml", "-o", "-", NULL);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.out_len, la);
    assert_memory_equal(r.out, a, la);
    run_free(&r);
    free(a);
}

/* Every string literal in a C file, decoded, one after another with '\1'
 * between (comments and character constants skipped). */
static char *string_literals(const char *c)
{
    char *out = malloc(strlen(c) + 1), *o = out;
    assert_non_null(out);
    while (*c) {
        if (c[0] == '/' && c[1] == '*') {
            const char *end = strstr(c + 2, "*/");
            assert_non_null(end);
            c = end + 2;
        } else if (c[0] == '/' && c[1] == '/') {
            c += strcspn(c, "\n");
        } else if (*c == '\'') {
            for (c++; *c && *c != '\''; c++)
                c += *c == '\\';
            c += *c == '\'';
        } else if (*c == '"') {
            for (c++; *c && *c != '"'; c++) {
                if (*c != '\\') {
                    assert_true(*c != '\n');   /* a raw newline ends no literal */
                    *o++ = *c;
                    continue;
                }
                c++;
                if (*c >= '0' && *c <= '7') {
                    int v = 0;
                    for (int k = 0; k < 3 && *c >= '0' && *c <= '7'; k++)
                        v = v * 8 + (*c++ - '0');
                    *o++ = (char)v;
                    c--;
                } else if (*c == 'x') {
                    char *end;
                    *o++ = (char)strtol(c + 1, &end, 16);
                    c = end - 1;
                } else {
                    const char *from = "ntr", *to = "\n\t\r";
                    const char *k = strchr(from, *c);
                    *o++ = k ? to[k - from] : *c;   /* \\ \" \' \? stand for themselves */
                }
            }
            assert_true(*c == '"');
            c++;
            *o++ = '\1';
        } else {
            c++;
        }
    }
    *o = '\0';
    return out;
}

static void expect_literal(const char *literals, const char *s)
{
    char want[256];
    snprintf(want, sizeof want, "\1%s\1", s);
    char *all = malloc(strlen(literals) + 2);
    assert_non_null(all);
    all[0] = '\1';
    strcpy(all + 1, literals);
    if (!strstr(all, want))
        fail_msg("the C holds no string literal for \"%s\"", s);
    free(all);
}

static void test_hostile_strings(void **state)
{
    (void)state;
    /* A folder whose name ends a C comment and a file name with a quote and a
     * backslash; a data path and class names with quotes, a backslash, a
     * comment terminator, a newline and a trigraph. */
    char dir[128];
    snprintf(dir, sizeof dir, "%s/c*", scratch);
    assert_int_equal(mkdir(dir, 0755), 0);
    char model[256];
    snprintf(model, sizeof model, "%s/we\"i\\rd.yaml", dir);
    write_text(model,
               "name: hostile\ninput_shape: [4]\nlayers:\n"
               "  - Dense: {units: 3, activation: softmax}\n"
               "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
               "data:\n"
               "  train: {format: csv, path: \"a\\\"b\\\\c*/\\n\"}\n"
               "  class_names: [\"x\\\"y\", \"*/ /*\", \"?\?/\"]\n");
    const char *out = in_scratch("hostile.c");
    emit(model, out);
    expect_compiles(out);
    if (sh("cc -std=c11 -Wall -Wextra -Werror -fopenmp -fsyntax-only -Iruntime '%s'", out) != 0)
        fail_msg("the C for hostile strings does not compile");
    char *c = slurp(out, NULL);
    char *literals = string_literals(c);
    expect_literal(literals, "a\"b\\c*/\n");
    expect_literal(literals, "x\"y");
    expect_literal(literals, "*/ /*");
    expect_literal(literals, "?\?/");   /* a trigraph, ??/, written so that it is none here */
    expect_literal(literals, model);
    free(literals);
    free(c);
}

/* generated/NAME.c is kept in the repository for readers: it must be what
 * this nncc writes for models/NAME.yaml. */
static void test_generated_up_to_date(void **state)
{
    (void)state;
    glob_t g;
    assert_int_equal(glob("models/*.yaml", 0, NULL, &g), 0);
    assert_true(g.gl_pathc >= 2);
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *model = g.gl_pathv[i];
        char name[256], kept[300];
        snprintf(name, sizeof name, "%.*s", (int)(strlen(model) - strlen("models/.yaml")),
                 model + strlen("models/"));
        snprintf(kept, sizeof kept, "generated/%s.c", name);
        const char *fresh = in_scratch("fresh.c");
        emit(model, fresh);
        size_t la, lb = 0;
        char *a = slurp(fresh, &la), *b = slurp(kept, &lb);
        if (!b || la != lb || memcmp(a, b, la) != 0)
            fail_msg("%s is stale: run make", kept);
        free(a);
        free(b);
        unlink(fresh);
    }
    globfree(&g);
}

/* Data the trainer would not find from here is a warning on --check and -o,
 * one line at the path's place; the exit status stays 0. */
static void test_missing_data_warning(void **state)
{
    (void)state;
    const char *model = in_scratch("w.yaml");
    write_text(model, "name: w\ninput_shape: [2]\nlayers:\n  - Dense: {units: 1}\n"
                      "compile: {optimizer: sgd, loss: mse}\n"
                      "data:\n  train: {format: csv, path: there.csv}\n"
                      "  test: {format: csv, path: t.csv}\n");
    write_text(in_scratch("there.csv"), "1,2,3\n");
    char want[1024];
    snprintf(want, sizeof want, "%s:8:29: warning: data 't.csv' not found (tried t.csv, %s): the "
             "trainer will need --data DIR, or set data: dir:\n", model, in_scratch("t.csv"));
    const char *c = in_scratch("w.c");
    Run r;
    nncc(&r, model, "--check", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, want);
    run_free(&r);
    nncc(&r, model, "-o", c, NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, want);
    assert_true(file_exists(c));
    run_free(&r);
    write_text(in_scratch("t.csv"), "1,2,3\n");
    nncc(&r, model, "--check", NULL);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.err, "");
    run_free(&r);
}

/* ---- mutations ---------------------------------------------------------------------------- */

/* Deterministic mutations of a good model file: whatever comes out, nncc
 * answers 0 or 1, never a crash, and a failure is one line naming the file. */
static void test_mutations(void **state)
{
    (void)state;
    size_t len;
    char *orig = slurp("models/fashion_mlp.yaml", &len);
    assert_non_null(orig);
    static const char specials[] = ":[]{},-&*!|>'\"#%@0123456789";
    char *buf = malloc(2 * len + 2);
    assert_non_null(buf);
    const char *path = in_scratch("mutant.yaml");
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:", path);
    uint64_t seed = 0x9E3779B97F4A7C15u;
    int failures = 0;
    for (int i = 0; i < 400; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t at = (size_t)(seed >> 33) % len, n = 0;
        if (i % 3 == 0) {                      /* delete a byte */
            memcpy(buf, orig, at);
            memcpy(buf + at, orig + at + 1, len - at - 1);
            n = len - 1;
        } else if (i % 3 == 1) {               /* duplicate the line holding `at` */
            size_t start = at, end = at;
            while (start > 0 && orig[start - 1] != '\n')
                start--;
            while (end < len && orig[end] != '\n')
                end++;
            end += end < len;
            memcpy(buf, orig, end);
            memcpy(buf + end, orig + start, end - start);
            memcpy(buf + 2 * end - start, orig + end, len - end);
            n = len + end - start;
        } else {                               /* replace a byte */
            memcpy(buf, orig, len);
            buf[at] = specials[(seed >> 17) % (sizeof specials - 1)];
            n = len;
        }
        buf[n] = '\0';
        write_text(path, buf);
        Run r;
        nncc(&r, path, "--check", NULL);
        if (r.status > 1)
            fail_msg("mutation %d: nncc exited %d (%s) on:\n%s", i, r.status, r.err, buf);
        if (r.status == 1) {
            failures++;
            if (!one_line(r.err) || strncmp(r.err, prefix, strlen(prefix)) != 0)
                fail_msg("mutation %d: stderr is not one line naming the file: %s\non:\n%s", i,
                         r.err, buf);
        }
        run_free(&r);
    }
    assert_true(failures > 40);   /* the mutations did break things */
    free(buf);
    free(orig);
}

/* Keras's positional arguments mean the keys they stand for: the file with
 * `Conv2D: [8, 3, 1, same]`, `Dense: [16, relu]`, ... gives the same C as the
 * one with maps (both written to one path, so the C names the same file). */
static void test_positional_arguments(void **state)
{
    (void)state;
    static const char *const forms[2] = {
        "name: pos\ninput_shape: [12, 12, 1]\nlayers:\n"
        "  - Conv2D: [8, 3, 1, same]\n  - MaxPooling2D: 2\n  - Flatten\n"
        "  - Dropout: 0.25\n  - Dense: [16, relu]\n  - Dense: 3\n  - Activation: softmax\n"
        "  - Reshape: [3, 1]\n  - Flatten\n",
        "name: pos\ninput_shape: [12, 12, 1]\nlayers:\n"
        "  - Conv2D: {filters: 8, kernel_size: 3, strides: 1, padding: same}\n"
        "  - MaxPooling2D: {pool_size: 2}\n  - Flatten\n"
        "  - Dropout: {rate: 0.25}\n  - Dense: {units: 16, activation: relu}\n"
        "  - Dense: {units: 3}\n  - Activation: {activation: softmax}\n"
        "  - Reshape: {target_shape: [3, 1]}\n  - Flatten\n",
    };
    char *c[2];
    for (int i = 0; i < 2; i++) {
        write_text(in_scratch("pos.yaml"), forms[i]);
        Run r;
        nncc(&r, in_scratch("pos.yaml"), "-o", in_scratch("pos.c"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
        FILE *f = fopen(in_scratch("pos.c"), "r");
        assert_non_null(f);
        c[i] = calloc(1, 1 << 20);
        assert_non_null(c[i]);
        assert_true(fread(c[i], 1, (1 << 20) - 1, f) > 1000);
        fclose(f);
    }
    assert_non_null(strstr(c[0], "W(conv2d_out)"));
    assert_string_equal(c[0], c[1]);
    free(c[0]);
    free(c[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_error_cases),
        cmocka_unit_test(test_metric_names_and_modes),
        cmocka_unit_test(test_positional_arguments),
        cmocka_unit_test(test_summary_fashion_mlp),
        cmocka_unit_test(test_param_counts),
        cmocka_unit_test(test_output_compiles),
        cmocka_unit_test(test_pixel_shift_ranges),
        cmocka_unit_test(test_optimizer_spellings),
        cmocka_unit_test(test_same_input_same_bytes),
        cmocka_unit_test(test_hostile_strings),
        cmocka_unit_test(test_generated_up_to_date),
        cmocka_unit_test(test_missing_data_warning),
        cmocka_unit_test(test_mutations),
    };
    return cmocka_run_group_tests(tests, setup, scratch_teardown);
}
