/* test_yaml.c - the YAML layer (compiler/yaml.c) and the diagnostics and typed
 * accessors (compiler/diag.c).
 *
 * error_at() exits, so every error case runs in a forked child with its stderr
 * sent to a file; the parent checks the exit status and the exact message,
 * FILE:LINE:COL included. Expected positions were counted by hand from the
 * texts written here (1-based lines and columns).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include "testutil.h"

#include <fcntl.h>
#include <glob.h>
#include <math.h>

#include "nncc.h"

static char scratch[64];

/* ---- helpers --------------------------------------------------------------------------- */

static const char *path_of(const char *name)
{
    static char buf[2][256];
    static int which;
    char *p = buf[which ^= 1];
    snprintf(p, sizeof buf[0], "%s/%s", scratch, name);
    return p;
}

/* Writes text (which may hold NUL-free bytes of any kind) to scratch/name. */
static const char *write_model(const char *name, const char *text)
{
    const char *path = path_of(name);
    write_text(path, text);
    return path;
}

typedef void (*ChildFn)(const void *arg);

/* Runs fn(arg) in a child; checks how it ended and what it wrote on stderr. */
static void expect_child(ChildFn fn, const void *arg, int status, const char *expected_stderr)
{
    char errpath[] = "/tmp/nncc-yaml-stderr-XXXXXX";
    int fd = mkstemp(errpath);
    assert_true(fd >= 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fd, 2);
        fn(arg);
        fflush(stderr);
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    char out[4096] = "";
    ssize_t len = pread(fd, out, sizeof out - 1, 0);
    assert_true(len >= 0);
    out[len] = '\0';
    close(fd);
    unlink(errpath);
    assert_true(WIFEXITED(st));
    assert_string_equal(out, expected_stderr);
    assert_int_equal(WEXITSTATUS(st), status);
}

static void load_in_child(const void *path)
{
    yaml_load(path);
}

/* The file at path must be refused with "PATH<where>: error: <message>". */
static void expect_load_error(const char *path, const char *where, const char *message)
{
    char expected[1024];
    snprintf(expected, sizeof expected, "%s%s: error: %s\n", path, where, message);
    expect_child(load_in_child, path, 1, expected);
}

static void assert_scalar(const Node *n, const char *text, bool quoted, int line, int col)
{
    assert_non_null(n);
    assert_int_equal(n->kind, NODE_SCALAR);
    assert_string_equal(n->text, text);
    assert_int_equal(n->quoted, quoted);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

static void assert_at(const Node *n, NodeKind kind, int count, int line, int col)
{
    assert_non_null(n);
    assert_int_equal(n->kind, kind);
    assert_int_equal(n->n, count);
    assert_int_equal(n->line, line);
    assert_int_equal(n->col, col);
}

/* ---- loading good files ---------------------------------------------------------------------- */

static void test_block_and_flow(void **state)
{
    (void)state;
    const char *path = write_model("good.yaml",
        "name: fashion_cnn          # a comment\n"
        "input_shape: [28, 28, 1]\n"
        "layers:\n"
        "  - Conv2D: {filters: 64, kernel_size: 3}\n"
        "  - Flatten\n"
        "  - Dense: {units: 'ten', name: \"out put\"}\n"
        "strides: !!python/tuple [2, 2]\n"
        "seed: !!int 42\n"
        "empty: {}\n");
    Node *root = yaml_load(path);
    assert_at(root, NODE_MAP, 6, 1, 1);
    assert_string_equal(root->file, path);
    assert_null(root->tag);

    assert_scalar(root->keys[0], "name", false, 1, 1);
    assert_scalar(root->items[0], "fashion_cnn", false, 1, 7);

    Node *shape = root->items[1];
    assert_at(shape, NODE_SEQ, 3, 2, 14);
    assert_scalar(shape->items[0], "28", false, 2, 15);
    assert_scalar(shape->items[1], "28", false, 2, 19);
    assert_scalar(shape->items[2], "1", false, 2, 23);

    Node *layers = root->items[2];
    assert_at(layers, NODE_SEQ, 3, 4, 3);
    Node *conv = layers->items[0];
    assert_at(conv, NODE_MAP, 1, 4, 5);
    assert_scalar(conv->keys[0], "Conv2D", false, 4, 5);
    assert_at(conv->items[0], NODE_MAP, 2, 4, 13);
    assert_scalar(conv->items[0]->keys[1], "kernel_size", false, 4, 27);
    assert_scalar(conv->items[0]->items[1], "3", false, 4, 40);
    assert_scalar(layers->items[1], "Flatten", false, 5, 5);
    Node *dense = layers->items[2]->items[0];
    assert_scalar(dense->items[0], "ten", true, 6, 20);
    assert_scalar(dense->items[1], "out put", true, 6, 33);

    Node *strides = root->items[3];
    assert_at(strides, NODE_SEQ, 2, 7, 10);
    assert_string_equal(strides->tag, "!!python/tuple");
    assert_scalar(strides->items[1], "2", false, 7, 29);
    assert_string_equal(root->items[4]->tag, "!!int");
    assert_string_equal(root->items[4]->text, "42");
    assert_at(root->items[5], NODE_MAP, 0, 9, 8);
}

static void test_json(void **state)
{
    (void)state;
    const char *path = write_model("model.json",
        "{\"class_name\": \"Sequential\",\n"
        " \"config\": [{\"class_name\": \"Dense\",\n"
        "\t\"config\": {\"units\": 10, \"use_bias\": true, \"bias\": null}}]}\n");
    Node *root = yaml_load(path);
    assert_at(root, NODE_MAP, 2, 1, 1);
    assert_scalar(root->keys[0], "class_name", true, 1, 2);
    assert_scalar(root->items[0], "Sequential", true, 1, 16);
    Node *layer = root->items[1]->items[0];
    assert_at(layer, NODE_MAP, 2, 2, 13);
    Node *config = layer->items[1];
    assert_at(config, NODE_MAP, 3, 3, 12);
    assert_scalar(config->items[0], "10", false, 3, 22);
    assert_scalar(config->items[1], "true", false, 3, 38);
    assert_scalar(config->items[2], "null", false, 3, 52);
}

static void test_crlf(void **state)
{
    (void)state;
    const char *path = write_model("crlf.yaml", "a: 1\r\nb:\r\n  - x\r\n  - \"y\"\r\n");
    Node *root = yaml_load(path);
    assert_at(root, NODE_MAP, 2, 1, 1);
    assert_scalar(root->items[0], "1", false, 1, 4);
    assert_at(root->items[1], NODE_SEQ, 2, 3, 3);
    assert_scalar(root->items[1]->items[0], "x", false, 3, 5);
    assert_scalar(root->items[1]->items[1], "y", true, 4, 5);
}

static void test_aliases_share_the_anchored_node(void **state)
{
    (void)state;
    const char *path = write_model("alias.yaml",
        "pool: !!python/tuple &id001 [2, 2]\n"
        "strides: *id001\n"
        "rate: &r 0.5\n"
        "again: *r\n"
        "x: &id001 [7]\n"
        "y: *id001\n");
    Node *root = yaml_load(path);
    assert_at(root, NODE_MAP, 6, 1, 1);
    assert_ptr_equal(root->items[1], root->items[0]);
    assert_string_equal(root->items[1]->tag, "!!python/tuple");
    assert_int_equal(root->items[1]->n, 2);
    assert_ptr_equal(root->items[3], root->items[2]);
    assert_string_equal(root->items[3]->text, "0.5");
    /* A reused anchor name means its latest node. */
    assert_ptr_equal(root->items[5], root->items[4]);
    assert_string_equal(root->items[5]->items[0]->text, "7");
}

static void test_nesting_at_the_limit_loads(void **state)
{
    (void)state;
    char text[200] = "";
    for (int i = 0; i < 64; i++)
        strcat(text, "[");
    for (int i = 0; i < 64; i++)
        strcat(text, "]");
    Node *n = yaml_load(write_model("deep64.yaml", text));
    int depth = 1;
    for (; n->n == 1; n = n->items[0])
        depth++;
    assert_int_equal(depth, 64);
}

/* ---- refused files ---------------------------------------------------------------------------- */

static void test_syntax_errors(void **state)
{
    (void)state;
    /* "2\nb" is one plain scalar in the flow list; the ':' after it is at 2:2. */
    expect_load_error(write_model("syntax1.yaml", "a: [1, 2\nb: 3\n"), ":2:2",
                      "did not find expected ',' or ']'");
    expect_load_error(write_model("syntax2.yaml", "a: 1\n  b: 2\n"), ":2:4",
                      "mapping values are not allowed in this context");
    expect_load_error(write_model("syntax3.yaml", "a: 1\r\nb: [1\r\nc: @x\r\n"), ":3:2",
                      "did not find expected ',' or ']'");
}

static void test_file_errors(void **state)
{
    (void)state;
    expect_load_error("/nonexistent/model.yaml", "", "cannot open: No such file or directory");
    expect_load_error(write_model("empty.yaml", ""), "", "empty model file");
    expect_load_error(write_model("comment.yaml", "# nothing here\n\n"), "", "empty model file");
    expect_load_error(scratch, "", "cannot read: Is a directory");

    /* A sparse file one byte over 64 MB: refused before any parsing. */
    const char *big = path_of("big.yaml");
    int fd = open(big, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (64L << 20) + 1), 0);
    close(fd);
    expect_load_error(big, "", "the model file is larger than 64 MB");
    unlink(big);
}

static void test_structure_errors(void **state)
{
    (void)state;
    expect_load_error(write_model("dup.yaml", "a: 1\nb: 2\na: 3\n"), ":3:1", "duplicate key 'a'");
    expect_load_error(write_model("dup2.yaml", "l: [{x: 1, y: 2, y: 3, x: 4}]\n"), ":1:18",
                      "duplicate key 'y'");
    expect_load_error(write_model("key.yaml", "ok: 1\n? [1, 2]\n: 3\n"), ":2:3",
                      "a map key must be a plain value, not a list");
    expect_load_error(write_model("docs.yaml", "a: 1\n---\nb: 2\n"), ":2:1",
                      "more than one YAML document; a model file holds one");
    expect_load_error(write_model("unknown.yaml", "a: [1, *nope]\n"), ":1:8",
                      "unknown alias '*nope'");
    /* An anchor is usable only once its node is complete: no cycles. */
    expect_load_error(write_model("cycle.yaml", "a: &x [1, *x]\n"), ":1:11", "unknown alias '*x'");
    expect_load_error(write_model("nul.yaml", "a: \"x\\0y\"\n"), ":1:4",
                      "a string here contains a NUL character");
}

static void test_deep_nesting_refused(void **state)
{
    (void)state;
    char text[200] = "";
    for (int i = 0; i < 65; i++)
        strcat(text, "[");
    for (int i = 0; i < 65; i++)
        strcat(text, "]");
    expect_load_error(write_model("deep65.yaml", text), ":1:65",
                      "the document is nested more than 64 levels deep");
}

/* Nine levels of nine aliases each, 9^9 scalars once expanded. Expanded sizes
 * (a list counts itself): a = 1+9 = 10, b = 1+9*10 = 91, c = 820, d = 7381,
 * e = 66430, f = 597871; g passes 1,000,000 at its second alias of f, written
 * on line 7 at column 12. */
static void test_alias_bomb_refused(void **state)
{
    (void)state;
    char text[2048] = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (char c = 'b'; c <= 'i'; c++) {
        char line[128];
        snprintf(line, sizeof line, "%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", c, c,
                 c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1, c - 1);
        strcat(text, line);
    }
    expect_load_error(write_model("bomb.yaml", text), ":7:12",
                      "the document has more than 1000000 nodes, "
                      "counting what each alias stands for");
}

/* A 17 MiB line (inside the 64 MB a model file may have): refused where it
 * passes 16 MiB, before libyaml scans it. */
static void test_long_line_refused(void **state)
{
    (void)state;
    size_t len = (17u << 20) + 16;
    char *text = malloc(len + 1);
    assert_non_null(text);
    memset(text, 'x', len);
    memcpy(text, "name: m\nnote: ", 14);
    text[len] = '\0';
    expect_load_error(write_model("long.yaml", text), ":2:16777217", "a line longer than 16 MiB");
    free(text);
}

/* ---- the real Keras exports ---------------------------------------------------------------------- */

static void test_keras_exports(void **state)
{
    (void)state;
    glob_t g;
    int found = glob("/work/shared/keras-exports/*.yaml", 0, NULL, &g) == 0;
    found |= glob("/work/shared/keras-exports/*.json", found ? GLOB_APPEND : 0, NULL, &g) == 0;
    if (!found)
        skip();
    for (size_t i = 0; i < g.gl_pathc; i++) {
        const char *path = g.gl_pathv[i];
        /* This one holds the same document twice (SOURCES.md, #6): its second
         * `backend:` repeats the first. */
        if (strstr(path, "JesseVent__lstm-rapper"))
            expect_load_error(path, ":60:1", "duplicate key 'backend'");
        else
            expect_child(load_in_child, path, 0, "");
    }
    globfree(&g);
}

/* ---- diagnostics ---------------------------------------------------------------------------- */

static Node scalar_node(const char *text, bool quoted)
{
    return (Node){ .kind = NODE_SCALAR, .line = 4, .col = 10, .file = "m.yaml",
                   .text = (char *)text, .quoted = quoted };
}

static void error_null_in_child(const void *arg)
{
    (void)arg;
    error_at(NULL, "boom %d", 7);
}

static void warn_and_error_in_child(const void *arg)
{
    Node n = scalar_node("x", false);
    warn_at(&n, "%s", (const char *)arg);
    error_file("f.yaml", "then %s", "stop");
}

static void test_messages(void **state)
{
    (void)state;
    expect_child(error_null_in_child, NULL, 1, "nncc: error: boom 7\n");
    expect_child(warn_and_error_in_child, "two\nlines", 1,
                 "m.yaml:4:10: warning: two lines\nf.yaml: error: then stop\n");
}

static void test_closest_word(void **state)
{
    (void)state;
    const char *const layers[] = { "Dense", "Conv2D", "Flatten", "Dropout", "MaxPooling2D", NULL };
    assert_string_equal(closest_word("Dence", layers), "Dense");
    assert_string_equal(closest_word("dense", layers), "Dense");       /* case only */
    assert_string_equal(closest_word("Flaten", layers), "Flatten");
    assert_string_equal(closest_word("Dorpout", layers), "Dropout");  /* a swap is one slip */
    assert_string_equal(closest_word("MaxPool2D", layers), "MaxPooling2D");  /* 3 <= 9/3 */
    assert_null(closest_word("Dense", layers));                       /* no different word */
    assert_null(closest_word("LSTM", layers));
    assert_null(closest_word("Conv3DTranspose", layers));
    const char *const keys[] = { "units", "activation", "use_bias", "name", NULL };
    assert_string_equal(closest_word("unit", keys), "units");
    assert_string_equal(closest_word("activaton", keys), "activation");
    assert_null(closest_word("size", keys));
}

static const char *const dense_keys[] = { "units", "activation", "use_bias", NULL };

static void check_keys_in_child(const void *path)
{
    Node *root = yaml_load(path);
    map_check_keys(map_get(root, "Dense"), "Dense", dense_keys);
}

static void map_get_in_child(const void *path)
{
    map_get(map_get(yaml_load(path), "layers"), "Dense");
}

static void test_map_access(void **state)
{
    (void)state;
    const char *good = write_model("keys.yaml", "Dense: {units: 3, activation: relu}\n");
    Node *root = yaml_load(good);
    assert_null(map_get(root, "Conv2D"));
    assert_null(map_get(NULL, "x"));
    Node *dense = map_get(root, "Dense");
    assert_string_equal(node_str(map_get(dense, "activation"), "activation"), "relu");
    assert_int_equal(node_int(map_get(dense, "units"), "units", 1, 10), 3);
    map_check_keys(dense, "Dense", dense_keys);    /* all known: returns */

    write_model("typo.yaml", "Dense:\n  units: 3\n  unit: 4\n");
    char expected[512];
    snprintf(expected, sizeof expected,
             "%s:3:3: error: unknown key 'unit' in Dense; did you mean 'units'?\n",
             path_of("typo.yaml"));
    expect_child(check_keys_in_child, path_of("typo.yaml"), 1, expected);
    snprintf(expected, sizeof expected,
             "%s:1:19: error: unknown key 'zzz' in Dense (it takes: units, activation, use_bias)\n",
             path_of("zzz.yaml"));
    expect_child(check_keys_in_child, write_model("zzz.yaml", "Dense: {units: 3, zzz: 1}\n"), 1,
                 expected);
    snprintf(expected, sizeof expected,
             "%s:1:9: error: expected a map of key: value pairs here, got a list\n",
             path_of("notmap.yaml"));
    expect_child(map_get_in_child, write_model("notmap.yaml", "layers: [Dense]\n"), 1, expected);
}

/* One accessor call on a hand-made scalar at m.yaml:4:10, run in a child. */
typedef struct {
    char accessor;      /* 'i' node_int, 'n' node_num, 'b' node_bool, 's' node_str */
    const char *text;
    bool quoted;
    long min, max;
} Access;

static void access_in_child(const void *arg)
{
    const Access *a = arg;
    Node n = scalar_node(a->text, a->quoted);
    Node list = { .kind = NODE_SEQ, .line = 4, .col = 10, .file = "m.yaml" };
    switch (a->accessor) {
    case 'i': node_int(a->text ? &n : &list, "units", a->min, a->max); break;
    case 'n': node_num(a->text ? &n : &list, "rescale"); break;
    case 'b': node_bool(a->text ? &n : &list, "use_bias"); break;
    case 's': node_str(a->text ? &n : &list, "name"); break;
    }
}

/* text NULL: the node is a list instead of a scalar. */
static void expect_access_error(Access a, const char *message)
{
    char expected[512];
    snprintf(expected, sizeof expected, "m.yaml:4:10: error: %s\n", message);
    expect_child(access_in_child, &a, 1, expected);
}

static void test_node_int(void **state)
{
    (void)state;
    Node n = scalar_node("32", false);
    assert_int_equal(node_int(&n, "units", 1, 100), 32);
    n.text = "-5";
    assert_int_equal(node_int(&n, "x", -10, 10), -5);
    n.text = "+7";
    assert_int_equal(node_int(&n, "x", 0, 10), 7);
    n.text = "9223372036854775807";
    assert_true(node_int(&n, "x", 0, 9223372036854775807L) == 9223372036854775807L);

    expect_access_error((Access){ 'i', "3.5", false, 1, 1000 }, "units must be an integer, got '3.5'");
    expect_access_error((Access){ 'i', "3.0", false, 1, 1000 }, "units must be an integer, got '3.0'");
    expect_access_error((Access){ 'i', "0x10", false, 1, 1000 }, "units must be an integer, got '0x10'");
    expect_access_error((Access){ 'i', "", false, 1, 1000 }, "units must be an integer, got ''");
    expect_access_error((Access){ 'i', "32", true, 1, 1000 },
                        "units must be an integer, got the string \"32\"");
    expect_access_error((Access){ 'i', NULL, false, 1, 1000 }, "units must be an integer, got a list");
    expect_access_error((Access){ 'i', "0", false, 1, 1000 }, "units must be between 1 and 1000, got 0");
    expect_access_error((Access){ 'i', "99999999999999999999", false, 1, 1000000 },
                        "units must be between 1 and 1000000, got 99999999999999999999");
    expect_access_error((Access){ 'i', "-99999999999999999999", false, 1, 1000000 },
                        "units must be between 1 and 1000000, got -99999999999999999999");
}

static void test_node_num(void **state)
{
    (void)state;
    Node n = scalar_node("0.5", false);
    assert_true(node_num(&n, "rate") == 0.5);
    n.text = "1/255";
    assert_true(node_num(&n, "rescale") == 1.0 / 255.0);
    n.text = "-1e-3";
    assert_true(node_num(&n, "x") == -0.001);
    n.text = "2";
    assert_true(node_num(&n, "x") == 2.0);
    n.text = ".25/-2";
    assert_true(node_num(&n, "x") == -0.125);

    const char *not_numbers[] = { "inf", ".inf", "nan", ".NaN", "0x1p3", "1/2/3", "/2", "1/", "abc",
                                  "1e", "", "- 1" };
    for (size_t i = 0; i < sizeof not_numbers / sizeof *not_numbers; i++) {
        char message[256];
        snprintf(message, sizeof message,
                 "rescale must be a number (or A/B, as in 1/255), got '%s'", not_numbers[i]);
        expect_access_error((Access){ 'n', not_numbers[i], false, 0, 0 }, message);
    }
    expect_access_error((Access){ 'n', "0.5", true, 0, 0 },
                        "rescale must be a number, got the string \"0.5\"");
    expect_access_error((Access){ 'n', "1/0", false, 0, 0 }, "rescale divides by zero: '1/0'");
    expect_access_error((Access){ 'n', "1e999", false, 0, 0 }, "rescale is too large: '1e999'");
    expect_access_error((Access){ 'n', "1e300/1e-300", false, 0, 0 },
                        "rescale is too large: '1e300/1e-300'");
}

static void test_node_bool_and_str(void **state)
{
    (void)state;
    const char *yes[] = { "true", "True", "TRUE", "yes", "Yes", "on", "y" };
    const char *no[] = { "false", "False", "FALSE", "no", "NO", "off", "n" };
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        Node t = scalar_node(yes[i], false), f = scalar_node(no[i], false);
        assert_true(node_bool(&t, "b"));
        assert_false(node_bool(&f, "b"));
    }
    expect_access_error((Access){ 'b', "maybe", false, 0, 0 },
                        "use_bias must be true or false, got 'maybe'");
    expect_access_error((Access){ 'b', "1", false, 0, 0 }, "use_bias must be true or false, got '1'");
    expect_access_error((Access){ 'b', "true", true, 0, 0 },
                        "use_bias must be true or false, got the string \"true\"");

    Node s = scalar_node("out put", true);
    assert_string_equal(node_str(&s, "name"), "out put");
    expect_access_error((Access){ 's', NULL, false, 0, 0 }, "name must be a string, got a list");
    /* A long value is quoted cut to 60 bytes, so that the message stays readable. */
    expect_access_error((Access){ 'b', "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijklmnop",
                                  false, 0, 0 },
                        "use_bias must be true or false, got "
                        "'abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh...'");
}

static void test_is_c_identifier(void **state)
{
    (void)state;
    char name63[64], name64[65];
    memset(name63, 'a', 63);
    name63[63] = '\0';
    memset(name64, 'a', 64);
    name64[64] = '\0';
    assert_true(is_c_identifier("fashion_cnn"));
    assert_true(is_c_identifier("_x"));
    assert_true(is_c_identifier("A1"));
    assert_true(is_c_identifier("integer"));
    assert_true(is_c_identifier(name63));
    assert_false(is_c_identifier(name64));
    assert_false(is_c_identifier(""));
    assert_false(is_c_identifier("1abc"));
    assert_false(is_c_identifier("a-b"));
    assert_false(is_c_identifier("a b"));
    assert_false(is_c_identifier("caf\xc3\xa9"));
    assert_false(is_c_identifier("int"));
    assert_false(is_c_identifier("while"));
    assert_false(is_c_identifier("_Bool"));
    assert_false(is_c_identifier("_Static_assert"));
}

static int make_scratch_folder(void **state)
{
    (void)state;
    make_scratch(scratch, sizeof scratch);
    return 0;
}

static int remove_scratch_folder(void **state)
{
    (void)state;
    rm_tree(scratch);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_block_and_flow),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_aliases_share_the_anchored_node),
        cmocka_unit_test(test_nesting_at_the_limit_loads),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_structure_errors),
        cmocka_unit_test(test_deep_nesting_refused),
        cmocka_unit_test(test_alias_bomb_refused),
        cmocka_unit_test(test_long_line_refused),
        cmocka_unit_test(test_keras_exports),
        cmocka_unit_test(test_messages),
        cmocka_unit_test(test_closest_word),
        cmocka_unit_test(test_map_access),
        cmocka_unit_test(test_node_int),
        cmocka_unit_test(test_node_num),
        cmocka_unit_test(test_node_bool_and_str),
        cmocka_unit_test(test_is_c_identifier),
    };
    return cmocka_run_group_tests(tests, make_scratch_folder, remove_scratch_folder);
}
