/* losses.c - compile's loss and metrics, and fit's class_weight: Keras's
 * words and arguments, as two tables (a row per loss, a row per metric) and
 * the readers that check a model file's values against them. The runtime's
 * loss.c and metrics.c hold the formulas, by the same nn_loss_kind and
 * nn_metric_kind.
 *
 * A loss is a name (`huber`), a map with its name and arguments
 * (`{name: categorical_crossentropy, from_logits: true}`), or Keras's
 * serialised object (`{class_name: CategoricalCrossentropy, config: {...}}`).
 * A metric likewise; its log name (what the progress line, the history and
 * the callbacks call it) is, as Keras's compile() makes it, the word as
 * written for a function (`mae`), or the class's default name for a class
 * (`MeanAbsoluteError` logs as `mean_absolute_error`), or the `name:` given.
 */
#include "nncc.h"
#include "nnrt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { ARG_FROM_LOGITS = 1, ARG_LABEL_SMOOTHING = 2, ARG_DELTA = 4 };

typedef struct {
    int kind;                      /* nn_loss_kind */
    const char *names[6];          /* Keras's function name first, its aliases, its class */
    unsigned args;
} LossRow;

static const LossRow loss_rows[] = {
    {NN_LOSS_MSE, {"mean_squared_error", "mse", "MSE", "MeanSquaredError"}, 0},
    {NN_LOSS_MAE, {"mean_absolute_error", "mae", "MAE", "MeanAbsoluteError"}, 0},
    {NN_LOSS_HUBER, {"huber", "huber_loss", "Huber"}, ARG_DELTA},
    {NN_LOSS_LOG_COSH, {"log_cosh", "logcosh", "LogCosh"}, 0},
    {NN_LOSS_KL_DIVERGENCE, {"kl_divergence", "kld", "KLD", "kullback_leibler_divergence",
                             "KLDivergence"}, 0},
    {NN_LOSS_BINARY_CE, {"binary_crossentropy", "BinaryCrossentropy"},
     ARG_FROM_LOGITS | ARG_LABEL_SMOOTHING},
    {NN_LOSS_CATEGORICAL_CE, {"categorical_crossentropy", "CategoricalCrossentropy"},
     ARG_FROM_LOGITS | ARG_LABEL_SMOOTHING},
    /* tf.keras 2.x's SparseCategoricalCrossentropy has no label_smoothing. */
    {NN_LOSS_SPARSE_CE, {"sparse_categorical_crossentropy", "SparseCategoricalCrossentropy"},
     ARG_FROM_LOGITS},
};
#define N_LOSS_ROWS (int)(sizeof loss_rows / sizeof loss_rows[0])

static const char *const loss_arg_names[] = {"from_logits", "label_smoothing", "delta"};

const char *const *loss_words(void)
{
    static const char *words[N_LOSS_ROWS * 6 + 1];
    int n = 0;
    for (int i = 0; i < N_LOSS_ROWS; i++)
        for (const char *const *w = loss_rows[i].names; *w && w < loss_rows[i].names + 6; w++)
            words[n++] = *w;
    words[n] = NULL;
    return words;
}

static const LossRow *loss_row(int kind)
{
    for (int i = 0; i < N_LOSS_ROWS; i++)
        if (loss_rows[i].kind == kind)
            return &loss_rows[i];
    return NULL;
}

bool loss_takes_class_index(int loss)
{
    return loss == NN_LOSS_SPARSE_CE;
}

/* The names are matched exactly, as Keras's get() does. */
static const LossRow *find_loss(const Node *name)
{
    const char *s = node_str(name, "loss");
    for (int i = 0; i < N_LOSS_ROWS; i++)
        for (const char *const *w = loss_rows[i].names; *w && w < loss_rows[i].names + 6; w++)
            if (strcmp(s, *w) == 0)
                return &loss_rows[i];
    unsupported_word(name, "loss", loss_words());
}

/* "from_logits, label_smoothing", or "none". */
static const char *arg_list(unsigned args, const char *const *names, int count, char *buf,
                            size_t len)
{
    buf[0] = '\0';
    for (int i = 0; i < count; i++)
        if (args & (1u << i))
            snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "", names[i]);
    return buf[0] ? buf : "none";
}

/* Keras's reduction: only its default, which nncc applies. */
static void check_reduction(const Node *v)
{
    const char *s = node_str(v, "reduction");
    if (strcmp(s, "auto") != 0 && strcmp(s, "sum_over_batch_size") != 0)
        error_at(v, "reduction '%s' is not supported: nncc takes Keras's default, "
                    "sum_over_batch_size (auto)", s);
}

static void loss_arg(Model *m, const LossRow *r, const Node *key, const Node *v)
{
    const char *k = key->text;
    int arg = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(k, loss_arg_names[i]) == 0)
            arg = i;
    if (arg >= 0 && !(r->args & (1u << arg))) {
        char list[80];
        error_at(key, "'%s' is not an argument of %s (it takes %s)", k, r->names[0],
                 arg_list(r->args, loss_arg_names, 3, list, sizeof list));
    }
    if (arg == 0) {
        m->from_logits = node_bool(v, "from_logits");
    } else if (arg == 1) {
        m->label_smoothing = node_num(v, "label_smoothing");
        if (!(m->label_smoothing >= 0 && m->label_smoothing <= 1))
            error_at(v, "label_smoothing must be between 0 and 1, got %s", v->text);
    } else if (arg == 2) {
        m->huber_delta = node_num(v, "delta");
        if (!(m->huber_delta > 0 && isfinite(m->huber_delta)))
            error_at(v, "delta must be positive, got %s", v->text);
    } else if (strcmp(k, "reduction") == 0) {
        check_reduction(v);
    } else if (strcmp(k, "ignore_class") == 0 && r->kind == NN_LOSS_SPARSE_CE) {
        /* Keras 2.10's config writes it, null unless set. */
        if (!(v->kind == NODE_SCALAR && !v->quoted &&
              (strcmp(v->text, "null") == 0 || strcmp(v->text, "None") == 0 || !*v->text)))
            error_at(v, "ignore_class is not supported: every label must be a class");
    } else if (strcmp(k, "axis") == 0) {
        if (node_int(v, "axis", -1000, 1000) != -1)
            error_at(v, "axis must be -1 (the last axis): nncc's losses reduce over it");
    } else if (strcmp(k, "name") != 0) {
        char list[80];
        error_at(key, "unknown key '%s' in the loss %s; it takes name, reduction and its "
                      "arguments (%s)", k, r->names[0],
                 arg_list(r->args, loss_arg_names, 3, list, sizeof list));
    }
}

void parse_loss(Model *m, const Node *n)
{
    const Node *name = n, *args = NULL;
    if (n->kind == NODE_MAP && map_get(n, "class_name")) {
        static const char *const keys[] = {"class_name", "config", NULL};
        map_check_keys(n, "loss", keys);
        name = map_get(n, "class_name");
        args = map_get(n, "config");
    } else if (n->kind == NODE_MAP) {
        name = map_get(n, "name");
        if (!name)
            error_at(n, "a loss given as a map needs 'name' (or Keras's class_name and config), "
                        "e.g. {name: categorical_crossentropy, from_logits: true}");
        args = n;
    }
    const LossRow *r = find_loss(name);
    m->loss = r->kind;
    m->loss_where = n;
    m->huber_delta = 1.0;
    m->label_smoothing = 0.0;
    m->from_logits = false;
    if (args && args->kind != NODE_MAP)
        error_at(args, "config must be a map of the loss's arguments");
    for (int i = 0; args && i < args->n; i++)
        loss_arg(m, r, args->keys[i], args->items[i]);
}

/* ---- metrics -------------------------------------------------------------------------- */

enum { ARG_K = 1, ARG_THRESHOLD = 2, ARG_THRESHOLDS = 4, ARG_NUM_THRESHOLDS = 8 };
static const char *const metric_arg_names[] = {"k", "threshold", "thresholds",
                                               "num_thresholds"};
/* Which labels a metric can compare with the output. */
enum { LABELS_ANY, LABELS_CLASS_INDEX, LABELS_PER_UNIT };

typedef struct {
    int kind;                      /* nn_metric_kind */
    unsigned args;
    int labels;
    bool maximize;                 /* Keras's mode auto */
    bool probabilities;            /* thresholds outputs in [0, 1] */
} MetricRow;

static const MetricRow metric_rows[] = {
    {NN_METRIC_ACCURACY, 0, LABELS_ANY, true, false},
    {NN_METRIC_BINARY_ACCURACY, ARG_THRESHOLD, LABELS_PER_UNIT, true, false},
    {NN_METRIC_CATEGORICAL_ACCURACY, 0, LABELS_PER_UNIT, true, false},
    {NN_METRIC_SPARSE_CATEGORICAL_ACCURACY, 0, LABELS_CLASS_INDEX, true, false},
    {NN_METRIC_TOP_K_CATEGORICAL_ACCURACY, ARG_K, LABELS_PER_UNIT, true, false},
    {NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY, ARG_K, LABELS_CLASS_INDEX, true, false},
    {NN_METRIC_MAE, 0, LABELS_PER_UNIT, false, false},
    {NN_METRIC_MSE, 0, LABELS_PER_UNIT, false, false},
    {NN_METRIC_RMSE, 0, LABELS_PER_UNIT, false, false},
    {NN_METRIC_PRECISION, ARG_THRESHOLDS, LABELS_PER_UNIT, true, true},
    {NN_METRIC_RECALL, ARG_THRESHOLDS, LABELS_PER_UNIT, true, true},
    {NN_METRIC_AUC, ARG_NUM_THRESHOLDS, LABELS_PER_UNIT, true, true},
};

/* The words metrics: takes, and the name each logs as. */
typedef struct {
    const char *word;
    int kind;
    const char *log;
} MetricWord;

static const MetricWord metric_words_table[] = {
    {"accuracy", NN_METRIC_ACCURACY, "accuracy"},
    {"acc", NN_METRIC_ACCURACY, "accuracy"},
    {"binary_accuracy", NN_METRIC_BINARY_ACCURACY, "binary_accuracy"},
    {"BinaryAccuracy", NN_METRIC_BINARY_ACCURACY, "binary_accuracy"},
    {"categorical_accuracy", NN_METRIC_CATEGORICAL_ACCURACY, "categorical_accuracy"},
    {"CategoricalAccuracy", NN_METRIC_CATEGORICAL_ACCURACY, "categorical_accuracy"},
    {"sparse_categorical_accuracy", NN_METRIC_SPARSE_CATEGORICAL_ACCURACY,
     "sparse_categorical_accuracy"},
    {"SparseCategoricalAccuracy", NN_METRIC_SPARSE_CATEGORICAL_ACCURACY,
     "sparse_categorical_accuracy"},
    {"top_k_categorical_accuracy", NN_METRIC_TOP_K_CATEGORICAL_ACCURACY,
     "top_k_categorical_accuracy"},
    {"TopKCategoricalAccuracy", NN_METRIC_TOP_K_CATEGORICAL_ACCURACY,
     "top_k_categorical_accuracy"},
    {"sparse_top_k_categorical_accuracy", NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY,
     "sparse_top_k_categorical_accuracy"},
    {"SparseTopKCategoricalAccuracy", NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY,
     "sparse_top_k_categorical_accuracy"},
    {"mae", NN_METRIC_MAE, "mae"},
    {"MAE", NN_METRIC_MAE, "MAE"},
    {"mean_absolute_error", NN_METRIC_MAE, "mean_absolute_error"},
    {"MeanAbsoluteError", NN_METRIC_MAE, "mean_absolute_error"},
    {"mse", NN_METRIC_MSE, "mse"},
    {"MSE", NN_METRIC_MSE, "MSE"},
    {"mean_squared_error", NN_METRIC_MSE, "mean_squared_error"},
    {"MeanSquaredError", NN_METRIC_MSE, "mean_squared_error"},
    {"rmse", NN_METRIC_RMSE, "rmse"},
    {"RootMeanSquaredError", NN_METRIC_RMSE, "root_mean_squared_error"},
    {"precision", NN_METRIC_PRECISION, "precision"},
    {"Precision", NN_METRIC_PRECISION, "precision"},
    {"recall", NN_METRIC_RECALL, "recall"},
    {"Recall", NN_METRIC_RECALL, "recall"},
    {"auc", NN_METRIC_AUC, "auc"},
    {"AUC", NN_METRIC_AUC, "auc"},
};
#define N_METRIC_WORDS (int)(sizeof metric_words_table / sizeof metric_words_table[0])

const char *const *metric_words(void)
{
    static const char *words[N_METRIC_WORDS + 1];
    for (int i = 0; i < N_METRIC_WORDS; i++)
        words[i] = metric_words_table[i].word;
    return words;
}

static const MetricRow *metric_row(int kind)
{
    for (size_t i = 0; i < sizeof metric_rows / sizeof metric_rows[0]; i++)
        if (metric_rows[i].kind == kind)
            return &metric_rows[i];
    return NULL;
}

static const MetricWord *find_metric(const Node *name)
{
    const char *s = node_str(name, "metric");
    for (int i = 0; i < N_METRIC_WORDS; i++)
        if (strcmp(s, metric_words_table[i].word) == 0)
            return &metric_words_table[i];
    unsupported_word(name, "metric", metric_words());
}

static void set_log_name(MetricSpec *s, const char *name)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->val_name, sizeof s->val_name, "val_%s", name);
}

/* A fixed-choice key of Keras's AUC config: only the value nncc computes. */
static void only_value(const Node *v, const char *key, const char *want)
{
    if (!same_word(node_str(v, key), want))
        error_at(v, "%s '%s' is not supported: nncc computes %s", key, v->text, want);
}

static void metric_arg(MetricSpec *s, const MetricRow *r, const char *word, const Node *key,
                       const Node *v)
{
    const char *k = key->text;
    int arg = -1;
    for (int i = 0; i < 4; i++)
        if (strcmp(k, metric_arg_names[i]) == 0)
            arg = i;
    if (arg >= 0 && !(r->args & (1u << arg))) {
        char list[80];
        error_at(key, "'%s' is not an argument of %s (it takes %s)", k, word,
                 arg_list(r->args, metric_arg_names, 4, list, sizeof list));
    }
    if (arg == 0) {
        s->k = node_int(v, "k", 1, 1L << 30);
    } else if (arg == 1 || arg == 2) {
        s->threshold = node_num(v, k);
        if (!(s->threshold >= 0 && s->threshold <= 1))
            error_at(v, "%s must be a number between 0 and 1, got %s", k, v->text);
    } else if (arg == 3) {
        s->num_thresholds = node_int(v, "num_thresholds", 2, 1L << 20);
    } else if (strcmp(k, "name") == 0) {
        const char *name = node_str(v, "name");
        if (!is_c_identifier(name))
            error_at(v, "a metric's name must be a word ([A-Za-z_][A-Za-z0-9_]*), got '%s'",
                     name);
        set_log_name(s, name);
    } else if (strcmp(k, "dtype") == 0) {
        only_value(v, "dtype", "float32");
    } else if (r->kind == NN_METRIC_AUC && strcmp(k, "curve") == 0) {
        only_value(v, "curve", "ROC");
    } else if (r->kind == NN_METRIC_AUC && strcmp(k, "summation_method") == 0) {
        only_value(v, "summation_method", "interpolation");
    } else if (r->kind == NN_METRIC_AUC && strcmp(k, "multi_label") == 0) {
        if (node_bool(v, "multi_label"))
            error_at(v, "multi_label: true is not supported: nncc's AUC treats every output "
                        "unit as one more binary prediction");
    } else {
        char list[80];
        error_at(key, "unknown key '%s' in the metric %s; it takes name and its arguments (%s)",
                 k, word, arg_list(r->args, metric_arg_names, 4, list, sizeof list));
    }
}

static void parse_metric(MetricSpec *s, const Node *item)
{
    const Node *name = item, *args = NULL;
    if (item->kind == NODE_MAP && map_get(item, "class_name")) {
        static const char *const keys[] = {"class_name", "config", NULL};
        map_check_keys(item, "metric", keys);
        name = map_get(item, "class_name");
        args = map_get(item, "config");
    } else if (item->kind == NODE_MAP) {
        name = map_get(item, "name");
        if (!name)
            error_at(item, "a metric given as a map needs 'name', e.g. "
                           "{name: sparse_top_k_categorical_accuracy, k: 3}");
        args = item;
    }
    const MetricWord *w = find_metric(name);
    const MetricRow *r = metric_row(w->kind);
    memset(s, 0, sizeof *s);
    s->kind = w->kind;
    s->k = 5;
    s->threshold = 0.5;
    s->num_thresholds = 200;
    s->maximize = r->maximize;
    s->where = item;
    set_log_name(s, w->log);
    if (args && args->kind != NODE_MAP)
        error_at(args, "config must be a map of the metric's arguments");
    for (int i = 0; args && i < args->n; i++)
        if (args != item || strcmp(args->keys[i]->text, "name") != 0)
            metric_arg(s, r, w->word, args->keys[i], args->items[i]);
}

/* The labels the loss gives a metric to compare with: Keras would compute
 * nonsense from the wrong ones (or fail on their shapes). */
static void check_metric(const Model *m, const MetricSpec *s)
{
    const MetricRow *r = metric_row(s->kind);
    const char *loss = loss_row(m->loss)->names[0];
    bool class_index = loss_takes_class_index(m->loss);
    if (r->labels == LABELS_CLASS_INDEX && !class_index)
        error_at(s->where, "metric '%s' compares the output with a class index, but %s's labels "
                           "are a number per output unit; use %s (or accuracy)", s->name, loss,
                 s->kind == NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY ? "top_k_categorical_accuracy"
                 : m->loss == NN_LOSS_BINARY_CE                        ? "binary_accuracy"
                                                                       : "categorical_accuracy");
    if (r->labels == LABELS_PER_UNIT && class_index)
        error_at(s->where, "metric '%s' compares the output with a number per output unit, but "
                           "%s's labels are class indices; use sparse_categorical_accuracy, "
                           "sparse_top_k_categorical_accuracy (or accuracy)", s->name, loss);
    if (r->probabilities && m->from_logits)
        error_at(s->where, "metric '%s' thresholds probabilities, but with from_logits: true "
                           "the output is logits; end the model in a sigmoid and drop "
                           "from_logits", s->name);
}

void parse_metrics(Model *m, const Node *n)
{
    if (n->kind != NODE_SEQ)
        error_at(n, "metrics must be a list, e.g. [accuracy]");
    if (n->n > MAX_METRICS)
        error_at(n->items[MAX_METRICS], "too many metrics (at most %d)", MAX_METRICS);
    m->n_metrics = 0;
    for (int i = 0; i < n->n; i++) {
        MetricSpec *s = &m->metrics[m->n_metrics];
        parse_metric(s, n->items[i]);
        for (int j = 0; j < m->n_metrics; j++)
            if (strcmp(m->metrics[j].name, s->name) == 0)
                error_at(n->items[i], "metric '%s' is given twice", s->name);
        if (m->loss != NN_LOSS_NONE)
            check_metric(m, s);
        m->n_metrics++;
    }
}

/* ---- callbacks' monitors ------------------------------------------------------------ */

const char *parse_monitor(const Model *m, const Node *n, bool *maximize)
{
    const char *s = node_str(n, "monitor");
    /* Keras 1's names, still read by nncc as they were. */
    if (strcmp(s, "acc") == 0 || strcmp(s, "val_acc") == 0)
        s = s[0] == 'a' ? "accuracy" : "val_accuracy";
    *maximize = false;
    if (strcmp(s, "loss") == 0 || strcmp(s, "val_loss") == 0)
        return s[0] == 'l' ? "loss" : "val_loss";
    const char *logged[2 * MAX_METRICS + 3] = {"loss"};
    int n_logged = 1;
    for (int i = 0; i < m->n_metrics; i++) {
        const MetricSpec *x = &m->metrics[i];
        *maximize = x->maximize;
        if (strcmp(s, x->name) == 0)
            return x->name;
        if (strcmp(s, x->val_name) == 0)
            return x->val_name;
        logged[n_logged++] = x->name;
    }
    logged[n_logged++] = "val_loss";
    for (int i = 0; i < m->n_metrics; i++)
        logged[n_logged++] = m->metrics[i].val_name;
    logged[n_logged] = NULL;
    char list[1024] = "";
    for (const char *const *w = logged; *w; w++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", list[0] ? ", " : "",
                 *w);
    error_at(n, "monitor '%s' is not in the logs; the model logs %s (compile: metrics: adds "
                "more)", s, list);
}

/* ---- class_weight ---------------------------------------------------------------------- */

/* A key: a class index, or the name of one of data: class_names. */
static long class_of_key(const Model *m, const Node *key)
{
    const char *s = key->text;
    if (!key->quoted && s[0] && strchr("+-0123456789", s[0]))
        return node_int(key, "a class_weight key", 0, 1L << 20);
    for (int i = 0; i < m->n_class_names; i++)
        if (strcmp(s, m->class_names[i]) == 0)
            return i;
    if (!m->n_class_names)
        error_at(key, "class_weight key '%s' is not a class index (class names need "
                      "data: class_names)", s);
    unsupported_word(key, "class", (const char *const *)m->class_names);
}

void parse_class_weight(Model *m, const Node *n)
{
    if (n->kind != NODE_MAP || n->n == 0)
        error_at(n, "class_weight must be a map of class: weight, e.g. {0: 1.0, 1: 3.0}");
    m->class_weight = calloc((size_t)n->n, sizeof *m->class_weight);
    bool *seen = calloc((size_t)n->n, sizeof *seen);
    if (!m->class_weight || !seen)
        error_at(n, "out of memory");
    m->n_class_weights = n->n;
    m->class_weight_where = n;
    for (int i = 0; i < n->n; i++) {
        long c = class_of_key(m, n->keys[i]);
        /* Keras's rule (data_adapter): the keys are exactly 0 to C-1. */
        if (c >= n->n)
            error_at(n->keys[i], "class_weight has %d classes, so its keys must be 0 to %d "
                                 "(Keras's rule), got %ld", n->n, n->n - 1, c);
        if (seen[c])
            error_at(n->keys[i], "class %ld is given twice in class_weight", c);
        seen[c] = true;
        double w = node_num(n->items[i], "a class weight");
        if (!(w >= 0 && isfinite(w)))
            error_at(n->items[i], "a class weight must be a number at least 0, got %s",
                     n->items[i]->text);
        m->class_weight[c] = w;
    }
    free(seen);
}
