/* data_idx.c - IDX files, the format of MNIST and Fashion-MNIST.
 *
 * An IDX file is a 4-byte magic number (two zero bytes, a type code, the
 * number of dimensions), then each dimension as a big-endian 32-bit number,
 * then the data, row-major. Images are 0x00000803 (bytes; n, rows, cols),
 * labels 0x00000801 (bytes; n). The files usually come gzip'd; zlib's gzread
 * reads a gzip file and a raw one alike, so both work without asking which.
 *
 * Everything in the header is checked before it is trusted: the type, the
 * number of dimensions, that no product of dimensions overflows, and that the
 * data that follows is exactly as long as the header says. Memory grows with
 * the data actually read, never with what a header claims, so a hostile
 * header cannot make us allocate terabytes.
 */
#include "rt.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#define IDX_UBYTE 0x08
#define IDX_MAX_RANK 3
#define IDX_TRAILING_COUNTED (1u << 20)

/* What one IDX file holds once its header has been checked. */
typedef struct {
    int dims[IDX_MAX_RANK];
    size_t size;                 /* product of dims: bytes of data */
    uint8_t *data;
} idx_file;

static const char *type_name(int code)
{
    switch (code) {
    case 0x08: return "unsigned byte";
    case 0x09: return "signed byte";
    case 0x0B: return "short";
    case 0x0C: return "int";
    case 0x0D: return "float";
    case 0x0E: return "double";
    default: return "unknown";
    }
}

static uint32_t big_endian32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int zlib_error(gzFile f, const char *path)
{
    int errnum;
    const char *msg = gzerror(f, &errnum);
    if (errnum == Z_ERRNO)
        return nn_error(path, "cannot read: %s", strerror(errno));
    return nn_error(path, "cannot read: %s", msg);
}

/* Reads up to len bytes; *got says how many came (fewer only at the end). */
static int read_some(gzFile f, const char *path, uint8_t *buf, size_t len, size_t *got)
{
    *got = 0;
    while (*got < len) {
        size_t ask = len - *got;
        if (ask > (1u << 30))    /* gzread counts in unsigned int */
            ask = 1u << 30;
        int r = gzread(f, buf + *got, (unsigned)ask);
        if (r < 0)
            return zlib_error(f, path);
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

static int read_header(gzFile f, const char *path, int rank, const char *what, idx_file *idx)
{
    uint8_t head[4 + 4 * IDX_MAX_RANK];
    size_t got;
    uint32_t want_magic = 0x800u | (uint32_t)rank;

    if (read_some(f, path, head, 4, &got) < 0)
        return -1;
    if (got < 4)
        return nn_error(path, "truncated: not an IDX file (%zu bytes)", got);
    uint32_t magic = big_endian32(head);
    if (head[0] != 0 || head[1] != 0)
        return nn_error(path, "not an IDX file: magic number 0x%08x, expected 0x%08x for %ss",
                        (unsigned)magic, (unsigned)want_magic, what);
    if (head[2] != IDX_UBYTE)
        return nn_error(path, "IDX data type 0x%02x (%s) is not supported: only unsigned bytes (0x08) are",
                        head[2], type_name(head[2]));
    if (head[3] != rank)
        return nn_error(path, "an IDX file of %ss has %d dimension%s (magic 0x%08x), this one has %d",
                        what, rank, rank == 1 ? "" : "s", (unsigned)want_magic, head[3]);

    if (read_some(f, path, head + 4, 4 * (size_t)rank, &got) < 0)
        return -1;
    if (got < 4 * (size_t)rank)
        return nn_error(path, "truncated: the header ends after %zu bytes", 4 + got);

    size_t sample = 1;           /* bytes per image: must fit an int */
    for (int i = 0; i < rank; i++) {
        uint32_t dim = big_endian32(head + 4 + 4 * i);
        if (dim == 0)
            return nn_error(path, "dimension %d is 0: no %ss", i + 1, what);
        if (dim > INT_MAX)
            return nn_error(path, "dimension %d is %u, more than we can index", i + 1, (unsigned)dim);
        idx->dims[i] = (int)dim;
        if (i > 0) {
            if (sample > INT_MAX / dim)
                return nn_error(path, "one %s of more than %d bytes is too large", what, INT_MAX);
            sample *= dim;
        }
    }
    if (sample > SIZE_MAX / (size_t)idx->dims[0])
        return nn_error(path, "%d %ss are too large for memory", idx->dims[0], what);
    idx->size = sample * (size_t)idx->dims[0];
    return 0;
}

/* Reads exactly idx->size bytes of data, in large chunks (60,000 images in a
 * handful of reads), growing the buffer as data arrives. */
static int read_body(gzFile f, const char *path, const char *what, idx_file *idx)
{
    size_t cap = idx->size < (1u << 20) ? idx->size : (1u << 20), got = 0;
    uint8_t *buf = malloc(cap);
    while (buf) {
        size_t n;
        if (read_some(f, path, buf + got, cap - got, &n) < 0) {
            free(buf);
            return -1;
        }
        got += n;
        if (got < cap || cap == idx->size)
            break;
        cap = cap > idx->size / 2 ? idx->size : cap * 2;
        uint8_t *bigger = realloc(buf, cap);
        if (!bigger)
            free(buf);
        buf = bigger;
    }
    if (!buf)
        return nn_error(path, "out of memory reading %zu bytes of %s data", idx->size, what);
    if (got < idx->size) {
        free(buf);
        return nn_error(path, "truncated: expected %zu bytes of %s data, got %zu", idx->size, what, got);
    }

    /* Count what follows, up to a bound: the header and the data disagree, so
     * say by how much, without inflating whatever a gzip bomb holds beyond. */
    uint8_t rest[65536];
    size_t extra = 0, n;
    do {
        if (read_some(f, path, rest, sizeof rest, &n) < 0) {
            free(buf);
            return -1;
        }
        extra += n;
    } while (n == sizeof rest && extra < IDX_TRAILING_COUNTED);
    if (extra) {
        free(buf);
        return nn_error(path, "%s%zu trailing byte%s after the %zu bytes of %s data the header "
                        "announces", n == sizeof rest ? "at least " : "", extra,
                        extra == 1 ? "" : "s", idx->size, what);
    }
    idx->data = buf;
    return 0;
}

static int read_idx(const char *path, int rank, const char *what, idx_file *idx)
{
    memset(idx, 0, sizeof *idx);
    errno = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return nn_error(path, "cannot open: %s", errno ? strerror(errno) : "out of memory");
    gzbuffer(f, 1u << 18);
    int rc = read_header(f, path, rank, what, idx);
    if (rc == 0)
        rc = read_body(f, path, what, idx);
    gzclose(f);
    return rc;
}

int nn_load_idx(const char *images_path, const char *labels_path, nn_dataset *d)
{
    idx_file img, lab;
    memset(d, 0, sizeof *d);
    if (read_idx(images_path, 3, "image", &img) < 0)
        return -1;
    if (read_idx(labels_path, 1, "label", &lab) < 0) {
        free(img.data);
        return -1;
    }
    if (img.dims[0] != lab.dims[0]) {
        nn_error(images_path, "%d images, but %s holds %d labels", img.dims[0], labels_path, lab.dims[0]);
        free(img.data);
        free(lab.data);
        return -1;
    }

    d->n = img.dims[0];
    d->h = img.dims[1];
    d->w = img.dims[2];
    d->c = 1;
    d->sample_size = d->h * d->w;
    d->bytes = img.data;
    d->label_size = 1;
    d->labels = nn_alloc_for(labels_path, "the labels", (size_t)d->n, sizeof(float));
    if (!d->labels) {
        free(lab.data);
        nn_dataset_free(d);
        return -1;
    }
    int max_label = 0;
    for (int i = 0; i < d->n; i++) {
        d->labels[i] = lab.data[i];
        if (lab.data[i] > max_label)
            max_label = lab.data[i];
    }
    d->n_classes = max_label + 1;
    free(lab.data);
    /* The images were checked here; what is checked later against the model
     * is the labels, so messages name the labels file. */
    d->origin = nn_join_path(NULL, labels_path);
    return 0;
}
