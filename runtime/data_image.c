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
 */
#include "rt.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include <stb_image.h>
#ifdef _OPENMP
#include <omp.h>
#endif

/* Refused before decoding: a 1<<26-pixel RGBA image already needs 256 MB, and
 * a hostile header can claim far more than the file holds. */
#define MAX_SOURCE_PIXELS (1LL << 26)

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

/* Decodes path into out (h x w x channels bytes). On failure writes the
 * reason into why and returns -1 without printing: the folder loader runs
 * this on many threads and reports in file order afterwards. stb_image 2.27
 * keeps its failure reason per thread. */
static int decode_image(const char *path, int h, int w, int channels, uint8_t *out, char *why,
                        size_t why_len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(why, why_len, "cannot open image: %s", strerror(errno));
        return -1;
    }
    int sw, sh, comp, rc = -1;
    uint8_t *px = NULL;
    if (!stbi_info_from_file(f, &sw, &sh, &comp))
        snprintf(why, why_len, "cannot decode image: %s", stbi_failure_reason());
    else if (sw <= 0 || sh <= 0 || (long long)sw * sh > MAX_SOURCE_PIXELS)
        snprintf(why, why_len, "image too large to load (%d x %d pixels)", sw, sh);
    else if (!(px = stbi_load_from_file(f, &sw, &sh, &comp, 0)))
        snprintf(why, why_len, "cannot decode image: %s", stbi_failure_reason());
    else if (comp < 1 || comp > 4)
        snprintf(why, why_len, "cannot decode image: %d channels", comp);
    else {
        resize_convert(px, sh, sw, comp, out, h, w, channels);
        rc = 0;
    }
    fclose(f);
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

/* Decodes every file into its slot; why[i][0] != 0 marks a failure. */
static void decode_all(char **files, int n, int h, int w, int channels, int threads,
                       uint8_t *bytes, char (*why)[256])
{
    size_t size = (size_t)h * (size_t)w * (size_t)channels;
#ifdef _OPENMP
    int nt = threads > 0 ? threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic) num_threads(nt)
#else
    (void)threads;
#endif
    for (int i = 0; i < n; i++)
        decode_image(files[i], h, w, channels, bytes + (size_t)i * size, why[i], sizeof why[i]);
}

/* Reports the failures in file order; with skip_bad drops those samples
 * (keeping the order of the rest), otherwise fails. */
static int drop_bad(nn_dataset *d, char (*why)[256], int skip_bad)
{
    int bad = 0, k = 0;
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
            memmove(d->bytes + (size_t)k * size, d->bytes + (size_t)i * size, size);
            d->files[k] = d->files[i];
            d->labels[k] = d->labels[i];
        }
        k++;
    }
    d->n = k;
    if (bad && !skip_bad)
        return -1;
    if (k == 0)
        return nn_error(d->origin, "none of the images could be read");
    return 0;
}

int nn_load_image_dir(const char *dir, int h, int w, int channels, int skip_bad, int threads,
                      nn_dataset *d)
{
    memset(d, 0, sizeof *d);
    if (check_target(dir, h, w, channels))
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
    if ((size_t)d->n > SIZE_MAX / (size_t)d->sample_size) {
        nn_dataset_free(d);
        return nn_error(dir, "too many images to hold in memory");
    }
    d->bytes = nn_alloc((size_t)d->n, (size_t)d->sample_size);

    char (*why)[256] = nn_alloc((size_t)d->n, sizeof *why);
    decode_all(d->files, d->n, h, w, channels, threads, d->bytes, why);
    int rc = drop_bad(d, why, skip_bad);
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
