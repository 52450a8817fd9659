/* callbacks.c - what Keras's callbacks decide at the end of an epoch, as pure
 * functions of the logs, so the loop acts on the decision and tests can
 * script a history. CSVLogger only asks to write, so it needs no state. */
#include "rt.h"

#include <math.h>
#include <string.h>

void nn_logs_add(nn_logs *l, const char *name, double value)
{
    if (l->n == NN_MAX_LOGS)
        return;
    l->names[l->n] = name;
    l->values[l->n++] = value;
}

double nn_logs_get(const nn_logs *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->names[i], name) == 0)
            return l->values[i];
    return NAN;
}

static bool improved(const nn_callback *c, const nn_cb_state *s, double v)
{
    if (isnan(v))
        return false;
    if (isnan(s->best))
        return true;
    return c->maximize ? v - c->min_delta > s->best
                                        : v + c->min_delta < s->best;
}

void nn_callback_begin(const nn_callback *c, nn_cb_state *s)
{
    (void)c;
    s->best = NAN;
    s->wait = 0;
    s->best_epoch = -1;
}

/* The course's callback: stop once the metric passes the threshold (above it
 * for accuracy, below it for a loss). Compared in float32, as Keras holds its
 * metrics: an accuracy of exactly 0.9 does not pass 0.9 (widened, 0.9f is
 * 0.89999998, which 0.9 in double would pass). */
static int stop_at_threshold(const nn_callback *c, double v)
{
    if (isnan(v))
        return NN_CB_CONTINUE;
    float f = (float)v;
    bool passed = c->maximize ? f > c->threshold : f < c->threshold;
    return passed ? NN_CB_STOP : NN_CB_CONTINUE;
}

static int early_stopping(const nn_callback *c, nn_cb_state *s, double v, int epoch)
{
    if (isnan(v))          /* Keras: a monitor missing from the logs is skipped, not waited on */
        return NN_CB_CONTINUE;
    if (improved(c, s, v)) {
        s->best = v;
        s->best_epoch = epoch;
        s->wait = 0;
        return c->restore_best_weights ? NN_CB_SAVE : NN_CB_CONTINUE;
    }
    s->wait++;
    if (s->wait >= c->patience && epoch > 0)
        return NN_CB_STOP | (c->restore_best_weights && s->best_epoch >= 0 ? NN_CB_RESTORE_BEST : 0);
    return NN_CB_CONTINUE;
}

static int model_checkpoint(const nn_callback *c, nn_cb_state *s, double v, int epoch)
{
    if (!c->save_best_only)
        return NN_CB_SAVE;
    if (!improved(c, s, v))
        return NN_CB_CONTINUE;
    s->best = v;
    s->best_epoch = epoch;
    return NN_CB_SAVE;
}

int nn_callback_epoch_end(const nn_callback *c, nn_cb_state *s, const nn_logs *logs, int epoch)
{
    double v = c->monitor ? nn_logs_get(logs, c->monitor) : NAN;
    switch (c->kind) {
    case NN_CB_STOP_AT_THRESHOLD:
        return stop_at_threshold(c, v);
    case NN_CB_EARLY_STOPPING:
        return early_stopping(c, s, v, epoch);
    case NN_CB_MODEL_CHECKPOINT:
        return model_checkpoint(c, s, v, epoch);
    case NN_CB_CSV_LOGGER:
        return NN_CB_SAVE;
    }
    return NN_CB_CONTINUE;
}
