/* shape.c - every layer's output shape, by its row's shape rule, in the order
 * of the file (a layer reads only earlier ones), and its parameter count from
 * its row's tensors. All arithmetic on sizes is checked: a model too large to
 * allocate is an error at its layer, never an overflow. The helpers here are
 * the shape rules' common words. */
#include "nncc.h"
#include "nnrt.h"

#include <stdint.h>
#include <string.h>

/* Every buffer and the parameter table are indexed with int in places, and a
 * sample's activations must fit in memory many times over: 2^31 floats. */
#define MAX_ELEMS ((long)INT32_MAX)

long checked_mul(const Layer *l, long a, long b)
{
    long r;
    if (__builtin_mul_overflow(a, b, &r) || r > MAX_ELEMS)
        error_at(l->where, "%s '%s' is too large: more than %ld elements",
                 l->ops->keras_name, l->name, MAX_ELEMS);
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
const char *shape_str(const Shape *s)
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

Shape vector_shape(long n)
{
    Shape s = {1, {n, 0, 0}};
    return s;
}

void need_image(const Layer *l)
{
    if (l->in.rank != 3)
        error_at(l->where, "%s expects an input of height, width and channels, got %s%s",
                 l->ops->keras_name, shape_str(&l->in),
                 l->in.rank == 2 ? "; give input_shape a channel count, e.g. [28, 28, 1]" : "");
}

void need_sequence(const Layer *l)
{
    if (l->in.rank != 2)
        error_at(l->where, "%s expects a sequence, an input of steps and features, got %s%s",
                 l->ops->keras_name, shape_str(&l->in),
                 l->in.rank == 1 ? "; give input_shape a feature count, e.g. [100, 1], or "
                                   "put an Embedding before it" : "");
}

/* Output length along one axis for a window k with stride s, as TensorFlow
 * computes it: valid drops what does not fit, same pads to ceil(n / s). */
long window_out(const Layer *l, long n, long k, long s, const char *axis)
{
    if (l->same)
        return (n + s - 1) / s;
    if (k > n)
        error_at(l->where, "%s's window %ld is larger than its input's %s %ld (input %s); "
                           "use padding: same or a smaller window",
                 l->ops->keras_name, k, axis, n, shape_str(&l->in));
    return (n - k) / s + 1;
}

/* Parameters from the row's tensors: all of them, and those that train. */
static void count_params(Layer *l)
{
    TensorSpec t[MAX_LAYER_TENSORS];
    int n = l->ops->tensors ? l->ops->tensors(l, t) : 0;
    l->params = l->trainable_params = 0;
    for (int i = 0; i < n; i++) {
        long size = 1;
        for (int d = 0; d < t[i].rank; d++)
            size = checked_mul(l, size, t[i].shape[d]);
        l->params += size;
        if (l->trainable && !t[i].statistic)
            l->trainable_params += size;
    }
}

static void check_total(const Model *m)
{
    long total = 0;
    for (int i = 0; i < m->n_layers; i++)
        if (__builtin_add_overflow(total, m->layers[i].params, &total) || total > MAX_ELEMS)
            error_at(m->layers[i].where, "the model has too many parameters (more than %ld)",
                     MAX_ELEMS);
}

void infer_shapes(Model *m)
{
    for (int i = 0; i < m->input.rank; i++)
        if (m->input.dim[i] < 1)
            error_at(m->layers[0].where, "input_shape has a non-positive size");
    for (int i = 0; i < m->n_layers; i++) {
        Layer *l = &m->layers[i];
        for (int k = 0; k < l->n_inputs; k++)
            l->ins[k] = l->inputs[k] == MODEL_INPUT ? m->input : m->layers[l->inputs[k]].out;
        l->in = l->ins[0];
        checked_mul(l, 1, shape_size(&l->in));
        l->ops->shape(l);
        checked_mul(l, 1, shape_size(&l->out));
        count_params(l);
    }
    check_total(m);
}

long model_input_ids(const Model *m)
{
    long ids = 0;
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        for (int k = 0; k < l->n_inputs; k++)
            if (l->inputs[k] == MODEL_INPUT && (l->ops->flags & LF_NO_INPUT_GRADIENT) &&
                (!ids || l->input_dim < ids))
                ids = l->input_dim;
    }
    return ids;
}

void summary_print(FILE *out, const Model *m)
{
    static nn_summary_row rows[MAX_LAYERS + 1];
    static char inputs[MAX_LAYERS][MAX_INPUTS * (MAX_NAME + 1) + 1];
    bool graph = model_is_graph(m);
    int n = 0;
    if (graph) {
        int shape[3] = {(int)m->input.dim[0], (int)m->input.dim[1], (int)m->input.dim[2]};
        rows[n++] = nn_summary_input_row(m->input.rank, shape);
    }
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        snprintf(inputs[i], sizeof inputs[i], "%s", layer_input_names(m, l));
        rows[n++] = (nn_summary_row){l->name, l->ops->keras_name, l->out.rank,
                                     {l->out.dim[0], l->out.dim[1], l->out.dim[2]},
                                     l->params, l->trainable_params,
                                     graph ? inputs[i] : NULL};
    }
    nn_print_summary(out, m->name, rows, n);
}
