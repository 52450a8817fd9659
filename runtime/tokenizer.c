/* tokenizer.c - Keras's Tokenizer and pad_sequences: texts into rows of word ids.
 *
 * The rules are those of tf.keras.preprocessing.text.Tokenizer with its
 * defaults, as the course uses it:
 *   - a text is lower-cased, every character of Keras's filters
 *     !"#$%&()*+,-./:;<=>?@[\]^_`{|}~ tab and newline becomes a space, and the
 *     words are what the spaces separate (the apostrophe stays: "don't");
 *   - fit_on_texts counts the words; the vocabulary orders them by count, most
 *     frequent first, ties in the order they first appeared (Python's stable
 *     sort of the counts dict); ids start at 1, 0 is padding; an oov_token
 *     takes id 1 and pushes the words up by one;
 *   - texts_to_sequences maps a word to its id, or to the oov id when the word
 *     is unknown or its id is num_words or more (without an oov_token such a
 *     word is dropped);
 *   - pad_sequences cuts a longer row (truncating: 'pre' drops the first ids,
 *     'post' the last) and pads a shorter one with 0 (padding 'pre' before,
 *     'post' after).
 * Lower-casing is ASCII only: bytes of other UTF-8 characters are kept as
 * they are (Python lower-cases them too). A word is at most NN_WORD_MAX - 1
 * bytes; longer ones are cut there.
 *
 * The vocabulary is saved with the weights (meta.vocabulary, only the ids
 * below num_words), so predict tokenises a sentence as training did.
 */
#include "rt.h"

#include <stdlib.h>
#include <string.h>

#define NN_WORD_MAX 256

static int is_separator(unsigned char ch)
{
    return ch == ' ' || (ch < 128 && strchr("!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n", ch) && ch);
}

/* The next word at *p into word (lower-cased), moving *p past it; 0 at the end. */
static int next_word(const char **p, char word[NN_WORD_MAX])
{
    const unsigned char *s = (const unsigned char *)*p;
    while (*s && is_separator(*s))
        s++;
    int n = 0;
    for (; *s && !is_separator(*s); s++)
        if (n < NN_WORD_MAX - 1)
            word[n++] = (char)(*s >= 'A' && *s <= 'Z' ? *s - 'A' + 'a' : *s);
    word[n] = '\0';
    *p = (const char *)s;
    return n > 0;
}

/* ---- the word table: open addressing on FNV-1a ------------------------------------ */

static uint64_t hash_word(const char *w)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *w; w++)
        h = (h ^ (unsigned char)*w) * 1099511628211ULL;
    return h;
}

/* The slot of word: where it is, or the empty one where it would go. */
static size_t find_slot(const nn_vocab *v, const char *word)
{
    size_t mask = v->n_slots - 1;
    for (size_t i = hash_word(word) & mask;; i = (i + 1) & mask)
        if (!v->slots[i] || strcmp(v->words[v->slots[i] - 1], word) == 0)
            return i;
}

static void rehash(nn_vocab *v, size_t n_slots)
{
    free(v->slots);
    v->n_slots = n_slots;
    v->slots = nn_alloc(n_slots, sizeof *v->slots);
    for (int i = 0; i < v->n; i++)
        v->slots[find_slot(v, v->words[i])] = i + 1;
}

/* Adds word with the next id unless it has one; returns its id. */
static int add_word(nn_vocab *v, const char *word, int *cap)
{
    if ((size_t)(v->n + 1) * 2 > v->n_slots)
        rehash(v, v->n_slots ? v->n_slots * 2 : 1024);
    size_t slot = find_slot(v, word);
    if (v->slots[slot])
        return v->slots[slot];
    if (v->n == *cap) {
        *cap = *cap ? 2 * *cap : 1024;
        char **bigger = nn_alloc((size_t)*cap, sizeof *bigger);
        if (v->n)
            memcpy(bigger, v->words, (size_t)v->n * sizeof *bigger);
        free(v->words);
        v->words = bigger;
    }
    v->words[v->n] = nn_join_path(NULL, word);
    v->slots[slot] = ++v->n;
    return v->n;
}

int nn_vocab_id(const nn_vocab *v, const char *word)
{
    return v->n_slots ? v->slots[find_slot(v, word)] : 0;
}

void nn_vocab_free(nn_vocab *v)
{
    if (!v)
        return;
    for (int i = 0; i < v->n; i++)
        free(v->words[i]);
    free(v->words);
    free(v->slots);
    free(v);
}

nn_vocab *nn_vocab_from_words(char *const *words, int n)
{
    nn_vocab *v = nn_alloc(1, sizeof *v);
    int cap = 0;
    for (int i = 0; i < n; i++)
        add_word(v, words[i], &cap);
    return v;
}

/* ---- fit_on_texts ---------------------------------------------------------------------- */

typedef struct {
    int first;             /* first-seen order */
    long count;
} word_count;

static int by_count(const void *a, const void *b)
{
    const word_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return (x->first > y->first) - (x->first < y->first);
}

nn_vocab *nn_vocab_fit(char *const *texts, size_t stride, int n, const nn_text_settings *s)
{
    /* A word takes a byte and a separator: the texts' length bounds the words. */
    size_t most = 1;
    for (int i = 0; i < n; i++)
        most += strlen(texts[(size_t)i * stride]) / 2 + 1;
    long *counts = nn_alloc(most, sizeof *counts);
    nn_vocab *seen = nn_alloc(1, sizeof *seen);
    int cap = 0;
    char word[NN_WORD_MAX];
    for (int i = 0; i < n; i++)
        for (const char *p = texts[(size_t)i * stride]; next_word(&p, word);)
            counts[add_word(seen, word, &cap) - 1]++;
    word_count *order = nn_alloc((size_t)seen->n + 1, sizeof *order);
    for (int i = 0; i < seen->n; i++)
        order[i] = (word_count){i, counts[i]};
    qsort(order, (size_t)seen->n, sizeof *order, by_count);

    nn_vocab *v = nn_alloc(1, sizeof *v);
    int vcap = 0, limit = s->num_words > 0 ? s->num_words - 1 : seen->n + 1;
    if (s->oov_token)
        add_word(v, s->oov_token, &vcap);
    for (int i = 0; i < seen->n && v->n < limit; i++)
        add_word(v, seen->words[order[i].first], &vcap);
    free(order);
    free(counts);
    nn_vocab_free(seen);
    return v;
}

/* ---- texts_to_sequences and pad_sequences ----------------------------------------------- */

void nn_text_ids(const nn_vocab *v, const nn_text_settings *s, const char *text, float *ids)
{
    int *row = nn_alloc(strlen(text) / 2 + 1, sizeof *row), n = 0, oov = s->oov_token ? 1 : 0;
    char word[NN_WORD_MAX];
    for (const char *p = text; next_word(&p, word);) {
        int id = nn_vocab_id(v, word);
        if (id == 0 || (s->num_words > 0 && id >= s->num_words))
            id = oov;
        if (id != 0)
            row[n++] = id;
    }
    /* The ids kept: the first max_length ('post') or the last ('pre'). */
    int len = s->max_length, kept = n < len ? n : len;
    const int *from = row + (s->truncate_post ? 0 : n - kept);
    int pad = len - kept;
    for (int i = 0; i < len; i++) {
        int k = s->pad_post ? i : i - pad;
        ids[i] = k >= 0 && k < kept ? (float)from[k] : 0.0f;
    }
    free(row);
}
