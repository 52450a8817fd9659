/* test_mpi.c - data-parallel training under Open MPI (make MPI=1, runtime/dist.c).
 *
 * The reference for 2 ranks is 1 process with the same global batch: the
 * loss is the mean over the global batch, so the ranks' summed gradients are
 * the batch's gradient and the weights may differ only by float summation
 * order. Measured as the largest |difference| over every weight, as a share
 * of the largest |move| of any weight from its initial value: at most 1e-3.
 * The 1-process path itself is checked against PyTorch by test_ref.
 *
 * BatchNormalization uses each rank's own batch statistics (as Keras's
 * MirroredStrategy does). The independent check: data whose every batch is
 * two equal halves, so each rank's statistics are the global batch's and the
 * weights must match 1 process; and ordinary data, where they must not
 * (proving the statistics are the rank's).
 *
 * Skipped, saying so, when mpirun is not installed (tools/ensure-deps mpi). */
#include "testutil.h"
#include "nnrt.h"

#define MPIRUN "mpirun --allow-run-as-root --oversubscribe -np 2"
#define TOLERANCE 1e-3

static int have_mpirun(void)
{
    return system("command -v mpirun >/dev/null 2>&1") == 0;
}

/* Builds scratch/NAME with make MPI=1 trainer; its path stays valid until
 * the next call (in_scratch's buffers take turns). */
static const char *mpi_trainer(const char *name, const char *yaml)
{
    static char trainer[512];
    char path[256];
    static char text[8192];
    snprintf(path, sizeof path, "%s/%s.yaml", scratch, name);
    snprintf(text, sizeof text, "name: %s\n%s", name, yaml);
    write_text(path, text);
    snprintf(trainer, sizeof trainer, "%s", in_scratch(name));
    RunResult r;
    run_cmd(&r, "make --no-print-directory MPI=1 trainer MODEL=%s OUT=%s SAN=%s", path, scratch,
            san());
    if (r.status != 0)
        fail_msg("make MPI=1 trainer for %s failed:\n%s", name, r.out);
    return trainer;
}

/* n rows of `inputs` numbers in [-1, 1) and a class label 0..2 that depends
 * on them; with halves > 0, each block of 2*halves rows is a block of
 * `halves` rows twice. */
static void write_data(const char *path, int n, int inputs, int halves)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    for (int i = 0; i < n; i++) {
        int source = halves ? i / (2 * halves) * halves + i % halves : i;
        float sum = 0;
        for (int j = 0; j < inputs; j++) {
            float v = 2.0f * nn_uniform(7, (uint64_t)source, (uint64_t)j) - 1.0f;
            sum += v * (float)(j % 3 - 1);
            fprintf(f, "%.6f,", v);
        }
        fprintf(f, "%d\n", sum < -0.3f ? 0 : sum < 0.3f ? 1 : 2);
    }
    assert_int_equal(fclose(f), 0);
}

/* The largest |a - b| over every weight as a share of the largest
 * |a - init|: optimizer and training state left out. */
static double share_of_move(const char *a_path, const char *b_path, const char *init_path)
{
    nn_array *a, *b, *init;
    int na, nb, ni;
    assert_int_equal(nn_npz_read(a_path, &a, &na), 0);
    assert_int_equal(nn_npz_read(b_path, &b, &nb), 0);
    assert_int_equal(nn_npz_read(init_path, &init, &ni), 0);
    double diff = 0, move = 0;
    for (int i = 0; i < na; i++) {
        if (a[i].dtype != NN_F32 || strncmp(a[i].name, "optimizer.", 10) == 0 ||
            strncmp(a[i].name, "state.", 6) == 0 || strncmp(a[i].name, "meta.", 5) == 0)
            continue;
        const nn_array *x = NULL, *x0 = NULL;
        for (int j = 0; j < nb; j++)
            x = strcmp(b[j].name, a[i].name) == 0 ? &b[j] : x;
        for (int j = 0; j < ni; j++)
            x0 = strcmp(init[j].name, a[i].name) == 0 ? &init[j] : x0;
        assert_non_null(x);
        assert_non_null(x0);
        assert_int_equal(x->size, a[i].size);
        for (size_t k = 0; k < a[i].size; k++) {
            diff = fmax(diff, fabs((double)a[i].f[k] - x->f[k]));
            move = fmax(move, fabs((double)a[i].f[k] - x0->f[k]));
        }
    }
    nn_npz_free(a, na);
    nn_npz_free(b, nb);
    nn_npz_free(init, ni);
    assert_true(move > 0);
    return diff / move;
}

/* Trains `trainer` 1 process and 2 ranks with the same arguments; returns
 * the share of the move by which their weights differ. */
static double one_vs_two(const char *trainer, const char *args)
{
    RunResult r;
    run_cmd(&r, "%s init --save %s", trainer, in_scratch("init.npz"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --quiet --threads 1 %s --save %s", trainer, args, in_scratch("one.npz"));
    if (r.status != 0)
        fail_msg("1 process:\n%s", r.out);
    run_cmd(&r, MPIRUN " %s train --quiet --threads 1 %s --save %s < /dev/null", trainer, args,
            in_scratch("two.npz"));
    if (r.status != 0)
        fail_msg("2 ranks:\n%s", r.out);
    return share_of_move(in_scratch("one.npz"), in_scratch("two.npz"), in_scratch("init.npz"));
}

/* 136,707 parameters: two buckets of the gradient sum (NN_DIST_BUCKET_FLOATS),
 * the last two layers' started while the first one's backward runs. */
static const char dense_yaml[] =
    "input_shape: [8]\n"
    "layers:\n"
    "  - Dense: {units: 512, activation: relu}\n"
    "  - Dropout: {rate: 0.25}\n"
    "  - Dense: {units: 256, activation: relu}\n"
    "  - Dense: {units: 3, activation: softmax}\n"
    "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
    "data:\n  train: {format: csv, path: dense.csv, header: false}\n"
    "fit: {epochs: 2, batch_size: 32, seed: 3}\n";

static const char conv_yaml[] =
    "input_shape: [6, 6, 1]\n"
    "layers:\n"
    "  - Conv2D: {filters: 4, kernel_size: 3, activation: relu}\n"
    "  - MaxPooling2D: {pool_size: 2}\n"
    "  - Flatten: {}\n"
    "  - Dense: {units: 3, activation: softmax}\n"
    "compile: {optimizer: {name: sgd, learning_rate: 0.1, momentum: 0.9}, "
    "loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
    "data:\n  train: {format: csv, path: conv.csv, header: false}\n"
    "fit: {epochs: 2, batch_size: 16, seed: 5}\n";

/* SGD: the Dense bias before BatchNormalization has a zero gradient, whose
 * float noise Adam would turn into whole steps of either sign. */
static const char bn_yaml[] =
    "input_shape: [8]\n"
    "layers:\n"
    "  - Dense: {units: 8}\n"
    "  - BatchNormalization: {}\n"
    "  - Activation: relu\n"
    "  - Dense: {units: 3, activation: softmax}\n"
    "compile: {optimizer: {name: sgd, learning_rate: 0.1}, "
    "loss: sparse_categorical_crossentropy}\n"
    "data:\n  train: {format: csv, path: bn.csv, header: false}\n"
    "fit: {epochs: 2, batch_size: 8, seed: 9}\n";

static void dense_two_ranks_match_one_process(void **state)
{
    (void)state;
    write_data(in_scratch("dense.csv"), 200, 8, 0);   /* 200: a last batch of 8 */
    double share = one_vs_two(mpi_trainer("dense", dense_yaml), "");
    print_message("dense: 2 ranks vs 1 process: %.3g of the move\n", share);
    assert_true(share <= TOLERANCE);
}

static void conv_two_ranks_match_one_process(void **state)
{
    (void)state;
    write_data(in_scratch("conv.csv"), 96, 36, 0);
    double share = one_vs_two(mpi_trainer("conv", conv_yaml), "");
    print_message("conv: 2 ranks vs 1 process: %.3g of the move\n", share);
    assert_true(share <= TOLERANCE);
}

/* Every batch of 8 is 4 rows twice, in order: each rank's 4 have the whole
 * batch's mean and variance, so per-rank statistics change nothing. */
static void batchnorm_equal_halves_match_one_process(void **state)
{
    (void)state;
    write_data(in_scratch("bn.csv"), 64, 8, 4);
    double share = one_vs_two(mpi_trainer("bn", bn_yaml), "--no-shuffle");
    print_message("BatchNormalization, equal halves: 2 ranks vs 1 process: %.3g of the move\n",
                  share);
    assert_true(share <= TOLERANCE);
}

/* Ordinary data: each rank normalises with its own half's statistics, so
 * the result is not 1 process's (documented; Keras's MirroredStrategy too). */
static void batchnorm_statistics_are_per_rank(void **state)
{
    (void)state;
    write_data(in_scratch("bn.csv"), 64, 8, 0);
    double share = one_vs_two(mpi_trainer("bn", bn_yaml), "--no-shuffle");
    print_message("BatchNormalization, ordinary data: 2 ranks vs 1 process: %.3g of the move\n",
                  share);
    assert_true(share > 10 * TOLERANCE);
}

/* A checkpoint written by 2 ranks after epoch 1 continues on 1 process, and
 * one written by 1 process on 2 ranks, to the uninterrupted run's weights. */
static void resume_across_rank_counts(void **state)
{
    (void)state;
    write_data(in_scratch("dense.csv"), 200, 8, 0);
    const char *t = mpi_trainer("dense", dense_yaml);
    RunResult r;
    run_cmd(&r, "%s init --save %s", t, in_scratch("init.npz"));
    run_cmd(&r, "%s train --quiet --threads 1 --epochs 2 --save %s", t, in_scratch("full.npz"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, MPIRUN " %s train --quiet --threads 1 --epochs 1 --save %s < /dev/null", t,
            in_scratch("a.npz"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s train --quiet --threads 1 --epochs 2 --resume %s --save %s", t,
            in_scratch("a.npz"), in_scratch("a2.npz"));
    if (r.status != 0)
        fail_msg("resume on 1:\n%s", r.out);
    run_cmd(&r, "%s train --quiet --threads 1 --epochs 1 --save %s", t, in_scratch("b.npz"));
    run_cmd(&r, MPIRUN " %s train --quiet --threads 1 --epochs 2 --resume %s --save %s "
            "< /dev/null", t, in_scratch("b.npz"), in_scratch("b2.npz"));
    if (r.status != 0)
        fail_msg("resume on 2:\n%s", r.out);
    double two_then_one = share_of_move(in_scratch("full.npz"), in_scratch("a2.npz"),
                                        in_scratch("init.npz"));
    double one_then_two = share_of_move(in_scratch("full.npz"), in_scratch("b2.npz"),
                                        in_scratch("init.npz"));
    print_message("resume: 2 ranks then 1 %.3g, 1 then 2 ranks %.3g of the move\n",
                  two_then_one, one_then_two);
    assert_true(two_then_one <= TOLERANCE);
    assert_true(one_then_two <= TOLERANCE);
}

/* Rank 0 in folder a, rank 1 in folder b, relative output paths: only a
 * gets the checkpoint, the history and the CSVLogger's file. */
static void only_rank_0_writes(void **state)
{
    (void)state;
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "input_shape: [8]\nlayers:\n  - Dense: {units: 3, activation: softmax}\n"
             "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
             "data:\n  train: {format: csv, path: %s, header: false}\n"
             "fit:\n  epochs: 1\n  batch_size: 32\n  callbacks:\n"
             "    - CSVLogger: {filename: log.csv}\n", in_scratch("dense.csv"));
    write_data(in_scratch("dense.csv"), 64, 8, 0);
    const char *t = mpi_trainer("writer", yaml);
    RunResult r;
    run_cmd(&r, "mkdir -p %s %s && mpirun --allow-run-as-root --oversubscribe "
            "-np 1 -wdir %s %s train --quiet --save w.npz --history h.csv : "
            "-np 1 -wdir %s %s train --quiet --save w.npz --history h.csv < /dev/null",
            in_scratch("a"), in_scratch("b"), in_scratch("a"), t, in_scratch("b"), t);
    if (r.status != 0)
        fail_msg("2 ranks:\n%s", r.out);
    const char *files[] = {"w.npz", "h.csv", "log.csv"};
    for (int i = 0; i < 3; i++) {
        char a[512], b[512];
        snprintf(a, sizeof a, "%s/%s", in_scratch("a"), files[i]);
        snprintf(b, sizeof b, "%s/%s", in_scratch("b"), files[i]);
        assert_true(file_exists(a));
        assert_false(file_exists(b));
    }
}

/* Rank 1 hangs before step 5: rank 0 names it within the timeout and ends
 * the job; the checkpoint of step 4 (--save-every 2) is whole and resumes. */
static void a_hung_rank_ends_the_job(void **state)
{
    (void)state;
    write_data(in_scratch("dense.csv"), 200, 8, 0);
    const char *t = mpi_trainer("dense", dense_yaml);
    RunResult r;
    run_cmd(&r, "NNRT_TEST_FAULT=1:5:hang NNRT_MPI_TIMEOUT=2 " MPIRUN
            " %s train --quiet --threads 1 --save %s --save-every 2 < /dev/null", t,
            in_scratch("ck.npz"));
    print_message("%s", r.out);
    assert_int_not_equal(r.status, 0);
    assert_output_contains(&r, "rank 1 did not answer within 2 s");
    run_cmd(&r, "%s train --quiet --threads 1 --resume %s --save %s", t, in_scratch("ck.npz"),
            in_scratch("after.npz"));
    if (r.status != 0)
        fail_msg("resume after the hang:\n%s", r.out);
}

/* Rank 1 fails at step 3: the job ends, naming it. */
static void a_failed_rank_ends_the_job(void **state)
{
    (void)state;
    write_data(in_scratch("dense.csv"), 200, 8, 0);
    const char *t = mpi_trainer("dense", dense_yaml);
    RunResult r;
    run_cmd(&r, "NNRT_TEST_FAULT=1:3:exit " MPIRUN " %s train --quiet --threads 1 < /dev/null",
            t);
    print_message("%s", r.out);
    assert_int_not_equal(r.status, 0);
    assert_output_contains(&r, "rank 1 of 2 stopped");
}

/* Rank 1 dies of SIGKILL before step 5: mpirun ends the job naming it; the
 * checkpoint of step 4 resumes. */
static void a_killed_rank_ends_the_job(void **state)
{
    (void)state;
    write_data(in_scratch("dense.csv"), 200, 8, 0);
    const char *t = mpi_trainer("dense", dense_yaml);
    RunResult r;
    run_cmd(&r, "NNRT_TEST_FAULT=1:5:kill " MPIRUN
            " %s train --quiet --threads 1 --save %s --save-every 2 < /dev/null", t,
            in_scratch("killed.npz"));
    print_message("%s", r.out);
    assert_int_not_equal(r.status, 0);
    assert_output_contains(&r, "rank 1");
    assert_output_contains(&r, "signal 9");
    run_cmd(&r, "%s train --quiet --threads 1 --resume %s", t, in_scratch("killed.npz"));
    if (r.status != 0)
        fail_msg("resume after the kill:\n%s", r.out);
}

int main(void)
{
    if (!have_mpirun()) {
        printf("test_mpi: skipped: mpirun is not installed (tools/ensure-deps mpi installs "
               "Open MPI)\n");
        return 0;
    }
    /* Under make test SAN=1: Open MPI's own allocations outlive MPI_Finalize,
     * which LeakSanitizer would report; the trainers' code is leak-checked
     * by the other tests. */
    if (strcmp(san(), "1") == 0)
        setenv("LSAN_OPTIONS", "detect_leaks=0", 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dense_two_ranks_match_one_process),
        cmocka_unit_test(conv_two_ranks_match_one_process),
        cmocka_unit_test(batchnorm_equal_halves_match_one_process),
        cmocka_unit_test(batchnorm_statistics_are_per_rank),
        cmocka_unit_test(resume_across_rank_counts),
        cmocka_unit_test(only_rank_0_writes),
        cmocka_unit_test(a_hung_rank_ends_the_job),
        cmocka_unit_test(a_failed_rank_ends_the_job),
        cmocka_unit_test(a_killed_rank_ends_the_job),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
