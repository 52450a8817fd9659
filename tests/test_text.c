/* test_text.c - text and series data (§7): the records reader (CSV, JSON, JSON
 * lines), Keras's Tokenizer and pad_sequences, the course's windowed_dataset,
 * and the trainers that read them (predict SENTENCE from the weight file's
 * vocabulary, predict --series).
 *
 * The expected ids are worked out by hand from Keras's documented rules
 * (tf.keras.preprocessing.text.Tokenizer: lower-case, filters
 * !"#$%&()*+,-./:;<=>?@[\]^_`{|}~\t\n, ids by descending count with ties in
 * first-seen order, oov_token id 1, num_words keeping ids below it;
 * pad_sequences' 'pre'/'post'), and the windows from the course's
 * windowed_dataset (window_size values, the next one the label). */
#include "testutil.h"

#include "rt.h"

static nn_vocab *fit(const char *const *texts, int n, const nn_text_settings *s)
{
    return nn_vocab_fit((char *const *)texts, 1, n, s);
}

static void assert_ids(const nn_vocab *v, const nn_text_settings *s, const char *text,
                       const float *want)
{
    float got[16];
    nn_text_ids(v, s, text, got);
    for (int i = 0; i < s->max_length; i++)
        if (got[i] != want[i])
            fail_msg("'%s': id %d is %g, want %g", text, i, got[i], want[i]);
}

/* ---- Tokenizer ----------------------------------------------------------------------- */

static void test_tokenizer_order_and_oov(void **state)
{
    (void)state;
    /* Counts: the 3, cat 2, then sat, dog, don't, stop once each in that first-seen order. */
    const char *texts[] = {"The cat sat.", "The dog, the CAT!", "don't\tstop"};
    nn_text_settings s = {.num_words = 5, .oov_token = "<OOV>", .max_length = 4};
    nn_vocab *v = fit(texts, 3, &s);
    /* num_words 5 keeps ids 1..4: <OOV>, the, cat, sat. */
    assert_int_equal(v->n, 4);
    assert_string_equal(v->words[0], "<OOV>");
    assert_string_equal(v->words[1], "the");
    assert_string_equal(v->words[2], "cat");
    assert_string_equal(v->words[3], "sat");
    assert_int_equal(nn_vocab_id(v, "sat"), 4);
    assert_int_equal(nn_vocab_id(v, "dog"), 0);
    /* "the dog sat on the mat": 2 1 4 1 2 1; 'pre' truncating keeps the last 4. */
    assert_ids(v, &s, "The dog sat on the mat", (const float[]){4, 1, 2, 1});
    s.truncate_post = 1;
    assert_ids(v, &s, "The dog sat on the mat", (const float[]){2, 1, 4, 1});
    /* Padding: 'pre' puts the zeros first, 'post' after. */
    assert_ids(v, &s, "cat", (const float[]){0, 0, 0, 3});
    s.pad_post = 1;
    assert_ids(v, &s, "cat", (const float[]){3, 0, 0, 0});
    assert_ids(v, &s, "", (const float[]){0, 0, 0, 0});
    nn_vocab_free(v);

    /* Without an oov_token unknown words are dropped and ids start with the words. */
    nn_text_settings plain = {.max_length = 3, .pad_post = 1};
    v = fit(texts, 3, &plain);
    assert_int_equal(v->n, 6);
    assert_int_equal(nn_vocab_id(v, "don't"), 5);
    assert_ids(v, &plain, "zebra stop THE zebra", (const float[]){6, 1, 0});
    /* The vocabulary round trip that a weight file makes keeps every id. */
    nn_vocab *again = nn_vocab_from_words(v->words, v->n);
    for (int i = 0; i < v->n; i++)
        assert_int_equal(nn_vocab_id(again, v->words[i]), i + 1);
    nn_vocab_free(again);
    nn_vocab_free(v);
}

/* ---- records ------------------------------------------------------------------------ */

static void test_records_csv(void **state)
{
    (void)state;
    const char *path = in_scratch("q.csv");
    write_text(path, "definition,category\r\n"
                     "\"a plant, with \"\"leaves\"\"\",plant\r\n"
                     "\r\n"
                     "\"two\nlines\",animal\n"
                     "plain,act");
    nn_records r;
    assert_int_equal(nn_read_records(path, &r), 0);
    assert_int_equal(r.n_fields, 2);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.cells[0], "a plant, with \"leaves\"");
    assert_string_equal(r.cells[1], "plant");
    assert_string_equal(r.cells[2], "two\nlines");
    assert_string_equal(r.cells[5], "act");
    assert_int_equal(r.lines[1], 4);
    assert_int_equal(r.lines[2], 6);
    assert_int_equal(nn_records_field(&r, path, "category", "label"), 1);
    capture_stderr();
    assert_int_equal(nn_records_field(&r, path, "label", "label"), -1);
    assert_contains(captured(), "no field named 'label' (the label); the file has 'definition', "
                                "'category'");
    nn_records_free(&r);

    write_text(path, "a,b\n1,2\n3\n");
    capture_stderr();
    assert_int_equal(nn_read_records(path, &r), -1);
    assert_contains(captured(), "q.csv:3: error: 1 field, but the header has 2");
    write_text(path, "a,b\n\"open,2\n");
    capture_stderr();
    assert_int_equal(nn_read_records(path, &r), -1);
    assert_contains(captured(), "q.csv:2: error: a quoted field is never closed");
}

static void test_records_json(void **state)
{
    (void)state;
    const char *path = in_scratch("g.json");
    write_text(path, "[\n{\"definition\": \"sea \\\"anemones\\\"\", \"is_animal\": 1},\n"
                     "{\"is_animal\": 0, \"definition\": \"sandarac tree\"}\n]\n");
    nn_records r;
    assert_int_equal(nn_read_records(path, &r), 0);
    assert_int_equal(r.n, 2);
    assert_int_equal(r.n_fields, 2);
    assert_string_equal(r.names[0], "definition");
    assert_string_equal(r.cells[0], "sea \"anemones\"");
    assert_string_equal(r.cells[1], "1");
    assert_string_equal(r.cells[2], "sandarac tree");   /* by name, whatever the order */
    assert_int_equal(r.lines[1], 3);
    nn_records_free(&r);

    const char *lines = in_scratch("g.jsonl");
    write_text(lines, "{\"text\": \"one\", \"label\": 0}\n\n{\"text\": \"two\", \"label\": 1}\n");
    assert_int_equal(nn_read_records(lines, &r), 0);
    assert_int_equal(r.n, 2);
    assert_string_equal(r.cells[2], "two");
    assert_int_equal(r.lines[1], 3);
    nn_records_free(&r);

    write_text(lines, "{\"text\": \"one\", \"label\": 0}\n{\"text\": \"two\"}\n");
    capture_stderr();
    assert_int_equal(nn_read_records(lines, &r), -1);
    assert_contains(captured(), "g.jsonl:2: error: this object has no field 'label'");
    write_text(lines, "{\"text\": [\"one\"], \"label\": 0}\n");
    capture_stderr();
    assert_int_equal(nn_read_records(lines, &r), -1);
    assert_contains(captured(), "field 'text' must be a string or a number");
    write_text(lines, "{\"text\": \"one\", \"label\": 0\n");
    capture_stderr();
    assert_int_equal(nn_read_records(lines, &r), -1);
    assert_contains(captured(), "g.jsonl:1: error: not valid JSON");
}

/* ---- windowed_dataset ------------------------------------------------------------------ */

static void test_series_windows(void **state)
{
    (void)state;
    const char *path = in_scratch("s.csv");
    write_text(path, "month,value\n2000-01,0\n2000-02,1\n2000-03,2\n2000-04,3\n2000-05,4\n"
                     "2000-06,5\n2000-07,6\n2000-08,7\n2000-09,8\n2000-10,9\n");
    nn_source src = {.format = NN_DATA_SERIES, .column = "value", .window_size = 3, .shift = 2,
                     .horizon = 1, .split_time = 7};
    nn_dataset d;
    /* Before the split: values 0..6, windows from 0 and 2 (one from 4 would need 7). */
    assert_int_equal(nn_load_series(&src, path, NN_SERIES_BEFORE_SPLIT, &d), 0);
    assert_int_equal(d.n, 2);
    assert_int_equal(d.sample_size, 3);
    assert_true(d.floats[3] == 2 && d.floats[5] == 4 && d.labels[0] == 3 && d.labels[1] == 5);
    nn_dataset_free(&d);
    /* After it: the windows whose labels are 7 and later, from value 4 on: 4 5 6 -> 7, 6 7 8 -> 9. */
    assert_int_equal(nn_load_series(&src, path, NN_SERIES_AFTER_SPLIT, &d), 0);
    assert_int_equal(d.n, 2);
    assert_true(d.floats[0] == 4 && d.labels[0] == 7 && d.floats[3] == 6 && d.labels[1] == 9);
    nn_dataset_free(&d);
    /* Horizon 2 by column index: labels are the next two values. */
    nn_source two = {.format = NN_DATA_SERIES, .column_index = -1, .window_size = 4, .shift = 1,
                     .horizon = 2, .split_time = -1};
    assert_int_equal(nn_load_series(&two, path, NN_SERIES_ALL, &d), 0);
    assert_int_equal(d.n, 5);
    assert_int_equal(d.label_size, 2);
    assert_true(d.labels[8] == 8 && d.labels[9] == 9);
    nn_dataset_free(&d);

    write_text(path, "month,value\n2000-01,0\n2000-02,x\n");
    capture_stderr();
    assert_int_equal(nn_load_series(&two, path, NN_SERIES_ALL, &d), -1);
    assert_contains(captured(), "s.csv:3: error: 'x' in column 'value' is not a number");
    two.column_index = 0;
    write_text(path, "v\n1\n2\n3\n");
    capture_stderr();
    assert_int_equal(nn_load_series(&two, path, NN_SERIES_ALL, &d), -1);
    assert_contains(captured(), "3 values: too few for one window of 4 and its 2 labels");
}

/* ---- trainers ---------------------------------------------------------------------------- */

/* Words that say the class, first: a network on their ids (the first 3, as
 * max_length is the input's 3) learns it in a few epochs. */
static void write_glosses(const char *path)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "[\n");
    for (int i = 0; i < 200; i++)
        fprintf(f, "{\"definition\": \"%s number %d\", \"kind\": \"%s\"}%s\n",
                i % 2 ? "a furry animal" : "a green plant", i, i % 2 ? "animal" : "plant",
                i < 199 ? "," : "");
    fprintf(f, "]\n");
    fclose(f);
}

static void test_text_trainer(void **state)
{
    (void)state;
    write_glosses(in_scratch("glosses.json"));
    const char *t = build_model("glosses",
        "input_shape: [3]\n"
        "layers:\n"
        "  - Dense: {units: 8, activation: relu}\n"
        "  - Dense: {units: 2, activation: softmax}\n"
        "compile: {optimizer: {name: adam, learning_rate: 0.05}, "
        "loss: sparse_categorical_crossentropy, metrics: [accuracy]}\n"
        "data:\n"
        "  train: {format: text, path: glosses.json, text: definition, label: kind, "
        "oov_token: '<OOV>', padding: post, truncating: post}\n"
        "  validation_split: 0.25\n"
        "fit: {epochs: 20, batch_size: 16}\n");
    RunResult r;
    run_cmd(&r, "cd %s && ./glosses train --quiet --save g.npz && ./glosses evaluate --quiet "
                "--weights g.npz && ./glosses predict --weights g.npz 'A GREEN plant!' "
                "'a furry animal'", scratch);
    if (r.status != 0)
        fail_msg("%s", r.out);
    (void)t;
    /* Classes are the label names sorted; the vocabulary (<OOV> first) is in the weights. */
    assert_output_contains(&r, "accuracy: 1.0000");
    assert_output_contains(&r, "A GREEN plant!: plant");
    assert_output_contains(&r, "a furry animal: animal");
    nn_array *a;
    int n;
    char path[300];
    snprintf(path, sizeof path, "%s/g.npz", scratch);
    assert_int_equal(nn_npz_read(path, &a, &n), 0);
    const nn_array *v = nn_npz_find(a, n, "meta.vocabulary");
    assert_non_null(v);
    assert_true(v->size > 6 && v->i[0] == '<' && v->i[5] == 0);
    nn_npz_free(a, n);
    /* Without a vocabulary a sentence cannot be read. */
    run_cmd(&r, "cd %s && ./glosses predict 'a green plant'", scratch);
    assert_int_equal(r.status, 1);
    assert_output_contains(&r, "no vocabulary to read \"a green plant\" with");
}

static void test_series_trainer(void **state)
{
    (void)state;
    FILE *f = fopen(in_scratch("wave.csv"), "w");
    assert_non_null(f);
    fprintf(f, "t,value\n");
    for (int i = 0; i < 120; i++)
        fprintf(f, "%d,%g\n", i, (double)(i % 4));
    fclose(f);
    build_model("wave",
        "input_shape: [4]\n"
        "layers:\n"
        "  - Dense: {units: 1}\n"
        "compile: {optimizer: {name: sgd, learning_rate: 0.02}, loss: mse}\n"
        "data:\n"
        "  train: {format: series, path: wave.csv, column: value, window_size: 4, "
        "split_time: 100}\n"
        "fit: {epochs: 60, batch_size: 8, seed: 1}\n");
    RunResult r;
    run_cmd(&r, "cd %s && ./wave train --quiet --history h.csv --save w.npz && "
                "./wave predict --weights w.npz --series wave.csv", scratch);
    if (r.status != 0)
        fail_msg("%s", r.out);
    /* The period-4 wave: the value after a window is its first value, which a linear layer
     * learns; 117 windows, each labelled by the step it forecasts (4..120). */
    assert_output_contains(&r, "wave.csv[4]: ");
    assert_output_contains(&r, "wave.csv[120]: ");
    assert_null(strstr(r.out, "wave.csv[121]"));
    const char *mae = strstr(r.out, "mae ");
    assert_non_null(mae);
    double e = atof(mae + 4);
    if (!(e < 0.05))
        fail_msg("the forecast's mae is %g: %s", e, r.out);
    assert_output_contains(&r, "over the 116 forecast values");
    /* 96 training windows before step 100, 20 validation windows after it. */
    run_cmd(&r, "cd %s && head -2 h.csv && ./wave evaluate --weights w.npz", scratch);
    assert_output_contains(&r, "val_loss");
    assert_output_contains(&r, "(the series from split_time)");
    assert_output_contains(&r, "3/3 [");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenizer_order_and_oov),
        cmocka_unit_test(test_records_csv),
        cmocka_unit_test(test_records_json),
        cmocka_unit_test(test_series_windows),
        cmocka_unit_test(test_text_trainer),
        cmocka_unit_test(test_series_trainer),
    };
    return cmocka_run_group_tests(tests, scratch_setup, scratch_teardown);
}
