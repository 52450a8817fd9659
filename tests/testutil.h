/* testutil.h - what the CMocka tests share: running a command and reading what
 * it printed, scratch folders, small files. Header-only; each test includes it
 * after <cmocka.h>. Tests run from the repository's root. */
#ifndef TESTUTIL_H
#define TESTUTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>
#include <math.h>

#include "npz.h"

/* What a trainer links besides libnnrt.a: the Makefile's RT_LIBS (with
 * libhdf5 when the runtime reads Keras .h5 files), which it passes as
 * NN_RT_LIBS; without it, RT_LIBS less OpenMP and HDF5. */
#ifdef NN_RT_LIBS
#define TRAINER_LIBS NN_RT_LIBS
#else
#define TRAINER_LIBS "-lstb -lyaml -lz -lm"
#endif

/* Output and exit status of `sh -c cmd` (stdout and stderr together). */
typedef struct {
    int status;
    char out[65536];
} RunResult;

static inline void run_cmd(RunResult *r, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    char full[4200];
    snprintf(full, sizeof full, "(%s) 2>&1", cmd);
    FILE *p = popen(full, "r");
    assert_non_null(p);
    size_t len = fread(r->out, 1, sizeof r->out - 1, p);
    r->out[len] = '\0';
    int st = pclose(p);
    r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* A fresh folder under /tmp, removed by the caller with rm_tree(). */
static inline char *make_scratch(char *buf, size_t len)
{
    snprintf(buf, len, "/tmp/nncc-test-XXXXXX");
    assert_non_null(mkdtemp(buf));
    return buf;
}

static inline void rm_tree(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

static inline void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
}

static inline int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* A test program's scratch folder: made by scratch_setup and removed by
 * scratch_teardown (CMocka fixtures, per group or per test); in_scratch("x")
 * names a file in it, from a few buffers that take turns so that one call
 * can hold several paths. */
static char scratch[64] __attribute__((unused));

static inline int scratch_setup(void **state)
{
    (void)state;
    make_scratch(scratch, sizeof scratch);
    return 0;
}

static inline int scratch_teardown(void **state)
{
    (void)state;
    rm_tree(scratch);
    return 0;
}

static inline const char *in_scratch(const char *name)
{
    static char bufs[8][512];
    static int next;
    char *b = bufs[next++ % 8];
    snprintf(b, sizeof bufs[0], "%s/%s", scratch, name);
    return b;
}

/* SAN=1 when make test runs under the sanitizers: passed on to make trainer. */
static inline const char *san(void)
{
    const char *s = getenv("SAN");
    return s && *s ? s : "0";
}

/* Fails the test unless what a command printed contains `what`. */
static inline void assert_output_contains(const RunResult *r, const char *what)
{
    if (!strstr(r->out, what))
        fail_msg("expected '%s' in:\n%s", what, r->out);
}

/* The nncc under test: ./nncc, or build/san/nncc under make test SAN=1. */
static inline const char *nncc_path(void)
{
    const char *p = getenv("NNCC");
    return p && *p ? p : "./nncc";
}

/* The build folder of the objects the tests link (build, or build/san under SAN=1). */
static inline const char *build_dir(void)
{
    const char *b = getenv("NNCC_BUILD");
    return b && *b ? b : "build";
}

/* ---- what a failing call printed ------------------------------------------------------ */

/* capture_stderr() ... captured(): what a runtime call printed on stderr. */
static int saved_stderr __attribute__((unused)) = -1;
static char stderr_path[300] __attribute__((unused));

static inline void capture_stderr(void)
{
    fflush(stderr);
    snprintf(stderr_path, sizeof stderr_path, "%s/stderr.txt", scratch);
    int fd = open(stderr_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    saved_stderr = dup(2);
    assert_true(saved_stderr >= 0);
    dup2(fd, 2);
    close(fd);
}

/* Restores stderr and returns what was written to it (also echoed, for the log). */
static inline const char *captured(void)
{
    static char text[8192];
    fflush(stderr);
    dup2(saved_stderr, 2);
    close(saved_stderr);
    FILE *f = fopen(stderr_path, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    fprintf(stderr, "  (expected) %s", text);
    return text;
}

static inline void assert_contains(const char *text, const char *part)
{
    if (!strstr(text, part))
        fail_msg("'%s' not found in: %s", part, text);
}

/* base with the value after `key` (as written in it: a number, a [list] or an
 * {initializer: {...}}) replaced by value, written to path. */
static inline void write_changed(const char *path, const char *base, const char *key,
                                 const char *value)
{
    const char *at = strstr(base, key);
    assert_non_null(at);
    at += strlen(key);
    size_t end = at[0] == '{'   ? (size_t)(strstr(at, "}}") + 2 - at)
                 : at[0] == '[' ? strcspn(at, "]") + 1
                                : strcspn(at, ",}");
    size_t len = strlen(base) + strlen(value) + 1;
    char *text = malloc(len);
    assert_non_null(text);
    snprintf(text, len, "%.*s%s%s", (int)(at - base), base, value, at + end);
    write_text(path, text);
    free(text);
}

/* A change to a Keras export that nncc must refuse, with (part of) its message. */
typedef struct {
    const char *key, *value, *message;
} KerasChange;

/* Each change made alone to base must make `nncc --check` fail with its message. */
static inline void assert_each_change_refused(const char *base, const KerasChange *changes,
                                              size_t n)
{
    RunResult r;
    for (size_t i = 0; i < n; i++) {
        write_changed(in_scratch("refused.json"), base, changes[i].key, changes[i].value);
        run_cmd(&r, "%s %s --check", nncc_path(), in_scratch("refused.json"));
        assert_int_equal(r.status, 1);
        assert_output_contains(&r, changes[i].message);
    }
}

/* Builds the trainer of a model file into the scratch folder, once;
 * returns its path. */
static inline const char *build_file(const char *yaml_path, const char *name)
{
    const char *trainer = in_scratch(name);
    if (file_exists(trainer))
        return trainer;
    RunResult r;
    run_cmd(&r, "make --no-print-directory trainer MODEL=%s OUT=%s SAN=%s", yaml_path, scratch,
            san());
    if (r.status != 0)
        fail_msg("make trainer for %s failed:\n%s", yaml_path, r.out);
    assert_true(file_exists(trainer));
    return trainer;
}

/* Writes scratch/NAME.yaml (with `name: NAME` first) and builds it. */
static inline const char *build_model(const char *name, const char *yaml)
{
    char path[256];
    static char text[65536];
    snprintf(path, sizeof path, "%s/%s.yaml", scratch, name);
    snprintf(text, sizeof text, "name: %s\n%s", name, yaml);
    write_text(path, text);
    return build_file(path, name);
}

/* The loss after epoch `epoch` in a history CSV (epoch,loss,...), or -1. */
static inline double history_loss(const char *csv, int epoch)
{
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[512];
    double loss = -1;
    while (fgets(line, sizeof line, f)) {
        int e;
        double l;
        if (sscanf(line, "%d,%lf", &e, &l) == 2 && e == epoch)
            loss = l;
    }
    fclose(f);
    return loss;
}

/* Builds NAME from yaml; its gradcheck must pass and `epochs` epochs of
 * training must at least halve the loss. */
static inline void assert_gradcheck_and_learns(const char *name, const char *yaml, int epochs)
{
    const char *trainer = build_model(name, yaml);
    RunResult r;
    run_cmd(&r, "%s gradcheck", trainer);
    if (r.status != 0 || !strstr(r.out, "gradcheck passed"))
        fail_msg("gradcheck:\n%s", r.out);
    run_cmd(&r, "%s train --quiet --history %s", trainer, in_scratch("h.csv"));
    if (r.status != 0)
        fail_msg("train:\n%s", r.out);
    double first = history_loss(in_scratch("h.csv"), 1);
    double last = history_loss(in_scratch("h.csv"), epochs);
    print_message("loss: epoch 1 %.4f, epoch %d %.4f\n", first, epochs, last);
    assert_true(first > 0 && last >= 0 && last < 0.5 * first);
}

/* Every member of two .npz files: same names in the same order, same types,
 * shapes and bits. */
static inline void assert_same_npz(const char *p, const char *q)
{
    nn_array *a, *b;
    int na, nb;
    assert_int_equal(nn_npz_read(p, &a, &na), 0);
    assert_int_equal(nn_npz_read(q, &b, &nb), 0);
    assert_int_equal(na, nb);
    for (int i = 0; i < na; i++) {
        assert_string_equal(a[i].name, b[i].name);
        assert_int_equal(a[i].dtype, b[i].dtype);
        assert_int_equal(a[i].rank, b[i].rank);
        assert_memory_equal(a[i].shape, b[i].shape, sizeof a[i].shape);
        assert_int_equal(a[i].size, b[i].size);
        if (a[i].dtype == NN_F32 && memcmp(a[i].f, b[i].f, a[i].size * sizeof(float)) != 0)
            fail_msg("%s differs between %s and %s", a[i].name, p, q);
        if (a[i].dtype == NN_I64 && memcmp(a[i].i, b[i].i, a[i].size * sizeof(int64_t)) != 0)
            fail_msg("%s differs between %s and %s", a[i].name, p, q);
    }
    nn_npz_free(a, na);
    nn_npz_free(b, nb);
}

/* A driver for nncc --inference's C, built with -DPREDICT=NAME_predict -DIN=
 * -DOUT=: `driver X.bin Y.bin` predicts each sample of X.bin (IN raw floats
 * each) into Y.bin. */
static const char inference_driver_source[] __attribute__((unused)) =
    "#include <stdio.h>\n"
    "void PREDICT(const float *input, float *output);\n"
    "int main(int argc, char **argv)\n"
    "{\n"
    "    static float x[IN], y[OUT];\n"
    "    if (argc != 3)\n"
    "        return 2;\n"
    "    FILE *in = fopen(argv[1], \"rb\"), *out = fopen(argv[2], \"wb\");\n"
    "    if (!in || !out)\n"
    "        return 1;\n"
    "    while (fread(x, sizeof x, 1, in) == 1) {\n"
    "        PREDICT(x, y);\n"
    "        if (fwrite(y, sizeof y, 1, out) != 1)\n"
    "            return 1;\n"
    "    }\n"
    "    return fclose(in) != 0 || fclose(out) != 0;\n"
    "}\n";

/* MODEL (whose name is NAME) with WEIGHTS through nncc --inference, built as C99 without OpenMP
 * (a pragma left in would be an unknown pragma) and with the trainers' -O3,
 * where GCC warns most: its output for each sample of x must be y, to 1e-5
 * relative to max(1, |y|). Returns the largest such difference. */
static inline double check_inference(const char *model, const char *name, const char *weights,
                                     const nn_array *x, const nn_array *y)
{
    size_t samples = (size_t)x->shape[0];
    FILE *f = fopen(in_scratch("X.bin"), "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(x->f, sizeof *x->f, x->size, f), x->size);
    assert_int_equal(fclose(f), 0);
    write_text(in_scratch("p.c"), inference_driver_source);
    RunResult r;
    run_cmd(&r, "%s %s --inference --weights %s -o %s", nncc_path(), model, weights,
            in_scratch("m_predict.c"));
    if (r.status != 0)
        fail_msg("%s: nncc --inference failed:\n%s", model, r.out);
    run_cmd(&r, "cd %s && cc -std=c99 -Wall -Wextra -Werror %s -DPREDICT=%s_predict -DIN=%zu "
                "-DOUT=%zu -o p p.c m_predict.c -lm && ./p X.bin Y.bin",
            scratch, strcmp(san(), "1") == 0 ? "-fsanitize=address,undefined"
                                             : "-O3 -march=native -ffp-contract=fast", name,
            x->size / samples, y->size / samples);
    if (r.status != 0)
        fail_msg("%s: the inference C failed:\n%s", model, r.out);
    float *got = calloc(y->size + 1, sizeof *got);
    assert_non_null(got);
    f = fopen(in_scratch("Y.bin"), "rb");
    assert_non_null(f);
    assert_int_equal(fread(got, sizeof *got, y->size + 1, f), y->size);
    fclose(f);
    double worst = 0;
    for (size_t k = 0; k < y->size; k++) {
        double d = fabs((double)got[k] - y->f[k]) / fmax(1.0, fabs(y->f[k]));
        if (!(d <= 1e-5))
            fail_msg("%s: inference output %zu is %.9g, want %.9g", model, k, got[k], y->f[k]);
        worst = fmax(worst, d);
    }
    free(got);
    return worst;
}

/* tests/ref/NAME.yaml with NAME.npz's weights: check_inference on the
 * fixture's x and y. */
static inline double check_fixture_inference(const char *name)
{
    char npz[256], yaml[256];
    snprintf(npz, sizeof npz, "tests/ref/%s.npz", name);
    snprintf(yaml, sizeof yaml, "tests/ref/%s.yaml", name);
    nn_array *arrays;
    int n_arrays;
    assert_int_equal(nn_npz_read(npz, &arrays, &n_arrays), 0);
    const nn_array *x = nn_npz_find(arrays, n_arrays, "x");
    const nn_array *y = nn_npz_find(arrays, n_arrays, "y");
    if (!x || !y || x->dtype != NN_F32 || y->dtype != NN_F32 || x->rank < 1)
        fail_msg("%s has no float arrays x and y", npz);
    double worst = check_inference(yaml, name, npz, x, y);
    nn_npz_free(arrays, n_arrays);
    return worst;
}

#endif
