/* fuzz_text.c - a text source (runtime/data_text.c over records.c: CSV, JSON,
 * JSON lines; tokenizer.c): one byte of the tokenizer's settings, then the
 * file, read as a training set; then read again as its validation set, with
 * the training set's vocabulary and classes. */
#include "fuzz.h"
#include "rt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_in_run = 1;
    unsigned s = fuzz_take(&data, &size);
    static nn_model m;
    memset(&m, 0, sizeof m);
    nn_text_settings *t = &m.data.text;
    t->max_length = (int)(s % 8) + 1;
    t->num_words = (s & 0x08) ? 5 : 0;
    t->oov_token = (s & 0x10) ? "<OOV>" : NULL;
    t->pad_post = (s >> 5) & 1;
    t->truncate_post = (s >> 6) & 1;
    m.data.validation_split = (s & 0x80) ? 0.25f : 0.0f;
    m.data.train = (nn_source){.format = NN_DATA_TEXT, .text_field = "text", .label_field = "label"};
    const char *path = fuzz_write_input(0, ".csv", data, size);
    nn_dataset train, val;
    if (nn_load_text(&m, &m.data.train, path, NULL, &train) == 0) {
        if (nn_load_text(&m, &m.data.train, path, &train, &val) == 0)
            nn_dataset_free(&val);
        nn_dataset_free(&train);
    }
    fuzz_in_run = 0;
    return 0;
}
