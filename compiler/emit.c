/* emit.c - the plan into C, by filling the holes of the templates built into
 * nncc (templates/NAME.c.in). A hole is @NAME@; what fills it is a number, an
 * identifier checked by model.c, a string literal escaped here, or a block of
 * calls made here from those. Nothing from the YAML reaches the C otherwise. */
#include "nncc.h"
#include "nnrt.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- memory ------------------------------------------------------------------------ */

/* Everything emit makes lives until the C is written; it is kept on one list
 * and released together by emit_release(). */
static void **made;
static size_t n_made, cap_made;

static void *keep(void *p)
{
    if (!p)
        error_at(NULL, "out of memory");
    if (n_made == cap_made) {
        cap_made = cap_made ? 2 * cap_made : 256;
        void **grown = realloc(made, cap_made * sizeof *grown);
        if (!grown)
            error_at(NULL, "out of memory");
        made = grown;
    }
    return made[n_made++] = p;
}

void emit_release(void)
{
    for (size_t i = 0; i < n_made; i++)
        free(made[i]);
    free(made);
    made = NULL;
    n_made = cap_made = 0;
}

/* ---- text blocks ---------------------------------------------------------------- */

typedef struct {
    char *text;
    size_t len;
    FILE *f;
} Block;

static void block_open(Block *b)
{
    b->text = NULL;
    b->f = open_memstream(&b->text, &b->len);
    if (!b->f)
        error_at(NULL, "out of memory");
}

static char *block_close(Block *b)
{
    fclose(b->f);
    /* Blocks fill holes that sit on lines of their own: drop the last newline. */
    if (b->len && b->text[b->len - 1] == '\n')
        b->text[--b->len] = '\0';
    return keep(b->text);
}

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap, again;
    va_start(ap, f);
    va_copy(again, ap);
    int len = vsnprintf(NULL, 0, f, ap);
    va_end(ap);
    char *s = keep(malloc((size_t)len + 1));
    vsnprintf(s, (size_t)len + 1, f, again);
    va_end(again);
    return s;
}

/* The shortest float literal that reads back to the same float, into buf;
 * float_array writes millions of them, so this one keeps nothing. */
static void float_text(char buf[48], double v)
{
    float f = (float)v;
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, 46, "%.*g", digits, f);
        if (strtof(buf, NULL) == f)
            break;
    }
    strcat(buf, strpbrk(buf, ".e") ? "f" : ".0f");
}

static char *float_lit(double v)
{
    char buf[48];
    float_text(buf, v);
    return fmt("%s", buf);
}

/* A C string literal for any bytes: only letters, digits and a few safe
 * characters pass as they are, everything else is an octal escape. */
static char *string_lit(const char *s)
{
    if (!s)
        return fmt("NULL");
    Block b;
    block_open(&b);
    fputc('"', b.f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || strchr(" _-./:,+=@%", *p))
            fputc(*p, b.f);
        else
            fprintf(b.f, "\\%03o", *p);
    }
    fputc('"', b.f);
    return block_close(&b);
}

/* For comments: the file name a reader sees, with anything that could end the
 * comment or the line replaced. */
static char *comment_text(const char *s)
{
    char *t = fmt("%s", s);
    for (char *p = t; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("_-./", *p))
            *p = '?';
    return t;
}

/* ---- holes --------------------------------------------------------------------------- */

#define MAX_HOLES 48
typedef struct {
    int n;
    const char *name[MAX_HOLES];
    char *value[MAX_HOLES];
} Holes;

static void hole(Holes *h, const char *name, char *value)
{
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->name[i], name) == 0) {
            h->value[i] = value;
            return;
        }
    if (h->n == MAX_HOLES)
        error_at(NULL, "internal error: too many template holes");
    h->name[h->n] = name;
    h->value[h->n++] = value;
}

static void hole_long(Holes *h, const char *name, long v)
{
    hole(h, name, fmt("%ld", v));
}

static void expand(FILE *out, const char *name, const Holes *h)
{
    const char *t = template_text(name);
    if (!t)
        error_at(NULL, "internal error: no template '%s'", name);
    while (*t) {
        const char *at = strchr(t, '@');
        const char *end = at ? strchr(at + 1, '@') : NULL;
        if (!end) {
            fputs(t, out);
            return;
        }
        fwrite(t, 1, (size_t)(at - t), out);
        size_t len = (size_t)(end - at - 1);
        int i = 0;
        while (i < h->n && (strlen(h->name[i]) != len || strncmp(h->name[i], at + 1, len)))
            i++;
        if (i == h->n)
            error_at(NULL, "internal error: template '%s' has an unknown hole @%.*s@", name,
                     (int)len, at + 1);
        fputs(h->value[i], out);
        t = end + 1;
    }
}

/* ---- names that the C will hold ------------------------------------------------------ */

/* Every identifier the model adds to the C, so that two layers whose names
 * differ (a, a_relu) cannot meet as a_relu_forward. */
typedef struct {
    int n;
    char *name[4 * MAX_OPS + MAX_TENSORS + MAX_BUFS];
    const Node *where[4 * MAX_OPS + MAX_TENSORS + MAX_BUFS];
} Names;

static void claim(Names *ns, const Node *where, char *name)
{
    for (int i = 0; i < ns->n; i++)
        if (strcmp(ns->name[i], name) == 0)
            error_at(where, "the name '%s' in the generated C would clash with one from line "
                            "%d; rename a layer", name, ns->where[i]->line);
    ns->where[ns->n] = where;
    ns->name[ns->n++] = name;
}

static void claim_all(const Plan *p)
{
    static Names ns;
    ns.n = 0;
    for (int i = 0; i < p->n_ops; i++) {
        const Op *op = &p->ops[i];
        claim(&ns, op->layer->where, fmt("%s_forward", op->fn));
        claim(&ns, op->layer->where, fmt("%s_backward", op->fn));
        claim(&ns, op->layer->where, fmt("%s_IN", op->fn));
        claim(&ns, op->layer->where, fmt("%s_OUT", op->fn));
    }
    for (int i = 0; i < p->n_tensors; i++)
        claim(&ns, p->tensors[i].layer->where,
              fmt("%s_%s", p->tensors[i].layer->name, strchr(p->tensors[i].name, '.') + 1));
    for (int i = 0; i < p->n_bufs; i++)
        claim(&ns, p->bufs[i].layer->where, fmt("%s", p->bufs[i].name));
}

/* ---- one op: its functions, and the calls that run them -------------------------- */

static const char *const op_templates[] = {
    [OP_DENSE] = "dense", [OP_CONV2D] = "conv2d", [OP_MAXPOOL2D] = "maxpool2d",
    [OP_AVGPOOL2D] = "avgpool2d", [OP_GAP2D] = "gap2d", [OP_BATCHNORM] = "batchnorm",
    [OP_DROPOUT] = "dropout", [OP_ACT] = "activation", [OP_SOFTMAX] = "softmax",
};

/* TensorFlow's same padding: the smaller half before, the extra row after. */
static long pad_before(long in, long out, long k, long s)
{
    long total = (out - 1) * s + k - in;
    return total > 0 ? total / 2 : 0;
}

static void op_holes(Holes *h, const Model *m, const Plan *p, const Op *op, int index)
{
    const Layer *l = op->layer;
    h->n = 0;
    hole(h, "FN", fmt("%s", op->fn));
    hole(h, "LAYER", fmt("%s", l->name));
    hole(h, "WHERE", fmt("%s:%d", comment_text(m->file), l->where->line));
    hole(h, "ACT", fmt("%s", activation_names[op->act]));
    hole_long(h, "SIZE", op->size);
    hole_long(h, "IN", shape_size(&l->in));
    hole_long(h, "OUT", shape_size(&l->out));
    hole_long(h, "INDEX", index);
    hole_long(h, "LAYERS", p->n_ops);
    hole(h, "RATE", float_lit(l->rate));
    hole(h, "MOMENTUM", float_lit(l->momentum));
    hole(h, "EPSILON", float_lit(l->epsilon));
    bool image = l->in.rank == 3;
    hole_long(h, "H", image ? l->in.dim[0] : 1);
    hole_long(h, "W", image ? l->in.dim[1] : 1);
    hole_long(h, "C", l->in.dim[l->in.rank - 1]);
    hole_long(h, "OH", l->out.rank == 3 ? l->out.dim[0] : 1);
    hole_long(h, "OW", l->out.rank == 3 ? l->out.dim[1] : 1);
    hole_long(h, "OC", l->out.dim[l->out.rank - 1]);
    hole_long(h, "KH", l->kh);
    hole_long(h, "KW", l->kw);
    hole_long(h, "SH", l->sh);
    hole_long(h, "SW", l->sw);
    hole_long(h, "PT", l->same && image ? pad_before(l->in.dim[0], l->out.dim[0], l->kh, l->sh) : 0);
    hole_long(h, "PL", l->same && image ? pad_before(l->in.dim[1], l->out.dim[1], l->kw, l->sw) : 0);
    hole_long(h, "SPATIAL", l->in.rank == 3 ? l->in.dim[0] * l->in.dim[1] : 1);
    hole_long(h, "RANK", l->in.rank);
    hole_long(h, "TRAINABLE", l->trainable);
}

static char *buf_ref(const Plan *p, int b)
{
    return b == NO_BUF ? fmt("x") : fmt("W(%s)", p->bufs[b].name);
}

static char *grad_ref(const Plan *p, int b)
{
    return b == NO_BUF ? fmt("NULL") : fmt("W(%s)", p->bufs[b].name);
}

/* P(dense_kernel) or NULL; with grads, NULL for a frozen tensor: no work for it. */
static char *tensor_ref(const Plan *p, int t, bool grad)
{
    if (t < 0 || (grad && !p->tensors[t].trainable))
        return fmt("NULL");
    const Tensor *ts = &p->tensors[t];
    return fmt("%s(%s_%s)", grad ? "G" : "P", ts->layer->name, strchr(ts->name, '.') + 1);
}

/* "dense_1: relu, line 7", above each call, to find the layer in the model file. */
static void call_comment(FILE *out, const Op *op)
{
    const char *what = op->kind == OP_ACT || op->kind == OP_SOFTMAX
                           ? activation_names[op->act] : layer_type_names[op->layer->kind];
    fprintf(out, "    /* %s: %s, line %d */\n", op->layer->name, what, op->layer->where->line);
}

/* inference: Dropout passes values through and BatchNormalization uses its
 * moving statistics, in batchnorm_inference's function. */
static void emit_forward_call(FILE *out, const Plan *p, const Op *op, bool inference)
{
    char *in = buf_ref(p, op->in), *y = buf_ref(p, op->out);
    call_comment(out, op);
    if (inference && op->kind == OP_DROPOUT) {
        fprintf(out, "    memcpy(%s, %s, %ld * sizeof(float));\n", y, in, op->size);
        return;
    }
    if (inference && op->kind == OP_BATCHNORM) {
        fprintf(out, "    %s_forward(n, %s, %s, %s, %s, %s, %s);\n", op->fn, in,
                tensor_ref(p, op->tensor[0], false), tensor_ref(p, op->tensor[1], false),
                tensor_ref(p, op->tensor[2], false), tensor_ref(p, op->tensor[3], false), y);
        return;
    }
    switch (op->kind) {
    case OP_DENSE:
    case OP_CONV2D:
        fprintf(out, "    %s_forward(n, %s, %s, %s, %s);\n", op->fn, in,
                tensor_ref(p, op->tensor[0], false), tensor_ref(p, op->tensor[1], false), y);
        break;
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
    case OP_GAP2D:
    case OP_ACT:
    case OP_SOFTMAX:
        fprintf(out, "    %s_forward(n, %s, %s);\n", op->fn, in, y);
        break;
    case OP_DROPOUT:
        fprintf(out, "    %s_forward(pass, n, %s, %s, %s);\n", op->fn, in,
                buf_ref(p, op->aux), y);
        break;
    case OP_BATCHNORM:
        fprintf(out, "    %s_forward(pass, n, %s, %s, %s, %s, %s, %s, %s);\n", op->fn, in,
                tensor_ref(p, op->tensor[0], false), tensor_ref(p, op->tensor[1], false),
                tensor_ref(p, op->tensor[2], false), tensor_ref(p, op->tensor[3], false),
                buf_ref(p, op->aux), y);
        break;
    }
}

static void emit_backward_call(FILE *out, const Plan *p, const Op *op)
{
    char *in = buf_ref(p, op->in), *y = buf_ref(p, op->out), *dy = buf_ref(p, op->dout);
    char *dx = grad_ref(p, op->din);
    bool has_grads = op->tensor[0] >= 0 && (p->tensors[op->tensor[0]].trainable ||
                                            (op->tensor[1] >= 0 && p->tensors[op->tensor[1]].trainable));
    if (op->din == NO_BUF && !has_grads) {
        fprintf(out, "    (void)%s_backward;  /* %s: nothing to learn, nothing flows back */\n",
                op->fn, op->layer->name);
        return;
    }
    call_comment(out, op);
    switch (op->kind) {
    case OP_DENSE:
    case OP_CONV2D:
        fprintf(out, "    %s_backward(n, %s, %s, %s, %s, %s, %s);\n", op->fn, in,
                tensor_ref(p, op->tensor[0], false), dy, dx, tensor_ref(p, op->tensor[0], true),
                tensor_ref(p, op->tensor[1], true));
        break;
    case OP_MAXPOOL2D:
    case OP_AVGPOOL2D:
    case OP_GAP2D:
    case OP_ACT:
    case OP_SOFTMAX:
        fprintf(out, "    %s_backward(n, %s, %s, %s, %s);\n", op->fn, in, y, dy, dx);
        break;
    case OP_DROPOUT:
        fprintf(out, "    %s_backward(n, %s, %s, %s);\n", op->fn, buf_ref(p, op->aux), dy, dx);
        break;
    case OP_BATCHNORM:
        fprintf(out, "    %s_backward(n, %s, %s, %s, %s, %s, %s, %s);\n", op->fn, in,
                tensor_ref(p, op->tensor[0], false), buf_ref(p, op->aux), dy, dx,
                tensor_ref(p, op->tensor[0], true), tensor_ref(p, op->tensor[1], true));
        break;
    }
}

static char *forward_block(const Plan *p, bool inference)
{
    Block b;
    block_open(&b);
    for (int i = 0; i < p->n_ops; i++)
        emit_forward_call(b.f, p, &p->ops[i], inference);
    fprintf(b.f, "    return %s;\n", buf_ref(p, p->ops[p->n_ops - 1].out));
    return block_close(&b);
}

static char *backward_block(const Plan *p, const Model *m)
{
    Block b;
    block_open(&b);
    const Op *last = &p->ops[p->n_ops - 1];
    if (last->dout != NO_BUF)
        fprintf(b.f, "    memcpy(%s, dout, (size_t)n * %ld * sizeof *dout);\n",
                buf_ref(p, last->dout), shape_size(&m->layers[m->n_layers - 1].out));
    else
        fprintf(b.f, "    (void)dout, (void)work;\n");
    for (int i = p->n_ops - 1; i >= 0; i--)
        emit_backward_call(b.f, p, &p->ops[i]);
    return block_close(&b);
}

/* ---- tables ------------------------------------------------------------------------- */

static char *offsets_block(const Plan *p, bool tensors)
{
    Block b;
    block_open(&b);
    int n = tensors ? p->n_tensors : p->n_bufs;
    for (int i = 0; i < n; i++) {
        if (tensors) {
            const Tensor *t = &p->tensors[i];
            fprintf(b.f, "    %s_%s = %ld,\n", t->layer->name, strchr(t->name, '.') + 1,
                    t->offset);
        } else {
            fprintf(b.f, "    %s = %ld,\n", p->bufs[i].name, p->bufs[i].offset);
        }
    }
    return block_close(&b);
}

static const char *const init_names[] = {
    [NN_INIT_ZEROS] = "NN_INIT_ZEROS", [NN_INIT_ONES] = "NN_INIT_ONES",
    [NN_INIT_GLOROT_UNIFORM] = "NN_INIT_GLOROT_UNIFORM", [NN_INIT_VALUES] = "NN_INIT_VALUES",
};

static void float_array(FILE *out, const char *name, const float *v, long count)
{
    fprintf(out, "static const float %s[%ld] = {", name, count);
    char buf[48];
    for (long i = 0; i < count; i++) {
        float_text(buf, v[i]);
        fprintf(out, "%s%s,", i % 8 ? " " : "\n    ", buf);
    }
    fprintf(out, "\n};\n");
}

static char *tensors_block(const Plan *p, FILE *arrays)
{
    Block b;
    block_open(&b);
    for (int i = 0; i < p->n_tensors; i++) {
        const Tensor *t = &p->tensors[i];
        char *values = fmt("NULL");
        if (t->values) {
            values = fmt("%s_%s_values", t->layer->name, strchr(t->name, '.') + 1);
            float_array(arrays, values, t->values, t->size);
        }
        fprintf(b.f, "    {\"%s\", %d, {", t->name, t->rank);
        for (int d = 0; d < t->rank; d++)
            fprintf(b.f, "%s%ld", d ? ", " : "", t->shape[d]);
        fprintf(b.f, "}, %s_%s, %ld, %d, %s, %ld, %ld, %s},\n", t->layer->name,
                strchr(t->name, '.') + 1, t->size, t->trainable, init_names[t->init], t->fan_in,
                t->fan_out, values);
    }
    if (p->n_tensors == 0)
        fprintf(b.f, "    {0}");
    return block_close(&b);
}

static char *layers_block(const Model *m, const Plan *p)
{
    Block b;
    block_open(&b);
    for (int i = 0; i < m->n_layers; i++) {
        const Layer *l = &m->layers[i];
        int buf = p->layer_out[i];
        bool feature_map = l->out.rank == 3 &&
                           (l->kind == LAYER_CONV2D || l->kind == LAYER_MAXPOOL2D ||
                            l->kind == LAYER_AVGPOOL2D);
        fprintf(b.f, "    {\"%s\", \"%s\", %d, {%ld, %ld, %ld}, %ld, %ld, %s, %ld, %d, %d},\n",
                l->name, layer_type_names[l->kind], l->out.rank, l->out.dim[0], l->out.dim[1],
                l->out.dim[2], l->params, l->trainable_params,
                buf == NO_BUF ? "0" : p->bufs[buf].name, shape_size(&l->out), feature_map,
                l->where->line);
    }
    return block_close(&b);
}

/* ---- data, fit, predict ------------------------------------------------------------- */

/* Inline numbers: a list of samples, each a number or a nested list of `size`. */
static void flatten_numbers(const Node *n, float *out, long *pos, long max, const char *what)
{
    if (n->kind == NODE_SEQ) {
        for (int i = 0; i < n->n; i++)
            flatten_numbers(n->items[i], out, pos, max, what);
        return;
    }
    if (*pos >= max)
        error_at(n, "%s has more numbers than expected", what);
    out[(*pos)++] = (float)node_num(n, what);
}

static float *sample_list(const Node *list, long size, const char *what, int *count)
{
    if (list->kind != NODE_SEQ || list->n == 0)
        error_at(list, "%s must be a non-empty list of samples", what);
    float *v = keep(calloc((size_t)list->n * (size_t)size, sizeof *v));
    for (int i = 0; i < list->n; i++) {
        long pos = 0;
        flatten_numbers(list->items[i], v + (long)i * size, &pos, size, what);
        if (pos != size)
            error_at(list->items[i], "each sample of %s must have %ld number%s, this one has %ld",
                     what, size, size == 1 ? "" : "s", pos);
    }
    *count = list->n;
    return v;
}

static long label_size(const Model *m)
{
    long k = shape_size(&m->layers[m->n_layers - 1].out);
    return m->loss == NN_LOSS_SPARSE_CE ? 1 : k;
}

static const char *const format_enums[] = {
    [NN_DATA_NONE] = "NN_DATA_NONE", [NN_DATA_INLINE] = "NN_DATA_INLINE",
    [NN_DATA_IDX] = "NN_DATA_IDX", [NN_DATA_CSV] = "NN_DATA_CSV",
    [NN_DATA_IMAGE_DIR] = "NN_DATA_IMAGE_DIR",
};

static void emit_source(FILE *out, FILE *arrays, const Model *m, const SourceSpec *s,
                        const char *name)
{
    fprintf(out, "        .%s = {.format = %s", name, format_enums[s->format]);
    if (s->format == NN_DATA_NONE) {
        fprintf(out, "},\n");
        return;
    }
    if (s->format == NN_DATA_INLINE) {
        int nx, ny = 0;
        float *x = sample_list(s->x, shape_size(&m->input), "x", &nx);
        float_array(arrays, fmt("%s_x", name), x, nx * shape_size(&m->input));
        if (s->y) {
            float *y = sample_list(s->y, label_size(m), "y", &ny);
            if (ny != nx)
                error_at(s->y, "y has %d samples but x has %d", ny, nx);
            float_array(arrays, fmt("%s_y", name), y, ny * label_size(m));
        }
        fprintf(out, ", .x = %s_x, .y = %s, .count = %d", name,
                s->y ? fmt("%s_y", name) : "NULL", nx);
    }
    if (s->images)
        fprintf(out, ", .images = %s, .labels = %s", string_lit(s->images), string_lit(s->labels));
    if (s->path)
        fprintf(out, ", .path = %s", string_lit(s->path));
    if (s->format == NN_DATA_CSV)
        fprintf(out, ", .label_column = %ld, .header = %d", s->label_column, s->header);
    if (s->format == NN_DATA_IMAGE_DIR)
        fprintf(out, ", .target_h = %ld, .target_w = %ld, .channels = %ld, .skip_bad_files = %d",
                s->target_h, s->target_w, s->channels, s->skip_bad_files);
    fprintf(out, ", .line = %d},\n", s->where->line);
}

/* image_dir without target_size: the model's input size, as nothing else fits. */
static void default_target_size(const Model *m, SourceSpec *s)
{
    if (s->format != NN_DATA_IMAGE_DIR)
        return;
    if (m->input.rank != 3)
        error_at(s->where, "image_dir data needs a model whose input_shape is [height, width, "
                           "channels]");
    if (!s->target_h) {
        s->target_h = m->input.dim[0];
        s->target_w = m->input.dim[1];
    }
    if (s->target_h != m->input.dim[0] || s->target_w != m->input.dim[1] ||
        s->channels != m->input.dim[2])
        error_at(s->where, "the images are %ldx%ldx%ld (target_size, color_mode) but the model's "
                           "input_shape is (%ld, %ld, %ld)", s->target_h, s->target_w,
                 s->channels, m->input.dim[0], m->input.dim[1], m->input.dim[2]);
}

static char *data_block(const Model *m, FILE *arrays)
{
    Block b;
    block_open(&b);
    SourceSpec train = m->train, validation = m->validation, test = m->test;
    default_target_size(m, &train);
    default_target_size(m, &validation);
    default_target_size(m, &test);
    emit_source(b.f, arrays, m, &train, "train");
    emit_source(b.f, arrays, m, &validation, "validation");
    emit_source(b.f, arrays, m, &test, "test");
    fprintf(b.f, "        .dir = %s,\n", string_lit(m->data_dir));
    fprintf(b.f, "        .model_file = %s,\n", string_lit(m->file));
    fprintf(b.f, "        .rescale = %s,\n", float_lit(m->rescale));
    fprintf(b.f, "        .validation_split = %s,\n", float_lit(m->validation_split));
    if (m->class_names) {
        fprintf(arrays, "static const char *const class_names[%d] = {", m->class_names->n);
        for (int i = 0; i < m->class_names->n; i++)
            fprintf(arrays, "%s%s,", i % 4 ? " " : "\n    ", string_lit(m->class_names->items[i]->text));
        fprintf(arrays, "\n};\n");
        fprintf(b.f, "        .class_names = class_names, .n_class_names = %d,\n", m->class_names->n);
    }
    fprintf(b.f, "        .augment = {.horizontal_flip = %d, .vertical_flip = %d, .rotation_range = %s,\n"
                 "                    .width_shift_range = %s, .height_shift_range = %s,\n"
                 "                    .zoom_range = %s, .shear_range = %s},",
            m->horizontal_flip, m->vertical_flip, float_lit(m->rotation_range),
            float_lit(m->width_shift_range), float_lit(m->height_shift_range),
            float_lit(m->zoom_range), float_lit(m->shear_range));
    return block_close(&b);
}

static const char *const callback_enums[] = {
    [NN_CB_STOP_AT_THRESHOLD] = "NN_CB_STOP_AT_THRESHOLD",
    [NN_CB_EARLY_STOPPING] = "NN_CB_EARLY_STOPPING",
    [NN_CB_MODEL_CHECKPOINT] = "NN_CB_MODEL_CHECKPOINT", [NN_CB_CSV_LOGGER] = "NN_CB_CSV_LOGGER",
};

static char *fit_block(const Model *m)
{
    Block b;
    block_open(&b);
    fprintf(b.f, "        .epochs = %ld, .batch_size = %ld, .shuffle = %d, .seed = %lluULL,\n",
            m->epochs, m->batch_size, m->shuffle, m->seed);
    fprintf(b.f, "        .steps_per_epoch = %ld, .n_callbacks = %d,", m->steps_per_epoch,
            m->n_callbacks);
    if (m->n_callbacks == 0)
        return block_close(&b);
    fprintf(b.f, "\n        .callbacks = {");
    for (int i = 0; i < m->n_callbacks; i++) {
        const CallbackSpec *c = &m->callbacks[i];
        fprintf(b.f, "\n            {.kind = %s, .monitor = %s, .threshold = %s, .patience = %ld, "
                     ".min_delta = %s, .restore_best_weights = %d, .filepath = %s, "
                     ".save_best_only = %d},",
                callback_enums[c->kind], string_lit(c->monitor), float_lit(c->threshold),
                c->patience, float_lit(c->min_delta), c->restore_best_weights,
                string_lit(c->filepath), c->save_best_only);
    }
    fprintf(b.f, "},");
    return block_close(&b);
}

static const char *const optimizer_enums[] = {
    [NN_OPT_SGD] = "NN_OPT_SGD", [NN_OPT_ADAM] = "NN_OPT_ADAM", [NN_OPT_RMSPROP] = "NN_OPT_RMSPROP",
};
static const char *const loss_enums[] = {
    [NN_LOSS_MSE] = "NN_LOSS_MSE", [NN_LOSS_BINARY_CE] = "NN_LOSS_BINARY_CE",
    [NN_LOSS_SPARSE_CE] = "NN_LOSS_SPARSE_CE", [NN_LOSS_CATEGORICAL_CE] = "NN_LOSS_CATEGORICAL_CE",
};
static const char *const output_enums[] = {
    [NN_OUT_LINEAR] = "NN_OUT_LINEAR", [NN_OUT_SOFTMAX] = "NN_OUT_SOFTMAX",
    [NN_OUT_SIGMOID] = "NN_OUT_SIGMOID",
};

static char *optimizer_init(const OptimizerSpec *o)
{
    return fmt(".kind = %s, .learning_rate = %s, .momentum = %s, .beta_1 = %s, .beta_2 = %s, "
               ".epsilon = %s, .rho = %s, .nesterov = %d",
               optimizer_enums[o->kind], float_lit(o->learning_rate), float_lit(o->momentum),
               float_lit(o->beta_1), float_lit(o->beta_2), float_lit(o->epsilon),
               float_lit(o->rho), o->nesterov);
}

/* ---- the file --------------------------------------------------------------------------- */

static void model_holes(Holes *h, const Model *m, const Plan *p, FILE *arrays)
{
    h->n = 0;
    hole(h, "MODEL", fmt("%s", m->name));
    hole(h, "VERSION", fmt("%s", NNCC_VERSION));
    hole(h, "SOURCE", comment_text(m->file));
    hole(h, "SOURCE_STR", string_lit(m->file));
    hole(h, "TENSOR_OFFSETS", offsets_block(p, true));
    hole(h, "BUFFER_OFFSETS", offsets_block(p, false));
    hole_long(h, "N_PARAMS", p->n_params);
    hole_long(h, "WORK", p->work_floats);
    bool batch_statistics = false;
    for (int i = 0; i < p->n_ops; i++)
        batch_statistics |= p->ops[i].kind == OP_BATCHNORM;
    hole_long(h, "WHOLE_BATCHES", batch_statistics);
    static const char *const act_words[] = {"activation", "softmax", "sigmoid"};
    hole(h, "OUTPUT_ACT", fmt("%s", act_words[p->output_act]));
    hole(h, "FORWARD", forward_block(p, false));
    hole(h, "BACKWARD", backward_block(p, m));
    hole(h, "TENSORS", tensors_block(p, arrays));
    hole(h, "LAYERS", layers_block(m, p));
    hole_long(h, "INPUT_RANK", m->input.rank);
    hole(h, "INPUT_SHAPE", fmt("%ld, %ld, %ld", m->input.dim[0], m->input.dim[1], m->input.dim[2]));
    hole_long(h, "INPUT_SIZE", shape_size(&m->input));
    hole_long(h, "OUTPUT_SIZE", shape_size(&m->layers[m->n_layers - 1].out));
    hole(h, "OUTPUT_ACT_ENUM", fmt("%s", output_enums[p->output_act]));
    hole_long(h, "N_TENSORS", p->n_tensors);
    hole_long(h, "N_LAYERS", m->n_layers);
    hole(h, "OPTIMIZER", optimizer_init(&m->optimizer));
    hole(h, "LOSS", fmt("%s", m->loss < 0 ? "NN_LOSS_NONE" : loss_enums[m->loss]));
    hole_long(h, "ACCURACY", m->metric_accuracy);
    hole(h, "DATA", data_block(m, arrays));
    hole(h, "FIT", fit_block(m));
    int n_predict = 0;
    if (m->predict) {
        float *v = sample_list(m->predict, shape_size(&m->input), "predict", &n_predict);
        float_array(arrays, "predict_inputs", v, n_predict * shape_size(&m->input));
    }
    hole(h, "PREDICT_INPUTS", fmt("%s", n_predict ? "predict_inputs" : "NULL"));
    hole_long(h, "N_PREDICT", n_predict);
}

void emit_trainer(FILE *out, const Model *m, const Plan *p, bool with_main)
{
    claim_all(p);
    Holes h;
    /* Arrays (inline weights and data) are gathered while the tables are made. */
    Block arrays;
    block_open(&arrays);
    model_holes(&h, m, p, arrays.f);
    hole(&h, "DATA_ARRAYS", block_close(&arrays));

    expand(out, "preamble", &h);
    expand(out, "activations", &h);
    for (int i = 0; i < p->n_ops; i++) {
        Holes oh;
        op_holes(&oh, m, p, &p->ops[i], i);
        expand(out, op_templates[p->ops[i].kind], &oh);
        expand(out, fmt("%s_backward", op_templates[p->ops[i].kind]), &oh);
    }
    expand(out, "model", &h);
    if (with_main)
        expand(out, "main", &h);
}

void emit_header(FILE *out, const Model *m)
{
    Holes h = {0};
    hole(&h, "MODEL", fmt("%s", m->name));
    hole(&h, "SOURCE", comment_text(m->file));
    hole(&h, "VERSION", fmt("%s", NNCC_VERSION));
    expand(out, "header", &h);
}

/* ---- inference -------------------------------------------------------------------------- */

/* A template without its OpenMP pragmas: one sample needs no threads, and the
 * file must build without -fopenmp, where -Wall calls the pragma unknown. */
static void expand_serial(FILE *out, const char *name, const Holes *h)
{
    Block b;
    block_open(&b);
    expand(b.f, name, h);
    fclose(b.f);
    keep(b.text);
    for (const char *line = b.text; *line;) {
        size_t len = strcspn(line, "\n");
        len += line[len] == '\n';
        if (strncmp(line + strspn(line, " "), "#pragma omp", 11) != 0)
            fwrite(line, 1, len, out);
        line += len;
    }
}

/* Every tensor as a static const array, named as the trainer's offsets are. */
static char *weights_block(const Plan *p)
{
    Block b;
    block_open(&b);
    for (int i = 0; i < p->n_tensors; i++) {
        const Tensor *t = &p->tensors[i];
        fprintf(b.f, "%s/* %s, shape (", i ? "\n" : "", t->name);
        for (int d = 0; d < t->rank; d++)
            fprintf(b.f, "%s%ld", d ? ", " : "", t->shape[d]);
        fprintf(b.f, "%s) */\n", t->rank == 1 ? "," : "");
        float_array(b.f, fmt("%s_%s", t->layer->name, strchr(t->name, '.') + 1), t->values,
                    t->size);
    }
    return block_close(&b);
}

void emit_inference(FILE *out, const Model *m, const Plan *p, const char *weights)
{
    claim_all(p);
    static const char *const output_fns[] = {"linear", "softmax", "sigmoid"};
    Holes h = {0};
    hole(&h, "MODEL", fmt("%s", m->name));
    hole(&h, "VERSION", fmt("%s", NNCC_VERSION));
    hole(&h, "SOURCE", comment_text(m->file));
    hole(&h, "WEIGHTS", comment_text(weights));
    hole_long(&h, "INPUT_SIZE", shape_size(&m->input));
    hole_long(&h, "OUTPUT_SIZE", shape_size(&m->layers[m->n_layers - 1].out));
    hole(&h, "OUTPUT_FN", fmt("%s", output_fns[p->output_act]));
    hole(&h, "BUFFER_OFFSETS", offsets_block(p, false));
    hole_long(&h, "WORK", p->work_floats);
    hole(&h, "WEIGHT_ARRAYS", weights_block(p));
    hole(&h, "FORWARD", forward_block(p, true));

    expand(out, "inference", &h);
    expand(out, "activations", &h);
    for (int i = 0; i < p->n_ops; i++) {
        const Op *op = &p->ops[i];
        if (op->kind == OP_DROPOUT)
            continue;
        Holes oh;
        op_holes(&oh, m, p, op, i);
        expand_serial(out, op->kind == OP_BATCHNORM ? "batchnorm_inference" : op_templates[op->kind],
                      &oh);
    }
    expand(out, "inference_model", &h);
}
