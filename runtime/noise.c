/* noise.c - data: noise: Gaussian noise on a batch's inputs (a denoiser's).
 *
 * The noise of element k of sample i of a set is a function of fit's seed,
 * the set and (i, k) alone, as the denoising tutorials draw one noisy copy of
 * the data set before fit(): every epoch, evaluate and a resumed run see the
 * same noisy image, whatever the batch or thread count. Box-Muller over two
 * of nn_uniform's numbers; then clip to [min, max] (tf.clip_by_value). */
#include "rt.h"

#include <math.h>

static float noise_at(uint64_t seed, uint64_t stream, uint64_t j)
{
    double u1 = 1.0 - nn_uniform(seed, stream, 2 * j);   /* (0, 1]: log stays finite */
    double u2 = nn_uniform(seed, stream, 2 * j + 1);
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

void nn_add_noise(const nn_model *m, const nn_dataset *d, const int *idx, int n, float *x)
{
    const nn_noise *z = &m->data.noise;
    if (z->stddev <= 0)
        return;
    size_t size = (size_t)m->input_size;
    uint64_t stream = 0x6e6f697365ULL + d->noise_stream;   /* "noise" */
    #pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *xi = x + (size_t)i * size;
        for (size_t k = 0; k < size; k++) {
            float v = xi[k] + z->stddev * noise_at(m->fit.seed, stream, (uint64_t)idx[i] * size + k);
            xi[k] = z->clip ? fminf(fmaxf(v, z->min), z->max) : v;
        }
    }
}
