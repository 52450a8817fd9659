/* test_h5.c - Keras HDF5 files (runtime/h5.c) and starting training from
 * given weights (train --weights, --skip-missing, trainable: false).
 *
 * The fixtures in tests/h5/ are written by tests/h5/make_fixtures.py with
 * h5py in the layout of Keras 2's keras/saving/legacy/hdf5_format.py
 * (save_model_to_hdf5, save_weights_to_hdf5_group, save_attributes_to_hdf5_group:
 * layer_names and weight_names, split into NAME0, NAME1, ... when long; a
 * dataset per weight at LAYER/<variable name>). The references are what that
 * script wrote: the same arrays in an .npz beside each .h5, and the models'
 * outputs computed in numpy with Keras's formulas (expect.npz). A file nncc
 * writes is read back by h5py the way Keras's load_weights reads it
 * (load_attributes_from_hdf5_group, then each weight_names dataset), when
 * /usr/bin/python3 has h5py; otherwise that step says it is skipped. */
#include "testutil.h"

#include "h5.h"

static const char train_data[] =
    "compile: {optimizer: adam, loss: sparse_categorical_crossentropy}\n"
    "data:\n"
    "  class_names: [cat, dog]\n"
    "  train:\n"
    "    format: inline\n"
    "    x: [[0.5, -1.0, 2.0], [1.5, 0.25, -0.75], [-1.0, 1.0, 0.5], [0.2, 0.3, -0.4]]\n"
    "    y: [0, 1, 1, 0]\n"
    "fit: {epochs: 3, batch_size: 2}\n";

/* Built with make HDF5=0, only test_without_hdf5 runs. */
static void need_hdf5(void)
{
    if (!nn_h5_supported())
        skip();
}

static const nn_array *find(const nn_array *a, int n, const char *name)
{
    const nn_array *x = nn_npz_find(a, n, name);
    if (!x)
        fail_msg("no array '%s'", name);
    return x;
}

static bool same_bits(const nn_array *a, const nn_array *b)
{
    return a->rank == b->rank && a->size == b->size &&
           memcmp(a->shape, b->shape, sizeof a->shape) == 0 &&
           memcmp(a->f, b->f, a->size * sizeof *a->f) == 0;
}

/* ---- reading what h5py wrote ------------------------------------------------------ */

/* Every array of FIXTURE.npz, bit for bit, from FIXTURE.h5; where[] names the dataset. */
static void check_fixture(const char *fixture, const char *tensor, const char *dataset)
{
    char h5[128], npz[128];
    snprintf(h5, sizeof h5, "tests/h5/%s.h5", fixture);
    snprintf(npz, sizeof npz, "tests/h5/%s.npz", fixture);
    nn_weight_file w;
    nn_array *want;
    int n_want;
    assert_int_equal(nn_weight_file_read(h5, &w), 0);
    assert_true(w.keras);
    assert_int_equal(nn_npz_read(npz, &want, &n_want), 0);
    assert_int_equal(w.n, n_want);
    for (int i = 0; i < n_want; i++) {
        const nn_array *got = find(w.arrays, w.n, want[i].name);
        if (!same_bits(got, &want[i]))
            fail_msg("%s: '%s' differs from what h5py wrote", h5, want[i].name);
    }
    const nn_array *t = find(w.arrays, w.n, tensor);
    assert_string_equal(w.where[t - w.arrays], dataset);
    nn_npz_free(want, n_want);
    nn_weight_file_free(&w);
}

static void test_read_keras_layouts(void **state)
{
    (void)state;
    need_hdf5();
    /* model.save: under /model_weights; dense_1's variables in a name scope. */
    check_fixture("seq", "dense_1.kernel", "/model_weights/dense_1/head/dense_1/kernel:0");
    check_fixture("seq", "batch_normalization.moving_variance",
                  "/model_weights/batch_normalization/batch_normalization/moving_variance:0");
    /* model.save_weights: the layers at the root. */
    check_fixture("weights", "dense.kernel", "/dense/dense/kernel:0");
    /* Split layer_names0/1 and weight_names0/1; an InputLayer without weights. */
    check_fixture("func", "hidden.bias", "/model_weights/hidden/hidden/bias:0");
    /* A Bidirectional(LSTM)'s and an LSTM's variables, inside their cells. */
    check_fixture("nested", "bidirectional.backward_lstm.recurrent_kernel",
                  "/bidirectional/bidirectional/backward_lstm/lstm_cell/recurrent_kernel:0");
    check_fixture("nested", "lstm.bias", "/lstm/lstm/lstm_cell/bias:0");
}

/* A name list past Keras's 64512 bytes is split as save_attributes_to_hdf5_group
 * splits it (numpy.array_split into equal parts): 800 names of 100 bytes make
 * 80000 bytes, so two attributes layer_names0 and layer_names1 of 400 names. */
static void test_split_names_written(void **state)
{
    (void)state;
    need_hdf5();
    enum { N = 800, LEN = 100 };
    static char names[N][LEN + 1];
    const char *list[N];
    float one = 1.0f;
    nn_array a = {.dtype = NN_F32, .rank = 1, .shape = {1}, .size = 1, .f = &one};
    for (int i = 0; i < N; i++) {
        memset(names[i], 'a', LEN);
        char number[16];
        snprintf(number, sizeof number, "%04d", i);
        memcpy(names[i] + LEN - 4, number, 4);
        list[i] = names[i];
    }
    snprintf(a.name, sizeof a.name, "%s.kernel", names[N - 1]);
    assert_int_equal(nn_h5_write_weights(in_scratch("split.h5"), list, N, &a, 1, NULL, 0), 0);
    nn_weight_file w;
    assert_int_equal(nn_weight_file_read(in_scratch("split.h5"), &w), 0);
    assert_int_equal(w.n, 1);
    assert_string_equal(w.arrays[0].name, a.name);
    nn_weight_file_free(&w);
    RunResult r;
    run_cmd(&r, "/usr/bin/python3 -c 'import h5py' 2>/dev/null");
    if (r.status != 0) {
        print_message("skipped: /usr/bin/python3 has no h5py to look at the split list\n");
        return;
    }
    run_cmd(&r, "/usr/bin/python3 -c \"import h5py; a = h5py.File('%s').attrs; "
                "print(sorted(a.keys()), len(a['layer_names0']), len(a['layer_names1']))\"",
            in_scratch("split.h5"));
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "['backend', 'keras_version', 'layer_names0', 'layer_names1'] "
                               "400 400");
}

/* ---- model_config -------------------------------------------------------------------- */

static void test_model_config(void **state)
{
    (void)state;
    need_hdf5();
    RunResult r;
    run_cmd(&r, "%s tests/h5/seq.h5 --check", nncc_path());
    assert_int_equal(r.status, 0);
    /* By hand: dense 3*4+4, batch_normalization 4*4 (gamma, beta trained), dense_1 4*2+2. */
    assert_output_contains(&r, "batch_normalization (BatchNormalization)");
    assert_output_contains(&r, "Total params: 42");
    assert_output_contains(&r, "Trainable params: 34");
    run_cmd(&r, "%s tests/h5/func.h5 --check", nncc_path());
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "hidden (Dense)");
    assert_output_contains(&r, "Total params: 21");   /* 3*4+4 + 4*1+1 */
    /* A place in the JSON is a place in the attribute. */
    run_cmd(&r, "%s tests/h5/bad_config.h5 --check", nncc_path());
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "tests/h5/bad_config.h5[model_config]:1:");
    assert_output_contains(&r, "layer 'Dense2' is not supported");
    run_cmd(&r, "%s tests/h5/weights.h5 --check", nncc_path());
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "tests/h5/weights.h5: error: no attribute 'model_config'");
}

/* nncc --inference with the .h5's weights gives numpy's outputs (expect.npz). */
static void test_inference(void **state)
{
    (void)state;
    need_hdf5();
    nn_array *e;
    int n;
    assert_int_equal(nn_npz_read("tests/h5/expect.npz", &e, &n), 0);
    const nn_array *x = find(e, n, "x");
    double worst = check_inference("tests/h5/seq.h5", "sequential", "tests/h5/seq.h5", x,
                                   find(e, n, "seq"));
    worst = fmax(worst, check_inference("tests/h5/seq.h5", "sequential", "tests/h5/weights.h5",
                                        x, find(e, n, "weights")));
    worst = fmax(worst, check_inference("tests/h5/func.h5", "model", "tests/h5/func.h5", x,
                                        find(e, n, "func")));
    /* weights.h5's arrays under layers Keras numbered dense_3, ...: by position. */
    worst = fmax(worst, check_inference("tests/h5/seq.h5", "sequential", "tests/h5/renamed.h5",
                                        x, find(e, n, "weights")));
    RunResult r;
    run_cmd(&r, "%s tests/h5/seq.h5 --inference --weights tests/h5/renamed.h5 -o %s",
            nncc_path(), in_scratch("renamed.c"));
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "tests/h5/renamed.h5: warning: its layers are named otherwise "
                               "than the model's ('dense_3' where the model has 'dense'): read "
                               "by position, as Keras's load_weights does");
    print_message("largest difference from numpy: %.3g\n", worst);
    nn_npz_free(e, n);
}

/* ---- train --weights, --save W.h5 ---------------------------------------------------- */

/* h5py reads path as Keras's load_weights does and writes its arrays, under
 * our names, into out (an .npz); false (with a message) without h5py. */
static bool read_back_with_h5py(const char *path, const char *out)
{
    RunResult r;
    run_cmd(&r, "/usr/bin/python3 -c 'import h5py, numpy' 2>/dev/null");
    if (r.status != 0) {
        print_message("skipped: /usr/bin/python3 has no h5py (python3-h5py) to read %s back\n",
                      path);
        return false;
    }
    static const char script[] =
        "import sys, h5py, numpy as np\n"
        "def names(g, n):\n"  /* load_attributes_from_hdf5_group */
        "    if n in g.attrs: return [x.decode() for x in g.attrs[n]]\n"
        "    out, k = [], 0\n"
        "    while '%s%d' % (n, k) in g.attrs:\n"
        "        out += [x.decode() for x in g.attrs['%s%d' % (n, k)]]; k += 1\n"
        "    return out\n"
        "f = h5py.File(sys.argv[1], 'r')\n"
        "assert f.attrs['backend'] in (b'tensorflow', 'tensorflow')\n"
        "assert 'keras_version' in f.attrs\n"
        "arrays = {}\n"
        "for layer in names(f, 'layer_names'):\n"
        "    for w in names(f[layer], 'weight_names'):\n"
        "        d = f[layer][w]\n"
        "        assert d.dtype == np.float32, d.dtype\n"
        "        arrays[layer + '.' + w.split(':')[0].split('/')[-1]] = d[()]\n"
        "print(' '.join(names(f, 'layer_names')))\n"
        "np.savez(sys.argv[2], **arrays)\n";
    write_text(in_scratch("read_back.py"), script);
    run_cmd(&r, "/usr/bin/python3 %s %s %s", in_scratch("read_back.py"), path, out);
    if (r.status != 0)
        fail_msg("h5py could not read %s as Keras does:\n%s", path, r.out);
    assert_output_contains(&r, "dense batch_normalization dense_1");
    return true;
}

static void test_train_from_h5(void **state)
{
    (void)state;
    need_hdf5();
    char cwd[512], yaml[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(yaml, sizeof yaml, "model: %s/tests/h5/seq.h5\n%s", cwd, train_data);
    char trainer[512];   /* in_scratch's buffers take turns */
    snprintf(trainer, sizeof trainer, "%s", build_model("from_h5", yaml));
    RunResult r;
    run_cmd(&r, "%s train --weights tests/h5/weights.h5 --save %s --quiet", trainer,
            in_scratch("out.h5"));
    if (r.status != 0)
        fail_msg("train --weights failed:\n%s", r.out);
    nn_weight_file got, start;
    assert_int_equal(nn_weight_file_read(in_scratch("out.h5"), &got), 0);
    assert_int_equal(nn_weight_file_read("tests/h5/weights.h5", &start), 0);
    assert_int_equal(got.n_weights, 8);
    assert_int_equal(got.n, 10);   /* and meta.rescale, meta.class_names */
    assert_true(find(got.arrays, got.n, "meta.rescale")->f[0] == 1.0f);
    for (int i = 0; i < start.n; i++)   /* every tensor trained from its start, none kept */
        if (same_bits(find(got.arrays, got.n, start.arrays[i].name), &start.arrays[i]))
            fail_msg("'%s' did not move", start.arrays[i].name);
    if (read_back_with_h5py(in_scratch("out.h5"), in_scratch("back.npz"))) {
        nn_array *back;
        int n;
        assert_int_equal(nn_npz_read(in_scratch("back.npz"), &back, &n), 0);
        assert_int_equal(n, got.n_weights);
        for (int i = 0; i < n; i++)
            assert_true(same_bits(&back[i], find(got.arrays, got.n, back[i].name)));
        nn_npz_free(back, n);
    }
    /* The class names went into the .h5 too (nncc_meta), for predict. */
    run_cmd(&r, "%s predict --weights %s 0.5,-1.0,2.0", trainer, in_scratch("out.h5"));
    assert_int_equal(r.status, 0);
    if (!strstr(r.out, ": cat 0.") && !strstr(r.out, ": dog 0."))
        fail_msg("predict did not name the class from out.h5:\n%s", r.out);
    /* Layers Keras numbered otherwise are taken by position, as Keras does. */
    run_cmd(&r, "%s train --weights tests/h5/renamed.h5 --epochs 1 --quiet", trainer);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "read by position, as Keras's load_weights does");
    /* What it wrote is a start again. */
    run_cmd(&r, "%s train --weights %s --epochs 1 --quiet", trainer, in_scratch("out.h5"));
    assert_int_equal(r.status, 0);
    nn_weight_file_free(&got);
    nn_weight_file_free(&start);
}

/* Fine-tuning: the first layers frozen (trainable: false), started from
 * given weights: they stay bit for bit, have no optimizer state, and the
 * rest moves. */
static void test_frozen_layers(void **state)
{
    (void)state;
    need_hdf5();
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "input_shape: [3]\n"
             "layers:\n"
             "  - Dense: {units: 4, activation: relu, trainable: false}\n"
             "  - BatchNormalization: {trainable: false}\n"
             "  - Dense: {units: 2, activation: softmax}\n%s", train_data);
    char trainer[512];   /* in_scratch's buffers take turns */
    snprintf(trainer, sizeof trainer, "%s", build_model("frozen", yaml));
    RunResult r;
    run_cmd(&r, "%s train --weights tests/h5/weights.h5 --save %s --quiet", trainer,
            in_scratch("frozen.npz"));
    if (r.status != 0)
        fail_msg("train failed:\n%s", r.out);
    nn_array *got, *start;
    int n_got, n_start;
    assert_int_equal(nn_npz_read(in_scratch("frozen.npz"), &got, &n_got), 0);
    assert_int_equal(nn_npz_read("tests/h5/weights.npz", &start, &n_start), 0);
    for (int i = 0; i < n_start; i++) {
        const char *name = start[i].name;
        bool frozen = strncmp(name, "dense_1.", 8) != 0;
        bool same = same_bits(find(got, n_got, name), &start[i]);
        if (frozen != same)
            fail_msg("'%s' %s", name, frozen ? "changed, though frozen" : "did not move");
        char m[160];
        snprintf(m, sizeof m, "optimizer.%s.m", name);
        if (frozen != !nn_npz_find(got, n_got, m))
            fail_msg("'%s': %s", m, frozen ? "state for a frozen tensor" : "missing");
    }
    /* A fresh optimizer: three epochs of two steps. */
    assert_int_equal(find(got, n_got, "optimizer.iterations")->i[0], 6);
    nn_npz_free(got, n_got);
    /* A checkpoint as --weights is weights only: epoch 1 again, a fresh optimizer. */
    run_cmd(&r, "%s train --weights %s --epochs 1 --save %s", trainer, in_scratch("frozen.npz"),
            in_scratch("again.npz"));
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "Epoch 1/1");
    assert_int_equal(nn_npz_read(in_scratch("again.npz"), &got, &n_got), 0);
    assert_int_equal(find(got, n_got, "optimizer.iterations")->i[0], 2);
    assert_int_equal(find(got, n_got, "state.epoch")->i[0], 1);
    nn_npz_free(got, n_got);
    nn_npz_free(start, n_start);
}

static void test_skip_missing(void **state)
{
    (void)state;
    need_hdf5();
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "input_shape: [3]\n"
             "layers:\n"
             "  - Dense: {units: 4, activation: relu}\n"
             "  - BatchNormalization\n"
             "  - Dense: {units: 2, activation: relu}\n"
             "  - Dense: {units: 2, activation: softmax}\n%s", train_data);
    const char *trainer = build_model("extra", yaml);
    RunResult r;
    run_cmd(&r, "%s train --weights tests/h5/weights.h5 --quiet", trainer);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "tests/h5/weights.h5: error: no array 'dense_2.kernel'");
    run_cmd(&r, "%s train --weights tests/h5/weights.h5 --skip-missing --epochs 1 --quiet "
                "--save %s", trainer, in_scratch("extra.npz"));
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "2 tensors not in this file keep their initial values: "
                               "dense_2.kernel, dense_2.bias");
    run_cmd(&r, "%s train --skip-missing", trainer);
    assert_int_equal(r.status, 2);
    assert_output_contains(&r, "--weights");
}

/* ---- bad files ----------------------------------------------------------------------- */

static void expect_error(const char *trainer, const char *args, int status, const char *what)
{
    RunResult r;
    run_cmd(&r, "%s %s", trainer, args);
    if (r.status != status)
        fail_msg("'%s' exited %d, want %d:\n%s", args, r.status, status, r.out);
    assert_output_contains(&r, what);
    assert_null(strstr(r.out, "HDF5-DIAG"));   /* the library's own stack stays silent */
}

static void test_bad_files(void **state)
{
    (void)state;
    need_hdf5();
    char cwd[512], yaml[2048];
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(yaml, sizeof yaml, "model: %s/tests/h5/seq.h5\n%s", cwd, train_data);
    char t[512];
    snprintf(t, sizeof t, "%s", build_model("from_h5", yaml));
    expect_error(t, "evaluate --weights tests/h5/bad_shape.h5", 1,
                 "tests/h5/bad_shape.h5: error: 'dense.kernel' (dataset /dense/dense/kernel:0) "
                 "is (3, 5) in this file; model 'from_h5' wants (3, 4)");
    expect_error(t, "evaluate --weights tests/h5/bad_missing_group.h5", 1,
                 "tests/h5/bad_missing_group.h5: error: no group /batch_normalization, which "
                 "layer_names lists");
    expect_error(t, "evaluate --weights tests/h5/bad_dtype.h5", 1,
                 "error: dataset /dense/dense/kernel:0 does not hold floating-point numbers");
    expect_error(t, "predict --weights tests/h5/bad_no_names.h5 1,2,3", 1,
                 "the file's root has no attribute 'layer_names'");
    expect_error(t, "evaluate --weights tests/h5/bad_group.h5", 1,
                 "tests/h5/bad_group.h5: error: /dense/dense/kernel:0 is not a dataset, but "
                 "weight_names of /dense lists it");
    /* (2^28, 4) floats declared in an 18 KB file: refused before allocating 4 GB */
    expect_error(t, "evaluate --weights tests/h5/bad_huge.h5", 1,
                 "tests/h5/bad_huge.h5: error: dataset /dense/dense/kernel:0 claims 1073741824 "
                 "values (4294967296 bytes), but the file stores 0 bytes of it");
    write_text(in_scratch("text.h5"), "not HDF5\n");
    char args[700];
    /* the first half of a good file: the signature is there, the rest is not */
    snprintf(args, sizeof args, "head -c 4000 tests/h5/weights.h5 > %s", in_scratch("cut.h5"));
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "evaluate --weights %s", in_scratch("cut.h5"));
    expect_error(t, args, 1, "cut.h5: error: cannot open as an HDF5 file (damaged?)");
    /* fuzz_h5's file whose global heap makes libhdf5 1.10 loop forever in H5Aread */
    setenv("NNRT_HDF5_SECONDS", "1", 1);
    expect_error(t, "evaluate --weights tests/h5/bad_heap_loop.h5", 1,
                 "tests/h5/bad_heap_loop.h5: error: the HDF5 library did not finish reading the "
                 "file in 1 s (damaged?)");
    unsetenv("NNRT_HDF5_SECONDS");
    /* and one whose global heap makes it jump through a bad pointer */
    expect_error(t, "evaluate --weights tests/h5/bad_heap_crash.h5", 1,
                 "tests/h5/bad_heap_crash.h5: error: the HDF5 library crashed reading the file "
                 "(damaged?)");
    snprintf(args, sizeof args, "evaluate --weights %s", in_scratch("text.h5"));
    expect_error(t, args, 1, "error: not an HDF5 file");
    expect_error(t, "train --resume tests/h5/weights.h5", 1,
                 "an HDF5 file holds weights only: --resume continues a checkpoint");
    expect_error(t, "train --resume x.npz --weights tests/h5/weights.h5", 2,
                 "--weights starts from weights with a fresh optimizer");
    snprintf(args, sizeof args, "tests/h5/seq.h5 --inference --weights tests/h5/bad_shape.h5 -o %s",
             in_scratch("x.c"));
    expect_error(nncc_path(), args, 1, "'dense.kernel' (dataset /dense/dense/kernel:0) has the "
                                       "wrong shape");
    snprintf(args, sizeof args, "%s --check", in_scratch("text.h5"));
    expect_error(nncc_path(), args, 1, "not an HDF5 file");
}

/* Without libhdf5 everything else works, and an .h5 file says what to install. */
static void test_without_hdf5(void **state)
{
    (void)state;
    if (nn_h5_supported())
        skip();
    RunResult r;
    run_cmd(&r, "%s tests/h5/seq.h5 --check", nncc_path());
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "tests/h5/seq.h5: error: a Keras HDF5 file, but this nncc was "
                               "built without HDF5; install libhdf5-dev and rebuild");
    nn_weight_file w;
    assert_int_equal(nn_weight_file_read("tests/h5/weights.h5", &w), -1);
    assert_int_equal(nn_h5_check_writable("w.h5"), -1);
    assert_int_equal(nn_h5_check_writable("w.npz"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_keras_layouts),
        cmocka_unit_test(test_split_names_written),
        cmocka_unit_test(test_model_config),
        cmocka_unit_test(test_inference),
        cmocka_unit_test(test_train_from_h5),
        cmocka_unit_test(test_frozen_layers),
        cmocka_unit_test(test_skip_missing),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_without_hdf5),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
