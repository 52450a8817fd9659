/* regularize.c - Keras's weight regularisers, applied by the runtime.
 *
 * A tensor with kernel_regularizer (or bias_, gamma_, beta_regularizer) adds
 * l1 * sum|w| + l2 * sum w^2 to the loss (keras/regularizers.py), once per
 * batch and not divided by its size, as Keras adds model.losses to the mean
 * loss; so its gradient l1 * sign(w) + 2 * l2 * w joins the tensor's after the
 * backward pass, before the optimizer (and its clipping) sees it. sign(0) is
 * 0, as TensorFlow's gradient of abs. The reported loss includes the penalty,
 * in training, validation and evaluate, as Keras's does. */
#include "rt.h"

#include <math.h>

static double tensor_penalty(const nn_tensor *t, const float *w, float *g)
{
    double l1 = t->reg.l1, l2 = t->reg.l2, abs_sum = 0, square_sum = 0;
    for (size_t k = 0; k < t->size; k++) {
        abs_sum += fabs(w[k]);
        square_sum += (double)w[k] * w[k];
        if (g) {
            float sign = (float)((w[k] > 0) - (w[k] < 0));
            g[k] += t->reg.l1 * sign + 2.0f * t->reg.l2 * w[k];
        }
    }
    return l1 * abs_sum + l2 * square_sum;
}

double nn_weight_penalty(const nn_model *m, const float *params, float *grads)
{
    double penalty = 0;
    for (int i = 0; i < m->n_tensors; i++) {
        const nn_tensor *t = &m->tensors[i];
        if (t->reg.l1 == 0 && t->reg.l2 == 0)
            continue;
        float *g = grads && t->trainable ? grads + t->offset : NULL;
        penalty += tensor_penalty(t, params + t->offset, g);
    }
    return penalty;
}
