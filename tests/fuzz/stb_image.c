/* stb_image.c - stb_image's decoders compiled into the fuzzing build (make
 * fuzz only), so that ASan sees their reads and libFuzzer their branches;
 * the ordinary build links Debian's libstb. */
#define STB_IMAGE_IMPLEMENTATION
#include <stb_image.h>
