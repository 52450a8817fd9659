/* augment.c - ImageDataGenerator's random transformations, on NHWC floats.
 *
 * As Keras's apply_transform: rotation, shift, shear and zoom make one affine
 * map about the image centre that pulls each output pixel from the input,
 * sampled bilinearly (scipy's spline order 1) with fill_mode 'nearest'
 * (coordinates clamped to the edge, so the border is replicated); then the
 * flips. Keras composes M = R(theta) T(tx, ty) Sh(shear) Z(zx, zy), in
 * (x, y) = (column, row) coordinates since its axis swap, and so do we.
 *
 * Two differences, both deliberate: tx shifts along the width and ty along
 * the height, as the documentation says (current tf.keras swaps them: its
 * height_shift_range moves images sideways, a known bug), and the centre is
 * ((w-1)/2, (h-1)/2) for every shape (Keras's is off for non-square images).
 *
 * Random numbers come only from nn_uniform(seed, step, 16*i + k) for sample
 * i, so a batch's transformations are a function of (seed, step) alone.
 */
#include "rt.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { U_THETA, U_TX, U_TY, U_SHEAR, U_ZX, U_ZY, U_FLIP_H, U_FLIP_V, U_COUNT };

bool nn_augment_active(const nn_augment *a)
{
    return a->horizontal_flip || a->vertical_flip || a->rotation_range != 0 ||
           a->width_shift_range != 0 || a->height_shift_range != 0 || a->zoom_range != 0 ||
           a->shear_range != 0;
}

/* uniform(-r, r) from u in [0, 1) */
static float symmetric(float r, float u)
{
    return -r + 2 * r * u;
}

/* Keras's shift ranges: a fraction of the size below 1, pixels from 1 on. */
static float shift(float range, float u, int size)
{
    float s = symmetric(range, u);
    return fabsf(range) < 1 ? s * (float)size : s;
}

/* The draw for sample i of a batch, in get_random_transform's terms. */
static nn_transform random_transform(const nn_augment *a, int h, int w, uint64_t seed,
                                     uint64_t step, uint64_t i)
{
    float u[U_COUNT];
    for (int k = 0; k < U_COUNT; k++)
        u[k] = nn_uniform(seed, step, i * 16 + (uint64_t)k);
    nn_transform t = {.zx = 1, .zy = 1};
    t.theta = symmetric(a->rotation_range, u[U_THETA]);
    t.tx = shift(a->width_shift_range, u[U_TX], w);
    t.ty = shift(a->height_shift_range, u[U_TY], h);
    t.shear = symmetric(a->shear_range, u[U_SHEAR]);
    if (a->zoom_range != 0) {
        t.zx = 1 + symmetric(a->zoom_range, u[U_ZX]);
        t.zy = 1 + symmetric(a->zoom_range, u[U_ZY]);
    }
    t.flip_h = a->horizontal_flip && u[U_FLIP_H] < 0.5f;
    t.flip_v = a->vertical_flip && u[U_FLIP_V] < 0.5f;
    return t;
}

static bool moves_pixels(const nn_transform *t)
{
    return t->theta != 0 || t->tx != 0 || t->ty != 0 || t->shear != 0 || t->zx != 1 ||
           t->zy != 1;
}

static double clamp(double v, double hi)
{
    return v > 0 ? (v < hi ? v : hi) : 0;   /* NaN goes to 0 too */
}

/* dst(x, y) = src(A (x - cx, y - cy) + b + (cx, cy)), bilinear, edges held. */
static void warp(const nn_transform *t, const float *src, float *dst, int h, int w, int c)
{
    double pi = 3.14159265358979323846;
    double th = t->theta * pi / 180, sh = t->shear * pi / 180;
    double cr = cos(th), sr = sin(th);
    /* A = R Sh Z, b = R (tx, ty): the point is zoomed, sheared, shifted, rotated. */
    double s00 = t->zx, s01 = -sin(sh) * t->zy, s11 = cos(sh) * t->zy;
    double a00 = cr * s00, a01 = cr * s01 - sr * s11;
    double a10 = sr * s00, a11 = sr * s01 + cr * s11;
    double cx = (w - 1) / 2.0, cy = (h - 1) / 2.0;
    double bx = cr * t->tx - sr * t->ty + cx, by = sr * t->tx + cr * t->ty + cy;

    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            double ux = x - cx, uy = y - cy;
            double sx = clamp(a00 * ux + a01 * uy + bx, w - 1);
            double sy = clamp(a10 * ux + a11 * uy + by, h - 1);
            int x0 = (int)sx, y0 = (int)sy;
            int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
            float fx = (float)(sx - x0), fy = (float)(sy - y0);
            const float *p00 = src + ((size_t)y0 * w + x0) * c, *p01 = src + ((size_t)y0 * w + x1) * c;
            const float *p10 = src + ((size_t)y1 * w + x0) * c, *p11 = src + ((size_t)y1 * w + x1) * c;
            float *out = dst + ((size_t)y * w + x) * c;
            for (int k = 0; k < c; k++) {
                float top = p00[k] + fx * (p01[k] - p00[k]);
                float bottom = p10[k] + fx * (p11[k] - p10[k]);
                out[k] = top + fy * (bottom - top);
            }
        }
}

static void swap_pixels(float *a, float *b, int c)
{
    for (int k = 0; k < c; k++) {
        float v = a[k];
        a[k] = b[k];
        b[k] = v;
    }
}

static void flip(float *img, int h, int w, int c, bool horizontal)
{
    size_t row = (size_t)w * c;
    if (horizontal) {
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w / 2; x++)
                swap_pixels(img + y * row + (size_t)x * c, img + y * row + (size_t)(w - 1 - x) * c, c);
    } else {
        for (int y = 0; y < h / 2; y++)
            swap_pixels(img + y * row, img + (size_t)(h - 1 - y) * row, (int)row);
    }
}

void nn_transform_image(const nn_transform *t, float *img, int h, int w, int c)
{
    if (moves_pixels(t)) {
        size_t size = (size_t)h * w * c;
        float *src = nn_alloc(size, sizeof *src);
        memcpy(src, img, size * sizeof *src);
        warp(t, src, img, h, w, c);
        free(src);
    }
    if (t->flip_h)
        flip(img, h, w, c, true);
    if (t->flip_v)
        flip(img, h, w, c, false);
}

void nn_augment_batch(const nn_augment *a, float *x, int n, int h, int w, int c, uint64_t seed,
                      uint64_t step, uint64_t first)
{
    if (!nn_augment_active(a))
        return;
    size_t size = (size_t)h * w * c;
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        nn_transform t = random_transform(a, h, w, seed, step, first + (uint64_t)i);
        nn_transform_image(&t, x + (size_t)i * size, h, w, c);
    }
}
