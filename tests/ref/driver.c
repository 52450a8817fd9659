/* driver.c - checks one model that nncc generated against one reference fixture
 * (tests/ref/NAME.npz, written by tests/ref/gen.py from PyTorch/numpy).
 *
 * tests/test_ref.c builds it once per fixture, with the C that `nncc NAME.yaml
 * --no-main` wrote included (for its descriptor and its work-buffer offsets):
 *   cc ... -DREF_C='"m.c"' -DREF_MODEL=NAME_model -DREF_LAYER=0|1 driver.c libnnrt.a
 * and runs `drv NAME.npz [ARRAY]`. It treats the fixture by the arrays it holds
 * (gen.py's note lists them): a layer fixture (x, dy, ...) runs forward and
 * backward at each of batch_sizes; a loss fixture (loss.*) calls nn_loss (with the
 * samples weighed by the model's fit: class_weight, if it has one); an
 * optimizer fixture (opt.*) takes nn_optim_step three times. Nothing here knows
 * a layer, a loss or an optimizer: a new fixture needs no change.
 *
 * It prints one line per comparison ("check ARRAY: max |diff| ..."), the first
 * mismatches, and last "result: F failures in C checks, max scaled diff D"; it
 * exits 1 on any failure. Given ARRAY, it first moves one value of that array
 * by 1e-3 (times max(1, |value|)): the test then wants it to fail, which shows
 * that the comparison of that array can fail at all.
 */
#include REF_C

#include "rt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const nn_model *M = &REF_MODEL;
static nn_array *arrays;
static int n_arrays;

/* The tolerance, |got - want| <= TOL * max(1, |want|): relative for values above
 * one, absolute below. nncc computes in float32 (2^-24 = 6e-8 per rounding)
 * and the reference is float64 rounded to float32 once; the fixtures' sums run
 * over at most a few hundred terms of magnitude about one, whose rounding
 * errors add up to a few 1e-7 at worst. A value near zero is usually such a sum
 * that cancelled, so its error is relative to its terms (about one), not to
 * itself: hence the absolute floor. test_ref.c passes REF_TOL: 1e-4 for
 * Winograd's F(4x4, 3x3), whose transforms round more (test_ref.c says why). */
#ifndef REF_TOL
#define REF_TOL 1e-5
#endif
#define TOL REF_TOL

static int failures, checks;
static const char *at_word = "n";   /* what the number in a check line counts */
static double worst;   /* the largest |diff| / max(1, |want|) over all checks */

static const nn_array *find(const char *name)
{
    return nn_npz_find(arrays, n_arrays, name);
}

/* The float array name, which must hold at least count numbers. */
static const float *need(const char *name, size_t count)
{
    const nn_array *a = find(name);
    if (!a || a->dtype != NN_F32 || a->size < count) {
        printf("FAIL fixture: no float array '%s' of %zu numbers\n", name, count);
        failures++;
        return NULL;
    }
    return a->f;
}

static void compare(const char *what, int n, const char *array, const float *got,
                    const float *want, size_t count)
{
    if (!want)
        return;
    double max_abs = 0, max_scaled = 0;
    int bad = 0;
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - want[i]);
        double scaled = d / fmax(1.0, fabs(want[i]));
        if (!(scaled <= TOL)) {   /* NaN fails too */
            if (bad < 5)
                printf("  FAIL %s %s=%d [%zu]: got %.9g, want %.9g\n", what, at_word, n, i, got[i],
                       want[i]);
            bad++;
            scaled = isnan(scaled) ? INFINITY : scaled;
        }
        max_abs = fmax(max_abs, d);
        max_scaled = fmax(max_scaled, scaled);
    }
    checks++;
    failures += bad != 0;
    worst = fmax(worst, max_scaled);
    printf("check %s (%s) %s=%d: %zu values, max |diff| %.3g, max scaled %.3g%s\n", what, array,
           at_word, n, count, max_abs, max_scaled, bad ? "  FAIL" : "");
}

/* Copies every tensor from the fixture into params, by its Keras name. */
static int load_params(float *params)
{
    for (int t = 0; t < M->n_tensors; t++) {
        const nn_tensor *ts = &M->tensors[t];
        const nn_array *a = find(ts->name);
        if (!a || a->dtype != NN_F32 || a->size != ts->size) {
            printf("FAIL fixture: tensor %s (%zu numbers) missing or misshapen\n", ts->name,
                   ts->size);
            failures++;
            return -1;
        }
        memcpy(params + ts->offset, a->f, ts->size * sizeof *params);
    }
    return 0;
}

/* ---- a layer: forward and backward at each batch size ----------------------------- */

#if REF_LAYER
/* NAME@n if the fixture has it, else the first count numbers of NAME (a
 * per-sample array that the batch size does not change). */
static const float *per_batch(const char *name, int n, size_t count, char *used, size_t len)
{
    snprintf(used, len, "%s@%d", name, n);
    if (find(used))
        return need(used, count);
    snprintf(used, len, "%s", name);
    return need(name, count);
}

static void check_layer(void)
{
    const nn_array *xa = find("x"), *bs = find("batch_sizes");
    if (!xa || xa->rank < 2 || !bs || bs->dtype != NN_I64) {
        printf("FAIL fixture: no x or batch_sizes\n");
        failures++;
        return;
    }
    int nmax = xa->shape[0], in = M->input_size, out = M->output_size;
    const float *x = need("x", (size_t)nmax * in), *dy = need("dy", (size_t)nmax * out);
    float *init = nn_alloc(M->n_params, sizeof(float));
    float *params = nn_alloc(M->n_params, sizeof(float));
    float *grads = nn_alloc(M->n_params, sizeof(float));
    if (x && dy && load_params(init) == 0) {
        for (size_t b = 0; b < bs->size; b++) {
            int n = (int)bs->i[b];
            char name[160];
            if (n < 1 || n > nmax) {
                printf("FAIL fixture: batch size %d\n", n);
                failures++;
                continue;
            }
            float *work = nn_alloc(M->scratch_floats + (size_t)n * M->work_floats, sizeof(float));
            memcpy(params, init, M->n_params * sizeof *params);
            memset(grads, 0, M->n_params * sizeof *grads);
            nn_pass pass = {.training = 1, .seed = 1};
            const float *y = M->forward(&pass, params, work, x, n);
            const float *want = per_batch("y", n, (size_t)n * out, name, sizeof name);
            compare("output", n, name, y, want, (size_t)n * out);
            for (int t = 0; t < M->n_tensors; t++) {   /* statistics a training pass moves */
                const nn_tensor *ts = &M->tensors[t];
                snprintf(name, sizeof name, "after.%s@%d", ts->name, n);
                if (find(name))
                    compare(ts->name, n, name, params + ts->offset, need(name, ts->size),
                            ts->size);
            }
            M->backward(&pass, params, grads, work, x, dy, n);
            /* The probe's input gradient: what it handed the identity feed layer. */
            want = per_batch("dx", n, (size_t)n * in, name, sizeof name);
            compare("input gradient", n, name, work + M->scratch_floats + (size_t)n * feed_dout, want,
                    (size_t)n * in);
            for (int t = 0; t < M->n_tensors; t++) {
                const nn_tensor *ts = &M->tensors[t];
                if (!ts->trainable)
                    continue;
                snprintf(name, sizeof name, "grad.%s@%d", ts->name, n);
                compare(ts->name, n, name, grads + ts->offset, need(name, ts->size), ts->size);
            }
            free(work);
        }
    }
    free(init), free(params), free(grads);
}
#endif

/* ---- a loss: nn_loss on given outputs and labels ------------------------------------ */

/* The model's fit: class_weight, as training weighs the samples, or NULL. */
static float *class_weights(const float *y, int n)
{
    if (!M->fit.class_weight)
        return NULL;
    float *w = nn_alloc((size_t)n, sizeof *w);
    if (nn_class_weights(M, y, n, w) != 0) {
        printf("FAIL: the labels have classes without a class_weight\n");
        failures++;
    }
    return w;
}

static void check_loss(void)
{
    const nn_array *oa = find("loss.out"), *ya = find("loss.y"), *va = find("loss.value");
    if (!oa || !ya || !va || oa->dtype != NN_F32 || ya->dtype != NN_F32 || va->dtype != NN_F32) {
        printf("FAIL fixture: loss.out, loss.y and loss.value wanted\n");
        failures++;
        return;
    }
    int n = oa->shape[0];
    size_t count = (size_t)n * M->output_size;
    if (oa->size != count) {
        printf("FAIL fixture: loss.out has %zu numbers, the model gives %zu\n", oa->size, count);
        failures++;
        return;
    }
    float *dout = nn_alloc(count, sizeof(float)), *weights = class_weights(ya->f, n);
    float value = (float)nn_loss_weighted(M, oa->f, ya->f, weights, n, dout);
    compare("loss", n, "loss.value", &value, va->f, 1);
    compare("loss gradient", n, "loss.dout", dout, need("loss.dout", count), count);
    free(dout);
    free(weights);
}

/* ---- an optimizer: steps from given gradients ----------------------------------------- */

/* The error as a share of the step's move, |got - want| / |want - before|,
 * the largest over the elements that moved (frozen tensors do not), and the
 * largest |got - want| over the largest |want - before| of each array: how
 * much of an update is wrong, which the absolute tolerance does not show
 * for small steps. before is the reference's, so errors do not carry over. */
static double worst_share, worst_array_share;

static void note_move_share(const float *got, const float *want, const float *before,
                            size_t count)
{
    double max_diff = 0, max_move = 0;
    for (size_t i = 0; i < count; i++) {
        double diff = fabs((double)got[i] - want[i]), move = fabs((double)want[i] - before[i]);
        max_diff = fmax(max_diff, diff);
        max_move = fmax(max_move, move);
        if (move > 0)
            worst_share = fmax(worst_share, diff / move);
    }
    if (max_move > 0)
        worst_array_share = fmax(worst_array_share, max_diff / max_move);
}

static void check_optimizer(void)
{
    float *params = nn_alloc(M->n_params, sizeof(float));
    float *grads = nn_alloc(M->n_params, sizeof(float));
    nn_optim o;
    at_word = "step";
    nn_optim_init(&o, M, &M->optimizer);
    if (load_params(params) == 0) {
        for (int s = 1;; s++) {
            char name[160];
            snprintf(name, sizeof name, "opt.grad%d.%s", s, M->tensors[0].name);
            if (!find(name)) {
                if (s == 1) {
                    printf("FAIL fixture: no %s\n", name);
                    failures++;
                }
                break;
            }
            for (int t = 0; t < M->n_tensors; t++) {   /* frozen tensors get one too */
                const nn_tensor *ts = &M->tensors[t];
                snprintf(name, sizeof name, "opt.grad%d.%s", s, ts->name);
                const float *g = need(name, ts->size);
                if (g)
                    memcpy(grads + ts->offset, g, ts->size * sizeof *grads);
            }
            nn_optim_step(&o, params, grads);
            for (int t = 0; t < M->n_tensors; t++) {
                const nn_tensor *ts = &M->tensors[t];
                snprintf(name, sizeof name, "opt.after%d.%s", s, ts->name);
                const float *want = need(name, ts->size);
                compare(ts->name, s, name, params + ts->offset, want, ts->size);
                if (s == 1)
                    snprintf(name, sizeof name, "%s", ts->name);
                else
                    snprintf(name, sizeof name, "opt.after%d.%s", s - 1, ts->name);
                const float *before = need(name, ts->size);
                if (want && before)
                    note_move_share(params + ts->offset, want, before, ts->size);
            }
        }
        printf("move share: max |diff| / |move| %.3g per element, %.3g per array\n",
               worst_share, worst_array_share);
    }
    nn_optim_free(&o);
    free(params), free(grads);
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: drv FIXTURE.npz [ARRAY-TO-PERTURB]\n");
        return 2;
    }
    if (nn_npz_read(argv[1], &arrays, &n_arrays) < 0)
        return 2;
    if (argc == 3) {
        nn_array *a = (nn_array *)find(argv[2]);
        if (!a || a->dtype != NN_F32 || a->size == 0) {
            fprintf(stderr, "drv: no float array '%s' to perturb\n", argv[2]);
            return 2;
        }
        float *v = &a->f[a->size / 2];
        *v += 1e-3f * fmaxf(1.0f, fabsf(*v));
        printf("perturbed %s[%zu]\n", argv[2], a->size / 2);
    }
    int kinds = 0;
#if REF_LAYER
    kinds++, check_layer();
#endif
    if (find("loss.out"))
        kinds++, check_loss();
    char first_grad[160];
    snprintf(first_grad, sizeof first_grad, "opt.grad1.%s",
             M->n_tensors ? M->tensors[0].name : "");
    if (find(first_grad))
        kinds++, check_optimizer();
    if (!kinds) {
        printf("FAIL fixture: no arrays this driver knows\n");
        failures++;
    }
    printf("result: %d failures in %d checks, max scaled diff %.3g\n", failures, checks, worst);
    nn_npz_free(arrays, n_arrays);
    return failures != 0 || checks == 0;
}
