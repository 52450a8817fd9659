/* driver.c - built by tests/test_layers_act.c for each fixture tests/act/NAME:
 * it includes m.c, the trainer C that nncc made of NAME.yaml, and checks its
 * forward and backward passes against NAME.npz (PyTorch's numbers, gen.py) at
 * each batch size n in its array batches:
 *   y          the model's output for the first n samples of x
 *   dx         the gradient of sum(y * dy) with respect to the input of the
 *              layers under test, which the identity layer feed leaves in its
 *              output gradient buffer, feed_dout
 *   grad.T@n   the same for every trainable tensor T
 * A value passes within 1e-5 of the reference, relative to max(1, |reference|).
 * Prints the largest such difference of each kind, then "N failures". */
#include "m.c"

#include "rt.h"

#include <stdio.h>
#include <stdlib.h>

#define TOLERANCE 1e-5

static nn_array *arrays;
static int n_arrays, failures;

static const nn_array *need(const char *name, size_t size)
{
    const nn_array *a = nn_npz_find(arrays, n_arrays, name);
    if (!a || a->dtype != NN_F32 || a->size < size) {
        printf("FAIL: no float array '%s' of %zu values in the fixture\n", name, size);
        exit(1);
    }
    return a;
}

/* The largest relative difference of got from the reference want. */
static double compare(const char *what, int n, const float *got, const float *want, size_t count)
{
    double worst = 0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]) / fmax(1.0, fabs(want[i]));
        if (!(d <= TOLERANCE) && failures++ < 20)
            printf("FAIL %s, batch %d, [%zu]: got %.9g, want %.9g\n", what, n, i, got[i], want[i]);
        worst = isnan(d) ? INFINITY : fmax(worst, d);
    }
    return worst;
}

/* Inline values (the feed's identity), the others from the fixture. */
static void load_params(float *params)
{
    for (int t = 0; t < m_model.n_tensors; t++) {
        const nn_tensor *ts = &m_model.tensors[t];
        const float *v = ts->values ? ts->values : need(ts->name, ts->size)->f;
        memcpy(params + ts->offset, v, ts->size * sizeof *params);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || nn_npz_read(argv[1], &arrays, &n_arrays) != 0)
        return 1;
    const nn_array *x = need("x", 1);
    const int samples = x->shape[0];   /* the largest batch */
    const size_t in = x->size / (size_t)samples, out = m_model.output_size;
    const float *dy = need("dy", samples * out)->f, *y = need("y", samples * out)->f;
    const float *dx = need("dx", samples * in)->f;
    float *params = calloc(m_model.n_params, sizeof *params);
    float *grads = calloc(m_model.n_params, sizeof *grads);
    float *work = calloc((size_t)samples * m_model.work_floats, sizeof *work);
    load_params(params);
    double worst_y = 0, worst_dx = 0, worst_grad = 0;
    const nn_array *batches = nn_npz_find(arrays, n_arrays, "batches");
    if (!batches || batches->dtype != NN_I64)
        return printf("FAIL: no batch sizes in the fixture\n"), 1;
    for (size_t b = 0; b < batches->size; b++) {
        const int n = (int)batches->i[b];
        char name[200];
        nn_pass pass = {.training = 1, .seed = 1};
        const float *o = m_model.forward(&pass, params, work, x->f, n);
        worst_y = fmax(worst_y, compare("y", n, o, y, (size_t)n * out));
        memset(grads, 0, m_model.n_params * sizeof *grads);
        m_model.backward(&pass, params, grads, work, x->f, dy, n);
        worst_dx = fmax(worst_dx, compare("dx", n, work + (size_t)n * feed_dout, dx, (size_t)n * in));
        for (int t = 0; t < m_model.n_tensors; t++) {
            const nn_tensor *ts = &m_model.tensors[t];
            snprintf(name, sizeof name, "grad.%s@%d", ts->name, n);
            if (ts->trainable)
                worst_grad = fmax(worst_grad, compare(name, n, grads + ts->offset,
                                                      need(name, ts->size)->f, ts->size));
        }
    }
    printf("largest relative difference: y %.3g, dx %.3g, grads %.3g\n", worst_y, worst_dx,
           worst_grad);
    printf("%d failures\n", failures);
    nn_npz_free(arrays, n_arrays);
    free(params), free(grads), free(work);
    return failures != 0;
}
