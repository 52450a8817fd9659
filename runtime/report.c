/* report.c - errors, warnings and allocation (report.h) for the runtime's
 * modules and for the ones nncc links too (npz.c, summary.c): libc only. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <ctype.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static void vreport(const char *kind, const char *place, const char *fmt, va_list ap)
{
    if (place && *place)
        fprintf(stderr, "%s: ", place);
    fprintf(stderr, "%s: ", kind);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

int nn_error(const char *place, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("error", place, fmt, ap);
    va_end(ap);
    return -1;
}

void nn_warning(const char *place, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("warning", place, fmt, ap);
    va_end(ap);
}

void *nn_alloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) {
        fprintf(stderr, "error: out of memory (%zu x %zu bytes)\n", count, size);
        abort();
    }
    return p;
}

void *nn_alloc_for(const char *place, const char *what, size_t count, size_t size)
{
    void *p = size && count > SIZE_MAX / size ? NULL : calloc(count ? count : 1, size ? size : 1);
    if (!p)
        nn_error(place, "out of memory for %s (%zu x %zu bytes)", what, count, size);
    return p;
}

/* ---- did you mean ---- */

#define MAX_COMPARED 64

/* Damerau-Levenshtein (optimal string alignment), ignoring case: a swapped
 * pair of letters is one slip, as is a wrong, missing or extra letter. */
static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    int d[MAX_COMPARED + 1][MAX_COMPARED + 1];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++) {
        for (int j = 1; j <= lb; j++) {
            int ca = tolower((unsigned char)a[i - 1]), cb = tolower((unsigned char)b[j - 1]);
            int best = d[i - 1][j - 1] + (ca != cb);
            if (d[i - 1][j] + 1 < best)
                best = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < best)
                best = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && ca == tolower((unsigned char)b[j - 2]) &&
                tolower((unsigned char)a[i - 2]) == cb && d[i - 2][j - 2] + 1 < best)
                best = d[i - 2][j - 2] + 1;
            d[i][j] = best;
        }
    }
    return d[la][lb];
}

const char *nn_closest_word(const char *word, const char *const *choices)
{
    size_t len = strlen(word);
    if (len > MAX_COMPARED)
        return NULL;
    int limit = len / 3 > 1 ? (int)(len / 3) : 1;
    const char *best = NULL;
    int best_distance = limit + 1;
    for (const char *const *c = choices; *c; c++) {
        if (strlen(*c) > MAX_COMPARED || strcmp(*c, word) == 0)
            continue;
        int d = edit_distance(word, *c);
        if (d < best_distance) {
            best = *c;
            best_distance = d;
        }
    }
    return best;
}
