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
void float_text(char buf[48], double v)
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

#define MAX_HOLES 64
struct Holes {
    int n;
    const char *name[MAX_HOLES];
    char *value[MAX_HOLES];
};

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

void hole_long(Holes *h, const char *name, long v)
{
    hole(h, name, fmt("%ld", v));
}

void hole_text(Holes *h, const char *name, const char *c)
{
    hole(h, name, fmt("%s", c));
}

void hole_float(Holes *h, const char *name, double v)
{
    hole(h, name, float_lit(v));
}

void hole_list(Holes *h, const char *name, const long *v, int n)
{
    Block b;
    block_open(&b);
    for (int i = 0; i < n; i++)
        fprintf(b.f, "%s%ld", i ? ", " : "", v[i]);
    hole(h, name, block_close(&b));
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

/* A layer made of another's steps (SeparableConv2D runs DepthwiseConv2D's)
 * includes their template as a hole, filled from the holes set so far. */
void hole_template(Holes *h, const char *name, const char *tmpl)
{
    Block b;
    block_open(&b);
    expand(b.f, tmpl, h);
    hole(h, name, block_close(&b));
}

void hole_part(Holes *h, const char *name, const char *tmpl, const char *part,
               const char *const *keys, const long *values,
               void (*holes)(Holes *, const Layer *), const Layer *l)
{
    Holes sub = *h;
    const char *fn = "";
    for (int i = 0; i < h->n; i++)
        if (strcmp(h->name[i], "FN") == 0)
            fn = h->value[i];
    hole(&sub, "FN", fmt("%s_%s", fn, part));
    hole(&sub, "LAYER", fmt("%s_%s", fn, part));   /* its headings name the part: lstm_x */
    for (int i = 0; keys && keys[i]; i++)
        hole_long(&sub, keys[i], values[i]);
    if (holes)
        holes(&sub, l);
    Block b;
    block_open(&b);
    expand(b.f, tmpl, &sub);
    hole(h, name, block_close(&b));
}

void hole_word(Holes *h, const char *name, const char *word)
{
    hole(h, name, fmt("%s", word));
}

/* ---- one op: its functions, and the calls that run them -------------------------- */

/* TensorFlow's same padding: the smaller half before, the extra row after. */
long pad_before(long in, long out, long k, long s)
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
    hole(h, "KIND", fmt("%s", op->ops ? op->ops->keras_name : activation_names[op->act]));
    hole(h, "WHERE", fmt("%s:%d", comment_text(m->file), l->where->line));
    hole(h, "ACT", fmt("%s", activation_names[op->act]));
    hole_long(h, "RELU", op->ops && op->act == ACT_RELU);   /* LF_OWN_RELU */
    hole_long(h, "SIZE", op->size);
    hole_long(h, "IN", shape_size(&l->in));
    hole_long(h, "OUT", shape_size(&l->out));
    hole_long(h, "INDEX", index);
    hole_long(h, "LAYERS", p->n_ops);
    hole(h, "RATE", float_lit(l->rate));
    hole(h, "MOMENTUM", float_lit(l->momentum));
    hole(h, "EPSILON", float_lit(l->epsilon));
    /* An image is H x W x C; a sequence [T, F] is an image 1 x T x F, so that the
     * 1-D layers run the 2-D templates (need_sequence in shape.c). */
    bool image = l->in.rank == 3, seq = l->in.rank == 2;
    bool out_image = l->out.rank == 3, out_seq = l->out.rank == 2;
    hole_long(h, "H", image ? l->in.dim[0] : 1);
    hole_long(h, "W", image ? l->in.dim[1] : seq ? l->in.dim[0] : 1);
    hole_long(h, "C", l->in.dim[l->in.rank - 1]);
    hole_long(h, "OH", out_image ? l->out.dim[0] : 1);
    hole_long(h, "OW", out_image ? l->out.dim[1] : out_seq ? l->out.dim[0] : 1);
    hole_long(h, "OC", l->out.dim[l->out.rank - 1]);
    hole_long(h, "KH", l->kh);
    hole_long(h, "KW", l->kw);
    hole_long(h, "SH", l->sh);
    hole_long(h, "SW", l->sw);
    hole_long(h, "DH", l->dh);
    hole_long(h, "DW", l->dw);
    /* A dilated window spans (k - 1) d + 1 cells; causal padding is all before. */
    long span_h = (l->kh - 1) * l->dh + 1, span_w = (l->kw - 1) * l->dw + 1;
    bool pad = l->same && (image || seq);
    hole_long(h, "PT", pad && image ? pad_before(l->in.dim[0], l->out.dim[0], span_h, l->sh) : 0);
    hole_long(h, "PL", l->causal ? span_w - 1
                       : pad ? pad_before(l->in.dim[image], l->out.dim[image], span_w, l->sw) : 0);
    /* positions per sample of each channel (the last axis): H*W, T, or 1 */
    hole_long(h, "SPATIAL", shape_size(&l->in) / l->in.dim[l->in.rank - 1]);
    hole_long(h, "RANK", l->in.rank);
    hole_long(h, "TRAINABLE", l->trainable);
    if (op->ops && op->ops->holes)
        op->ops->holes(h, l);
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
    return fmt("%s(%s)", grad ? "G" : "P", ts->ident);
}

/* A merge's inputs, or their gradients, as one array argument. */
static char *array_ref(const Plan *p, const Op *op, bool grads)
{
    Block b;
    block_open(&b);
    fprintf(b.f, grads ? "(float *const[]){" : "(const float *const[]){");
    for (int k = 0; k < op->n_in; k++)
        fprintf(b.f, "%s%s", k ? ", " : "",
                grads ? grad_ref(p, op->din[k]) : buf_ref(p, op->in[k]));
    fprintf(b.f, "}");
    return block_close(&b);
}

/* One word of a row's call arguments (LayerOps in nncc.h says which). */
static char *call_arg(const Plan *p, const Op *op, const char *word)
{
    if (strcmp(word, "n") == 0 || strcmp(word, "pass") == 0)
        return fmt("%s", word);
    if (strcmp(word, "scratch") == 0)   /* used for dx alone, and counted so (plan.c) */
        return fmt("%s", op->din[0] != NO_BUF || (op->ops->flags & LF_SCRATCH_ALWAYS)
                             ? "SCRATCH" : "NULL");
    if (strcmp(word, "x") == 0)
        return buf_ref(p, op->in[0]);
    if (strcmp(word, "dx") == 0)
        return grad_ref(p, op->din[0]);
    if (strcmp(word, "y") == 0)
        return buf_ref(p, op->out);
    if (strcmp(word, "dy") == 0)
        return buf_ref(p, op->dout);
    if (strcmp(word, "aux") == 0)
        return buf_ref(p, op->aux);
    if (strcmp(word, "xs") == 0 || strcmp(word, "dxs") == 0)
        return array_ref(p, op, word[0] == 'd');
    if ((word[0] == 'P' || word[0] == 'G') && word[1] >= '0' &&
        word[1] < '0' + MAX_LAYER_TENSORS && !word[2])
        return tensor_ref(p, op->tensor[word[1] - '0'], word[0] == 'G');
    error_at(NULL, "internal error: unknown call argument '%s' of %s", word, op->tmpl);
}

/* "    dense_forward(n, x, P(dense_kernel), P(dense_bias), W(dense_out));" */
static void emit_call(FILE *out, const Plan *p, const Op *op, const char *pass,
                      const char *args)
{
    fprintf(out, "    %s_%s(", op->fn, pass);
    for (const char *w = args; *w;) {
        size_t len = strcspn(w, " ");
        char word[8];
        snprintf(word, sizeof word, "%.*s", (int)len, w);
        fprintf(out, "%s%s", w == args ? "" : ", ", call_arg(p, op, word));
        w += len + strspn(w + len, " ");
    }
    fprintf(out, ");\n");
}

/* "dense_1: relu, line 7", above each call, to find the layer in the model file. */
static void call_comment(FILE *out, const Op *op)
{
    const char *what = op->ops ? op->ops->keras_name : activation_names[op->act];
    fprintf(out, "    /* %s: %s, line %d */\n", op->layer->name, what, op->layer->where->line);
}

/* An activation op's calls; a layer's are in its row. */
static const char act_forward_args[] = "n x y", act_backward_args[] = "n x y dy dx";

/* inference: a row may name other arguments, for its inference template, or
 * pass values through (Dropout). */
static void emit_forward_call(FILE *out, const Plan *p, const Op *op, bool inference)
{
    call_comment(out, op);
    const char *args = op->ops ? op->ops->forward_args : act_forward_args;
    if (inference && op->ops && (op->ops->flags & LF_INFERENCE_IDENTITY)) {
        fprintf(out, "    memcpy(%s, %s, %ld * sizeof(float));\n", buf_ref(p, op->out),
                buf_ref(p, op->in[0]), op->size);
        return;
    }
    if (inference && op->ops && op->ops->inference_args)
        args = op->ops->inference_args;
    emit_call(out, p, op, "forward", args);
}

static void emit_backward_call(FILE *out, const Plan *p, const Op *op)
{
    if (!op_has_backward(p, op)) {
        fprintf(out, "    (void)%s_backward;  /* %s: nothing to learn, nothing flows back */\n",
                op->fn, op->layer->name);
        return;
    }
    call_comment(out, op);
    emit_call(out, p, op, "backward", op->ops ? op->ops->backward_args : act_backward_args);
    for (int k = 0; k < op->n_in; k++) {
        if (op->add_to[k] == NO_BUF)
            continue;
        const Buffer *to = &p->bufs[op->add_to[k]];
        fprintf(out, "    /* %s is read by more layers: the sum of their gradients */\n"
                     "    for (size_t i = 0; i < (size_t)n * %ld; i++)\n"
                     "        W(%s)[i] += W(%s)[i];\n",
                to->name, to->size, to->name, p->bufs[op->din[k]].name);
    }
}

static char *forward_block(const Model *m, const Plan *p, bool inference)
{
    Block b;
    block_open(&b);
    for (int i = 0; i < p->n_ops; i++)
        emit_forward_call(b.f, p, &p->ops[i], inference);
    fprintf(b.f, "    return %s;\n", buf_ref(p, p->layer_out[m->output]));
    return block_close(&b);
}

/* Where the gradients that are final once op i's backward has run begin:
 * the end of the highest tensor of an op before it (those run later), or 0. */
static long grads_final_from(const Plan *p, int i)
{
    long from = 0;
    for (int j = 0; j < i; j++)
        for (int k = 0; k < MAX_LAYER_TENSORS && p->ops[j].tensor[k] >= 0; k++) {
            const Tensor *t = &p->tensors[p->ops[j].tensor[k]];
            from = t->offset + t->size > from ? t->offset + t->size : from;
        }
    return from;
}

/* GRADS_READY(tensor) after an op's backward when more gradients are final
 * than after the op before it: the runtime may start summing them. */
static void emit_grads_ready(FILE *out, const Plan *p, int i, long *ready)
{
    long from = grads_final_from(p, i);
    if (from >= *ready)
        return;
    *ready = from;
    for (int t = 0; t < p->n_tensors; t++)
        if (p->tensors[t].offset == from) {
            fprintf(out, "    GRADS_READY(%s);\n", p->tensors[t].ident);
            return;
        }
}

static char *backward_block(const Plan *p, const Model *m)
{
    Block b;
    block_open(&b);
    int dout = p->layer_dout[m->output];
    if (dout != NO_BUF)
        fprintf(b.f, "    memcpy(%s, dout, (size_t)n * %ld * sizeof *dout);\n",
                buf_ref(p, dout), shape_size(&m->layers[m->output].out));
    else
        fprintf(b.f, "    (void)dout, (void)work, (void)n;   /* nothing learns */\n");
    long ready = p->n_params;
    for (int i = p->n_ops - 1; i >= 0; i--) {
        emit_backward_call(b.f, p, &p->ops[i]);
        emit_grads_ready(b.f, p, i, &ready);
    }
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
            fprintf(b.f, "    %s = %ld,\n", t->ident, t->offset);
        } else {
            fprintf(b.f, "    %s = %ld,\n", p->bufs[i].name, p->bufs[i].offset);
        }
    }
    return block_close(&b);
}

static const char *const init_names[] = {
    [NN_INIT_ZEROS] = "NN_INIT_ZEROS", [NN_INIT_ONES] = "NN_INIT_ONES",
    [NN_INIT_GLOROT_UNIFORM] = "NN_INIT_GLOROT_UNIFORM", [NN_INIT_VALUES] = "NN_INIT_VALUES",
    [NN_INIT_ORTHOGONAL] = "NN_INIT_ORTHOGONAL", [NN_INIT_FORGET_BIAS] = "NN_INIT_FORGET_BIAS",
    [NN_INIT_UNIFORM] = "NN_INIT_UNIFORM", [NN_INIT_NORMAL] = "NN_INIT_NORMAL",
    [NN_INIT_TRUNCATED_NORMAL] = "NN_INIT_TRUNCATED_NORMAL", [NN_INIT_CONSTANT] = "NN_INIT_CONSTANT",
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

/* {a, b, seeded, seed} and {l1, l2}; all zero for Keras's defaults, as most are. */
static char *init_args_text(const Tensor *t)
{
    if (t->init_a == 0 && t->init_b == 0 && !t->init_seeded)
        return fmt("{0, 0, 0, 0}");
    char a[48], b[48];
    float_text(a, t->init_a);
    float_text(b, t->init_b);
    return fmt("{%s, %s, %d, %lluu}", a, b, t->init_seeded, t->init_seed);
}

static char *regularizer_text(const Tensor *t)
{
    if (t->l1 == 0 && t->l2 == 0)
        return fmt("{0, 0}");
    char l1[48], l2[48];
    float_text(l1, t->l1);
    float_text(l2, t->l2);
    return fmt("{%s, %s}", l1, l2);
}

static char *tensors_block(const Plan *p, FILE *arrays)
{
    Block b;
    block_open(&b);
    for (int i = 0; i < p->n_tensors; i++) {
        const Tensor *t = &p->tensors[i];
        char *values = fmt("NULL");
        if (t->values) {
            values = fmt("%s_values", t->ident);
            float_array(arrays, values, t->values, t->size);
        }
        fprintf(b.f, "    {\"%s\", %d, {", t->name, t->rank);
        for (int d = 0; d < t->rank; d++)
            fprintf(b.f, "%s%ld", d ? ", " : "", t->shape[d]);
        fprintf(b.f, "}, %s, %ld, %d, %s, %ld, %ld, %s, ", t->ident, t->size, t->trainable,
                init_names[t->init], t->fan_in, t->fan_out, values);
        fprintf(b.f, "%s, %s},\n", init_args_text(t), regularizer_text(t));
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
        bool feature_map = l->out.rank == 3 && (l->ops->flags & LF_FEATURE_MAP);
        fprintf(b.f, "    {\"%s\", \"%s\", %d, {%ld, %ld, %ld}, %ld, %ld, %s, %ld, %d, %d",
                l->name, l->ops->keras_name, l->out.rank, l->out.dim[0], l->out.dim[1],
                l->out.dim[2], l->params, l->trainable_params,
                buf == NO_BUF ? "0" : p->bufs[buf].name, shape_size(&l->out), feature_map,
                l->where->line);
        if (model_is_graph(m))   /* names: C identifiers, or "input" */
            fprintf(b.f, ", \"%s\"},\n", layer_input_names(m, l));
        else
            fprintf(b.f, ", NULL},\n");
    }
    return block_close(&b);
}

/* ---- data, fit, predict ------------------------------------------------------------- */

static const char *const format_enums[] = {
    [NN_DATA_NONE] = "NN_DATA_NONE", [NN_DATA_INLINE] = "NN_DATA_INLINE",
    [NN_DATA_IDX] = "NN_DATA_IDX", [NN_DATA_CSV] = "NN_DATA_CSV",
    [NN_DATA_IMAGE_DIR] = "NN_DATA_IMAGE_DIR", [NN_DATA_SERIES] = "NN_DATA_SERIES",
    [NN_DATA_TEXT] = "NN_DATA_TEXT",
};

static void emit_source(FILE *out, FILE *arrays, const SourceSpec *s, const char *name)
{
    fprintf(out, "        .%s = {.format = %s", name, format_enums[s->format]);
    if (s->format == NN_DATA_NONE) {
        fprintf(out, "},\n");
        return;
    }
    if (s->format == NN_DATA_INLINE) {   /* check.c checked the sizes */
        float_array(arrays, fmt("%s_x", name), s->x.values, s->x.count);
        if (s->y.where)
            float_array(arrays, fmt("%s_y", name), s->y.values, s->y.count);
        fprintf(out, ", .x = %s_x, .y = %s, .count = %ld", name,
                s->y.where ? fmt("%s_y", name) : "NULL", s->x.dim[0]);
    }
    if (s->images)
        fprintf(out, ", .images = %s, .labels = %s", string_lit(s->images), string_lit(s->labels));
    if (s->path)
        fprintf(out, ", .path = %s", string_lit(s->path));
    if (s->format == NN_DATA_CSV)
        fprintf(out, ", .label_column = %ld, .label_name = %s, .header = %d", s->label_column,
                string_lit(s->label_name), s->header);
    if (s->format == NN_DATA_IMAGE_DIR)
        fprintf(out, ", .target_h = %ld, .target_w = %ld, .channels = %ld, .skip_bad_files = %d",
                s->target_h, s->target_w, s->channels, s->skip_bad_files);
    if (s->format == NN_DATA_SERIES)
        fprintf(out, ",\n                  .column = %s, .column_index = %ld, .window_size = %ld, "
                     ".shift = %ld, .horizon = %ld, .split_time = %ld",
                string_lit(s->column), s->column_index, s->window_size, s->shift, s->horizon,
                s->split_time);
    if (s->format == NN_DATA_TEXT)
        fprintf(out, ", .text_field = %s, .label_field = %s", string_lit(s->text_field),
                string_lit(s->label_field));
    fprintf(out, ", .line = %d},\n", s->where->line);
}

static char *data_block(const Model *m, FILE *arrays)
{
    Block b;
    block_open(&b);
    emit_source(b.f, arrays, &m->train, "train");
    emit_source(b.f, arrays, &m->validation, "validation");
    emit_source(b.f, arrays, &m->test, "test");
    fprintf(b.f, "        .dir = %s,\n", string_lit(m->data_dir));
    fprintf(b.f, "        .model_file = %s,\n", string_lit(m->file));
    fprintf(b.f, "        .rescale = %s,\n", float_lit(m->rescale));
    fprintf(b.f, "        .validation_split = %s,\n", float_lit(m->validation_split));
    if (m->n_class_names) {
        fprintf(arrays, "static const char *const class_names[%d] = {", m->n_class_names);
        for (int i = 0; i < m->n_class_names; i++)
            fprintf(arrays, "%s%s,", i % 4 ? " " : "\n    ", string_lit(m->class_names[i]));
        fprintf(arrays, "\n};\n");
        fprintf(b.f, "        .class_names = class_names, .n_class_names = %d,\n", m->n_class_names);
    }
    if (m->text.where)
        fprintf(b.f, "        .text = {.num_words = %ld, .oov_token = %s, .max_length = %ld, "
                     ".pad_post = %d, .truncate_post = %d},\n", m->text.num_words,
                string_lit(m->text.oov_token), m->text.max_length, m->text.pad_post,
                m->text.truncate_post);
    fprintf(b.f, "        .augment = {.horizontal_flip = %d, .vertical_flip = %d, .rotation_range = %s,\n"
                 "                    .width_shift_range = %s, .height_shift_range = %s,\n"
                 "                    .zoom_range = %s, .shear_range = %s},",
            m->horizontal_flip, m->vertical_flip, float_lit(m->rotation_range),
            float_lit(m->width_shift_range), float_lit(m->height_shift_range),
            float_lit(m->zoom_range), float_lit(m->shear_range));
    if (m->target_input)
        fprintf(b.f, "\n        .target_input = 1,");
    if (m->noise_stddev > 0)
        fprintf(b.f, "\n        .noise = {.stddev = %s, .clip = %d, .min = %s, .max = %s},",
                float_lit(m->noise_stddev), m->noise_clip, float_lit(m->noise_min),
                float_lit(m->noise_max));
    return block_close(&b);
}

static const char *const callback_enums[] = {
    [NN_CB_STOP_AT_THRESHOLD] = "NN_CB_STOP_AT_THRESHOLD",
    [NN_CB_EARLY_STOPPING] = "NN_CB_EARLY_STOPPING",
    [NN_CB_MODEL_CHECKPOINT] = "NN_CB_MODEL_CHECKPOINT", [NN_CB_CSV_LOGGER] = "NN_CB_CSV_LOGGER",
    [NN_CB_LEARNING_RATE_SCHEDULER] = "NN_CB_LEARNING_RATE_SCHEDULER",
    [NN_CB_REDUCE_LR_ON_PLATEAU] = "NN_CB_REDUCE_LR_ON_PLATEAU",
};

/* LearningRateScheduler's expression as a function, into the arrays' block
 * (it must come before the descriptor that points at it). */
static void emit_lr_function(FILE *arrays, const Expr *schedule)
{
    static const char *const c_vars[] = {"(float)epoch", "lr", NULL};
    fprintf(arrays, "/* LearningRateScheduler: the rate of each epoch (from 0), given the rate "
                    "before it. */\nstatic float lr_schedule(int epoch, float lr)\n{\n"
                    "    (void)epoch, (void)lr;\n    return ");
    expr_emit(arrays, schedule, c_vars);
    fprintf(arrays, ";\n}\n\n");
}

/* The fields only the learning-rate callbacks have, after the common ones. */
static void lr_callback_fields(FILE *out, FILE *arrays, const CallbackSpec *c)
{
    if (c->kind == NN_CB_LEARNING_RATE_SCHEDULER) {
        emit_lr_function(arrays, c->schedule);
        fprintf(out, "\n             .schedule = lr_schedule, .verbose = %ld},", c->verbose);
    } else {
        fprintf(out, "\n             .factor = %.17g, .min_lr = %.17g, .cooldown = %ld, "
                     ".verbose = %ld},", c->factor, c->min_lr, c->cooldown, c->verbose);
    }
}

static char *fit_block(const Model *m, FILE *arrays)
{
    Block b;
    block_open(&b);
    fprintf(b.f, "        .epochs = %ld, .batch_size = %ld, .shuffle = %d, .seed = %lluULL,\n",
            m->epochs, m->batch_size, m->shuffle, m->seed);
    fprintf(b.f, "        .steps_per_epoch = %ld, .n_callbacks = %d,", m->steps_per_epoch,
            m->n_callbacks);
    if (m->n_class_weights) {
        float *weights = calloc((size_t)m->n_class_weights, sizeof *weights);
        if (!weights)
            error_file(m->file, "out of memory");
        for (int i = 0; i < m->n_class_weights; i++)
            weights[i] = (float)m->class_weight[i];
        float_array(arrays, "class_weight", weights, m->n_class_weights);
        free(weights);
        fprintf(b.f, "\n        .class_weight = class_weight, .n_class_weights = %d,",
                m->n_class_weights);
    }
    if (m->n_callbacks == 0)
        return block_close(&b);
    fprintf(b.f, "\n        .callbacks = {");
    for (int i = 0; i < m->n_callbacks; i++) {
        const CallbackSpec *c = &m->callbacks[i];
        bool lr = c->kind == NN_CB_LEARNING_RATE_SCHEDULER || c->kind == NN_CB_REDUCE_LR_ON_PLATEAU;
        fprintf(b.f, "\n            {.kind = %s, .monitor = %s, .threshold = %s, .patience = %ld, "
                     ".min_delta = %s, .restore_best_weights = %d, .filepath = %s, "
                     ".save_best_only = %d, .maximize = %d%s",
                callback_enums[c->kind], string_lit(c->monitor), float_lit(c->threshold),
                c->patience, float_lit(c->min_delta), c->restore_best_weights,
                string_lit(c->filepath), c->save_best_only, c->maximize, lr ? "," : "},");
        if (lr)
            lr_callback_fields(b.f, arrays, c);
    }
    fprintf(b.f, "},");
    return block_close(&b);
}

static const char *const optimizer_enums[NN_OPT_COUNT] = {
    [NN_OPT_SGD] = "NN_OPT_SGD", [NN_OPT_ADAM] = "NN_OPT_ADAM", [NN_OPT_RMSPROP] = "NN_OPT_RMSPROP",
    [NN_OPT_NADAM] = "NN_OPT_NADAM", [NN_OPT_ADAMAX] = "NN_OPT_ADAMAX",
    [NN_OPT_ADAGRAD] = "NN_OPT_ADAGRAD", [NN_OPT_ADAMW] = "NN_OPT_ADAMW",
};
static const char *const loss_enums[] = {
    [NN_LOSS_MSE] = "NN_LOSS_MSE", [NN_LOSS_BINARY_CE] = "NN_LOSS_BINARY_CE",
    [NN_LOSS_SPARSE_CE] = "NN_LOSS_SPARSE_CE", [NN_LOSS_CATEGORICAL_CE] = "NN_LOSS_CATEGORICAL_CE",
    [NN_LOSS_MAE] = "NN_LOSS_MAE", [NN_LOSS_HUBER] = "NN_LOSS_HUBER",
    [NN_LOSS_LOG_COSH] = "NN_LOSS_LOG_COSH", [NN_LOSS_KL_DIVERGENCE] = "NN_LOSS_KL_DIVERGENCE",
};
static const char *const metric_enums[] = {
    [NN_METRIC_ACCURACY] = "NN_METRIC_ACCURACY",
    [NN_METRIC_BINARY_ACCURACY] = "NN_METRIC_BINARY_ACCURACY",
    [NN_METRIC_CATEGORICAL_ACCURACY] = "NN_METRIC_CATEGORICAL_ACCURACY",
    [NN_METRIC_SPARSE_CATEGORICAL_ACCURACY] = "NN_METRIC_SPARSE_CATEGORICAL_ACCURACY",
    [NN_METRIC_TOP_K_CATEGORICAL_ACCURACY] = "NN_METRIC_TOP_K_CATEGORICAL_ACCURACY",
    [NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY] = "NN_METRIC_SPARSE_TOP_K_CATEGORICAL_ACCURACY",
    [NN_METRIC_MAE] = "NN_METRIC_MAE", [NN_METRIC_MSE] = "NN_METRIC_MSE",
    [NN_METRIC_RMSE] = "NN_METRIC_RMSE", [NN_METRIC_PRECISION] = "NN_METRIC_PRECISION",
    [NN_METRIC_RECALL] = "NN_METRIC_RECALL", [NN_METRIC_AUC] = "NN_METRIC_AUC",
};

static char *loss_args_init(const Model *m)
{
    return fmt(".delta = %s, .label_smoothing = %s, .from_logits = %d",
               float_lit(m->huber_delta), float_lit(m->label_smoothing), m->from_logits);
}

/* The metrics' table, into arrays; its name, or NULL without metrics. */
static char *metrics_table(const Model *m, FILE *arrays)
{
    if (!m->n_metrics)
        return fmt("NULL");
    fprintf(arrays, "static const nn_metric metrics[%d] = {\n", m->n_metrics);
    for (int i = 0; i < m->n_metrics; i++) {
        const MetricSpec *s = &m->metrics[i];
        fprintf(arrays, "    {.kind = %s, .name = %s, .val_name = %s, .k = %ld, .threshold = %s, "
                        ".num_thresholds = %ld},\n", metric_enums[s->kind], string_lit(s->name),
                string_lit(s->val_name), s->k, float_lit(s->threshold), s->num_thresholds);
    }
    fprintf(arrays, "};\n");
    return fmt("metrics");
}
static const char *const output_enums[] = {
    [NN_OUT_LINEAR] = "NN_OUT_LINEAR", [NN_OUT_SOFTMAX] = "NN_OUT_SOFTMAX",
    [NN_OUT_SIGMOID] = "NN_OUT_SIGMOID",
};

static const char *const schedule_enums[] = {
    [NN_LR_EXPONENTIAL_DECAY] = "NN_LR_EXPONENTIAL_DECAY",
    [NN_LR_PIECEWISE_CONSTANT_DECAY] = "NN_LR_PIECEWISE_CONSTANT_DECAY",
    [NN_LR_INVERSE_TIME_DECAY] = "NN_LR_INVERSE_TIME_DECAY",
    [NN_LR_COSINE_DECAY] = "NN_LR_COSINE_DECAY",
};

/* After .optimizer on its line: nothing for a constant rate. */
static char *schedule_init(const ScheduleSpec *s)
{
    if (s->kind == NN_LR_CONSTANT)
        return fmt("%s", "");
    Block b;
    block_open(&b);
    fprintf(b.f, "\n    .lr_schedule = {.kind = %s, .initial_learning_rate = %s, "
                 ".decay_steps = %s,\n                    .decay_rate = %s, .alpha = %s, "
                 ".staircase = %d, .n_boundaries = %d",
            schedule_enums[s->kind], float_lit(s->initial_learning_rate),
            float_lit(s->decay_steps), float_lit(s->decay_rate), float_lit(s->alpha),
            s->staircase, s->n_boundaries);
    if (s->n_boundaries) {
        fprintf(b.f, ",\n                    .boundaries = {");
        for (int i = 0; i < s->n_boundaries; i++)
            fprintf(b.f, "%s%lld", i ? ", " : "", s->boundaries[i]);
        fprintf(b.f, "},\n                    .values = {");
        for (int i = 0; i <= s->n_boundaries; i++)
            fprintf(b.f, "%s%s", i ? ", " : "", float_lit(s->values[i]));
        fprintf(b.f, "}");
    }
    fprintf(b.f, "},");
    return block_close(&b);
}

/* The fields that only some optimizers use are written where they are not 0. */
static char *optimizer_init(const OptimizerSpec *o)
{
    const struct { const char *field; double value; } extra[] = {
        {"initial_accumulator_value", o->kind == NN_OPT_ADAGRAD ? o->initial_accumulator_value : 0},
        {"weight_decay", o->weight_decay}, {"clipnorm", o->clipnorm},
        {"clipvalue", o->clipvalue}, {"global_clipnorm", o->global_clipnorm},
    };
    char *s = fmt(".kind = %s, .learning_rate = %s, .momentum = %s, .beta_1 = %s, .beta_2 = %s, "
                  ".epsilon = %s, .rho = %s, .nesterov = %d",
                  optimizer_enums[o->kind], float_lit(o->learning_rate), float_lit(o->momentum),
                  float_lit(o->beta_1), float_lit(o->beta_2), float_lit(o->epsilon),
                  float_lit(o->rho), o->nesterov);
    for (size_t i = 0; i < sizeof extra / sizeof extra[0]; i++)
        if (extra[i].value != 0)
            s = fmt("%s, .%s = %s", s, extra[i].field, float_lit(extra[i].value));
    return s;
}

/* Whether backward can take the optimizer's step itself (nn_model.fused_update):
 * every trainable tensor belongs to an op that does it (LF_OWN_UPDATE), and
 * nothing needs the whole gradient first: no clipping (the norms), no weight
 * decay and no regulariser (the runtime's passes before the update). */
static bool fused_update(const Model *m, const Plan *p)
{
    const OptimizerSpec *o = &m->optimizer;
    if (o->clipnorm != 0 || o->clipvalue != 0 || o->global_clipnorm != 0 || o->weight_decay != 0)
        return false;
    for (int i = 0; i < p->n_ops; i++)
        for (int k = 0; k < MAX_LAYER_TENSORS; k++) {
            int t = p->ops[i].tensor[k];
            if (t < 0 || !p->tensors[t].trainable)
                continue;
            if (!(p->ops[i].ops->flags & LF_OWN_UPDATE) || p->tensors[t].l1 != 0 ||
                p->tensors[t].l2 != 0)
                return false;
        }
    return true;
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
    hole_long(h, "SCRATCH", p->scratch_floats);
    bool batch_statistics = false;
    for (int i = 0; i < p->n_ops; i++)
        batch_statistics |= p->ops[i].ops && (p->ops[i].ops->flags & LF_WHOLE_BATCH);
    hole_long(h, "WHOLE_BATCHES", batch_statistics);
    hole_long(h, "FUSED_UPDATE", fused_update(m, p));
    static const char *const act_words[] = {"activation", "softmax", "sigmoid"};
    hole(h, "OUTPUT_ACT", fmt("%s", act_words[p->output_act]));
    hole(h, "FORWARD", forward_block(m, p, false));
    hole(h, "BACKWARD", backward_block(p, m));
    hole(h, "TENSORS", tensors_block(p, arrays));
    hole(h, "LAYERS", layers_block(m, p));
    hole_long(h, "INPUT_RANK", m->input.rank);
    hole(h, "INPUT_SHAPE", fmt("%ld, %ld, %ld", m->input.dim[0], m->input.dim[1], m->input.dim[2]));
    hole_long(h, "INPUT_SIZE", shape_size(&m->input));
    hole_long(h, "INPUT_IDS", model_input_ids(m));
    hole_long(h, "OUTPUT_SIZE", shape_size(&m->layers[m->output].out));
    const Shape *out = &m->layers[m->output].out;
    hole_long(h, "OUTPUT_RANK", out->rank);
    hole_list(h, "OUTPUT_SHAPE", out->dim, 3);
    hole(h, "OUTPUT_ACT_ENUM", fmt("%s", output_enums[p->output_act]));
    hole_long(h, "N_TENSORS", p->n_tensors);
    hole_long(h, "N_LAYERS", m->n_layers);
    hole(h, "OPTIMIZER", optimizer_init(&m->optimizer));
    hole(h, "LR_SCHEDULE", schedule_init(&m->optimizer.schedule));
    hole(h, "LOSS", fmt("%s", m->loss < 0 ? "NN_LOSS_NONE" : loss_enums[m->loss]));
    hole(h, "LOSS_ARGS", loss_args_init(m));
    hole(h, "METRICS", metrics_table(m, arrays));
    hole_long(h, "N_METRICS", m->n_metrics);
    hole_long(h, "OUTPUT_UNITS", m->layers[m->output].out.dim[m->layers[m->output].out.rank - 1]);
    hole(h, "DATA", data_block(m, arrays));
    hole(h, "FIT", fit_block(m, arrays));
    long n_predict = m->predict.where ? m->predict.dim[0] : 0;
    if (n_predict)
        float_array(arrays, "predict_inputs", m->predict.values, m->predict.count);
    hole(h, "PREDICT_INPUTS", fmt("%s", n_predict ? "predict_inputs" : "NULL"));
    hole_long(h, "N_PREDICT", n_predict);
}

void emit_trainer(FILE *out, const Model *m, const Plan *p, bool with_main)
{
    Holes h;
    /* Arrays (inline weights and data) are gathered while the tables are made. */
    Block arrays;
    block_open(&arrays);
    model_holes(&h, m, p, arrays.f);
    hole(&h, "DATA_ARRAYS", block_close(&arrays));

    expand(out, "preamble", &h);
    expand(out, "vectors", &h);
    expand(out, "activations", &h);
    for (int i = 0; i < p->n_ops; i++) {
        Holes oh;
        op_holes(&oh, m, p, &p->ops[i], i);
        expand(out, p->ops[i].tmpl, &oh);
        expand(out, fmt("%s_backward", p->ops[i].tmpl), &oh);
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
        float_array(b.f, t->ident, t->values, t->size);
    }
    return block_close(&b);
}

void emit_inference(FILE *out, const Model *m, const Plan *p, const char *weights)
{
    static const char *const output_fns[] = {"linear", "softmax", "sigmoid"};
    Holes h = {0};
    hole(&h, "MODEL", fmt("%s", m->name));
    hole(&h, "VERSION", fmt("%s", NNCC_VERSION));
    hole(&h, "SOURCE", comment_text(m->file));
    hole(&h, "WEIGHTS", comment_text(weights));
    hole_long(&h, "INPUT_SIZE", shape_size(&m->input));
    hole_long(&h, "OUTPUT_SIZE", shape_size(&m->layers[m->output].out));
    hole(&h, "OUTPUT_FN", fmt("%s", output_fns[p->output_act]));
    hole(&h, "BUFFER_OFFSETS", offsets_block(p, false));
    hole_long(&h, "WORK", p->work_floats);
    hole(&h, "WEIGHT_ARRAYS", weights_block(p));
    hole(&h, "FORWARD", forward_block(m, p, true));

    expand(out, "inference", &h);
    expand(out, "vectors", &h);
    expand(out, "activations", &h);
    for (int i = 0; i < p->n_ops; i++) {
        const Op *op = &p->ops[i];
        if (op->ops && (op->ops->flags & LF_INFERENCE_IDENTITY))
            continue;
        Holes oh;
        op_holes(&oh, m, p, op, i);
        expand_serial(out, op->ops && op->ops->inference_tmpl ? op->ops->inference_tmpl : op->tmpl,
                      &oh);
    }
    expand(out, "inference_model", &h);
}
