#!/usr/bin/python3
"""gen.py - the reference numbers for tests/test_layers_act.c: LeakyReLU, ReLU,
ELU, PReLU, Rescaling and Reshape computed with PyTorch (float64 autograd), from
Keras's definitions, independently of nncc. Run it with Debian's python3-torch:

    /usr/bin/python3 tests/act/gen.py

It writes, for each case below, tests/act/NAME.yaml (the model, nncc's native
format) and tests/act/NAME.npz:
  x [N, ...input], dy [N, outputs]   the inputs and the output gradient
  y, dx                              the output, and d sum(y * dy) / d x
  T                                  each tensor's values (Keras's name and layout)
  grad.T@n                           d sum(y * dy) / d T over the first n samples
                                     for n in batches (int64), N the largest
Each model is an identity layer `feed` (a frozen Dense, or a 1x1 Conv2D for an
image), then the layers under test: nncc computes no gradient
for the model's input, and the feed leaves dx in its output gradient buffer.
Seeded from each case's name: the same torch and numpy give the same files.

Layouts: Keras's activations are NHWC, torch's NCHW. torch's PReLU weight is
one number per channel, its axis 1; Keras's alpha has the input's shape with 1
along the shared axes. So the input's unshared axes are moved to the front and
merged into torch's channel axis, the shared ones behind it: alpha flattened
(row-major, Keras's order) is then torch's weight.
"""
import os
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
N = 5
BATCHES = [1, 5]


def keras_relu(x, a):
    """Keras's backend.relu: F.threshold keeps x where x > threshold (0 at it),
    then the clip to max_value, then the slope below the threshold."""
    thr, slope, top = a.get("threshold", 0.0), a.get("negative_slope", 0.0), a.get("max_value")
    y = F.threshold(x, thr, 0.0)
    if top is not None:
        y = torch.clamp(y, 0.0, top)
    return y - slope * F.relu(thr - x)


def keras_prelu(x, alpha, shared):
    """F.prelu with Keras's alpha: unshared axes first, merged into one channel axis."""
    axes = list(range(1, x.dim()))
    kept = [i for i in axes if i not in shared]
    moved = x.permute([0] + kept + [i for i in axes if i in shared])
    channels = int(np.prod([x.shape[i] for i in kept]))
    y = F.prelu(moved.reshape(x.shape[0], channels, -1), alpha.reshape(-1))
    return y.reshape(moved.shape).permute(list(np.argsort([0] + kept + [i for i in axes if i in shared])))


def conv2d_valid(x, kernel, bias):
    """Keras's Conv2D (valid, stride 1): kernel [kh, kw, in, out], NHWC."""
    y = F.conv2d(x.permute(0, 3, 1, 2), kernel.permute(3, 2, 0, 1), bias)
    return y.permute(0, 2, 3, 1)


def prelu_alpha_shape(shape, a):
    shared = a.get("shared_axes") or []
    shared = shared if isinstance(shared, list) else [shared]
    return [1 if i + 1 in shared else d for i, d in enumerate(shape)], shared


# Each kind: (its Keras default name, its tensors for an input shape, its forward).
KINDS = {
    "LeakyReLU": ("leaky_re_lu", lambda s, a: {},
                  lambda x, a, p: F.leaky_relu(x, a.get("alpha", a.get("negative_slope", 0.3)))),
    "ReLU": ("re_lu", lambda s, a: {}, lambda x, a, p: keras_relu(x, a)),
    "ELU": ("elu", lambda s, a: {}, lambda x, a, p: F.elu(x, a.get("alpha", 1.0))),
    "PReLU": ("p_re_lu", lambda s, a: {"alpha": prelu_alpha_shape(s, a)[0]},
              lambda x, a, p: keras_prelu(x, p["alpha"], prelu_alpha_shape(x.shape[1:], a)[1])),
    "Rescaling": ("rescaling", lambda s, a: {},
                  lambda x, a, p: x * a["scale"] + a.get("offset", 0.0)),
    "Reshape": ("reshape", lambda s, a: {},
                lambda x, a, p: x.reshape([x.shape[0]] + a["target_shape"])),
    "Conv2D": ("conv2d", lambda s, a: {"kernel": [a["kernel_size"], a["kernel_size"], s[-1],
                                                  a["filters"]], "bias": [a["filters"]]},
               lambda x, a, p: conv2d_valid(x, p["kernel"], p["bias"])),
    "Flatten": ("flatten", lambda s, a: {}, lambda x, a, p: x.reshape(x.shape[0], -1)),
}

# name: (input shape, [(kind, Keras arguments)]).
CASES = {
    "leaky_relu_default": ([7], [("LeakyReLU", {})]),
    "leaky_relu_image": ([3, 4, 2], [("LeakyReLU", {"alpha": 0.05}), ("Flatten", {})]),
    "leaky_relu_keras3": ([6], [("LeakyReLU", {"negative_slope": 0.2})]),
    "relu_default": ([7], [("ReLU", {})]),
    "relu_max_value": ([3, 4, 2], [("ReLU", {"max_value": 0.5}), ("Flatten", {})]),
    "relu_all": ([9], [("ReLU", {"max_value": 0.8, "negative_slope": 0.1, "threshold": 0.2})]),
    "relu_slope": ([8], [("ReLU", {"negative_slope": 0.25})]),
    "relu_threshold_above_max": ([9], [("ReLU", {"max_value": 0.2, "negative_slope": 0.3,
                                                 "threshold": 0.5})]),
    "elu_default": ([7], [("ELU", {})]),
    "elu_alpha": ([3, 4, 2], [("ELU", {"alpha": 0.5}), ("Flatten", {})]),
    "prelu_flat": ([7], [("PReLU", {})]),
    "prelu_image": ([3, 4, 2], [("PReLU", {}), ("Flatten", {})]),
    "prelu_channels": ([3, 4, 3], [("PReLU", {"shared_axes": [1, 2]}), ("Flatten", {})]),
    "prelu_one": ([3, 4, 2], [("PReLU", {"shared_axes": [1, 2, 3]}), ("Flatten", {})]),
    "prelu_shared_channels": ([3, 4, 2], [("PReLU", {"shared_axes": 3}), ("Flatten", {})]),
    "prelu_shared_width": ([3, 4, 2], [("PReLU", {"shared_axes": [2]}), ("Flatten", {})]),
    "rescaling": ([3, 4, 2], [("Rescaling", {"scale": 0.5, "offset": -0.25}), ("Flatten", {})]),
    "rescaling_flat": ([6], [("Rescaling", {"scale": -3.0})]),
    "reshape_to_image": ([12], [("Reshape", {"target_shape": [-1, 3, 2]}),
                                ("Conv2D", {"filters": 2, "kernel_size": 2}), ("Flatten", {})]),
    "reshape_to_sequence": ([2, 3, 2], [("Reshape", {"target_shape": [6, 2]}),
                                        ("PReLU", {"shared_axes": [1]}), ("Flatten", {})]),
}


def flow(v):
    """A Python value as YAML flow text."""
    if isinstance(v, list):
        return "[" + ", ".join(flow(e) for e in v) + "]"
    return repr(v) if isinstance(v, float) else str(v)


def layer_yaml(kind, args):
    return "  - %s: {%s}\n" % (kind, ", ".join("%s: %s" % (k, flow(v)) for k, v in args.items()))


def feed(shape):
    """The identity: a frozen Dense for a vector, a frozen 1x1 Conv2D for an image."""
    c = shape[-1]
    eye = np.eye(c).astype(int).tolist()
    if len(shape) == 1:
        return "Dense", {"units": c, "use_bias": False, "trainable": False,
                         "weights": {"kernel": eye}}, np.eye(c)
    return "Conv2D", {"filters": c, "kernel_size": 1, "use_bias": False, "trainable": False,
                      "weights": {"kernel": [[eye]]}}, np.eye(c).reshape(1, 1, c, c)


def model_yaml(name, shape, layers):
    kind, args, _ = feed(shape)
    text = "# %s: written by tests/act/gen.py\nname: m\ninput_shape: %s\nlayers:\n" % (
        name, flow(shape))
    text += "  - %s: {name: feed, %s}\n" % (kind, ", ".join(
        "%s: %s" % (k, "{kernel: %s}" % flow(v["kernel"]) if k == "weights" else
                    ("false" if v is False else flow(v))) for k, v in args.items()))
    for kind, args in layers:
        text += layer_yaml(kind, args)
    return text + "compile: {optimizer: sgd, loss: mse}\n"


def f32(a):
    """What a fixture stores: float32, as nncc computes."""
    return np.asarray(a, dtype=np.float32)


def t64(a, grad=False):
    """The float32 numbers, exactly, as a float64 tensor for the reference."""
    return torch.tensor(f32(a).astype(np.float64), requires_grad=grad)


def build(shape, layers, rng, arrays):
    """Each layer's forward with its arguments and tensors, the tensors random
    and stored in arrays under Keras's LAYER.ROLE (default names, numbered per
    kind as Keras does); also the tensors by name and the output size."""
    built, named, counts, s = [], {}, {}, [1] + shape
    for kind, args in layers:
        default, tensors, forward = KINDS[kind]
        lname = default if kind not in counts else "%s_%d" % (default, counts[kind])
        counts[kind] = counts.get(kind, 0) + 1
        p = {}
        for role, tshape in tensors(s[1:], args).items():
            arrays[lname + "." + role] = f32(rng.uniform(-0.8, 0.8, tshape))
            p[role] = named[lname + "." + role] = t64(arrays[lname + "." + role], True)
        built.append((forward, args, p))
        s = list(forward(torch.zeros(s), args, p).shape)
    return built, named, int(np.prod(s[1:]))


def make_case(name, shape, layers):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    x = f32(rng.uniform(-1.5, 1.5, [N] + shape))
    arrays = {"x": x, "feed.kernel": f32(feed(shape)[2]), "batches": np.array(BATCHES)}
    built, named, out = build(shape, layers, rng, arrays)
    dy = arrays["dy"] = f32(rng.uniform(-1, 1, [N, out]))
    for n in BATCHES:
        h = xt = t64(x[:n], True)
        for t in named.values():
            t.grad = None
        for forward, args, p in built:
            h = forward(h, args, p)
        y = h.reshape(n, -1)
        (y * t64(dy[:n])).sum().backward()
        arrays["y"], arrays["dx"] = f32(y.detach().numpy()), f32(xt.grad.numpy())
        for key, t in named.items():
            arrays["grad.%s@%d" % (key, n)] = f32(t.grad.numpy())
    with open(os.path.join(HERE, name + ".yaml"), "w") as f:
        f.write(model_yaml(name, shape, layers))
    np.savez(os.path.join(HERE, name + ".npz"), **arrays)


if __name__ == "__main__":
    for name, (shape, layers) in CASES.items():
        make_case(name, shape, layers)
