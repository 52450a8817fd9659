/* test_schedule.c - learning rates that change during training:
 *
 *   - Keras's schedule objects (runtime/schedule.c) at chosen steps, against
 *     values worked out by hand from the formulas of tf.keras 2.x's
 *     keras/optimizers/schedules/learning_rate_schedule.py (written next to
 *     each check);
 *   - ReduceLROnPlateau (runtime/callbacks.c) on a scripted sequence of
 *     monitored values, against the rates worked out by hand from Keras 2.x's
 *     ReduceLROnPlateau.on_epoch_end (cooldown, wait, `lr > min_lr`);
 *   - end to end: the course's LearningRateScheduler sweep in the history's lr
 *     column against 1e-8 * 10 ** (epoch / 20) computed here in double; and
 *     --resume: 2 epochs in one run and 1 + 1 resumed give the same bits with
 *     a schedule object, with an lr-dependent LearningRateScheduler and with
 *     ReduceLROnPlateau.
 */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* float32 results against values computed in decimal: a few float ulps. */
static void assert_rate(float got, double want)
{
    if (fabs(got - want) > 4e-7 * fabs(want))
        fail_msg("rate %.9g, wanted %.9g", got, want);
}

static void test_exponential_decay(void **state)
{
    (void)state;
    nn_lr_schedule s = {.kind = NN_LR_EXPONENTIAL_DECAY, .initial_learning_rate = 0.1f,
                        .decay_steps = 10, .decay_rate = 0.5f};
    assert_rate(nn_lr_at(&s, 0), 0.1);             /* 0.1 * 0.5 ** 0 */
    assert_rate(nn_lr_at(&s, 5), 0.0707106781);    /* 0.1 * 0.5 ** 0.5 = 0.1 / sqrt(2) */
    assert_rate(nn_lr_at(&s, 10), 0.05);
    assert_rate(nn_lr_at(&s, 30), 0.0125);
    s.staircase = 1;                               /* 0.5 ** floor(step / 10) */
    assert_rate(nn_lr_at(&s, 9), 0.1);
    assert_rate(nn_lr_at(&s, 15), 0.05);
    assert_rate(nn_lr_at(&s, 29), 0.025);
}

static void test_piecewise_constant_decay(void **state)
{
    (void)state;
    /* boundaries [3, 6], values [1, 0.5, 0.1]: step <= 3, 3 < step <= 6, step > 6 */
    nn_lr_schedule s = {.kind = NN_LR_PIECEWISE_CONSTANT_DECAY, .n_boundaries = 2,
                        .boundaries = {3, 6}, .values = {1.0f, 0.5f, 0.1f}};
    static const double want[] = {1, 1, 1, 1, 0.5, 0.5, 0.5, 0.1, 0.1};
    for (int step = 0; step < 9; step++)
        assert_rate(nn_lr_at(&s, step), want[step]);
    assert_rate(nn_lr_at(&s, 1000000), 0.1);
}

static void test_inverse_time_decay(void **state)
{
    (void)state;
    /* 0.1 / (1 + 1.0 * step / 5) */
    nn_lr_schedule s = {.kind = NN_LR_INVERSE_TIME_DECAY, .initial_learning_rate = 0.1f,
                        .decay_steps = 5, .decay_rate = 1.0f};
    assert_rate(nn_lr_at(&s, 0), 0.1);
    assert_rate(nn_lr_at(&s, 1), 0.1 / 1.2);
    assert_rate(nn_lr_at(&s, 5), 0.05);
    assert_rate(nn_lr_at(&s, 10), 0.1 / 3);
    s.staircase = 1;                               /* floor(step / 5) */
    assert_rate(nn_lr_at(&s, 4), 0.1);
    assert_rate(nn_lr_at(&s, 9), 0.05);
}

static void test_cosine_decay(void **state)
{
    (void)state;
    /* 0.1 * ((1 - 0.2) * 0.5 * (1 + cos(pi * min(step, 10) / 10)) + 0.2) */
    nn_lr_schedule s = {.kind = NN_LR_COSINE_DECAY, .initial_learning_rate = 0.1f,
                        .decay_steps = 10, .alpha = 0.2f};
    assert_rate(nn_lr_at(&s, 0), 0.1);
    assert_rate(nn_lr_at(&s, 5), 0.06);            /* cos(pi/2) = 0: 0.1 * (0.4 + 0.2) */
    assert_rate(nn_lr_at(&s, 10), 0.02);           /* cos(pi) = -1: 0.1 * 0.2 */
    assert_rate(nn_lr_at(&s, 25), 0.02);           /* held at alpha after decay_steps */
    /* step 2: 0.5 * (1 + cos(0.2 pi)) = 0.5 * (1 + 0.80901699) = 0.904508497 */
    assert_rate(nn_lr_at(&s, 2), 0.1 * (0.8 * 0.904508497 + 0.2));
}

/* Keras's ReduceLROnPlateau(factor=0.5, patience=2, min_delta=0.25, cooldown=1,
 * min_lr=0.03), mode min, from lr 0.1, traced by hand through on_epoch_end
 * (values in binary fractions, so that `current < best - min_delta` has no
 * rounding to argue about):
 *   e0 4      improves on inf: best 4
 *   e1 3.875  not below 3.75: wait 1
 *   e2 3.5    below 3.75: best 3.5, wait 0
 *   e3 3.5    wait 1
 *   e4 3.25   not below 3.25: wait 2 = patience, 0.1 > 0.03: lr 0.05, cooldown 1, wait 0
 *   e5 3.25   cooldown 1 -> 0 and wait 0; no longer cooling: wait 1
 *   e6 3.25   wait 2: lr max(0.025, 0.03) = 0.03, cooldown 1
 *   e7 3.25   cooldown -> 0; wait 1
 *   e8 1      best 1, wait 0
 *   e9 1      wait 1
 *   e10 1     wait 2, but 0.03 > 0.03 fails: lr stays, wait stays
 *   e11 NaN   (not in the logs) nothing changes
 *   e12 1     wait 3: still not above min_lr */
static void test_reduce_lr_on_plateau(void **state)
{
    (void)state;
    nn_callback c = {.kind = NN_CB_REDUCE_LR_ON_PLATEAU, .monitor = "val_loss", .factor = 0.5,
                     .patience = 2, .min_delta = 0.25f, .cooldown = 1, .min_lr = 0.03};
    static const double seen[] = {4, 3.875, 3.5, 3.5, 3.25, 3.25, 3.25, 3.25, 1, 1, 1, NAN, 1};
    static const float want[] = {0.1f, 0.1f, 0.1f, 0.1f, 0.05f, 0.05f, 0.03f, 0.03f, 0.03f,
                                 0.03f, 0.03f, 0.03f, 0.03f};
    static const int wait[] = {0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 2, 2, 3};
    nn_plateau p;
    nn_plateau_begin(&c, &p);
    float lr = 0.1f;
    for (size_t e = 0; e < sizeof seen / sizeof seen[0]; e++) {
        lr = nn_reduce_lr_on_plateau(&c, &p, seen[e], lr);
        if (lr != want[e] || p.wait != wait[e])
            fail_msg("epoch %zu: lr %.9g wait %lld, wanted %.9g wait %d", e, lr,
                     (long long)p.wait, want[e], wait[e]);
    }
}

/* A monitor that should grow (mode max, or auto for an accuracy: nncc sets
 * maximize); factor 0.1 of a float32 0.001 is the double 0.001f * 0.1 stored
 * as a float32, as Keras 2.x's numpy does. */
static void test_reduce_lr_maximising(void **state)
{
    (void)state;
    nn_callback c = {.kind = NN_CB_REDUCE_LR_ON_PLATEAU, .monitor = "val_accuracy",
                     .factor = 0.1, .patience = 1, .min_delta = 1e-4f, .maximize = 1};
    nn_plateau p;
    nn_plateau_begin(&c, &p);
    assert_true(p.best == -INFINITY);
    float lr = nn_reduce_lr_on_plateau(&c, &p, 0.5, 0.001f);     /* best 0.5 */
    assert_true(lr == 0.001f);
    lr = nn_reduce_lr_on_plateau(&c, &p, 0.6, lr);                /* best 0.6 */
    assert_true(lr == 0.001f);
    lr = nn_reduce_lr_on_plateau(&c, &p, 0.55, lr);               /* worse: wait 1 = patience */
    assert_true(lr == (float)((double)0.001f * 0.1));
}

/* ---- end to end ------------------------------------------------------------------- */

#define MODEL_HEAD                                                                          \
    "input_shape: [2]\n"                                                                    \
    "layers:\n"                                                                             \
    "  - Dense: {units: 3, activation: tanh}\n"                                             \
    "  - Dense: {units: 1}\n"
#define MODEL_DATA                                                                          \
    "data:\n"                                                                               \
    "  train: {format: inline, x: [[1, 2], [3, 4], [0.5, -1], [2, 0], [-1, -2], [0, 1]],\n"  \
    "          y: [[1], [2], [0], [1], [-1], [0.5]]}\n"                                     \
    "  validation: {format: inline, x: [[1, 1], [0, -1]], y: [[1], [0]]}\n"

/* The lr column (before seconds, the last) of each line of a history file. */
static int history_rates(const char *path, double *rates, int max)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char line[512];
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, ",lr,seconds\n"));
    int n = 0;
    while (n < max && fgets(line, sizeof line, f)) {
        *strrchr(line, ',') = '\0';
        rates[n++] = strtod(strrchr(line, ',') + 1, NULL);
    }
    fclose(f);
    return n;
}

/* The course's sweep: epoch e trains at 1e-8 * 10 ** (e / 20), in the history
 * and in CSVLogger's lr column (Keras's History and CSVLogger name it lr). */
static void test_scheduler_sweep(void **state)
{
    (void)state;
    const char *t = build_model("sweep", MODEL_HEAD
        "compile: {optimizer: {name: sgd, momentum: 0.9}, loss: mse}\n" MODEL_DATA
        "fit:\n  epochs: 30\n  batch_size: 2\n  callbacks:\n"
        "    - LearningRateScheduler: {schedule: \"1e-8 * 10 ** (epoch / 20)\"}\n"
        "    - CSVLogger: {filename: sweep_log.csv}\n");
    RunResult r;
    run_cmd(&r, "cd %s && %s train --quiet --history h.csv", scratch, t);
    assert_int_equal(r.status, 0);
    double rates[40];
    assert_int_equal(history_rates(in_scratch("h.csv"), rates, 40), 30);
    for (int e = 0; e < 30; e++) {
        double want = 1e-8 * pow(10, e / 20.0);
        if (fabs(rates[e] - want) > 1e-6 * want)
            fail_msg("epoch %d: lr %.9g, wanted %.9g", e, rates[e], want);
    }
    FILE *f = fopen(in_scratch("sweep_log.csv"), "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "epoch,loss,lr,val_loss\n");
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(strstr(line, ",1e-08,"));   /* epoch 0, Python's str of float32 1e-8 */
    fclose(f);
}

/* 2 epochs at once and 1 + --resume 1: the same weights, optimizer state and
 * learning-rate state, bit for bit, and the same rates in the history. */
static void check_resume(const char *name, const char *compile, const char *callbacks,
                         double rates[4])
{
    char yaml[4096];
    snprintf(yaml, sizeof yaml, MODEL_HEAD "%s" MODEL_DATA
             "fit:\n  epochs: 4\n  batch_size: 2\n  seed: 3\n%s", compile, callbacks);
    const char *t = build_model(name, yaml);
    char whole[600], half[600], resumed[600], h1[600], h2[600];
    snprintf(whole, sizeof whole, "%s", in_scratch("whole.npz"));
    snprintf(half, sizeof half, "%s", in_scratch("half.npz"));
    snprintf(resumed, sizeof resumed, "%s", in_scratch("resumed.npz"));
    snprintf(h1, sizeof h1, "%s", in_scratch("h1.csv"));
    snprintf(h2, sizeof h2, "%s", in_scratch("h2.csv"));
    RunResult r;
    run_cmd(&r, "%s train --epochs 4 --quiet --save %s --history %s", t, whole, h1);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --epochs 2 --quiet --save %s --history %s", t, half, h2);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --epochs 4 --quiet --resume %s --save %s --history %s", t, half,
            resumed, h2);
    assert_int_equal(r.status, 0);
    assert_same_npz(whole, resumed);
    double b[8];
    assert_int_equal(history_rates(h1, rates, 4), 4);
    assert_int_equal(history_rates(h2, b, 8), 4);
    assert_memory_equal(rates, b, sizeof b[0] * 4);
}

static void test_resume_schedule_object(void **state)
{
    (void)state;
    double rates[4];
    check_resume("resume_decay",
                 "compile:\n  loss: mse\n  optimizer:\n    name: adam\n    learning_rate:\n"
                 "      class_name: ExponentialDecay\n"
                 "      config: {initial_learning_rate: 0.01, decay_steps: 2, decay_rate: 0.5}\n",
                 "", rates);
    /* 3 steps an epoch: epoch e's last step follows 3e + 2 steps, at
     * 0.01 * 0.5 ** ((3e + 2) / 2) */
    for (int e = 0; e < 4; e++)
        assert_rate((float)rates[e], 0.01 * pow(0.5, (3 * e + 2) / 2.0));
}

static void test_resume_scheduler(void **state)
{
    (void)state;
    double rates[4];
    check_resume("resume_scheduler", "compile: {optimizer: sgd, loss: mse}\n",
                 "  callbacks:\n    - LearningRateScheduler: {schedule: \"lr * 0.5\"}\n", rates);
    for (int e = 0; e < 4; e++)   /* sgd's 0.01, halved at each epoch's start */
        assert_rate((float)rates[e], 0.01 * pow(0.5, e + 1));
}

static void test_resume_plateau(void **state)
{
    (void)state;
    /* min_delta 100: no epoch after the first improves, so from the second
     * on the rate halves at every epoch's end (patience 1; the cooldown of 1
     * ends at the start of the next on_epoch_end) */
    double rates[4];
    check_resume("resume_plateau", "compile: {optimizer: sgd, loss: mse}\n",
                 "  callbacks:\n    - ReduceLROnPlateau: {monitor: loss, factor: 0.5, patience: 1, cooldown: 1,"
                 " min_delta: 100}\n", rates);
    /* the rate each epoch trained with: halved at the end of every epoch but the first */
    static const double want[] = {0.01, 0.01, 0.005, 0.0025};
    for (int e = 0; e < 4; e++)
        assert_rate((float)rates[e], want[e]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exponential_decay),
        cmocka_unit_test(test_piecewise_constant_decay),
        cmocka_unit_test(test_inverse_time_decay),
        cmocka_unit_test(test_cosine_decay),
        cmocka_unit_test(test_reduce_lr_on_plateau),
        cmocka_unit_test(test_reduce_lr_maximising),
        cmocka_unit_test(test_scheduler_sweep),
        cmocka_unit_test(test_resume_schedule_object),
        cmocka_unit_test(test_resume_scheduler),
        cmocka_unit_test(test_resume_plateau),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
