/* lifetime.c - where each work buffer lives, by when it is in use.
 *
 * Time runs through one training step: op i's forward at t = i, then the
 * backward pass, op i's backward at t = 2N - 1 - i (N ops). A buffer is in use
 * from the first call that touches it to the last, as the row's call words say
 * (x, y, dy, dx, aux, ...), and two buffers may share floats when those spans
 * do not meet. Values the runtime reads between passes (each layer's output,
 * for `activations`, and the model's output, for the loss) stay until the
 * forward pass ends. A gradient lives from its first writer to its producer's
 * backward, so the gradients of a deep network take the room of a few; for
 * --inference only the forward pass counts, and values die with their last
 * reader. Offsets are found largest buffer first, each at the lowest offset
 * free over its span: deterministic, and never more than one buffer each. */
#include "nncc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int first, last;              /* span of use; first > last: never used */
} Span;

static void touch(Span *s, int b, int t)
{
    if (b == NO_BUF)
        return;
    if (s[b].first > t)
        s[b].first = t;
    if (s[b].last < t)
        s[b].last = t;
}

/* Every buffer one call reads or writes, from its words. */
static void touch_call(Span *s, const Op *op, const char *args, int t)
{
    for (const char *w = args; *w;) {
        size_t len = strcspn(w, " ");
        bool all = len == 2 || len == 3;   /* xs, dxs: every input */
        if (strncmp(w, "x", len) == 0 || strncmp(w, "xs", len) == 0)
            for (int k = 0; k < (all ? op->n_in : 1); k++)
                touch(s, op->in[k], t);
        else if (strncmp(w, "dx", len) == 0 || strncmp(w, "dxs", len) == 0)
            for (int k = 0; k < (all ? op->n_in : 1); k++)
                touch(s, op->din[k], t);
        else if (strncmp(w, "y", len) == 0)
            touch(s, op->out, t);
        else if (strncmp(w, "dy", len) == 0)
            touch(s, op->dout, t);
        else if (strncmp(w, "aux", len) == 0)
            touch(s, op->aux, t);
        w += len + strspn(w + len, " ");
    }
}

static const char *forward_words(const Op *op, bool inference)
{
    if (!op->ops)
        return "x y";
    if (inference && (op->ops->flags & LF_INFERENCE_IDENTITY))
        return "x y";   /* a copy */
    return inference && op->ops->inference_args ? op->ops->inference_args
                                                : op->ops->forward_args;
}

static void find_spans(const Plan *p, const Model *m, bool inference, Span *s)
{
    int n = p->n_ops, end_of_forward = n - 1;
    for (int b = 0; b < p->n_bufs; b++)
        s[b] = (Span){INT32_MAX, -1};
    for (int i = 0; i < n; i++)
        touch_call(s, &p->ops[i], forward_words(&p->ops[i], inference), i);
    touch(s, p->layer_out[m->output], n);   /* the loss, or predict */
    for (int i = 0; !inference && i < m->n_layers; i++)
        touch(s, p->layer_out[i], end_of_forward);
    if (inference)
        return;
    touch(s, p->layer_dout[m->output], n);  /* the loss's gradient, copied in */
    for (int i = n - 1; i >= 0; i--) {
        const Op *op = &p->ops[i];
        int t = 2 * n - 1 - i;
        if (!op_has_backward(p, op))
            continue;
        touch_call(s, op, op->ops ? op->ops->backward_args : "x y dy dx", t);
        for (int k = 0; k < op->n_in; k++)
            if (op->add_to[k] != NO_BUF) {
                touch(s, op->add_to[k], t);
                touch(s, op->din[k], t);
            }
    }
}

static bool meet(Span a, Span b)
{
    return a.first <= b.last && b.first <= a.last;
}

/* The lowest offset at which buffer b overlaps no placed buffer that is in
 * use at the same time. Placed buffers are tried as boundaries in order of
 * their offsets. */
static long lowest_free(const Plan *p, const Span *s, const int *placed, int n_placed, int b)
{
    long at = 0;
    bool moved = true;
    while (moved) {
        moved = false;
        for (int k = 0; k < n_placed; k++) {
            const Buffer *o = &p->bufs[placed[k]];
            if (meet(s[b], s[placed[k]]) && at < o->offset + o->size &&
                o->offset < at + p->bufs[b].size) {
                at = o->offset + o->size;
                moved = true;
            }
        }
    }
    return at;
}

static const Plan *sort_plan;
static int larger_first(const void *a, const void *b)
{
    long sa = sort_plan->bufs[*(const int *)a].size, sb = sort_plan->bufs[*(const int *)b].size;
    return sa != sb ? (sa < sb) - (sa > sb) : *(const int *)a - *(const int *)b;
}

void plan_lifetimes(Plan *p, const Model *m, bool inference)
{
    static Span spans[MAX_BUFS];
    static int order[MAX_BUFS], placed[MAX_BUFS];
    find_spans(p, m, inference, spans);
    for (int b = 0; b < p->n_bufs; b++)
        order[b] = b;
    sort_plan = p;
    qsort(order, (size_t)p->n_bufs, sizeof order[0], larger_first);
    int n_placed = 0;
    p->work_floats = 0;
    for (int k = 0; k < p->n_bufs; k++) {
        Buffer *b = &p->bufs[order[k]];
        b->offset = 0;
        if (spans[order[k]].first > spans[order[k]].last)
            continue;   /* never used in this kind of pass */
        b->offset = lowest_free(p, spans, placed, n_placed, order[k]);
        placed[n_placed++] = order[k];
        /* The C names each offset in an enum, and an enum constant is an int. */
        if (b->offset + b->size > INT32_MAX)
            error_at(b->layer->where, "the model is too large: its activations take more "
                                      "than %d floats per sample", INT32_MAX);
        if (b->offset + b->size > p->work_floats)
            p->work_floats = b->offset + b->size;
    }
}
