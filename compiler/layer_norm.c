/* layer_norm.c - the layer table's row for BatchNormalization: gamma and beta
 * trained, the moving mean and variance updated by the forward pass and saved
 * with the weights. Its C is in templates/batchnorm*.c.in. */
#include "nncc.h"
#include "nnrt.h"

#include <stddef.h>

#define F(field) offsetof(Layer, field)

static void batchnorm_defaults(Layer *l)
{
    l->momentum = 0.99, l->epsilon = 1e-3;
}

/* gamma, beta (trainable) and the moving mean and variance, per channel. */
static int batchnorm_tensors(const Layer *l, TensorSpec *t)
{
    long c = l->in.dim[l->in.rank - 1];
    t[0] = (TensorSpec){"gamma", 1, {c}, NN_INIT_ONES, false};
    t[1] = (TensorSpec){"beta", 1, {c}, NN_INIT_ZEROS, false};
    t[2] = (TensorSpec){"moving_mean", 1, {c}, NN_INIT_ZEROS, true};
    t[3] = (TensorSpec){"moving_variance", 1, {c}, NN_INIT_ONES, true};
    return 4;
}

/* The batch's mean and 1/std per channel, kept for backward. */
static long batchnorm_stats_size(const Layer *l)
{
    return 2 * l->out.dim[l->out.rank - 1];
}

static const KeySpec batchnorm_keys[] = {
    {"momentum", ARG_UNIT_RANGE, F(momentum), 0, false, NULL},
    {"epsilon", ARG_POSITIVE, F(epsilon), 0, false, NULL},
    {"gamma_initializer", ARG_INITIALIZER, 0, 0, false, "ones"},
    {"beta_initializer", ARG_INITIALIZER, 0, 0, false, "zeros"},
    {"moving_mean_initializer", ARG_INITIALIZER, 0, 0, false, "zeros"},
    {"moving_variance_initializer", ARG_INITIALIZER, 0, 0, false, "ones"},
    {"gamma_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},
    {"beta_regularizer", ARG_REGULARIZER, 0, 0, false, NULL},
    {0},
};

static const KerasKey batchnorm_keras_keys[] = {
    {"fused", KERAS_IGNORE}, {"synchronized", KERAS_IGNORE}, {"renorm_momentum", KERAS_IGNORE},
    {"axis", KERAS_LAST_AXIS}, {"center", KERAS_TRUE}, {"scale", KERAS_TRUE},
    {"beta_constraint", KERAS_NONE}, {"gamma_constraint", KERAS_NONE},
    {"renorm", KERAS_FALSE}, {"renorm_clipping", KERAS_NONE},
    {"virtual_batch_size", KERAS_NONE}, {"adjustment", KERAS_NONE}, {NULL, 0},
};

const LayerOps batchnorm_ops = {
    .keras_name = "BatchNormalization", .default_name = "batch_normalization",
    .keys = batchnorm_keys, .keras = (const KerasKey *const[]){batchnorm_keras_keys, NULL},
    .defaults = batchnorm_defaults, .shape = same_shape, .tensors = batchnorm_tensors,
    .aux = "stats", .aux_size = batchnorm_stats_size,
    .tmpl = "batchnorm", .inference_tmpl = "batchnorm_inference",
    .forward_args = "pass n x P0 P1 P2 P3 aux y",
    .backward_args = "n x P0 aux dy dx G0 G1",
    .inference_args = "n x P0 P1 P2 P3 y",
    .flags = LF_WHOLE_BATCH,
};
