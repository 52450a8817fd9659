/* infer.c - built by tests/test_layers_act.c with inf.c, the C that
 * `nncc --inference` made of a reference fixture's model (tests/ref/NAME.yaml)
 * and the tensors in its .npz, and with -DPREDICT=NAME_predict: the function
 * on each sample of x must give that sample's y within 1e-5 (relative to
 * max(1, |y|)), as the trainer does. Prints the largest difference and
 * "N failures". */
#include "rt.h"

#include <math.h>
#include <stdio.h>

void PREDICT(const float *input, float *output);

int main(int argc, char **argv)
{
    nn_array *arrays;
    int n_arrays;
    if (argc != 2 || nn_npz_read(argv[1], &arrays, &n_arrays) != 0)
        return 1;
    const nn_array *x = nn_npz_find(arrays, n_arrays, "x"), *y = nn_npz_find(arrays, n_arrays, "y");
    if (!x || !y)
        return printf("FAIL: no x or y in the fixture\n"), 1;
    const size_t samples = (size_t)x->shape[0], in = x->size / samples, out = y->size / samples;
    float got[4096];
    if (out > sizeof got / sizeof *got)
        return printf("FAIL: %zu outputs, more than the driver holds\n", out), 1;
    int failures = 0;
    double worst = 0;
    for (size_t s = 0; s < samples; s++) {
        PREDICT(x->f + s * in, got);
        for (size_t j = 0; j < out; j++) {
            const float want = y->f[s * out + j];
            double d = fabs((double)got[j] - want) / fmax(1.0, fabs(want));
            if (!(d <= 1e-5) && failures++ < 20)
                printf("FAIL sample %zu, output %zu: got %.9g, want %.9g\n", s, j, got[j], want);
            worst = isnan(d) ? INFINITY : fmax(worst, d);
        }
    }
    printf("largest relative difference: predict %.3g\n%d failures\n", worst, failures);
    nn_npz_free(arrays, n_arrays);
    return failures != 0;
}
