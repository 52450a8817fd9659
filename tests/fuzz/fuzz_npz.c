/* fuzz_npz.c - numpy's files (runtime/npz.c): the input read as an .npz (the
 * zip container, stored and deflated members, each member's .npy header,
 * shape and dtype) and as a lone .npy. */
#include "fuzz.h"
#include "npz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_run = 1;
    const char *npz = fuzz_write_input(0, ".npz", data, size);
    nn_array *arrays;
    int n;
    if (nn_npz_read(npz, &arrays, &n) == 0)
        nn_npz_free(arrays, n);
    const char *npy = fuzz_write_input(1, ".npy", data, size);
    nn_array a;
    if (nn_npy_read(npy, &a) == 0)
        nn_array_free(&a);
    fuzz_in_run = 0;
    return 0;
}
