/* test_gradcheck.c - gradcheck means its verdict: a model whose backward pass
 * is right passes, and the same model with one gradient planted wrong (the
 * generated C edited, a ReLU layer's bias gradient scaled by 1.05) fails,
 * naming that tensor, at several seeds. The ReLU layer puts kinks where the
 * finite differences run, the case gradcheck must neither fail on nor hide
 * a wrong gradient behind. */
#include "testutil.h"

#define MODEL                                                                       \
    "name: planted\n"                                                               \
    "input_shape: [3]\n"                                                            \
    "layers:\n"                                                                     \
    "  - Dense: {units: 8, activation: relu}\n"                                    \
    "  - Dense: {units: 4, activation: softmax}\n"                                  \
    "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"           \
    "data:\n  train: {format: inline, x: [[0, 0, 0]], y: [0]}\n"

/* After the call that writes dense.bias's gradient, the planted line. */
#define BIAS_CALL "    dense_backward("
#define PLANT "    for (int i = 0; i < 8; i++) G(dense_bias)[i] *= 1.05f;\n"

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long len = ftell(f);
    assert_true(len > 0);
    rewind(f);
    char *s = malloc((size_t)len + 1);
    assert_non_null(s);
    assert_int_equal(fread(s, 1, (size_t)len, f), (size_t)len);
    s[len] = '\0';
    fclose(f);
    return s;
}

/* scratch/planted.c with PLANT after the line of the one BIAS_CALL, as scratch/wrong.c. */
static void plant(void)
{
    char *src = read_text(in_scratch("planted.c"));
    char *at = strstr(src, BIAS_CALL);
    assert_non_null(at);
    assert_null(strstr(at + 1, BIAS_CALL));
    at = strchr(at, '\n') + 1;   /* after the call's line */
    FILE *f = fopen(in_scratch("wrong.c"), "wb");
    assert_non_null(f);
    fwrite(src, 1, (size_t)(at - src), f);
    fputs(PLANT, f);
    fputs(at, f);
    assert_int_equal(fclose(f), 0);
    free(src);
}

/* The verdict at the end of the line gradcheck printed for a tensor. */
static void assert_verdict(const char *out, const char *tensor, const char *verdict)
{
    size_t len = strlen(tensor);
    for (const char *p = out; p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, tensor, len) != 0 || p[len] != ' ')
            continue;
        const char *end = strchr(p, '\n');
        size_t vlen = strlen(verdict);
        assert_non_null(end);
        if ((size_t)(end - p) < vlen || strncmp(end - vlen, verdict, vlen) != 0 ||
            !strstr(p, " checked "))
            fail_msg("%s: want '%s' in:\n%s", tensor, verdict, out);
        return;
    }
    fail_msg("no line for %s in:\n%s", tensor, out);
}

/* Builds the trainer and the planted one as make trainer would. */
static void build_both(void)
{
    write_text(in_scratch("planted.yaml"), MODEL);
    RunResult r;
    run_cmd(&r, "make --no-print-directory trainer MODEL=%s OUT=%s SAN=%s",
            in_scratch("planted.yaml"), scratch, san());
    if (r.status != 0)
        fail_msg("make trainer failed:\n%s", r.out);
    plant();
    const char *sanflags = strcmp(san(), "1") == 0
                               ? "-fsanitize=address,undefined -fno-sanitize-recover=undefined"
                               : "";
    run_cmd(&r, "cc -std=c11 -Wall -Wextra -Werror -O1 %s -fopenmp -Iruntime -o %s %s "
                "%s/libnnrt.a " TRAINER_LIBS " -fopenmp",
            sanflags, in_scratch("wrong"), in_scratch("wrong.c"), build_dir());
    if (r.status != 0)
        fail_msg("building the planted trainer failed:\n%s", r.out);
}

static void test_planted_gradient(void **state)
{
    (void)state;
    build_both();
    for (int seed = 0; seed < 5; seed++) {
        RunResult r;
        run_cmd(&r, "%s gradcheck --seed %d", in_scratch("planted"), seed);
        if (r.status != 0 || !strstr(r.out, "gradcheck passed\n"))
            fail_msg("seed %d: the right gradient did not pass:\n%s", seed, r.out);

        run_cmd(&r, "%s gradcheck --seed %d", in_scratch("wrong"), seed);
        if (r.status != 1)
            fail_msg("seed %d: the planted gradient passed (exit %d):\n%s", seed, r.status, r.out);
        assert_output_contains(&r, "planted: error: ");
        /* dense.bias fails, named on its line; the tensors not planted pass. */
        assert_verdict(r.out, "dense.bias", " FAILED");
        assert_verdict(r.out, "dense.kernel", " ok");
        assert_verdict(r.out, "dense_1.kernel", " ok");
        assert_verdict(r.out, "dense_1.bias", " ok");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_planted_gradient),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
