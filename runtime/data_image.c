/* data_image.c - image files and class folders, as Keras's load_img and
 * flow_from_directory read them.
 *
 * One file: stb_image decodes it (PNG, JPEG, BMP, GIF's first frame, PPM),
 * then every output pixel is picked from the source by PIL's NEAREST resize
 * and converted to grey or RGB by PIL's own rules, so the bytes are the ones
 * Keras would see; checked against Pillow 9.4 on PNG, BMP and GIF files.
 * JPEG aside: stb's decoder and libjpeg round differently, by up to 3 levels
 * on the horse-or-human photos (0.01 on average).
 *
 * A folder: each sub-folder is a class, in strcmp order (what Python's
 * sorted() gives for the names); inside a class, files are walked as
 * os.walk does, folders in path order and names sorted within each. Unlike
 * Keras, entries starting with '.' are ignored (no .ipynb_checkpoints class).
 * Images are decoded in parallel, each into its own slot, so the thread count
 * cannot change the result; problems are reported afterwards in file order.
 *
 * A set whose decoded bytes exceed the image memory limit (min(4 GiB, half
 * the RAM), or NNRT_IMAGE_CACHE_BYTES) streams: the load still decodes every
 * file once, so that bad files are found (and skipped) as for a set in
 * memory, but keeps only a cache of limit bytes, and each batch decodes, in
 * parallel, the samples the cache lacks (see nn_image_stream in rt.h).
 */
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <stb_image.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Refused before decoding (stbi_info reads only the header): a 1<<26-pixel
 * (64 megapixel) RGBA image already needs 256 MB, and a hostile header can
 * claim far more than the file holds. --max-pixels changes it, for the whole
 * process: every image a command reads obeys the same limit. */
static long long max_source_pixels = NN_DEFAULT_MAX_PIXELS;

void nn_set_max_pixels(long long pixels)
{
    max_source_pixels = pixels;
}

/* ---- one image ----------------------------------------------------------- */

/* PIL's ITU-R 601 luma in 16.16 fixed point, rounded (Convert.c's L24). Older
 * PIL truncated R*299/1000 + ...; current Pillow, which Keras uses, rounds. */
static uint8_t luma(const uint8_t *rgb)
{
    return (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
}

/* One source pixel of `comp` channels (grey, grey+alpha, RGB, RGBA) into
 * `channels` (1 or 3), as PIL's convert("L") / convert("RGB"): alpha is
 * dropped, not composited. */
static void convert_pixel(const uint8_t *src, int comp, uint8_t *dst, int channels)
{
    bool grey = comp < 3;
    if (channels == 1) {
        dst[0] = grey ? src[0] : luma(src);
    } else {
        for (int k = 0; k < 3; k++)
            dst[k] = grey ? src[0] : src[k];
    }
}

/* PIL's NEAREST resize (Geometry.c, ImagingScaleAffine): the source
 * coordinate starts at scale/2 and grows by scale = src/dst in double, and
 * the index is its integer part, i.e. floor((i + 0.5) * src / dst). Done by
 * the same running sum so that rounding agrees to the last bit. Same size
 * gives the identity. */
static void nearest_table(int *index, int dst, int src)
{
    double scale = (double)src / dst, pos = scale * 0.5;
    for (int i = 0; i < dst; i++, pos += scale) {
        int k = (int)pos;
        index[i] = k < src ? k : src - 1;
    }
}

static void resize_convert(const uint8_t *src, int sh, int sw, int comp, uint8_t *out, int h,
                           int w, int channels)
{
    int *ys = nn_alloc((size_t)h, sizeof *ys), *xs = nn_alloc((size_t)w, sizeof *xs);
    nearest_table(ys, h, sh);
    nearest_table(xs, w, sw);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            const uint8_t *p = src + ((size_t)ys[y] * (size_t)sw + (size_t)xs[x]) * (size_t)comp;
            convert_pixel(p, comp, out + ((size_t)y * (size_t)w + (size_t)x) * (size_t)channels,
                          channels);
        }
    free(ys);
    free(xs);
}

/* ---- what reaches stb_image ------------------------------------------------ */

/* stb_image also decodes TGA, PSD, HDR and PIC, and its TGA test accepts
 * almost any bytes: 440 bytes of noise passed as a 65496 x 224 TGA. Keras
 * reads PNG, JPEG, BMP, GIF and PPM, so only files that start as one of those
 * reach stb, and for three of them the parts Debian 12's stb 2.27 trusts are
 * checked first (below), on the file's bytes in memory: a cursor over them
 * reads as fgetc would, EOF past the end. */
typedef struct {
    const uint8_t *p;
    long n, pos;
} Cursor;

static int next_byte(Cursor *c)
{
    return c->pos < c->n ? c->p[c->pos++] : EOF;
}

static int get16(Cursor *c)
{
    int hi = next_byte(c), lo = next_byte(c);
    return hi == EOF || lo == EOF ? -1 : hi << 8 | lo;
}

static long get32(Cursor *c)
{
    int hi = get16(c), lo = get16(c);
    return hi < 0 || lo < 0 ? -1 : (long)hi << 16 | lo;
}

static bool starts_with(const Cursor *c, const char *magic, size_t n)
{
    return (size_t)c->n >= n && memcmp(c->p, magic, n) == 0;
}

/* stb 2.27 does not check that a JPEG Huffman table declares at most 256
 * codes, and one that declares more makes it write past its tables (stb 2.28
 * refuses it: "bad DHT header"). */
static bool huffman_tables_fit(Cursor *c, long len)
{
    while (len > 0) {
        int n = 0;
        if (next_byte(c) == EOF)
            return true;                 /* truncated: stb says so */
        for (int i = 0; i < 16; i++) {
            int count = next_byte(c);
            n += count == EOF ? 0 : count;    /* stb reads zeros past the end */
        }
        if (n > 256)
            return false;
        c->pos += n;
        len -= 17 + n;
    }
    return true;
}

/* stb's JPEG test: 0xFF, any number of 0xFF fill bytes, then SOI (0xD8).
 * Leaves the cursor after SOI. */
static bool starts_as_jpeg(Cursor *c)
{
    c->pos = 0;
    int b = next_byte(c);
    if (b != 0xFF)
        return false;
    while ((b = next_byte(c)) == 0xFF)
        ;
    return b == 0xD8;
}

/* Walks the JPEG's markers from after SOI as stb does: a segment's length
 * skips its bytes; between segments (a scan's coded data), 0xFF 0x00 and the
 * restart markers are data. */
static const char *jpeg_problem(Cursor *c)
{
    bool fit = true;
    for (int b = next_byte(c); fit && b != EOF; b = next_byte(c)) {
        if (b != 0xFF)
            continue;
        while ((b = next_byte(c)) == 0xFF)
            ;
        if (b == EOF || b == 0xD9)
            break;
        if (b == 0x00 || b == 0x01 || (b >= 0xD0 && b <= 0xD7))
            continue;
        long len = get16(c) - 2, start = c->pos;
        if (len < 0)
            break;
        if (b == 0xC4)
            fit = huffman_tables_fit(c, len);
        c->pos = start + len;
    }
    return fit ? NULL : "a JPEG Huffman table of more than 256 codes";
}

/* stb allocates a PNG chunk's claimed length (up to 1 GB) before reading it,
 * so a 72-byte file could ask for 1 GB: every chunk must fit in the file. */
static const char *png_problem(Cursor *c)
{
    for (long pos = 8;; pos += 12) {
        c->pos = pos;
        long len = get32(c), type = get32(c);
        if (len < 0 || type < 0)
            return NULL;                 /* truncated: stb says so */
        if (len > c->n - pos - 12)
            return "a PNG chunk longer than the file";
        if (type == 0x49454E44)          /* IEND */
            return NULL;
        pos += len;
    }
}

/* stb 2.27 reads a PPM header's numbers without bounding them (int overflow
 * on a long one): width, height and maxval must each have at most 9 digits. */
static const char *ppm_problem(Cursor *c)
{
    c->pos = 2;
    int b = next_byte(c);
    for (int number = 0; number < 3; number++) {
        while (b == '#' || (b != EOF && strchr(" \t\n\v\f\r", b))) {
            if (b == '#')
                while ((b = next_byte(c)) != EOF && b != '\n' && b != '\r')
                    ;
            else
                b = next_byte(c);
        }
        int digits = 0;
        for (; b >= '0' && b <= '9'; b = next_byte(c))
            digits++;
        if (digits > 9)
            return "a PPM header number of more than 9 digits";
    }
    return NULL;
}

/* NULL if stb may decode the n bytes at p, else why not. */
static const char *undecodable(const uint8_t *p, long n)
{
    Cursor c = {p, n, 0};
    if (starts_as_jpeg(&c))
        return jpeg_problem(&c);
    if (starts_with(&c, "\x89PNG\r\n\x1a\n", 8))
        return png_problem(&c);
    if (starts_with(&c, "P5", 2) || starts_with(&c, "P6", 2))
        return ppm_problem(&c);
    if (starts_with(&c, "BM", 2) || starts_with(&c, "GIF87a", 6) || starts_with(&c, "GIF89a", 6))
        return NULL;
    return "not a PNG, JPEG, BMP, GIF or PPM file";
}

/* ---- decoding ----------------------------------------------------------------- */

/* The file's bytes, if undecodable() passes them; NULL and why if not. stb
 * is given memory, not the FILE: its FILE reader rewinds only within its
 * first buffer, so after a JPEG failed deep inside, stb tested the middle of
 * the file as PPM (fuzz_image found JPEGs holding "P6" headers that reached
 * stb's PPM parser past the checks). */
static uint8_t *image_bytes(const char *path, int *len, char *why, size_t why_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_len, "cannot open image: %s", strerror(errno));
        return NULL;
    }
    struct stat st;
    uint8_t *bytes = NULL;
    const char *problem;
    bool ok = false;
    if (fstat(fileno(f), &st) != 0 || st.st_size > INT_MAX)
        snprintf(why, why_len, "cannot decode image: larger than 2 GB");
    else if (!(bytes = malloc(st.st_size ? (size_t)st.st_size : 1)))
        snprintf(why, why_len, "out of memory reading %lld bytes", (long long)st.st_size);
    else if (fread(bytes, 1, (size_t)st.st_size, f) != (size_t)st.st_size)
        snprintf(why, why_len, "cannot read image: %s", ferror(f) ? strerror(errno) : "cut short");
    else if ((problem = undecodable(bytes, (long)st.st_size)) != NULL)
        snprintf(why, why_len, "cannot decode image: %s", problem);
    else
        ok = true;
    fclose(f);
    if (!ok) {
        free(bytes);
        return NULL;
    }
    *len = (int)st.st_size;
    return bytes;
}

/* Decodes path into out (h x w x channels bytes). On failure writes the
 * reason into why and returns -1 without printing: the folder loader runs
 * this on many threads and reports in file order afterwards. stb_image 2.27
 * keeps its failure reason per thread. */
static int decode_image(const char *path, int h, int w, int channels, uint8_t *out, char *why,
                        size_t why_len)
{
    int len, sw, sh, comp, rc = -1;
    uint8_t *bytes = image_bytes(path, &len, why, why_len), *px = NULL;
    if (!bytes)
        return -1;
    if (!stbi_info_from_memory(bytes, len, &sw, &sh, &comp))
        snprintf(why, why_len, "cannot decode image: %s", stbi_failure_reason());
    else if (sw <= 0 || sh <= 0)
        snprintf(why, why_len, "cannot decode image: it says it is %d x %d pixels", sw, sh);
    else if ((long long)sw * sh > max_source_pixels)
        snprintf(why, why_len, "image too large to load: %d x %d is %lld pixels, more than "
                 "the limit of %lld (--max-pixels)", sw, sh, (long long)sw * sh, max_source_pixels);
    else if (!(px = stbi_load_from_memory(bytes, len, &sw, &sh, &comp, 0)))
        snprintf(why, why_len, "cannot decode image: %s", stbi_failure_reason());
    else if (comp < 1 || comp > 4)
        snprintf(why, why_len, "cannot decode image: %d channels", comp);
    else {
        resize_convert(px, sh, sw, comp, out, h, w, channels);
        rc = 0;
    }
    free(bytes);
    stbi_image_free(px);
    return rc;
}

static int check_target(const char *place, int h, int w, int channels)
{
    if (channels != 1 && channels != 3)
        return nn_error(place, "images can be read with 1 or 3 channels, not %d", channels);
    if (h <= 0 || w <= 0 || (long long)h * w * channels > INT_MAX)
        return nn_error(place, "bad target size %d x %d", h, w);
    return 0;
}

int nn_load_image_file(const char *path, int h, int w, int channels, uint8_t *out)
{
    if (check_target(path, h, w, channels))
        return -1;
    char why[256];
    if (decode_image(path, h, w, channels, out, why, sizeof why))
        return nn_error(path, "%s", why);
    return 0;
}

int nn_image_file_size(const char *path, int *h, int *w)
{
    char why[256];
    int len, comp;
    uint8_t *bytes = image_bytes(path, &len, why, sizeof why);
    int ok = bytes && stbi_info_from_memory(bytes, len, w, h, &comp);
    free(bytes);
    return ok ? 0 : -1;
}

/* ---- a folder of class folders -------------------------------------------- */

typedef struct {
    char **s;
    int n, cap;
} strlist;

static void push(strlist *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 16;
        char **s2 = realloc(l->s, (size_t)l->cap * sizeof *s2);
        if (!s2) {
            fprintf(stderr, "error: out of memory\n");
            abort();
        }
        l->s = s2;
    }
    l->s[l->n++] = s;
}

static void free_strlist(strlist *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    *l = (strlist){0};
}

/* The extensions flow_from_directory accepts, plus gif (image_dataset_from_
 * directory's list has it, and stb decodes it). tif is counted as Keras
 * counts it, and then fails to decode: stb has no TIFF. */
static bool is_image_name(const char *name)
{
    static const char *const exts[] = {"png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff", "gif"};
    const char *dot = strrchr(name, '.');
    if (!dot)
        return false;
    for (size_t i = 0; i < sizeof exts / sizeof *exts; i++)
        if (strcasecmp(dot + 1, exts[i]) == 0)
            return true;
    return false;
}

typedef enum { ENTRY_OTHER, ENTRY_DIR, ENTRY_LINKED_DIR } entry_kind;

/* A link to a folder is a folder to os.path.isdir (class folders) but is not
 * walked into by os.walk (inside a class); anything else, even a broken
 * link, is a file and fails later if it is not an image. */
static entry_kind kind_of(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
        return ENTRY_OTHER;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode) ? ENTRY_DIR : ENTRY_LINKED_DIR;
}

/* The visible entries of dir as full paths: folders into dirs (links to
 * folders too if follow_links), image files into files; either may be NULL. */
static int list_folder(const char *dir, strlist *dirs, bool follow_links, strlist *files)
{
    DIR *d = opendir(dir);
    if (!d)
        return nn_error(dir, "cannot open folder: %s", strerror(errno));
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char *path = nn_join_path(dir, e->d_name);
        entry_kind k = kind_of(path);
        if (k == ENTRY_OTHER && files && is_image_name(e->d_name))
            push(files, path);
        else if (dirs && (k == ENTRY_DIR || (k == ENTRY_LINKED_DIR && follow_links)))
            push(dirs, path);
        else
            free(path);
    }
    closedir(d);
    return 0;
}

/* os.walk's order as Keras sorts it: by folder path, then by name within a
 * folder (which differs from sorting whole paths: "a b/x" < "a/x" < "a/y"). */
static int by_walk_order(const void *a, const void *b)
{
    const char *p = *(char *const *)a, *q = *(char *const *)b;
    const char *sp = strrchr(p, '/'), *sq = strrchr(q, '/');
    size_t lp = sp ? (size_t)(sp - p) : 0, lq = sq ? (size_t)(sq - q) : 0;
    int c = memcmp(p, q, lp < lq ? lp : lq);
    if (c || lp == lq)
        return c ? c : strcmp(p + lp, q + lq);
    return lp < lq ? -1 : 1;
}

/* Appends the image files under one class folder, sub-folders included, in
 * walk order. The folder list grows as it is walked: no recursion. */
static int list_class_files(const char *class_dir, strlist *files)
{
    strlist dirs = {0};
    push(&dirs, nn_join_path(NULL, class_dir));
    int from = files->n, rc = 0;
    for (int i = 0; i < dirs.n && rc == 0; i++)
        rc = list_folder(dirs.s[i], &dirs, false, files);
    free_strlist(&dirs);
    if (files->n - from > 1)
        qsort(files->s + from, (size_t)(files->n - from), sizeof *files->s, by_walk_order);
    return rc;
}

/* Classes (folder names, sorted) and their files; ends[k] is one past the
 * last file of class k. Prints Keras's "Found" line. */
static int scan_classes(const char *dir, strlist *classes, strlist *files, int **ends)
{
    strlist class_dirs = {0};
    if (list_folder(dir, &class_dirs, true, NULL))
        return -1;
    if (class_dirs.n == 0)
        return nn_error(dir, "no class folders: put the images of each class in a sub-folder");
    qsort(class_dirs.s, (size_t)class_dirs.n, sizeof *class_dirs.s, by_walk_order);
    *ends = nn_alloc((size_t)class_dirs.n, sizeof **ends);
    int rc = 0;
    for (int k = 0; k < class_dirs.n && rc == 0; k++) {
        push(classes, nn_join_path(NULL, strrchr(class_dirs.s[k], '/') + 1));
        rc = list_class_files(class_dirs.s[k], files);
        (*ends)[k] = files->n;
    }
    free_strlist(&class_dirs);
    if (rc)
        return -1;
    if (files->n == 0)
        return nn_error(dir, "no images (png, jpg, jpeg, bmp, ppm, tif, tiff, gif) in its %d class folders",
                        classes->n);
    printf("Found %d images belonging to %d classes.\n", files->n, classes->n);
    fflush(stdout);
    return 0;
}

/* OpenMP's team for decoding: the caller's count, or OpenMP's default. */
static int decode_threads(int threads)
{
#ifdef _OPENMP
    return threads > 0 ? threads : omp_get_max_threads();
#else
    (void)threads;
    return 1;
#endif
}

/* Decodes every file: the first n_kept into their slots of kept, the rest
 * (a streamed set's, only to check them) into a buffer each, then dropped.
 * why[i][0] != 0 marks a failure. */
static void decode_all(char **files, int n, int h, int w, int channels, int threads,
                       uint8_t *kept, int n_kept, char (*why)[256])
{
    size_t size = (size_t)h * (size_t)w * (size_t)channels;
    int nt = decode_threads(threads);
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (int i = 0; i < n; i++) {
        uint8_t *own = i < n_kept ? NULL : nn_alloc(size, 1);
        decode_image(files[i], h, w, channels, own ? own : kept + (size_t)i * size, why[i],
                     sizeof why[i]);
        free(own);
    }
}

/* Reports the failures in file order; with skip_bad drops those samples
 * (keeping the order of the rest, and the first n_kept images in kept beside
 * them), otherwise fails. A streamed set's slot table follows the move. */
static int drop_bad(nn_dataset *d, uint8_t *kept, int n_kept, char (*why)[256], int skip_bad)
{
    int bad = 0, k = 0, *tag = d->stream ? d->stream->tag : NULL;
    size_t size = (size_t)d->sample_size;
    for (int i = 0; i < d->n; i++) {
        if (why[i][0]) {
            bad++;
            if (skip_bad)
                nn_warning(d->files[i], "%s; skipped", why[i]);
            else
                nn_error(d->files[i], "%s", why[i]);
            free(d->files[i]);
            continue;
        }
        if (k != i) {
            if (i < n_kept)
                memmove(kept + (size_t)k * size, kept + (size_t)i * size, size);
            d->files[k] = d->files[i];
            d->labels[k] = d->labels[i];
        }
        if (tag && k < n_kept)
            tag[k] = i < n_kept ? k : -1;
        k++;
    }
    d->n = k;
    if (bad && !skip_bad)
        return -1;
    if (k == 0)
        return nn_error(d->origin, "none of the images could be read");
    return 0;
}

/* ---- sets too large for memory ------------------------------------------------ */

#define DEFAULT_IMAGE_MEMORY ((uint64_t)4 << 30)

/* How many bytes of decoded images a set may keep: NNRT_IMAGE_CACHE_BYTES
 * (tests and small machines), else 4 GiB or half the RAM if that is less. */
static int image_memory_limit(uint64_t *limit)
{
    const char *env = getenv("NNRT_IMAGE_CACHE_BYTES");
    if (env) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(env, &end, 10);
        if (*env < '0' || *env > '9' || *end || errno || v == 0)
            return nn_error("NNRT_IMAGE_CACHE_BYTES", "wants a positive number of bytes, got '%s'",
                            env);
        *limit = v;
        return 0;
    }
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
    uint64_t half = pages > 0 && page > 0 ? (uint64_t)pages / 2 * (uint64_t)page : UINT64_MAX;
    *limit = half < DEFAULT_IMAGE_MEMORY ? half : DEFAULT_IMAGE_MEMORY;
    return 0;
}

/* 2.2 GB, 310.0 MB, 900 bytes: powers of 1024, as free -h counts. */
static void format_size(char *buf, size_t len, uint64_t bytes)
{
    static const char *const units[] = {"KB", "MB", "GB", "TB"};
    if (bytes < 1024) {
        snprintf(buf, len, "%d bytes", (int)bytes);
        return;
    }
    double v = (double)bytes / 1024;
    int u = 0;
    for (; v >= 1024 && u < 3; u++)
        v /= 1024;
    snprintf(buf, len, "%.1f %s", v, units[u]);
}

static nn_image_stream *stream_new(int h, int w, int c, int threads, int slots)
{
    nn_image_stream *s = nn_alloc(1, sizeof *s);
    *s = (nn_image_stream){.h = h, .w = w, .c = c, .threads = threads, .slots = slots};
    s->cache = nn_alloc((size_t)slots, (size_t)h * (size_t)w * (size_t)c);
    s->tag = nn_alloc((size_t)slots, sizeof *s->tag);
    s->mark = nn_alloc((size_t)slots, sizeof *s->mark);
    for (int k = 0; k < slots; k++)
        s->tag[k] = -1;
    return s;
}

void nn_image_stream_free(nn_image_stream *s)
{
    if (!s)
        return;
    free(s->cache);
    free(s->tag);
    free(s->mark);
    free(s);
}

/* Streams d when its n images of sample_size bytes exceed the limit: says so
 * and makes the cache, limit / sample_size images (at least one). */
static int choose_storage(nn_dataset *d, const char *dir, uint64_t limit, int threads)
{
    uint64_t need = (uint64_t)d->n * (uint64_t)d->sample_size;
    if (need <= limit && need <= SIZE_MAX) {
        d->bytes = nn_alloc((size_t)d->n, (size_t)d->sample_size);
        return 0;
    }
    uint64_t fit = limit / (uint64_t)d->sample_size;
    int slots = fit < 1 ? 1 : fit < (uint64_t)d->n ? (int)fit : d->n;
    if ((uint64_t)slots * (uint64_t)d->sample_size > SIZE_MAX)
        return nn_error(dir, "the image cache does not fit this machine's address space");
    char have[32], cache[32];
    format_size(have, sizeof have, need);
    format_size(cache, sizeof cache, limit);
    printf("(streaming from disk: the decoded images need %s, more than the %s cache)\n", have,
           cache);
    fflush(stdout);
    d->stream = stream_new(d->h, d->w, d->c, threads, slots);
    return 0;
}

/* What a batch position does with the cache. A miss takes its slot only when
 * no hit of the same batch reads that slot and no earlier miss took it;
 * otherwise it decodes into a buffer of its own. Either way the bytes are the
 * file's, so the batch is the same whatever the cache holds. A failed decode
 * writes nothing, so its slot keeps the image its tag names. */
enum { BESIDE = 0, FROM_SLOT, INTO_SLOT };
enum { SLOT_FREE = 0, SLOT_TAKEN };

static void plan_batch(nn_image_stream *s, const int *idx, int n, uint8_t *how)
{
    for (int i = 0; i < n; i++) {
        int slot = idx[i] % s->slots;
        if (s->tag[slot] == idx[i])
            how[i] = FROM_SLOT, s->mark[slot] = SLOT_TAKEN;
    }
    for (int i = 0; i < n; i++) {
        int slot = idx[i] % s->slots;
        if (how[i] != FROM_SLOT && s->mark[slot] == SLOT_FREE)
            how[i] = INTO_SLOT, s->mark[slot] = SLOT_TAKEN;
    }
}

int nn_image_stream_batch(const nn_dataset *d, const int *idx, int n, float scale, float *x)
{
    nn_image_stream *s = d->stream;
    size_t size = (size_t)d->sample_size;
    uint8_t *how = nn_alloc((size_t)n, 1);
    char (*why)[256] = nn_alloc((size_t)n, sizeof *why);
    plan_batch(s, idx, n, how);
    int nt = decode_threads(s->threads);
#pragma omp parallel for schedule(dynamic) num_threads(nt)
    for (int i = 0; i < n; i++) {
        uint8_t *own = how[i] == BESIDE ? nn_alloc(size, 1) : NULL;
        uint8_t *img = own ? own : s->cache + (size_t)(idx[i] % s->slots) * size;
        if (how[i] == FROM_SLOT ||
            decode_image(d->files[idx[i]], s->h, s->w, s->c, img, why[i], sizeof why[i]) == 0) {
            float *xi = x + (size_t)i * size;
            for (size_t j = 0; j < size; j++)
                xi[j] = (float)img[j] * scale;
        }
        free(own);
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        int slot = idx[i] % s->slots;
        s->mark[slot] = SLOT_FREE;
        if (how[i] == INTO_SLOT && !why[i][0])
            s->tag[slot] = idx[i];
        if (why[i][0] && rc == 0)
            rc = nn_error(d->files[idx[i]], "%s", why[i]);
    }
    free(how);
    free(why);
    return rc;
}

nn_image_stream *nn_image_stream_split(nn_image_stream *s, int n_keep, int n_tail)
{
    int tail = (int)((int64_t)s->slots * n_tail / ((int64_t)n_keep + n_tail));
    tail = tail > 0 ? tail : 1;
    int keep = s->slots - tail > 0 ? s->slots - tail : 1;
    size_t size = (size_t)s->h * (size_t)s->w * (size_t)s->c;
    /* The kept images whose sample still maps to their slot stay cached. */
    for (int k = 0; k < keep; k++)
        if (s->tag[k] >= n_keep || (s->tag[k] >= 0 && s->tag[k] % keep != k))
            s->tag[k] = -1;
    uint8_t *smaller = realloc(s->cache, (size_t)keep * size);
    s->cache = smaller ? smaller : s->cache;
    s->slots = keep;
    return stream_new(s->h, s->w, s->c, s->threads, tail);
}

/* ---- a folder of class folders: the loader ------------------------------------- */

int nn_load_image_dir(const char *dir, int h, int w, int channels, int skip_bad, int threads,
                      nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    uint64_t limit = 0;
    if (check_target(dir, h, w, channels) || image_memory_limit(&limit))
        return -1;
    strlist classes = {0}, files = {0};
    int *ends = NULL;
    if (scan_classes(dir, &classes, &files, &ends)) {
        free_strlist(&classes);
        free_strlist(&files);
        free(ends);
        return -1;
    }
    d->n = files.n;
    d->h = h, d->w = w, d->c = channels;
    d->sample_size = h * w * channels;
    d->label_size = 1;
    d->n_classes = classes.n;
    d->class_names = classes.s;
    d->files = files.s;
    d->origin = nn_join_path(NULL, dir);
    d->labels = nn_alloc((size_t)d->n, sizeof *d->labels);
    for (int k = 0, i = 0; k < d->n_classes; k++)
        for (; i < ends[k]; i++)
            d->labels[i] = (float)k;
    free(ends);
    if (choose_storage(d, dir, limit, threads)) {
        nn_dataset_free(d);
        return -1;
    }
    uint8_t *kept = d->stream ? d->stream->cache : d->bytes;
    int n_kept = d->stream ? d->stream->slots : d->n;
    char (*why)[256] = nn_alloc((size_t)d->n, sizeof *why);
    decode_all(d->files, d->n, h, w, channels, threads, kept, n_kept, why);
    int rc = drop_bad(d, kept, n_kept, why, skip_bad);
    free(why);
    if (rc)
        nn_dataset_free(d);
    return rc;
}

/* ---- listings for predict --------------------------------------------------- */

int nn_list_classes(const char *dir, char ***names)
{
    strlist dirs = {0}, out = {0};
    if (list_folder(dir, &dirs, true, NULL))
        return -1;
    qsort(dirs.s, (size_t)dirs.n, sizeof *dirs.s, by_walk_order);
    for (int k = 0; k < dirs.n; k++)
        push(&out, nn_join_path(NULL, strrchr(dirs.s[k], '/') + 1));
    free_strlist(&dirs);
    *names = out.s;
    return out.n;
}

int nn_list_images(const char *dir, char ***paths)
{
    strlist files = {0};
    if (list_class_files(dir, &files)) {
        free_strlist(&files);
        return -1;
    }
    *paths = files.s;
    return files.n;
}
