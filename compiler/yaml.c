/* yaml.c - reads a model file into a tree of Nodes, each remembering where it
 * was written, so that every later stage can point at the exact place of a
 * problem.
 *
 * libyaml's event parser does the YAML (and so JSON) syntax; this file builds
 * the tree from its events and refuses what a model file never needs but a
 * hostile one could use to hurt us: alias bombs (a few lines that expand to
 * billions of nodes), deep nesting, huge files and lines, several documents,
 * non-scalar or repeated keys.
 *
 * Aliases (`*id001`) point at the anchored node itself: the tree is a DAG that
 * shares nodes, which the readers never notice because they never modify it.
 * An anchor is known only once its node is complete, so an alias cannot refer
 * to one of its own ancestors and the graph has no cycles.
 *
 * All memory lives in one arena that is never freed (nncc exits right after
 * compiling); the arena's head is a global, so the leak checker sees it as
 * reachable, even when error_at() exits in the middle of a load.
 *
 * A Keras HDF5 file (model.save('m.h5')) is read the same way: its
 * model_config attribute is JSON, and so YAML; places in it are given as
 * m.h5[model_config]:LINE:COLUMN.
 */
#include "nncc.h"
#include "h5.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_FILE_BYTES (64L << 20)
#define MAX_LINE_BYTES (16L << 20) /* a Keras model_config is one line of JSON: room for it */
#define MAX_DEPTH 64
#define MAX_EXPANDED 1000000   /* nodes, counting each alias as what it points at */

/* ---- arena ------------------------------------------------------------------------ */

typedef struct Block Block;
struct Block {
    Block *next;
    size_t used, size;
    _Alignas(max_align_t) unsigned char data[];
};

static Block *arena;

static void *arena_alloc(size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (!arena || arena->size - arena->used < size) {
        size_t want = size > (1 << 20) ? size : (1 << 20);
        Block *b = malloc(sizeof(Block) + want);
        if (!b)
            error_at(NULL, "out of memory reading the model file");
        b->next = arena;
        b->used = 0;
        b->size = want;
        arena = b;
    }
    void *p = arena->data + arena->used;
    arena->used += size;
    memset(p, 0, size);
    return p;
}

static char *arena_strndup(const char *s, size_t len)
{
    char *p = arena_alloc(len + 1);
    memcpy(p, s, len);
    return p;
}

/* ---- the loader's state ----------------------------------------------------------------- */

typedef struct {
    const char *name;
    Node *node;
    size_t size;       /* expanded size of node */
    int next;          /* the previous anchor in the same hash bucket, or -1 */
} Anchor;

#define ANCHOR_BUCKETS (1 << 16)

/* One load at a time; kept global (not on the stack) for the same reason as the
 * arena: an error exits with the parser still holding memory. */
static struct {
    const char *file;
    char *text;                 /* the file's bytes (malloc'd, freed after parsing) */
    size_t text_len;
    yaml_parser_t parser;
    yaml_event_t event;
    bool have_event;
    Anchor *anchors;
    int n_anchors, cap_anchors;
    int *bucket;                /* hash of an anchor's name -> its latest Anchor */
} L;

/* error_at() wants a node; the mark of an event that made no node gets a stand-in. */
static Node mark_node(yaml_mark_t mark)
{
    return (Node){ .line = (int)mark.line + 1, .col = (int)mark.column + 1, .file = L.file };
}

/* libyaml's reader errors (bad UTF-8, control characters) carry a byte offset
 * instead of a mark: count the lines ourselves. */
static yaml_mark_t mark_of_offset(size_t offset)
{
    yaml_mark_t m = {0};
    for (size_t i = 0; i < offset && i < L.text_len; i++) {
        if (L.text[i] == '\n') {
            m.line++;
            m.column = 0;
        } else {
            m.column++;
        }
    }
    return m;
}

static void next_event(void)
{
    if (L.have_event)
        yaml_event_delete(&L.event);
    L.have_event = false;
    if (!yaml_parser_parse(&L.parser, &L.event)) {
        yaml_parser_t *p = &L.parser;
        Node where = mark_node(p->error == YAML_READER_ERROR ? mark_of_offset(p->problem_offset)
                                                             : p->problem_mark);
        error_at(&where, "%s", p->problem ? p->problem : "cannot parse the file");
    }
    L.have_event = true;
}

/* ---- anchors ------------------------------------------------------------------------------ */

static unsigned hash_name(const char *s)
{
    unsigned h = 2166136261u;                  /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % ANCHOR_BUCKETS;
}

static char *copy_anchor_name(const yaml_char_t *name)
{
    return name ? arena_strndup((const char *)name, strlen((const char *)name)) : NULL;
}

/* name: an arena copy, or NULL for a node without an anchor. */
static void anchor_add(const char *name, Node *node, size_t size)
{
    if (!name)
        return;
    if (!L.bucket) {
        L.bucket = arena_alloc(sizeof(int) * ANCHOR_BUCKETS);
        for (int i = 0; i < ANCHOR_BUCKETS; i++)
            L.bucket[i] = -1;
    }
    if (L.n_anchors == L.cap_anchors) {
        int cap = L.cap_anchors ? 2 * L.cap_anchors : 16;
        Anchor *a = arena_alloc(sizeof(Anchor) * (size_t)cap);
        if (L.n_anchors)
            memcpy(a, L.anchors, sizeof(Anchor) * (size_t)L.n_anchors);
        L.anchors = a;
        L.cap_anchors = cap;
    }
    unsigned h = hash_name(name);
    L.anchors[L.n_anchors] = (Anchor){ name, node, size, L.bucket[h] };
    L.bucket[h] = L.n_anchors++;
}

/* YAML lets a later anchor reuse a name; an alias means the latest one, which
 * is the first in its bucket's chain. */
static const Anchor *anchor_find(const char *name)
{
    if (!L.bucket)
        return NULL;
    for (int i = L.bucket[hash_name(name)]; i >= 0; i = L.anchors[i].next)
        if (strcmp(L.anchors[i].name, name) == 0)
            return &L.anchors[i];
    return NULL;
}

/* ---- building nodes ------------------------------------------------------------------------- */

static Node *new_node(NodeKind kind, yaml_mark_t mark, const yaml_char_t *tag)
{
    Node *n = arena_alloc(sizeof(Node));
    n->kind = kind;
    n->line = (int)mark.line + 1;
    n->col = (int)mark.column + 1;
    n->file = L.file;
    if (tag) {
        /* libyaml hands back the resolved tag; show it as it was written. */
        const char *t = (const char *)tag, *prefix = "tag:yaml.org,2002:";
        size_t plen = strlen(prefix);
        if (strncmp(t, prefix, plen) == 0) {
            char *s = arena_alloc(strlen(t) - plen + 3);
            strcpy(s, "!!");
            strcpy(s + 2, t + plen);
            n->tag = s;
        } else {
            n->tag = arena_strndup(t, strlen(t));
        }
    }
    return n;
}

static Node *scalar_node(void)
{
    yaml_event_t *e = &L.event;
    Node *n = new_node(NODE_SCALAR, e->start_mark, e->data.scalar.tag);
    const char *value = (const char *)e->data.scalar.value;
    size_t len = e->data.scalar.length;
    if (memchr(value, '\0', len))
        error_at(n, "a string here contains a NUL character");
    n->text = arena_strndup(value, len);
    n->quoted = e->data.scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE ||
                e->data.scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE;
    return n;
}

/* Appends to a SEQ's items or a MAP's keys and items, doubling in the arena. */
static void push_child(Node *n, int *cap, Node *key, Node *value)
{
    if (n->n == *cap) {
        int newcap = *cap ? 2 * *cap : 8;
        Node **items = arena_alloc(sizeof(Node *) * (size_t)newcap);
        if (n->n)
            memcpy(items, n->items, sizeof(Node *) * (size_t)n->n);
        n->items = items;
        if (n->kind == NODE_MAP) {
            Node **keys = arena_alloc(sizeof(Node *) * (size_t)newcap);
            if (n->n)
                memcpy(keys, n->keys, sizeof(Node *) * (size_t)n->n);
            n->keys = keys;
        }
        *cap = newcap;
    }
    if (key)
        n->keys[n->n] = key;
    n->items[n->n++] = value;
}

/* Adds a child's expanded size to its parent's; the child's sizes are each at
 * most MAX_EXPANDED, so the sum cannot overflow before the check. */
static void add_size(size_t *total, size_t child, yaml_mark_t child_start)
{
    *total += child;
    if (*total > MAX_EXPANDED) {
        Node where = mark_node(child_start);
        error_at(&where, "the document has more than %d nodes, "
                 "counting what each alias stands for", MAX_EXPANDED);
    }
}

static Node *parse_node(int depth, size_t *size);

/* The key index order by text, then by position, to find repeats in n log n. */
static const Node *const *sort_keys;

static int cmp_key_index(const void *a, const void *b)
{
    int i = *(const int *)a, j = *(const int *)b;
    int c = strcmp(sort_keys[i]->text, sort_keys[j]->text);
    return c ? c : (i > j) - (i < j);
}

/* Reports the first key (in file order) that repeats an earlier one. */
static void check_duplicate_keys(const Node *map)
{
    if (map->n < 2)
        return;
    int *order = arena_alloc(sizeof(int) * (size_t)map->n);
    for (int i = 0; i < map->n; i++)
        order[i] = i;
    sort_keys = (const Node *const *)map->keys;
    qsort(order, (size_t)map->n, sizeof(int), cmp_key_index);
    int first_repeat = -1;
    for (int i = 1; i < map->n; i++) {
        if (strcmp(map->keys[order[i]]->text, map->keys[order[i - 1]]->text) == 0 &&
            (first_repeat < 0 || order[i] < first_repeat))
            first_repeat = order[i];
    }
    if (first_repeat >= 0)
        error_at(map->keys[first_repeat], "duplicate key '%s'", map->keys[first_repeat]->text);
}

static Node *parse_collection(NodeKind kind, int depth, size_t *size)
{
    yaml_event_t *e = &L.event;
    bool is_map = kind == NODE_MAP;
    Node *n = new_node(kind, e->start_mark,
                       is_map ? e->data.mapping_start.tag : e->data.sequence_start.tag);
    if (depth > MAX_DEPTH)
        error_at(n, "the document is nested more than %d levels deep", MAX_DEPTH);
    yaml_char_t *anchor_name = is_map ? e->data.mapping_start.anchor : e->data.sequence_start.anchor;
    char *anchor = copy_anchor_name(anchor_name);
    yaml_event_type_t end = is_map ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    int cap = 0;
    *size = 1;
    for (next_event(); L.event.type != end; next_event()) {
        size_t child_size;
        Node *key = NULL;
        if (is_map) {
            yaml_mark_t key_start = L.event.start_mark;
            key = parse_node(depth + 1, &child_size);
            if (key->kind != NODE_SCALAR) {
                Node where = mark_node(key_start);
                error_at(&where, "a map key must be a plain value, not a %s",
                         key->kind == NODE_MAP ? "map" : "list");
            }
            add_size(size, child_size, key_start);
            next_event();
        }
        /* The mark of the event, not of the node: for an alias, that is
         * where the alias is written. */
        yaml_mark_t value_start = L.event.start_mark;
        Node *value = parse_node(depth + 1, &child_size);
        add_size(size, child_size, value_start);
        push_child(n, &cap, key, value);
    }
    if (is_map)
        check_duplicate_keys(n);
    anchor_add(anchor, n, *size);
    return n;
}

static Node *parse_alias(size_t *size)
{
    const char *name = (const char *)L.event.data.alias.anchor;
    const Anchor *a = anchor_find(name);
    if (!a) {
        Node where = mark_node(L.event.start_mark);
        error_at(&where, "unknown alias '*%s'", name);
    }
    *size = a->size;
    return a->node;
}

/* Builds the node that starts at the current event; *size gets its expanded size. */
static Node *parse_node(int depth, size_t *size)
{
    switch (L.event.type) {
    case YAML_SCALAR_EVENT: {
        Node *n = scalar_node();
        *size = 1;
        anchor_add(copy_anchor_name(L.event.data.scalar.anchor), n, 1);
        return n;
    }
    case YAML_SEQUENCE_START_EVENT:
        return parse_collection(NODE_SEQ, depth, size);
    case YAML_MAPPING_START_EVENT:
        return parse_collection(NODE_MAP, depth, size);
    case YAML_ALIAS_EVENT:
        return parse_alias(size);
    default: {
        Node where = mark_node(L.event.start_mark);
        error_at(&where, "unexpected YAML event %d", (int)L.event.type);
    }
    }
}

/* ---- the file ------------------------------------------------------------------------------- */

/* Reads at most one byte past the limit rather than trust a size that a pipe
 * or a growing file would not give. */
static void read_whole_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        error_file(path, "cannot open: %s", strerror(errno));
    size_t cap = 0, len = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? 2 * cap : 65536;
            char *bigger = realloc(L.text, cap);
            if (!bigger)
                error_file(path, "out of memory reading the file");
            L.text = bigger;
        }
        size_t got = fread(L.text + len, 1, cap - len, f);
        len += got;
        if (len > (size_t)MAX_FILE_BYTES) {
            fclose(f);
            error_file(path, "the model file is larger than %ld MB", MAX_FILE_BYTES >> 20);
        }
        if (got == 0)
            break;
    }
    int failed = ferror(f) ? errno : 0;
    fclose(f);
    if (failed)
        error_file(path, "cannot read: %s", strerror(failed));
    L.text_len = len;
}

/* Refuses a line longer than MAX_LINE_BYTES, at the column where it passes it. */
static void check_line_lengths(void)
{
    size_t start = 0;
    for (size_t i = 0; i <= L.text_len; i++) {
        if (i < L.text_len && L.text[i] != '\n')
            continue;
        if (i - start > (size_t)MAX_LINE_BYTES) {
            Node where = mark_node(mark_of_offset(start + MAX_LINE_BYTES));
            error_at(&where, "a line longer than %ld MiB", MAX_LINE_BYTES >> 20);
        }
        start = i + 1;
    }
}

static Node *parse_stream(void)
{
    next_event();                              /* STREAM-START */
    next_event();
    if (L.event.type == YAML_STREAM_END_EVENT)
        error_file(L.file, "empty model file");
    next_event();                              /* past DOCUMENT-START */
    size_t size;
    Node *root = parse_node(1, &size);
    next_event();                              /* DOCUMENT-END */
    next_event();
    if (L.event.type != YAML_STREAM_END_EVENT) {
        Node where = mark_node(L.event.start_mark);
        error_at(&where, "more than one YAML document; a model file holds one");
    }
    return root;
}

/* The model_config attribute of a Keras .h5, as the text to parse. */
static void read_h5_config(const char *path)
{
    if (nn_h5_read_attribute(path, "model_config", &L.text, &L.text_len) != 0)
        exit(1);   /* h5.c said what is wrong, naming the file */
    size_t len = strlen(path) + sizeof "[model_config]";
    char *name = arena_alloc(len);
    snprintf(name, len, "%s[model_config]", path);
    L.file = name;
}

Node *yaml_load(const char *path)
{
    memset(&L, 0, sizeof L);
    if (nn_h5_check_signature(path) != 0)
        exit(1);
    if (nn_is_hdf5(path)) {
        read_h5_config(path);
    } else {
        L.file = arena_strndup(path, strlen(path));
        read_whole_file(path);
    }
    check_line_lengths();
    if (!yaml_parser_initialize(&L.parser))
        error_at(NULL, "out of memory starting the YAML parser");
    yaml_parser_set_input_string(&L.parser, (const unsigned char *)L.text, L.text_len);
    Node *root = parse_stream();
    yaml_event_delete(&L.event);
    yaml_parser_delete(&L.parser);
    L.have_event = false;
    free(L.text);
    L.text = NULL;
    return root;
}

/* Frees every node and what a load left behind, even one that error_at()
 * ended halfway: for a program that loads many files in one process (the
 * fuzzing harness, tests/fuzz/fuzz_model.c); nncc itself loads one and exits. */
void yaml_release(void)
{
    if (L.have_event)
        yaml_event_delete(&L.event);
    yaml_parser_delete(&L.parser);
    free(L.text);
    memset(&L, 0, sizeof L);
    while (arena) {
        Block *next = arena->next;
        free(arena);
        arena = next;
    }
}
