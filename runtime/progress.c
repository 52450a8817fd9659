/* progress.c - what Keras prints while it trains (model.fit with verbose=1).
 *
 *   Epoch 1/5
 *     50/1875 [>.............................] - ETA: 10s - loss: 0.6543 - accuracy: 0.7731
 *   1875/1875 [==============================] - 2s 1ms/step - loss: 0.4960 - accuracy: 0.8254
 *
 * An epoch interrupted (Ctrl-C) or out of data ends with the bar where it
 * got ("523/1875 [=====>....] - 3s 6ms/step"), timed over the steps run.
 *
 * On a terminal the bar is redrawn in place ('\r') at most every 0.05 s, as
 * Keras's Progbar does; into a file or a pipe only the epoch's last line is
 * written, so logs stay one line per epoch. The formats (bar, ETA, times,
 * %.4f or %.4e values) follow Progbar's so that the output reads the same.
 */
#include "rt.h"

#include <math.h>
#include <time.h>
#include <unistd.h>

#define BAR_WIDTH 30
#define REDRAW_INTERVAL 0.05

double nn_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void nn_progress_begin(nn_progress *p, int epoch, int epochs, int steps, bool quiet)
{
    p->epoch = epoch;
    p->epochs = epochs;
    p->steps = steps;
    p->quiet = quiet;
    p->tty = isatty(fileno(stdout));
    p->first = p->done = 0;
    p->last_draw = -HUGE_VAL;
    p->width = 0;
    if (!quiet && epochs > 0) {
        printf("Epoch %d/%d\n", epoch, epochs);
        fflush(stdout);
    }
    p->start = nn_now();
}

void nn_progress_skip(nn_progress *p, int steps)
{
    p->first = p->done = steps;
}

/* Seconds per step of this run's steps so far. */
static double per_step(const nn_progress *p, double elapsed)
{
    return p->done > p->first ? elapsed / (p->done - p->first) : 0;
}

static int decimal_digits(int x)
{
    int d = 1;
    while (x >= 10) {
        x /= 10;
        d++;
    }
    return d;
}

/* " 50/1875 [=====>.....]": the count right-aligned to the total's width.
 * Returns the characters written, as every printer below does. */
static int print_bar(int step, int steps)
{
    int w = printf("%*d/%d [", decimal_digits(steps), step, steps);
    int done = steps > 0 ? (int)(BAR_WIDTH * ((double)step / steps)) : BAR_WIDTH;
    done = done < 0 ? 0 : done > BAR_WIDTH ? BAR_WIDTH : done;
    for (int i = 0; i < BAR_WIDTH; i++)
        putchar(i < done - 1 ? '=' : i == done - 1 ? (step < steps ? '>' : '=') : '.');
    return w + BAR_WIDTH + printf("]");
}

/* Keras shows values above 1e-3 in magnitude with 4 decimals, others in %e. */
static int print_metrics(const char *const *names, const double *values, int n)
{
    int w = 0;
    for (int i = 0; i < n; i++)
        w += printf(fabs(values[i]) > 1e-3 ? " - %s: %.4f" : " - %s: %.4e", names[i], values[i]);
    return w;
}

static int print_eta(double eta)
{
    long s = (long)eta;
    if (eta > 3600)
        return printf(" - ETA: %ld:%02ld:%02ld", s / 3600, s % 3600 / 60, s % 60);
    if (eta > 60)
        return printf(" - ETA: %ld:%02ld", s / 60, s % 60);
    return printf(" - ETA: %lds", s);
}

/* Keras's time per step: whole seconds, else ms, else us. */
static int print_time_per_step(double t)
{
    if (t >= 1 || t == 0)
        return printf(" %.0fs/step", t);
    if (t >= 1e-3)
        return printf(" %.0fms/step", t * 1e3);
    return printf(" %.0fus/step", t * 1e6);
}

/* Blanks what is left of a longer previous line. */
static void finish_line(nn_progress *p, int width)
{
    for (int i = width; i < p->width; i++)
        putchar(' ');
    p->width = width;
}

void nn_progress_step(nn_progress *p, int step, const char *const *names, const double *values, int n)
{
    p->done = step;
    if (p->quiet || !p->tty)
        return;
    double now = nn_now();
    if (step < p->steps && now - p->last_draw < REDRAW_INTERVAL)
        return;
    p->last_draw = now;
    putchar('\r');
    int w = print_bar(step, p->steps);
    w += print_eta(per_step(p, now - p->start) * (p->steps - step));
    w += print_metrics(names, values, n);
    finish_line(p, w);
    fflush(stdout);
}

void nn_progress_end(nn_progress *p, const char *const *names, const double *values, int n)
{
    if (p->quiet)
        return;
    double elapsed = nn_now() - p->start;
    if (p->tty)
        putchar('\r');
    int w = print_bar(p->done, p->steps);
    w += printf(" - %.0fs", elapsed);
    w += print_time_per_step(per_step(p, elapsed));
    w += print_metrics(names, values, n);
    if (p->tty)
        finish_line(p, w);
    putchar('\n');
    fflush(stdout);
}
