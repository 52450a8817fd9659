/* schedule.c - learning rates that change during training, as the model file
 * gives them in Keras's words:
 *   - a schedule object in compile.optimizer.learning_rate, `{class_name:
 *     ExponentialDecay, config: {...}}` as Keras serialises it: a table row per
 *     class with its config keys; the runtime computes the rate per step
 *     (runtime/schedule.c) from the numbers read here;
 *   - the callbacks LearningRateScheduler (`schedule:` an expression of epoch
 *     and lr, parsed by expr.c and emitted as a C function) and
 *     ReduceLROnPlateau, with Keras's defaults. */
#include "nncc.h"
#include "nnrt.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

_Static_assert(MAX_BOUNDARIES == NN_MAX_BOUNDARIES, "one limit for compiler and runtime");

const char *const lr_schedule_vars[] = {"epoch", "lr", NULL};

typedef struct {
    const char *class_name;
    int kind;
    const char *const *keys;      /* its config's keys, required ones first */
    int required;
} ScheduleRow;

static const ScheduleRow schedule_rows[] = {
    {"ExponentialDecay", NN_LR_EXPONENTIAL_DECAY,
     (const char *const[]){"initial_learning_rate", "decay_steps", "decay_rate", "staircase",
                           "name", NULL}, 3},
    {"PiecewiseConstantDecay", NN_LR_PIECEWISE_CONSTANT_DECAY,
     (const char *const[]){"boundaries", "values", "name", NULL}, 2},
    {"InverseTimeDecay", NN_LR_INVERSE_TIME_DECAY,
     (const char *const[]){"initial_learning_rate", "decay_steps", "decay_rate", "staircase",
                           "name", NULL}, 3},
    {"CosineDecay", NN_LR_COSINE_DECAY,
     (const char *const[]){"initial_learning_rate", "decay_steps", "alpha", "name",
                           "warmup_target", "warmup_steps", NULL}, 2},
};
#define N_SCHEDULES (int)(sizeof schedule_rows / sizeof schedule_rows[0])

static double positive_num(const Node *n, const char *what)
{
    double v = node_num(n, what);
    if (!(v > 0))
        error_at(n, "%s must be positive, got %s", what, n->text);
    return v;
}

/* boundaries: increasing step counts; values: one more than boundaries. */
static void read_pieces(ScheduleSpec *s, const Node *config)
{
    const Node *b = map_get(config, "boundaries"), *v = map_get(config, "values");
    if (b->kind != NODE_SEQ || b->n < 1 || b->n > MAX_BOUNDARIES)
        error_at(b, "boundaries must be a list of 1 to %d step counts", MAX_BOUNDARIES);
    if (v->kind != NODE_SEQ || v->n != b->n + 1)
        error_at(v, "values must be a list of one more rate than boundaries (%d)", b->n + 1);
    for (int i = 0; i < b->n; i++) {
        s->boundaries[i] = node_int(b->items[i], "a boundary", 0, INT64_MAX / 2);
        if (i > 0 && s->boundaries[i] <= s->boundaries[i - 1])
            error_at(b->items[i], "boundaries must increase");
    }
    for (int i = 0; i < v->n; i++)
        s->values[i] = positive_num(v->items[i], "a learning rate");
    s->n_boundaries = b->n;
    s->initial_learning_rate = s->values[0];
}

/* CosineDecay's warmup (Keras 2.13 on) is accepted only when it is none. */
static void refuse_warmup(const Node *config)
{
    const Node *v = map_get(config, "warmup_target");
    if (v && !(v->kind == NODE_SCALAR && !v->quoted && (strcmp(v->text, "null") == 0 ||
                                                        strcmp(v->text, "~") == 0 || !*v->text)))
        error_at(v, "CosineDecay's warmup is not supported; give warmup_target: null");
    if ((v = map_get(config, "warmup_steps")) && node_num(v, "warmup_steps") != 0)
        error_at(v, "CosineDecay's warmup is not supported; give warmup_steps: 0");
}

static void read_config(ScheduleSpec *s, const ScheduleRow *row, const Node *config)
{
    map_check_keys(config, row->class_name, row->keys);
    for (int i = 0; i < row->required; i++)
        if (!map_get(config, row->keys[i]))
            error_at(config, "%s needs '%s'", row->class_name, row->keys[i]);
    if (row->kind == NN_LR_PIECEWISE_CONSTANT_DECAY) {
        read_pieces(s, config);
        return;
    }
    const Node *v;
    s->initial_learning_rate = positive_num(map_get(config, "initial_learning_rate"),
                                            "initial_learning_rate");
    s->decay_steps = positive_num(map_get(config, "decay_steps"), "decay_steps");
    if ((v = map_get(config, "decay_rate")))
        s->decay_rate = node_num(v, "decay_rate");
    if ((v = map_get(config, "staircase")))
        s->staircase = node_bool(v, "staircase");
    if ((v = map_get(config, "alpha")))
        s->alpha = node_num(v, "alpha");
    if (row->kind == NN_LR_COSINE_DECAY)
        refuse_warmup(config);
}

double parse_learning_rate(ScheduleSpec *s, const Node *n)
{
    memset(s, 0, sizeof *s);
    if (n->kind != NODE_MAP) {
        double v = node_num(n, "learning_rate");
        if (!(v > 0))
            error_at(n, "learning_rate must be positive, got %s", n->text);
        return v;
    }
    static const char *const keys[] = {"class_name", "config", "module", "registered_name", NULL};
    map_check_keys(n, "a learning-rate schedule", keys);
    const Node *name = map_get(n, "class_name"), *config = map_get(n, "config");
    if (!name || !config || config->kind != NODE_MAP)
        error_at(n, "a learning-rate schedule is {class_name: ExponentialDecay, config: {...}}, "
                    "as Keras writes it");
    const char *names[N_SCHEDULES + 1];
    for (int i = 0; i < N_SCHEDULES; i++)
        names[i] = schedule_rows[i].class_name;
    names[N_SCHEDULES] = NULL;
    for (int i = 0; i < N_SCHEDULES; i++)
        if (strcmp(node_str(name, "class_name"), names[i]) == 0) {
            s->kind = schedule_rows[i].kind;
            s->class_name = names[i];
            read_config(s, &schedule_rows[i], config);
            return s->initial_learning_rate;
        }
    unknown_word(name, "learning-rate schedule", names);
}

/* ---- the callbacks ------------------------------------------------------------------- */

/* Keras's defaults: ReduceLROnPlateau(monitor='val_loss', factor=0.1,
 * patience=10, verbose=0, mode='auto', min_delta=1e-4, cooldown=0, min_lr=0). */
void lr_callback_defaults(CallbackSpec *c)
{
    c->patience = 10;
    c->min_delta = 1e-4;
    c->factor = 0.1;
}

static void refuse_second(const Model *m, const CallbackSpec *c, const Node *item,
                          const char *name)
{
    for (const CallbackSpec *other = m->callbacks; other < c; other++)
        if (other->kind == c->kind)
            error_at(item, "only one %s may change the learning rate", name);
    if (m->optimizer.schedule.kind != NN_LR_CONSTANT)
        error_at(item, "%s cannot change the learning rate: compile's optimizer takes it from "
                       "the schedule %s (Keras refuses this too)", name,
                 m->optimizer.schedule.class_name);
}

/* The rates the scheduler gives over the model's epochs, from the optimizer's
 * rate (as a ReduceLROnPlateau beside it would leave it, when there is none):
 * a rate that is not a positive number is a mistake better caught now. */
static void check_schedule(const Model *m, const CallbackSpec *c, const Node *where)
{
    double lr = m->optimizer.learning_rate;
    for (long epoch = 0; epoch < m->epochs; epoch++) {
        double vars[2] = {(double)epoch, lr};
        lr = (float)expr_eval(c->schedule, vars);
        if (!(lr > 0) || !isfinite(lr))
            error_at(where, "the schedule gives a learning rate of %g at epoch %ld (from 0); it "
                            "must be a positive number", lr, epoch);
    }
}

void parse_lr_callback(const Model *m, CallbackSpec *c, const Node *args, const Node *item)
{
    const Node *v;
    if (c->kind == NN_CB_LEARNING_RATE_SCHEDULER) {
        refuse_second(m, c, item, "LearningRateScheduler");
        v = args ? map_get(args, "schedule") : NULL;
        if (!v)
            error_at(args ? args : item, "LearningRateScheduler needs 'schedule', an expression "
                                         "of epoch and lr such as \"1e-8 * 10 ** (epoch / 20)\"");
        c->schedule = expr_parse(v, "schedule", lr_schedule_vars);
        check_schedule(m, c, v);
    } else {
        refuse_second(m, c, item, "ReduceLROnPlateau");
    }
    if (!args)
        return;
    if ((v = map_get(args, "verbose")))
        c->verbose = node_int(v, "verbose", 0, 2);
    if ((v = map_get(args, "factor"))) {
        c->factor = node_num(v, "factor");
        if (!(c->factor >= 0 && c->factor < 1))
            error_at(v, "ReduceLROnPlateau's factor must be at least 0 and less than 1, got %s",
                     v->text);
    }
    if ((v = map_get(args, "cooldown")))
        c->cooldown = node_int(v, "cooldown", 0, 1 << 30);
    if ((v = map_get(args, "min_lr"))) {
        c->min_lr = node_num(v, "min_lr");
        if (c->min_lr < 0)
            error_at(v, "min_lr must not be negative, got %s", v->text);
    }
}
