/* bandwidth.c - the machine's memory bandwidth as an optimizer step sees it:
 * every thread updates its share of three arrays in place (read and written,
 * as a step reads and writes the weights and Adam's two moments), arrays far
 * larger than the caches, with next to no arithmetic, so that nothing but the
 * memory limits it.
 *
 *   cc -std=c11 -O2 -march=native -fopenmp bench/bandwidth.c -o bandwidth
 *   ./bandwidth THREADS      prints GB/s (bytes read + bytes written, 1e9)
 *
 * bench/run divides the bytes a dense model's step must move by this figure:
 * the memory-traffic floor of a step. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

enum { FLOATS = 8 << 20, ARRAYS = 3, TRIES = 5 };   /* 32 MiB per array */

/* One pass: every element of the three arrays read once and written once. */
static void update_pass(float *restrict w, float *restrict m, float *restrict v, int threads)
{
#pragma omp parallel for simd schedule(static) num_threads(threads)
    for (long i = 0; i < FLOATS; i++) {
        w[i] += 1e-3f * m[i];
        m[i] = 0.5f * m[i] + v[i];
        v[i] = 0.5f * v[i];
    }
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "usage: %s THREADS\n", argv[0]);
        return 2;
    }
    float *a[ARRAYS];
    for (int k = 0; k < ARRAYS; k++) {
        a[k] = malloc(FLOATS * sizeof(float));
        if (!a[k]) {
            fprintf(stderr, "bandwidth: out of memory\n");
            return 1;
        }
    }
    /* first touch by the threads that will use the pages */
#pragma omp parallel for schedule(static) num_threads(threads)
    for (long i = 0; i < FLOATS; i++)
        a[0][i] = a[1][i] = a[2][i] = 1.0f;
    double best = 0;   /* a shared machine only ever makes it slower */
    for (int t = 0; t < TRIES; t++) {
        double start = omp_get_wtime();
        update_pass(a[0], a[1], a[2], threads);
        double secs = omp_get_wtime() - start;
        double bytes = 2.0 * ARRAYS * FLOATS * sizeof(float);
        if (bytes / secs > best)
            best = bytes / secs;
    }
    printf("%.1f\n", best / 1e9);
    if (a[0][FLOATS / 2] == 12345.0f)
        printf("(unlikely)\n");
    for (int k = 0; k < ARRAYS; k++)
        free(a[k]);
    return 0;
}
