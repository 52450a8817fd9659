/* schedule.c - Keras's learning-rate schedule objects (tf.keras 2.x,
 * keras/optimizers/schedules/learning_rate_schedule.py), one function per
 * class in a table by kind. Each is called with the optimizer's iterations
 * before the step (the first step sees 0), as Keras's optimizers call theirs,
 * and computes in float32 as TensorFlow does: the step and decay_steps cast
 * to float32, then float32 arithmetic. */
#include "rt.h"

#include <math.h>

/* decay_rate ** (step / decay_steps), the exponent floored with staircase. */
static float exponential_decay(const nn_lr_schedule *s, int64_t step)
{
    float p = (float)step / s->decay_steps;
    if (s->staircase)
        p = floorf(p);
    return s->initial_learning_rate * powf(s->decay_rate, p);
}

/* values[0] up to and including boundaries[0], values[i] after boundaries[i-1]
 * up to boundaries[i], the last value after the last boundary. */
static float piecewise_constant_decay(const nn_lr_schedule *s, int64_t step)
{
    int i = 0;
    while (i < s->n_boundaries && step > s->boundaries[i])
        i++;
    return s->values[i];
}

/* initial / (1 + decay_rate * step / decay_steps), floored with staircase. */
static float inverse_time_decay(const nn_lr_schedule *s, int64_t step)
{
    float p = (float)step / s->decay_steps;
    if (s->staircase)
        p = floorf(p);
    return s->initial_learning_rate / (1.0f + s->decay_rate * p);
}

/* Half a cosine from 1 down to alpha over decay_steps, then alpha. */
static float cosine_decay(const nn_lr_schedule *s, int64_t step)
{
    float done = fminf((float)step, s->decay_steps) / s->decay_steps;
    float cosine = 0.5f * (1.0f + cosf((float)M_PI * done));
    return s->initial_learning_rate * ((1.0f - s->alpha) * cosine + s->alpha);
}

static float constant(const nn_lr_schedule *s, int64_t step)
{
    (void)step;
    return s->initial_learning_rate;
}

static float (*const schedules[NN_LR_KINDS])(const nn_lr_schedule *, int64_t) = {
    [NN_LR_CONSTANT] = constant,
    [NN_LR_EXPONENTIAL_DECAY] = exponential_decay,
    [NN_LR_PIECEWISE_CONSTANT_DECAY] = piecewise_constant_decay,
    [NN_LR_INVERSE_TIME_DECAY] = inverse_time_decay,
    [NN_LR_COSINE_DECAY] = cosine_decay,
};

float nn_lr_at(const nn_lr_schedule *s, int64_t step)
{
    return schedules[s->kind](s, step);
}
