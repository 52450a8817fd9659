/* summary.c - Keras's model.summary() table. nncc --check and a trainer's
 * `summary` command both print through nn_print_summary (nnrt.h), so they
 * agree; nncc links this file without the rest of libnnrt, so it needs libc
 * only. */
#include "nnrt.h"

/* Keras's columns for a Sequential model: 65 characters cut at 45% and 85%. */
enum { LINE = 65, COL_SHAPE = 29, COL_PARAMS = 55 };

static void print_row(FILE *out, const char *a, const char *b, const char *c)
{
    char line[LINE + 64];
    int len = snprintf(line, sizeof line, " %-*s %-*s %s", COL_SHAPE - 2, a,
                       COL_PARAMS - COL_SHAPE - 1, b, c);
    while (len > 0 && line[len - 1] == ' ')
        line[--len] = '\0';
    fprintf(out, "%s\n", line);
}

static void rule(FILE *out, char c)
{
    for (int i = 0; i < LINE; i++)
        fputc(c, out);
    fputc('\n', out);
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
    fprintf(out, "Model: \"%s\"\n", model_name);
    rule(out, '_');
    print_row(out, "Layer (type)", "Output Shape", "Param #");
    rule(out, '=');
    for (int i = 0; i < n; i++) {
        char name[160], shape[80], params[32];
        snprintf(name, sizeof name, "%s (%s)", rows[i].name, rows[i].type);
        int len = snprintf(shape, sizeof shape, "(None");
        for (int d = 0; d < rows[i].rank; d++)
            len += snprintf(shape + len, sizeof shape - (size_t)len, ", %ld", rows[i].shape[d]);
        snprintf(shape + len, sizeof shape - (size_t)len, ")");
        snprintf(params, sizeof params, "%ld", rows[i].params);
        print_row(out, name, shape, params);
        fputc('\n', out);
        total += rows[i].params;
        trainable += rows[i].trainable_params;
    }
    rule(out, '=');
    char buf[32];
    fprintf(out, "Total params: %s\n", thousands(total, buf, sizeof buf));
    fprintf(out, "Trainable params: %s\n", thousands(trainable, buf, sizeof buf));
    fprintf(out, "Non-trainable params: %s\n", thousands(total - trainable, buf, sizeof buf));
    rule(out, '_');
}
