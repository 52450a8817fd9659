/* fuzz_image.c - the image loader (runtime/data_image.c: stb_image's PNG,
 * JPEG, BMP, GIF... then the NEAREST resize and the channel conversion): two
 * bytes of settings (target height and width, 1 or 3 channels), then the file.
 * make fuzz builds stb_image from its header into the harness (stb_image.c),
 * so that the decoders are instrumented too. */
#include "fuzz.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_run = 1;
    unsigned a = fuzz_take(&data, &size), b = fuzz_take(&data, &size);
    int h = (int)(a % 32) + 1, w = (int)(b % 32) + 1, channels = (a & 0x80) ? 3 : 1;
    const char *path = fuzz_write_input(0, ".img", data, size);
    uint8_t *out = malloc((size_t)h * (size_t)w * (size_t)channels);
    nn_load_image_file(path, h, w, channels, out);
    free(out);
    int ih, iw;
    nn_image_file_size(path, &ih, &iw);
    fuzz_in_run = 0;
    return 0;
}
