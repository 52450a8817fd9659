/* init.c - Keras's initialisers and weight regularisers, one table row each.
 *
 * An initialiser row is Keras's name and class name, its arguments with
 * Keras's defaults, and the rule that turns them and a tensor's fans into one
 * of the runtime's fills (nn_init, runtime/weights.c) with its two numbers:
 * uniform in [a, b), normal or truncated normal of mean a and stddev b, a
 * constant a. nncc works the numbers out here, where the fans are known, so
 * the runtime only draws (keras/initializers/initializers_v2.py:
 * VarianceScaling divides scale by max(1, fan); a truncated normal, cut at two
 * standard deviations, has its stddev divided by 0.87962566103423978 to keep
 * the variance asked for). The variance-scaling family shares one rule, its
 * members fixing scale, mode and distribution; VarianceScaling takes them.
 *
 * A regulariser row is Keras's l1, l2 or l1_l2 with its factors; the runtime
 * adds l1 * sum|w| + l2 * sum w^2 to the loss and its gradient to the
 * tensor's (runtime/train.c).
 *
 * Both read Keras's three spellings: a word (`he_normal`), a native map
 * (`{name: random_normal, stddev: 0.1}`) and Keras's own
 * (`{class_name: HeNormal, config: {seed: 1}}`). */
#include "nncc.h"
#include "nnrt.h"

#include <math.h>
#include <string.h>

/* ---- initialisers ---------------------------------------------------------------------- */

enum { FAN_IN, FAN_OUT, FAN_AVG };
enum { DIST_TRUNCATED, DIST_UNTRUNCATED, DIST_UNIFORM, DIST_NORMAL };
static const char *const modes[] = {"fan_in", "fan_out", "fan_avg", NULL};
/* Keras takes "normal" for "truncated_normal" (VarianceScaling.__init__). */
static const char *const distributions[] = {"truncated_normal", "untruncated_normal", "uniform",
                                            "normal", NULL};

typedef struct {
    const char *key;             /* Keras's argument name; NULL ends the list */
    double value;                /* Keras's default; a word's index in words */
    const char *const *words;    /* the words a word-valued argument takes, or NULL */
    bool fixed;                  /* the class sets it: not an argument the user gives */
} InitArg;

typedef struct {
    int fill;                    /* nn_init */
    float a, b;
} Fill;

typedef struct {
    const char *name, *class_name, *alias;   /* Keras's function and class names; alias or NULL */
    InitArg args[MAX_INIT_ARGS + 1];
    Fill (*fill)(const double *args, long fan_in, long fan_out);
} InitRow;

static Fill variance_scaling(const double *arg, long fan_in, long fan_out)
{
    double n = arg[1] == FAN_IN ? (double)fan_in : arg[1] == FAN_OUT ? (double)fan_out
                                                                   : (fan_in + fan_out) / 2.0;
    double scale = arg[0] / fmax(1.0, n);
    if (arg[2] == DIST_UNIFORM) {
        /* Glorot's uniform is the runtime's own fill, drawn from the fans as it
         * always was, so writing the default changes no bit. */
        if (arg[0] == 1 && arg[1] == FAN_AVG)
            return (Fill){NN_INIT_GLOROT_UNIFORM, 0, 0};
        float limit = (float)sqrt(3.0 * scale);
        return (Fill){NN_INIT_UNIFORM, -limit, limit};
    }
    if (arg[2] == DIST_UNTRUNCATED)
        return (Fill){NN_INIT_NORMAL, 0, (float)sqrt(scale)};
    return (Fill){NN_INIT_TRUNCATED_NORMAL, 0, (float)(sqrt(scale) / 0.87962566103423978)};
}

static Fill random_normal(const double *arg, long fan_in, long fan_out)
{
    (void)fan_in, (void)fan_out;
    return (Fill){NN_INIT_NORMAL, (float)arg[0], (float)arg[1]};
}

static Fill truncated_normal(const double *arg, long fan_in, long fan_out)
{
    (void)fan_in, (void)fan_out;
    return (Fill){NN_INIT_TRUNCATED_NORMAL, (float)arg[0], (float)arg[1]};
}

static Fill random_uniform(const double *arg, long fan_in, long fan_out)
{
    (void)fan_in, (void)fan_out;
    return (Fill){NN_INIT_UNIFORM, (float)arg[0], (float)arg[1]};
}

static Fill constant(const double *arg, long fan_in, long fan_out)
{
    (void)fan_in, (void)fan_out;
    if (arg[0] == 0)
        return (Fill){NN_INIT_ZEROS, 0, 0};
    if (arg[0] == 1)
        return (Fill){NN_INIT_ONES, 0, 0};
    return (Fill){NN_INIT_CONSTANT, (float)arg[0], 0};
}

static Fill orthogonal(const double *arg, long fan_in, long fan_out)
{
    (void)fan_in, (void)fan_out;
    return (Fill){NN_INIT_ORTHOGONAL, (float)arg[0], 0};
}

/* scale, mode, distribution: fixed by the class, or (VarianceScaling) its arguments. */
#define SCALING(scale, mode, dist, fixed)                                                   \
    {{"scale", scale, NULL, fixed}, {"mode", mode, modes, fixed},                            \
     {"distribution", dist, distributions, fixed}}

static const InitRow initializers[] = {
    {"glorot_uniform", "GlorotUniform", NULL, SCALING(1, FAN_AVG, DIST_UNIFORM, true), variance_scaling},
    {"glorot_normal", "GlorotNormal", NULL, SCALING(1, FAN_AVG, DIST_TRUNCATED, true), variance_scaling},
    {"he_normal", "HeNormal", NULL, SCALING(2, FAN_IN, DIST_TRUNCATED, true), variance_scaling},
    {"he_uniform", "HeUniform", NULL, SCALING(2, FAN_IN, DIST_UNIFORM, true), variance_scaling},
    {"lecun_normal", "LecunNormal", NULL, SCALING(1, FAN_IN, DIST_TRUNCATED, true), variance_scaling},
    {"lecun_uniform", "LecunUniform", NULL, SCALING(1, FAN_IN, DIST_UNIFORM, true), variance_scaling},
    {"variance_scaling", "VarianceScaling", NULL, SCALING(1, FAN_IN, DIST_TRUNCATED, false),
     variance_scaling},
    {"random_normal", "RandomNormal", "normal", {{"mean", 0, NULL, false}, {"stddev", 0.05, NULL, false}},
     random_normal},
    {"random_uniform", "RandomUniform", "uniform",
     {{"minval", -0.05, NULL, false}, {"maxval", 0.05, NULL, false}}, random_uniform},
    {"truncated_normal", "TruncatedNormal", NULL,
     {{"mean", 0, NULL, false}, {"stddev", 0.05, NULL, false}}, truncated_normal},
    {"constant", "Constant", NULL, {{"value", 0, NULL, false}}, constant},
    {"zeros", "Zeros", "zero", {{"value", 0, NULL, true}}, constant},
    {"ones", "Ones", "one", {{"value", 1, NULL, true}}, constant},
    {"orthogonal", "Orthogonal", NULL, {{"gain", 1, NULL, false}}, orthogonal},
};
#define N_INITIALIZERS (int)(sizeof initializers / sizeof initializers[0])

const char *const *initializer_names(void)
{
    static const char *names[N_INITIALIZERS + 1];
    for (int i = 0; i < N_INITIALIZERS; i++)
        names[i] = initializers[i].name;
    return names;
}

static int initializer_row(const Node *word)
{
    const char *s = node_str(word, "initializer");
    for (int i = 0; i < N_INITIALIZERS; i++) {
        const InitRow *r = &initializers[i];
        if (same_word(s, r->name) || strcmp(s, r->class_name) == 0 ||
            (r->alias && strcmp(s, r->alias) == 0))
            return i;
    }
    unknown_word(word, "initializer", initializer_names());
}

static double read_word(const Node *v, const char *key, const char *const *words)
{
    const char *s = node_str(v, key);
    for (int k = 0; words[k]; k++)
        if (strcmp(s, words[k]) == 0)
            return k;
    unknown_word(v, key, words);
}

/* What Keras would refuse, or what would draw nothing sensible. */
static double checked_arg(const Node *v, const InitRow *r, const char *key)
{
    double x = node_num(v, key);
    if (strcmp(key, "scale") == 0 && !(x > 0))
        error_at(v, "%s: scale must be positive, got %s", r->class_name, v->text);
    if (strcmp(key, "stddev") == 0 && !(x >= 0))
        error_at(v, "%s: stddev must be at least 0, got %s", r->class_name, v->text);
    return x;
}

/* The arguments in map args (NULL: none) over the row's defaults; skip: a key
 * that names the initialiser itself (the native map's `name`), or NULL. */
static void read_init_args(InitSpec *s, const InitRow *r, const Node *args, const char *skip)
{
    const char *keys[MAX_INIT_ARGS + 3];
    int n = 0;
    for (int k = 0; r->args[k].key; k++) {
        s->args[k] = r->args[k].value;
        if (!r->args[k].fixed)
            keys[n++] = r->args[k].key;
    }
    keys[n++] = "seed";
    keys[n++] = skip;
    keys[n] = NULL;
    if (!args || (args->kind == NODE_SCALAR && strcmp(args->text, "null") == 0))
        return;
    char what[48];
    snprintf(what, sizeof what, "%s's arguments", r->class_name);
    map_check_keys(args, what, keys);
    for (int k = 0; r->args[k].key; k++) {
        const Node *v = r->args[k].fixed ? NULL : map_get(args, r->args[k].key);
        if (v)
            s->args[k] = r->args[k].words ? read_word(v, r->args[k].key, r->args[k].words)
                                          : checked_arg(v, r, r->args[k].key);
    }
    if (r->fill == random_uniform && !(s->args[0] <= s->args[1]))
        error_at(args, "%s: minval (%g) is greater than maxval (%g)", r->class_name, s->args[0],
                 s->args[1]);
    const Node *seed = map_get(args, "seed");
    if (seed && !(seed->kind == NODE_SCALAR && !seed->quoted && strcmp(seed->text, "null") == 0)) {
        s->seeded = true;
        s->seed = (unsigned long long)node_int(seed, "seed", 0, 0x7fffffffffffffffL);
    }
}

void parse_initializer(const Node *v, const char *key, InitSpec *s)
{
    memset(s, 0, sizeof *s);
    const Node *word = v, *args = NULL;
    const char *skip = NULL;
    if (v->kind == NODE_MAP) {
        const Node *class_name = map_get(v, "class_name");
        if (class_name) {   /* Keras's: {class_name: HeNormal, config: {...}} (Keras 3: module too) */
            static const char *const outer[] = {"class_name", "config", "module",
                                                "registered_name", NULL};
            map_check_keys(v, key, outer);
            word = class_name;
            args = map_get(v, "config");
        } else {            /* native: {name: random_normal, stddev: 0.1} */
            word = map_get(v, "name");
            if (!word)
                error_at(v, "%s needs a name, e.g. {name: random_normal, stddev: 0.1}", key);
            args = v;
            skip = "name";
        }
    } else if (v->kind != NODE_SCALAR) {
        error_at(v, "%s must be a word (he_normal) or a map ({name: random_normal, stddev: 0.1})",
                 key);
    }
    s->kind = initializer_row(word);
    read_init_args(s, &initializers[s->kind], args, skip);
    s->given = true;
}

int init_fill(const InitSpec *s, long fan_in, long fan_out, float *a, float *b)
{
    Fill f = initializers[s->kind].fill(s->args, fan_in, fan_out);
    *a = f.a, *b = f.b;
    return f.fill;
}

/* ---- regularisers ---------------------------------------------------------------------- */

typedef struct {
    const char *name, *class_name;
    bool takes_l1, takes_l2;
    double l1, l2;               /* Keras's defaults for the word and the native map */
    double class_l1, class_l2;   /* and in a class config: Keras's L1L2 class defaults to 0,
                                    its l1_l2() function to 0.01 each */
} RegRow;

static const RegRow regularizers[] = {
    {"l1", "L1", true, false, 0.01, 0, 0.01, 0},
    {"l2", "L2", false, true, 0, 0.01, 0, 0.01},
    {"l1_l2", "L1L2", true, true, 0.01, 0.01, 0, 0},
};
#define N_REGULARIZERS (int)(sizeof regularizers / sizeof regularizers[0])

const char *const *regularizer_names(void)
{
    static const char *names[N_REGULARIZERS + 1];
    for (int i = 0; i < N_REGULARIZERS; i++)
        names[i] = regularizers[i].name;
    return names;
}

static const RegRow *regularizer_row(const Node *word)
{
    const char *s = node_str(word, "regularizer");
    for (int i = 0; i < N_REGULARIZERS; i++)
        if (strcmp(s, regularizers[i].name) == 0 || strcmp(s, regularizers[i].class_name) == 0)
            return &regularizers[i];
    unknown_word(word, "regularizer", regularizer_names());
}

static double factor(const Node *args, const char *key, double dflt)
{
    const Node *v = map_get(args, key);
    if (!v)
        return dflt;
    double x = node_num(v, key);
    if (!(x >= 0))
        error_at(v, "%s must be at least 0, got %s", key, v->text);
    return x;
}

static bool is_null_node(const Node *v)
{
    return v->kind == NODE_SCALAR && !v->quoted &&
           (strcmp(v->text, "null") == 0 || strcmp(v->text, "~") == 0);
}

void parse_regularizer(const Node *v, const char *key, RegSpec *s)
{
    memset(s, 0, sizeof *s);
    if (is_null_node(v))
        return;
    if (strncmp(key, "activity_", 9) == 0)
        error_at(v, "%s is not supported: nncc regularises weights (kernel_regularizer, "
                    "bias_regularizer), not outputs", key);
    if (v->kind == NODE_SCALAR) {
        const RegRow *r = regularizer_row(v);
        s->l1 = r->l1, s->l2 = r->l2;
        return;
    }
    if (v->kind != NODE_MAP)
        error_at(v, "%s must be a word (l2) or a map ({l2: 0.001})", key);
    const Node *class_name = map_get(v, "class_name"), *name = map_get(v, "name");
    const RegRow *r = class_name ? regularizer_row(class_name) : name ? regularizer_row(name) : NULL;
    const Node *args = v;
    if (class_name) {
        static const char *const outer[] = {"class_name", "config", "module", "registered_name",
                                            NULL};
        map_check_keys(v, key, outer);
        args = map_get(v, "config");
        if (!args || args->kind != NODE_MAP)
            error_at(v, "%s: %s needs its config, e.g. {l2: 0.001}", key, r->class_name);
    }
    static const char *const both[] = {"l1", "l2", "name", NULL};
    static const char *const only_l1[] = {"l1", "name", NULL}, *const only_l2[] = {"l2", "name", NULL};
    map_check_keys(args, key, !r || (r->takes_l1 && r->takes_l2) ? both
                              : r->takes_l1                      ? only_l1
                                                                 : only_l2);
    /* {l2: 0.001} alone: the factors given, the others 0, as Keras's L1L2(l1, l2). */
    s->l1 = factor(args, "l1", !r ? 0 : class_name ? r->class_l1 : r->l1);
    s->l2 = factor(args, "l2", !r ? 0 : class_name ? r->class_l2 : r->l2);
}
