/* summary.c - Keras's model.summary() table. nncc --check and a trainer's
 * `summary` command both print through nn_print_summary (nnrt.h), so they
 * agree; nncc links this file without the rest of libnnrt, so it needs libc
 * only. */
#include "nnrt.h"

#include <stdbool.h>
#include <string.h>

/* Keras's columns: for a Sequential model 65 characters cut at 45% and 85%;
 * for a graph 98, cut as Keras 2.x prints a functional model, with "Connected to" last. */
typedef struct {
    int line, shape, params, connected;
} Layout;
static const Layout sequential = {65, 29, 55, 0}, graph = {98, 32, 53, 65};

static void print_row(FILE *out, const Layout *l, const char *a, const char *b, const char *c,
                      const char *d)
{
    char line[512];
    int len = snprintf(line, sizeof line, " %-*s %-*s %-*s %s", l->shape - 2, a,
                       l->params - l->shape - 1, b, l->connected ? l->connected - l->params - 1 : 0,
                       c, d);
    while (len > 0 && line[len - 1] == ' ')
        line[--len] = '\0';
    fprintf(out, "%s\n", line);
}

static void rule(FILE *out, const Layout *l, char c)
{
    for (int i = 0; i < l->line; i++)
        fputc(c, out);
    fputc('\n', out);
}

/* Keras's "Connected to": ['a[0][0]', then 'b[0][0]'] each on a line of its own. */
static void print_layer(FILE *out, const Layout *l, const char *a, const char *b, const char *c,
                        const char *inputs)
{
    if (!l->connected) {
        print_row(out, l, a, b, c, "");
        return;
    }
    if (!*inputs) {
        print_row(out, l, a, b, c, "[]");
        return;
    }
    for (int first = 1; *inputs; first = 0) {
        int len = (int)strcspn(inputs, " ");
        char cell[160];
        snprintf(cell, sizeof cell, "%s'%.*s[0][0]'%s", first ? "[" : "", len, inputs,
                 inputs[len] ? "," : "]");
        print_row(out, l, first ? a : "", first ? b : "", first ? c : "", cell);
        inputs += len + (inputs[len] == ' ');
    }
}

nn_summary_row nn_summary_input_row(int rank, const int *shape)
{
    nn_summary_row r = {"input", "InputLayer", rank, {0}, 0, 0, ""};
    for (int d = 0; d < rank; d++)
        r.shape[d] = shape[d];
    return r;
}

/* 101770 -> "101,770" */
static const char *thousands(long v, char *buf, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof digits, "%ld", v < 0 ? -v : v);
    size_t o = 0;
    if (v < 0 && o + 1 < len)
        buf[o++] = '-';
    for (int i = 0; i < n && o + 2 < len; i++) {
        if (i > 0 && (n - i) % 3 == 0)
            buf[o++] = ',';
        buf[o++] = digits[i];
    }
    buf[o] = '\0';
    return buf;
}

void nn_print_summary(FILE *out, const char *model_name, const nn_summary_row *rows, int n)
{
    long total = 0, trainable = 0;
    const Layout *l = &sequential;
    for (int i = 0; i < n; i++)
        l = rows[i].inputs ? &graph : l;
    fprintf(out, "Model: \"%s\"\n", model_name);
    rule(out, l, '_');
    print_row(out, l, "Layer (type)", "Output Shape", "Param #", l->connected ? "Connected to" : "");
    rule(out, l, '=');
    for (int i = 0; i < n; i++) {
        char name[160], shape[80], params[32];
        bool input = rows[i].inputs && !*rows[i].inputs;   /* Keras: [(None, ...)] */
        snprintf(name, sizeof name, "%s (%s)", rows[i].name, rows[i].type);
        int len = snprintf(shape, sizeof shape, "%s(None", input ? "[" : "");
        for (int d = 0; d < rows[i].rank; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, ", %ld", rows[i].shape[d]);
        snprintf(shape + len, sizeof shape - (size_t)len, input ? ")]" : ")");
        snprintf(params, sizeof params, "%ld", rows[i].params);
        print_layer(out, l, name, shape, params, rows[i].inputs ? rows[i].inputs : "");
        fputc('\n', out);
        total += rows[i].params;
        trainable += rows[i].trainable_params;
    }
    rule(out, l, '=');
    char buf[32];
    fprintf(out, "Total params: %s\n", thousands(total, buf, sizeof buf));
    fprintf(out, "Trainable params: %s\n", thousands(trainable, buf, sizeof buf));
    fprintf(out, "Non-trainable params: %s\n", thousands(total - trainable, buf, sizeof buf));
    rule(out, l, '_');
}
