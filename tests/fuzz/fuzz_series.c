/* fuzz_series.c - the series reader (runtime/data_series.c over records.c):
 * two bytes of settings (the column, window_size, shift, horizon, split_time
 * and which part), then the CSV. The settings stay within what nncc's checks
 * let through (positive window_size, shift and horizon). */
#include "fuzz.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_run = 1;
    unsigned a = fuzz_take(&data, &size), b = fuzz_take(&data, &size);
    nn_source src = {.format = NN_DATA_SERIES};
    src.column = (a & 1) ? "value" : NULL;
    src.column_index = (int)((a >> 1) % 3) - 1;       /* -1 (the last), 0, 1 */
    src.window_size = (int)(a >> 3) % 8 + 1;
    src.shift = (int)(b % 3) + 1;
    src.horizon = (int)((b >> 2) % 3) + 1;
    src.split_time = (b & 0x80) ? (int)(b >> 4) % 8 * 4 : -1;
    nn_series_part part = (nn_series_part)((b >> 5) % 3);
    const char *path = fuzz_write_input(0, ".csv", data, size);
    nn_dataset d;
    if (nn_load_series(&src, path, part, &d) == 0)
        nn_dataset_free(&d);
    fuzz_in_run = 0;
    return 0;
}
