/* test_limits.c - hostile files against the limits every reader keeps
 * (docs/limits.md): each refusal names the file (and member, line or
 * dataset), a command exits 1, nothing it was asked to write is left, and
 * what a header only claims is never allocated.
 *
 * Every input is built here and small: .npy headers claiming 10^12
 * elements, an .npz member inflating to 1 GB (a zip bomb made with zlib,
 * from one 1 MB deflate block repeated), IDX files claiming more than they
 * hold and a gzip bomb behind one, a PNG header claiming 70 megapixels, CSV
 * and JSON past the line and field limits. Readers run in a child process
 * limited to CHILD_MEMORY of address space (not under the sanitizers, which
 * reserve terabytes), so an allocation of what a file claims would fail
 * there (nn_alloc aborts: a signal, not exit 1), and the child's peak RSS
 * (wait4) is checked against PEAK_KB.
 */
#include "testutil.h"
#include "rt.h"

#include <stb_image_write.h>
#include <sys/resource.h>
#include <zlib.h>

#define CHILD_MEMORY (1024L << 20)
#define PEAK_KB (256L << 10)
#define MB (1L << 20)

static bool sanitized(void)
{
    return strcmp(san(), "0") != 0;
}

/* ---- running a reader in a child ------------------------------------------------- */

typedef int (*reader_fn)(const char *path);

/* fn(path) in a child with at most CHILD_MEMORY of address space: its exit
 * status (0 read, 1 refused; a signal fails the test) and peak RSS. */
static int in_child(reader_fn fn, const char *path, long *peak_kb)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit lim = {CHILD_MEMORY, CHILD_MEMORY};
        if (!sanitized())
            setrlimit(RLIMIT_AS, &lim);
        _exit(fn(path) == 0 ? 0 : 1);
    }
    int st;
    struct rusage ru;
    assert_int_equal(wait4(pid, &st, 0, &ru), pid);
    if (!WIFEXITED(st))
        fail_msg("reading %s ended with signal %d", path, WTERMSIG(st));
    *peak_kb = ru.ru_maxrss;
    return WEXITSTATUS(st);
}

/* fn refuses path with a message naming it and containing `what`, within PEAK_KB. */
static void assert_refused(reader_fn fn, const char *path, const char *what)
{
    capture_stderr();
    long peak;
    int status = in_child(fn, path, &peak);
    const char *msg = captured();
    assert_int_equal(status, 1);
    assert_contains(msg, path);
    assert_contains(msg, what);
    if (peak > PEAK_KB)
        fail_msg("refusing %s took %ld KB at its peak", path, peak);
}

static int read_npy(const char *path)
{
    nn_array a;
    int rc = nn_npy_read(path, &a);
    nn_array_free(&a);
    return rc;
}

static int read_npz(const char *path)
{
    nn_array *a;
    int n;
    int rc = nn_npz_read(path, &a, &n);
    nn_npz_free(a, n);
    return rc;
}

static int read_idx_images(const char *path)
{
    nn_dataset d;
    int rc = nn_load_idx(path, "tests/data/none", &d);
    if (rc == 0)
        nn_dataset_free(&d);
    return rc;
}

static int read_records(const char *path)
{
    nn_records r;
    int rc = nn_read_records(path, &r);
    if (rc == 0)
        nn_records_free(&r);
    return rc;
}

static int read_csv(const char *path)
{
    nn_source src = {.label_column = -1, .header = NN_HEADER_AUTO};
    nn_dataset d;
    int rc = nn_load_csv(path, &src, 0, &d);
    if (rc == 0)
        nn_dataset_free(&d);
    return rc;
}

/* Windows of 100,000 values every value: 40 GB of windows from a 200,000-value series. */
static int read_series_windows(const char *path)
{
    nn_source src = {.column_index = -1, .window_size = 100000, .shift = 1, .horizon = 1};
    nn_dataset d;
    int rc = nn_load_series(&src, path, NN_SERIES_ALL, &d);
    if (rc == 0)
        nn_dataset_free(&d);
    return rc;
}

static int read_image(const char *path)
{
    uint8_t out[4 * 4];
    return nn_load_image_file(path, 4, 4, 1, out);
}

/* ---- building files ----------------------------------------------------------------- */

static void write_bytes(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* A version 1.0 .npy header for this dtype and shape text, padded to 64 bytes. */
static size_t npy_header(uint8_t *out, const char *descr, const char *shape)
{
    char dict[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (uint8_t)(total - 10);
    out[9] = (uint8_t)((total - 10) >> 8);
    memcpy(out + 10, dict, (size_t)n);
    memset(out + 10 + n, ' ', total - 10 - (size_t)n - 1);
    out[total - 1] = '\n';
    return total;
}

/* Raw deflate of `head` followed by `mb` MB of zeros, without compressing
 * them all: after the first, every 1 MB block of zeros, flushed to a byte
 * boundary, deflates to the same bytes (the window holds only zeros), so
 * one is repeated. *crc is the CRC-32 of the whole. */
static uint8_t *deflate_zeros(const uint8_t *head, size_t head_len, long mb, size_t *len,
                              uLong *crc)
{
    static uint8_t zeros[1 << 20];
    z_stream z = {0};
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY), Z_OK);
    uint8_t first[8192], block[2][4096], end[64];
    size_t first_len = 0, block_len[2];
    z.next_in = (Bytef *)head, z.avail_in = (uInt)head_len;
    z.next_out = first, z.avail_out = sizeof first;
    assert_int_equal(deflate(&z, Z_NO_FLUSH), Z_OK);
    z.next_in = zeros, z.avail_in = sizeof zeros;
    assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
    first_len = sizeof first - z.avail_out;
    for (int k = 0; k < 2; k++) {
        z.next_in = zeros, z.avail_in = sizeof zeros;
        z.next_out = block[k], z.avail_out = sizeof block[k];
        assert_int_equal(deflate(&z, Z_SYNC_FLUSH), Z_OK);
        block_len[k] = sizeof block[k] - z.avail_out;
    }
    assert_true(block_len[0] == block_len[1] && memcmp(block[0], block[1], block_len[0]) == 0);
    z.next_out = end, z.avail_out = sizeof end;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t end_len = sizeof end - z.avail_out;
    deflateEnd(&z);

    *len = first_len + (size_t)(mb - 1) * block_len[0] + end_len;
    uint8_t *out = malloc(*len), *p = out;
    assert_non_null(out);
    memcpy(p, first, first_len), p += first_len;
    for (long k = 1; k < mb; k++)
        memcpy(p, block[0], block_len[0]), p += block_len[0];
    memcpy(p, end, end_len);
    /* blocks 1 and 2 stood for the zeros of blocks 1 .. mb-1 */
    uLong zero_crc = crc32(0, zeros, sizeof zeros), all = crc32(0, head, (uInt)head_len);
    for (long k = 0; k < mb; k++)
        all = crc32_combine(all, zero_crc, (z_off_t)sizeof zeros);
    *crc = all;
    return out;
}

static uint8_t *le(uint8_t *p, uint32_t v, int bytes)
{
    for (int b = 0; b < bytes; b++)
        *p++ = (uint8_t)(v >> (8 * b));
    return p;
}

/* A ZIP archive of one deflated member `name` stating usize bytes uncompressed. */
static void write_zip(const char *path, const char *name, const uint8_t *data, size_t len,
                      uint32_t crc, uint32_t usize)
{
    size_t nlen = strlen(name), total = 30 + nlen + len + 46 + nlen + 22;
    uint8_t *zip = malloc(total), *p = zip;
    assert_non_null(zip);
    for (int central = 0; central < 2; central++) {
        p = le(p, central ? 0x02014b50 : 0x04034b50, 4);
        if (central)
            p = le(p, 20, 2);                   /* made by */
        p = le(p, 20, 2), p = le(p, 0, 2), p = le(p, 8, 2);      /* version, flags, deflated */
        p = le(p, 0, 2), p = le(p, 0x21, 2);    /* time, date */
        p = le(p, crc, 4), p = le(p, (uint32_t)len, 4), p = le(p, usize, 4);
        p = le(p, (uint32_t)nlen, 2), p = le(p, 0, 2);          /* name, extra */
        if (central)
            p = le(p, 0, 2), p = le(p, 0, 2), p = le(p, 0, 2), p = le(p, 0, 4), p = le(p, 0, 4);
        memcpy(p, name, nlen), p += nlen;
        if (!central)
            memcpy(p, data, len), p += len;
    }
    size_t dir_at = 30 + nlen + len;
    p = le(p, 0x06054b50, 4), p = le(p, 0, 4), p = le(p, 1, 2), p = le(p, 1, 2);
    p = le(p, (uint32_t)(46 + nlen), 4), p = le(p, (uint32_t)dir_at, 4), p = le(p, 0, 2);
    assert_int_equal((size_t)(p - zip), total);
    write_bytes(path, zip, total);
    free(zip);
}

/* An .npz whose member 'dense.kernel.npy' has this header, then `mb` MB of
 * zeros; it states usize (0: the truth) as its uncompressed size. */
static void write_bomb(const char *path, const char *shape, long mb, uint32_t usize)
{
    uint8_t head[256];
    size_t head_len = npy_header(head, "<f4", shape), len;
    uLong crc;
    uint8_t *data = deflate_zeros(head, head_len, mb, &len, &crc);
    write_zip(path, "dense.kernel.npy", data, len, (uint32_t)crc,
              usize ? usize : (uint32_t)(head_len + (size_t)mb * MB));
    free(data);
}

/* ---- .npy and .npz ---------------------------------------------------------------- */

static void test_npy_claiming_more_than_the_file(void **state)
{
    (void)state;
    uint8_t buf[512];
    size_t n = npy_header(buf, "<f4", "(1000000, 1000000)");
    memcpy(buf + n, "\0\0\0\0", 4);
    const char *path = in_scratch("huge.npy");
    write_bytes(path, buf, n + 4);
    assert_refused(read_npy, path, "the shape needs 4000000000000 bytes of data, the array has 4");

    n = npy_header(buf, "<f8", "(2000000000, 2000000000, 2000000000)");
    write_bytes(path, buf, n);
    assert_refused(read_npy, path, "shape is too large");

    /* a version 2.0 header claiming 4 GB, and one longer than numpy's 10000 bytes */
    memcpy(buf, "\x93NUMPY\x02\x00\xff\xff\xff\xff", 12);
    write_bytes(path, buf, 20);
    assert_refused(read_npy, path, "truncated .npy header");
    uint8_t *big = calloc(1, 20012);
    assert_non_null(big);
    memcpy(big, "\x93NUMPY\x02\x00\x20\x4e\x00\x00", 12);    /* 20000 */
    write_bytes(path, big, 20012);
    free(big);
    assert_refused(read_npy, path, "at most 10000 are read");
}

/* The header says 16 bytes of data, the ZIP entry 64 MB: refused before
 * anything is inflated. */
static void test_npz_member_size_against_its_header(void **state)
{
    (void)state;
    const char *path = in_scratch("lying.npz");
    write_bomb(path, "(4,)", 64, 0);
    assert_refused(read_npz, path, "member 'dense.kernel.npy': the shape needs 16 bytes of data, "
                                   "the member's stated size leaves room for 67108864");
    write_bomb(path, "(4,)", 64, 144);    /* a size that fits the header, the data is longer */
    assert_refused(read_npz, path, "member 'dense.kernel.npy': deflated data is longer than its "
                                   "stated size");
}

/* 1 MB of file, 1 GB inflated, with a truthful header: the 1 GB is the array,
 * allocated before inflating; where memory lacks, the error names the member. */
static void test_npz_bomb_beyond_memory(void **state)
{
    (void)state;
    if (sanitized())
        skip();
    const char *path = in_scratch("bomb.npz");
    write_bomb(path, "(268435456,)", 1024, 0);
    assert_refused(read_npz, path, "member 'dense.kernel.npy': out of memory for its "
                                   "268435456 elements (1073741824 bytes)");
}

/* ---- IDX -------------------------------------------------------------------------- */

static void write_idx_header(const char *path, uint32_t n, uint32_t rows, uint32_t cols,
                             bool gzip)
{
    uint8_t h[16] = {0, 0, 8, 3};
    uint32_t dims[3] = {n, rows, cols};
    for (int k = 0; k < 3; k++)
        for (int b = 0; b < 4; b++)
            h[4 + 4 * k + b] = (uint8_t)(dims[k] >> (24 - 8 * b));
    gzFile f = gzopen(path, gzip ? "wb" : "wbT");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, h, sizeof h), (int)sizeof h);
    assert_int_equal(gzclose(f), Z_OK);
}

static void test_idx_claiming_more_than_the_file(void **state)
{
    (void)state;
    const char *path = in_scratch("claims-ubyte");
    write_idx_header(path, 1000000, 1000, 1000, false);
    assert_refused(read_idx_images, path, "truncated: expected 1000000000000 bytes of image data, "
                                          "got 0");
    path = in_scratch("claims-ubyte.gz");
    write_idx_header(path, 1000000, 1000, 1000, true);
    assert_refused(read_idx_images, path, "truncated: expected 1000000000000 bytes");
}

/* A gzip file of one 1x1 image and 512 MB of zeros after it: refused after
 * at most a megabyte of them is inflated. */
static void test_idx_gzip_bomb(void **state)
{
    (void)state;
    uint8_t head[17] = {0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 7};
    size_t len;
    uLong crc;
    uint8_t *raw = deflate_zeros(head, sizeof head, 512, &len, &crc);
    const char *path = in_scratch("bomb-ubyte.gz");
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    static const uint8_t gz_header[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    uint8_t trailer[8];
    le(le(trailer, (uint32_t)crc, 4), (uint32_t)(sizeof head + 512 * MB), 4);
    assert_int_equal(fwrite(gz_header, 1, 10, f), 10);
    assert_int_equal(fwrite(raw, 1, len, f), len);
    assert_int_equal(fwrite(trailer, 1, 8, f), 8);
    assert_int_equal(fclose(f), 0);
    free(raw);
    assert_refused(read_idx_images, path, "at least 1048576 trailing bytes after the 1 bytes");
}

/* ---- images ------------------------------------------------------------------------- */

/* A PNG signature and IHDR claiming w x h grey pixels, and nothing more. */
static void write_png_header(const char *path, uint32_t w, uint32_t h)
{
    uint8_t png[33] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R'};
    for (int b = 0; b < 4; b++) {
        png[16 + b] = (uint8_t)(w >> (24 - 8 * b));
        png[20 + b] = (uint8_t)(h >> (24 - 8 * b));
    }
    png[24] = 8;                        /* bit depth; colour type 0 (grey), the rest 0 */
    uLong crc = crc32(0, png + 12, 17);
    for (int b = 0; b < 4; b++)
        png[29 + b] = (uint8_t)(crc >> (24 - 8 * b));
    write_bytes(path, png, sizeof png);
}

static void test_image_above_pixel_limit(void **state)
{
    (void)state;
    const char *path = in_scratch("huge.png");
    write_png_header(path, 10000, 7000);
    assert_refused(read_image, path, "10000 x 7000 is 70000000 pixels, more than the limit of "
                                     "67108864 (--max-pixels)");

    uint8_t px[16] = {0};
    path = in_scratch("small.png");
    assert_true(stbi_write_png(path, 4, 4, 1, px, 4));
    nn_set_max_pixels(15);
    assert_refused(read_image, path, "4 x 4 is 16 pixels, more than the limit of 15");
    nn_set_max_pixels(16);
    long peak;
    assert_int_equal(in_child(read_image, path, &peak), 0);
    nn_set_max_pixels(NN_DEFAULT_MAX_PIXELS);
}

/* ---- CSV and JSON ----------------------------------------------------------------- */

/* scratch/name: `head`, then `count` copies of `fill`, then `tail`. */
static const char *write_repeated(const char *name, const char *head, const char *fill,
                                  long count, const char *tail)
{
    const char *path = in_scratch(name);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(head, f);
    for (long k = 0; k < count; k++)
        fputs(fill, f);
    fputs(tail, f);
    assert_int_equal(fclose(f), 0);
    return path;
}

static void test_text_limits(void **state)
{
    (void)state;
    char where[600];
    const char *path = write_repeated("long.csv", "a,b\n1,2\n\"", "a", 17 * MB, "\",0\n");
    snprintf(where, sizeof where, "%s:3: error: a record longer than 16 MiB", path);
    assert_refused(read_records, path, where);
    assert_refused(read_csv, path, ":3: error: a line longer than 16 MiB");

    path = write_repeated("wide.csv", "a", ",1", NN_MAX_FIELDS, "\n");
    snprintf(where, sizeof where, "%s:1: error: more than %d fields", path, NN_MAX_FIELDS);
    assert_refused(read_records, path, where);
    snprintf(where, sizeof where, "%s:1: error: %d fields, more than %d", path,
             NN_MAX_FIELDS + 1, NN_MAX_FIELDS);
    assert_refused(read_csv, path, where);

    path = write_repeated("long.jsonl", "{\"text\": \"ok\"}\n{\"text\": \"", "a", 17 * MB, "\"}\n");
    snprintf(where, sizeof where, "%s:2: error: a line longer than 16 MiB", path);
    assert_refused(read_records, path, where);

    path = write_repeated("nested.json", "[", "[", 100000, "{\"text\": \"a\"}");
    snprintf(where, sizeof where, "%s:1: error: a list inside the list", path);
    assert_refused(read_records, path, where);
}

/* Data that is real but beyond memory: an error naming the file, not an abort. */
static void test_series_windows_beyond_memory(void **state)
{
    (void)state;
    if (sanitized())
        skip();
    const char *path = write_repeated("long_series.csv", "value\n", "1\n", 200000, "");
    /* 200000 - 100000 - 1 + 1 windows of 100000 floats */
    assert_refused(read_series_windows, path, "out of memory for the windows (10000000000 x 4 "
                                              "bytes)");
}

/* ---- the commands ---------------------------------------------------------------------- */

static const char *const image_model =
    "input_shape: [4, 4, 1]\n"
    "layers:\n"
    "  - Flatten\n"
    "  - Dense: {units: 2, activation: softmax}\n"
    "compile: {optimizer: sgd, loss: sparse_categorical_crossentropy}\n"
    "data:\n"
    "  train: {format: image_dir, path: train, color_mode: grayscale}\n"
    "fit: {epochs: 1, batch_size: 2}\n";

/* The trainer, trained once on two 4x4 images into scratch/W.npz. */
static const char *image_trainer(void)
{
    static char path[512];
    if (path[0])
        return path;
    uint8_t px[16] = {0};
    assert_int_equal(mkdir(in_scratch("train"), 0755), 0);
    assert_int_equal(mkdir(in_scratch("train/a"), 0755), 0);
    assert_int_equal(mkdir(in_scratch("train/b"), 0755), 0);
    assert_true(stbi_write_png(in_scratch("train/a/0.png"), 4, 4, 1, px, 4));
    assert_true(stbi_write_png(in_scratch("train/b/0.png"), 4, 4, 1, px, 4));
    snprintf(path, sizeof path, "%s", build_model("tiny", image_model));
    RunResult r;
    run_cmd(&r, "%s train --quiet --data %s --save %s", path, scratch, in_scratch("W.npz"));
    if (r.status != 0)
        fail_msg("training failed:\n%s", r.out);
    return path;
}

static void expect_exit_1(const char *what, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void expect_exit_1(const char *what, const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    RunResult r;
    run_cmd(&r, "%s", cmd);
    if (r.status != 1)
        fail_msg("'%s' exited %d, want 1:\n%s", cmd, r.status, r.out);
    assert_output_contains(&r, what);
}

static void test_commands_refuse_by_name(void **state)
{
    (void)state;
    const char *t = image_trainer(), *w = in_scratch("W.npz");
    char what[700];

    const char *big = in_scratch("big.png");
    write_png_header(big, 10000, 7000);
    snprintf(what, sizeof what, "%s: error: image too large to load", big);
    expect_exit_1(what, "%s predict --weights %s %s", t, w, big);
    const char *small = in_scratch("train/a/0.png");
    snprintf(what, sizeof what, "%s: error: image too large to load: 4 x 4 is 16 pixels", small);
    expect_exit_1(what, "%s predict --max-pixels 15 --weights %s %s", t, w, small);
    RunResult r;
    run_cmd(&r, "%s predict --max-pixels 16 --weights %s %s", t, w, small);
    assert_int_equal(r.status, 0);
    run_cmd(&r, "%s predict --max-pixels 0 --weights %s %s", t, w, small);
    assert_int_equal(r.status, 2);

    /* predict --npy: nothing written where --out points */
    uint8_t buf[512];
    size_t n = npy_header(buf, "<f4", "(2000000000, 4, 4, 1)");
    const char *x = in_scratch("X.npy"), *y = in_scratch("Y.npy");
    write_bytes(x, buf, n + 4);
    snprintf(what, sizeof what, "%s: error: the shape needs 128000000000 bytes of data", x);
    expect_exit_1(what, "%s predict --weights %s --npy %s --out %s", t, w, x, y);
    assert_false(file_exists(y));

    /* train --weights and --resume: no checkpoint written */
    const char *bomb = in_scratch("lying.npz"), *out = in_scratch("out.npz");
    write_bomb(bomb, "(4,)", 8, 0);
    snprintf(what, sizeof what, "%s: error: member 'dense.kernel.npy': the shape needs", bomb);
    expect_exit_1(what, "%s train --quiet --data %s --weights %s --save %s", t, scratch, bomb, out);
    expect_exit_1(what, "%s train --quiet --data %s --resume %s --save %s", t, scratch, bomb, out);
    assert_false(file_exists(out));

    /* the case: a zip bomb's member (1 MB inflating to 1 GB) is compared with the
     * model's tensor before it is inflated: refused with 700 MB of address space */
    bomb = in_scratch("bomb.npz");
    write_bomb(bomb, "(268435456,)", 1024, 0);
    snprintf(what, sizeof what, "%s: error: 'dense.kernel' is (268435456,) in this file; "
             "model 'tiny' wants (16, 2)", bomb);
    expect_exit_1(what, "%s%s predict --weights %s %s", sanitized() ? "" : "ulimit -v 700000; ",
                  t, bomb, small);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npy_claiming_more_than_the_file),
        cmocka_unit_test(test_npz_member_size_against_its_header),
        cmocka_unit_test(test_npz_bomb_beyond_memory),
        cmocka_unit_test(test_idx_claiming_more_than_the_file),
        cmocka_unit_test(test_idx_gzip_bomb),
        cmocka_unit_test(test_image_above_pixel_limit),
        cmocka_unit_test(test_text_limits),
        cmocka_unit_test(test_series_windows_beyond_memory),
        cmocka_unit_test(test_commands_refuse_by_name),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
