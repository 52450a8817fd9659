/* report.c - errors, warnings and allocation (report.h) for the runtime's
 * modules and for the ones nncc links too (npz.c, summary.c): libc only. */
#include "report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

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
