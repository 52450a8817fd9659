/* test_optim.c - SGD, Adam and RMSprop against Keras's update rules written out
 * here again, step by step in double, on a 3-element tensor; frozen tensors;
 * and the checkpoint state round trip. */
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

static void assert_close(double got, double want, double tol)
{
    if (!(fabs(got - want) <= tol))
        fail_msg("got %.10g, want %.10g (tolerance %g)", got, want, tol);
}

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

/* Runs STEPS steps of cfg and checks "w" after each against ref[step][i]. */
static void check_against(const nn_optimizer *cfg, double ref[STEPS][N])
{
    nn_optim o;
    float params[5], grads[5];
    start_params(params);
    nn_optim_init(&o, &model, cfg);
    for (int s = 0; s < STEPS; s++) {
        fill_grads(grads, s);
        nn_optim_step(&o, params, grads);
        assert_int_equal(o.iterations, s + 1);
        for (int i = 0; i < N; i++)
            assert_close(params[i], ref[s][i], 1e-6);
        assert_true(params[3] == 7.0f && params[4] == 8.0f);
    }
    nn_optim_free(&o);
}

static void sgd_reference(double lr, double mu, int nesterov, double ref[STEPS][N])
{
    for (int i = 0; i < N; i++) {
        double w = w0[i], v = 0;
        for (int s = 0; s < STEPS; s++) {
            double g = grad[s][i];
            if (mu == 0) {
                w = w - lr * g;
            } else {
                v = mu * v - lr * g;
                w = nesterov ? w + mu * v - lr * g : w + v;
            }
            ref[s][i] = w;
        }
    }
}

static void test_sgd_plain(void **state)
{
    (void)state;
    nn_optimizer cfg = {.kind = NN_OPT_SGD, .learning_rate = 0.1f};
    double ref[STEPS][N];
    sgd_reference(0.1, 0, 0, ref);
    assert_close(ref[0][0], 0.5 - 0.01, 1e-12);   /* the reference itself, by hand */
    check_against(&cfg, ref);
}

static void test_sgd_momentum(void **state)
{
    (void)state;
    nn_optimizer cfg = {.kind = NN_OPT_SGD, .learning_rate = 0.1f, .momentum = 0.9f};
    double ref[STEPS][N];
    sgd_reference(0.1, (double)0.9f, 0, ref);
    /* step 2 of element 0: v1 = -0.01, v2 = 0.9 v1 + 0.005 = -0.004 */
    assert_close(ref[1][0], 0.5 - 0.01 - 0.004, 1e-7);
    check_against(&cfg, ref);
}

static void test_sgd_nesterov(void **state)
{
    (void)state;
    nn_optimizer cfg = {.kind = NN_OPT_SGD, .learning_rate = 0.1f, .momentum = 0.9f, .nesterov = 1};
    double ref[STEPS][N];
    sgd_reference(0.1, (double)0.9f, 1, ref);
    /* step 1: v = -0.01, w += 0.9 v - 0.01 = -0.019 */
    assert_close(ref[0][0], 0.5 - 0.019, 1e-7);
    check_against(&cfg, ref);
}

static void test_adam(void **state)
{
    (void)state;
    nn_optimizer cfg = {.kind = NN_OPT_ADAM, .learning_rate = 0.1f, .beta_1 = 0.9f,
                        .beta_2 = 0.999f, .epsilon = 1e-7f};
    double lr = (double)0.1f, b1 = (double)0.9f, b2 = (double)0.999f, eps = (double)1e-7f;
    double ref[STEPS][N];
    for (int i = 0; i < N; i++) {
        double w = w0[i], m = 0, v = 0;
        for (int s = 0; s < STEPS; s++) {
            double g = grad[s][i], t = s + 1;
            double lr_t = lr * sqrt(1 - pow(b2, t)) / (1 - pow(b1, t));
            m = b1 * m + (1 - b1) * g;
            v = b2 * v + (1 - b2) * g * g;
            w -= lr_t * m / (sqrt(v) + eps);
            ref[s][i] = w;
        }
    }
    /* Step 1 moves each weight by almost exactly lr against its gradient's sign. */
    assert_close(ref[0][0], 0.5 - 0.1, 1e-5);
    assert_close(ref[0][1], -1.0 + 0.1, 1e-5);
    check_against(&cfg, ref);
}

static void rmsprop_reference(double lr, double rho, double mu, double eps, double ref[STEPS][N])
{
    for (int i = 0; i < N; i++) {
        double w = w0[i], a = 0, mom = 0;
        for (int s = 0; s < STEPS; s++) {
            double g = grad[s][i];
            a = rho * a + (1 - rho) * g * g;
            if (mu == 0) {
                w -= lr * g / (sqrt(a) + eps);
            } else {
                mom = mu * mom + lr * g / sqrt(a + eps);   /* TF's ApplyRMSProp */
                w -= mom;
            }
            ref[s][i] = w;
        }
    }
}

static void test_rmsprop(void **state)
{
    (void)state;
    nn_optimizer cfg = {.kind = NN_OPT_RMSPROP, .learning_rate = 0.01f, .rho = 0.9f,
                        .epsilon = 1e-7f};
    double ref[STEPS][N];
    rmsprop_reference((double)0.01f, (double)0.9f, 0, (double)1e-7f, ref);
    /* step 1: a = 0.1 g^2, so w -= 0.01 * g / (|g| sqrt(0.1)) */
    assert_close(ref[0][0], 0.5 - 0.01 / sqrt(0.1), 1e-6);
    check_against(&cfg, ref);
}

static void test_rmsprop_momentum(void **state)
{
    (void)state;
    nn_optimizer cfg = {.kind = NN_OPT_RMSPROP, .learning_rate = 0.01f, .rho = 0.9f,
                        .momentum = 0.5f, .epsilon = 1e-7f};
    double ref[STEPS][N];
    rmsprop_reference((double)0.01f, (double)0.9f, 0.5, (double)1e-7f, ref);
    check_against(&cfg, ref);
    /* Momentum must make a difference after step 1. */
    double plain[STEPS][N];
    rmsprop_reference((double)0.01f, (double)0.9f, 0, (double)1e-7f, plain);
    assert_true(fabs(plain[1][0] - ref[1][0]) > 1e-3);
}

/* With momentum, epsilon goes inside the square root (TensorFlow's
 * ApplyRMSProp); a large epsilon tells the two apart. Step 1, g = 0.1:
 * a = 0.001, w = 0.5 - 0.01 * 0.1 / sqrt(0.001 + 0.01). */
static void test_rmsprop_momentum_epsilon(void **state)
{
    (void)state;
    nn_optimizer cfg = {.kind = NN_OPT_RMSPROP, .learning_rate = 0.01f, .rho = 0.9f,
                        .momentum = 0.5f, .epsilon = 0.01f};
    double ref[STEPS][N];
    rmsprop_reference((double)0.01f, (double)0.9f, 0.5, (double)0.01f, ref);
    assert_close(ref[0][0], 0.5 - 0.001 / sqrt(0.011), 1e-6);
    check_against(&cfg, ref);
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
    round_trip(&adam, 3);       /* iterations, w.m, w.v; nothing for "frozen" */
    round_trip(&rms, 3);
    round_trip(&momentum, 2);
    round_trip(&plain, 1);
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
    assert_true(o.v[0] == 0.0f);                             /* and nothing copied */
    arrays[2].shape[0] = 3;
    assert_int_equal(nn_optim_load(&o, arrays, 2), -1);      /* w.v missing */
    arrays[0].i[0] = -1;
    assert_int_equal(nn_optim_load(&o, arrays, 3), -1);      /* bad iterations */
    arrays[0].i[0] = 9;
    assert_int_equal(nn_optim_load(&o, arrays, 3), 0);
    assert_int_equal(o.iterations, 9);
    assert_true(o.v[0] == 42.0f);
    for (int i = 0; i < 3; i++)
        nn_array_free(&arrays[i]);
    nn_optim_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_plain),
        cmocka_unit_test(test_sgd_momentum),
        cmocka_unit_test(test_sgd_nesterov),
        cmocka_unit_test(test_adam),
        cmocka_unit_test(test_rmsprop),
        cmocka_unit_test(test_rmsprop_momentum),
        cmocka_unit_test(test_rmsprop_momentum_epsilon),
        cmocka_unit_test(test_state_round_trip),
        cmocka_unit_test(test_state_names_and_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
