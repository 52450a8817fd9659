/* peak.c - the machine's FP32 limit, measured: every thread runs a loop of
 * independent fused multiply-adds on the widest vectors the compiler targets
 * (-march=native), so that nothing but the FMA units limits it.
 *
 *   cc -std=c11 -O2 -march=native -ffp-contract=fast -fopenmp bench/peak.c -o peak
 *   ./peak THREADS        prints GFLOP/s (2 FLOPs per lane per FMA)
 *
 * Why 16 chains: an FMA's result is ready only after ~4 cycles and a core
 * starts up to 2 per cycle, so fewer than 8 independent accumulators would
 * measure the latency, not the throughput. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__AVX512F__)
#define VEC_BYTES 64
#elif defined(__AVX__)
#define VEC_BYTES 32
#else
#define VEC_BYTES 16
#endif

typedef float vec __attribute__((vector_size(VEC_BYTES)));
enum { LANES = VEC_BYTES / sizeof(float), CHAINS = 16 };

/* ITERS rounds of CHAINS FMAs; returns a sum so the work cannot be dropped.
 * x*m + a with m just under 1 stays far from overflow and from subnormals. */
static float fma_loop(long iters, float seed)
{
    vec acc[CHAINS];
    for (int c = 0; c < CHAINS; c++)
        acc[c] = (vec){0} + seed + (float)c;
    vec m = (vec){0} + 0.9999999f, a = (vec){0} + 1e-7f;
    for (long i = 0; i < iters; i++)
#pragma GCC unroll 16
        for (int c = 0; c < CHAINS; c++)
            acc[c] = acc[c] * m + a;
    float s = 0;
    for (int c = 0; c < CHAINS; c++)
        for (int l = 0; l < LANES; l++)
            s += acc[c][l];
    return s;
}

/* GFLOP/s of THREADS threads each running the loop; best of 5 tries, since
 * a shared machine only ever makes it slower. */
static double measure(int threads, long iters)
{
    double best = 0;
    float sink = 0;
    for (int t = 0; t < 5; t++) {
        double start = omp_get_wtime();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += fma_loop(iters, (float)omp_get_thread_num());
        double secs = omp_get_wtime() - start;
        double flops = 2.0 * LANES * CHAINS * (double)iters * threads;
        if (flops / secs > best)
            best = flops / secs;
    }
    if (sink == 12345.0f)
        printf("(unlikely)\n");
    return best / 1e9;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 1;
    if (threads < 1 || threads > 1024) {
        fprintf(stderr, "usage: %s THREADS\n", argv[0]);
        return 2;
    }
    printf("%.1f\n", measure(threads, 20000000L));
    return 0;
}
