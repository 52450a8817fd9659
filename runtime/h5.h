/* h5.h - Keras's HDF5 files (h5.c), and weight files of either kind.
 * Like npz.h, its own header because nncc links h5.o as well as libnnrt:
 * nncc reads a Keras .h5's model_config and, for --inference --weights,
 * its weights. h5.c needs libc, npz.c, report.c and libhdf5; built without
 * libhdf5 (make HDF5=0) every .h5 file gets one error saying what to install.
 *
 * Keras 2's layout (keras/saving/legacy/hdf5_format.py, docs/weight-files.md):
 * a group (the file's root for save_weights, /model_weights for save) with
 * attributes layer_names (or, when too long for one attribute, layer_names0,
 * layer_names1, ...), backend and keras_version; a group per layer whose
 * attribute weight_names lists its datasets, e.g. "dense/kernel:0" at
 * /model_weights/dense/dense/kernel:0. */
#ifndef NNRT_H5_H
#define NNRT_H5_H

#include "npz.h"

#include <stdbool.h>

/* The arrays of a weight file: an .npz, or a Keras .h5 (told apart by their
 * first bytes, whatever the name), whose datasets are named as the tensors
 * are ("dense/kernel:0" in layer dense: "dense.kernel"). where[i]: the HDF5
 * dataset array i came from, for messages, or NULL (an .npz). */
typedef struct {
    nn_array *arrays;
    char **where;
    int n;
    int n_weights;         /* an .h5: arrays[0..n_weights) are its layers', the rest its meta */
    bool keras;            /* an .h5: no optimizer or loop state */
} nn_weight_file;

int nn_weight_file_read(const char *path, nn_weight_file *w);
/* The same, asking check about each .npz member before its data is read
 * (nn_npz_read_checked); an .h5's datasets are bounded by what it stores. */
int nn_weight_file_read_checked(const char *path, nn_npz_check check, void *ctx,
                                nn_weight_file *w);
/* Keras's load_weights matches a file's layers to the model's by position
 * (load_weights_from_hdf5_group): the layers with weights in order, and each
 * one's weights in order. When some of the model's tensors names[0..n), in
 * the model's order, are not in an .h5 by name (a file whose layers Keras
 * numbered dense_3, dense_4), but the file has as many arrays, split into
 * layers alike, they are renamed to the model's, with a warning; returns
 * whether it did. Shapes are left for the caller to check. */
bool nn_weight_file_by_position(nn_weight_file *w, const char *path, const char *const *names,
                                int n);
void nn_weight_file_free(nn_weight_file *w);
/* Whether path starts with HDF5's signature (silently false if unreadable). */
bool nn_is_hdf5(const char *path);
/* -1, with an error, when path is named .h5/.hdf5 and readable but not HDF5. */
int nn_h5_check_signature(const char *path);
/* Whether a file about to be written is to be HDF5: named .h5 or .hdf5, as Keras decides. */
bool nn_h5_name(const char *path);
/* Whether this build reads and writes HDF5 (make HDF5=0: not). */
bool nn_h5_supported(void);
/* -1, with the error, when path would be HDF5 and this build cannot write it:
 * checked before training rather than at its first checkpoint. */
int nn_h5_check_writable(const char *path);

/* A string attribute of the file's root (fixed-length or variable), as a
 * malloc'd NUL-terminated text: Keras's model_config. */
int nn_h5_read_attribute(const char *path, const char *name, char **text, size_t *len);

/* Writes arrays (float32, named "LAYER.kernel", "LAYER.forward_lstm.kernel")
 * as Keras's save_weights does, in layer_names' order, each array in the
 * group of the layer its name starts with, and the meta arrays ("meta.*",
 * any dtype) in a root group nncc_meta, which Keras does not read (and
 * nn_weight_file_read does, as they are); atomically, as nn_npz_write. */
int nn_h5_write_weights(const char *path, const char *const *layer_names, int n_layers,
                        const nn_array *arrays, int n, const nn_array *meta, int n_meta);

#endif
