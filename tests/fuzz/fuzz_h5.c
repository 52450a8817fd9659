/* fuzz_h5.c - the Keras .h5 reader (runtime/h5.c over libhdf5): the input read
 * as a weight file (nn_weight_file_read: layer_names, weight_names, datasets)
 * and for its model_config attribute (what nncc reads from a model.h5).
 *
 * libhdf5 1.10.8 loses memory of its own on some broken files (a leak whose
 * every frame is inside libhdf5, tests/fuzz/findings-libraries/h5/): such leaks
 * are not reported, so that the fuzzer goes on looking for h5.c's. */
#include "fuzz.h"
#include "h5.h"

const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libhdf5\n";
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_run = 1;
    const char *path = fuzz_write_input(0, ".h5", data, size);
    nn_weight_file w;
    if (nn_weight_file_read(path, &w) == 0)
        nn_weight_file_free(&w);
    char *text;
    size_t len;
    if (nn_h5_read_attribute(path, "model_config", &text, &len) == 0)
        free(text);
    fuzz_in_run = 0;
    return 0;
}
