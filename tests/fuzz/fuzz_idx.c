/* fuzz_idx.c - the IDX reader (runtime/data_idx.c), raw or gzip: the input is
 * two files, the images (rank 3) and the labels (rank 1); its first byte says
 * how many bytes of the rest (times 4) are the images file. */
#include "fuzz.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_run = 1;
    size_t split = (size_t)fuzz_take(&data, &size) * 4;
    if (split > size)
        split = size;
    const char *images = fuzz_write_input(0, "-images-idx3-ubyte", data, split);
    const char *labels = fuzz_write_input(1, "-labels-idx1-ubyte", data + split, size - split);
    nn_dataset d;
    if (nn_load_idx(images, labels, &d) == 0)
        nn_dataset_free(&d);
    fuzz_in_run = 0;
    return 0;
}
