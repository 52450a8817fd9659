/* h5.c - Keras's HDF5 files: weights in Keras 2's layout, read and written,
 * and a string attribute (model_config) read; and the reader of weight files
 * of either kind (npz.c's or these), told apart by their first bytes.
 *
 * The layout follows keras/saving/legacy/hdf5_format.py (Keras 2.x):
 * save_weights_to_hdf5_group, load_weights_from_hdf5_group and
 * save/load_attributes_from_hdf5_group (the split name lists). Keras matches
 * a file's layers to the model's by position; we match them by name, as the
 * .npz files do, which the names Keras writes allow: a dataset's name, less
 * its ":0", what precedes the layer's own name (a name scope) and the cells
 * of recurrent layers ("lstm_cell"), is the tensor's, '/' read as '.'. When
 * the names differ but the layers line up, by position, as Keras does
 * (nn_weight_file_by_position).
 *
 * What nncc keeps beside the weights (the .npz's "meta." arrays: class
 * names, rescale, ...) goes in a root group nncc_meta, which Keras's
 * load_weights never looks at (it reads the groups layer_names lists).
 *
 * The HDF5 library prints its own error stack by default; it is switched off
 * (H5Eset_auto2) and every failure becomes one message naming the file and
 * the group, attribute or dataset. Files are opened read-only, and a
 * dataset's dimensions are believed only as far as the file stores its bytes
 * (check_stored), so a few bytes of header cannot make us allocate gigabytes. */
#include "h5.h"
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char hdf5_signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};

bool nn_is_hdf5(const char *path)
{
    unsigned char head[8];
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    bool yes = fread(head, 1, sizeof head, f) == sizeof head &&
               memcmp(head, hdf5_signature, sizeof head) == 0;
    fclose(f);
    return yes;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t ls = strlen(s), lt = strlen(tail);
    return ls >= lt && strcmp(s + ls - lt, tail) == 0;
}

bool nn_h5_name(const char *path)
{
    return ends_with(path, ".h5") || ends_with(path, ".hdf5");
}

void nn_weight_file_free(nn_weight_file *w)
{
    if (w->where)
        for (int i = 0; i < w->n; i++)
            free(w->where[i]);
    free(w->where);
    nn_npz_free(w->arrays, w->n);
    memset(w, 0, sizeof *w);
}

#ifndef NN_HAVE_HDF5

bool nn_h5_supported(void)
{
    return false;
}

static int no_hdf5(const char *path)
{
    return nn_error(path, "a Keras HDF5 file, but this nncc was built without HDF5; install "
                          "libhdf5-dev and rebuild (make)");
}

static int read_h5_weights(const char *path, nn_weight_file *w)
{
    (void)w;
    return no_hdf5(path);
}

int nn_h5_check_writable(const char *path)
{
    return nn_h5_name(path) ? no_hdf5(path) : 0;
}

int nn_h5_read_attribute(const char *path, const char *name, char **text, size_t *len)
{
    (void)name, (void)len;
    *text = NULL;
    return no_hdf5(path);
}

int nn_h5_write_weights(const char *path, const char *const *layer_names, int n_layers,
                        const nn_array *arrays, int n, const nn_array *meta, int n_meta)
{
    (void)layer_names, (void)n_layers, (void)arrays, (void)n, (void)meta, (void)n_meta;
    return no_hdf5(path);
}

#else

#include <hdf5.h>

bool nn_h5_supported(void)
{
    return true;
}

int nn_h5_check_writable(const char *path)
{
    (void)path;
    return 0;
}

/* What Keras writes as keras_version: the release whose layout this follows
 * (its load_weights only asks whether it is "1", the Keras 1 layout). */
#define KERAS_LAYOUT_VERSION "2.15.0"
/* save_attributes_to_hdf5_group splits a list whose array exceeds this. */
#define HDF5_OBJECT_HEADER_LIMIT 64512

static void quiet_hdf5(void)
{
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
}

/* ---- reading -------------------------------------------------------------------- */

typedef struct {
    char **s;
    int n;
} Names;

static void names_free(Names *l)
{
    for (int i = 0; i < l->n; i++)
        free(l->s[i]);
    free(l->s);
    memset(l, 0, sizeof *l);
}

/* items (n of size bytes) with room for one more: the room doubles when n
 * reaches a power of two, so that a list of a million names read from a
 * hostile file costs a million copies, not half a million million. */
static void *room_for_one_more(void *items, int n, size_t size)
{
    if (n > 0 && (n & (n - 1)) != 0)
        return items;
    void *more = nn_alloc(n > 0 ? 2 * (size_t)n : 1, size);
    if (n)
        memcpy(more, items, (size_t)n * size);
    free(items);
    return more;
}

static void names_add(Names *l, const char *s, size_t len)
{
    l->s = room_for_one_more(l->s, l->n, sizeof *l->s);
    l->s[l->n] = nn_alloc(len + 1, 1);
    memcpy(l->s[l->n], s, len);
    l->n++;
}

/* The strings of attribute `name` of obj appended to l; -1 if it is not a
 * string attribute. An empty attribute of any type (Keras writes a layer
 * without weights an empty float array) adds nothing. */
static int read_string_attr(hid_t obj, const char *name, Names *l)
{
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    if (a < 0)
        return -1;
    hid_t type = H5Aget_type(a), space = H5Aget_space(a);
    hssize_t count = H5Sget_simple_extent_npoints(space);
    int rc = type < 0 || space < 0 || count < 0 ? -1 : 0;
    if (rc == 0 && count > 0 && H5Tget_class(type) != H5T_STRING)
        rc = -1;
    else if (rc == 0 && count > 0 && H5Tis_variable_str(type) > 0) {
        char **v = nn_alloc((size_t)count, sizeof *v);
        hid_t mem = H5Tcopy(H5T_C_S1);
        H5Tset_size(mem, H5T_VARIABLE);
        H5Tset_cset(mem, H5Tget_cset(type));   /* h5py writes a str as UTF-8 */
        rc = H5Aread(a, mem, v) < 0 ? -1 : 0;
        for (hssize_t i = 0; rc == 0 && i < count; i++)
            names_add(l, v[i] ? v[i] : "", v[i] ? strlen(v[i]) : 0);
        if (rc == 0)
            H5Dvlen_reclaim(mem, space, H5P_DEFAULT, v);
        H5Tclose(mem);
        free(v);
    } else if (rc == 0 && count > 0) {
        size_t size = H5Tget_size(type);
        char *buf = nn_alloc((size_t)count * size + 1, 1);
        rc = size == 0 || H5Aread(a, type, buf) < 0 ? -1 : 0;
        for (hssize_t i = 0; rc == 0 && i < count; i++)
            names_add(l, buf + (size_t)i * size, strnlen(buf + (size_t)i * size, size));
        free(buf);
    }
    H5Sclose(space);
    H5Tclose(type);
    H5Aclose(a);
    return rc;
}

/* load_attributes_from_hdf5_group: `name`, or name0, name1, ... joined. */
static int read_name_list(const char *path, hid_t obj, const char *where, const char *name,
                          Names *l)
{
    char part[80];
    if (H5Aexists(obj, name) > 0) {
        if (read_string_attr(obj, name, l) != 0)
            return nn_error(path, "attribute '%s' of %s is not a list of names", name, where);
        return 0;
    }
    int k = 0;
    for (;; k++) {
        snprintf(part, sizeof part, "%s%d", name, k);
        if (H5Aexists(obj, part) <= 0)
            break;
        if (read_string_attr(obj, part, l) != 0)
            return nn_error(path, "attribute '%s' of %s is not a list of names", part, where);
    }
    if (k == 0)
        return nn_error(path, "%s has no attribute '%s': not weights as Keras writes them", where,
                        name);
    return 0;
}

/* Keras's "block/dense/kernel:0" in layer "dense" -> "dense.kernel" (see the top). */
static int tensor_name(const char *layer, const char *keras, char *out, size_t cap)
{
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", keras) >= (int)sizeof buf)
        return -1;
    char *colon = strrchr(buf, ':');
    if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1))
        *colon = '\0';
    char *parts[64];
    int n = 0, start = 0;
    for (char *p = strtok(buf, "/"); p && n < 64; p = strtok(NULL, "/"))
        parts[n++] = p;
    for (int i = 0; i < n - 1 && !start; i++)
        if (strcmp(parts[i], layer) == 0)
            start = i + 1;
    size_t used = (size_t)snprintf(out, cap, "%s", layer);
    for (int i = start; i < n && used < cap; i++)
        if (!ends_with(parts[i], "_cell") || i == n - 1)
            used += (size_t)snprintf(out + used, cap - used, ".%s", parts[i]);
    return used < cap ? 0 : -1;
}

static void file_add(nn_weight_file *w, const nn_array *a, const char *where)
{
    w->arrays = room_for_one_more(w->arrays, w->n, sizeof *w->arrays);
    w->where = room_for_one_more(w->where, w->n, sizeof *w->where);
    w->arrays[w->n] = *a;
    w->where[w->n] = nn_alloc(strlen(where) + 1, 1);
    strcpy(w->where[w->n], where);
    w->n++;
}

/* Deflate, HDF5's usual filter, cannot shrink data by more than 1032:1. */
#define MAX_FILTER_RATIO 1032

/* Whether the file holds the bytes dataset d's dimensions claim: a few bytes
 * of header can declare 2^31 floats that were never written (HDF5 then reads
 * fill values), and allocating for them would be a tiny file's doing. */
static int check_stored(const char *path, hid_t d, hid_t type, const char *where, size_t count)
{
    uint64_t need = (uint64_t)count * (uint64_t)H5Tget_size(type);
    uint64_t stored = H5Dget_storage_size(d);
    hid_t dcpl = H5Dget_create_plist(d);
    int filters = dcpl < 0 ? 0 : H5Pget_nfilters(dcpl);
    if (dcpl >= 0)
        H5Pclose(dcpl);
    uint64_t most = filters > 0 ? stored * MAX_FILTER_RATIO : stored;
    if (need > most)
        return nn_error(path, "dataset %s claims %zu values (%llu bytes), but the file stores "
                        "%llu bytes of it", where, count, (unsigned long long)need,
                        (unsigned long long)stored);
    return 0;
}

/* One dataset into a (named by the caller): floats as float32; integers as
 * int64 (as npz.c reads them) only where ints is true (the meta arrays). */
static int read_dataset(const char *path, hid_t d, const char *where, bool ints, nn_array *a)
{
    hid_t type = H5Dget_type(d), space = H5Dget_space(d);
    int rank = H5Sget_simple_extent_ndims(space), rc = 0;
    hsize_t dims[NN_MAX_RANK];
    if (type < 0 || space < 0 || rank < 0)
        rc = nn_error(path, "cannot read dataset %s", where);
    else if (H5Tget_class(type) != H5T_FLOAT && !(ints && H5Tget_class(type) == H5T_INTEGER))
        rc = nn_error(path, "dataset %s does not hold floating-point numbers", where);
    else if (rank > NN_MAX_RANK)
        rc = nn_error(path, "dataset %s has %d dimensions; at most %d are read", where, rank,
                      NN_MAX_RANK);
    if (rc == 0) {
        H5Sget_simple_extent_dims(space, dims, NULL);
        a->dtype = H5Tget_class(type) == H5T_FLOAT ? NN_F32 : NN_I64;
        a->rank = rank;
        a->size = 1;
        for (int k = 0; k < rank && rc == 0; k++) {
            /* A model's tensor is below 2^31 floats: a hostile size must not wrap. */
            if (dims[k] > (hsize_t)INT_MAX ||
                (a->size && (size_t)dims[k] > (size_t)INT_MAX / a->size))
                rc = nn_error(path, "dataset %s is too large for a weight", where);
            a->shape[k] = (int)dims[k];
            a->size *= (size_t)dims[k];
        }
        if (rc == 0)
            rc = check_stored(path, d, type, where, a->size);
    }
    if (rc == 0) {
        bool f = a->dtype == NN_F32;
        char what[1100];
        snprintf(what, sizeof what, "dataset %s", where);
        void *buf = nn_alloc_for(path, what, a->size, f ? sizeof *a->f : sizeof *a->i);
        if (f)
            a->f = buf;
        else
            a->i = buf;
        if (!buf)
            rc = -1;
        else if (a->size && H5Dread(d, f ? H5T_NATIVE_FLOAT : H5T_NATIVE_INT64, H5S_ALL, H5S_ALL,
                               H5P_DEFAULT, buf) < 0)
            rc = nn_error(path, "cannot read dataset %s", where);
    }
    H5Sclose(space);
    H5Tclose(type);
    return rc;
}

/* Every dataset that layer group g's weight_names lists. */
static int read_layer(const char *path, hid_t g, const char *group_path, const char *layer,
                      nn_weight_file *w)
{
    Names names = {0};
    int rc = read_name_list(path, g, group_path, "weight_names", &names);
    for (int i = 0; i < names.n && rc == 0; i++) {
        char where[1024];
        snprintf(where, sizeof where, "%s/%s", group_path, names.s[i]);
        nn_array a = {0};
        if (tensor_name(layer, names.s[i], a.name, sizeof a.name) != 0) {
            rc = nn_error(path, "dataset %s: the name is too long", where);
            break;
        }
        hid_t d = H5Dopen2(g, names.s[i], H5P_DEFAULT);
        if (d < 0) {
            rc = H5Lexists(g, names.s[i], H5P_DEFAULT) > 0
                     ? nn_error(path, "%s is not a dataset, but weight_names of %s lists it",
                                where, group_path)
                     : nn_error(path, "no dataset %s, which weight_names of %s lists", where,
                                group_path);
            break;
        }
        rc = read_dataset(path, d, where, false, &a);
        H5Dclose(d);
        if (rc == 0)
            file_add(w, &a, where);
        else
            free(a.f);
    }
    names_free(&names);
    return rc;
}

/* The weights: /model_weights when the file is a whole model (model.save),
 * else the root (model.save_weights). */
static int read_weights_group(const char *path, hid_t f, nn_weight_file *w)
{
    bool whole = H5Lexists(f, "model_weights", H5P_DEFAULT) > 0;
    const char *base = whole ? "/model_weights" : "";
    hid_t root = H5Gopen2(f, whole ? "model_weights" : "/", H5P_DEFAULT);
    if (root < 0)
        return nn_error(path, "cannot open group %s", whole ? base : "/");
    Names layers = {0};
    int rc = read_name_list(path, root, whole ? base : "the file's root", "layer_names", &layers);
    for (int i = 0; i < layers.n && rc == 0; i++) {
        char group_path[600];
        snprintf(group_path, sizeof group_path, "%s/%s", base, layers.s[i]);
        hid_t g = H5Lexists(root, layers.s[i], H5P_DEFAULT) > 0
                      ? H5Gopen2(root, layers.s[i], H5P_DEFAULT) : -1;
        if (g < 0) {
            rc = nn_error(path, "no group %s, which layer_names lists", group_path);
            break;
        }
        rc = read_layer(path, g, group_path, layers.s[i], w);
        H5Gclose(g);
    }
    names_free(&layers);
    H5Gclose(root);
    return rc;
}

/* What nncc keeps beside the weights (class names, rescale, ...: the .npz's
 * "meta." arrays), in a root group Keras's load_weights does not look at. */
#define META_GROUP "nncc_meta"

/* Every dataset of the meta group, under its own name. */
static int read_meta_group(const char *path, hid_t f, nn_weight_file *w)
{
    hid_t g = H5Gopen2(f, META_GROUP, H5P_DEFAULT);
    H5G_info_t info;
    if (g < 0 || H5Gget_info(g, &info) < 0) {
        if (g >= 0)
            H5Gclose(g);
        return nn_error(path, "cannot read group /" META_GROUP);
    }
    int rc = 0;
    for (hsize_t i = 0; i < info.nlinks && rc == 0; i++) {
        nn_array a = {0};
        char where[200];
        if (H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, a.name, sizeof a.name,
                               H5P_DEFAULT) < 0) {
            rc = nn_error(path, "cannot read group /" META_GROUP);
            break;
        }
        snprintf(where, sizeof where, "/" META_GROUP "/%s", a.name);
        hid_t d = H5Dopen2(g, a.name, H5P_DEFAULT);
        rc = d < 0 ? nn_error(path, "%s is not a dataset", where)
                   : read_dataset(path, d, where, true, &a);
        if (d >= 0)
            H5Dclose(d);
        if (rc == 0)
            file_add(w, &a, where);
        else
            nn_array_free(&a);
    }
    H5Gclose(g);
    return rc;
}

/* libhdf5 1.10.8 can loop forever, or crash, on a damaged file (fuzz_h5
 * found global heaps that make H5Aread spin, read past a buffer or jump
 * through a bad pointer; h5py does the same on them: see
 * tests/fuzz/findings-libraries/h5/). So reading a file has a time limit,
 * NNRT_HDF5_SECONDS or 30 s and a second per 16 MB, and a fault inside
 * libhdf5 while it reads is caught: either way the process says so, naming
 * the file, and exits 1. Safe because a file is only read here and nothing
 * is being written while it is. The fuzzing build leaves faults to the
 * sanitizers, which must see them. */
#define HDF5_SECONDS 30
#define HDF5_BYTES_PER_SECOND (16L << 20)

static char timeout_message[4300], fault_message[4300];
static size_t timeout_len, fault_len;
#ifdef NN_FUZZING
static const int guarded[] = {SIGALRM};
#else
static const int guarded[] = {SIGALRM, SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT};
#endif
#define N_GUARDED (sizeof guarded / sizeof *guarded)
static struct sigaction saved[N_GUARDED];

static void hdf5_failed(int sig)
{
    const char *msg = sig == SIGALRM ? timeout_message : fault_message;
    ssize_t wrote = write(STDERR_FILENO, msg, sig == SIGALRM ? timeout_len : fault_len);
    (void)wrote;
    _exit(1);
}

static unsigned reading_seconds(const char *path)
{
    const char *env = getenv("NNRT_HDF5_SECONDS");
    long given = env ? strtol(env, NULL, 10) : 0;
    if (given > 0)
        return given < 86400 ? (unsigned)given : 86400;
    struct stat st;
    long long size = stat(path, &st) == 0 ? (long long)st.st_size : 0;
    return HDF5_SECONDS + (unsigned)(size / HDF5_BYTES_PER_SECOND);
}

static size_t message_length(int n, size_t cap)
{
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

static void start_watchdog(const char *path)
{
    unsigned seconds = reading_seconds(path);
    int n = snprintf(timeout_message, sizeof timeout_message,
                     "%s: error: the HDF5 library did not finish reading the file in %u s "
                     "(damaged?)\n", path, seconds);
    timeout_len = message_length(n, sizeof timeout_message);
    n = snprintf(fault_message, sizeof fault_message,
                 "%s: error: the HDF5 library crashed reading the file (damaged?)\n", path);
    fault_len = message_length(n, sizeof fault_message);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = hdf5_failed;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < N_GUARDED; i++)
        sigaction(guarded[i], &sa, &saved[i]);
    alarm(seconds);
}

static void stop_watchdog(void)
{
    alarm(0);
    for (size_t i = 0; i < N_GUARDED; i++)
        sigaction(guarded[i], &saved[i], NULL);
}

/* The file, read-only, under the watchdog until close_hdf5. */
static hid_t open_hdf5(const char *path)
{
    quiet_hdf5();
    start_watchdog(path);
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (f < 0) {
        stop_watchdog();
        nn_error(path, "cannot open as an HDF5 file (damaged?)");
    }
    return f;
}

static void close_hdf5(hid_t f)
{
    H5Fclose(f);
    stop_watchdog();
}

static int read_h5_weights(const char *path, nn_weight_file *w)
{
    hid_t f = open_hdf5(path);
    if (f < 0)
        return -1;
    int rc = read_weights_group(path, f, w);
    w->n_weights = w->n;
    if (rc == 0 && H5Lexists(f, META_GROUP, H5P_DEFAULT) > 0)
        rc = read_meta_group(path, f, w);
    close_hdf5(f);
    return rc;
}

int nn_h5_read_attribute(const char *path, const char *name, char **text, size_t *len)
{
    *text = NULL;
    *len = 0;
    hid_t f = open_hdf5(path);
    if (f < 0)
        return -1;
    Names s = {0};
    int rc = 0;
    if (H5Aexists(f, name) <= 0)
        rc = nn_error(path, "no attribute '%s' at the file's root: not a model as Keras's "
                            "model.save() writes it", name);
    else if (read_string_attr(f, name, &s) != 0 || s.n != 1)
        rc = nn_error(path, "attribute '%s' is not one string", name);
    if (rc == 0) {
        *len = strlen(s.s[0]);
        *text = s.s[0];
        s.s[0] = NULL;
    }
    names_free(&s);
    close_hdf5(f);
    return rc;
}

/* ---- writing -------------------------------------------------------------------- */

/* A numpy 'S' array's HDF5 type: fixed-length, NUL-padded, of the longest. */
static hid_t fixed_string_type(size_t size)
{
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, size ? size : 1);
    H5Tset_strpad(t, H5T_STR_NULLPAD);
    return t;
}

static int write_attr(hid_t obj, const char *name, hid_t type, hid_t space, const void *data)
{
    hid_t a = H5Acreate2(obj, name, type, space, H5P_DEFAULT, H5P_DEFAULT);
    int rc = a < 0 || H5Awrite(a, type, data) < 0 ? -1 : 0;
    if (a >= 0)
        H5Aclose(a);
    return rc;
}

/* strings [first, first+n) as one attribute of fixed-length strings of `size`. */
static int write_strings(hid_t obj, const char *name, const char *const *s, int first, int n,
                         size_t size)
{
    char *buf = nn_alloc((size_t)(n ? n : 1) * size, 1);
    for (int i = 0; i < n; i++)
        memcpy(buf + (size_t)i * size, s[first + i], strlen(s[first + i]));
    hsize_t dims[1] = {(hsize_t)n};
    hid_t type = fixed_string_type(size), space = H5Screate_simple(1, dims, NULL);
    int rc = write_attr(obj, name, type, space, buf);
    H5Sclose(space);
    H5Tclose(type);
    free(buf);
    return rc;
}

/* save_attributes_to_hdf5_group: one attribute, or as many parts (numpy's
 * array_split: the first n % k one longer) as keep each within the limit. */
static int write_name_list(hid_t obj, const char *name, const char *const *s, int n)
{
    size_t size = 1;
    for (int i = 0; i < n; i++)
        if (strlen(s[i]) > size)
            size = strlen(s[i]);
    int k = 1;
    while ((size_t)((n + k - 1) / k) * size > HDF5_OBJECT_HEADER_LIMIT)
        k++;
    if (k == 1)
        return write_strings(obj, name, s, 0, n, size);
    char part[80];
    for (int c = 0, first = 0; c < k; c++) {
        int count = n / k + (c < n % k);
        snprintf(part, sizeof part, "%s%d", name, c);
        if (write_strings(obj, part, s, first, count, size) != 0)
            return -1;
        first += count;
    }
    return 0;
}

static int write_string(hid_t obj, const char *name, const char *value)
{
    hid_t type = fixed_string_type(strlen(value)), space = H5Screate(H5S_SCALAR);
    int rc = write_attr(obj, name, type, space, value);
    H5Sclose(space);
    H5Tclose(type);
    return rc;
}

static bool in_layer(const nn_array *a, const char *layer)
{
    size_t l = strlen(layer);
    return strncmp(a->name, layer, l) == 0 && a->name[l] == '.';
}

/* "dense.kernel" -> "dense/kernel:0", Keras's variable name. */
static void keras_name(const char *tensor, char *out, size_t cap)
{
    snprintf(out, cap, "%s:0", tensor);
    for (char *p = out; *p; p++)
        if (*p == '.')
            *p = '/';
}

/* An array's file and memory types, and its data. */
static hid_t file_type(const nn_array *a, hid_t *mem, const void **data)
{
    switch (a->dtype) {
    case NN_I64: *mem = H5T_NATIVE_INT64, *data = a->i; return H5T_STD_I64LE;
    case NN_U8: *mem = H5T_NATIVE_UINT8, *data = a->u8; return H5T_STD_U8LE;
    default: *mem = H5T_NATIVE_FLOAT, *data = a->f; return H5T_IEEE_F32LE;
    }
}

static int write_dataset(hid_t g, const char *name, const nn_array *a)
{
    hsize_t dims[NN_MAX_RANK];
    for (int k = 0; k < a->rank; k++)
        dims[k] = (hsize_t)a->shape[k];
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE);
    H5Pset_create_intermediate_group(lcpl, 1);   /* "dense/kernel:0" makes group dense */
    hid_t space = a->rank ? H5Screate_simple(a->rank, dims, NULL) : H5Screate(H5S_SCALAR);
    hid_t mem;
    const void *data;
    hid_t type = file_type(a, &mem, &data);
    hid_t d = H5Dcreate2(g, name, type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT);
    int rc = d < 0 || H5Dwrite(d, mem, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) < 0;
    if (d >= 0)
        H5Dclose(d);
    H5Sclose(space);
    H5Pclose(lcpl);
    return rc ? -1 : 0;
}

/* A layer's group: weight_names, then a dataset for each. */
static int write_layer(hid_t f, const char *layer, const nn_array *arrays, int n)
{
    hid_t g = H5Gcreate2(f, layer, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    if (g < 0)
        return -1;
    char (*names)[256] = nn_alloc((size_t)(n ? n : 1), sizeof *names);
    const char **list = nn_alloc((size_t)(n ? n : 1), sizeof *list);
    int k = 0, rc = 0;
    for (int i = 0; i < n; i++)
        if (in_layer(&arrays[i], layer)) {
            keras_name(arrays[i].name, names[k], sizeof names[k]);
            list[k] = names[k];
            k++;
        }
    rc = write_name_list(g, "weight_names", list, k);
    for (int i = 0, j = 0; i < n && rc == 0; i++)
        if (in_layer(&arrays[i], layer))
            rc = write_dataset(g, list[j++], &arrays[i]);
    free(list);
    free(names);
    H5Gclose(g);
    return rc;
}

static int write_meta(hid_t f, const nn_array *meta, int n_meta)
{
    hid_t g = H5Gcreate2(f, META_GROUP, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    int rc = g < 0 ? -1 : 0;
    for (int i = 0; i < n_meta && rc == 0; i++)
        rc = write_dataset(g, meta[i].name, &meta[i]);
    if (g >= 0)
        H5Gclose(g);
    return rc;
}

static int write_file(hid_t f, const char *const *layer_names, int n_layers,
                      const nn_array *arrays, int n, const nn_array *meta, int n_meta)
{
    if (write_name_list(f, "layer_names", layer_names, n_layers) != 0 ||
        write_string(f, "backend", "tensorflow") != 0 ||
        write_string(f, "keras_version", KERAS_LAYOUT_VERSION) != 0)
        return -1;
    for (int i = 0; i < n_layers; i++)
        if (write_layer(f, layer_names[i], arrays, n) != 0)
            return -1;
    /* Keras 2.11+ also writes the model's own weights here; ours has none. */
    if (write_layer(f, "top_level_model_weights", arrays, 0) != 0)
        return -1;
    return n_meta ? write_meta(f, meta, n_meta) : 0;
}

/* The temporary file's bytes on disk before the rename, as nn_npz_write does. */
static int sync_file(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int nn_h5_write_weights(const char *path, const char *const *layer_names, int n_layers,
                        const nn_array *arrays, int n, const nn_array *meta, int n_meta)
{
    size_t cap = strlen(path) + 32;
    char *tmp = nn_alloc(cap, 1);
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    quiet_hdf5();
    hid_t f = H5Fcreate(tmp, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    int rc = 0;
    if (f < 0) {
        rc = nn_error(path, "cannot create %s: %s", tmp, strerror(errno));
    } else {
        int wrote = write_file(f, layer_names, n_layers, arrays, n, meta, n_meta);
        if (H5Fclose(f) < 0 || wrote != 0 || sync_file(tmp) != 0)
            rc = nn_error(path, "cannot write %s as HDF5", tmp);
        if (rc == 0 && rename(tmp, path) != 0)
            rc = nn_error(path, "cannot rename %s to it: %s", tmp, strerror(errno));
        if (rc != 0)
            remove(tmp);
    }
    free(tmp);
    return rc;
}

#endif /* NN_HAVE_HDF5 */

int nn_h5_check_signature(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f || nn_is_hdf5(path) || !nn_h5_name(path)) {
        if (f)
            fclose(f);
        return 0;
    }
    fclose(f);
    return nn_error(path, "not an HDF5 file (named .h5, but it does not start as one)");
}

/* The length of the layer part of "dense.kernel". */
static size_t layer_len(const char *name)
{
    return strcspn(name, ".");
}

static bool same_layer(const char *a, const char *b)
{
    return layer_len(a) == layer_len(b) && strncmp(a, b, layer_len(a)) == 0;
}

/* Whether names[i-1] and names[i] (or arrays') start different layers. */
static bool layer_starts(const char *prev, const char *name, int i)
{
    return i == 0 || !same_layer(prev, name);
}

bool nn_weight_file_by_position(nn_weight_file *w, const char *path, const char *const *names,
                                int n)
{
    if (!w->keras || w->n_weights != n)
        return false;
    int differ = -1;
    for (int i = 0; i < n && differ < 0; i++)
        if (!nn_npz_find(w->arrays, w->n, names[i]))
            differ = i;
    if (differ < 0)
        return false;
    for (int i = 0; i < n; i++)
        if (layer_starts(i ? names[i - 1] : NULL, names[i], i) !=
            layer_starts(i ? w->arrays[i - 1].name : NULL, w->arrays[i].name, i))
            return false;
    nn_warning(path, "its layers are named otherwise than the model's ('%.*s' where the model "
                     "has '%.*s'): read by position, as Keras's load_weights does",
               (int)layer_len(w->arrays[differ].name), w->arrays[differ].name,
               (int)layer_len(names[differ]), names[differ]);
    for (int i = 0; i < n; i++)
        snprintf(w->arrays[i].name, sizeof w->arrays[i].name, "%s", names[i]);
    return true;
}

int nn_weight_file_read(const char *path, nn_weight_file *w)
{
    return nn_weight_file_read_checked(path, NULL, NULL, w);
}

int nn_weight_file_read_checked(const char *path, nn_npz_check check, void *ctx,
                                nn_weight_file *w)
{
    memset(w, 0, sizeof *w);
    if (nn_h5_check_signature(path) != 0)
        return -1;
    if (!nn_is_hdf5(path))
        return nn_npz_read_checked(path, check, ctx, &w->arrays, &w->n);
    w->keras = true;
    int rc = read_h5_weights(path, w);
    if (rc != 0)
        nn_weight_file_free(w);
    return rc;
}
