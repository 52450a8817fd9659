/* npz.h - numpy's .npy and .npz files (npz.c): the array type and its readers
 * and writers. A header of its own because two programs use it: the runtime
 * (weights, checkpoints, predict --npy), through rt.h, and nncc, which reads
 * the weights of --inference --weights W.npz and so links npz.o without the
 * rest of libnnrt. npz.c needs libc, zlib and report.c, nothing else.
 */
#ifndef NNRT_NPZ_H
#define NNRT_NPZ_H

#include "nnrt.h"      /* NN_MAX_RANK */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* NN_U8 is written, never read: readers get integers as NN_I64. */
typedef enum { NN_F32, NN_I64, NN_U8 } nn_dtype;
typedef struct {
    char name[128];        /* without ".npy" */
    nn_dtype dtype;
    int rank;
    int shape[NN_MAX_RANK];
    size_t size;           /* elements */
    float *f;              /* NN_F32 */
    int64_t *i;            /* NN_I64 */
    uint8_t *u8;           /* NN_U8 */
} nn_array;

/* Writes arrays as an uncompressed .npz (what numpy.savez writes): to a
 * temporary file beside path, then rename, so a crash leaves the old file whole.
 * NN_F32 is written as '<f4', NN_I64 as '<i8', NN_U8 as '|u1'; no ZIP64, so at most 4 GB. */
int nn_npz_write(const char *path, const nn_array *arrays, int n);
/* Reads every member, stored or deflated, in file order. The rule: float
 * dtypes (float32, float64) become NN_F32; integer and bool dtypes (int8..64,
 * uint8..64, bool) become NN_I64, uint64 keeping its bit pattern. A caller
 * that wants floats from integers (uint8 images in predict --npy) converts.
 * Big-endian, Fortran-order, object and other dtypes, and rank > NN_MAX_RANK
 * are errors. On error *arrays is NULL and *n is 0. */
int nn_npz_read(const char *path, nn_array **arrays, int *n);
/* What nn_npz_read_checked asks about each member once its header is read,
 * before its data is: header holds the name, dtype, rank, shape and size, no
 * data. -1 (after an error naming path) refuses the file before the member's
 * data is allocated or inflated: a reader that knows what it wants (a model's
 * weights) refuses a 1 MB member that inflates to gigabytes at no cost. */
typedef int (*nn_npz_check)(void *ctx, const char *path, const nn_array *header);
int nn_npz_read_checked(const char *path, nn_npz_check check, void *ctx, nn_array **arrays, int *n);
const nn_array *nn_npz_find(const nn_array *arrays, int n, const char *name);
void nn_npz_free(nn_array *arrays, int n);
/* One .npy file, with nn_npz_read's conversions (a->name is left empty); and
 * its atomic writer. */
int nn_npy_read(const char *path, nn_array *a);
int nn_npy_write(const char *path, const nn_array *a);
void nn_array_free(nn_array *a);
/* Whether a holds float32 numbers of exactly this shape. */
bool nn_array_is_f32(const nn_array *a, int rank, const int *shape);

#endif
