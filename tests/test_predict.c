/* test_predict.c - `predict` on image files, as the course's upload cell uses
 * it: a trainer for a tiny image model is built with `make trainer` from a
 * class-folder tree written here, trained, and asked about new files.
 *
 *   sigmoid   `PATH: CLASS P`, one line per file, CLASS the second class
 *             folder exactly when the unit's output p is above 0.5, and P
 *             the probability of CLASS: p, or 1 - p for the first class;
 *             --all adds ` [p]`
 *   folder    `predict DIR` walks it as os.walk does, names sorted
 *   softmax   `PATH: NAME P [p0 p1]` with --all
 *   names     from the weight file when the class folders are gone; class
 *             indices when the file has no meta.class_names either
 *   errors    a file that is not an image: exit 1, naming it
 *
 * Every printed probability is checked against numpy's forward pass of the
 * saved weights over the images' pixels (kept beside each PNG as raw bytes),
 * resized by PIL's NEAREST rule where the size differs. Trainers are built
 * with the SAN of the environment, so `make test SAN=1` checks sanitised ones.
 */
#include "testutil.h"

#include <math.h>
#include <stdbool.h>

#include <stb_image_write.h>





static void make_dir(const char *name)
{
    assert_int_equal(mkdir(in_scratch(name), 0755), 0);
}

/* ---- the images ------------------------------------------------------------------ */

/* An h x w RGB PNG, reddish (blue = 0) or bluish (blue = 1), with noise from
 * a hash of seed; beside it NAME.raw holds h, w and the same pixels for numpy. */
static void make_image(const char *name, int h, int w, int blue, unsigned seed)
{
    uint8_t px[16 * 16 * 3];
    assert_true(h * w <= 16 * 16);
    for (int i = 0; i < h * w; i++) {
        unsigned noise = ((unsigned)i * 2654435761u + seed * 97u) >> 24;   /* 0..255 */
        uint8_t strong = (uint8_t)(170 + noise % 80), weak = (uint8_t)(noise % 60);
        px[i * 3 + 0] = blue ? weak : strong;
        px[i * 3 + 1] = (uint8_t)(noise % 90);
        px[i * 3 + 2] = blue ? strong : weak;
    }
    assert_true(stbi_write_png(in_scratch(name), w, h, 3, px, w * 3));
    char raw[300];
    snprintf(raw, sizeof raw, "%s.raw", in_scratch(name));
    FILE *f = fopen(raw, "wb");
    assert_non_null(f);
    uint8_t size[2] = {(uint8_t)h, (uint8_t)w};
    assert_int_equal(fwrite(size, 1, 2, f), 2);
    assert_int_equal(fwrite(px, 3, (size_t)(h * w), f), (size_t)(h * w));
    assert_int_equal(fclose(f), 0);
}

/* train/cats (red) and train/dogs (blue), 4 each; two new files a.png (red)
 * and b.png (blue); a folder new/ whose walk order is B.png, a.png, z.png
 * (strcmp order, capitals first), then sub/m.png, a 12 x 16 image that
 * predict resizes; its notes.txt is not an image and is not walked. */
static void make_files(void)
{
    make_dir("train");
    make_dir("train/cats");
    make_dir("train/dogs");
    for (int i = 0; i < 4; i++) {
        char name[64];
        snprintf(name, sizeof name, "train/cats/c%d.png", i);
        make_image(name, 8, 8, 0, 10u + (unsigned)i);
        snprintf(name, sizeof name, "train/dogs/d%d.png", i);
        make_image(name, 8, 8, 1, 20u + (unsigned)i);
    }
    make_image("a.png", 8, 8, 0, 31);
    make_image("b.png", 8, 8, 1, 32);
    make_dir("new");
    make_dir("new/sub");
    make_image("new/z.png", 8, 8, 1, 41);
    make_image("new/a.png", 8, 8, 0, 42);
    make_image("new/B.png", 8, 8, 1, 43);
    make_image("new/sub/m.png", 12, 16, 0, 44);
    write_text(in_scratch("new/notes.txt"), "not an image\n");
    write_text(in_scratch("notes.txt"), "not an image either\n");
}

/* ---- the models -------------------------------------------------------------------- */

static const char *const model_text =
    "name: %s\n"
    "input_shape: [8, 8, 3]\n"
    "layers:\n"
    "  - Conv2D: {filters: 2, kernel_size: 3}\n"
    "  - Flatten\n"
    "  - Dense: {units: %d, activation: %s}\n"
    "compile:\n"
    "  optimizer: {name: adam, learning_rate: 0.01}\n"
    "  loss: %s\n"
    "  metrics: [accuracy]\n"
    "data:\n"
    "  train: {format: image_dir, path: train}\n"
    "  rescale: 1/255\n"
    "fit:\n"
    "  epochs: 1\n"
    "  batch_size: 4\n"
    "  seed: 3\n";

/* Writes scratch/NAME.yaml and builds scratch/NAME with `make trainer`;
 * returns its path (one trainer at a time). */
static const char *build(const char *name, int units, const char *act, const char *loss)
{
    static char trainer[256];
    char yaml[256], text[2048];
    snprintf(yaml, sizeof yaml, "%s/%s.yaml", scratch, name);
    snprintf(text, sizeof text, model_text, name, units, act, loss);
    write_text(yaml, text);
    RunResult r;
    run_cmd(&r, "make --no-print-directory trainer MODEL=%s OUT=%s SAN=%s", yaml, scratch, san());
    if (r.status != 0)
        fail_msg("make trainer for %s failed:\n%s", yaml, r.out);
    snprintf(trainer, sizeof trainer, "%s", in_scratch(name));
    assert_true(file_exists(trainer));
    return trainer;
}

/* Trains 1 epoch (more with `extra` options) and saves scratch/W. */
static void train(const char *trainer, const char *w, const char *extra)
{
    RunResult r;
    run_cmd(&r, "%s train --save %s %s", trainer, in_scratch(w), extra);
    if (r.status != 0)
        fail_msg("training failed:\n%s", r.out);
    /* flow_from_directory's line comes first, as Keras prints it. */
    if (strncmp(r.out, "Found 8 images belonging to 2 classes.\n", 39) != 0)
        fail_msg("training did not start with the Found line:\n%s", r.out);
}

/* ---- numpy's forward pass ------------------------------------------------------------ */

static const char *const reference_py =
    "import sys, numpy as np\n"
    "w = np.load(sys.argv[1])\n"
    "K, b = w['conv2d.kernel'].astype(np.float64), w['conv2d.bias'].astype(np.float64)\n"
    "D, db = w['dense.kernel'].astype(np.float64), w['dense.bias'].astype(np.float64)\n"
    "for path in sys.argv[3:]:\n"
    "    a = np.fromfile(path + '.raw', np.uint8)\n"
    "    h, wd = int(a[0]), int(a[1])\n"
    "    img = a[2:].reshape(h, wd, 3)\n"
    "    ys = np.minimum(np.floor((np.arange(8) + 0.5) * h / 8).astype(int), h - 1)\n"
    "    xs = np.minimum(np.floor((np.arange(8) + 0.5) * wd / 8).astype(int), wd - 1)\n"
    "    x = img[np.ix_(ys, xs)].astype(np.float64) * float(np.float32(1 / 255))\n"
    "    out = np.zeros((6, 6, 2)) + b\n"
    "    for i in range(3):\n"
    "        for j in range(3):\n"
    "            out += np.einsum('yxc,cf->yxf', x[i:i + 6, j:j + 6], K[i, j])\n"
    "    z = out.reshape(-1) @ D + db\n"
    "    if sys.argv[2] == 'softmax':\n"
    "        p = np.exp(z - z.max()); p /= p.sum()\n"
    "    else:\n"
    "        p = 1 / (1 + np.exp(-z))\n"
    "    print(' '.join('%.8f' % v for v in p))\n";

/* numpy's probabilities for each of the n files, `units` per file. */
static void reference(const char *w, const char *act, const char *const *files, int n, int units,
                      double *probs)
{
    write_text(in_scratch("reference.py"), reference_py);
    char cmd[4096];
    int len = snprintf(cmd, sizeof cmd, "/usr/bin/python3 %s %s %s", in_scratch("reference.py"), in_scratch(w), act);
    for (int i = 0; i < n; i++)
        len += snprintf(cmd + len, sizeof cmd - (size_t)len, " %s", in_scratch(files[i]));
    RunResult r;
    run_cmd(&r, "%s", cmd);
    if (r.status != 0)
        fail_msg("numpy's reference failed:\n%s", r.out);
    const char *p = r.out;
    for (int i = 0; i < n * units; i++) {
        char *end;
        probs[i] = strtod(p, &end);
        assert_true(end != p);
        p = end;
    }
}

/* ---- reading predict's lines ------------------------------------------------------------ */

/* The next line of *text into line (without its newline); false at the end. */
static bool next_line(const char **text, char *line, size_t len)
{
    if (!**text)
        return false;
    const char *nl = strchr(*text, '\n');
    assert_non_null(nl);                 /* every line ends with a newline */
    size_t n = (size_t)(nl - *text);
    assert_true(n < len);
    memcpy(line, *text, n);
    line[n] = '\0';
    *text = nl + 1;
    return true;
}

static void assert_close(double printed, double want, const char *line)
{
    if (!(fabs(printed - want) <= 1e-4))
        fail_msg("'%s': numpy gives %.6f", line, want);
}

/* One sigmoid line of predict --all: exactly `PATH: CLASS %.4f [%.4f]`, the
 * unit's output numpy's within rounding, CLASS dogs above 0.5 and cats
 * otherwise, and the first number the probability of CLASS. Returns the class. */
static const char *check_sigmoid_line(const char *line, const char *path, double want)
{
    char rebuilt[512], cls[16];
    double prob, p;
    int prefix = snprintf(rebuilt, sizeof rebuilt, "%s: ", path);
    if (strncmp(line, rebuilt, (size_t)prefix) != 0 ||
        sscanf(line + prefix, "%15s %lf [%lf]", cls, &prob, &p) != 3)
        fail_msg("'%s' is not '%sCLASS P [p]'", line, rebuilt);
    assert_close(p, want, line);
    if (fabs(want - 0.5) >= 1e-4)        /* else too close to call from the digits */
        assert_string_equal(cls, want > 0.5 ? "dogs" : "cats");
    assert_close(prob, strcmp(cls, "dogs") == 0 ? want : 1 - want, line);
    snprintf(rebuilt, sizeof rebuilt, "%s: %s %.4f [%.4f]", path, cls, prob, p);
    assert_string_equal(line, rebuilt);
    return strcmp(cls, "dogs") == 0 ? "dogs" : "cats";
}

/* Runs predict on the files (or folder) and checks one line per expected
 * file, in order, against numpy; counts the lines saying dogs. */
static int check_sigmoid_predict(const char *trainer, const char *w, const char *args,
                                 const char *const *files, int n)
{
    RunResult r;
    run_cmd(&r, "%s predict --all --weights %s %s 2>%s", trainer, in_scratch(w), args,
            in_scratch("stderr.txt"));
    if (r.status != 0)
        fail_msg("predict failed:\n%s", r.out);
    double want[8];
    reference(w, "sigmoid", files, n, 1, want);
    const char *text = r.out;
    char line[512];
    int dogs = 0;
    for (int i = 0; i < n; i++) {
        if (!next_line(&text, line, sizeof line))
            fail_msg("%d lines for %d files:\n%s", i, n, r.out);
        dogs += strcmp(check_sigmoid_line(line, in_scratch(files[i]), want[i]), "dogs") == 0;
    }
    if (*text)
        fail_msg("more lines than files:\n%s", r.out);
    return dogs;
}

/* ---- the tests ----------------------------------------------------------------------------- */

static void test_sigmoid_files_and_folders(void **state)
{
    (void)state;
    make_files();
    const char *t = build("pets", 1, "sigmoid", "binary_crossentropy");
    train(t, "w1.npz", "");

    const char *two[] = {"a.png", "b.png"};
    char args[600];
    snprintf(args, sizeof args, "%s %s", in_scratch("a.png"), in_scratch("b.png"));
    check_sigmoid_predict(t, "w1.npz", args, two, 2);

    /* A folder: os.walk's order, names sorted by strcmp, sub-folders after. */
    const char *walked[] = {"new/B.png", "new/a.png", "new/z.png", "new/sub/m.png"};
    check_sigmoid_predict(t, "w1.npz", in_scratch("new"), walked, 4);
    /* m.png is 12 x 16: resized, and said so, once, on stderr. */
    RunResult note;
    run_cmd(&note, "cat %s", in_scratch("stderr.txt"));
    char want_note[600];
    snprintf(want_note, sizeof want_note, "%s: note: resized from 12x16 to 8x8, the model's "
                                          "input (said once per run)\n", in_scratch("new/sub/m.png"));
    assert_string_equal(note.out, want_note);
    run_cmd(&note, "%s predict --weights %s %s %s 2>&1 >/dev/null", t, in_scratch("w1.npz"),
            in_scratch("new/sub/m.png"), in_scratch("new/sub/m.png"));
    assert_string_equal(note.out, want_note);

    /* Trained on: the red files are cats and the blue ones dogs, so both
     * branches of the class rule show. */
    train(t, "w30.npz", "--epochs 30");
    const char *mixed[] = {"a.png", "b.png", "new/B.png", "new/a.png", "new/z.png", "new/sub/m.png"};
    snprintf(args, sizeof args, "%s %s %s", in_scratch("a.png"), in_scratch("b.png"), in_scratch("new"));
    int dogs = check_sigmoid_predict(t, "w30.npz", args, mixed, 6);
    assert_int_equal(dogs, 3);
    /* Without --all: the same lines without the vector. */
    RunResult r, all;
    run_cmd(&r, "%s predict --weights %s %s %s", t, in_scratch("w30.npz"), in_scratch("a.png"), in_scratch("b.png"));
    run_cmd(&all, "%s predict --all --weights %s %s %s", t, in_scratch("w30.npz"), in_scratch("a.png"), in_scratch("b.png"));
    for (char *open = strchr(all.out, '['); open; open = strchr(open, '[')) {
        char *close = strchr(open, ']');
        memmove(open - 1, close + 1, strlen(close + 1) + 1);
    }
    assert_string_equal(r.out, all.out);
}

static void test_not_an_image(void **state)
{
    (void)state;
    make_files();
    const char *t = build("pets", 1, "sigmoid", "binary_crossentropy");
    train(t, "w.npz", "");
    RunResult r;
    run_cmd(&r, "%s predict --weights %s %s %s", t, in_scratch("w.npz"), in_scratch("a.png"), in_scratch("notes.txt"));
    assert_int_equal(r.status, 1);
    char want[400];
    snprintf(want, sizeof want, "%s: error: cannot decode image", in_scratch("notes.txt"));
    assert_output_contains(&r, want);
    run_cmd(&r, "%s predict --weights %s %s", t, in_scratch("w.npz"), in_scratch("missing.png"));
    assert_int_equal(r.status, 1);
    snprintf(want, sizeof want, "%s: error: ", in_scratch("missing.png"));
    assert_output_contains(&r, want);
}

/* Without the training folder the class names come from the weight file;
 * from a file without meta.class_names (one numpy wrote), the class index
 * shows, and nothing is said to be an error. */
static void test_without_the_class_folders(void **state)
{
    (void)state;
    make_files();
    const char *t = build("pets", 1, "sigmoid", "binary_crossentropy");
    train(t, "w.npz", "--epochs 30");
    RunResult with, r;
    run_cmd(&with, "%s predict --weights %s %s %s", t, in_scratch("w.npz"), in_scratch("a.png"), in_scratch("b.png"));
    assert_int_equal(rename(in_scratch("train"), in_scratch("elsewhere")), 0);
    run_cmd(&r, "%s predict --weights %s %s %s", t, in_scratch("w.npz"), in_scratch("a.png"), in_scratch("b.png"));
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, with.out);
    char want[800];
    double p, q;
    assert_int_equal(sscanf(r.out, "%*s cats %lf", &p), 1);
    assert_int_equal(sscanf(strchr(r.out, '\n') + 1, "%*s dogs %lf", &q), 1);

    run_cmd(&r, "/usr/bin/python3 -c \"import numpy; d = dict(numpy.load('%s')); "
                "del d['meta.class_names']; numpy.savez('%s', **d)\"", in_scratch("w.npz"),
            in_scratch("bare.npz"));
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s predict --weights %s %s %s", t, in_scratch("bare.npz"), in_scratch("a.png"), in_scratch("b.png"));
    assert_int_equal(r.status, 0);
    snprintf(want, sizeof want, "%s: 0 %.4f\n%s: 1 %.4f\n", in_scratch("a.png"), p, in_scratch("b.png"), q);
    assert_string_equal(r.out, want);
}

static void test_softmax(void **state)
{
    (void)state;
    make_files();
    const char *t = build("pets2", 2, "softmax", "sparse_categorical_crossentropy");
    train(t, "w.npz", "");
    const char *files[] = {"a.png", "b.png", "new/sub/m.png"};
    RunResult r;
    run_cmd(&r, "%s predict --all --weights %s %s %s %s 2>/dev/null", t, in_scratch("w.npz"), in_scratch(files[0]), in_scratch(files[1]),
            in_scratch(files[2]));
    if (r.status != 0)
        fail_msg("predict failed:\n%s", r.out);
    double want[6];
    reference("w.npz", "softmax", files, 3, 2, want);
    const char *text = r.out;
    char line[512];
    static const char *const names[] = {"cats", "dogs"};
    for (int i = 0; i < 3; i++) {
        assert_true(next_line(&text, line, sizeof line));
        char prefix[300];
        int len = snprintf(prefix, sizeof prefix, "%s: ", in_scratch(files[i]));
        double p0, p1, prob;
        char name[16];
        assert_int_equal(strncmp(line, prefix, (size_t)len), 0);
        assert_int_equal(sscanf(line + len, "%15s %lf [%lf %lf]", name, &prob, &p0, &p1), 4);
        assert_close(p0, want[2 * i], line);
        assert_close(p1, want[2 * i + 1], line);
        int k = want[2 * i + 1] > want[2 * i];
        assert_close(prob, want[2 * i + k], line);
        char rebuilt[512];
        snprintf(rebuilt, sizeof rebuilt, "%s%s %.4f [%.4f %.4f]", prefix, names[k], prob, p0, p1);
        assert_string_equal(line, rebuilt);
    }
    assert_string_equal(text, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sigmoid_files_and_folders, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_not_an_image, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_without_the_class_folders, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_softmax, scratch_setup, scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
