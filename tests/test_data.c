/* test_data.c - the data loaders and data sets: IDX (raw and gzip), CSV,
 * batching, validation_split, label checks, and nn_load_source's checks of the
 * data against a model. Every file is written here, byte by byte, so the
 * expected values are known exactly; the real Fashion-MNIST is loaded too
 * when it is installed. */
#include "testutil.h"

#include <zlib.h>

#include "rt.h"

/* scratch/name written into buf (256 bytes), for paths a test keeps. */
static const char *scratch_path(char *buf, const char *name)
{
    snprintf(buf, 256, "%s", in_scratch(name));
    return buf;
}

/* ---- IDX files ----------------------------------------------------------------------- */

static void write_raw(const char *path, const uint8_t *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const uint8_t *data, size_t len)
{
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, data, (unsigned)len), (int)len);
    assert_int_equal(gzclose(f), Z_OK);
}

/* An IDX file in buf: magic 00 00 type rank, big-endian dims, then data. */
static size_t make_idx(uint8_t *buf, int type, int rank, const uint32_t *dims, const uint8_t *data,
                       size_t len)
{
    uint8_t *p = buf;
    *p++ = 0;
    *p++ = 0;
    *p++ = (uint8_t)type;
    *p++ = (uint8_t)rank;
    for (int i = 0; i < rank; i++) {
        *p++ = (uint8_t)(dims[i] >> 24);
        *p++ = (uint8_t)(dims[i] >> 16);
        *p++ = (uint8_t)(dims[i] >> 8);
        *p++ = (uint8_t)dims[i];
    }
    memcpy(p, data, len);
    return (size_t)(p - buf) + len;
}

/* Three 2x3 images whose pixel k of image i is 40*i + k + 1, and labels 2, 0, 1. */
static const uint8_t PIXELS[18] = {1, 2, 3, 4, 5, 6, 41, 42, 43, 44, 45, 46, 81, 82, 83, 84, 85, 86};
static const uint8_t LABELS[3] = {2, 0, 1};

static void write_small_idx(const char *images, const char *labels, int gz)
{
    uint8_t buf[256];
    uint32_t idims[3] = {3, 2, 3}, ldims[1] = {3};
    size_t n = make_idx(buf, 0x08, 3, idims, PIXELS, sizeof PIXELS);
    (gz ? write_gz : write_raw)(images, buf, n);
    n = make_idx(buf, 0x08, 1, ldims, LABELS, sizeof LABELS);
    (gz ? write_gz : write_raw)(labels, buf, n);
}

static void check_small_idx(const nn_dataset *d, const char *labels_path)
{
    assert_int_equal(d->n, 3);
    assert_int_equal(d->h, 2);
    assert_int_equal(d->w, 3);
    assert_int_equal(d->c, 1);
    assert_int_equal(d->sample_size, 6);
    assert_non_null(d->bytes);
    assert_null(d->floats);
    assert_memory_equal(d->bytes, PIXELS, sizeof PIXELS);
    assert_int_equal(d->label_size, 1);
    for (int i = 0; i < 3; i++)
        assert_true(d->labels[i] == (float)LABELS[i]);
    assert_int_equal(d->n_classes, 3);
    assert_string_equal(d->origin, labels_path);
}

static void test_idx_raw_and_gzip(void **state)
{
    (void)state;
    char images[256], labels[256];
    for (int gz = 0; gz <= 1; gz++) {
        scratch_path(images, gz ? "img.gz" : "img.idx");
        scratch_path(labels, gz ? "lab.gz" : "lab.idx");
        write_small_idx(images, labels, gz);
        nn_dataset d;
        assert_int_equal(nn_load_idx(images, labels, &d), 0);
        check_small_idx(&d, labels);
        nn_dataset_free(&d);
        assert_null(d.bytes);
    }
}

/* Writes an image file from a header and data, and expects nn_load_idx to
 * refuse it with a message containing `part`. */
static void expect_bad_images(const uint8_t *file, size_t len, int gz, const char *part)
{
    char images[256], labels[256];
    uint8_t buf[64];
    uint32_t ldims[1] = {3};
    scratch_path(images, "bad-img");
    scratch_path(labels, "good-lab");
    (gz ? write_gz : write_raw)(images, file, len);
    write_raw(labels, buf, make_idx(buf, 0x08, 1, ldims, LABELS, sizeof LABELS));
    nn_dataset d;
    memset(&d, 0x55, sizeof d);
    capture_stderr();
    int rc = nn_load_idx(images, labels, &d);
    const char *msg = captured();
    assert_int_equal(rc, -1);
    assert_null(d.bytes);
    assert_null(d.labels);
    assert_contains(msg, images);
    assert_contains(msg, part);
}

static void test_idx_bad_files(void **state)
{
    (void)state;
    uint8_t buf[256], big[64];
    uint32_t dims[3] = {3, 2, 3};
    size_t n = make_idx(buf, 0x08, 3, dims, PIXELS, sizeof PIXELS);

    expect_bad_images(buf, n - 1, 0, "truncated: expected 18 bytes of image data, got 17");
    expect_bad_images(buf, n - 1, 1, "truncated: expected 18 bytes of image data, got 17");
    memcpy(big, buf, n);
    big[n] = 0;
    expect_bad_images(big, n + 1, 0, "1 trailing byte after the 18 bytes");
    expect_bad_images(buf, 3, 0, "truncated");
    expect_bad_images(buf, 9, 0, "truncated");
    expect_bad_images(buf, 0, 0, "truncated");

    memcpy(big, buf, n);
    big[0] = 0x1f;                     /* magic 0x1f000803 */
    expect_bad_images(big, n, 0, "not an IDX file");
    memcpy(big, buf, n);
    big[2] = 0x0D;                     /* floats */
    expect_bad_images(big, n, 0, "0x0d (float) is not supported");
    /* A labels file given as images: 1 dimension, not 3. */
    uint32_t one[1] = {18};
    expect_bad_images(big, make_idx(big, 0x08, 1, one, PIXELS, 18), 0, "has 1");
    expect_bad_images(big, make_idx(big, 0x08, 0, NULL, PIXELS, 0), 0, "has 0");

    uint32_t zero[3] = {0, 2, 3};
    expect_bad_images(big, make_idx(big, 0x08, 3, zero, PIXELS, 0), 0, "dimension 1 is 0");
    /* Dimensions whose product overflows 32 and 64 bits: refused before any
     * allocation, not wrapped around to a small number. */
    uint32_t huge[3] = {0x7fffffff, 0x7fffffff, 0x7fffffff};
    expect_bad_images(big, make_idx(big, 0x08, 3, huge, PIXELS, 18), 0, "too large");
    uint32_t wraps[3] = {1, 0x10000, 0x10000};   /* 2^32: 0 in 32 bits */
    expect_bad_images(big, make_idx(big, 0x08, 3, wraps, PIXELS, 18), 0, "too large");
    uint32_t over[3] = {0xffffffffu, 28, 28};
    expect_bad_images(big, make_idx(big, 0x08, 3, over, PIXELS, 18), 0, "dimension 1 is 4294967295");
    /* Claims 1.6 TB; holds 18 bytes: memory follows the data, not the claim. */
    uint32_t claims[3] = {0x7fffffff, 28, 28};
    expect_bad_images(big, make_idx(big, 0x08, 3, claims, PIXELS, 18), 0, "got 18");
}

static void test_idx_mismatched_counts(void **state)
{
    (void)state;
    char images[256], labels[256];
    uint8_t buf[64];
    uint32_t idims[3] = {3, 2, 3}, ldims[1] = {2};
    scratch_path(images, "three-img");
    scratch_path(labels, "two-lab");
    write_raw(images, buf, make_idx(buf, 0x08, 3, idims, PIXELS, sizeof PIXELS));
    write_raw(labels, buf, make_idx(buf, 0x08, 1, ldims, LABELS, 2));
    nn_dataset d;
    capture_stderr();
    int rc = nn_load_idx(images, labels, &d);
    const char *msg = captured();
    assert_int_equal(rc, -1);
    assert_contains(msg, images);
    assert_contains(msg, labels);
    assert_contains(msg, "3 images");
    assert_contains(msg, "2 labels");

    /* A missing file. */
    scratch_path(labels, "no-such-file");
    capture_stderr();
    rc = nn_load_idx(images, labels, &d);
    assert_contains(captured(), "cannot open");
    assert_int_equal(rc, -1);
}

static void test_idx_cut_gzip(void **state)
{
    (void)state;
    char images[256], labels[256], cut[256];
    scratch_path(images, "img-cut-src.gz");
    scratch_path(labels, "lab-cut.gz");
    uint8_t buf[4096], pix[2000];
    for (int i = 0; i < 2000; i++)
        pix[i] = (uint8_t)(i * 7919 % 251);   /* varied: a stream long enough to cut */
    uint32_t dims[3] = {2, 25, 40};
    write_gz(images, buf, make_idx(buf, 0x08, 3, dims, pix, sizeof pix));
    FILE *f = fopen(images, "rb");
    assert_non_null(f);
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    assert_true(n > 200);
    write_raw(scratch_path(cut, "img-cut.gz"), buf, n / 2);
    uint32_t ldims[1] = {2};
    write_gz(labels, buf, make_idx(buf, 0x08, 1, ldims, LABELS, 2));
    nn_dataset d;
    capture_stderr();
    int rc = nn_load_idx(cut, labels, &d);
    captured();
    assert_int_equal(rc, -1);
    assert_null(d.bytes);
}

/* ---- CSV ---------------------------------------------------------------------------------- */

/* nn_load_csv with the label column by index, labels required. */
static int load_csv(const char *path, int label_column, int header, nn_dataset *d)
{
    nn_source fmt = {.format = NN_DATA_CSV, .label_column = label_column, .header = header};
    return nn_load_csv(path, &fmt, 0, d);
}

static void test_csv_good(void **state)
{
    (void)state;
    char path[256];
    nn_dataset d;

    /* Header, CRLF, a blank line, the label first, no final newline. */
    write_text(scratch_path(path, "a.csv"), "y,a,b\r\n1,2,3\r\n\r\n 4 , 5.5,-6e1\r\n7,0x10,.25");
    assert_int_equal(load_csv(path, 0, 1, &d), 0);
    assert_int_equal(d.n, 3);
    assert_int_equal(d.h, 1);
    assert_int_equal(d.w, 1);
    assert_int_equal(d.c, 2);
    assert_int_equal(d.sample_size, 2);
    assert_null(d.bytes);
    const float x[] = {2, 3, 5.5f, -60, 16, 0.25f}, y[] = {1, 4, 7};
    assert_memory_equal(d.floats, x, sizeof x);
    assert_memory_equal(d.labels, y, sizeof y);
    assert_int_equal(d.label_size, 1);
    assert_string_equal(d.origin, path);
    nn_dataset_free(&d);

    /* No header, -1: the last column; a final newline. */
    write_text(path, "1,2,3\n4,5,6\n");
    assert_int_equal(load_csv(path, -1, 0, &d), 0);
    const float x2[] = {1, 2, 4, 5}, y2[] = {3, 6};
    assert_int_equal(d.n, 2);
    assert_memory_equal(d.floats, x2, sizeof x2);
    assert_memory_equal(d.labels, y2, sizeof y2);
    nn_dataset_free(&d);

    /* A middle column. */
    assert_int_equal(load_csv(path, 1, 0, &d), 0);
    const float x3[] = {1, 3, 4, 6}, y3[] = {2, 5};
    assert_memory_equal(d.floats, x3, sizeof x3);
    assert_memory_equal(d.labels, y3, sizeof y3);
    nn_dataset_free(&d);
}

/* Writes text as a CSV and expects nn_load_csv to refuse it as fmt
 * describes it, printing `part` after the file's name. */
static void expect_bad_csv_as(const char *text, const nn_source *fmt, const char *part)
{
    char path[256], want[512];
    write_text(scratch_path(path, "bad.csv"), text);
    nn_dataset d;
    capture_stderr();
    int rc = nn_load_csv(path, fmt, 0, &d);
    const char *msg = captured();
    assert_int_equal(rc, -1);
    assert_null(d.floats);
    assert_null(d.labels);
    snprintf(want, sizeof want, "%s%s", path, part);
    assert_contains(msg, want);
}

static void expect_bad_csv(const char *text, int label_column, int header, const char *part)
{
    nn_source fmt = {.format = NN_DATA_CSV, .label_column = label_column, .header = header};
    expect_bad_csv_as(text, &fmt, part);
}

static void test_csv_bad(void **state)
{
    (void)state;
    expect_bad_csv("1,2,3\n4,5,6\n7,8\n", -1, 0, ":3: error: 2 fields, but line 1 has 3");
    expect_bad_csv("a,b,c\n1,2,3\n\n4,5,6,7\n", -1, 1, ":4: error: 4 fields, but line 1 has 3");
    expect_bad_csv("1,2,3\r\n4,abc,6\r\n", -1, 0, ":2: error: column 2 'abc' is not a number");
    expect_bad_csv("x,y\n1,2\n", -1, 0, ":1: error: column 1 'x' is not a number (if the first "
                   "row holds column names, set header: true)");
    expect_bad_csv("1,2\n3,\n", -1, 0, ":2: error: column 2 '' is not a number");
    expect_bad_csv("1,2\nnan,3\n", -1, 0, ":2: error: column 1 'nan' is not a number");
    expect_bad_csv("1,2\n3,inf\n", -1, 0, ":2: error: column 2 'inf' is not a number");
    expect_bad_csv("1,2\n3,1e300\n", -1, 0, ":2: error: column 2 '1e300' is not a number");
    expect_bad_csv("1,2\n3,4x\n", -1, 0, ":2: error: column 2 '4x' is not a number");
    expect_bad_csv("1,2,3\n", 3, 0, ": error: label_column 3 is outside the 3 columns");
    expect_bad_csv("1,2,3\n", -2, 0, ": error: label_column -2 is outside");
    expect_bad_csv("", -1, 0, ": error: empty file");
    expect_bad_csv("\n \r\n\n", -1, 0, ": error: empty file");
    expect_bad_csv("a,b\n", -1, 1, ": error: no data rows");
    expect_bad_csv("1\n2\n", -1, 0, ": error: only one column");
}

/* Reads text as fmt says (labels optional for input_size > 0) and checks
 * the features and labels against the numbers in the text. */
static void expect_csv(const char *text, const nn_source *fmt, int input_size, int n,
                       const float *x, int features, const float *y)
{
    char path[256];
    write_text(scratch_path(path, "named.csv"), text);
    nn_dataset d;
    assert_int_equal(nn_load_csv(path, fmt, input_size, &d), 0);
    assert_int_equal(d.n, n);
    assert_int_equal(d.sample_size, features);
    assert_memory_equal(d.floats, x, (size_t)(n * features) * sizeof *x);
    if (y)
        assert_memory_equal(d.labels, y, (size_t)n * sizeof *y);
    else
        assert_null(d.labels);
    nn_dataset_free(&d);
}

/* pandas' way: a label column named in the header; a header found, never a
 * row dropped for one; the label optional where the caller says so. */
static void test_csv_header_and_names(void **state)
{
    (void)state;
    nn_source by_name = {.format = NN_DATA_CSV, .label_name = "y", .header = NN_HEADER_AUTO};
    nn_source last = {.format = NN_DATA_CSV, .label_column = -1, .header = NN_HEADER_AUTO};
    const float x1[] = {1, 2, 4, 5}, y1[] = {3, 6};
    expect_csv("a,b,y\n1,2,3\n4,5,6\n", &by_name, 0, 2, x1, 2, y1);
    /* A first row of numbers is data: both rows are kept. */
    expect_csv("1,2,3\n4,5,6\n", &last, 0, 2, x1, 2, y1);
    /* The name in the middle, quoted and padded as pandas may write it. */
    const float x2[] = {1, 3}, y2[] = {2};
    expect_csv("\"a\", \"y\" ,b\n1,2,3\n", &by_name, 0, 1, x2, 2, y2);
    /* As many columns as the input: no labels; one more: the last is the label. */
    const float x3[] = {1, 2, 3, 4}, y3[] = {2, 4}, x4[] = {1, 3};
    expect_csv("a,b\n1,2\n3,4\n", &last, 2, 2, x3, 2, NULL);
    expect_csv("a,b\n1,2\n3,4\n", &last, 1, 2, x4, 1, y3);

    nn_source header = {.format = NN_DATA_CSV, .label_column = -1, .header = 1};
    expect_bad_csv_as("1,2\n3,4\n", &header, ":1: error: header: true, but this first row "
                      "holds only numbers");
    expect_bad_csv_as("a,2,3\n1,2,3\n", &last, ":1: error: column 1 'a' is not a number (if "
                      "the first row holds column names, set header: true)");
    expect_bad_csv_as("a,b\n1,2\n3,x\n", &last, ":3: error: column 2 'x' is not a number\n");
    expect_bad_csv_as("1,2\n3,4\n", &by_name, ": error: label_column 'y' is a column name, but "
                      "the file has no header: line 1 holds numbers");
    expect_bad_csv_as("\na,b\n1,2\n", &by_name, ":2: error: no column named 'y' in the header 'a,b'");
}

/* ---- batches and splits ----------------------------------------------------------- */

static void test_batch_rescale_bit_exact(void **state)
{
    (void)state;
    /* Four samples of two pixels: {0, 1}, {7, 128}, {200, 254}, {255, 3}. */
    uint8_t bytes[8] = {0, 1, 7, 128, 200, 254, 255, 3};
    float labels[4] = {10, 11, 12, 13};
    nn_dataset d = {.n = 4, .h = 1, .w = 2, .c = 1, .sample_size = 2, .bytes = bytes,
                    .label_size = 1, .labels = labels};
    /* numpy: np.float32(v) * np.float32(1/255), as Keras's rescale computes it. */
    const float want[8] = {0x1.c1c1c4p-6f, 0x1.010102p-1f,    /* 7, 128 */
                           0.0f, 0x1.010102p-8f,              /* 0, 1 */
                           0x1.0p+0f, 0x1.818184p-7f,         /* 255, 3 */
                           0x1.919194p-1f, 0x1.fdfep-1f};     /* 200, 254 */
    int idx[4] = {1, 0, 3, 2};
    float x[8], y[4];
    nn_dataset_batch(&d, idx, 4, 1.0f / 255.0f, x, y);
    assert_memory_equal(x, want, sizeof want);
    const float want_y[4] = {11, 10, 13, 12};
    assert_memory_equal(y, want_y, sizeof want_y);

    /* No y wanted: y may be NULL. */
    float x2[2];
    nn_dataset_batch(&d, (int[]){3}, 1, 1.0f, x2, NULL);
    assert_true(x2[0] == 255.0f && x2[1] == 3.0f);

    /* Floats are scaled too (Keras's rescale applies to any input); no labels
     * leaves y as it was. */
    float floats[4] = {0.1f, 2.5f, -1, 4};
    nn_dataset f = {.n = 2, .h = 1, .w = 1, .c = 2, .sample_size = 2, .floats = floats};
    float y3[2] = {-7, -7};
    nn_dataset_batch(&f, (int[]){1, 0}, 2, 0.5f, x, y3);
    const float want3[4] = {-0.5f, 2, 0x1.99999ap-5f, 1.25f};
    assert_memory_equal(x, want3, sizeof want3);
    assert_true(y3[0] == -7 && y3[1] == -7);
    nn_dataset_batch(&f, (int[]){1}, 1, 1.0f / 255.0f, x, NULL);
    assert_true(x[0] == -0x1.010102p-8f);   /* numpy: np.float32(-1) * np.float32(1/255) */
    assert_true(x[1] == 0x1.010102p-6f);    /* 4 * float32(1/255): exact, a power of two */
}

static char *dup_str(const char *s)
{
    char *p = malloc(strlen(s) + 1);
    assert_non_null(p);
    return strcpy(p, s);
}

/* n samples of 3 bytes (sample i: 3i, 3i+1, 3i+2), label i, file "fI",
 * classes "cat" and "dog": everything a split must carry. */
static void make_owned(nn_dataset *d, int n)
{
    memset(d, 0, sizeof *d);
    d->n = n;
    d->h = 1;
    d->w = 3;
    d->c = 1;
    d->sample_size = 3;
    d->bytes = malloc((size_t)n * 3);
    d->labels = malloc((size_t)n * sizeof(float));
    d->files = malloc((size_t)n * sizeof(char *));
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 3; k++)
            d->bytes[3 * i + k] = (uint8_t)(3 * i + k);
        d->labels[i] = (float)i;
        char name[16];
        snprintf(name, sizeof name, "f%d", i);
        d->files[i] = dup_str(name);
    }
    d->label_size = 1;
    d->n_classes = 2;
    d->class_names = malloc(2 * sizeof(char *));
    d->class_names[0] = dup_str("cat");
    d->class_names[1] = dup_str("dog");
    d->origin = dup_str("somewhere");
}

static void check_split(int n, float fraction, int n_train)
{
    nn_dataset d, val;
    make_owned(&d, n);
    assert_int_equal(nn_dataset_split(&d, fraction, &val), 0);
    assert_int_equal(d.n, n_train);
    assert_int_equal(val.n, n - n_train);
    assert_int_equal(val.sample_size, 3);
    assert_int_equal(val.w, 3);
    for (int i = 0; i < val.n; i++) {
        int from = n_train + i;
        for (int k = 0; k < 3; k++)
            assert_int_equal(val.bytes[3 * i + k], (uint8_t)(3 * from + k));
        assert_true(val.labels[i] == (float)from);
        char name[16];
        snprintf(name, sizeof name, "f%d", from);
        assert_string_equal(val.files[i], name);
    }
    for (int i = 0; i < d.n; i++)            /* the head stays where it was */
        assert_true(d.labels[i] == (float)i && d.bytes[3 * i] == (uint8_t)(3 * i));
    assert_int_equal(val.n_classes, 2);
    assert_string_equal(val.class_names[1], "dog");
    assert_ptr_not_equal(val.class_names[1], d.class_names[1]);
    assert_string_equal(val.origin, "somewhere");
    nn_dataset_free(&d);                     /* ASan: nothing shared, nothing lost */
    nn_dataset_free(&val);
}

static void test_split(void **state)
{
    (void)state;
    /* Keras: split_at = floor(n * (1 - split)) with split the double the user
     * wrote; with 0.2f widened to a double these would be 7, 79 and 47999. */
    check_split(10, 0.2f, 8);
    check_split(100, 0.2f, 80);
    check_split(60000, 0.2f, 48000);
    check_split(10, 0.1f, 9);
    check_split(10, 0.3f, 7);
    check_split(3, 0.5f, 1);
    check_split(2, 0.2f, 1);
    check_split(10, 0.01f, 9);               /* floor(9.9) */
    check_split(5, 0.1f, 4);                 /* floor(4.5) */

    const float bad[] = {0.0f, 1.0f, -0.5f, 1.5f};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        nn_dataset d, val;
        make_owned(&d, 5);
        capture_stderr();
        int rc = nn_dataset_split(&d, bad[i], &val);
        assert_contains(captured(), "validation_split must be between 0 and 1");
        assert_int_equal(rc, -1);
        assert_int_equal(d.n, 5);
        assert_null(val.bytes);
        nn_dataset_free(&d);
    }
    nn_dataset d, val;
    make_owned(&d, 1);                       /* nothing left for one side */
    capture_stderr();
    int rc = nn_dataset_split(&d, 0.5f, &val);
    assert_contains(captured(), "somewhere: error: 1 samples are too few");
    assert_int_equal(rc, -1);
    nn_dataset_free(&d);
}

/* ---- labels ----------------------------------------------------------------------- */

static int check_labels(nn_loss_kind loss, int units, const float *labels, int n, int label_size,
                        const char *part)
{
    nn_model m = {.loss = loss, .output_size = units};
    nn_dataset d = {.n = n, .label_size = label_size, .labels = (float *)labels,
                    .origin = "train-labels-idx1-ubyte.gz"};
    if (!part)
        return nn_check_labels(&m, &d, "dense_1");
    capture_stderr();
    int rc = nn_check_labels(&m, &d, "dense_1");
    assert_contains(captured(), part);
    return rc;
}

static void test_check_labels(void **state)
{
    (void)state;
    const float good[] = {0, 4, 2, 3};
    assert_int_equal(check_labels(NN_LOSS_SPARSE_CE, 5, good, 4, 1, NULL), 0);
    assert_int_equal(check_labels(NN_LOSS_CATEGORICAL_CE, 5, good, 4, 1, NULL), 0);
    const float nine[] = {9, 0};
    assert_int_equal(check_labels(NN_LOSS_SPARSE_CE, 5, nine, 2, 1,
                                  "train-labels-idx1-ubyte.gz: error: label 9 of sample 0 is outside "
                                  "the 5 classes of the output layer 'dense_1' (units: 5)"), -1);
    const float five[] = {0, 1, 5};
    assert_int_equal(check_labels(NN_LOSS_CATEGORICAL_CE, 5, five, 3, 1, "label 5 of sample 2"), -1);
    const float neg[] = {-1};
    assert_int_equal(check_labels(NN_LOSS_SPARSE_CE, 5, neg, 1, 1, "label -1 of sample 0"), -1);
    const float half[] = {1, 2.5f};
    assert_int_equal(check_labels(NN_LOSS_SPARSE_CE, 5, half, 2, 1,
                                  "label 2.5 of sample 1 is not a class index"), -1);

    const float bin[] = {0, 1, 1, 0};
    assert_int_equal(check_labels(NN_LOSS_BINARY_CE, 1, bin, 4, 1, NULL), 0);
    const float notbin[] = {0, 1, 2};
    assert_int_equal(check_labels(NN_LOSS_BINARY_CE, 1, notbin, 3, 1, "label 2 of sample 2 is not 0 or 1"), -1);

    /* One-hot rows for categorical_crossentropy, targets for mse: one number per unit. */
    const float onehot[] = {0, 1, 0, 1, 0, 0};
    assert_int_equal(check_labels(NN_LOSS_CATEGORICAL_CE, 3, onehot, 2, 3, NULL), 0);
    assert_int_equal(check_labels(NN_LOSS_CATEGORICAL_CE, 2, onehot, 2, 3, "each label has 3 numbers"), -1);
    assert_int_equal(check_labels(NN_LOSS_SPARSE_CE, 3, onehot, 2, 3, "needs one class index"), -1);
    assert_int_equal(check_labels(NN_LOSS_MSE, 3, onehot, 2, 3, NULL), 0);
    assert_int_equal(check_labels(NN_LOSS_MSE, 1, onehot, 2, 3, "(units: 1)"), -1);
    const float any[] = {-3.5f, 1e6f};
    assert_int_equal(check_labels(NN_LOSS_MSE, 1, any, 2, 1, NULL), 0);

    /* A per-sample file, where the loader knows it, is what the message names. */
    nn_model m = {.loss = NN_LOSS_SPARSE_CE, .output_size = 2};
    char *files[2] = {"pics/a/1.png", "pics/c/2.png"};
    nn_dataset d = {.n = 2, .label_size = 1, .labels = (float[]){0, 2}, .files = files, .origin = "pics"};
    capture_stderr();
    assert_int_equal(nn_check_labels(&m, &d, "out"), -1);
    assert_contains(captured(), "pics/c/2.png: error: label 2 of sample 1");
}

/* ---- nn_load_source ------------------------------------------------------------- */

/* Only what nn_load_source reads: the input shape, the output size, the loss. */
static nn_model small_model(int rank, int a, int b, int c)
{
    nn_model m = {.name = "small", .input_rank = rank, .input_shape = {a, b, c},
                  .input_size = a * (rank >= 2 ? b : 1) * (rank == 3 ? c : 1),
                  .output_size = 3, .loss = NN_LOSS_SPARSE_CE};
    m.data.model_file = "models/small.yaml";
    return m;
}

static void test_load_source_idx(void **state)
{
    (void)state;
    char images[256], labels[256];
    write_small_idx(scratch_path(images, "src-img.gz"), scratch_path(labels, "src-lab"), 1);
    nn_source src = {.format = NN_DATA_IDX, .images = "src-img.gz", .labels = "src-lab"};
    nn_dataset d;

    /* 2x3 images fit (2, 3, 1), (2, 3) and (6,). */
    const int shapes[3][4] = {{3, 2, 3, 1}, {2, 2, 3, 0}, {1, 6, 0, 0}};
    for (int i = 0; i < 3; i++) {
        nn_model m = small_model(shapes[i][0], shapes[i][1], shapes[i][2], shapes[i][3]);
        assert_int_equal(nn_load_source(&m, &src, scratch, NULL, &d), 0);
        check_small_idx(&d, labels);
        nn_dataset_free(&d);
    }
    /* An absolute path ignores dir. */
    nn_source abs = {.format = NN_DATA_IDX, .images = images, .labels = labels};
    nn_model m = small_model(3, 2, 3, 1);
    assert_int_equal(nn_load_source(&m, &abs, "/nonexistent", NULL, &d), 0);
    nn_dataset_free(&d);

    /* Same size, other shape; other size. */
    const int wrong[3][4] = {{3, 3, 2, 1}, {2, 1, 6, 0}, {1, 7, 0, 0}};
    const char *said[3] = {"(3, 2, 1)", "(1, 6)", "(7,)"};
    for (int i = 0; i < 3; i++) {
        m = small_model(wrong[i][0], wrong[i][1], wrong[i][2], wrong[i][3]);
        char want[512];
        snprintf(want, sizeof want, "%s: error: the data's samples are 2x3x1 but the model's "
                 "input_shape is %s", images, said[i]);
        capture_stderr();
        assert_int_equal(nn_load_source(&m, &src, scratch, NULL, &d), -1);
        assert_contains(captured(), want);
        assert_null(d.bytes);
        assert_null(d.origin);
    }
}

static void test_load_source_csv_and_inline(void **state)
{
    (void)state;
    char path[256];
    write_text(scratch_path(path, "iris.csv"), "a,b,c,species\n5.1,3.5,1.4,0\n6.2,2.9,4.3,1\n");
    nn_source src = {.format = NN_DATA_CSV, .path = "iris.csv", .label_column = -1, .header = 1};
    nn_model m = small_model(1, 3, 0, 0);
    nn_dataset d;
    assert_int_equal(nn_load_source(&m, &src, scratch, NULL, &d), 0);
    assert_int_equal(d.n, 2);
    assert_true(d.floats[3] == 6.2f && d.labels[1] == 1.0f);
    assert_string_equal(d.origin, path);
    nn_dataset_free(&d);
    m = small_model(1, 4, 0, 0);
    capture_stderr();
    assert_int_equal(nn_load_source(&m, &src, scratch, NULL, &d), -1);
    assert_contains(captured(), "iris.csv: error: the data's samples are 3 numbers but the model's "
                                "input_shape is (4,)");
    /* Rows of numbers fill a shape of their size, row-major: 3 numbers, input (1, 3). */
    m = small_model(2, 1, 3, 0);
    assert_int_equal(nn_load_source(&m, &src, scratch, NULL, &d), 0);
    assert_true(d.floats[0] == 5.1f && d.floats[5] == 4.3f);
    nn_dataset_free(&d);

    /* Inline: the course's xs and ys, label size 1 but output_size for mse. */
    const float xs[6] = {-1, 0, 1, 2, 3, 4}, ys[12] = {-3, -1, 1, 3, 5, 7, 9, 11, 13, 15, 17, 19};
    nn_source in = {.format = NN_DATA_INLINE, .x = xs, .y = ys, .count = 6, .line = 7};
    m = small_model(1, 1, 0, 0);
    assert_int_equal(nn_load_source(&m, &in, NULL, NULL, &d), 0);
    assert_int_equal(d.n, 6);
    assert_int_equal(d.sample_size, 1);
    assert_int_equal(d.label_size, 1);
    assert_memory_equal(d.floats, xs, sizeof xs);
    assert_memory_equal(d.labels, ys, 6 * sizeof(float));
    assert_string_equal(d.origin, "models/small.yaml:7");
    nn_dataset_free(&d);
    m.loss = NN_LOSS_MSE;
    m.output_size = 2;
    assert_int_equal(nn_load_source(&m, &in, NULL, NULL, &d), 0);
    assert_int_equal(d.label_size, 2);
    assert_memory_equal(d.labels, ys, sizeof ys);
    nn_dataset_free(&d);

    /* Inline images take the model's shape: 1 sample of 2x2x1 from (2, 2). */
    m = small_model(2, 2, 2, 0);
    nn_source img = {.format = NN_DATA_INLINE, .x = xs, .count = 1};
    assert_int_equal(nn_load_source(&m, &img, NULL, NULL, &d), 0);
    assert_true(d.h == 2 && d.w == 2 && d.c == 1 && d.labels == NULL);
    nn_dataset_free(&d);

    nn_source none = {.format = NN_DATA_NONE};
    capture_stderr();
    assert_int_equal(nn_load_source(&m, &none, NULL, NULL, &d), -1);
    captured();
}

/* ---- the real data set ------------------------------------------------------------- */

static void test_fashion_mnist(void **state)
{
    (void)state;
    const char *dir = "/usr/share/datasets/fashion-mnist";
    if (!file_exists(dir))
        skip();
    char images[256], labels[256];
    snprintf(images, sizeof images, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(labels, sizeof labels, "%s/train-labels-idx1-ubyte.gz", dir);
    nn_dataset d;
    assert_int_equal(nn_load_idx(images, labels, &d), 0);
    assert_int_equal(d.n, 60000);
    assert_int_equal(d.h, 28);
    assert_int_equal(d.w, 28);
    assert_int_equal(d.c, 1);
    assert_int_equal(d.n_classes, 10);
    assert_true(d.labels[0] == 9.0f);        /* Ankle boot, per numpy */
    assert_true(d.labels[1] == 0.0f && d.labels[3] == 3.0f);
    long sum = 0;                             /* numpy: images[0].sum() == 76247 */
    for (int k = 0; k < 784; k++)
        sum += d.bytes[k];
    assert_int_equal(sum, 76247);
    nn_dataset_free(&d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_raw_and_gzip),
        cmocka_unit_test(test_idx_bad_files),
        cmocka_unit_test(test_idx_mismatched_counts),
        cmocka_unit_test(test_idx_cut_gzip),
        cmocka_unit_test(test_csv_good),
        cmocka_unit_test(test_csv_bad),
        cmocka_unit_test(test_csv_header_and_names),
        cmocka_unit_test(test_batch_rescale_bit_exact),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_check_labels),
        cmocka_unit_test(test_load_source_idx),
        cmocka_unit_test(test_load_source_csv_and_inline),
        cmocka_unit_test(test_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
