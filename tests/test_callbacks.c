/* test_callbacks.c - the callbacks' decisions (runtime/callbacks.c) on scripted
 * histories, each checked against what Keras 2.x's callbacks.py does with the
 * same logs:
 *
 *   EarlyStopping.on_epoch_end: a monitor missing from the logs -> return;
 *   wait += 1; on an improvement (current - min_delta > best for a monitor
 *   that should grow, current + min_delta < best otherwise; best starts at -inf/+inf)
 *   best = current, keep the weights, wait = 0, return; then stop when
 *   wait >= patience and epoch > 0, restoring the best weights.
 *   ModelCheckpoint: every epoch, or with save_best_only only when the monitor
 *   beats the best so far (no min_delta), never when it is missing.
 *   StopAtThreshold (the course's callback): accuracy > threshold, loss < threshold.
 */
#include "testutil.h"

#include <math.h>

#include "rt.h"

/* A history: one monitored value per epoch, among other logs; NAN: the
 * epoch does not have it. */
static nn_logs logs_with(const char *monitor, double v)
{
    nn_logs l = {0};
    nn_logs_add(&l, "loss", strcmp(monitor, "loss") == 0 ? v : 0.25);
    if (strcmp(monitor, "loss") != 0 && !isnan(v))
        nn_logs_add(&l, monitor, v);
    return l;
}

/* Runs the callback over values[0..n) and records each epoch's decision.
 * Returns the number of epochs run: it stops after the first NN_CB_STOP, as
 * the loop does. */
static int run_history(const nn_callback *c, const double *values, int n, int *actions)
{
    nn_cb_state s;
    nn_callback_begin(c, &s);
    for (int e = 0; e < n; e++) {
        nn_logs l = logs_with(c->monitor, values[e]);
        actions[e] = nn_callback_epoch_end(c, &s, &l, e);
        if (actions[e] & NN_CB_STOP)
            return e + 1;
    }
    return n;
}

static void assert_actions(const int *got, const int *want, int n)
{
    for (int e = 0; e < n; e++)
        if (got[e] != want[e])
            fail_msg("epoch %d: action %d, want %d", e, got[e], want[e]);
}

enum { C = NN_CB_CONTINUE, S = NN_CB_STOP, V = NN_CB_SAVE, R = NN_CB_RESTORE_BEST };

/* ---- StopAtThreshold --------------------------------------------------------------- */

static void test_threshold_accuracy(void **state)
{
    (void)state;
    nn_callback c = {.kind = NN_CB_STOP_AT_THRESHOLD, .monitor = "accuracy", .threshold = 0.9f,
                     .maximize = 1};
    /* 0.9 itself does not pass: the course tests accuracy > 0.9, and Keras's
     * accuracy is a float32, so 9/10 correct is 0.9f, not above 0.9. */
    const double acc[] = {0.5, 0.9, (double)0.9f, 0.85, 0.95, 0.99};
    int act[6];
    assert_int_equal(run_history(&c, acc, 6, act), 5);
    const int want[] = {C, C, C, C, S};
    assert_actions(act, want, 5);
}

static void test_threshold_loss(void **state)
{
    (void)state;
    nn_callback c = {.kind = NN_CB_STOP_AT_THRESHOLD, .monitor = "loss", .threshold = 0.25f};
    const double loss[] = {1.0, 0.5, (double)0.25f, 0.3, 0.2499, 0.1};
    int act[6];
    assert_int_equal(run_history(&c, loss, 6, act), 5);
    const int want[] = {C, C, C, C, S};
    assert_actions(act, want, 5);

    /* Higher accuracy on val_accuracy too; a missing value never stops. */
    nn_callback v = {.kind = NN_CB_STOP_AT_THRESHOLD, .monitor = "val_accuracy", .threshold = 0.5f,
                     .maximize = 1};
    const double val[] = {NAN, 0.4, 0.6};
    assert_int_equal(run_history(&v, val, 3, act), 3);
    const int want_v[] = {C, C, S};
    assert_actions(act, want_v, 3);
}

/* ---- EarlyStopping ----------------------------------------------------------------------- */

/* maximize: what nncc resolves from mode (auto: the monitored metric's direction). */
static nn_callback early(const char *monitor, int patience, float min_delta, int restore)
{
    nn_callback c = {.kind = NN_CB_EARLY_STOPPING, .monitor = monitor, .patience = patience,
                     .min_delta = min_delta, .restore_best_weights = restore,
                     .maximize = strcmp(monitor, "loss") != 0 && strcmp(monitor, "val_loss") != 0};
    return c;
}

static void test_early_patience_0(void **state)
{
    (void)state;
    /* Improvements keep it going; the first epoch without one stops it. */
    nn_callback c = early("loss", 0, 0, 0);
    const double loss[] = {1.0, 0.9, 0.8, 0.8, 0.7};
    int act[5];
    assert_int_equal(run_history(&c, loss, 5, act), 4);
    const int want[] = {C, C, C, S};
    assert_actions(act, want, 4);
}

static void test_early_patience_2(void **state)
{
    (void)state;
    /* wait: 0 0 1 0 1 2 -> stops at epoch 5 (the second epoch in a row
     * without an improvement); epoch 3 improving resets the count. */
    nn_callback c = early("loss", 2, 0, 0);
    const double loss[] = {1.0, 0.5, 0.6, 0.4, 0.45, 0.41, 0.1};
    int act[7];
    assert_int_equal(run_history(&c, loss, 7, act), 6);
    const int want[] = {C, C, C, C, C, S};
    assert_actions(act, want, 6);
}

static void test_early_min_delta(void **state)
{
    (void)state;
    /* A loss must fall by more than min_delta: 1.0 -> 0.95 is no improvement
     * with min_delta 0.1 (Keras: 0.95 + 0.1 < 1.0 is false); 0.85 is. Then
     * 0.8 and 0.76 fall by less than 0.1 from 0.85: two waits, a stop. */
    nn_callback c = early("loss", 2, 0.1f, 0);
    const double loss[] = {1.0, 0.95, 0.85, 0.8, 0.76, 0.9};
    int act[6];
    assert_int_equal(run_history(&c, loss, 6, act), 5);
    const int want[] = {C, C, C, C, S};
    assert_actions(act, want, 5);

    /* Without min_delta the same history keeps improving until the last epoch. */
    nn_callback d = early("loss", 2, 0, 0);
    assert_int_equal(run_history(&d, loss, 6, act), 6);
    const int want_d[] = {C, C, C, C, C, C};
    assert_actions(act, want_d, 6);
}

static void test_early_direction(void **state)
{
    (void)state;
    /* val_accuracy (maximize): higher is better, so a rising history never stops ... */
    const double rising[] = {0.5, 0.6, 0.7, 0.8};
    const double falling[] = {0.8, 0.7, 0.6, 0.5};
    int act[4];
    nn_callback acc = early("val_accuracy", 1, 0, 0);
    assert_int_equal(run_history(&acc, rising, 4, act), 4);
    /* ... and a falling one stops at the first epoch allowed (epoch 1). */
    assert_int_equal(run_history(&acc, falling, 4, act), 2);
    assert_int_equal(act[1], S);

    /* val_loss: lower is better, the other way round. */
    nn_callback loss = early("val_loss", 1, 0, 0);
    assert_int_equal(run_history(&loss, falling, 4, act), 4);
    assert_int_equal(run_history(&loss, rising, 4, act), 2);
    assert_int_equal(act[1], S);

    /* accuracy with min_delta: must rise by more than it. */
    nn_callback a2 = early("accuracy", 1, 0.05f, 0);
    const double slow[] = {0.5, 0.52, 0.6};
    assert_int_equal(run_history(&a2, slow, 3, act), 2);
}

static void test_early_restore_best(void **state)
{
    (void)state;
    /* Each improvement asks to keep the weights (SAVE); the stop comes with
     * RESTORE_BEST and best_epoch names the epoch whose weights come back. */
    nn_callback c = early("val_loss", 2, 0, 1);
    const double vl[] = {0.9, 0.7, 0.8, 0.6, 0.65, 0.61, 0.1};
    nn_cb_state s;
    nn_callback_begin(&c, &s);
    const int want[] = {V, V, C, V, C, S | R};
    for (int e = 0; e < 6; e++) {
        nn_logs l = logs_with("val_loss", vl[e]);
        assert_int_equal(nn_callback_epoch_end(&c, &s, &l, e), want[e]);
    }
    assert_int_equal(s.best_epoch, 3);
    assert_true(s.best == 0.6);

    /* Without restore_best_weights: no SAVE, and a plain STOP. */
    nn_callback d = early("val_loss", 2, 0, 0);
    int act[7];
    assert_int_equal(run_history(&d, vl, 7, act), 6);
    const int want_d[] = {C, C, C, C, C, S};
    assert_actions(act, want_d, 6);
}

static void test_early_never_at_epoch_0(void **state)
{
    (void)state;
    /* Keras checks `wait >= patience and epoch > 0`: with patience 0 and an
     * epoch 0 that is no improvement (a state carried in, best already 0.5),
     * it does not stop at epoch 0, but does at epoch 1. */
    nn_callback c = early("loss", 0, 0, 1);
    nn_cb_state s;
    nn_callback_begin(&c, &s);
    s.best = 0.5;
    nn_logs worse = logs_with("loss", 0.6);
    assert_int_equal(nn_callback_epoch_end(&c, &s, &worse, 0), C);
    assert_int_equal(s.wait, 1);
    /* No SAVE came before, so no RESTORE_BEST either: the loop would have no
     * weights to restore. */
    assert_int_equal(nn_callback_epoch_end(&c, &s, &worse, 1), S);
}

static void test_early_missing_monitor(void **state)
{
    (void)state;
    /* val_loss missing (no validation data): Keras warns and does nothing,
     * so it is neither an improvement nor a wait, whatever the patience. */
    nn_callback c = early("val_loss", 0, 0, 1);
    const double missing[] = {NAN, NAN, NAN, NAN};
    int act[4];
    assert_int_equal(run_history(&c, missing, 4, act), 4);
    const int want[] = {C, C, C, C};
    assert_actions(act, want, 4);

    /* A gap in an otherwise measured history does not count either. */
    nn_callback d = early("val_loss", 1, 0, 1);
    const double gap[] = {0.5, NAN, NAN, 0.4, 0.45};
    int act_gap[5];
    assert_int_equal(run_history(&d, gap, 5, act_gap), 5);
    const int want_gap[] = {V, C, C, V, S | R};
    assert_actions(act_gap, want_gap, 5);

    /* A monitor name the logs do not have reads as missing. */
    nn_logs l = {0};
    nn_logs_add(&l, "loss", 0.1);
    nn_logs_add(&l, "val_mae", 0.2);
    nn_logs_add(&l, "val_accuracy", 0.4);
    assert_true(isnan(nn_logs_get(&l, "mae")));
    assert_true(nn_logs_get(&l, "val_accuracy") == 0.4);
    assert_true(nn_logs_get(&l, "val_mae") == 0.2);
}

/* ---- ModelCheckpoint and CSVLogger ----------------------------------------------------------- */

static void test_checkpoint_every_epoch(void **state)
{
    (void)state;
    nn_callback c = {.kind = NN_CB_MODEL_CHECKPOINT, .monitor = "val_loss", .filepath = "w.npz"};
    const double vl[] = {0.5, 0.9, NAN, 0.1};
    int act[4];
    assert_int_equal(run_history(&c, vl, 4, act), 4);
    const int want[] = {V, V, V, V};
    assert_actions(act, want, 4);
}

static void test_checkpoint_best_only(void **state)
{
    (void)state;
    nn_callback c = {.kind = NN_CB_MODEL_CHECKPOINT, .monitor = "val_loss", .filepath = "w.npz",
                     .save_best_only = 1};
    /* Saves when strictly better than every earlier epoch; equal is not better;
     * a missing value saves nothing and does not disturb the best. */
    const double vl[] = {0.5, 0.6, 0.4, 0.4, NAN, 0.45, 0.39};
    int act[7];
    assert_int_equal(run_history(&c, vl, 7, act), 7);
    const int want[] = {V, C, V, C, C, C, V};
    assert_actions(act, want, 7);

    nn_callback a = {.kind = NN_CB_MODEL_CHECKPOINT, .monitor = "val_accuracy",
                     .filepath = "w.npz", .save_best_only = 1, .maximize = 1};
    const double va[] = {0.5, 0.4, 0.7, 0.6};
    assert_int_equal(run_history(&a, va, 4, act), 4);
    const int want_a[] = {V, C, V, C};
    assert_actions(act, want_a, 4);
}

static void test_csv_logger_writes_every_epoch(void **state)
{
    (void)state;
    nn_callback c = {.kind = NN_CB_CSV_LOGGER, .filepath = "log.csv"};
    nn_cb_state s;
    nn_callback_begin(&c, &s);
    nn_logs l = logs_with("accuracy", 0.5);
    for (int e = 0; e < 3; e++)
        assert_int_equal(nn_callback_epoch_end(&c, &s, &l, e), V);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threshold_accuracy),
        cmocka_unit_test(test_threshold_loss),
        cmocka_unit_test(test_early_patience_0),
        cmocka_unit_test(test_early_patience_2),
        cmocka_unit_test(test_early_min_delta),
        cmocka_unit_test(test_early_direction),
        cmocka_unit_test(test_early_restore_best),
        cmocka_unit_test(test_early_never_at_epoch_0),
        cmocka_unit_test(test_early_missing_monitor),
        cmocka_unit_test(test_checkpoint_every_epoch),
        cmocka_unit_test(test_checkpoint_best_only),
        cmocka_unit_test(test_csv_logger_writes_every_epoch),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
