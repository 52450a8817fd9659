/* test_image.c - image files, class folders, augmentation and PNG output.
 *
 * Images are made here with stb_image_write (and a GIF by hand); expected
 * pixels are computed by hand from PIL's rules (NEAREST picks source index
 * floor((i + 0.5) * src / dst); grey is (R*19595 + G*38470 + B*7471 + 32768)
 * >> 16), and were checked against Pillow 9.4. The augmentation's reference
 * numbers come from Keras's apply_affine_transform run with scipy.
 */
#include "testutil.h"

#include <fcntl.h>
#include <math.h>

#include <stb_image.h>
#include <stb_image_write.h>

#include "rt.h"

/* ---- helpers ------------------------------------------------------------- */





static void make_dir(const char *name)
{
    assert_int_equal(mkdir(in_scratch(name), 0755), 0);
}

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* A w x h grey PNG whose every pixel is v. */
static void flat_png(const char *path, int w, int h, uint8_t v)
{
    uint8_t px[64];
    assert_true(w * h <= 64);
    memset(px, v, sizeof px);
    assert_true(stbi_write_png(path, w, h, 1, px, w));
}

/* Runs through what fd (1 or 2) receives while `body` runs, into out. */
typedef struct {
    int fd, saved;
    char path[300];
} capture;

static void capture_begin(capture *c, int fd)
{
    fflush(stdout);
    c->fd = fd;
    snprintf(c->path, sizeof c->path, "%s/capture-%d.txt", scratch, fd);
    int f = open(c->path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(f >= 0);
    c->saved = dup(fd);
    assert_true(c->saved >= 0);
    assert_true(dup2(f, fd) >= 0);
    close(f);
}

static void capture_end(capture *c, char *out, size_t len)
{
    fflush(stdout);
    assert_true(dup2(c->saved, c->fd) >= 0);
    close(c->saved);
    FILE *f = fopen(c->path, "rb");
    assert_non_null(f);
    size_t n = fread(out, 1, len - 1, f);
    out[n] = '\0';
    fclose(f);
}

/* ---- one file: formats and conversions ------------------------------------- */

/* 5 wide, 3 high, RGB, smooth enough for JPEG at quality 100. */
static void rgb_5x3(uint8_t *px)
{
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++) {
            uint8_t *p = px + (y * 5 + x) * 3;
            p[0] = (uint8_t)(40 + 30 * x);
            p[1] = (uint8_t)(60 + 50 * y);
            p[2] = (uint8_t)(200 - 10 * x - 20 * y);
        }
}

static void test_png_bmp_exact_jpeg_close(void **state)
{
    (void)state;
    uint8_t px[45], out[45];
    rgb_5x3(px);
    assert_true(stbi_write_png(in_scratch("a.png"), 5, 3, 3, px, 15));
    assert_true(stbi_write_bmp(in_scratch("a.bmp"), 5, 3, 3, px));
    assert_true(stbi_write_jpg(in_scratch("a.jpg"), 5, 3, 3, px, 100));

    assert_int_equal(nn_load_image_file(in_scratch("a.png"), 3, 5, 3, out), 0);
    assert_memory_equal(out, px, 45);
    memset(out, 0, sizeof out);
    assert_int_equal(nn_load_image_file(in_scratch("a.bmp"), 3, 5, 3, out), 0);
    assert_memory_equal(out, px, 45);
    assert_int_equal(nn_load_image_file(in_scratch("a.jpg"), 3, 5, 3, out), 0);
    for (int i = 0; i < 45; i++)
        assert_true(abs(out[i] - px[i]) <= 8);
}

static void test_rgb_to_grey_is_pils_rounded_luma(void **state)
{
    (void)state;
    /* red, green, blue, (10,200,30): PIL gives 76, 150, 29, 124 (its old
     * truncating R*299/1000 + ... would give 149 for green). */
    uint8_t px[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 200, 30}, out[4];
    assert_true(stbi_write_png(in_scratch("rgb.png"), 4, 1, 3, px, 12));
    assert_int_equal(nn_load_image_file(in_scratch("rgb.png"), 1, 4, 1, out), 0);
    uint8_t want[4] = {76, 150, 29, 124};
    assert_memory_equal(out, want, 4);
}

static void test_alpha_dropped_grey_replicated(void **state)
{
    (void)state;
    uint8_t rgba[8] = {100, 50, 200, 0, 7, 8, 9, 128}, la[4] = {100, 0, 7, 255}, grey[2] = {100, 7};
    uint8_t out[6];
    assert_true(stbi_write_png(in_scratch("rgba.png"), 2, 1, 4, rgba, 8));
    assert_true(stbi_write_png(in_scratch("la.png"), 2, 1, 2, la, 4));
    assert_true(stbi_write_png(in_scratch("l.png"), 2, 1, 1, grey, 2));

    assert_int_equal(nn_load_image_file(in_scratch("rgba.png"), 1, 2, 3, out), 0);
    uint8_t rgba_rgb[6] = {100, 50, 200, 7, 8, 9};
    assert_memory_equal(out, rgba_rgb, 6);
    assert_int_equal(nn_load_image_file(in_scratch("rgba.png"), 1, 2, 1, out), 0);
    uint8_t rgba_l[2] = {82, 8};   /* (100*19595 + 50*38470 + 200*7471 + 32768) >> 16 = 82 */
    assert_memory_equal(out, rgba_l, 2);

    assert_int_equal(nn_load_image_file(in_scratch("la.png"), 1, 2, 3, out), 0);
    uint8_t la_rgb[6] = {100, 100, 100, 7, 7, 7};
    assert_memory_equal(out, la_rgb, 6);
    assert_int_equal(nn_load_image_file(in_scratch("la.png"), 1, 2, 1, out), 0);
    assert_memory_equal(out, grey, 2);

    assert_int_equal(nn_load_image_file(in_scratch("l.png"), 1, 2, 3, out), 0);
    assert_memory_equal(out, la_rgb, 6);
    assert_int_equal(nn_load_image_file(in_scratch("l.png"), 1, 2, 1, out), 0);
    assert_memory_equal(out, grey, 2);
}

/* A 2x2 GIF87a: palette red, green, blue, white; pixels 0 1 / 2 3. The LZW
 * data is clear(4) 0 1 2 in 3 bits, then 3 and end(5) in 4 bits (the code
 * size grows when the table reaches 8), packed from the low bit:
 * 4 | 0<<3 | 1<<6 | 2<<9 | 3<<12 | 5<<16 = 0x053444. */
static const uint8_t tiny_gif[] = {
    'G', 'I', 'F', '8', '7', 'a', 2, 0, 2, 0, 0x81, 0, 0,
    255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255,
    0x2c, 0, 0, 0, 0, 2, 0, 2, 0, 0,
    2, 3, 0x44, 0x34, 0x05, 0, 0x3b,
};

static void test_gif(void **state)
{
    (void)state;
    write_bytes(in_scratch("t.gif"), tiny_gif, sizeof tiny_gif);
    uint8_t out[12];
    assert_int_equal(nn_load_image_file(in_scratch("t.gif"), 2, 2, 3, out), 0);
    uint8_t rgb[12] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255};
    assert_memory_equal(out, rgb, 12);
    assert_int_equal(nn_load_image_file(in_scratch("t.gif"), 2, 2, 1, out), 0);
    uint8_t grey[4] = {76, 150, 29, 255};
    assert_memory_equal(out, grey, 4);
}

/* A grey PNG whose pixel (y, x) is 10*y + x. */
static void ramp_png(const char *path, int h, int w)
{
    uint8_t px[64];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            px[y * w + x] = (uint8_t)(10 * y + x);
    assert_true(stbi_write_png(path, w, h, 1, px, w));
}

static void test_nearest_resize(void **state)
{
    (void)state;
    uint8_t out[64];
    /* 4 -> 2: floor((i + 0.5) * 2) = 1, 3 */
    ramp_png(in_scratch("r44.png"), 4, 4);
    assert_int_equal(nn_load_image_file(in_scratch("r44.png"), 2, 2, 1, out), 0);
    uint8_t down[4] = {11, 13, 31, 33};
    assert_memory_equal(out, down, 4);
    /* 2 -> 4: floor((i + 0.5) / 2) = 0, 0, 1, 1 */
    ramp_png(in_scratch("r22.png"), 2, 2);
    assert_int_equal(nn_load_image_file(in_scratch("r22.png"), 4, 4, 1, out), 0);
    uint8_t up[16] = {0, 0, 1, 1, 0, 0, 1, 1, 10, 10, 11, 11, 10, 10, 11, 11};
    assert_memory_equal(out, up, 16);
    /* 3 -> 2: floor(0.75) = 0, floor(2.25) = 2 */
    ramp_png(in_scratch("r33.png"), 3, 3);
    assert_int_equal(nn_load_image_file(in_scratch("r33.png"), 2, 2, 1, out), 0);
    uint8_t odd[4] = {0, 2, 20, 22};
    assert_memory_equal(out, odd, 4);
    /* 5 wide x 3 high -> 2 high x 4 wide, grey to RGB: rows 0, 2 (floor(0.75),
     * floor(2.25)); columns floor((i + 0.5) * 1.25) = 0, 1, 3, 4 */
    ramp_png(in_scratch("r35.png"), 3, 5);
    assert_int_equal(nn_load_image_file(in_scratch("r35.png"), 2, 4, 3, out), 0);
    uint8_t cols[8] = {0, 1, 3, 4, 20, 21, 23, 24};
    for (int i = 0; i < 8; i++)
        for (int k = 0; k < 3; k++)
            assert_int_equal(out[i * 3 + k], cols[i]);
    /* same size: a copy */
    assert_int_equal(nn_load_image_file(in_scratch("r35.png"), 3, 5, 1, out), 0);
    for (int y = 0; y < 3; y++)
        for (int x = 0; x < 5; x++)
            assert_int_equal(out[y * 5 + x], 10 * y + x);
}

static void test_bad_files(void **state)
{
    (void)state;
    uint8_t out[16];
    capture c;
    char err[1024];

    write_text(in_scratch("bad.png"), "\x89PNG\r\n\x1a\nthis is not a png");
    capture_begin(&c, 2);
    int rc = nn_load_image_file(in_scratch("bad.png"), 2, 2, 1, out);
    capture_end(&c, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "bad.png: error: cannot decode image: "));

    capture_begin(&c, 2);
    rc = nn_load_image_file(in_scratch("missing.png"), 2, 2, 1, out);
    capture_end(&c, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "missing.png: error: cannot open image"));

    /* A PNG header claiming 16384 x 16384 grey pixels: within stb's limits,
     * above ours (1 << 26), so refused before decoding. */
    static const uint8_t huge[] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n',
                                   0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0x40, 0, 0, 0, 0x40, 0,
                                   8, 0, 0, 0, 0, 0, 0, 0, 0};
    write_bytes(in_scratch("huge.png"), huge, sizeof huge);
    capture_begin(&c, 2);
    rc = nn_load_image_file(in_scratch("huge.png"), 2, 2, 1, out);
    capture_end(&c, err, sizeof err);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(err, "huge.png: error: image too large"));

    capture_begin(&c, 2);
    rc = nn_load_image_file(in_scratch("r.png"), 2, 2, 2, out);
    capture_end(&c, err, sizeof err);
    assert_int_equal(rc, -1);
}

/* ---- class folders ------------------------------------------------------------ */

/* zebra is made before apple; empty has no image; hidden entries, a text
 * file and a top-level image are not samples; zebra/sub is walked after
 * zebra's own files. Each image is flat with its own value. */
static void make_tree(void)
{
    make_dir("data");
    make_dir("data/zebra");
    make_dir("data/zebra/sub");
    make_dir("data/apple");
    make_dir("data/empty");
    make_dir("data/.cache");
    flat_png(in_scratch("data/zebra/b.png"), 3, 2, 20);
    flat_png(in_scratch("data/zebra/a.png"), 2, 3, 10);
    flat_png(in_scratch("data/zebra/sub/c.png"), 1, 1, 30);
    write_text(in_scratch("data/zebra/notes.txt"), "not an image\n");
    flat_png(in_scratch("data/zebra/.hidden.png"), 1, 1, 99);
    flat_png(in_scratch("data/.cache/x.png"), 1, 1, 98);
    flat_png(in_scratch("data/top.png"), 1, 1, 97);
    flat_png(in_scratch("data/apple/y.PNG"), 4, 4, 2);
    uint8_t one = 1;
    assert_true(stbi_write_bmp(in_scratch("data/apple/x.bmp"), 1, 1, 1, &one));
    write_text(in_scratch("data/empty/readme.md"), "nothing\n");
}

static int load_tree(nn_dataset *d, int skip_bad, int threads, char *out, char *err)
{
    capture co, ce;
    capture_begin(&co, 1);
    capture_begin(&ce, 2);
    int rc = nn_load_image_dir(in_scratch("data"), 2, 2, 1, skip_bad, threads, d);
    capture_end(&ce, err, 1024);
    capture_end(&co, out, 1024);
    return rc;
}

static void test_class_folders(void **state)
{
    (void)state;
    make_tree();
    nn_dataset d, d3;
    char out[1024], err[1024];
    assert_int_equal(load_tree(&d, 0, 1, out, err), 0);
    assert_string_equal(out, "Found 5 images belonging to 3 classes.\n");
    assert_string_equal(err, "");
    assert_int_equal(d.n_classes, 3);
    assert_string_equal(d.class_names[0], "apple");
    assert_string_equal(d.class_names[1], "empty");
    assert_string_equal(d.class_names[2], "zebra");
    assert_int_equal(d.n, 5);
    assert_int_equal(d.h, 2);
    assert_int_equal(d.w, 2);
    assert_int_equal(d.c, 1);
    assert_int_equal(d.sample_size, 4);
    assert_int_equal(d.label_size, 1);
    const char *names[5] = {"apple/x.bmp", "apple/y.PNG", "zebra/a.png", "zebra/b.png",
                            "zebra/sub/c.png"};
    float labels[5] = {0, 0, 2, 2, 2};
    uint8_t values[5] = {1, 2, 10, 20, 30};
    for (int i = 0; i < 5; i++) {
        char want[300];
        snprintf(want, sizeof want, "%s/data/%s", scratch, names[i]);
        assert_string_equal(d.files[i], want);
        assert_true(d.labels[i] == labels[i]);
        for (int k = 0; k < 4; k++)
            assert_int_equal(d.bytes[i * 4 + k], values[i]);
    }
    assert_int_equal(load_tree(&d3, 0, 3, out, err), 0);
    assert_int_equal(d3.n, 5);
    assert_memory_equal(d3.bytes, d.bytes, 20);
    nn_dataset_free(&d);
    nn_dataset_free(&d3);
}

static void test_corrupt_file_in_folder(void **state)
{
    (void)state;
    make_tree();
    write_text(in_scratch("data/zebra/aa.png"), "garbage");
    nn_dataset d;
    char out[1024], err[1024];
    assert_int_equal(load_tree(&d, 0, 2, out, err), -1);
    assert_string_equal(out, "Found 6 images belonging to 3 classes.\n");
    assert_non_null(strstr(err, "data/zebra/aa.png: error: cannot decode image"));
    assert_int_equal(d.n, 0);
    assert_null(d.bytes);

    assert_int_equal(load_tree(&d, 1, 2, out, err), 0);
    assert_non_null(strstr(err, "data/zebra/aa.png: warning: cannot decode image"));
    assert_int_equal(d.n, 5);
    uint8_t values[5] = {1, 2, 10, 20, 30};
    float labels[5] = {0, 0, 2, 2, 2};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(d.bytes[i * 4], values[i]);
        assert_true(d.labels[i] == labels[i]);
    }
    assert_non_null(strstr(d.files[2], "zebra/a.png"));
    nn_dataset_free(&d);
}

static void test_folder_without_classes_or_images(void **state)
{
    (void)state;
    nn_dataset d;
    char out[1024], err[1024];
    make_dir("data");
    flat_png(in_scratch("data/loose.png"), 1, 1, 5);
    assert_int_equal(load_tree(&d, 0, 1, out, err), -1);
    assert_non_null(strstr(err, "error: no class folders"));
    make_dir("data/cats");
    write_text(in_scratch("data/cats/a.txt"), "x");
    assert_int_equal(load_tree(&d, 0, 1, out, err), -1);
    assert_non_null(strstr(err, "error: no images"));
    assert_string_equal(out, "");
    rm_tree(in_scratch("data"));
    assert_int_equal(load_tree(&d, 0, 1, out, err), -1);
    assert_non_null(strstr(err, "cannot open folder"));
}

/* ---- sets larger than memory: streaming from disk ---------------------------------- */

enum { SET_N = 30, SET_H = 6, SET_W = 5, SET_SIZE = SET_H * SET_W * 3 };   /* 90 bytes a sample */

/* 30 images in two classes, in every pixel format and an odd size each,
 * PNG and a few BMP, with pixels from a hash so that no two are alike. */
static void make_set(void)
{
    make_dir("set");
    make_dir("set/cats");
    make_dir("set/dogs");
    for (int i = 0; i < SET_N; i++) {
        int w = 3 + i % 4, h = 2 + i % 5, comp = 1 + i % 4;
        uint8_t px[8 * 8 * 4];
        for (int k = 0; k < w * h * comp; k++)
            px[k] = (uint8_t)((k * 2654435761u + (unsigned)i * 40503u) >> 13);
        char name[64];
        bool bmp = i % 7 == 3;
        snprintf(name, sizeof name, "set/%s/img%02d.%s", i < 13 ? "cats" : "dogs", i,
                 bmp ? "bmp" : "png");
        if (bmp)
            assert_true(stbi_write_bmp(in_scratch(name), w, h, comp, px));
        else
            assert_true(stbi_write_png(in_scratch(name), w, h, comp, px, w * comp));
    }
}

/* Loads set/ as 6x5 RGB with NNRT_IMAGE_CACHE_BYTES = limit (NULL: unset). */
static int load_set(const char *limit, int skip_bad, int threads, nn_dataset *d, char *out,
                    char *err)
{
    if (limit)
        assert_int_equal(setenv("NNRT_IMAGE_CACHE_BYTES", limit, 1), 0);
    else
        assert_int_equal(unsetenv("NNRT_IMAGE_CACHE_BYTES"), 0);
    capture co, ce;
    capture_begin(&co, 1);
    capture_begin(&ce, 2);
    int rc = nn_load_image_dir(in_scratch("set"), SET_H, SET_W, 3, skip_bad, threads, d);
    capture_end(&ce, err, 1024);
    capture_end(&co, out, 1024);
    assert_int_equal(unsetenv("NNRT_IMAGE_CACHE_BYTES"), 0);
    return rc;
}

static uint32_t next_random(uint32_t *state)
{
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* Every image the streamed set's cache claims to hold is that sample's. */
static void assert_cache_true(const nn_dataset *st, const nn_dataset *mem)
{
    const nn_image_stream *s = st->stream;
    for (int k = 0; k < s->slots; k++) {
        int t = s->tag[k];
        if (t < 0)
            continue;
        assert_true(t < st->n && t % s->slots == k);
        assert_memory_equal(s->cache + (size_t)k * SET_SIZE, mem->bytes + (size_t)t * SET_SIZE,
                            SET_SIZE);
    }
}

/* Random index lists, repeats included, give the same floats and labels from
 * both sets, bit for bit. */
static void assert_same_batches(const nn_dataset *a, const nn_dataset *b, uint32_t seed)
{
    enum { MAX = 12 };
    static float xa[MAX * SET_SIZE], xb[MAX * SET_SIZE];
    float ya[MAX], yb[MAX];
    assert_int_equal(a->n, b->n);
    for (int trial = 0; trial < 80; trial++) {
        int n = 1 + (int)(next_random(&seed) % MAX), idx[MAX];
        for (int k = 0; k < n; k++)
            idx[k] = (int)(next_random(&seed) % (uint32_t)a->n);
        memset(xb, 0xff, sizeof xb);
        assert_int_equal(nn_dataset_batch(a, idx, n, 1.0f / 255, xa, ya), 0);
        assert_int_equal(nn_dataset_batch(b, idx, n, 1.0f / 255, xb, yb), 0);
        assert_memory_equal(xa, xb, (size_t)n * SET_SIZE * sizeof *xa);
        assert_memory_equal(ya, yb, (size_t)n * sizeof *ya);
        if (b->stream)
            assert_cache_true(b, a);
    }
}

/* The cache holds what the limit allows, at least one image, never more. */
static void assert_cache_within(const nn_dataset *d, long limit)
{
    assert_non_null(d->stream);
    assert_null(d->bytes);
    assert_null(d->floats);
    long want = limit / SET_SIZE > 0 ? limit / SET_SIZE : 1;
    assert_int_equal(d->stream->slots, want);
    assert_true((long)d->stream->slots * d->sample_size <= (limit > SET_SIZE ? limit : SET_SIZE));
}

static void test_streaming_matches_memory(void **state)
{
    (void)state;
    make_set();
    nn_dataset mem, st;
    char out[1024], err[1024];
    assert_int_equal(load_set(NULL, 0, 2, &mem, out, err), 0);
    assert_string_equal(out, "Found 30 images belonging to 2 classes.\n");
    assert_null(mem.stream);
    assert_non_null(mem.bytes);
    /* Exactly the set's 2700 bytes: still in memory. */
    assert_int_equal(load_set("2700", 0, 2, &st, out, err), 0);
    assert_string_equal(out, "Found 30 images belonging to 2 classes.\n");
    assert_null(st.stream);
    assert_memory_equal(st.bytes, mem.bytes, SET_N * SET_SIZE);
    nn_dataset_free(&st);

    /* 2700 / 1024 = 2.64 KB; 270 bytes hold 3 images. */
    assert_int_equal(load_set("270", 0, 1, &st, out, err), 0);
    assert_string_equal(out, "Found 30 images belonging to 2 classes.\n(streaming from disk: "
                             "the decoded images need 2.6 KB, more than the 270 bytes cache)\n");
    assert_string_equal(err, "");
    assert_cache_within(&st, 270);
    for (int k = 0; k < 3; k++)   /* the first images, cached while checking the files */
        assert_int_equal(st.stream->tag[k], k);
    assert_cache_true(&st, &mem);
    assert_int_equal(st.n, 30);
    assert_memory_equal(st.labels, mem.labels, SET_N * sizeof *mem.labels);
    for (int i = 0; i < SET_N; i++)
        assert_string_equal(st.files[i], mem.files[i]);
    assert_same_batches(&mem, &st, 1);
    /* A sample and one that maps to its slot, twice each, in one batch. */
    int clash[6] = {4, 7, 4, 7, 1, 1};
    float xa[6 * SET_SIZE], xb[6 * SET_SIZE];
    assert_int_equal(nn_dataset_batch(&mem, clash, 6, 1, xa, NULL), 0);
    assert_int_equal(nn_dataset_batch(&st, clash, 6, 1, xb, NULL), 0);
    assert_memory_equal(xa, xb, sizeof xa);
    assert_cache_within(&st, 270);
    nn_dataset_free(&st);

    /* Other cache sizes and thread counts: the same batches. */
    const char *limits[] = {"1", "100", "700", "2699"};
    for (int k = 0; k < 4; k++) {
        assert_int_equal(load_set(limits[k], 0, 1 + k, &st, out, err), 0);
        assert_cache_within(&st, atol(limits[k]));
        assert_same_batches(&mem, &st, 7 + (uint32_t)k);
        nn_dataset_free(&st);
    }
    nn_dataset_free(&mem);
}

/* skip_bad drops a corrupt file from a streamed set as from one in memory,
 * and the images cached while checking the files move with their samples. */
static void test_streaming_skips_bad_files(void **state)
{
    (void)state;
    make_set();
    write_text(in_scratch("set/cats/img00b.png"), "not a png");
    nn_dataset mem, st;
    char out[1024], err[1024];
    assert_int_equal(load_set(NULL, 1, 3, &mem, out, err), 0);
    assert_int_equal(mem.n, 30);
    assert_int_equal(load_set("900", 1, 3, &st, out, err), 0);
    assert_non_null(strstr(out, "Found 31 images belonging to 2 classes.\n(streaming"));
    assert_non_null(strstr(err, "img00b.png: warning: cannot decode image"));
    assert_int_equal(st.n, 30);
    assert_int_equal(st.stream->slots, 10);
    for (int k = 0; k < st.stream->slots; k++)   /* the tenth sample was not cached */
        assert_int_equal(st.stream->tag[k], k < 9 ? k : -1);
    assert_cache_true(&st, &mem);
    assert_same_batches(&mem, &st, 3);
    nn_dataset_free(&st);
    /* Without skip_bad the streamed load fails as the one in memory does. */
    assert_int_equal(load_set("900", 0, 3, &st, out, err), -1);
    assert_non_null(strstr(err, "img00b.png: error: cannot decode image"));
    assert_null(st.stream);
    nn_dataset_free(&mem);
}

/* validation_split gives each side a stream and a share of the cache. */
static void test_streaming_split(void **state)
{
    (void)state;
    make_set();
    nn_dataset mem, st, mem_val, st_val;
    char out[1024], err[1024];
    assert_int_equal(load_set(NULL, 0, 2, &mem, out, err), 0);
    assert_int_equal(load_set("900", 0, 2, &st, out, err), 0);
    assert_same_batches(&mem, &st, 4);          /* so that the cache holds later samples too */
    assert_int_equal(nn_dataset_split(&mem, 0.2f, &mem_val), 0);
    assert_int_equal(nn_dataset_split(&st, 0.2f, &st_val), 0);
    assert_int_equal(st.n, 24);
    assert_int_equal(st_val.n, 6);
    assert_int_equal(st.stream->slots, 8);      /* 10 slots shared 24 : 6 */
    assert_int_equal(st_val.stream->slots, 2);
    assert_int_equal(st_val.stream->tag[0], -1);
    assert_cache_true(&st, &mem);
    assert_same_batches(&mem, &st, 5);
    assert_same_batches(&mem_val, &st_val, 6);
    nn_dataset_free(&mem);
    nn_dataset_free(&mem_val);
    nn_dataset_free(&st);
    nn_dataset_free(&st_val);
}

/* A file gone after loading fails the batch that needs it, naming it; the
 * cache stays usable. */
static void test_streaming_file_removed(void **state)
{
    (void)state;
    make_set();
    nn_dataset mem, st;
    char out[1024], err[1024];
    assert_int_equal(load_set(NULL, 0, 2, &mem, out, err), 0);
    assert_int_equal(load_set("180", 0, 2, &st, out, err), 0);   /* 2 slots: 0 and 1 cached */
    assert_int_equal(remove(st.files[20]), 0);
    static float x[3 * SET_SIZE];
    float y[3];
    capture c;
    capture_begin(&c, 2);
    int rc = nn_dataset_batch(&st, (int[]){1, 20, 5}, 3, 1, x, y);
    capture_end(&c, err, sizeof err);
    assert_int_equal(rc, -1);
    char want[400];
    snprintf(want, sizeof want, "%s: error: cannot open image: ", st.files[20]);
    assert_non_null(strstr(err, want));
    assert_null(strchr(strchr(err, '\n') + 1, '\n'));   /* one line */
    assert_cache_true(&st, &mem);
    int rest[4] = {5, 0, 3, 5};
    static float xm[4 * SET_SIZE], xs[4 * SET_SIZE];
    assert_int_equal(nn_dataset_batch(&mem, rest, 4, 1, xm, NULL), 0);
    assert_int_equal(nn_dataset_batch(&st, rest, 4, 1, xs, NULL), 0);
    assert_memory_equal(xm, xs, sizeof xm);
    nn_dataset_free(&st);
    nn_dataset_free(&mem);
}

static void test_image_memory_limit_from_environment(void **state)
{
    (void)state;
    make_set();
    nn_dataset d;
    char out[1024], err[1024];
    const char *bad[] = {"abc", "", "-5", "0", "12kb", "99999999999999999999999"};
    for (int k = 0; k < 6; k++) {
        assert_int_equal(load_set(bad[k], 0, 1, &d, out, err), -1);
        assert_string_equal(out, "");
        assert_non_null(strstr(err, "NNRT_IMAGE_CACHE_BYTES: error: wants a positive number of "
                                    "bytes"));
    }
}

/* ---- augmentation --------------------------------------------------------------- */

static void fill_ramp(float *img, int h, int w)
{
    for (int i = 0; i < h * w; i++)
        img[i] = (float)i;
}

static void assert_image(const float *got, const float *want, int n, float tol)
{
    for (int i = 0; i < n; i++)
        if (fabsf(got[i] - want[i]) > tol)
            fail_msg("pixel %d: got %g, want %g", i, got[i], want[i]);
}

static void test_flips(void **state)
{
    (void)state;
    float img[6];
    fill_ramp(img, 2, 3);   /* 0 1 2 / 3 4 5 */
    nn_transform t = {.zx = 1, .zy = 1, .flip_h = true};
    nn_transform_image(&t, img, 2, 3, 1);
    float h[6] = {2, 1, 0, 5, 4, 3};
    assert_image(img, h, 6, 0);
    t = (nn_transform){.zx = 1, .zy = 1, .flip_v = true};
    nn_transform_image(&t, img, 2, 3, 1);
    float hv[6] = {5, 4, 3, 2, 1, 0};
    assert_image(img, hv, 6, 0);
    /* channels move with their pixel */
    float rgb[6] = {1, 2, 3, 4, 5, 6};
    t = (nn_transform){.zx = 1, .zy = 1, .flip_h = true};
    nn_transform_image(&t, rgb, 1, 2, 3);
    float rgb_h[6] = {4, 5, 6, 1, 2, 3};
    assert_image(rgb, rgb_h, 6, 0);
}

static void test_shift_one_pixel(void **state)
{
    (void)state;
    float img[9];
    /* tx = 1: output x reads input x + 1; the last column is replicated */
    fill_ramp(img, 3, 3);
    nn_transform t = {.tx = 1, .zx = 1, .zy = 1};
    nn_transform_image(&t, img, 3, 3, 1);
    float left[9] = {1, 2, 2, 4, 5, 5, 7, 8, 8};
    assert_image(img, left, 9, 0);
    /* ty = -1: output y reads input y - 1; the first row is replicated */
    fill_ramp(img, 3, 3);
    t = (nn_transform){.ty = -1, .zx = 1, .zy = 1};
    nn_transform_image(&t, img, 3, 3, 1);
    float down[9] = {0, 1, 2, 0, 1, 2, 3, 4, 5};
    assert_image(img, down, 9, 0);
}

static void test_rotations(void **state)
{
    (void)state;
    float img[9];
    fill_ramp(img, 3, 3);
    nn_transform t = {.theta = 90, .zx = 1, .zy = 1};
    nn_transform_image(&t, img, 3, 3, 1);
    float r90[9] = {2, 5, 8, 1, 4, 7, 0, 3, 6};   /* counter-clockwise, as Keras */
    assert_image(img, r90, 9, 1e-5f);
    fill_ramp(img, 3, 3);
    t.theta = 180;
    nn_transform_image(&t, img, 3, 3, 1);
    float r180[9] = {8, 7, 6, 5, 4, 3, 2, 1, 0};
    assert_image(img, r180, 9, 1e-5f);
    /* a 2x4 image rotated by 180 degrees turns about its centre (1.5, 0.5) */
    float wide[8];
    fill_ramp(wide, 2, 4);
    nn_transform_image(&t, wide, 2, 4, 1);
    float w180[8] = {7, 6, 5, 4, 3, 2, 1, 0};
    assert_image(wide, w180, 8, 1e-5f);
}

/* Keras's apply_affine_transform(x, theta=30, tx=0.5, ty=-1, shear=10,
 * zx=1.2, zy=0.9, order=1, fill_mode='nearest') with its axis swap, on the
 * 4x4 ramp, through scipy.ndimage.affine_transform. */
static void test_composite_matches_keras(void **state)
{
    (void)state;
    float img[16];
    fill_ramp(img, 4, 4);
    nn_transform t = {.theta = 30, .tx = 0.5f, .ty = -1, .shear = 10, .zx = 1.2f, .zy = 0.9f};
    nn_transform_image(&t, img, 4, 4, 1);
    static const float keras[16] = {
        1.741930f, 2.781161f, 3.599258f, 5.999258f,
        1.163421f, 3.159670f, 6.357018f, 8.757018f,
        1.899691f, 5.338921f, 8.778152f, 11.514778f,
        4.078942f, 7.518173f, 10.957403f, 14.272538f,
    };
    assert_image(img, keras, 16, 1e-4f);
}

static void test_augment_batch(void **state)
{
    (void)state;
    enum { N = 16, H = 3, W = 4 };
    float base[N * H * W], a[N * H * W], b[N * H * W];
    for (int i = 0; i < N * H * W; i++)
        base[i] = (float)(i % (H * W)) + 100 * (float)(i / (H * W));

    nn_augment none = {0};
    assert_false(nn_augment_active(&none));
    memcpy(a, base, sizeof a);
    nn_augment_batch(&none, a, N, H, W, 1, 1, 1, 0);
    assert_memory_equal(a, base, sizeof a);

    /* horizontal_flip alone: each image is itself or its mirror, both occur */
    nn_augment flip = {.horizontal_flip = 1};
    assert_true(nn_augment_active(&flip));
    memcpy(a, base, sizeof a);
    nn_augment_batch(&flip, a, N, H, W, 1, 7, 3, 0);
    int flipped = 0;
    for (int s = 0; s < N; s++) {
        float *img = a + s * H * W;
        const float *src = base + s * H * W;
        bool same = memcmp(img, src, H * W * sizeof *img) == 0;
        nn_transform t = {.zx = 1, .zy = 1, .flip_h = true};
        float m[H * W];
        memcpy(m, src, sizeof m);
        nn_transform_image(&t, m, H, W, 1);
        bool mirror = memcmp(img, m, sizeof m) == 0;
        assert_true(same || mirror);
        flipped += mirror;
    }
    assert_true(flipped > 0 && flipped < N);

    /* everything on: a function of (seed, step) only */
    nn_augment all = {1, 1, 40, 0.2f, 0.2f, 0.2f, 10};
    memcpy(a, base, sizeof a);
    memcpy(b, base, sizeof b);
    nn_augment_batch(&all, a, N, H, W, 1, 42, 5, 0);
    nn_augment_batch(&all, b, N, H, W, 1, 42, 5, 0);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, base, sizeof a);
    memcpy(b, base, sizeof b);
    nn_augment_batch(&all, b, N, H, W, 1, 42, 6, 0);
    assert_memory_not_equal(a, b, sizeof a);
    memcpy(b, base, sizeof b);
    nn_augment_batch(&all, b, N, H, W, 1, 43, 5, 0);
    assert_memory_not_equal(a, b, sizeof a);
    /* edge replication keeps every value inside the image's own range */
    for (int s = 0; s < N; s++)
        for (int i = 0; i < H * W; i++) {
            float v = a[s * H * W + i] - 100 * (float)s;
            assert_true(v >= -1e-3f && v <= H * W - 1 + 1e-3f);
        }
}

/* ---- PNG output ------------------------------------------------------------------ */

static void test_write_png_round_trip(void **state)
{
    (void)state;
    /* 2 x 3 x 2: channel 1 holds values to round and clip */
    float map[12] = {0, -3, 0, 300, 0, 127.4f, 0, 127.6f, 0, 0.5f, 0, 254.5f};
    assert_int_equal(nn_write_png(in_scratch("m.png"), map, 2, 3, 2, 1), 0);
    int w, h, comp;
    uint8_t *px = stbi_load(in_scratch("m.png"), &w, &h, &comp, 0);
    assert_non_null(px);
    assert_int_equal(w, 3);
    assert_int_equal(h, 2);
    assert_int_equal(comp, 1);
    uint8_t want[6] = {0, 255, 127, 128, 0, 254};   /* halves to even, as lrintf */
    assert_memory_equal(px, want, 6);
    stbi_image_free(px);

    capture c;
    char err[512];
    capture_begin(&c, 2);
    assert_int_equal(nn_write_png(in_scratch("m2.png"), map, 2, 3, 2, 2), -1);
    assert_int_equal(nn_write_png(in_scratch("no/such/dir.png"), map, 2, 3, 2, 0), -1);
    capture_end(&c, err, sizeof err);
    assert_false(file_exists(in_scratch("m2.png")));
    assert_non_null(strstr(err, "cannot create"));
}

static void test_feature_grid(void **state)
{
    (void)state;
    /* 5 maps of 2 x 3: a grid of 3 columns and 2 rows with 1-pixel gaps,
     * 2*2+1 = 5 high and 3*3+2 = 11 wide. Map 0 is 0..5 (mean 2.5,
     * std 1.7078): numpy's (x - mean) / (std + 1e-5) * 64 + 128 as uint8
     * gives 34 71 109 146 184 221; the other maps are flat: 128. */
    float act[2 * 3 * 5];
    for (int i = 0; i < 6; i++)
        for (int k = 0; k < 5; k++)
            act[i * 5 + k] = k == 0 ? (float)i : (float)(k * 7);
    assert_int_equal(nn_write_feature_grid(in_scratch("g.png"), act, 2, 3, 5, 1, false), 0);
    int w, h, comp;
    uint8_t *px = stbi_load(in_scratch("g.png"), &w, &h, &comp, 0);
    assert_non_null(px);
    assert_int_equal(w, 11);
    assert_int_equal(h, 5);
    assert_int_equal(comp, 1);
    uint8_t map0[6] = {34, 71, 109, 146, 184, 221};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            int cell_x = x % 4, cell_y = y % 3, k = (y / 3) * 3 + x / 4;
            int v = px[y * w + x];
            if (cell_x == 3 || cell_y == 2 || k >= 5)
                assert_int_equal(v, 200);   /* gap, or the empty sixth cell */
            else if (k == 0)
                assert_int_equal(v, map0[cell_y * 3 + cell_x]);
            else
                assert_int_equal(v, 128);
        }
    stbi_image_free(px);

    /* Enlarged 3 times: cells of 6 x 9 with the same 1-pixel gaps; map 0's
     * value at (row 1, column 2) fills rows 3..5, columns 6..8. */
    assert_int_equal(nn_write_feature_grid(in_scratch("g3.png"), act, 2, 3, 5, 3, false), 0);
    px = stbi_load(in_scratch("g3.png"), &w, &h, &comp, 0);
    assert_non_null(px);
    assert_int_equal(w, 3 * 9 + 2);
    assert_int_equal(h, 2 * 6 + 1);
    for (int y = 3; y < 6; y++)
        for (int x = 6; x < 9; x++)
            assert_int_equal(px[y * w + x], map0[5]);
    assert_int_equal(px[0 * w + 9], 200);   /* the gap after the first cell */
    stbi_image_free(px);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_png_bmp_exact_jpeg_close, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_rgb_to_grey_is_pils_rounded_luma, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_alpha_dropped_grey_replicated, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_gif, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_nearest_resize, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_bad_files, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_class_folders, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_file_in_folder, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_folder_without_classes_or_images, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_streaming_matches_memory, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_streaming_skips_bad_files, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_streaming_split, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_streaming_file_removed, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_image_memory_limit_from_environment, scratch_setup, scratch_teardown),
        cmocka_unit_test(test_flips),
        cmocka_unit_test(test_shift_one_pixel),
        cmocka_unit_test(test_rotations),
        cmocka_unit_test(test_composite_matches_keras),
        cmocka_unit_test(test_augment_batch),
        cmocka_unit_test_setup_teardown(test_write_png_round_trip, scratch_setup, scratch_teardown),
        cmocka_unit_test_setup_teardown(test_feature_grid, scratch_setup, scratch_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
