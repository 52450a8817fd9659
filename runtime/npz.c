/* npz.c - numpy's .npy and .npz files: weights, checkpoints, predict's --npy.
 *
 * .npy: "\x93NUMPY", major, minor, header length (u16 LE in v1.0, u32 in
 * v2.0/3.0), then a Python dict literal such as
 *     {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
 * padded with spaces and a final '\n' so that the data starts on a multiple of
 * 64 bytes, then the elements in C order.
 *
 * .npz: a ZIP archive with one NAME.npy member per array. numpy.savez stores
 * members (method 0), savez_compressed deflates them (method 8). We write
 * stored members, no ZIP64 (so at most 4 GB), with a fixed date so that equal
 * arrays give equal bytes. We read stored and deflated members, ZIP64 too
 * (numpy's writer puts ZIP64 fields in every local header), taking sizes and
 * offsets from the central directory and checking each against the file.
 *
 * Reading maps the whole file (read-only): one buffer with one length makes
 * every bounds check a plain comparison, and costs no memory of its own. Every
 * number read from a file is checked before it is used as a size, offset or
 * multiplier, so a hostile file gets an error naming the file (and member),
 * never a crash or an over-read. An array's header is read first and its
 * data size (shape x item size) must be exactly what the file, or the ZIP
 * entry's stated uncompressed size, holds, before anything is allocated or
 * inflated; then the elements are inflated and converted a piece at a time,
 * so reading an array costs the array (docs/limits.md). A .npy file of
 * float32 (predict --npy's inputs) is not copied at all: its array is the
 * mapping, made writable copy-on-write.
 */
#include "npz.h"
#include "report.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* Elements go to and from disk by memcpy: .npy data is little-endian. */
_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "npz.c assumes a little-endian host");

/* ---- little-endian fields ------------------------------------------------------- */

static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t get32(const uint8_t *p) { return (uint32_t)get16(p) | (uint32_t)get16(p + 2) << 16; }
static uint64_t get64(const uint8_t *p) { return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32; }

static uint8_t *put16(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}

static uint8_t *put32(uint8_t *p, uint32_t v) { return put16(put16(p, v & 0xffff), v >> 16); }

/* ---- errors -------------------------------------------------------------------------- */

/* Where an error happened: the file, and inside an .npz the member. */
typedef struct {
    const char *path;
    const char *member;    /* "dense.kernel.npy", or NULL for a plain .npy */
} Origin;

static int fail(const Origin *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(const Origin *o, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (o->member)
        return nn_error(o->path, "member '%s': %s", o->member, msg);
    return nn_error(o->path, "%s", msg);
}

/* ---- arrays ---------------------------------------------------------------------------- */

void nn_array_free(nn_array *a)
{
    if (a->map) {
        munmap(a->map, a->map_len);
        a->f = NULL;
    }
    a->map = NULL;
    free(a->f);
    free(a->i);
    free(a->u8);
    a->f = NULL;
    a->i = NULL;
    a->u8 = NULL;
}

void nn_npz_free(nn_array *arrays, int n)
{
    if (!arrays)
        return;
    for (int k = 0; k < n; k++)
        nn_array_free(&arrays[k]);
    free(arrays);
}

const nn_array *nn_npz_find(const nn_array *arrays, int n, const char *name)
{
    for (int k = 0; k < n; k++)
        if (strcmp(arrays[k].name, name) == 0)
            return &arrays[k];
    return NULL;
}

/* ---- .npy header: parsing ------------------------------------------------------------- */

/* A cursor over the header's text; it never reads at or past end. */
typedef struct {
    const char *p, *end;
} Scan;

static void skip_space(Scan *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool eat(Scan *s, char c)
{
    skip_space(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

static bool eat_word(Scan *s, const char *w)
{
    skip_space(s);
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, w, n) != 0)
        return false;
    s->p += n;
    return true;
}

/* 'text' or "text", without escapes (no key or dtype numpy writes has any). */
static bool read_quoted(Scan *s, char *out, size_t cap)
{
    skip_space(s);
    if (s->p >= s->end || (*s->p != '\'' && *s->p != '"'))
        return false;
    char q = *s->p++;
    size_t n = 0;
    while (s->p < s->end && *s->p != q) {
        if (n + 1 >= cap)
            return false;
        out[n++] = *s->p++;
    }
    out[n] = '\0';
    return eat(s, q);
}

/* A tuple of dimensions: (), (3,), (2, 3). Python 2's numpy wrote (2L, 3L). */
static int read_shape(Scan *s, const Origin *o, int *rank, int *shape)
{
    if (!eat(s, '('))
        return fail(o, "bad .npy header: 'shape' is not a tuple");
    *rank = 0;
    while (!eat(s, ')')) {
        skip_space(s);
        if (s->p >= s->end || *s->p < '0' || *s->p > '9')
            return fail(o, "bad .npy header: 'shape' holds something other than sizes");
        long long d = 0;
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') {
            d = d * 10 + (*s->p++ - '0');
            if (d > INT_MAX)
                return fail(o, "a dimension of 'shape' is larger than %d", INT_MAX);
        }
        eat(s, 'L');
        if (*rank == NN_MAX_RANK)
            return fail(o, "arrays of more than %d dimensions are not supported", NN_MAX_RANK);
        shape[(*rank)++] = (int)d;
        if (eat(s, ','))
            continue;
        if (eat(s, ')'))
            return 0;
        return fail(o, "bad .npy header: 'shape' is not a tuple");
    }
    return 0;
}

/* What the header says. */
typedef struct {
    char descr[32];
    bool fortran_order;
    int rank;
    int shape[NN_MAX_RANK];
} NpyHeader;

/* The dict literal: exactly the keys 'descr', 'fortran_order', 'shape', as numpy requires. */
static int parse_dict(const char *text, size_t len, const Origin *o, NpyHeader *h)
{
    Scan s = {text, text + len};
    bool seen[3] = {false, false, false};
    if (!eat(&s, '{'))
        return fail(o, "bad .npy header: not a dictionary");
    bool closed = eat(&s, '}');
    while (!closed) {
        char key[32];
        if (!read_quoted(&s, key, sizeof key) || !eat(&s, ':'))
            return fail(o, "bad .npy header: expected 'key': value");
        int k = strcmp(key, "descr") == 0 ? 0 : strcmp(key, "fortran_order") == 0 ? 1
              : strcmp(key, "shape") == 0 ? 2 : -1;
        if (k < 0 || seen[k])
            return fail(o, "bad .npy header: unexpected key '%s'", key);
        seen[k] = true;
        if (k == 0 && !read_quoted(&s, h->descr, sizeof h->descr))
            return fail(o, s.p < s.end && *s.p == '[' ? "structured arrays are not supported"
                                                      : "bad .npy header: 'descr' is not a dtype string");
        if (k == 1) {
            if (eat_word(&s, "True"))
                h->fortran_order = true;
            else if (eat_word(&s, "False"))
                h->fortran_order = false;
            else
                return fail(o, "bad .npy header: 'fortran_order' is not True or False");
        }
        if (k == 2 && read_shape(&s, o, &h->rank, h->shape) < 0)
            return -1;
        bool comma = eat(&s, ',');
        closed = eat(&s, '}');
        if (!comma && !closed)
            return fail(o, "bad .npy header: expected ',' or '}'");
    }
    if (!seen[0] || !seen[1] || !seen[2])
        return fail(o, "bad .npy header: it needs 'descr', 'fortran_order' and 'shape'");
    return 0;
}

/* ---- .npy: element types ------------------------------------------------------------- */

/* The dtypes we read: kind 'f' (sizes 4, 8), 'i' and 'u' (1, 2, 4, 8), 'b' (1). */
typedef struct {
    char kind;
    int itemsize;
} Dtype;

static int parse_descr(const char *descr, const Origin *o, Dtype *t)
{
    if (strlen(descr) >= 2 && descr[1] == 'O')
        return fail(o, "object arrays (dtype '%s') are not supported", descr);
    if (strlen(descr) != 3)
        return fail(o, "unsupported dtype '%s'", descr);
    char order = descr[0], kind = descr[1];
    int size = descr[2] - '0';
    if (order == '>')
        return fail(o, "big-endian arrays (dtype '%s') are not supported; "
                       "save them with dtype '<%c%c'", descr, kind, descr[2]);
    bool ok = (order == '<' || (order == '|' && size == 1)) &&
              ((kind == 'f' && (size == 4 || size == 8)) ||
               ((kind == 'i' || kind == 'u') && (size == 1 || size == 2 || size == 4 || size == 8)) ||
               (kind == 'b' && size == 1));
    if (!ok)
        return fail(o, "unsupported dtype '%s' (float32, float64, integers and bool are)", descr);
    t->kind = kind;
    t->itemsize = size;
    return 0;
}

/* Element k of little-endian data as a float or as an integer. */
/* float64, rounded: float32 data is read straight into place (read_npy_data). */
static float load_float64(const uint8_t *p)
{
    double d;
    memcpy(&d, p, 8);
    return (float)d;
}

/* uint64 keeps its bit pattern: a saved random state comes back unchanged. */
static int64_t load_int(const uint8_t *p, Dtype t)
{
    uint64_t v = 0;
    for (int b = t.itemsize - 1; b >= 0; b--)
        v = v << 8 | p[b];
    int bits = 8 * t.itemsize;
    if (t.kind == 'i' && bits < 64 && (v >> (bits - 1) & 1))
        v |= ~(uint64_t)0 << bits;     /* sign extension */
    int64_t s;
    memcpy(&s, &v, sizeof s);
    return s;
}

/* ---- .npy: reading, front to back ------------------------------------------------------ */

/* numpy's np.load refuses headers longer than this (max_header_size, numpy
 * 1.24); every header numpy writes for the dtypes we read is far shorter. */
#define NPY_MAX_HEADER 10000
/* Elements are converted a piece at a time: memory is the array, not the file too. */
#define NPY_PIECE (64 * 1024)

/* Where a .npy's bytes come from: a slice of the mapped file (a plain .npy or
 * a stored member), or a deflated member inflated as it is read, so that no
 * byte the header did not account for is ever inflated or allocated. */
typedef struct {
    const Origin *o;
    const uint8_t *in;     /* stored: the next byte; deflated: the compressed data */
    uint64_t in_left;      /* compressed bytes not yet given to zlib (deflated) */
    uint64_t total, done;  /* the .npy's size (file or uncompressed member) and bytes read */
    bool deflated;
    z_stream z;
    uLong crc;
    const uint8_t *kept;   /* stored: mapped pages from here to in are still resident */
    nn_npz_check check;    /* asked before the data is read, if not NULL */
    void *ctx;
} Source;

/* Stored data is read once, front to back: the mapped pages behind the reader
 * are given back (they are the file's, read again if ever touched), so that
 * reading a 1 GB array costs the array, not the array and the file. */
#define RELEASE_BYTES (4u << 20)

static void release_read_pages(Source *s)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t from = (uintptr_t)s->kept & ~(page - 1), to = (uintptr_t)s->in & ~(page - 1);
    if (to - from < RELEASE_BYTES)
        return;
    madvise((void *)from, to - from, MADV_DONTNEED);
    s->kept = (const uint8_t *)to;
}

/* zlib counts in 32 bits: the next piece of a (ZIP64) input of *left bytes. */
static uInt next_piece(uint64_t *left)
{
    uInt n = *left > UINT_MAX ? UINT_MAX : (uInt)*left;
    *left -= n;
    return n;
}

/* Inflates exactly n bytes into dst; the stream must not end before. */
static int inflate_into(Source *s, uint8_t *dst, size_t n)
{
    s->z.next_out = dst;
    s->z.avail_out = (uInt)n;
    while (s->z.avail_out > 0) {
        if (s->z.avail_in == 0)
            s->z.avail_in = next_piece(&s->in_left);
        int zr = inflate(&s->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END && s->z.avail_out > 0)
            return fail(s->o, "deflated data is shorter than its stated size");
        if (zr == Z_BUF_ERROR)
            return fail(s->o, "corrupt deflated data: truncated");
        if (zr != Z_OK && zr != Z_STREAM_END)
            return fail(s->o, "corrupt deflated data: %s", s->z.msg ? s->z.msg : "?");
    }
    return 0;
}

/* The next n (at most NPY_PIECE or a header's) bytes of the .npy into dst. */
static int source_read(Source *s, uint8_t *dst, size_t n, const char *what)
{
    if (n > s->total - s->done)
        return fail(s->o, "truncated .npy %s", what);
    if (s->deflated) {
        if (inflate_into(s, dst, n) < 0)
            return -1;
    } else {
        memcpy(dst, s->in, n);
        s->in += n;
        release_read_pages(s);
    }
    s->done += n;
    s->crc = crc32_z(s->crc, dst, n);
    return 0;
}

/* A deflated member must end exactly where its stated size does. */
static int source_finish(Source *s)
{
    if (!s->deflated)
        return 0;
    uint8_t extra;
    s->z.next_out = &extra;
    s->z.avail_out = 1;
    int zr;
    do {
        if (s->z.avail_in == 0)
            s->z.avail_in = next_piece(&s->in_left);
        zr = inflate(&s->z, Z_NO_FLUSH);
    } while (zr == Z_OK && s->z.avail_out == 1);
    if (zr == Z_STREAM_END && s->z.avail_out == 1)
        return 0;
    if (s->z.avail_out == 0)
        return fail(s->o, "deflated data is longer than its stated size");
    return fail(s->o, "corrupt deflated data: %s", s->z.msg ? s->z.msg : "truncated");
}

/* The header: checked against the .npy's size before anything is allocated. */
static int read_npy_header(Source *s, NpyHeader *h, Dtype *t, size_t *count)
{
    static const uint8_t magic[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};
    uint8_t head[12];
    if (s->total < 10 || source_read(s, head, 8, "header") < 0 || memcmp(head, magic, 6) != 0)
        return fail(s->o, "not a .npy array (bad magic)");
    int major = head[6];
    if (major < 1 || major > 3 || head[7] != 0)
        return fail(s->o, "unsupported .npy version %d.%d", major, head[7]);
    size_t field = major == 1 ? 2 : 4;
    if (source_read(s, head + 8, field, "header") < 0)
        return -1;
    uint64_t hlen = major == 1 ? get16(head + 8) : get32(head + 8);
    if (hlen > s->total - s->done)
        return fail(s->o, "truncated .npy header (it says %llu bytes, %llu are left)",
                    (unsigned long long)hlen, (unsigned long long)(s->total - s->done));
    if (hlen > NPY_MAX_HEADER)
        return fail(s->o, "the .npy header is %llu bytes long; at most %d are read (as numpy)",
                    (unsigned long long)hlen, NPY_MAX_HEADER);
    char text[NPY_MAX_HEADER];
    if (source_read(s, (uint8_t *)text, (size_t)hlen, "header") < 0 ||
        parse_dict(text, (size_t)hlen, s->o, h) < 0 || parse_descr(h->descr, s->o, t) < 0)
        return -1;
    if (h->fortran_order)
        return fail(s->o, "Fortran-ordered arrays are not supported; save with np.ascontiguousarray");

    *count = 1;
    for (int d = 0; d < h->rank; d++) {
        if (h->shape[d] != 0 && *count > SIZE_MAX / 8 / (size_t)h->shape[d])
            return fail(s->o, "shape is too large");
        *count *= (size_t)h->shape[d];
    }
    uint64_t need = (uint64_t)*count * (uint64_t)t->itemsize, left = s->total - s->done;
    if (left != need)
        return fail(s->o, "the shape needs %llu bytes of data, %s %llu", (unsigned long long)need,
                    s->deflated ? "the member's stated size leaves room for" : "the array has",
                    (unsigned long long)left);
    return 0;
}

/* Room for count elements of size bytes, or an error naming the array: the
 * size is real (the file or member holds that many), but memory may still lack. */
static void *alloc_elements(const Source *s, size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size);
    if (!p)
        fail(s->o, "out of memory for its %zu elements (%zu bytes)", count, count * size);
    return p;
}

/* The elements, converted a piece at a time (a piece holds whole elements). */
static int read_npy_data(Source *s, Dtype t, size_t count, nn_array *a)
{
    void *out = alloc_elements(s, count, a->dtype == NN_F32 ? sizeof(float) : sizeof(int64_t));
    if (!out)
        return -1;
    if (a->dtype == NN_F32)
        a->f = out;
    else
        a->i = out;
    uint8_t piece[NPY_PIECE];
    size_t per_piece = NPY_PIECE / (size_t)t.itemsize;
    bool float32 = t.kind == 'f' && t.itemsize == 4;   /* read straight into a->f */
    for (size_t k = 0; k < count; k += per_piece) {
        size_t n = count - k < per_piece ? count - k : per_piece;
        uint8_t *dst = float32 ? (uint8_t *)(a->f + k) : piece;
        if (source_read(s, dst, n * (size_t)t.itemsize, "data") < 0)
            return -1;
        if (float32)
            continue;
        for (size_t j = 0; j < n; j++) {
            const uint8_t *p = piece + j * (size_t)t.itemsize;
            if (a->dtype == NN_F32)
                a->f[k + j] = load_float64(p);
            else
                a->i[k + j] = load_int(p, t);
        }
    }
    return source_finish(s);
}

/* Forward declaration: the file mapping (below) that a float32 .npy may be used in. */
typedef struct {
    const uint8_t *buf;
    size_t len;
} Mapped;
static bool use_in_place(const Mapped *m, const Source *s, Dtype t, size_t count, nn_array *a);

/* The array s holds: a whole .npy file or an .npz member; with m (a whole
 * .npy file, mapped), float32 data stays where it lies in m. */
static int parse_npy(Source *s, const Mapped *m, nn_array *a)
{
    NpyHeader h = {0};
    Dtype t = {0};
    size_t count;
    if (read_npy_header(s, &h, &t, &count) < 0)
        return -1;
    a->rank = h.rank;
    memcpy(a->shape, h.shape, sizeof a->shape);
    a->size = count;
    a->dtype = t.kind == 'f' ? NN_F32 : NN_I64;
    if (s->check && s->check(s->ctx, s->o->path, a) < 0)
        return -1;
    if (m && use_in_place(m, s, t, count, a))
        return 0;
    return read_npy_data(s, t, count, a);
}

/* ---- reading files ----------------------------------------------------------------------- */

/* The file, mapped read-only: memory is what the reader keeps, not the file
 * (a large .npz costs its arrays, not its arrays and a copy of itself). */

static int map_file(const char *path, Mapped *m)
{
    m->buf = NULL;
    m->len = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return nn_error(path, "cannot open: %s", strerror(errno));
    struct stat st;
    int rc = 0;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        rc = nn_error(path, "not a regular file");
    else if ((uint64_t)st.st_size > SIZE_MAX)
        rc = nn_error(path, "too large to map");
    else if (st.st_size > 0) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED)
            rc = nn_error(path, "cannot read: %s", strerror(errno));
        else
            m->buf = p, m->len = (size_t)st.st_size;
    }
    close(fd);
    return rc;
}

static void unmap_file(Mapped *m)
{
    if (m->buf)
        munmap((void *)m->buf, m->len);
}

/* A .npy file's float32 data used where it lies (predict --npy's inputs: no
 * copy, no page given back): the private mapping made writable, copy on
 * write, so a->f may be written without touching the file. a->map keeps the
 * mapping for nn_array_free. */
static bool use_in_place(const Mapped *m, const Source *s, Dtype t, size_t count, nn_array *a)
{
    if (t.kind != 'f' || t.itemsize != 4 || count == 0 || (uintptr_t)s->in % sizeof(float) != 0 ||
        mprotect((void *)m->buf, m->len, PROT_READ | PROT_WRITE) != 0)
        return false;
    a->f = (float *)(uintptr_t)s->in;
    a->map = (void *)m->buf;
    a->map_len = m->len;
    return true;
}

int nn_npy_read(const char *path, nn_array *a)
{
    memset(a, 0, sizeof *a);
    Mapped m;
    if (map_file(path, &m) < 0)
        return -1;
    Origin o = {path, NULL};
    Source s = {.o = &o, .in = m.buf, .kept = m.buf, .total = m.len};
    int rc = parse_npy(&s, &m, a);
    if (!a->map)
        unmap_file(&m);
    if (rc < 0)
        nn_array_free(a);
    return rc;
}

/* ---- .npz: the ZIP container ----------------------------------------------------------- */

enum {
    LOCAL_SIG = 0x04034b50, CENTRAL_SIG = 0x02014b50, END_SIG = 0x06054b50,
    END64_SIG = 0x06064b50, END64_LOCATOR_SIG = 0x07064b50,
    LOCAL_SIZE = 30, CENTRAL_SIZE = 46, END_SIZE = 22, END64_SIZE = 56, LOCATOR_SIZE = 20,
    METHOD_STORED = 0, METHOD_DEFLATED = 8,
};

/* Deflate cannot shrink data by more than 1032:1; a member claiming more is
 * lying, and believing it would let a tiny file allocate gigabytes. */
#define MAX_DEFLATE_RATIO 1032

/* Where the central directory is and how many entries it has. */
typedef struct {
    uint64_t entries, offset, size;
} Directory;

/* The end-of-central-directory record is the last thing in the file, followed
 * only by a comment of up to 65535 bytes: search backwards for it. */
static int find_directory(const uint8_t *buf, size_t len, const Origin *o, Directory *dir)
{
    if (len < END_SIZE)
        return fail(o, "not an .npz file (too short to be a ZIP archive)");
    size_t lowest = len - END_SIZE > 0xffff ? len - END_SIZE - 0xffff : 0;
    size_t at = len - END_SIZE;
    while (get32(buf + at) != END_SIG || at + END_SIZE + get16(buf + at + 20) != len) {
        if (at == lowest)
            return fail(o, "not an .npz file (no ZIP end-of-central-directory record)");
        at--;
    }
    if (get16(buf + at + 4) != 0 || get16(buf + at + 6) != 0)
        return fail(o, "multi-volume ZIP archives are not supported");
    dir->entries = get16(buf + at + 10);
    dir->size = get32(buf + at + 12);
    dir->offset = get32(buf + at + 16);

    /* ZIP64: a locator just before the record points at a record with 64-bit fields. */
    if (at >= LOCATOR_SIZE && get32(buf + at - LOCATOR_SIZE) == END64_LOCATOR_SIG) {
        uint64_t end64 = get64(buf + at - LOCATOR_SIZE + 8);
        if (end64 > len || len - end64 < END64_SIZE || get32(buf + end64) != END64_SIG)
            return fail(o, "corrupt ZIP64 end-of-central-directory record");
        dir->entries = get64(buf + end64 + 32);
        dir->size = get64(buf + end64 + 40);
        dir->offset = get64(buf + end64 + 48);
    }
    if (dir->offset > len || dir->size > len - dir->offset)
        return fail(o, "corrupt ZIP archive: the central directory lies past the end of the file");
    if (dir->entries > dir->size / CENTRAL_SIZE || dir->entries > INT_MAX)
        return fail(o, "corrupt ZIP archive: %llu entries cannot fit in the central directory",
                    (unsigned long long)dir->entries);
    return 0;
}

/* One central-directory entry. */
typedef struct {
    char name[256];
    int method;
    uint32_t crc;
    uint64_t csize, usize, offset;
} Entry;

/* Sizes and offset that did not fit in 32 bits are 0xffffffff, and the real
 * values follow, in that order, in the ZIP64 extra field (id 1). */
static int read_zip64_extra(const uint8_t *p, size_t n, const Origin *o, Entry *e)
{
    while (n >= 4) {
        uint16_t id = get16(p), size = get16(p + 2);
        if (size > n - 4)
            break;
        if (id == 1) {
            uint64_t *fields[3] = {&e->usize, &e->csize, &e->offset};
            const uint8_t *q = p + 4, *end = q + size;
            for (int k = 0; k < 3; k++) {
                if (*fields[k] != 0xffffffff)
                    continue;
                if (end - q < 8)
                    return fail(o, "corrupt ZIP64 extra field");
                *fields[k] = get64(q);
                q += 8;
            }
            return 0;
        }
        p += 4 + size;
        n -= 4 + size;
    }
    if (e->usize == 0xffffffff || e->csize == 0xffffffff || e->offset == 0xffffffff)
        return fail(o, "corrupt ZIP archive: a ZIP64 size has no ZIP64 extra field");
    return 0;
}

/* The entry at buf[*at], within the directory that ends at dir_end; moves *at past it. */
static int read_entry(const uint8_t *buf, size_t *at, size_t dir_end, const Origin *o, Entry *e)
{
    const uint8_t *p = buf + *at;
    if (dir_end - *at < CENTRAL_SIZE || get32(p) != CENTRAL_SIG)
        return fail(o, "corrupt ZIP central directory");
    size_t nlen = get16(p + 28), xlen = get16(p + 30), clen = get16(p + 32);
    if (dir_end - *at - CENTRAL_SIZE < nlen + xlen + clen)
        return fail(o, "corrupt ZIP central directory");
    if (nlen >= sizeof e->name)
        return fail(o, "a member name is longer than %zu bytes", sizeof e->name - 1);
    memcpy(e->name, p + CENTRAL_SIZE, nlen);
    e->name[nlen] = '\0';
    *at += CENTRAL_SIZE + nlen + xlen + clen;

    Origin mo = {o->path, e->name};
    if (get16(p + 8) & 1)
        return fail(&mo, "encrypted members are not supported");
    e->method = get16(p + 10);
    e->crc = get32(p + 16);
    e->csize = get32(p + 20);
    e->usize = get32(p + 24);
    e->offset = get32(p + 42);
    return read_zip64_extra(p + CENTRAL_SIZE + nlen, xlen, &mo, e);
}

/* Where entry e's data starts, checked against the file. */
static int member_start(const uint8_t *buf, size_t len, const Entry *e, const Origin *o,
                        uint64_t *start)
{
    if (e->offset > len || len - e->offset < LOCAL_SIZE || get32(buf + e->offset) != LOCAL_SIG)
        return fail(o, "corrupt ZIP archive: bad local header offset");
    *start = e->offset + LOCAL_SIZE + get16(buf + e->offset + 26) + get16(buf + e->offset + 28);
    if (*start > len || e->csize > len - *start)
        return fail(o, "the member's data (%llu bytes at offset %llu) lies past the end of the file",
                    (unsigned long long)e->csize, (unsigned long long)*start);
    return 0;
}

/* Entry e's .npy, read straight from the file (stored) or inflated as its
 * header and elements are read (deflated), then its CRC checked. */
/* What reading an .npz needs besides the file: the caller's check. */
typedef struct {
    const char *path;
    nn_npz_check check;
    void *ctx;
} Reading;

static int read_member_npy(const uint8_t *buf, size_t len, const Entry *e, const Origin *o,
                           const Reading *r, nn_array *a)
{
    uint64_t start = 0;
    if (member_start(buf, len, e, o, &start) < 0)
        return -1;
    Source s = {.o = o, .in = buf + start, .kept = buf + start, .in_left = e->csize,
                .total = e->usize, .check = r->check, .ctx = r->ctx};
    if (e->method == METHOD_STORED) {
        if (e->csize != e->usize)
            return fail(o, "corrupt ZIP archive: a stored member's sizes differ");
    } else if (e->method == METHOD_DEFLATED) {
        if (e->usize > (e->csize + 64) * MAX_DEFLATE_RATIO)
            return fail(o, "corrupt ZIP archive: implausible uncompressed size %llu",
                        (unsigned long long)e->usize);
        s.deflated = true;
        s.z.next_in = (Bytef *)(buf + start);
        if (inflateInit2(&s.z, -15) != Z_OK)    /* raw deflate: no zlib header */
            return fail(o, "cannot start zlib's inflate");
    } else {
        return fail(o, "compression method %d is not supported (stored and deflated are)", e->method);
    }
    int rc = parse_npy(&s, NULL, a);
    if (s.deflated)
        inflateEnd(&s.z);
    if (rc == 0 && s.crc != e->crc)
        rc = fail(o, "CRC mismatch: the member is corrupt");
    return rc;
}

/* Entry e as array a, named without its ".npy"; a holds no data on error. */
static int read_member(const uint8_t *buf, size_t len, const Entry *e, const Reading *r,
                       nn_array *a)
{
    Origin o = {r->path, e->name};
    size_t n = strlen(e->name);
    if (n < 4 || strcmp(e->name + n - 4, ".npy") != 0)
        return fail(&o, "not a .npy member");
    if (n - 4 >= sizeof a->name)
        return fail(&o, "the name is longer than %zu bytes", sizeof a->name - 1);
    memcpy(a->name, e->name, n - 4);
    a->name[n - 4] = '\0';
    if (read_member_npy(buf, len, e, &o, r, a) < 0) {
        nn_array_free(a);
        return -1;
    }
    return 0;
}

static int parse_npz(const uint8_t *buf, size_t len, const Reading *r, nn_array **arrays, int *n)
{
    Origin o = {r->path, NULL};
    Directory dir = {0};
    if (find_directory(buf, len, &o, &dir) < 0)
        return -1;
    *arrays = nn_alloc(dir.entries, sizeof(nn_array));
    size_t at = (size_t)dir.offset, end = (size_t)(dir.offset + dir.size);
    for (*n = 0; (uint64_t)*n < dir.entries; (*n)++) {
        Entry e;    /* a member that fails holds nothing: *n counts what to free */
        if (read_entry(buf, &at, end, &o, &e) < 0 || read_member(buf, len, &e, r, &(*arrays)[*n]) < 0)
            return -1;
    }
    return 0;
}

int nn_npz_read(const char *path, nn_array **arrays, int *n)
{
    return nn_npz_read_checked(path, NULL, NULL, arrays, n);
}

int nn_npz_read_checked(const char *path, nn_npz_check check, void *ctx, nn_array **arrays, int *n)
{
    *arrays = NULL;
    *n = 0;
    Mapped m;
    if (map_file(path, &m) < 0)
        return -1;
    Reading r = {path, check, ctx};
    int rc = parse_npz(m.buf, m.len, &r, arrays, n);
    unmap_file(&m);
    if (rc < 0) {
        nn_npz_free(*arrays, *n);
        *arrays = NULL;
        *n = 0;
    }
    return rc;
}

/* ---- writing ------------------------------------------------------------------------------ */

/* "%s.tmp.<pid>" beside path, fsync'd, then renamed over path: a crash at any
 * moment leaves either the old file or the new one, whole. emit only writes;
 * a failed fwrite shows in ferror(). */
static int write_atomically(const char *path, void (*emit)(FILE *, const void *), const void *ctx)
{
    size_t cap = strlen(path) + 32;
    char *tmp = nn_alloc(cap, 1);
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        int rc = nn_error(path, "cannot create %s: %s", tmp, strerror(errno));
        free(tmp);
        return rc;
    }
    emit(f, ctx);
    int rc = 0;
    if (ferror(f) || fflush(f) != 0 || fsync(fileno(f)) != 0)
        rc = nn_error(path, "cannot write %s: %s", tmp, strerror(errno));
    if (fclose(f) != 0 && rc == 0)
        rc = nn_error(path, "cannot write %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) != 0)
        rc = nn_error(path, "cannot rename %s to it: %s", tmp, strerror(errno));
    if (rc < 0)
        remove(tmp);
    free(tmp);
    return rc;
}

/* An array's .npy header, padded so that the data starts at a multiple of 64. */
typedef struct {
    uint8_t bytes[256];
    size_t len;
    const void *data;      /* the elements, as they are in memory */
    size_t data_len;
} NpyImage;

static const void *array_data(const nn_array *a)
{
    return a->dtype == NN_F32 ? (const void *)a->f : a->dtype == NN_I64 ? (const void *)a->i
                                                                         : (const void *)a->u8;
}

static int check_array(const nn_array *a, const char *path)
{
    if (strnlen(a->name, sizeof a->name) == sizeof a->name)
        return nn_error(path, "an array name is not terminated");
    if (a->rank < 0 || a->rank > NN_MAX_RANK)
        return nn_error(path, "array '%s': rank %d is not in 0..%d", a->name, a->rank, NN_MAX_RANK);
    size_t count = 1;
    for (int d = 0; d < a->rank; d++) {
        if (a->shape[d] < 0)
            return nn_error(path, "array '%s': negative dimension", a->name);
        if (a->shape[d] != 0 && count > SIZE_MAX / 8 / (size_t)a->shape[d])
            return nn_error(path, "array '%s': shape is too large", a->name);
        count *= (size_t)a->shape[d];
    }
    if (a->dtype != NN_F32 && a->dtype != NN_I64 && a->dtype != NN_U8)
        return nn_error(path, "array '%s': unknown dtype %d", a->name, (int)a->dtype);
    if (count != a->size)
        return nn_error(path, "array '%s': size %zu does not match its shape (%zu elements)",
                        a->name, a->size, count);
    if (array_data(a) == NULL && count > 0)
        return nn_error(path, "array '%s' has no data", a->name);
    return 0;
}

static void npy_image(const nn_array *a, NpyImage *img)
{
    char dict[160], dims[80] = "";
    size_t used = 0;
    for (int d = 0; d < a->rank; d++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%d%s", a->shape[d],
                                 a->rank == 1 ? "," : d + 1 < a->rank ? ", " : "");
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }",
                     a->dtype == NN_F32 ? "<f4" : a->dtype == NN_I64 ? "<i8" : "|u1", dims);
    size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64;    /* magic, version, length, dict, '\n' */
    memcpy(img->bytes, "\x93NUMPY\x01\x00", 8);
    put16(img->bytes + 8, (uint32_t)(total - 10));
    memcpy(img->bytes + 10, dict, (size_t)n);
    memset(img->bytes + 10 + n, ' ', total - 10 - (size_t)n - 1);
    img->bytes[total - 1] = '\n';
    img->len = total;
    img->data = array_data(a);
    img->data_len = a->size * (a->dtype == NN_F32 ? sizeof(float) : a->dtype == NN_I64 ? sizeof(int64_t) : 1);
}

/* Unbuffered: the header and the data go out in one write each, the data
 * never copied through stdio's buffer. */
static void emit_npy(FILE *f, const void *ctx)
{
    const NpyImage *img = ctx;
    setvbuf(f, NULL, _IONBF, 0);
    fwrite(img->bytes, 1, img->len, f);
    fwrite(img->data, 1, img->data_len, f);
}

int nn_npy_write(const char *path, const nn_array *a)
{
    if (check_array(a, path) < 0)
        return -1;
    NpyImage img;
    npy_image(a, &img);
    return write_atomically(path, emit_npy, &img);
}

/* What the ZIP writer needs per member. 1980-01-01 00:00 as the date, so the
 * same arrays always give the same file. */
#define DOS_DATE_1980 0x0021

typedef struct {
    const nn_array *arrays;
    int n;
    NpyImage *images;
    uint32_t *crcs, *offsets;
} NpzPlan;

/* The fields a local header and a central-directory entry share, from "version needed" on. */
static uint8_t *put_common(uint8_t *p, const NpzPlan *z, int k)
{
    uint32_t size = (uint32_t)(z->images[k].len + z->images[k].data_len);
    p = put16(p, 20);                  /* version needed: 2.0 */
    p = put16(p, 0);                   /* flags */
    p = put16(p, METHOD_STORED);
    p = put16(p, 0);                   /* time */
    p = put16(p, DOS_DATE_1980);
    p = put32(p, z->crcs[k]);
    p = put32(p, size);                /* compressed */
    p = put32(p, size);                /* uncompressed */
    p = put16(p, (uint32_t)strlen(z->arrays[k].name) + 4);
    return put16(p, 0);                /* extra field length */
}

static void emit_name(FILE *f, const nn_array *a)
{
    fputs(a->name, f);
    fputs(".npy", f);
}

static void emit_npz(FILE *f, const void *ctx)
{
    const NpzPlan *z = ctx;
    uint8_t h[CENTRAL_SIZE], *p;
    for (int k = 0; k < z->n; k++) {
        p = put32(h, LOCAL_SIG);
        p = put_common(p, z, k);
        fwrite(h, 1, (size_t)(p - h), f);
        emit_name(f, &z->arrays[k]);
        emit_npy(f, &z->images[k]);
    }
    long dir_start = ftell(f);
    for (int k = 0; k < z->n; k++) {
        p = put32(h, CENTRAL_SIG);
        p = put16(p, 3 << 8 | 20);     /* made by: Unix, ZIP 2.0 */
        p = put_common(p, z, k);
        p = put16(p, 0);               /* comment length */
        p = put16(p, 0);               /* disk */
        p = put16(p, 0);               /* internal attributes */
        p = put32(p, 0100644u << 16);  /* external: a regular file, rw-r--r-- */
        p = put32(p, z->offsets[k]);
        fwrite(h, 1, (size_t)(p - h), f);
        emit_name(f, &z->arrays[k]);
    }
    long dir_end = ftell(f);
    p = put32(h, END_SIG);
    p = put32(p, 0);                   /* this disk, the directory's disk */
    p = put16(p, (uint32_t)z->n);
    p = put16(p, (uint32_t)z->n);
    p = put32(p, (uint32_t)(dir_end - dir_start));
    p = put32(p, (uint32_t)dir_start);
    p = put16(p, 0);                   /* comment length */
    fwrite(h, 1, (size_t)(p - h), f);
}

/* Checks the arrays and lays out the archive; without ZIP64 every offset must fit in 32 bits. */
static int plan_npz(const char *path, NpzPlan *z)
{
    if (z->n < 0 || z->n > 0xffff)
        return nn_error(path, "cannot write %d arrays in one .npz (at most 65535)", z->n);
    uint64_t local = 0, central = 0;    /* bytes of local headers and data; of the directory */
    for (int k = 0; k < z->n; k++) {
        const nn_array *a = &z->arrays[k];
        if (check_array(a, path) < 0)
            return -1;
        for (int j = 0; j < k; j++)
            if (strcmp(z->arrays[j].name, a->name) == 0)
                return nn_error(path, "two arrays are named '%s'", a->name);
        NpyImage *img = &z->images[k];
        npy_image(a, img);
        z->crcs[k] = (uint32_t)crc32_z(crc32_z(0, img->bytes, img->len), img->data, img->data_len);
        z->offsets[k] = (uint32_t)local;
        size_t name = strlen(a->name) + 4;
        local += LOCAL_SIZE + name + img->len + img->data_len;
        central += CENTRAL_SIZE + name;
        if (local + central + END_SIZE > 0xffffffff)
            return nn_error(path, "the arrays need more than 4 GB; "
                                  ".npz files that large are not supported");
    }
    return 0;
}

int nn_npz_write(const char *path, const nn_array *arrays, int n)
{
    NpzPlan z = {arrays, n, NULL, NULL, NULL};
    int count = n > 0 ? n : 0;
    z.images = nn_alloc((size_t)count, sizeof *z.images);
    z.crcs = nn_alloc((size_t)count, sizeof *z.crcs);
    z.offsets = nn_alloc((size_t)count, sizeof *z.offsets);
    int rc = plan_npz(path, &z);
    if (rc == 0)
        rc = write_atomically(path, emit_npz, &z);
    free(z.images);
    free(z.crcs);
    free(z.offsets);
    return rc;
}

bool nn_array_is_f32(const nn_array *a, int rank, const int *shape)
{
    if (a->dtype != NN_F32 || a->rank != rank)
        return false;
    for (int d = 0; d < rank; d++)
        if (a->shape[d] != shape[d])
            return false;
    return true;
}
