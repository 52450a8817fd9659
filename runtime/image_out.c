/* image_out.c - feature maps as PNG files (stb_image_write), for the
 * trainer's `activations` command.
 *
 * nn_write_png writes one channel as it is (values already 0..255);
 * nn_write_feature_grid lays all channels of a layer's output side by side,
 * each normalised as the TensorFlow course's "visualizing intermediate
 * representations" does: x -= mean; x /= std; x *= 64; x += 128; clip to
 * [0, 255]; astype('uint8'), which truncates; in grey, or through viridis
 * (matplotlib's default colour map, as plt.imshow shows them).
 * nn_write_side_by_side puts images of one shape in a row (an image model's
 * input and output, predict and activations), in the input's own scale.
 * Files are written whole or not at all (nn_png_save).
 */
#include "rt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Between maps in a grid, and in the cells a last short row leaves empty:
 * light grey, so that a saturated white map still shows its border. */
#define GRID_GAP 200

/* stb takes int sizes, and PNG rows are w+1 bytes: keep well inside. */
static int check_size(const char *path, long long h, long long w)
{
    if (h <= 0 || w <= 0 || h * (w + 1) > INT_MAX / 2)
        return nn_error(path, "cannot write a %lld x %lld image", h, w);
    return 0;
}

static uint8_t rounded_byte(float v)
{
    return v >= 255 ? 255 : v > 0 ? (uint8_t)lrintf(v) : 0;   /* NaN gives 0 */
}

int nn_write_png(const char *path, const float *img, int h, int w, int c, int channel)
{
    if (check_size(path, h, w))
        return -1;
    if (c <= 0 || channel < 0 || channel >= c)
        return nn_error(path, "no channel %d in a map of %d channels", channel, c);
    size_t n = (size_t)h * w;
    uint8_t *px = nn_alloc(n, 1);
    for (size_t i = 0; i < n; i++)
        px[i] = rounded_byte(img[i * c + channel]);
    int rc = nn_png_save(path, px, w, h, 1);
    free(px);
    return rc;
}

/* Channel k of act, normalised as the course does, into a cell of the grid
 * whose rows are `stride` bytes, each value a scale x scale block. std + 1e-5
 * keeps a flat map at 128. */
static void draw_map(uint8_t *cell, int stride, const float *act, int h, int w, int c, int k,
                     int scale)
{
    size_t n = (size_t)h * w;
    double sum = 0, sq = 0;
    for (size_t i = 0; i < n; i++)
        sum += act[i * c + k];
    double mean = sum / n;
    for (size_t i = 0; i < n; i++) {
        double d = act[i * c + k] - mean;
        sq += d * d;
    }
    double std = sqrt(sq / n) + 1e-5;
    for (int y = 0; y < h * scale; y++)
        for (int x = 0; x < w * scale; x++) {
            double v = (act[((size_t)(y / scale) * w + x / scale) * c + k] - mean) / std * 64 + 128;
            cell[(size_t)y * stride + x] = v >= 255 ? 255 : v > 0 ? (uint8_t)v : 0;
        }
}

/* The grid's grey bytes through viridis; the gaps stay light grey. */
static int save_viridis(const char *path, const uint8_t *grey, long long gh, long long gw,
                        long long cell_h, long long cell_w, int cols, int c)
{
    uint8_t *rgb = nn_alloc((size_t)gh * (size_t)gw, 3);
    for (long long y = 0; y < gh; y++)
        for (long long x = 0; x < gw; x++) {
            uint8_t v = grey[y * gw + x], *p = rgb + (y * gw + x) * 3;
            bool gap = y % (cell_h + 1) == cell_h || x % (cell_w + 1) == cell_w ||
                       (y / (cell_h + 1)) * cols + x / (cell_w + 1) >= c;
            nn_rgb col = gap ? (nn_rgb){GRID_GAP, GRID_GAP, GRID_GAP} : nn_viridis(v / 255.0);
            p[0] = col.r, p[1] = col.g, p[2] = col.b;
        }
    int rc = nn_png_save(path, rgb, (int)gw, (int)gh, 3);
    free(rgb);
    return rc;
}

int nn_write_feature_grid(const char *path, const float *act, int h, int w, int c, int scale,
                          bool viridis)
{
    if (c <= 0 || scale < 1 || scale > 64)
        return nn_error(path, "no feature maps to draw, or a scale outside 1..64");
    int cols = (int)ceil(sqrt((double)c));
    while ((long long)cols * cols < c)   /* sqrt of a large square may fall short */
        cols++;
    int rows = (c + cols - 1) / cols;
    long long sh = (long long)h * scale, sw = (long long)w * scale;
    long long gh = rows * sh + rows - 1, gw = cols * sw + cols - 1;
    if (check_size(path, h, w) || check_size(path, gh, gw))
        return -1;
    uint8_t *px = nn_alloc((size_t)gh * (size_t)gw, 1);
    memset(px, GRID_GAP, (size_t)gh * (size_t)gw);
    for (int k = 0; k < c; k++) {
        size_t top = (size_t)(k / cols) * (size_t)(sh + 1), left = (size_t)(k % cols) * (size_t)(sw + 1);
        draw_map(px + top * (size_t)gw + left, (int)gw, act, h, w, c, k, scale);
    }
    int rc = viridis ? save_viridis(path, px, gh, gw, sh, sw, cols, c)
                     : nn_png_save(path, px, (int)gw, (int)gh, 1);
    free(px);
    return rc;
}

int nn_write_side_by_side(const char *path, const float *const *imgs, int n, int h, int w, int c,
                          float to_byte)
{
    int pc = c == 3 ? 3 : 1;   /* RGB as it is; otherwise the first channel, grey */
    long long gw = (long long)n * (w + 1) - 1;
    if (n < 1 || c < 1 || check_size(path, h, gw * pc))
        return -1;
    uint8_t *px = nn_alloc((size_t)h * (size_t)gw * (size_t)pc, 1);
    memset(px, GRID_GAP, (size_t)h * (size_t)gw * (size_t)pc);
    for (int k = 0; k < n; k++)
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < pc; ch++)
                    px[((size_t)y * (size_t)gw + (size_t)k * (w + 1) + x) * pc + ch] =
                        rounded_byte(imgs[k][((size_t)y * w + x) * c + ch] * to_byte);
    int rc = nn_png_save(path, px, (int)gw, h, pc);
    free(px);
    return rc;
}
