/* reader-peak.c - runs one of the runtime's readers on one file and exits 1
 * if it refused it: what docs/limits.md's peak-memory table was measured
 * with (/usr/bin/time -v, "Maximum resident set size"), reader by reader,
 * without a model around it. Build from the repository's root after make:
 *   cc -std=c11 -Iruntime -o build/reader_peak tools/reader-peak.c build/libnnrt.a \
 *      -lstb -lyaml -lz -lm -fopenmp $(pkg-config --libs hdf5-serial)
 * Usage: build/reader_peak npy|npz|weights|idx|image|csv|records FILE [LABELS]
 */
#include "rt.h"
#include "h5.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int read_one(const char *reader, const char *path, const char *labels)
{
    if (strcmp(reader, "npy") == 0) {
        nn_array a;
        return nn_npy_read(path, &a);
    }
    if (strcmp(reader, "npz") == 0) {
        nn_array *a;
        int n;
        return nn_npz_read(path, &a, &n);
    }
    if (strcmp(reader, "weights") == 0) {
        nn_weight_file w;
        return nn_weight_file_read(path, &w);
    }
    nn_dataset d;
    if (strcmp(reader, "idx") == 0)
        return nn_load_idx(path, labels ? labels : path, &d);
    if (strcmp(reader, "csv") == 0) {
        nn_source src = {.label_column = -1, .header = NN_HEADER_AUTO};
        return nn_load_csv(path, &src, 0, &d);
    }
    if (strcmp(reader, "records") == 0) {
        nn_records r;
        return nn_read_records(path, &r);
    }
    if (strcmp(reader, "image") == 0) {
        static uint8_t out[224 * 224 * 3];
        return nn_load_image_file(path, 224, 224, 3, out);
    }
    fprintf(stderr, "unknown reader '%s'\n", reader);
    return -1;
}

/* What was read is left to exit: the peak is the reader's, freeing adds nothing. */
int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s npy|npz|weights|idx|image|csv|records FILE [LABELS]\n", argv[0]);
        return 2;
    }
    return read_one(argv[1], argv[2], argc > 3 ? argv[3] : NULL) == 0 ? 0 : 1;
}
