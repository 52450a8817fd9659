/* fuzz_csv.c - the CSV data reader (runtime/data_csv.c): one byte of settings
 * (header: auto, no or yes; the label column; input_size), then the file. */
#include "fuzz.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_run = 1;
    unsigned s = fuzz_take(&data, &size);
    nn_source fmt = {.format = NN_DATA_CSV};
    fmt.header = (int)(s % 3) - 1;                    /* NN_HEADER_AUTO, 0, 1 */
    fmt.label_column = (int)((s / 3) % 4) - 1;       /* -1 (the last), 0, 1, 2 */
    fmt.label_name = (s & 0x80) ? "label" : NULL;
    int input_size = (int)((s / 12) % 5);             /* 0: any number of columns */
    fmt.path = fuzz_write_input(0, ".csv", data, size);
    nn_dataset d;
    if (nn_load_csv(fmt.path, &fmt, input_size, &d) == 0)
        nn_dataset_free(&d);
    fuzz_in_run = 0;
    return 0;
}
