/* test_pictures.c - the trainer's pictures, pixel by pixel, and its report
 * page in a browser.
 *
 *   drawing     a line lands on the pixels nearest the ideal line; shapes
 *               clip; text renders where it was put (an H by hand)
 *   colours     viridis against matplotlib's table
 *   charts      nice ticks by hand; a 2x2 confusion matrix colours its cells
 *               by count; the history's columns make the panels they should
 *   commands    show-data's grid, plot's curves, train --report's files
 *   browser     index.html opened by headless Chromium: the page loads, every
 *               image on it loads, and the screenshot is not blank (skipped,
 *               saying so, where Chromium is not installed)
 */
#include "testutil.h"

#include <math.h>
#include <stb_image.h>

#include "rt.h"

static const nn_rgb WHITE = {255, 255, 255}, INK = {0, 0, 0};

static bool is(nn_rgb a, nn_rgb b)
{
    return a.r == b.r && a.g == b.g && a.b == b.b;
}

/* ---- drawing -------------------------------------------------------------------- */

static void test_line_pixels(void **state)
{
    (void)state;
    nn_canvas c;
    nn_canvas_init(&c, 10, 6, WHITE);
    /* y = x / 3 from (0,0) to (6,2): the nearest pixel in each column,
     * rounding 1/3 down and 2/3 up. */
    nn_draw_line(&c, 0, 0, 6, 2, INK);
    int want_y[7] = {0, 0, 1, 1, 1, 2, 2};
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 10; x++)
            assert_int_equal(is(nn_get_pixel(&c, x, y), INK), x <= 6 && want_y[x] == y);
    /* Drawn backwards, a diagonal is the same pixels. */
    nn_fill_rect(&c, 0, 0, 10, 6, WHITE);
    nn_draw_line(&c, 4, 4, 0, 0, INK);
    for (int y = 0; y < 6; y++)
        for (int x = 0; x < 10; x++)
            assert_int_equal(is(nn_get_pixel(&c, x, y), INK), x == y && x <= 4);
    nn_canvas_free(&c);
}

/* A window 0, 0.5 and its label 1 in a 200 x 80 panel at (10, 5), values 0..1:
 * point k of 3 at x = 10 + round(k * 199 / 2), y = 5 + 79 - round(v * 79); the
 * window's part blue, the label's orange, a black frame around. */
static void test_series_window(void **state)
{
    (void)state;
    const nn_rgb blue = {31, 119, 180}, orange = {255, 127, 14};
    nn_canvas c;
    nn_canvas_init(&c, 220, 90, WHITE);
    const float window[2] = {0, 0.5f}, label[1] = {1};
    nn_draw_window(&c, 10, 5, window, 2, label, 1, 0, 1);
    assert_true(is(nn_get_pixel(&c, 10, 84), blue));      /* (0, 0) */
    assert_true(is(nn_get_pixel(&c, 60, 64), blue));      /* halfway to point 1, (110, 44) */
    assert_true(is(nn_get_pixel(&c, 209, 5), orange));    /* (2, 1): the label */
    assert_true(is(nn_get_pixel(&c, 9, 4), INK));         /* the frame's corner */
    assert_true(is(nn_get_pixel(&c, 10, 5), WHITE));      /* nothing above the first point */
    nn_canvas_free(&c);
}

/* Ids back to words: padding left out, the oov token as it is. */
static void test_decode_ids(void **state)
{
    (void)state;
    char *words[] = {"<OOV>", "the", "cat"};
    nn_vocab *v = nn_vocab_from_words(words, 3);
    const float ids[6] = {0, 2, 1, 3, 0, 0};
    char out[64];
    nn_decode_ids(v, ids, 6, out, sizeof out);
    assert_string_equal(out, "the <OOV> cat");
    nn_decode_ids(v, ids, 6, out, 8);
    assert_string_equal(out, "the <OO");
    nn_vocab_free(v);
}

static void test_shapes_clip(void **state)
{
    (void)state;
    nn_canvas c;
    nn_canvas_init(&c, 5, 4, WHITE);
    nn_fill_rect(&c, 3, -2, 10, 4, INK);      /* columns 3..4, rows 0..1 remain */
    nn_draw_line(&c, -5, 3, 20, 3, INK);      /* the whole bottom row */
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 5; x++)
            assert_int_equal(is(nn_get_pixel(&c, x, y), INK), (x >= 3 && y <= 1) || y == 3);
    nn_canvas_free(&c);
}

/* An H at (10, 10): two full uprights 3 pixels apart, 7 high, joined in
 * their middle row; nothing else inked. At scale 2 every pixel doubles. */
static void check_h(int scale)
{
    nn_canvas c;
    nn_canvas_init(&c, 40, 40, WHITE);
    nn_draw_text(&c, 10, 10, "H", scale, INK);
    for (int y = 0; y < 40; y++)
        for (int x = 0; x < 40; x++) {
            int fx = (x - 10) / scale, fy = (y - 10) / scale;
            bool inside = x >= 10 && y >= 10 && fx < 4 && fy < 7;
            bool ink = inside && (fx == 0 || fx == 3 || fy == 3);
            if (is(nn_get_pixel(&c, x, y), INK) != ink)
                fail_msg("scale %d: pixel (%d, %d) should be %s", scale, x, y,
                         ink ? "ink" : "blank");
        }
    nn_canvas_free(&c);
}

static void test_text_at_known_place(void **state)
{
    (void)state;
    check_h(1);
    check_h(2);
    assert_int_equal(nn_text_width("HH", 1), 2 * nn_text_width("H", 1));
    assert_int_equal(nn_text_width("H", 3), 3 * nn_text_width("H", 1));
}

/* ---- colours and charts ---------------------------------------------------------------- */

/* matplotlib's _viridis_data[0], [128] (t = 0.502) and [255], times 255. */
static void test_viridis(void **state)
{
    (void)state;
    const double want[3][3] = {{0.267004, 0.004874, 0.329415},
                               {0.127568, 0.566949, 0.550556},
                               {0.993248, 0.906157, 0.143936}};
    const double at[3] = {0, 128 / 255.0, 1};
    for (int i = 0; i < 3; i++) {
        nn_rgb v = nn_viridis(at[i]);
        assert_true(fabs(v.r - want[i][0] * 255) <= 2.5);
        assert_true(fabs(v.g - want[i][1] * 255) <= 2.5);
        assert_true(fabs(v.b - want[i][2] * 255) <= 2.5);
    }
    assert_true(is(nn_viridis(-1), nn_viridis(0)));
    assert_true(is(nn_viridis(NAN), nn_viridis(0)));
}

static void assert_ticks(double lo, double hi, int max, const double *want, int n)
{
    double t[16];
    int got = nn_nice_ticks(lo, hi, max, t);
    if (got != n)
        fail_msg("ticks of [%g, %g]: %d, want %d", lo, hi, got, n);
    for (int i = 0; i < n; i++)
        assert_true(fabs(t[i] - want[i]) < 1e-12);
}

static void test_nice_ticks(void **state)
{
    (void)state;
    assert_ticks(0, 1, 6, (double[]){0, 0.2, 0.4, 0.6, 0.8, 1}, 6);
    assert_ticks(0.23, 0.91, 5, (double[]){0.4, 0.6, 0.8}, 3);        /* step 0.17 -> 0.2 */
    assert_ticks(-3.7, 12.2, 7, (double[]){0, 5, 10}, 3);             /* step 2.65 -> 5 */
    assert_ticks(0.5, 3.5, 4, (double[]){1, 2, 3}, 3);                /* step 1 */
    assert_ticks(1, 1, 6, NULL, 0);
}

/* counts [[4, 2], [0, 4]]: the largest count (4) is viridis's top, yellow;
 * 0 its bottom, purple; 2 its middle. Each cell is sampled at a corner,
 * away from the number written in it. */
static void test_confusion_2x2(void **state)
{
    (void)state;
    long counts[4] = {4, 2, 0, 4};
    const char *names[2] = {"cat", "dog"};
    nn_canvas c;
    nn_confusion_layout L = nn_confusion_canvas(&c, counts, 2, names);
    const double t[2][2] = {{1, 0.5}, {0, 1}};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
            int x = L.x + j * L.cell, y = L.y + i * L.cell;
            assert_true(is(nn_get_pixel(&c, x + 1, y + 1), nn_viridis(t[i][j])));
            assert_true(is(nn_get_pixel(&c, x + L.cell - 2, y + L.cell - 2), nn_viridis(t[i][j])));
        }
    nn_rgb yellow = nn_viridis(1), purple = nn_viridis(0);
    assert_int_equal(yellow.r, 253);
    assert_int_equal(purple.r, 68);
    /* The row names are to the left of the cells. */
    bool inked = false;
    for (int y = L.y; y < L.y + L.cell; y++)
        for (int x = 0; x < L.x; x++)
            inked |= is(nn_get_pixel(&c, x, y), INK);
    assert_true(inked);
    nn_canvas_free(&c);
}

static int count_colour(const nn_canvas *c, int x0, int x1, nn_rgb col)
{
    int n = 0;
    for (int y = 0; y < c->h; y++)
        for (int x = x0; x < x1; x++)
            n += is(nn_get_pixel(c, x, y), col);
    return n;
}

/* A CSVLogger-like file with lr: loss and val_loss share the first panel
 * (blue and orange), lr gets the second (blue only); a constant lr, none. */
static void test_plot_columns(void **state)
{
    (void)state;
    write_text(in_scratch("h.csv"), "epoch,loss,lr,val_loss\n0,1.0,0.01,1.2\n1,0.5,0.001,0.8\n"
                                    "2,0.25,0.0001,0.7\n");
    nn_table t;
    assert_int_equal(nn_table_read_csv(in_scratch("h.csv"), &t), 0);
    assert_int_equal(t.n_rows, 3);
    assert_int_equal(t.n_cols, 4);
    nn_canvas c;
    nn_plot_history_canvas(&t, &c);
    assert_int_equal(c.w, 2 * 400);
    nn_rgb blue = {31, 119, 180}, orange = {255, 127, 14};
    assert_true(count_colour(&c, 0, 400, blue) > 20);
    assert_true(count_colour(&c, 0, 400, orange) > 20);
    assert_true(count_colour(&c, 400, 800, blue) > 20);
    assert_int_equal(count_colour(&c, 400, 800, orange), 0);
    nn_canvas_free(&c);
    nn_table_free(&t);

    write_text(in_scratch("h2.csv"), "epoch,loss,lr\n1,1.0,0.01\n2,0.5,0.01\n");
    assert_int_equal(nn_table_read_csv(in_scratch("h2.csv"), &t), 0);
    nn_plot_history_canvas(&t, &c);
    assert_int_equal(c.w, 400);
    nn_canvas_free(&c);
    nn_table_free(&t);

}

/* ---- the commands -------------------------------------------------------------------------- */

/* 8 images of 6x6: even ones dark (0.1), odd ones light (0.9), each with a
 * brighter corner so that the convolution sees something. */
static const char *pics_model(void)
{
    static char yaml[16384];
    size_t n = (size_t)snprintf(yaml, sizeof yaml,
        "input_shape: [6, 6, 1]\nlayers:\n"
        "  - Conv2D: {filters: 2, kernel_size: 3, activation: relu}\n"
        "  - MaxPooling2D: {pool_size: 2}\n  - Flatten\n"
        "  - Dense: {units: 2, activation: softmax}\n"
        "compile: {optimizer: adam, loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
        "data:\n  class_names: [dark, light]\n  validation_split: 0.25\n"
        "  train:\n    format: inline\n    y: [0, 1, 0, 1, 0, 1, 0, 1]\n    x: [");
    for (int s = 0; s < 8; s++) {
        n += (size_t)snprintf(yaml + n, sizeof yaml - n, "%s[", s ? ", " : "");
        for (int i = 0; i < 36; i++)
            n += (size_t)snprintf(yaml + n, sizeof yaml - n, "%s%g", i ? ", " : "",
                                  i == 0 ? 1.0 : s % 2 ? 0.9 : 0.1);
        n += (size_t)snprintf(yaml + n, sizeof yaml - n, "]");
    }
    snprintf(yaml + n, sizeof yaml - n, "]\nfit: {epochs: 2, batch_size: 2, seed: 3}\n");
    return build_model("pics", yaml);
}

static uint8_t *load_png(const char *path, int *w, int *h)
{
    int comp;
    uint8_t *px = stbi_load(path, w, h, &comp, 3);
    if (!px)
        fail_msg("%s does not decode as an image", path);
    return px;
}

/* show-data: the first sample (dark: the grid's lowest value, black) at
 * (8, 8), right of it the light one, white; the class name under each. */
static void test_show_data(void **state)
{
    (void)state;
    char t[512];   /* in_scratch's buffers take turns: keep the path */
    snprintf(t, sizeof t, "%s", pics_model());
    RunResult r;
    run_cmd(&r, "%s show-data --count 2 --out %s", t, in_scratch("grid.png"));
    assert_int_equal(r.status, 0);
    int w, h;
    uint8_t *px = load_png(in_scratch("grid.png"), &w, &h);
    /* each of the 6x6 pixels a 16x16 block; the first, the bright corner, skipped */
    assert_int_equal(px[(8 * w + 8 + 20) * 3], 0);           /* dark: 0.1, the lowest */
    assert_int_equal(px[(8 * w + 8 + 96 + 8 + 20) * 3], 227); /* light: (0.9-0.1)/(1-0.1)*255 */
    assert_int_equal(px[(8 * w + 8) * 3], 255);              /* the corner: 1.0, the highest */
    int ink = 0;
    for (int y = 8 + 96; y < h; y++)
        for (int x = 8; x < 8 + 96; x++)
            ink += px[(y * w + x) * 3] == 0;
    assert_true(ink > 10);   /* "dark" under the first */
    stbi_image_free(px);

    run_cmd(&r, "%s show-data --split test --out %s", t, in_scratch("g.png"));
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "gives no test data");
    run_cmd(&r, "%s show-data --split tets --out %s", t, in_scratch("g.png"));
    assert_int_equal(r.status, 2);
    assert_output_contains(&r, "did you mean 'test'?");
}

/* The src="..." of every <img ...> in the page, in order; how many. */
static int image_sources(const char *html, char srcs[][128], int max)
{
    int n = 0;
    for (const char *p = html; n < max && (p = strstr(p, "<img ")); n++) {
        p = strstr(p, " src=\"");
        assert_non_null(p);
        p += strlen(" src=\"");
        const char *end = strchr(p, '"');
        assert_non_null(end);
        snprintf(srcs[n], 128, "%.*s", (int)(end - p), p);
    }
    return n;
}

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t len = fread(buf, 1, sizeof buf - 1, f);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

#define MAX_IMAGES 32

/* Chromium's flags for a run that reaches nothing outside this machine. */
#define CHROMIUM "chromium --headless --no-sandbox --disable-gpu --no-first-run " \
                 "--disable-background-networking --disable-component-update --disable-sync"

/* A page beside the report, with a script, that loads each image the report
 * shows and says how many loaded (the report itself has no script). */
static void check_images_in_browser(const char *dir, char srcs[][128], int n)
{
    char page[8192];
    size_t len = (size_t)snprintf(page, sizeof page, "<!DOCTYPE html><html><body>");
    for (int i = 0; i < n; i++)
        len += (size_t)snprintf(page + len, sizeof page - len, "<img src=\"%s\">", srcs[i]);
    snprintf(page + len, sizeof page - len,
             "<p id=\"result\">pending</p><script>window.onload = function () {"
             "var ok = 0, imgs = document.images;"
             "for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && "
             "imgs[i].naturalWidth > 0) ok++;"
             "document.getElementById('result').textContent = 'loaded ' + ok + ' of ' + "
             "imgs.length; };</script></body></html>");
    char path[600];
    snprintf(path, sizeof path, "%s/check.html", dir);
    write_text(path, page);
    RunResult r;
    run_cmd(&r, CHROMIUM " --user-data-dir=%s --virtual-time-budget=10000 --dump-dom "
                "file://%s 2>/dev/null", in_scratch("profile2"), path);
    assert_int_equal(r.status, 0);
    char want[64];
    snprintf(want, sizeof want, "loaded %d of %d", n, n);
    assert_output_contains(&r, want);
}

/* The screenshot is not blank: many distinct colours. */
static void check_screenshot(const char *png)
{
    int w, h;
    uint8_t *px = load_png(png, &w, &h);
    int non_white = 0;
    for (int i = 0; i < w * h; i++)
        non_white += px[i * 3] < 200 || px[i * 3 + 1] < 200 || px[i * 3 + 2] < 200;
    stbi_image_free(px);
    assert_true(non_white > w * h / 50);
}

/* show-data on a series: 5 windows, 4 panels a row (216 x 107 each, 8 around). */
static void test_show_series_and_text(void **state)
{
    (void)state;
    FILE *f = fopen(in_scratch("s.csv"), "w");
    assert_non_null(f);
    fprintf(f, "t,v\n");
    for (int i = 0; i < 20; i++)
        fprintf(f, "%d,%d\n", i, i % 5);
    fclose(f);
    char t[512];
    snprintf(t, sizeof t, "%s", build_model("wins",
        "input_shape: [6]\nlayers:\n  - Dense: {units: 1}\ncompile: {optimizer: sgd, loss: mse}\n"
        "data:\n  train: {format: series, path: s.csv, column: v, window_size: 6}\n"));
    RunResult r;
    run_cmd(&r, "cd %s && %s show-data --count 5 --out w.png", scratch, t);
    if (r.status != 0)
        fail_msg("%s", r.out);
    int w, h;
    stbi_image_free(load_png(in_scratch("w.png"), &w, &h));
    assert_int_equal(w, 4 * 216 + 8);
    assert_int_equal(h, 2 * 107 + 8);

    write_text(in_scratch("t.json"), "[{\"text\": \"the cat sat\", \"label\": \"a\"},\n"
                                     " {\"text\": \"the dog\", \"label\": \"b\"}]\n");
    snprintf(t, sizeof t, "%s", build_model("words",
        "input_shape: [4]\nlayers:\n  - Dense: {units: 2, activation: softmax}\n"
        "compile: {optimizer: sgd, loss: sparse_categorical_crossentropy}\n"
        "data:\n  train: {format: text, path: t.json, text: text, padding: post}\n"));
    run_cmd(&r, "cd %s && %s show-data --out t.png", scratch, t);
    if (r.status != 0)
        fail_msg("%s", r.out);
    assert_output_contains(&r, "the first 2 train samples");
    /* two lines of text ("a: the cat sat", "b: the dog"): ink in both rows, none below */
    uint8_t *px = load_png(in_scratch("t.png"), &w, &h);
    int ink[3] = {0};
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            ink[y < 8 + 12 ? 0 : y < 8 + 24 ? 1 : 2] += px[(y * w + x) * 3] < 128;
    assert_true(ink[0] > 20 && ink[1] > 20 && ink[2] == 0);
    stbi_image_free(px);
}

/* train --report: the files after 2 epochs; the page and every image it
 * names load in Chromium. */
static void test_report_in_browser(void **state)
{
    (void)state;
    char t[512];   /* in_scratch's buffers take turns: keep the path */
    snprintf(t, sizeof t, "%s", pics_model());
    char dir[512];
    snprintf(dir, sizeof dir, "%s", in_scratch("report"));
    RunResult r;
    run_cmd(&r, "%s train --quiet --report %s --history %s", t, dir, in_scratch("h.csv"));
    assert_int_equal(r.status, 0);
    const char *html = read_text(in_scratch("report/index.html"));
    assert_non_null(strstr(html, "After epoch 2 of 2"));
    assert_non_null(strstr(html, "Confusion matrix (validation data)"));
    assert_non_null(strstr(html, " of 2)</p>"));   /* validation_split 0.25 of 8 samples */
    assert_null(strstr(html, "<script"));
    assert_null(strstr(html, "http"));
    char srcs[MAX_IMAGES][128];
    int n = image_sources(html, srcs, MAX_IMAGES);
    /* curves, confusion, predictions, 2 layers x 2 colourings of maps */
    assert_int_equal(n, 7);
    char path[8192];
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, srcs[i]);
        int w, h;
        stbi_image_free(load_png(path, &w, &h));
        snprintf(path, sizeof path, "%s/%s.tmp", dir, srcs[i]);
        assert_false(file_exists(path));
    }

    run_cmd(&r, "%s plot --history %s --out %s", t, in_scratch("h.csv"), in_scratch("c.png"));
    assert_int_equal(r.status, 0);
    int w, h;
    stbi_image_free(load_png(in_scratch("c.png"), &w, &h));
    assert_int_equal(w, 2 * 400);   /* loss and accuracy, each with its val_ */
    write_text(in_scratch("h3.csv"), "epoch,loss\n1,1.0\n2\n");
    run_cmd(&r, "%s plot --history %s --out %s", t, in_scratch("h3.csv"), in_scratch("c3.png"));
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "line 3 has 1 fields; the header names 2");
    assert_false(file_exists(in_scratch("c3.png")));
    write_text(in_scratch("h4.csv"), "1,2\n");
    run_cmd(&r, "%s plot --history %s --out %s", t, in_scratch("h4.csv"), in_scratch("c3.png"));
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "line 1 should be a header");

    run_cmd(&r, "command -v chromium");
    if (r.status != 0) {
        fprintf(stderr, "chromium is not installed: the report was not opened in a browser "
                        "(tools/ensure-deps test installs it)\n");
        skip();
    }
    run_cmd(&r, CHROMIUM " --user-data-dir=%s --virtual-time-budget=5000 --dump-dom "
                "file://%s/index.html 2>/dev/null", in_scratch("profile"), dir);
    assert_int_equal(r.status, 0);
    assert_output_contains(&r, "<h1>pics</h1>");
    check_images_in_browser(dir, srcs, n);
    run_cmd(&r, CHROMIUM " --user-data-dir=%s --window-size=1000,1400 --screenshot=%s "
                "file://%s/index.html", in_scratch("profile3"), in_scratch("shot.png"), dir);
    assert_int_equal(r.status, 0);
    check_screenshot(in_scratch("shot.png"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_line_pixels),
        cmocka_unit_test(test_shapes_clip),
        cmocka_unit_test(test_text_at_known_place),
        cmocka_unit_test(test_viridis),
        cmocka_unit_test(test_nice_ticks),
        cmocka_unit_test(test_confusion_2x2),
        cmocka_unit_test(test_plot_columns),
        cmocka_unit_test(test_show_data),
        cmocka_unit_test(test_series_window),
        cmocka_unit_test(test_decode_ids),
        cmocka_unit_test(test_show_series_and_text),
        cmocka_unit_test(test_report_in_browser),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
