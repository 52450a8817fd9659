/* shape.c - Keras's shape rules and parameter counts, one function per layer
 * kind, and the checks that need shapes. All arithmetic on sizes is checked:
 * a model too large to allocate is an error at its layer, never an overflow. */
#include "nncc.h"
#include "nnrt.h"

#include <stdint.h>
#include <string.h>

/* Every buffer and the parameter table are indexed with int in places, and a
 * sample's activations must fit in memory many times over: 2^31 floats. */
#define MAX_ELEMS ((long)INT32_MAX)

static long checked_mul(const Layer *l, long a, long b)
{
    long r;
    if (__builtin_mul_overflow(a, b, &r) || r > MAX_ELEMS)
        error_at(l->where, "%s '%s' is too large: more than %ld elements", 
                 layer_type_names[l->kind], l->name, MAX_ELEMS);
    return r;
}

long shape_size(const Shape *s)
{
    long n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dim[i];
    return n;
}

/* "(26, 26, 64)", as Keras writes a shape (without the batch). */
static const char *shape_str(const Shape *s)
{
    static char buf[4][64];
    static int next;
    char *b = buf[next++ % 4];
    int len = snprintf(b, 64, "(");
    for (int i = 0; i < s->rank; i++)
        len += snprintf(b + len, (size_t)(64 - len), "%s%ld", i ? ", " : "", s->dim[i]);
    snprintf(b + len, (size_t)(64 - len), "%s)", s->rank == 1 ? "," : "");
    return b;
}

static Shape vector(long n)
{
    Shape s = {1, {n, 0, 0}};
    return s;
}

static void need_image(const Layer *l)
{
    if (l->in.rank != 3)
        error_at(l->where, "%s expects an input of height, width and channels, got %s%s",
                 layer_type_names[l->kind], shape_str(&l->in),
                 l->in.rank == 2 ? "; give input_shape a channel count, e.g. [28, 28, 1]" : "");
}

/* Output length along one axis for a window k with stride s, as TensorFlow
 * computes it: valid drops what does not fit, same pads to ceil(n / s). */
static long window_out(const Layer *l, long n, long k, long s, const char *axis)
{
    if (l->same)
        return (n + s - 1) / s;
    if (k > n)
        error_at(l->where, "%s's window %ld is larger than its input's %s %ld (input %s); "
                           "use padding: same or a smaller window",
                 layer_type_names[l->kind], k, axis, n, shape_str(&l->in));
    return (n - k) / s + 1;
}

static void shape_dense(Layer *l)
{
    if (l->in.rank != 1)
        error_at(l->where, "Dense expects a flat input, got %s; add a Flatten layer before it",
                 shape_str(&l->in));
    l->out = vector(l->units);
    l->params = checked_mul(l, l->in.dim[0], l->units) + (l->use_bias ? l->units : 0);
}

static void shape_conv2d(Layer *l)
{
    need_image(l);
    l->out.rank = 3;
    l->out.dim[0] = window_out(l, l->in.dim[0], l->kh, l->sh, "height");
    l->out.dim[1] = window_out(l, l->in.dim[1], l->kw, l->sw, "width");
    l->out.dim[2] = l->filters;
    long k = checked_mul(l, checked_mul(l, l->kh, l->kw), l->in.dim[2]);
    l->params = checked_mul(l, k, l->filters) + (l->use_bias ? l->filters : 0);
}

static void shape_pool(Layer *l)
{
    need_image(l);
    l->out.rank = 3;
    l->out.dim[0] = window_out(l, l->in.dim[0], l->kh, l->sh, "height");
    l->out.dim[1] = window_out(l, l->in.dim[1], l->kw, l->sw, "width");
    l->out.dim[2] = l->in.dim[2];
}

static void shape_global_pool(Layer *l)
{
    need_image(l);
    l->out = vector(l->in.dim[2]);
}

static void shape_flatten(Layer *l)
{
    l->out = vector(shape_size(&l->in));
}

static void shape_same(Layer *l)
{
    l->out = l->in;
}

/* gamma, beta (trainable) and the moving mean and variance, per channel. */
static void shape_batchnorm(Layer *l)
{
    l->out = l->in;
    long c = l->in.dim[l->in.rank - 1];
    l->params = 4 * c;
    l->trainable_params = l->trainable ? 2 * c : 0;
}

static void (*const shape_rules[LAYER_KIND_COUNT])(Layer *) = {
    [LAYER_DENSE] = shape_dense, [LAYER_FLATTEN] = shape_flatten,
    [LAYER_DROPOUT] = shape_same, [LAYER_ACTIVATION] = shape_same,
    [LAYER_CONV2D] = shape_conv2d, [LAYER_MAXPOOL2D] = shape_pool,
    [LAYER_AVGPOOL2D] = shape_pool, [LAYER_GLOBALAVGPOOL2D] = shape_global_pool,
    [LAYER_BATCHNORM] = shape_batchnorm,
};

static void check_total(const Model *m)
{
    long total = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (__builtin_add_overflow(total, m->layers[i].params, &total) || total > MAX_ELEMS)
            error_at(m->layers[i].where, "the model has too many parameters (more than %ld)",
                     MAX_ELEMS);
}

/* A loss compares a flat output with labels; a model without one (a fixed
 * filter, say) may end in an image. */
static void check_output(const Model *m)
{
    const Layer *last = &m->layers[m->n_layers - 1];
    if (last->out.rank != 1 && m->loss != NN_LOSS_NONE)
        error_at(last->where, "the model's output must be flat, got %s; add Flatten and Dense "
                              "layers at the end", shape_str(&last->out));
    if (m->loss == NN_LOSS_BINARY_CE && last->act == ACT_SOFTMAX && last->out.dim[0] == 1)
        error_at(last->where, "softmax over a single unit is always 1; binary_crossentropy "
                              "wants activation: sigmoid");
}

void infer_shapes(Model *m)
{
    Shape s = m->input;
    for (int i = 0; i < s.rank; i++)
        if (s.dim[i] < 1)
            error_at(m->layers[0].where, "input_shape has a non-positive size");
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        l->in = s;
        checked_mul(l, 1, shape_size(&s));
        shape_rules[l->kind](l);
        checked_mul(l, 1, shape_size(&l->out));
        if (l->kind != LAYER_BATCHNORM)
            l->trainable_params = l->trainable ? l->params : 0;
        s = l->out;
    }
    check_total(m);
    check_output(m);
}

void summary_print(FILE *out, const Model *m)
{
    nn_summary_row rows[MAX_LAYERS];
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        rows[i] = (nn_summary_row){l->name, layer_type_names[l->kind], l->out.rank,
                                   {l->out.dim[0], l->out.dim[1], l->out.dim[2]},
                                   l->params, l->trainable_params};
    }
    nn_print_summary(out, m->name, rows, m->n_layers);
}
