/* expr.c - arithmetic expressions written in the model file: a Lambda
 * layer's "x * 100", a LearningRateScheduler's "1e-8 * 10 ** (epoch / 20)".
 *
 * A recursive-descent parser with Python's precedence (** binds tighter than
 * a unary minus on its left and is right-associative: -2 ** 2 is -4, 2 ** -1
 * is 0.5) makes a tree of numbers, the caller's variables, + - * / ** and a
 * few functions. The tree is evaluated here (for checks and tests), written
 * out as C (fully parenthesised, float constants), and differentiated
 * symbolically for a Lambda's backward pass. The text itself never reaches
 * the C: only what the tree holds, re-emitted. Errors name the column inside
 * the string, from the YAML scalar's place. */
#include "nncc.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 64      /* nesting, so that a hostile string cannot exhaust the stack */

/* name, arguments, its C function (NULL: written by emit_call). FN_SIGN and FN_LE
 * only appear in derivatives. */
static const struct {
    const char *name;
    int args;
    const char *c;
} functions[FN_COUNT] = {
    [FN_EXP] = {"exp", 1, "expf"},   [FN_LOG] = {"log", 1, "logf"},
    [FN_SQRT] = {"sqrt", 1, "sqrtf"}, [FN_ABS] = {"abs", 1, "fabsf"},
    [FN_TANH] = {"tanh", 1, "tanhf"}, [FN_MIN] = {"min", 2, "fminf"},
    [FN_MAX] = {"max", 2, "fmaxf"},  [FN_POW] = {"pow", 2, "powf"},
    [FN_SIGN] = {NULL, 1, NULL},     [FN_LE] = {NULL, 2, NULL},
};

/* Prefixes Keras users write before those names: math.exp, tf.math.exp, np.exp. */
static const char *const prefixes[] = {"tf.math.", "math.", "tf.", "np.", "numpy.", NULL};

/* ---- building trees ------------------------------------------------------------ */

static Expr *node(ExprOp op, Expr *a, Expr *b)
{
    Expr *e = calloc(1, sizeof *e);
    if (!e)
        error_at(NULL, "out of memory");
    e->op = op, e->a = a, e->b = b;
    return e;
}

static Expr *num(double v)
{
    Expr *e = node(EX_NUM, NULL, NULL);
    e->num = v;
    return e;
}

static Expr *call(int fn, Expr *a, Expr *b)
{
    Expr *e = node(EX_CALL, a, b);
    e->fn = fn;
    return e;
}

void expr_free(Expr *e)
{
    if (!e)
        return;
    expr_free(e->a);
    expr_free(e->b);
    free(e);
}

static Expr *copy(const Expr *e)
{
    if (!e)
        return NULL;
    Expr *c = node(e->op, copy(e->a), copy(e->b));
    c->num = e->num, c->var = e->var, c->fn = e->fn;
    return c;
}

static bool is_num(const Expr *e, double v)
{
    return e->op == EX_NUM && e->num == v;
}

/* The constructors the derivative uses fold what is plainly constant, so
 * that d(x * 100)/dx reads 100, not ((1 * 100) + (x * 0)). */
static Expr *neg(Expr *a)
{
    if (a->op == EX_NUM) {
        a->num = -a->num;
        return a;
    }
    if (a->op == EX_NEG) {
        Expr *inner = a->a;
        free(a);
        return inner;
    }
    return node(EX_NEG, a, NULL);
}

static Expr *fold(ExprOp op, Expr *a, Expr *b)
{
    Expr *e = node(op, a, b);
    if (a->op == EX_NUM && b->op == EX_NUM) {
        double v = expr_eval(e, NULL);
        expr_free(e);
        return num(v);
    }
    return e;
}

static Expr *keep_one(Expr *keep, Expr *drop)
{
    expr_free(drop);
    return keep;
}

static Expr *add(Expr *a, Expr *b)
{
    if (is_num(a, 0))
        return keep_one(b, a);
    if (is_num(b, 0))
        return keep_one(a, b);
    return fold(EX_ADD, a, b);
}

static Expr *sub(Expr *a, Expr *b)
{
    if (is_num(b, 0))
        return keep_one(a, b);
    if (is_num(a, 0))
        return keep_one(neg(b), a);
    return fold(EX_SUB, a, b);
}

static Expr *mul(Expr *a, Expr *b)
{
    if (is_num(a, 0) || is_num(b, 1))
        return keep_one(a, b);
    if (is_num(b, 0) || is_num(a, 1))
        return keep_one(b, a);
    return fold(EX_MUL, a, b);
}

static Expr *quot(Expr *a, Expr *b)
{
    if (is_num(a, 0) || is_num(b, 1))
        return keep_one(a, b);
    return fold(EX_DIV, a, b);
}

static Expr *power(Expr *a, Expr *b)
{
    if (is_num(b, 1))
        return keep_one(a, b);
    return fold(EX_POW, a, b);
}

/* ---- parsing ---------------------------------------------------------------------- */

typedef struct {
    const Node *where;            /* the scalar, for the place of errors */
    const char *text, *p;
    const char *const *vars;
    int depth;
} Parser;

/* The error at the column of p inside the scalar (past its opening quote). */
_Noreturn static void fail_at(const Parser *ps, const char *p, const char *msg, const char *detail)
{
    Node at = *ps->where;
    at.col += (ps->where->quoted ? 1 : 0) + (int)(p - ps->text);
    error_at(&at, "%s%s in the expression \"%s\"", msg, detail, ps->text);
}

static void skip_space(Parser *ps)
{
    while (*ps->p == ' ' || *ps->p == '\t')
        ps->p++;
}

static bool accept(Parser *ps, const char *token)
{
    skip_space(ps);
    size_t len = strlen(token);
    if (strncmp(ps->p, token, len) != 0)
        return false;
    /* '*' is not the start of '**' */
    if (len == 1 && token[0] == '*' && ps->p[1] == '*')
        return false;
    ps->p += len;
    return true;
}

static void expect(Parser *ps, const char *token, const char *msg)
{
    if (!accept(ps, token))
        fail_at(ps, ps->p, msg, "");
}

static Expr *parse_sum(Parser *ps);
static Expr *parse_unary(Parser *ps);

/* digits [. digits] [e [+-] digits], as Python writes a float; no hex, no inf. */
static Expr *parse_number(Parser *ps)
{
    const char *s = ps->p, *q = s;
    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.')
        for (q++; isdigit((unsigned char)*q);)
            q++;
    if (*q == 'e' || *q == 'E') {
        const char *e = q + 1 + (q[1] == '+' || q[1] == '-');
        if (!isdigit((unsigned char)*e))
            fail_at(ps, e, "expected the digits of an exponent", "");
        for (q = e; isdigit((unsigned char)*q);)
            q++;
    }
    if (q == s + 1 && *s == '.')
        fail_at(ps, s, "expected a number", "");
    char buf[64];
    if ((size_t)(q - s) >= sizeof buf)
        fail_at(ps, s, "number too long", "");
    memcpy(buf, s, (size_t)(q - s));
    buf[q - s] = '\0';
    double v = strtod(buf, NULL);
    if (!isfinite(v))
        fail_at(ps, s, "number out of range", "");
    ps->p = q;
    return num(v);
}

static Expr *parse_call(Parser *ps, const char *name_at, int fn)
{
    expect(ps, "(", "expected '(' after a function's name");
    Expr *a = parse_sum(ps), *b = NULL;
    if (functions[fn].args == 2) {
        expect(ps, ",", "expected ',' and a second argument");
        b = parse_sum(ps);
    }
    skip_space(ps);
    if (*ps->p == ',')
        fail_at(ps, name_at, "too many arguments for ", functions[fn].name);
    expect(ps, ")", "expected ')'");
    return call(fn, a, b);
}

static Expr *parse_name(Parser *ps)
{
    const char *s = ps->p;
    while (isalnum((unsigned char)*ps->p) || *ps->p == '_' || *ps->p == '.')
        ps->p++;
    size_t len = (size_t)(ps->p - s);
    const char *word = s;
    for (const char *const *pre = prefixes; *pre; pre++)
        if (strncmp(s, *pre, strlen(*pre)) == 0) {
            word += strlen(*pre);
            break;
        }
    size_t wlen = len - (size_t)(word - s);
    for (int i = 0; ps->vars[i]; i++)
        if (word == s && strlen(ps->vars[i]) == len && strncmp(s, ps->vars[i], len) == 0) {
            Expr *e = node(EX_VAR, NULL, NULL);
            e->var = i;
            return e;
        }
    for (int fn = 0; fn < FN_COUNT; fn++)
        if (functions[fn].name && strlen(functions[fn].name) == wlen &&
            strncmp(word, functions[fn].name, wlen) == 0)
            return parse_call(ps, s, fn);
    char known[256] = "";
    for (int i = 0; ps->vars[i]; i++)
        snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", i ? ", " : "",
                 ps->vars[i]);
    snprintf(known + strlen(known), sizeof known - strlen(known),
             " and exp, log, sqrt, abs, tanh, min, max, pow");
    char detail[sizeof known + 64];
    snprintf(detail, sizeof detail, " '%.*s'; it may use %s", (int)(len > 40 ? 40 : len), s, known);
    fail_at(ps, s, "unknown name", detail);
}

static Expr *parse_primary(Parser *ps)
{
    skip_space(ps);
    const char *s = ps->p;
    Expr *e;
    if (isdigit((unsigned char)*s) || *s == '.')
        e = parse_number(ps);
    else if (isalpha((unsigned char)*s) || *s == '_')
        e = parse_name(ps);
    else if (accept(ps, "(")) {
        e = parse_sum(ps);
        expect(ps, ")", "expected ')'");
    } else if (*s == '\0')
        fail_at(ps, s, "the expression ends too early", "");
    else
        fail_at(ps, s, "expected a number, a name or '('", "");
    return e;
}

/* power := primary ['**' unary]: right-associative, and 2 ** -1 is allowed. */
static Expr *parse_power(Parser *ps)
{
    Expr *base = parse_primary(ps);
    if (accept(ps, "**"))
        return node(EX_POW, base, parse_unary(ps));
    return base;
}

/* Every level of nesting passes here: the depth is counted once. */
static Expr *parse_unary(Parser *ps)
{
    skip_space(ps);
    if (++ps->depth > MAX_DEPTH)
        fail_at(ps, ps->p, "the expression is nested too deeply", "");
    Expr *e;
    if (accept(ps, "-"))
        e = node(EX_NEG, parse_unary(ps), NULL);
    else if (accept(ps, "+"))
        e = parse_unary(ps);
    else
        e = parse_power(ps);
    ps->depth--;
    return e;
}

static Expr *parse_product(Parser *ps)
{
    Expr *e = parse_unary(ps);
    for (;;) {
        skip_space(ps);
        if (ps->p[0] == '/' && ps->p[1] == '/')
            fail_at(ps, ps->p, "'//' (floor division) is not supported; write floor-free "
                               "arithmetic with /", "");
        if (accept(ps, "*"))
            e = node(EX_MUL, e, parse_unary(ps));
        else if (accept(ps, "/"))
            e = node(EX_DIV, e, parse_unary(ps));
        else
            return e;
    }
}

static Expr *parse_sum(Parser *ps)
{
    Expr *e = parse_product(ps);
    for (;;) {
        if (accept(ps, "+"))
            e = node(EX_ADD, e, parse_product(ps));
        else if (accept(ps, "-"))
            e = node(EX_SUB, e, parse_product(ps));
        else
            return e;
    }
}

Expr *expr_parse(const Node *scalar, const char *what, const char *const *vars)
{
    Parser ps = {.where = scalar, .text = node_str(scalar, what), .vars = vars};
    ps.p = ps.text;
    Expr *e = parse_sum(&ps);
    skip_space(&ps);
    if (*ps.p) {
        char tail[3] = {*ps.p, '\'', '\0'};
        fail_at(&ps, ps.p, "unexpected '", tail);
    }
    return e;
}

/* ---- evaluating ---------------------------------------------------------------------- */

static double eval_call(int fn, double a, double b)
{
    switch (fn) {
    case FN_EXP: return exp(a);
    case FN_LOG: return log(a);
    case FN_SQRT: return sqrt(a);
    case FN_ABS: return fabs(a);
    case FN_TANH: return tanh(a);
    case FN_MIN: return fmin(a, b);
    case FN_MAX: return fmax(a, b);
    case FN_POW: return pow(a, b);
    case FN_SIGN: return (a > 0) - (a < 0);
    case FN_LE: return a <= b;
    }
    return NAN;
}

double expr_eval(const Expr *e, const double *vars)
{
    double a = e->a ? expr_eval(e->a, vars) : 0, b = e->b ? expr_eval(e->b, vars) : 0;
    switch (e->op) {
    case EX_NUM: return e->num;
    case EX_VAR: return vars[e->var];
    case EX_NEG: return -a;
    case EX_ADD: return a + b;
    case EX_SUB: return a - b;
    case EX_MUL: return a * b;
    case EX_DIV: return a / b;
    case EX_POW: return pow(a, b);
    case EX_CALL: return eval_call(e->fn, a, b);
    }
    return NAN;
}

/* ---- writing C ------------------------------------------------------------------------- */

void expr_emit(FILE *out, const Expr *e, const char *const *c_vars)
{
    static const char ops[] = {[EX_ADD] = '+', [EX_SUB] = '-', [EX_MUL] = '*', [EX_DIV] = '/'};
    char buf[48];
    switch (e->op) {
    case EX_NUM:
        float_text(buf, e->num);
        fprintf(out, e->num < 0 ? "(%s)" : "%s", buf);
        return;
    case EX_VAR:
        fputs(c_vars[e->var], out);
        return;
    case EX_NEG:
        fputs("(-", out);
        expr_emit(out, e->a, c_vars);
        fputc(')', out);
        return;
    case EX_POW:
    case EX_CALL:
        if (e->op == EX_CALL && e->fn == FN_SIGN) {
            fputs("(float)((", out);
            expr_emit(out, e->a, c_vars);
            fputs(" > 0.0f) - (", out);
            expr_emit(out, e->a, c_vars);
            fputs(" < 0.0f))", out);
            return;
        }
        if (e->op == EX_CALL && e->fn == FN_LE) {
            fputs("(", out);
            expr_emit(out, e->a, c_vars);
            fputs(" <= ", out);
            expr_emit(out, e->b, c_vars);
            fputs(" ? 1.0f : 0.0f)", out);
            return;
        }
        fprintf(out, "%s(", e->op == EX_POW ? "powf" : functions[e->fn].c);
        expr_emit(out, e->a, c_vars);
        if (e->b) {
            fputs(", ", out);
            expr_emit(out, e->b, c_vars);
        }
        fputc(')', out);
        return;
    default:
        fputc('(', out);
        expr_emit(out, e->a, c_vars);
        fprintf(out, " %c ", ops[e->op]);
        expr_emit(out, e->b, c_vars);
        fputc(')', out);
    }
}

/* ---- differentiating -------------------------------------------------------------------- */

static bool uses(const Expr *e, int var)
{
    return e && ((e->op == EX_VAR && e->var == var) || uses(e->a, var) || uses(e->b, var));
}

/* d(a ** b): b * a ** (b - 1) * a' when b does not vary, else
 * a ** b * (b' * log(a) + b * a' / a). */
static Expr *power_derivative(const Expr *a, const Expr *b, int var)
{
    Expr *da = expr_derivative(a, var);
    if (!uses(b, var))
        return mul(mul(copy(b), power(copy(a), sub(copy(b), num(1)))), da);
    Expr *db = expr_derivative(b, var);
    Expr *inner = add(mul(db, call(FN_LOG, copy(a), NULL)), quot(mul(copy(b), da), copy(a)));
    return mul(node(EX_POW, copy(a), copy(b)), inner);
}

static Expr *call_derivative(const Expr *e, int var)
{
    const Expr *a = e->a, *b = e->b;
    switch (e->fn) {
    case FN_EXP:
        return mul(copy(e), expr_derivative(a, var));
    case FN_LOG:
        return quot(expr_derivative(a, var), copy(a));
    case FN_SQRT:
        return quot(expr_derivative(a, var), mul(num(2), copy(e)));
    case FN_ABS:
        return mul(call(FN_SIGN, copy(a), NULL), expr_derivative(a, var));
    case FN_TANH:
        return mul(sub(num(1), power(copy(e), num(2))), expr_derivative(a, var));
    case FN_MIN:
    case FN_MAX: {
        /* the gradient goes to the argument chosen (the first on a tie) */
        Expr *first = e->fn == FN_MIN ? call(FN_LE, copy(a), copy(b)) : call(FN_LE, copy(b), copy(a));
        Expr *da = expr_derivative(a, var), *db = expr_derivative(b, var);
        Expr *to_first = mul(copy(first), da);   /* in sequence: mul may free what it folds */
        return add(to_first, mul(sub(num(1), first), db));
    }
    case FN_POW:
        return power_derivative(a, b, var);
    }
    return num(0);   /* FN_SIGN, FN_LE: flat where they are defined */
}

Expr *expr_derivative(const Expr *e, int var)
{
    const Expr *a = e->a, *b = e->b;
    switch (e->op) {
    case EX_NUM: return num(0);
    case EX_VAR: return num(e->var == var);
    case EX_NEG: return neg(expr_derivative(a, var));
    case EX_ADD: return add(expr_derivative(a, var), expr_derivative(b, var));
    case EX_SUB: return sub(expr_derivative(a, var), expr_derivative(b, var));
    case EX_MUL:
        return add(mul(expr_derivative(a, var), copy(b)), mul(copy(a), expr_derivative(b, var)));
    case EX_DIV:
        if (!uses(b, var))
            return quot(expr_derivative(a, var), copy(b));
        return quot(sub(mul(expr_derivative(a, var), copy(b)), mul(copy(a), expr_derivative(b, var))),
                    mul(copy(b), copy(b)));
    case EX_POW: return power_derivative(a, b, var);
    case EX_CALL: return call_derivative(e, var);
    }
    return num(0);
}
