/* test_npz.c - .npy/.npz reading and writing (runtime/npz.c).
 *
 * The fixtures tests/data/numpy_written.npz (np.savez: stored members) and
 * tests/data/numpy_written_compressed.npz (np.savez_compressed: deflated) were
 * written by numpy 1.24 with the same arrays:
 *
 *   import numpy as np
 *   a = {'dense.kernel': (np.arange(6, dtype=np.float32) / 4).reshape(2, 3),
 *        'dense.bias':   np.array([-1.5, 0.0, 2.25], dtype=np.float32),
 *        'conv.kernel':  np.array([0.1, -0.2, 1e-3, 3.0]).reshape(2, 1, 1, 2),  # float64
 *        'state.epoch':  np.int64(7),
 *        'state.rng':    np.uint64(2**64 - 1),
 *        'data.bytes':   np.array([0, 1, 128, 255], dtype=np.uint8),
 *        'counts':       np.array([-3, 100000], dtype=np.int32),
 *        'mask':         np.array([True, False, True]),
 *        'empty':        np.zeros((0, 3), dtype=np.float32)}
 *   np.savez('tests/data/numpy_written.npz', **a)
 *   np.savez_compressed('tests/data/numpy_written_compressed.npz', **a)
 *
 * Floats come back as NN_F32 (float64 rounded to float), integers and bools
 * as NN_I64 (uint64 keeping its bit pattern, so 2**64-1 reads as -1).
 */
#include "testutil.h"
#include "rt.h"

#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <sys/resource.h>
#include <zlib.h>

#define STORED_FIXTURE "tests/data/numpy_written.npz"
#define DEFLATED_FIXTURE "tests/data/numpy_written_compressed.npz"

/* ---- helpers ---------------------------------------------------------------------- */

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long n = ftell(f);
    assert_true(n >= 0);
    rewind(f);
    uint8_t *buf = nn_alloc((size_t)n, 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const void *buf, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Entries in dir other than . and .. */
static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

static void assert_same_array(const nn_array *a, const nn_array *b)
{
    assert_string_equal(a->name, b->name);
    assert_int_equal(a->dtype, b->dtype);
    assert_int_equal(a->rank, b->rank);
    for (int d = 0; d < a->rank; d++)
        assert_int_equal(a->shape[d], b->shape[d]);
    assert_int_equal(a->size, b->size);
    if (a->dtype == NN_F32)
        assert_true(a->size == 0 || memcmp(a->f, b->f, a->size * sizeof(float)) == 0);
    else
        assert_true(a->size == 0 || memcmp(a->i, b->i, a->size * sizeof(int64_t)) == 0);
}

static void assert_floats(const nn_array *a, int rank, const int *shape, const float *want, size_t n)
{
    assert_non_null(a);
    assert_int_equal(a->dtype, NN_F32);
    assert_int_equal(a->rank, rank);
    for (int d = 0; d < rank; d++)
        assert_int_equal(a->shape[d], shape[d]);
    assert_int_equal(a->size, n);
    for (size_t k = 0; k < n; k++)
        assert_true(memcmp(&a->f[k], &want[k], sizeof(float)) == 0);
}

static void assert_ints(const nn_array *a, int rank, const int *shape, const int64_t *want, size_t n)
{
    assert_non_null(a);
    assert_int_equal(a->dtype, NN_I64);
    assert_int_equal(a->rank, rank);
    for (int d = 0; d < rank; d++)
        assert_int_equal(a->shape[d], shape[d]);
    assert_int_equal(a->size, n);
    for (size_t k = 0; k < n; k++)
        assert_true(a->i[k] == want[k]);
}

/* Runs nn_npz_read (or nn_npy_read when npy) with stderr captured; asserts it
 * fails cleanly and, if needle is not NULL, that the message contains it. */
static void expect_error(const char *path, bool npy, const char *needle)
{
    char log[600];
    snprintf(log, sizeof log, "%s.log", path);
    fflush(stderr);
    int saved = dup(2);
    FILE *f = fopen(log, "w");
    assert_non_null(f);
    dup2(fileno(f), 2);
    nn_array *arrays = (nn_array *)1, one;
    int n = -1, rc;
    if (npy)
        rc = nn_npy_read(path, &one);
    else
        rc = nn_npz_read(path, &arrays, &n);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    fclose(f);
    assert_int_equal(rc, -1);
    if (!npy) {
        assert_null(arrays);
        assert_int_equal(n, 0);
    } else {
        assert_null(one.f);
        assert_null(one.i);
    }
    size_t len;
    char *text = (char *)slurp(log, &len);
    text = realloc(text, len + 1);
    text[len] = '\0';
    assert_non_null(strstr(text, path));    /* every message names the file */
    if (needle && !strstr(text, needle)) {
        fprintf(stderr, "expected '%s' in: %s", needle, text);
        fail();
    }
    free(text);
    remove(log);
}

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++)
        p[k] = (uint8_t)(v >> (8 * k));
}

/* A .npy v1.0 image: magic, the dict padded to 64 bytes, then data. */
static size_t make_npy(uint8_t *out, const char *dict, const void *data, size_t n)
{
    size_t dl = strlen(dict), total = (10 + dl + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    put_le(out + 8, total - 10, 2);
    memset(out + 10, ' ', total - 10);
    memcpy(out + 10, dict, dl);
    out[total - 1] = '\n';
    memcpy(out + total, data, n);
    return total + n;
}

/* A one-member stored ZIP written independently of npz.c, to wrap hostile .npy images. */
static size_t make_zip(uint8_t *out, const char *name, const uint8_t *data, size_t n)
{
    size_t nl = strlen(name), at = 0;
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n);
    uint8_t *p = out;
    memset(p, 0, 30);
    put_le(p, 0x04034b50, 4);
    put_le(p + 4, 20, 2);
    put_le(p + 14, crc, 4);
    put_le(p + 18, n, 4);
    put_le(p + 22, n, 4);
    put_le(p + 26, nl, 2);
    memcpy(p + 30, name, nl);
    memcpy(p + 30 + nl, data, n);
    at = 30 + nl + n;
    p = out + at;
    memset(p, 0, 46);
    put_le(p, 0x02014b50, 4);
    put_le(p + 4, 20, 2);
    put_le(p + 6, 20, 2);
    put_le(p + 16, crc, 4);
    put_le(p + 20, n, 4);
    put_le(p + 24, n, 4);
    put_le(p + 28, nl, 2);
    memcpy(p + 46, name, nl);
    p += 46 + nl;
    memset(p, 0, 22);
    put_le(p, 0x06054b50, 4);
    put_le(p + 8, 1, 2);
    put_le(p + 10, 1, 2);
    put_le(p + 12, 46 + nl, 4);
    put_le(p + 16, at, 4);
    return at + 46 + nl + 22;
}

/* Offset of the first central-directory entry in a ZIP image. */
static size_t first_central(const uint8_t *buf, size_t len)
{
    for (size_t k = 0; k + 4 <= len; k++)
        if (memcmp(buf + k, "PK\x01\x02", 4) == 0)
            return k;
    fail();
    return 0;
}

static bool have_numpy(void)
{
    RunResult r;
    run_cmd(&r, "/usr/bin/python3 -c 'import numpy'");
    return r.status == 0;
}

/* ---- the arrays the round-trip tests write -------------------------------------------- */

static float kernel[6] = {0.0f, 0.25f, -1.5f, 3.0f, 1e-30f, 65504.0f};
static float bias[3] = {-0.0f, 1.0f, 2.5f};
static float scalar[1] = {3.5f};
static float rank4[2 * 1 * 3 * 2];
static int64_t epoch[1] = {42};
static int64_t ints[4] = {INT64_MIN, -1, 0, INT64_MAX};

static void fill_arrays(nn_array a[7])
{
    for (int k = 0; k < 12; k++)
        rank4[k] = (float)k / 8 - 0.5f;
    /* NaN, infinity and a denormal must survive bit for bit too */
    uint32_t nan_bits = 0x7fc00001, denormal_bits = 0x00000001;
    memcpy(&rank4[0], &nan_bits, 4);
    memcpy(&rank4[1], &denormal_bits, 4);
    rank4[2] = -INFINITY;
    a[0] = (nn_array){.name = "dense.kernel", .dtype = NN_F32, .rank = 2, .shape = {2, 3}, .size = 6, .f = kernel};
    a[1] = (nn_array){.name = "dense.bias", .dtype = NN_F32, .rank = 1, .shape = {3}, .size = 3, .f = bias};
    a[2] = (nn_array){.name = "scale", .dtype = NN_F32, .rank = 0, .size = 1, .f = scalar};
    a[3] = (nn_array){.name = "conv2d.kernel", .dtype = NN_F32, .rank = 4, .shape = {2, 1, 3, 2}, .size = 12, .f = rank4};
    a[4] = (nn_array){.name = "state.epoch", .dtype = NN_I64, .rank = 0, .size = 1, .i = epoch};
    a[5] = (nn_array){.name = "optimizer.ints", .dtype = NN_I64, .rank = 1, .shape = {4}, .size = 4, .i = ints};
    a[6] = (nn_array){.name = "empty", .dtype = NN_F32, .rank = 2, .shape = {0, 5}, .size = 0, .f = kernel};
}

/* ---- round trips --------------------------------------------------------------------------- */

static void test_npz_round_trip(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.npz", dir);
    nn_array a[7];
    fill_arrays(a);
    assert_int_equal(nn_npz_write(path, a, 7), 0);
    assert_int_equal(count_entries(dir), 1);    /* no temporary file left behind */

    nn_array *back;
    int n;
    assert_int_equal(nn_npz_read(path, &back, &n), 0);
    assert_int_equal(n, 7);
    for (int k = 0; k < 7; k++)
        assert_same_array(&back[k], &a[k]);
    assert_int_equal(back[2].rank, 0);
    assert_int_equal(back[2].size, 1);
    nn_npz_free(back, n);
    rm_tree(dir);
}

static void test_npy_round_trip(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    nn_array a[7];
    fill_arrays(a);
    for (int k = 0; k < 7; k++) {
        snprintf(path, sizeof path, "%s/%d.npy", dir, k);
        assert_int_equal(nn_npy_write(path, &a[k]), 0);
        nn_array back;
        assert_int_equal(nn_npy_read(path, &back), 0);
        strcpy(back.name, a[k].name);    /* a lone .npy has no name */
        assert_same_array(&back, &a[k]);
        nn_array_free(&back);
        assert_null(back.f);
    }
    /* the data starts at a multiple of 64, as numpy >= 1.14 writes it */
    size_t len;
    uint8_t *buf = slurp(path, &len);
    assert_int_equal((10 + buf[8] + 256 * buf[9]) % 64, 0);
    assert_int_equal(buf[10 + buf[8] + 256 * buf[9] - 1], '\n');
    free(buf);
    rm_tree(dir);
}

/* The same arrays give the same bytes: checkpoints of equal runs compare equal. */
static void test_npz_write_is_deterministic(void **state)
{
    (void)state;
    char dir[64], p1[128], p2[128];
    make_scratch(dir, sizeof dir);
    snprintf(p1, sizeof p1, "%s/a.npz", dir);
    snprintf(p2, sizeof p2, "%s/b.npz", dir);
    nn_array a[7];
    fill_arrays(a);
    assert_int_equal(nn_npz_write(p1, a, 7), 0);
    assert_int_equal(nn_npz_write(p2, a, 7), 0);
    size_t l1, l2;
    uint8_t *b1 = slurp(p1, &l1), *b2 = slurp(p2, &l2);
    assert_int_equal(l1, l2);
    assert_memory_equal(b1, b2, l1);
    free(b1);
    free(b2);
    rm_tree(dir);
}

static void test_npz_find(void **state)
{
    (void)state;
    nn_array a[7];
    fill_arrays(a);
    assert_ptr_equal(nn_npz_find(a, 7, "state.epoch"), &a[4]);
    assert_ptr_equal(nn_npz_find(a, 7, "dense.kernel"), &a[0]);
    assert_null(nn_npz_find(a, 7, "dense"));
    assert_null(nn_npz_find(a, 0, "dense.kernel"));
}

/* ---- what numpy wrote ------------------------------------------------------------------- */

static void check_fixture(const char *path)
{
    nn_array *a;
    int n;
    assert_int_equal(nn_npz_read(path, &a, &n), 0);
    assert_int_equal(n, 9);

    int s23[] = {2, 3}, s3[] = {3}, s2112[] = {2, 1, 1, 2}, s4[] = {4}, s2[] = {2}, s03[] = {0, 3};
    float k[] = {0.0f, 0.25f, 0.5f, 0.75f, 1.0f, 1.25f};
    float b[] = {-1.5f, 0.0f, 2.25f};
    float c[] = {(float)0.1, (float)-0.2, (float)1e-3, 3.0f};    /* float64 rounded */
    int64_t epoch7[] = {7}, rng[] = {-1}, bytes[] = {0, 1, 128, 255}, counts[] = {-3, 100000},
            mask[] = {1, 0, 1};
    assert_floats(nn_npz_find(a, n, "dense.kernel"), 2, s23, k, 6);
    assert_floats(nn_npz_find(a, n, "dense.bias"), 1, s3, b, 3);
    assert_floats(nn_npz_find(a, n, "conv.kernel"), 4, s2112, c, 4);
    assert_ints(nn_npz_find(a, n, "state.epoch"), 0, NULL, epoch7, 1);
    assert_ints(nn_npz_find(a, n, "state.rng"), 0, NULL, rng, 1);
    assert_ints(nn_npz_find(a, n, "data.bytes"), 1, s4, bytes, 4);
    assert_ints(nn_npz_find(a, n, "counts"), 1, s2, counts, 2);
    assert_ints(nn_npz_find(a, n, "mask"), 1, s3, mask, 3);
    assert_floats(nn_npz_find(a, n, "empty"), 2, s03, NULL, 0);
    nn_npz_free(a, n);
}

static void test_read_numpy_stored(void **state)
{
    (void)state;
    check_fixture(STORED_FIXTURE);
}

static void test_read_numpy_deflated(void **state)
{
    (void)state;
    check_fixture(DEFLATED_FIXTURE);
}

/* What numpy wrote, written again by us, reads back the same. */
static void test_rewrite_numpy_file(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/again.npz", dir);
    nn_array *a, *b;
    int n, m;
    assert_int_equal(nn_npz_read(DEFLATED_FIXTURE, &a, &n), 0);
    assert_int_equal(nn_npz_write(path, a, n), 0);
    assert_int_equal(nn_npz_read(path, &b, &m), 0);
    assert_int_equal(m, n);
    for (int k = 0; k < n; k++)
        assert_same_array(&a[k], &b[k]);
    nn_npz_free(a, n);
    nn_npz_free(b, m);
    rm_tree(dir);
}

/* A .npy with a v2.0 header (u32 length), 16-byte padding and Python 2's "2L". */
static void test_read_npy_v2_header(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/v2.npy", dir);
    const char *dict = "{'descr': '<i2', 'fortran_order': False, 'shape': (2L, 1L), }";
    uint8_t buf[128];
    size_t dl = strlen(dict), total = (12 + dl + 1 + 15) / 16 * 16;
    memcpy(buf, "\x93NUMPY\x02\x00", 8);
    put_le(buf + 8, total - 12, 4);
    memset(buf + 12, ' ', total - 12);
    memcpy(buf + 12, dict, dl);
    buf[total - 1] = '\n';
    put_le(buf + total, (uint16_t)-300, 2);
    put_le(buf + total + 2, 300, 2);
    spit(path, buf, total + 4);
    nn_array a;
    assert_int_equal(nn_npy_read(path, &a), 0);
    int shape[] = {2, 1};
    int64_t want[] = {-300, 300};
    assert_ints(&a, 2, shape, want, 2);
    nn_array_free(&a);
    rm_tree(dir);
}

/* A float32 .npy is read in place (predict --npy's inputs), in a private
 * mapping: the array may be written, and the file keeps its bytes. */
static void test_npy_float32_in_place_is_private(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    float values[6] = {1.5f, -2, 0.25f, 3, 4, 5};
    nn_array x = {.dtype = NN_F32, .rank = 2, .shape = {2, 3}, .size = 6, .f = values};
    assert_int_equal(nn_npy_write(path, &x), 0);
    size_t len_before;
    uint8_t *before = slurp(path, &len_before);

    nn_array a;
    assert_int_equal(nn_npy_read(path, &a), 0);
    assert_int_equal(a.dtype, NN_F32);
    assert_int_equal(a.size, 6);
    for (int i = 0; i < 6; i++)
        assert_true(a.f[i] == values[i]);
    a.f[0] = 99;
    nn_array_free(&a);

    size_t len_after;
    uint8_t *after = slurp(path, &len_after);
    assert_int_equal(len_after, len_before);
    assert_memory_equal(after, before, len_before);
    free(before);
    free(after);
    rm_tree(dir);
}

/* ---- numpy reads what we wrote ---------------------------------------------------------- */

static void test_numpy_reads_our_npz(void **state)
{
    (void)state;
    if (!have_numpy())
        skip();
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.npz", dir);
    nn_array a[7];
    fill_arrays(a);
    rank4[0] = 0.125f;    /* printable values only */
    rank4[1] = 2.0f;
    assert_int_equal(nn_npz_write(path, a, 7), 0);
    RunResult r;
    run_cmd(&r, "/usr/bin/python3 -c \"import numpy as np, zipfile\n"
                "print(zipfile.ZipFile('%s').testzip())\n"
                "z = np.load('%s')\n"
                "for k in z.files: a = z[k]; print(k, a.dtype, a.shape, a.ravel().tolist())\"",
            path, path);
    assert_int_equal(r.status, 0);
    const char *want =
        "None\n"
        "dense.kernel float32 (2, 3) [0.0, 0.25, -1.5, 3.0, 1.0000000031710769e-30, 65504.0]\n"
        "dense.bias float32 (3,) [-0.0, 1.0, 2.5]\n"
        "scale float32 () [3.5]\n"
        "conv2d.kernel float32 (2, 1, 3, 2) [0.125, 2.0, -inf, -0.125, 0.0, 0.125, 0.25, 0.375, "
        "0.5, 0.625, 0.75, 0.875]\n"
        "state.epoch int64 () [42]\n"
        "optimizer.ints int64 (4,) [-9223372036854775808, -1, 0, 9223372036854775807]\n"
        "empty float32 (0, 5) []\n";
    assert_string_equal(r.out, want);
    rm_tree(dir);
}

static void test_numpy_reads_our_npy(void **state)
{
    (void)state;
    if (!have_numpy())
        skip();
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    nn_array a[7];
    fill_arrays(a);
    assert_int_equal(nn_npy_write(path, &a[0]), 0);
    RunResult r;
    run_cmd(&r, "/usr/bin/python3 -c \"import numpy as np; a = np.load('%s'); "
                "print(a.dtype, a.shape, a.flags['C_CONTIGUOUS'], a.tolist())\"", path);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "float32 (2, 3) True [[0.0, 0.25, -1.5], [3.0, 1.0000000031710769e-30, 65504.0]]\n");
    rm_tree(dir);
}

/* ---- atomic writes ------------------------------------------------------------------------- */

static void test_write_into_missing_folder_fails_cleanly(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/no/such/folder/w.npz", dir);
    nn_array a[7];
    fill_arrays(a);
    assert_int_equal(nn_npz_write(path, a, 7), -1);
    assert_int_equal(nn_npy_write(path, &a[0]), -1);
    assert_int_equal(count_entries(dir), 0);
    rm_tree(dir);
}

/* Writing over a folder fails at the rename: the temporary file must go. */
static void test_failed_rename_removes_temp(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.npz", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    nn_array a[7];
    fill_arrays(a);
    assert_int_equal(nn_npz_write(path, a, 7), -1);
    assert_int_equal(count_entries(dir), 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    rm_tree(dir);
}

/* A write that fails half-way (the file-size limit stands in for a full disk)
 * leaves the previous checkpoint byte for byte, and no temporary file. */
static void test_failed_write_keeps_old_file(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.npz", dir);
    nn_array a[7];
    fill_arrays(a);
    assert_int_equal(nn_npz_write(path, a, 7), 0);
    size_t old_len;
    uint8_t *old = slurp(path, &old_len);

    enum { BIG = 100000 };
    float *big = nn_alloc(BIG, sizeof(float));
    nn_array b = {.name = "big", .dtype = NN_F32, .rank = 1, .shape = {BIG}, .size = BIG, .f = big};
    struct rlimit saved, small;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    small = saved;
    small.rlim_cur = 8192;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &small), 0);
    int rc = nn_npz_write(path, &b, 1);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(rc, -1);

    /* an invalid array fails before anything is written */
    b.size = 7;
    assert_int_equal(nn_npz_write(path, &b, 1), -1);

    size_t len;
    uint8_t *now = slurp(path, &len);
    assert_int_equal(len, old_len);
    assert_memory_equal(now, old, len);
    assert_int_equal(count_entries(dir), 1);
    free(old);
    free(now);
    free(big);
    rm_tree(dir);
}

static void test_write_rejects_bad_arrays(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/w.npz", dir);
    nn_array a[7];
    fill_arrays(a);
    nn_array twice[2] = {a[0], a[0]};
    assert_int_equal(nn_npz_write(path, twice, 2), -1);    /* duplicate names */
    nn_array bad = a[0];
    bad.shape[1] = 4;                                       /* shape says 8, size says 6 */
    assert_int_equal(nn_npz_write(path, &bad, 1), -1);
    bad = a[0];
    bad.rank = NN_MAX_RANK + 1;
    assert_int_equal(nn_npy_write(path, &bad), -1);
    assert_int_equal(count_entries(dir), 0);
    rm_tree(dir);
}

/* ---- hostile files ----------------------------------------------------------------------- */

/* Every proper prefix of a valid file is an error, never a crash. */
static void test_truncated_files(void **state)
{
    (void)state;
    char dir[64], path[128], ours[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/cut.npz", dir);
    snprintf(ours, sizeof ours, "%s/ours.npz", dir);
    nn_array a[7];
    fill_arrays(a);
    assert_int_equal(nn_npz_write(ours, a, 7), 0);
    const char *sources[] = {STORED_FIXTURE, DEFLATED_FIXTURE, ours};
    for (int s = 0; s < 3; s++) {
        size_t len;
        uint8_t *buf = slurp(sources[s], &len);
        for (size_t cut = 0; cut < len; cut++) {
            spit(path, buf, cut);
            expect_error(path, false, cut < 22 ? "too short" : NULL);
        }
        free(buf);
    }
    rm_tree(dir);
}

static void test_bad_zip_magic(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/bad.npz", dir);
    size_t len;
    uint8_t *buf = slurp(STORED_FIXTURE, &len);
    buf[len - 22] = 'X';    /* the end-of-central-directory signature */
    spit(path, buf, len);
    expect_error(path, false, "not an .npz file");
    free(buf);
    rm_tree(dir);
}

static void test_crc_mismatch(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/crc.npz", dir);
    size_t len;
    uint8_t *buf = slurp(STORED_FIXTURE, &len);
    /* dense.kernel's last data byte: local header 30 + name 16 + zip64 extra 20, 152 bytes of .npy */
    buf[30 + 16 + 20 + 151] ^= 0x40;
    spit(path, buf, len);
    expect_error(path, false, "member 'dense.kernel.npy': CRC mismatch");
    free(buf);

    buf = slurp(DEFLATED_FIXTURE, &len);
    buf[30 + 16 + 20 + 10] ^= 0x01;    /* inside the deflated stream */
    spit(path, buf, len);
    expect_error(path, false, "dense.kernel.npy");
    free(buf);
    rm_tree(dir);
}

/* Sizes and offsets in the central directory that point past the end. */
static void test_member_past_end(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/big.npz", dir);
    size_t len;
    uint8_t *buf = slurp(STORED_FIXTURE, &len);
    size_t c = first_central(buf, len);

    put_le(buf + c + 20, 0x7fffff00, 4);    /* compressed size */
    put_le(buf + c + 24, 0x7fffff00, 4);    /* uncompressed size */
    spit(path, buf, len);
    expect_error(path, false, "past the end of the file");

    put_le(buf + c + 20, 152, 4);
    put_le(buf + c + 24, 152, 4);
    put_le(buf + c + 42, 0xfffffff0, 4);    /* local header offset */
    spit(path, buf, len);
    expect_error(path, false, "bad local header offset");

    put_le(buf + c + 42, 0, 4);
    put_le(buf + len - 22 + 10, 60000, 2);  /* entries */
    spit(path, buf, len);
    expect_error(path, false, "cannot fit");

    put_le(buf + len - 22 + 10, 9, 2);
    put_le(buf + len - 22 + 16, 0xffff0000, 4);    /* directory offset */
    spit(path, buf, len);
    expect_error(path, false, "past the end of the file");
    free(buf);

    /* a deflated member claiming 4 GB must not make us allocate 4 GB */
    buf = slurp(DEFLATED_FIXTURE, &len);
    c = first_central(buf, len);
    put_le(buf + c + 24, 0xfffffff0, 4);
    spit(path, buf, len);
    expect_error(path, false, "implausible uncompressed size");
    put_le(buf + c + 24, 1000, 4);          /* plausible, but not the truth */
    spit(path, buf, len);
    expect_error(path, false, "stated size");
    free(buf);
    rm_tree(dir);
}

/* Bad .npy images, each as a lone .npy and as an .npz member. */
static void test_bad_npy_headers(void **state)
{
    (void)state;
    char dir[64], npy[128], npz[128];
    make_scratch(dir, sizeof dir);
    snprintf(npy, sizeof npy, "%s/bad.npy", dir);
    snprintf(npz, sizeof npz, "%s/bad.npz", dir);
    static const struct {
        const char *dict, *error;
        size_t data;
    } cases[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2147483647, 2147483647, 2147483647, "
         "2147483647), }", "too large", 16},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }", "needs", 16},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 2), }", "needs", 15},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999,), }", "larger than", 4},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1), }", "more than 4", 4},
        {"{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", "Fortran", 16},
        {"{'descr': '>f4', 'fortran_order': False, 'shape': (2, 2), }", "big-endian", 16},
        {"{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", "object", 16},
        {"{'descr': '<U3', 'fortran_order': False, 'shape': (1,), }", "unsupported dtype", 12},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", "structured", 4},
        {"{'descr': '<f4', 'shape': (1,), }", "needs 'descr'", 4},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}", "unexpected key", 4},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,) 'x'", "expected ','", 4},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", "sizes", 4},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,", "'shape'", 4},
        {"{'descr': '<f4", "'descr' is not", 4},
        {"{'descr' '<f4', 'fortran_order': False, 'shape': (1,), }", "expected 'key'", 4},
        {"[1, 2]", "not a dictionary", 4},
    };
    uint8_t zeros[16] = {0}, img[512], zip[1024];
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        size_t n = make_npy(img, cases[k].dict, zeros, cases[k].data);
        spit(npy, img, n);
        expect_error(npy, true, cases[k].error);
        spit(npz, zip, make_zip(zip, "w.npy", img, n));
        expect_error(npz, false, cases[k].error);
    }

    /* and the framing around the dict */
    size_t n = make_npy(img, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", zeros, 4);
    img[0] = 'X';
    spit(npz, zip, make_zip(zip, "w.npy", img, n));
    expect_error(npz, false, "member 'w.npy': not a .npy array (bad magic)");
    img[0] = 0x93;
    img[6] = 4;
    spit(npy, img, n);
    expect_error(npy, true, "version 4.0");
    img[6] = 1;
    put_le(img + 8, 60000, 2);
    spit(npy, img, n);
    expect_error(npy, true, "truncated .npy header");
    spit(npz, zip, make_zip(zip, "w.txt", img, n));
    expect_error(npz, false, "not a .npy member");

    /* the well-formed image itself reads, so the cases above fail for their own reason */
    n = make_npy(img, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", zeros, 4);
    spit(npz, zip, make_zip(zip, "w.npy", img, n));
    nn_array *a;
    int count;
    assert_int_equal(nn_npz_read(npz, &a, &count), 0);
    assert_int_equal(count, 1);
    assert_string_equal(a[0].name, "w");
    assert_int_equal(a[0].rank, 0);
    nn_npz_free(a, count);
    rm_tree(dir);
}

/* Random corruption of valid files: whatever the result, no crash, no leak (ASan). */
static void test_random_corruption(void **state)
{
    (void)state;
    char dir[64], path[128];
    make_scratch(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/fuzz.npz", dir);
    nn_rng rng = {12345};
    const char *sources[] = {STORED_FIXTURE, DEFLATED_FIXTURE};
    for (int s = 0; s < 2; s++) {
        size_t len;
        uint8_t *orig = slurp(sources[s], &len), *buf = nn_alloc(len, 1);
        for (int round = 0; round < 400; round++) {
            memcpy(buf, orig, len);
            int flips = 1 + (int)(nn_rng_next(&rng) % 4);
            for (int f = 0; f < flips; f++)
                buf[nn_rng_next(&rng) % len] ^= (uint8_t)(1 + nn_rng_next(&rng) % 255);
            spit(path, buf, len);
            fflush(stderr);
            int saved = dup(2), null = open("/dev/null", O_WRONLY);
            dup2(null, 2);
            nn_array *a;
            int n;
            int rc = nn_npz_read(path, &a, &n);
            dup2(saved, 2);
            close(saved);
            close(null);
            assert_true(rc == 0 || (rc == -1 && a == NULL && n == 0));
            nn_npz_free(a, n);
        }
        free(orig);
        free(buf);
    }
    rm_tree(dir);
}

static void test_missing_file(void **state)
{
    (void)state;
    expect_error("/tmp/nncc-test-no-such-file.npz", false, "cannot open");
    expect_error("/tmp/nncc-test-no-such-file.npy", true, "cannot open");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_npz_round_trip),
        cmocka_unit_test(test_npy_round_trip),
        cmocka_unit_test(test_npz_write_is_deterministic),
        cmocka_unit_test(test_npz_find),
        cmocka_unit_test(test_read_numpy_stored),
        cmocka_unit_test(test_read_numpy_deflated),
        cmocka_unit_test(test_rewrite_numpy_file),
        cmocka_unit_test(test_read_npy_v2_header),
        cmocka_unit_test(test_numpy_reads_our_npz),
        cmocka_unit_test(test_numpy_reads_our_npy),
        cmocka_unit_test(test_write_into_missing_folder_fails_cleanly),
        cmocka_unit_test(test_failed_rename_removes_temp),
        cmocka_unit_test(test_failed_write_keeps_old_file),
        cmocka_unit_test(test_write_rejects_bad_arrays),
        cmocka_unit_test(test_truncated_files),
        cmocka_unit_test(test_bad_zip_magic),
        cmocka_unit_test(test_crc_mismatch),
        cmocka_unit_test(test_member_past_end),
        cmocka_unit_test(test_bad_npy_headers),
        cmocka_unit_test(test_random_corruption),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_npy_float32_in_place_is_private),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
