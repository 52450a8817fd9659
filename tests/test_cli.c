/* test_cli.c - a trainer's command line as a Keras user meets it.
 *
 * The model is one sigmoid unit whose weights the model file fixes,
 * p = sigmoid(x0 - x1), so every number below is computed by hand:
 *   2,1 -> sigmoid(1) = 0.731059: class 1 ("yes") with 0.7311
 *   1,3 -> sigmoid(-2) = 0.119203: class 0 ("no") with 1 - 0.119203 = 0.8808
 *
 *   records     text, --all, --format csv and json agree with those numbers
 *   meta        init's file holds meta.class_names "no\0yes\0" (uint8) and
 *               meta.rescale 1, read back with the runtime's npz reader; a
 *               meta array of another version is ignored, a meta.rescale
 *               that is not the model's is an error
 *   tables      a CSV file with or without the label column; a row of the
 *               wrong length is one error line naming it and the count
 *   usage       unknown options and commands: one line, did-you-mean, the
 *               help hint, exit 2; an option the command does not take;
 *               `fit` is `train`; --help names every option
 *   evaluate    the validation data when there is no test set, the loss and
 *               accuracy by hand, --show without names, --confusion
 */
#include "testutil.h"

#include <math.h>

#include "npz.h"

static const char *const model_yaml =
    "input_shape: [2]\n"
    "layers:\n"
    "  - Dense: {units: 1, activation: sigmoid, weights: {kernel: [[1.0], [-1.0]], bias: [0.0]}}\n"
    "compile:\n"
    "  optimizer: {name: sgd, learning_rate: 0.0001}\n"
    "  loss: binary_crossentropy\n"
    "  metrics: [accuracy]\n"
    "data:\n"
    "  train: {format: inline, x: [[2, 1], [1, 3]], y: [1, 0]}\n"
    "  validation:\n"
    "    format: inline\n"
    "    x: [[2, 1], [1, 3], [0, 1], [3, 0], [1, 0]]\n"
    "    y: [1, 0, 1, 0, 0]\n"
    "%s"
    "fit: {epochs: 1, batch_size: 2}\n";

/* The trainer NAME, with `class_names: [no, yes]` when named; and its
 * initial weights (the model file's) in scratch/NAME.npz. The path stays
 * (in_scratch's buffers take turns). */
static const char *trainer(const char *name, int named)
{
    static char paths[2][300];
    static int next;
    char yaml[2048];
    snprintf(yaml, sizeof yaml, model_yaml, named ? "  class_names: [no, yes]\n" : "");
    const char *t = build_model(name, yaml);
    RunResult r;
    char w[300];
    snprintf(w, sizeof w, "%s/%s.npz", scratch, name);
    run_cmd(&r, "%s init --save %s", t, w);
    if (r.status != 0)
        fail_msg("init failed:\n%s", r.out);
    char *kept = paths[next++ % 2];
    snprintf(kept, sizeof paths[0], "%s", t);
    return kept;
}

static void test_records(void **state)
{
    (void)state;
    const char *t = trainer("bin2", 1), *w = in_scratch("bin2.npz");
    RunResult r;
    run_cmd(&r, "%s predict --weights %s 2,1 1,3", t, w);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "2,1: yes 0.7311\n1,3: no 0.8808\n");
    run_cmd(&r, "%s predict --weights %s 2,1 1,3 --all", t, w);
    assert_string_equal(r.out, "2,1: yes 0.7311 [0.7311]\n1,3: no 0.8808 [0.1192]\n");

    run_cmd(&r, "%s predict --weights %s 2,1 1,3 --format csv", t, w);
    assert_int_equal(r.status, 0);
    const char *header = "input,class,index,probability,output_0\n";
    assert_int_equal(strncmp(r.out, header, strlen(header)), 0);
    double prob, out;
    assert_int_equal(sscanf(r.out + strlen(header), "\"2,1\",yes,1,%lf,%lf", &prob, &out), 2);
    assert_true(fabs(prob - 0.7310586) < 1e-6 && fabs(out - 0.7310586) < 1e-6);
    const char *second = strchr(r.out + strlen(header), '\n') + 1;
    assert_int_equal(sscanf(second, "\"1,3\",no,0,%lf,%lf", &prob, &out), 2);
    assert_true(fabs(prob - 0.8807971) < 1e-6 && fabs(out - 0.1192029) < 1e-6);

    run_cmd(&r, "%s predict --weights %s 1,3 --format json", t, w);
    assert_int_equal(r.status, 0);
    assert_int_equal(sscanf(r.out, "{\"input\": \"1,3\", \"class\": \"no\", \"index\": 0, "
                                   "\"probability\": %lf, \"outputs\": [%lf]}\n", &prob, &out), 2);
    assert_true(fabs(prob - 0.8807971) < 1e-6 && fabs(out - 0.1192029) < 1e-6);
    assert_int_equal(strchr(r.out, '\n')[1], '\0');

    /* The names travel in the file, as bytes numpy reads. */
    nn_array *arrays;
    int n;
    assert_int_equal(nn_npz_read(w, &arrays, &n), 0);
    const nn_array *names = nn_npz_find(arrays, n, "meta.class_names");
    const nn_array *rescale = nn_npz_find(arrays, n, "meta.rescale");
    assert_non_null(names);
    assert_non_null(rescale);
    assert_null(nn_npz_find(arrays, n, "meta.target_size"));   /* not an image model */
    static const char want[] = "no\0yes";
    assert_int_equal(names->size, sizeof want);
    for (size_t k = 0; k < sizeof want; k++)
        assert_int_equal(names->i[k], (unsigned char)want[k]);
    assert_int_equal(rescale->size, 1);
    assert_true(rescale->f[0] == 1.0f);
    nn_npz_free(arrays, n);

    char other[300];
    snprintf(other, sizeof other, "%s", in_scratch("other.npz"));
    run_cmd(&r, "/usr/bin/python3 -c \"import numpy; d = dict(numpy.load('%s')); "
                "d['meta.vocabulary'] = numpy.zeros(3, 'u1'); numpy.savez('%s', **d)\"", w, other);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s predict --weights %s 2,1", t, other);
    assert_string_equal(r.out, "2,1: yes 0.7311\n");
    run_cmd(&r, "/usr/bin/python3 -c \"import numpy; d = dict(numpy.load('%s')); "
                "d['meta.rescale'] = numpy.float32(0.5); numpy.savez('%s', **d)\"", w, other);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s predict --weights %s 2,1", t, other);
    assert_int_equal(r.status, 1);
    char want_error[600];
    snprintf(want_error, sizeof want_error, "%s: error: the weights were trained on inputs "
             "rescaled by 0.5 ('meta.rescale'), but model 'bin2' rescales by 1\n", other);
    assert_string_equal(r.out, want_error);
}

static void test_tables(void **state)
{
    (void)state;
    const char *t = trainer("bin2", 1);
    char w[300], want[1200];
    snprintf(w, sizeof w, "%s", in_scratch("bin2.npz"));
    RunResult r;
    /* The label column (the last, as in a training CSV) is ignored when present. */
    const char *files[] = {"labelled.csv", "bare.csv"};
    write_text(in_scratch(files[0]), "2,1,0\n1,3,1\n");
    write_text(in_scratch(files[1]), "2,1\n1,3\n");
    for (int i = 0; i < 2; i++) {
        const char *path = in_scratch(files[i]);
        run_cmd(&r, "%s predict --weights %s %s", t, w, path);
        assert_int_equal(r.status, 0);
        snprintf(want, sizeof want, "%s[0]: yes 0.7311\n%s[1]: no 0.8808\n", path, path);
        assert_string_equal(r.out, want);
    }
    write_text(in_scratch("wide.csv"), "2,1,0,5\n");
    run_cmd(&r, "%s predict --weights %s %s", t, w, in_scratch("wide.csv"));
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof want, "%s: error: 4 columns, but model 'bin2' takes 2 numbers per "
                                "input (and a label column, which may be left out)\n",
             in_scratch("wide.csv"));
    assert_string_equal(r.out, want);

    run_cmd(&r, "%s predict --weights %s 1,2,3", t, w);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "1,2,3: error: 3 numbers, but model 'bin2' takes 2 per input: "
                               "write each input as one argument, its numbers separated by "
                               "commas\n");
    /* Two bare numbers are two inputs of one number each, not one of two. */
    run_cmd(&r, "%s predict --weights %s 2 1", t, w);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "2: error: 1 number, but model 'bin2' takes 2 per input");
}

static void test_usage(void **state)
{
    (void)state;
    const char *t = trainer("bin2", 1);
    RunResult r;
    run_cmd(&r, "%s train --epoch 3", t);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "bin2: error: unknown option '--epoch'; did you mean '--epochs'?\n"
                               "try 'bin2 train --help'\n");
    run_cmd(&r, "%s trian", t);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "bin2: error: unknown command 'trian'; did you mean 'train'?\n"
                               "try 'bin2 --help'\n");
    run_cmd(&r, "%s summary --epochs 3", t);
    assert_int_equal(r.status, 2);
    assert_string_equal(r.out, "bin2: error: summary does not take --epochs (an option of train)\n"
                               "try 'bin2 summary --help'\n");
    run_cmd(&r, "%s predict --format=xml", t);
    assert_int_equal(r.status, 2);
    assert_output_contains(&r, "--format is text, csv or json, not 'xml'");

    run_cmd(&r, "%s fit --epochs 1 --quiet", t);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "");

    run_cmd(&r, "%s --help", t);
    assert_int_equal(r.status, 0);
    static const char *const options[] = {
        "--epochs N", "--batch-size N", "--learning-rate X", "--seed N", "--threads N",
        "--data DIR", "--limit N", "--no-shuffle", "--save W.npz", "--resume W.npz",
        "--history H.csv", "--quiet", "--weights W.npz", "--show N", "--confusion",
        "--npy X.npy", "--out PATH", "--input IMAGE", "--all", "--format F"};
    for (size_t k = 0; k < sizeof options / sizeof *options; k++)
        assert_output_contains(&r, options[k]);
    /* The defaults are the model file's. */
    assert_output_contains(&r, "default: 2 (fit: batch_size)");
    run_cmd(&r, "%s evaluate --help", t);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "--confusion");
    assert_null(strstr(r.out, "--epochs"));
}

/* BCE over the validation set by hand: -(ln s(1) + ln s(2) + ln s(-1) +
 * ln s(-3) + ln s(-1)) / 5 = (0.313262 + 0.126928 + 1.313262 + 3.048587 +
 * 1.313262) / 5 = 1.223060; the class is right for samples 0 and 1 only. */
static void test_evaluate(void **state)
{
    (void)state;
    const char *t = trainer("bin2", 1), *w = in_scratch("bin2.npz");
    RunResult r;
    run_cmd(&r, "%s evaluate --weights %s --show 2 --confusion", t, w);
    assert_int_equal(r.status, 0);
    const char *first = "no test data: evaluating on the validation data (data: validation)\n"
                        "3/3 [==============================] - ";
    assert_int_equal(strncmp(r.out, first, strlen(first)), 0);
    const char *rest = strstr(r.out, "/step - loss: 1.2231 - accuracy: 0.4000\n");
    assert_non_null(rest);
    assert_string_equal(strchr(rest, '\n') + 1,
                        "test sample 0: predicted 1 yes (0.7311), true 1 yes\n"
                        "test sample 1: predicted 0 no (0.8808), true 0 no\n"
                        "confusion matrix (rows: true class, columns: predicted class):\n"
                        "     no  yes\n"
                        "no    1    2\n"
                        "yes   1    1\n");

    /* Without class names: the index alone, no double or trailing spaces. */
    const char *u = trainer("bin2u", 0);
    run_cmd(&r, "%s evaluate --weights %s --show 1 --quiet --confusion", u, in_scratch("bin2u.npz"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "no test data: evaluating on the validation data (data: validation)\n"
                               "loss: 1.2231 - accuracy: 0.4000\n"
                               "test sample 0: predicted 1 (0.7311), true 1\n"
                               "confusion matrix (rows: true class, columns: predicted class):\n"
                               "   0  1\n"
                               "0  1  2\n"
                               "1  1  1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records),
        cmocka_unit_test(test_tables),
        cmocka_unit_test(test_usage),
        cmocka_unit_test(test_evaluate),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
