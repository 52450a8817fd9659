/* test_optim.c - what the optimizers do besides their update rules (which the
 * reference fixtures check against PyTorch and Keras's published rules): frozen
 * tensors stay as they are, whatever the optimizer, clipping or weight decay;
 * the checkpoint state round trip, with each optimizer's buffer names; and
 * the learning rate of a step is cfg.learning_rate as it is then (a schedule
 * sets it between steps). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include <math.h>

#include "rt.h"

#define STEPS 3
#define N 3

/* "w" [3] is trained, "frozen" [2] is not; it has gradients all the same. */
static const nn_tensor tensors[] = {
    {.name = "w", .rank = 1, .shape = {3}, .offset = 0, .size = 3, .trainable = 1},
    {.name = "frozen", .rank = 1, .shape = {2}, .offset = 3, .size = 2, .trainable = 0},
};
static const nn_model model = {.name = "t", .tensors = tensors, .n_tensors = 2, .n_params = 5};

static const double w0[N] = {0.5, -1.0, 2.0};
static const double grad[STEPS][N] = {{0.1, -0.2, 0.3}, {-0.05, 0.4, 0.25}, {0.2, 0.1, -0.6}};

static void fill_grads(float *g, int step)
{
    for (int i = 0; i < N; i++)
        g[i] = (float)grad[step][i];
    g[3] = 1.0f;
    g[4] = -1.0f;
}

static void start_params(float *p)
{
    for (int i = 0; i < N; i++)
        p[i] = (float)w0[i];
    p[3] = 7.0f;
    p[4] = 8.0f;
}

/* The update rules themselves are checked against PyTorch and Keras's
 * published rules by the reference fixtures (tests/ref, opt_*). Here: a frozen
 * tensor is never touched, whatever the optimizer, though its gradient is not
 * zero, while the trained one moves at every step. */
static void test_frozen_untouched(void **state)
{
    (void)state;
    static const nn_optimizer configs[] = {
        {.kind = NN_OPT_SGD, .learning_rate = 0.1f, .momentum = 0.9f, .nesterov = 1},
        {.kind = NN_OPT_ADAM, .learning_rate = 0.1f, .beta_1 = 0.9f, .beta_2 = 0.999f,
         .epsilon = 1e-7f},
        {.kind = NN_OPT_RMSPROP, .learning_rate = 0.01f, .rho = 0.9f, .momentum = 0.5f,
         .epsilon = 1e-7f},
        {.kind = NN_OPT_NADAM, .learning_rate = 0.1f, .beta_1 = 0.9f, .beta_2 = 0.999f,
         .epsilon = 1e-7f, .clipnorm = 0.1f},
        {.kind = NN_OPT_ADAMAX, .learning_rate = 0.1f, .beta_1 = 0.9f, .beta_2 = 0.999f,
         .epsilon = 1e-7f, .global_clipnorm = 0.1f},
        {.kind = NN_OPT_ADAGRAD, .learning_rate = 0.1f, .initial_accumulator_value = 0.1f,
         .epsilon = 1e-7f, .clipvalue = 0.1f},
        {.kind = NN_OPT_ADAMW, .learning_rate = 0.1f, .beta_1 = 0.9f, .beta_2 = 0.999f,
         .epsilon = 1e-7f, .weight_decay = 0.5f},
    };
    for (size_t c = 0; c < sizeof configs / sizeof configs[0]; c++) {
        nn_optim o;
        float params[5], grads[5], before[5];
        start_params(params);
        nn_optim_init(&o, &model, &configs[c]);
        for (int s = 0; s < STEPS; s++) {
            memcpy(before, params, sizeof before);
            fill_grads(grads, s);
            nn_optim_step(&o, params, grads);
            assert_int_equal(o.iterations, s + 1);
            for (int i = 0; i < N; i++)
                assert_true(params[i] != before[i]);
            assert_true(params[3] == 7.0f && params[4] == 8.0f);
        }
        nn_optim_free(&o);
    }
}

/* Two steps, save, load into a fresh optimizer, then both take the same
 * further steps: the weights must agree to the bit. */
static void round_trip(const nn_optimizer *cfg, int expect_arrays)
{
    nn_optim a, b;
    float pa[5], pb[5], g[5];
    start_params(pa);
    nn_optim_init(&a, &model, cfg);
    nn_optim_init(&b, &model, cfg);
    for (int s = 0; s < 2; s++) {
        fill_grads(g, s);
        nn_optim_step(&a, pa, g);
    }
    nn_array arrays[5];
    int n = nn_optim_state(&a, arrays, 5);
    assert_int_equal(n, expect_arrays);
    assert_string_equal(arrays[0].name, "optimizer.iterations");
    assert_int_equal(arrays[0].dtype, NN_I64);
    assert_int_equal(arrays[0].i[0], 2);
    for (int i = 1; i < n; i++) {
        assert_int_equal(arrays[i].rank, 1);
        assert_int_equal(arrays[i].shape[0], 3);
        assert_int_equal(arrays[i].size, 3);
    }
    assert_int_equal(nn_optim_load(&b, arrays, n), 0);
    assert_int_equal(b.iterations, 2);
    memcpy(pb, pa, sizeof pa);
    fill_grads(g, 2);
    nn_optim_step(&a, pa, g);
    nn_optim_step(&b, pb, g);
    assert_memory_equal(pa, pb, sizeof pa);
    for (int i = 0; i < n; i++)
        nn_array_free(&arrays[i]);
    nn_optim_free(&a);
    nn_optim_free(&b);
}

static void test_state_round_trip(void **state)
{
    (void)state;
    nn_optimizer adam = {.kind = NN_OPT_ADAM, .learning_rate = 0.1f, .beta_1 = 0.9f,
                         .beta_2 = 0.999f, .epsilon = 1e-7f};
    nn_optimizer rms = {.kind = NN_OPT_RMSPROP, .learning_rate = 0.01f, .rho = 0.9f,
                        .momentum = 0.5f, .epsilon = 1e-7f};
    nn_optimizer momentum = {.kind = NN_OPT_SGD, .learning_rate = 0.1f, .momentum = 0.9f};
    nn_optimizer plain = {.kind = NN_OPT_SGD, .learning_rate = 0.1f};
    nn_optimizer nadam = {.kind = NN_OPT_NADAM, .learning_rate = 0.1f, .beta_1 = 0.9f,
                          .beta_2 = 0.999f, .epsilon = 1e-7f, .global_clipnorm = 0.2f};
    nn_optimizer adagrad = {.kind = NN_OPT_ADAGRAD, .learning_rate = 0.1f,
                            .initial_accumulator_value = 0.1f, .epsilon = 1e-7f,
                            .weight_decay = 0.1f};
    round_trip(&adam, 3);       /* iterations, w.m, w.v; nothing for "frozen" */
    round_trip(&rms, 3);
    round_trip(&momentum, 2);
    round_trip(&plain, 1);
    round_trip(&nadam, 3);      /* and its momentum product, recomputed after the load */
    round_trip(&adagrad, 2);
}

/* Each optimizer's buffers under Keras's names for them. */
static void test_state_buffer_names(void **state)
{
    (void)state;
    static const struct { nn_opt_kind kind; const char *names[2]; } expect[] = {
        {NN_OPT_ADAMAX, {"optimizer.w.m", "optimizer.w.u"}},
        {NN_OPT_ADAGRAD, {"optimizer.w.accumulator", NULL}},
        {NN_OPT_ADAMW, {"optimizer.w.m", "optimizer.w.v"}},
        {NN_OPT_NADAM, {"optimizer.w.m", "optimizer.w.v"}},
    };
    for (size_t e = 0; e < sizeof expect / sizeof expect[0]; e++) {
        nn_optimizer cfg = {.kind = expect[e].kind, .learning_rate = 0.1f, .beta_1 = 0.9f,
                            .beta_2 = 0.999f, .epsilon = 1e-7f,
                            .initial_accumulator_value = 0.25f};
        nn_optim o;
        nn_optim_init(&o, &model, &cfg);
        nn_array arrays[3];
        int n = nn_optim_state(&o, arrays, 3);
        assert_int_equal(n, expect[e].names[1] ? 3 : 2);
        for (int i = 1; i < n; i++)
            assert_string_equal(arrays[i].name, expect[e].names[i - 1]);
        /* Adagrad's accumulator starts at initial_accumulator_value, Keras's
         * (keras/optimizers/adagrad.py); the others' state at 0. */
        float start = expect[e].kind == NN_OPT_ADAGRAD ? 0.25f : 0.0f;
        assert_true(arrays[1].f[0] == start && arrays[1].f[2] == start);
        for (int i = 0; i < n; i++)
            nn_array_free(&arrays[i]);
        nn_optim_free(&o);
    }
}

/* The learning rate a step uses is cfg.learning_rate at that step: plain SGD
 * moves w by lr * g, hand-computed for each of two rates. */
static void test_learning_rate_read_each_step(void **state)
{
    (void)state;
    nn_optimizer sgd = {.kind = NN_OPT_SGD, .learning_rate = 0.5f};
    nn_optim o;
    float params[5], grads[5];
    start_params(params);
    nn_optim_init(&o, &model, &sgd);
    fill_grads(grads, 0);
    nn_optim_step(&o, params, grads);                 /* 0.5 - 0.5 * 0.1 */
    assert_float_equal(params[0], 0.45f, 1e-7f);
    o.cfg.learning_rate = 2.0f;
    nn_optim_step(&o, params, grads);                 /* 0.45 - 2 * 0.1 */
    assert_float_equal(params[0], 0.25f, 1e-7f);
    nn_optim_free(&o);
}

static void test_state_names_and_errors(void **state)
{
    (void)state;
    nn_optimizer adam = {.kind = NN_OPT_ADAM, .learning_rate = 0.1f, .beta_1 = 0.9f,
                         .beta_2 = 0.999f, .epsilon = 1e-7f};
    nn_optim o;
    nn_optim_init(&o, &model, &adam);
    nn_array arrays[3];
    assert_int_equal(nn_optim_state(&o, arrays, 2), -1);   /* no room */
    assert_int_equal(nn_optim_state(&o, arrays, 3), 3);
    assert_string_equal(arrays[1].name, "optimizer.w.m");
    assert_string_equal(arrays[2].name, "optimizer.w.v");

    arrays[2].f[0] = 42.0f;
    arrays[2].shape[0] = 4;                                  /* misshapen: refused */
    assert_int_equal(nn_optim_load(&o, arrays, 3), -1);
    assert_true(o.state[1][0] == 0.0f);                             /* and nothing copied */
    arrays[2].shape[0] = 3;
    assert_int_equal(nn_optim_load(&o, arrays, 2), -1);      /* w.v missing */
    arrays[0].i[0] = -1;
    assert_int_equal(nn_optim_load(&o, arrays, 3), -1);      /* bad iterations */
    arrays[0].i[0] = 9;
    assert_int_equal(nn_optim_load(&o, arrays, 3), 0);
    assert_int_equal(o.iterations, 9);
    assert_true(o.state[1][0] == 42.0f);
    for (int i = 0; i < 3; i++)
        nn_array_free(&arrays[i]);
    nn_optim_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frozen_untouched),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_buffer_names),
        cmocka_unit_test(test_learning_rate_read_each_step),
        cmocka_unit_test(test_state_names_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
