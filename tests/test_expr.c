/* test_expr.c - the arithmetic expressions of compiler/expr.c: values by hand,
 * Python's precedence (checked against what Python prints for the same text,
 * worked out by hand here), the C written for them, derivatives against
 * central differences and against derivatives taken by hand, and the column
 * of each error.
 *
 * error_at() exits, so an error case runs in a forked child whose stderr the
 * parent reads. The scalars are made by hand: "m.yaml", line 3, column 10,
 * quoted (so the text starts at column 11). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include "nncc.h"

static const char *const x_only[] = {"x", NULL};
static const char *const epoch_lr[] = {"epoch", "lr", NULL};

static Node scalar(const char *text)
{
    return (Node){.kind = NODE_SCALAR, .line = 3, .col = 10, .file = "m.yaml",
                  .text = (char *)text, .quoted = true};
}

static double value(const char *text, const char *const *vars, const double *values)
{
    Node n = scalar(text);
    Expr *e = expr_parse(&n, "expression", vars);
    double v = expr_eval(e, values);
    expr_free(e);
    return v;
}

static void test_values_by_hand(void **state)
{
    (void)state;
    double x = 2;
    assert_float_equal(value("x * 100", x_only, &x), 200, 0);
    assert_float_equal(value("1 + 2 * 3", x_only, &x), 7, 0);
    assert_float_equal(value("(1 + 2) * 3", x_only, &x), 9, 0);
    assert_float_equal(value("7 - 2 - 1", x_only, &x), 4, 0);        /* left to right */
    assert_float_equal(value("8 / 4 / 2", x_only, &x), 1, 0);
    assert_float_equal(value("2 ** 3 ** 2", x_only, &x), 512, 0);    /* right to left */
    assert_float_equal(value("-2 ** 2", x_only, &x), -4, 0);         /* Python: -(2**2) */
    assert_float_equal(value("2 ** -1", x_only, &x), 0.5, 0);
    assert_float_equal(value("-x ** 2", x_only, &x), -4, 0);
    assert_float_equal(value("--x", x_only, &x), 2, 0);
    assert_float_equal(value("1e-8 * 10", x_only, &x), 1e-7, 1e-22);
    assert_float_equal(value(".5 + 1.5E1", x_only, &x), 15.5, 0);
    assert_float_equal(value("max(x, 3) - min(x, 3)", x_only, &x), 1, 0);
    assert_float_equal(value("abs(-x) + sqrt(16)", x_only, &x), 6, 0);
    assert_float_equal(value("math.exp(0) + tf.math.log(1) + np.tanh(0)", x_only, &x), 1, 0);
    assert_float_equal(value("pow(x, 10)", x_only, &x), 1024, 0);
    /* the course's sweep: 1e-8 * 10 ** (epoch / 20) at epoch 40 is 1e-6 */
    double el[2] = {40, 0.5};
    assert_float_equal(value("1e-8 * 10 ** (epoch / 20)", epoch_lr, el), 1e-6, 1e-20);
}

/* The C text for a tree: parenthesised as the tree is, float constants. */
static void check_c(const char *text, const char *const *vars, const char *const *c_vars,
                    const char *want)
{
    Node n = scalar(text);
    Expr *e = expr_parse(&n, "expression", vars);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    expr_emit(f, e, c_vars);
    fclose(f);
    assert_string_equal(buf, want);
    free(buf);
    expr_free(e);
}

static void test_c_text(void **state)
{
    (void)state;
    static const char *const cx[] = {"v", NULL};
    static const char *const cel[] = {"(float)epoch", "lr", NULL};
    check_c("x * 100", x_only, cx, "(v * 100.0f)");
    check_c("-2 ** 2", x_only, cx, "(-powf(2.0f, 2.0f))");
    check_c("1e-8 * 10 ** (epoch / 20)", epoch_lr, cel,
            "(1e-08f * powf(10.0f, ((float)epoch / 20.0f)))");
    check_c("lr * 0.1 + abs(x)", (const char *const[]){"lr", "x", NULL},
            (const char *const[]){"lr", "v", NULL}, "((lr * 0.1f) + fabsf(v))");
    check_c("min(x, -1)", x_only, cx, "fminf(v, (-1.0f))");
}

/* The derivative's C text, as one would write it by hand. */
static void check_derivative_c(const char *text, const char *want)
{
    Node n = scalar(text);
    Expr *e = expr_parse(&n, "expression", x_only);
    Expr *d = expr_derivative(e, 0);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    expr_emit(f, d, (const char *const[]){"v", NULL});
    fclose(f);
    assert_string_equal(buf, want);
    free(buf);
    expr_free(d);
    expr_free(e);
}

static void test_derivative_by_hand(void **state)
{
    (void)state;
    check_derivative_c("x * 100", "100.0f");
    check_derivative_c("100 * x + 3", "100.0f");
    check_derivative_c("x / 4", "0.25f");
    check_derivative_c("x ** 2", "(2.0f * v)");
    check_derivative_c("-x", "(-1.0f)");
    check_derivative_c("(x + 1) ** 2 / 3 - tanh(x)",
                       "(((2.0f * (v + 1.0f)) / 3.0f) - (1.0f - powf(tanhf(v), 2.0f)))");
    check_derivative_c("exp(2 * x)", "(expf((2.0f * v)) * 2.0f)");
}

/* Each derivative against a central difference of the evaluated expression. */
static void test_derivative_numerically(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "x * 100", "(x + 1) ** 2 / 3 - tanh(x)", "exp(-x * x) / (1 + x ** 2)", "sqrt(x + 3) * log(x + 4)",
        "abs(x - 0.25) + max(x, 0.1) - min(x * 2, 0.3)", "x ** x", "pow(2, x) / x", "-x ** 3",
    };
    static const double points[] = {-0.7, 0.4, 1.3, 2.2};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        Node n = scalar(texts[i]);
        Expr *e = expr_parse(&n, "expression", x_only);
        Expr *d = expr_derivative(e, 0);
        for (size_t k = 0; k < sizeof points / sizeof points[0]; k++) {
            double x = points[k], h = 1e-6, xp = x + h, xm = x - h;
            if (strstr(texts[i], "x ** x") && x < 0)
                continue;
            double want = (expr_eval(e, &xp) - expr_eval(e, &xm)) / (2 * h);
            double got = expr_eval(d, &x);
            if (fabs(got - want) > 1e-5 * (1 + fabs(want)))
                fail_msg("d/dx %s at %g: %g, central difference %g", texts[i], x, got, want);
        }
        expr_free(d);
        expr_free(e);
    }
}

/* The first line expr_parse printed before exiting, and its status. */
static int parse_error(const char *text, const char *const *vars, char *msg, size_t len)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        Node n = scalar(text);
        expr_parse(&n, "expression", vars);
        _exit(0);
    }
    close(fd[1]);
    ssize_t got = read(fd[0], msg, len - 1);
    msg[got > 0 ? got : 0] = '\0';
    close(fd[0]);
    int status;
    waitpid(pid, &status, 0);
    return WEXITSTATUS(status);
}

/* The column is the scalar's (10) + 1 for the quote + the offset in the text. */
static void check_error(const char *text, const char *place, const char *words)
{
    char msg[1024];
    assert_int_equal(parse_error(text, x_only, msg, sizeof msg), 1);
    if (strncmp(msg, place, strlen(place)) != 0 || !strstr(msg, words))
        fail_msg("for \"%s\": wanted %s ... %s, got %s", text, place, words, msg);
}

static void test_error_columns(void **state)
{
    (void)state;
    check_error("x * 100 +", "m.yaml:3:20: error:", "ends too early");
    check_error("x * y", "m.yaml:3:15: error:", "unknown name 'y'; it may use x and exp");
    check_error("x * (1 + 2", "m.yaml:3:21: error:", "expected ')'");
    check_error("x 2", "m.yaml:3:13: error:", "unexpected '2'");
    check_error("x // 2", "m.yaml:3:13: error:", "'//'");
    check_error("1e+ * x", "m.yaml:3:14: error:", "exponent");
    check_error("exp(x, 2)", "m.yaml:3:11: error:", "too many arguments for exp");
    check_error("max(x)", "m.yaml:3:16: error:", "expected ','");
    check_error("x * __import__('os')", "m.yaml:3:15: error:", "unknown name '__import__'");
    check_error("x; system()", "m.yaml:3:12: error:", "unexpected ';'");
    char deep[400];
    memset(deep, '(', 300);
    strcpy(deep + 300, "x");
    check_error(deep, "m.yaml:3:", "nested too deeply");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_by_hand),
        cmocka_unit_test(test_c_text),
        cmocka_unit_test(test_derivative_by_hand),
        cmocka_unit_test(test_derivative_numerically),
        cmocka_unit_test(test_error_columns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
