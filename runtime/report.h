/* report.h - how a runtime module reports a failure, and memory that cannot
 * fail. Its own header (rt.h includes it) because npz.c and summary.c are
 * linked into nncc as well as into libnnrt: what they stand on must need
 * nothing but libc, and say so by its includes.
 *
 * Errors: nn_error() prints one line `PLACE: error: ...` on stderr and
 * returns -1, for the caller to pass up; PLACE is a file, a program or NULL. */
#ifndef NNRT_REPORT_H
#define NNRT_REPORT_H

#include <stddef.h>

int nn_error(const char *place, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void nn_warning(const char *place, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void *nn_alloc(size_t count, size_t size);       /* zeroed; aborts with a message if out of memory */
/* Zeroed memory for what a file holds (place: the file, what: for what), or
 * NULL after an error naming them: a file whose data is real but larger than
 * memory is refused by name, not with an abort naming nothing. */
void *nn_alloc_for(const char *place, const char *what, size_t count, size_t size);

/* The choice (a NULL-terminated list) nearest to word, within a third of its
 * length in slips (a wrong, missing, extra or swapped letter; case ignored),
 * or NULL: what "did you mean" suggests, in nncc and in a trainer alike. */
const char *nn_closest_word(const char *word, const char *const *choices);

#endif
