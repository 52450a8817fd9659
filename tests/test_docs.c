/* test_docs.c - the reference in docs/ keeps up with the code: every layer
 * (and its Keras aliases and arguments), optimizer, loss, metric, callback and
 * activation that nncc accepts is named in docs/model-file.md, as `word`. The
 * lists come from the compiler's own tables, so a new layer or loss without
 * its line in the reference fails here. */
#include "testutil.h"

#include "nncc.h"

static char *doc;

static int read_doc(void **state)
{
    (void)state;
    FILE *f = fopen("docs/model-file.md", "r");
    assert_non_null(f);
    static char text[1 << 20];
    text[fread(text, 1, sizeof text - 1, f)] = '\0';
    fclose(f);
    doc = text;
    return 0;
}

static void assert_documented(const char *what, const char *word)
{
    char quoted[160];
    snprintf(quoted, sizeof quoted, "`%s`", word);
    if (!strstr(doc, quoted))
        fail_msg("docs/model-file.md does not name the %s %s", what, quoted);
}

static void test_layers_documented(void **state)
{
    (void)state;
    int rows = 0;
    for (const LayerOps *const *r = layer_table; *r; r++, rows++) {
        assert_documented("layer", (*r)->keras_name);
        for (const char *const *a = (*r)->aliases; a && *a; a++)
            assert_documented("alias", *a);
        for (const KeySpec *k = (*r)->keys; k->key; k++)
            assert_documented("argument", k->key);
    }
    assert_true(rows >= 28);   /* the table is there, not silently empty */
}

static void test_words_documented(void **state)
{
    (void)state;
    static const struct { ModelWords what; const char *name; } lists[] = {
        {WORDS_OPTIMIZERS, "optimizer"}, {WORDS_LOSSES, "loss"}, {WORDS_METRICS, "metric"},
        {WORDS_CALLBACKS, "callback"}, {WORDS_ACTIVATIONS, "activation"},
        {WORDS_OPTIMIZER_ARGS, "optimizer argument"},
    };
    for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++) {
        const char *const *words = model_words(lists[i].what);
        assert_non_null(words[0]);
        for (const char *const *w = words; *w; w++)
            assert_documented(lists[i].name, *w);
    }
}

/* The test can fail: a word the reference does not have. */
static void test_missing_word_is_noticed(void **state)
{
    (void)state;
    char quoted[64];
    snprintf(quoted, sizeof quoted, "`%s`", "NoSuchLayer2D");
    assert_null(strstr(doc, quoted));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layers_documented),
        cmocka_unit_test(test_words_documented),
        cmocka_unit_test(test_missing_word_is_noticed),
    };
    return cmocka_run_group_tests(tests, read_doc, NULL);
}
