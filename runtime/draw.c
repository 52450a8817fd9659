/* draw.c - a small RGB canvas for the pictures the trainer writes: filled
 * rectangles, one-pixel lines, text, images and colour maps, saved as PNG
 * through stb_image_write.
 *
 * Coordinates are pixels, x rightwards and y downwards from the top-left
 * corner; everything is clipped to the canvas, so callers may draw past its
 * edges. Text is stb_easy_font's built-in bitmap font (a glyph is a set of
 * axis-aligned bars, each filled as a rectangle here), so no font file is
 * needed: a capital is 7 pixels high at scale 1, a line 12.
 *
 * nn_png_save writes PATH.tmp and renames it over PATH, so that a reader (a
 * browser showing a report page that a running trainer rewrites) sees the old
 * picture or the new one, never half of one. */
#include "rt.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stb_image_write.h>

/* stb_easy_font is all static functions and tables, some of which we do not
 * call, and takes char * where it only reads. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-braces"
#include <stb_easy_font.h>
#pragma GCC diagnostic pop

/* ---- PNG files ----------------------------------------------------------------- */

typedef struct {
    FILE *f;
    bool failed;
} sink;

static void write_bytes(void *context, void *data, int size)
{
    sink *s = context;
    if (size > 0 && fwrite(data, 1, (size_t)size, s->f) != (size_t)size)
        s->failed = true;
}

int nn_png_save(const char *path, const uint8_t *px, int w, int h, int comp)
{
    if (w <= 0 || h <= 0 || (long long)h * ((long long)w * comp + 1) > INT_MAX / 2)
        return nn_error(path, "cannot write a %d x %d image", h, w);
    size_t len = strlen(path) + 5;
    char *tmp = nn_alloc(len, 1);
    snprintf(tmp, len, "%s.tmp", path);
    sink s = {fopen(tmp, "wb"), false};
    int rc = 0;
    if (!s.f) {
        rc = nn_error(path, "cannot create: %s", strerror(errno));
    } else {
        int ok = stbi_write_png_to_func(write_bytes, &s, w, h, comp, px, w * comp);
        if (fclose(s.f) != 0 || !ok || s.failed || rename(tmp, path) != 0) {
            remove(tmp);
            rc = nn_error(path, "cannot write the PNG file");
        }
    }
    free(tmp);
    return rc;
}

/* ---- the canvas --------------------------------------------------------------------- */

void nn_canvas_init(nn_canvas *c, int w, int h, nn_rgb background)
{
    c->w = w > 0 ? w : 1;
    c->h = h > 0 ? h : 1;
    c->px = nn_alloc((size_t)c->w * (size_t)c->h, 3);
    nn_fill_rect(c, 0, 0, c->w, c->h, background);
}

void nn_canvas_free(nn_canvas *c)
{
    free(c->px);
    c->px = NULL;
}

int nn_canvas_save(const nn_canvas *c, const char *path)
{
    return nn_png_save(path, c->px, c->w, c->h, 3);
}

void nn_put_pixel(nn_canvas *c, int x, int y, nn_rgb col)
{
    if (x < 0 || y < 0 || x >= c->w || y >= c->h)
        return;
    uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    p[0] = col.r, p[1] = col.g, p[2] = col.b;
}

nn_rgb nn_get_pixel(const nn_canvas *c, int x, int y)
{
    const uint8_t *p = c->px + ((size_t)y * (size_t)c->w + (size_t)x) * 3;
    return (nn_rgb){p[0], p[1], p[2]};
}

void nn_fill_rect(nn_canvas *c, int x, int y, int w, int h, nn_rgb col)
{
    int x0 = x < 0 ? 0 : x, y0 = y < 0 ? 0 : y;
    int x1 = x + w > c->w ? c->w : x + w, y1 = y + h > c->h ? c->h : y + h;
    for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++)
            nn_put_pixel(c, xx, yy, col);
}

void nn_frame_rect(nn_canvas *c, int x, int y, int w, int h, nn_rgb col)
{
    nn_fill_rect(c, x, y, w, 1, col);
    nn_fill_rect(c, x, y + h - 1, w, 1, col);
    nn_fill_rect(c, x, y, 1, h, col);
    nn_fill_rect(c, x + w - 1, y, 1, h, col);
}

/* Bresenham's: both ends drawn, every step one pixel. */
void nn_draw_line(nn_canvas *c, int x0, int y0, int x1, int y1, nn_rgb col)
{
    int dx = abs(x1 - x0), dy = -abs(y1 - y0);
    int sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, err = dx + dy;
    for (;;) {
        nn_put_pixel(c, x0, y0, col);
        if (x0 == x1 && y0 == y1)
            break;
        int e2 = 2 * err;
        if (e2 >= dy)
            err += dy, x0 += sx;
        if (e2 <= dx)
            err += dx, y0 += sy;
    }
}

/* ---- text ----------------------------------------------------------------------------- */

/* Printable ASCII only: anything else is drawn as '?' (stb_easy_font has
 * glyphs for 32..126). */
static char *printable_copy(const char *text)
{
    size_t n = strlen(text);
    char *s = nn_alloc(n + 1, 1);
    for (size_t i = 0; i < n; i++)
        s[i] = text[i] >= 32 && text[i] <= 126 ? text[i] : '?';
    return s;
}

int nn_text_width(const char *text, int scale)
{
    char *s = printable_copy(text);
    int w = stb_easy_font_width(s);
    free(s);
    return w * scale;
}

/* stb_easy_font's quads: 4 vertices of 16 bytes each (x, y, z, colour). */
#define QUAD_BYTES 64

void nn_draw_text(nn_canvas *c, int x, int y, const char *text, int scale, nn_rgb col)
{
    char *s = printable_copy(text);
    size_t size = (strlen(s) + 1) * 300;    /* stb: ~270 bytes a character */
    float *quads = nn_alloc(size, 1);
    int n = stb_easy_font_print(0, 0, s, NULL, quads, (int)size);
    for (int q = 0; q < n; q++) {
        const float *v = quads + q * (QUAD_BYTES / sizeof(float));
        /* vertices 0 and 2 are opposite corners; x at +0, y at +1 floats */
        int qx0 = (int)v[0], qy0 = (int)v[1], qx1 = (int)v[8], qy1 = (int)v[9];
        nn_fill_rect(c, x + qx0 * scale, y + qy0 * scale, (qx1 - qx0) * scale,
                     (qy1 - qy0) * scale, col);
    }
    free(quads);
    free(s);
}

/* ---- images and colour maps -------------------------------------------------------------- */

/* viridis (matplotlib's default colour map) at 0, 1/8, ..., 1, linearly
 * interpolated between: within 2 levels of matplotlib's 256 entries. */
nn_rgb nn_viridis(double t)
{
    static const uint8_t stops[9][3] = {
        {68, 1, 84},    {71, 45, 123},  {59, 82, 139},  {44, 114, 142}, {33, 144, 140},
        {39, 173, 129}, {93, 200, 99},  {170, 220, 50}, {253, 231, 37},
    };
    t = t > 1 ? 1 : t > 0 ? t : 0;   /* NaN gives the low end */
    double pos = t * 8;
    int i = pos >= 8 ? 7 : (int)pos;
    double f = pos - i;
    uint8_t out[3];
    for (int k = 0; k < 3; k++)
        out[k] = (uint8_t)lrint(stops[i][k] + f * (stops[i + 1][k] - stops[i][k]));
    return (nn_rgb){out[0], out[1], out[2]};
}

/* An h x w x channels image of floats in [lo, hi] (1 channel: grey, 3:
 * RGB, others: the first) drawn out_h x out_w at (x, y), each pixel the
 * nearest of the image's. */
void nn_draw_image(nn_canvas *c, int x, int y, const float *img, int h, int w, int channels,
                   float lo, float hi, int out_h, int out_w)
{
    float range = hi > lo ? hi - lo : 1;
    for (int oy = 0; oy < out_h; oy++)
        for (int ox = 0; ox < out_w; ox++) {
            size_t r = (size_t)oy * (size_t)h / (size_t)out_h;
            size_t q = (size_t)ox * (size_t)w / (size_t)out_w;
            const float *p = img + (r * (size_t)w + q) * (size_t)channels;
            uint8_t v[3];
            for (int k = 0; k < 3; k++) {
                float t = ((channels == 3 ? p[k] : p[0]) - lo) / range * 255;
                v[k] = t >= 255 ? 255 : t > 0 ? (uint8_t)lrintf(t) : 0;
            }
            nn_put_pixel(c, x + ox, y + oy, (nn_rgb){v[0], v[1], v[2]});
        }
}
