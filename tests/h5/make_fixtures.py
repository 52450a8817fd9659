#!/usr/bin/python3
"""make_fixtures.py - the Keras HDF5 files tests/test_h5.c reads, written with
h5py (Debian's python3-h5py) in exactly the layout of Keras 2's
keras/saving/legacy/hdf5_format.py:

  save_model_to_hdf5          root attributes model_config (JSON, bytes),
                              training_config, keras_version, backend; the
                              weights in group /model_weights
  save_weights_to_hdf5_group  attributes layer_names (every layer, in the
                              model's order), backend, keras_version; a group
                              per layer (created in sorted order), with
                              attribute weight_names, and a dataset per weight
                              at GROUP/<variable name>, e.g. dense/dense/kernel:0
  save_attributes_to_hdf5_group
                              a list too long for one attribute is split with
                              numpy.array_split into NAME0, NAME1, ...

Beside each .h5 an .npz (numpy.savez) holds the same arrays under nncc's names
(dense.kernel): what test_h5.c compares its reader with. expect.npz holds the
outputs of the models for fixed inputs, computed here in numpy with Keras's
formulas (Dense: x @ kernel + bias; BatchNormalization at inference:
gamma * (x - moving_mean) / sqrt(moving_variance + epsilon) + beta), not by nncc.

Run from the repository's root: /usr/bin/python3 tests/h5/make_fixtures.py.
The output is committed; the script is deterministic (fixed seeds).
"""
import json
import os

import h5py
import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS_VERSION = b"2.15.0"
HDF5_OBJECT_HEADER_LIMIT = 64512


def save_attributes(group, name, data, limit=HDF5_OBJECT_HEADER_LIMIT):
    """save_attributes_to_hdf5_group; `limit` lower than Keras's only to get a
    split list from a small model (the layout is the same)."""
    data_npy = np.asarray(data)
    num_chunks = 1
    chunked = np.array_split(data_npy, num_chunks)
    while any(x.nbytes > limit for x in chunked):
        num_chunks += 1
        chunked = np.array_split(data_npy, num_chunks)
    if num_chunks > 1:
        for chunk_id, chunk in enumerate(chunked):
            group.attrs["%s%d" % (name, chunk_id)] = chunk
    else:
        group.attrs[name] = data


def save_weights(f, layers, limit=HDF5_OBJECT_HEADER_LIMIT):
    """save_weights_to_hdf5_group. layers: [(layer name, [(variable name, array)])]."""
    save_attributes(f, "layer_names", [n.encode("utf8") for n, _ in layers], limit)
    f.attrs["backend"] = b"tensorflow"
    f.attrs["keras_version"] = KERAS_VERSION
    for name, weights in sorted(layers, key=lambda x: x[0]):
        g = f.create_group(name)
        save_attributes(g, "weight_names", [w.encode("utf8") for w, _ in weights], limit)
        for wname, val in weights:
            d = g.create_dataset(wname, val.shape, dtype=val.dtype)
            d[:] = val
    g = f.create_group("top_level_model_weights")
    save_attributes(g, "weight_names", [])


def dense_config(name, units, activation, **extra):
    config = {"name": name, "trainable": True, "dtype": "float32", "units": units,
              "activation": activation, "use_bias": True,
              "kernel_initializer": {"class_name": "GlorotUniform", "config": {"seed": None}},
              "bias_initializer": {"class_name": "Zeros", "config": {}},
              "kernel_regularizer": None, "bias_regularizer": None,
              "activity_regularizer": None, "kernel_constraint": None, "bias_constraint": None}
    config.update(extra)
    return {"class_name": "Dense", "config": config}


def batchnorm_config(name):
    return {"class_name": "BatchNormalization", "config": {
        "name": name, "trainable": True, "dtype": "float32", "axis": [1], "momentum": 0.99,
        "epsilon": 0.001, "center": True, "scale": True,
        "beta_initializer": {"class_name": "Zeros", "config": {}},
        "gamma_initializer": {"class_name": "Ones", "config": {}},
        "moving_mean_initializer": {"class_name": "Zeros", "config": {}},
        "moving_variance_initializer": {"class_name": "Ones", "config": {}},
        "beta_regularizer": None, "gamma_regularizer": None, "beta_constraint": None,
        "gamma_constraint": None}}


def sequential_config():
    """tf.keras 2.x's Sequential to_json(): an InputLayer first."""
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": [
        {"class_name": "InputLayer", "config": {
            "batch_input_shape": [None, 3], "dtype": "float32", "sparse": False,
            "ragged": False, "name": "dense_input"}},
        dense_config("dense", 4, "relu"),
        batchnorm_config("batch_normalization"),
        dense_config("dense_1", 2, "softmax")]}}


def functional_config():
    """tf.keras 2.x's functional to_json()."""
    hidden = dense_config("hidden", 4, "tanh")
    hidden["name"] = "hidden"
    hidden["inbound_nodes"] = [[["input_1", 0, 0, {}]]]
    out = dense_config("out", 1, "sigmoid")
    out["name"] = "out"
    out["inbound_nodes"] = [[["hidden", 0, 0, {}]]]
    return {"class_name": "Functional", "config": {
        "name": "model", "layers": [
            {"class_name": "InputLayer", "name": "input_1", "inbound_nodes": [],
             "config": {"batch_input_shape": [None, 3], "dtype": "float32", "sparse": False,
                        "ragged": False, "name": "input_1"}},
            hidden, out],
        "input_layers": [["input_1", 0, 0]], "output_layers": [["out", 0, 0]]}}


def training_config(loss):
    return {"loss": loss, "metrics": [[{"class_name": "MeanMetricWrapper", "config": {
        "name": "accuracy", "dtype": "float32", "fn": "categorical_accuracy"}}]],
        "optimizer_config": {"class_name": "Adam", "config": {"name": "Adam",
                                                              "learning_rate": 0.001}}}


def f32(rng, *shape):
    return rng.uniform(-1, 1, size=shape).astype(np.float32)


def sequential_weights(rng):
    """Keras's variable names: dense_1 was built under tf.name_scope('head'),
    so its variables are head/dense_1/... (a nested name)."""
    return [
        ("dense", [("dense/kernel:0", f32(rng, 3, 4)), ("dense/bias:0", f32(rng, 4))]),
        ("batch_normalization", [
            ("batch_normalization/gamma:0", 1 + 0.5 * f32(rng, 4)),
            ("batch_normalization/beta:0", f32(rng, 4)),
            ("batch_normalization/moving_mean:0", f32(rng, 4)),
            ("batch_normalization/moving_variance:0", 1 + 0.5 * f32(rng, 4))]),
        ("dense_1", [("head/dense_1/kernel:0", f32(rng, 4, 2)),
                     ("head/dense_1/bias:0", f32(rng, 2))]),
    ]


def functional_weights(rng):
    return [
        ("input_1", []),
        ("hidden", [("hidden/kernel:0", f32(rng, 3, 4)), ("hidden/bias:0", f32(rng, 4))]),
        ("out", [("out/kernel:0", f32(rng, 4, 1)), ("out/bias:0", f32(rng, 1))]),
    ]


def nncc_name(layer, wname):
    """What test_h5.c expects each dataset to be called: LAYER.ROLE, and for
    the two directions of a Bidirectional LAYER.forward_lstm.ROLE (the
    contract's names; docs/weight-files.md)."""
    parts = wname.split(":")[0].split("/")
    direction = [p for p in parts if p.startswith(("forward_", "backward_"))]
    return ".".join([layer] + direction + [parts[-1]])


def write_expected(path, layers):
    np.savez(path, **{nncc_name(l, w): v for l, ws in layers for w, v in ws})


def arrays(layers):
    return {nncc_name(l, w): v for l, ws in layers for w, v in ws}


def softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def sequential_forward(w, x):
    h = np.maximum(x @ w["dense.kernel"] + w["dense.bias"], 0)
    h = (w["batch_normalization.gamma"] * (h - w["batch_normalization.moving_mean"])
         / np.sqrt(w["batch_normalization.moving_variance"] + 0.001)
         + w["batch_normalization.beta"])
    return softmax(h @ w["dense_1.kernel"] + w["dense_1.bias"])


def functional_forward(w, x):
    h = np.tanh(x @ w["hidden.kernel"] + w["hidden.bias"])
    return 1 / (1 + np.exp(-(h @ w["out.kernel"] + w["out.bias"])))


def main():
    rng = np.random.RandomState(20261205)
    seq = sequential_weights(rng)
    with h5py.File(os.path.join(HERE, "seq.h5"), "w") as f:
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(sequential_config()).encode("utf8")
        f.attrs["training_config"] = json.dumps(
            training_config("categorical_crossentropy")).encode("utf8")
        save_weights(f.create_group("model_weights"), seq)
    write_expected(os.path.join(HERE, "seq.npz"), seq)

    # model.save_weights('weights.h5') of the same model, other values: the
    # layers at the root.
    seq2 = sequential_weights(rng)
    with h5py.File(os.path.join(HERE, "weights.h5"), "w") as f:
        save_weights(f, seq2)
    write_expected(os.path.join(HERE, "weights.npz"), seq2)

    # The same weights from a session where Keras numbered the layers on
    # (dense_3, ...): load_weights matches layers by position, not by name.
    renames = {"dense": "dense_3", "batch_normalization": "batch_normalization_1",
               "dense_1": "dense_4"}
    renamed = [(renames[l], [(w.replace(l + "/", renames[l] + "/"), v) for w, v in ws])
               for l, ws in seq2]
    with h5py.File(os.path.join(HERE, "renamed.h5"), "w") as f:
        save_weights(f, renamed)

    # A functional model whose name lists are split (a limit of 16 bytes
    # splits layer_names and each weight_names into 2 parts), and
    # whose model_config is a str (h5py: a variable-length string).
    func = functional_weights(rng)
    with h5py.File(os.path.join(HERE, "func.h5"), "w") as f:
        f.attrs["keras_version"] = KERAS_VERSION
        f.attrs["backend"] = b"tensorflow"
        f.attrs["model_config"] = json.dumps(functional_config())
        save_weights(f.create_group("model_weights"), func, limit=16)
    write_expected(os.path.join(HERE, "func.npz"), func)

    # Variables of a Bidirectional(LSTM) and an LSTM as tf.keras 2.x names
    # them (inside the wrapped layers' cells), read without a model.
    nrng = np.random.RandomState(7)

    def lstm(prefix, units, inputs):
        return [(prefix + "/lstm_cell/kernel:0", f32(nrng, inputs, 4 * units)),
                (prefix + "/lstm_cell/recurrent_kernel:0", f32(nrng, units, 4 * units)),
                (prefix + "/lstm_cell/bias:0", f32(nrng, 4 * units))]
    nested = [("bidirectional", lstm("bidirectional/forward_lstm", 2, 3)
               + lstm("bidirectional/backward_lstm", 2, 3)),
              ("lstm", lstm("lstm", 2, 4))]
    with h5py.File(os.path.join(HERE, "nested.h5"), "w") as f:
        save_weights(f, nested)
    write_expected(os.path.join(HERE, "nested.npz"), nested)

    x = np.array([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=np.float32)
    np.savez(os.path.join(HERE, "expect.npz"), x=x,
             seq=sequential_forward(arrays(seq), x).astype(np.float32),
             weights=sequential_forward(arrays(seq2), x).astype(np.float32),
             func=functional_forward(arrays(func), x).astype(np.float32))

    # Broken files, each with one thing wrong.
    bad = sequential_weights(np.random.RandomState(1))
    with h5py.File(os.path.join(HERE, "bad_missing_group.h5"), "w") as f:
        save_weights(f, bad)
        del f["batch_normalization"]
    bad[0] = ("dense", [("dense/kernel:0", f32(rng, 3, 5)), ("dense/bias:0", f32(rng, 4))])
    with h5py.File(os.path.join(HERE, "bad_shape.h5"), "w") as f:
        save_weights(f, bad)
    bad[0] = ("dense", [("dense/kernel:0", np.zeros((3, 4), np.int32)),
                        ("dense/bias:0", f32(rng, 4))])
    with h5py.File(os.path.join(HERE, "bad_dtype.h5"), "w") as f:
        save_weights(f, bad)
    with h5py.File(os.path.join(HERE, "bad_no_names.h5"), "w") as f:
        f.create_group("dense")
    config = sequential_config()
    config["config"]["layers"][3]["class_name"] = "Dense2"
    with h5py.File(os.path.join(HERE, "bad_config.h5"), "w") as f:
        f.attrs["model_config"] = json.dumps(config).encode("utf8")

    # Hostile files: the kernel's name leads to a group; the kernel declared
    # (2^28, 4) float32 (4 GB) but never written, so the file stays small.
    hostile = sequential_weights(np.random.RandomState(2))
    with h5py.File(os.path.join(HERE, "bad_group.h5"), "w") as f:
        save_weights(f, hostile)
        del f["dense/dense/kernel:0"]
        f["dense"].create_group("dense/kernel:0")
    with h5py.File(os.path.join(HERE, "bad_huge.h5"), "w") as f:
        save_weights(f, hostile)
        del f["dense/dense/kernel:0"]
        f["dense"].create_dataset("dense/kernel:0", (1 << 28, 4), dtype=np.float32)


if __name__ == "__main__":
    main()
