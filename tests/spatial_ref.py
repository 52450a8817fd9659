#!/usr/bin/python3
"""spatial_ref.py - writes tests/spatial_ref.h, the reference numbers that
tests/test_layers_spatial.c checks ZeroPadding2D, Cropping2D, UpSampling2D and
GlobalMaxPooling2D against. Run it with Debian's python3-torch and numpy:

    /usr/bin/python3 tests/spatial_ref.py > tests/spatial_ref.h

Each case is a layer as Keras defines it (tf.keras 2.x), computed here with
PyTorch in float64 on NCHW tensors: F.pad for ZeroPadding2D, slicing for
Cropping2D, F.interpolate(mode='nearest') for UpSampling2D (checked against
repeat_interleave), amax over the image for GlobalMaxPooling2D. For every case:
x, N samples of the input (NHWC, as nncc and Keras hold it), dy, a random
gradient of the output, and the reference y and dx = d sum(y * dy) / dx by
autograd. The layers treat each sample alone, so a batch of n uses the first n.

GlobalMaxPooling2D on ties: torch.amax splits the gradient evenly between equal
maxima; TensorFlow (Keras) gives all of it to the first in row-major order, as
nncc's MaxPooling2D does. So dx is the gradient sent to the first argmax
(numpy's argmax returns the first), and the tie case checks that this agrees
with amax's gradient wherever a maximum is alone.
"""
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
N = 6   # samples per case; the test runs batches of 1, 5 and 6


def nchw(x):
    return x.permute(0, 3, 1, 2)


def nhwc(x):
    return x.permute(0, 2, 3, 1)


def edges(v):
    """Keras's padding / cropping forms -> (top, bottom, left, right)."""
    if isinstance(v, int):
        return (v, v, v, v)
    rows, cols = [(a, a) if isinstance(a, int) else tuple(a) for a in v]
    return rows + cols


def zero_padding(args):
    t, b, l, r = edges(args.get("padding", 1))
    return lambda x: nhwc(F.pad(nchw(x), (l, r, t, b)))


def cropping(args):
    t, b, l, r = edges(args.get("cropping", 0))
    return lambda x: x[:, t:x.shape[1] - b, l:x.shape[2] - r, :]


def up_sampling(args):
    size = args.get("size", 2)
    sh, sw = (size, size) if isinstance(size, int) else size

    def forward(x):
        y = nhwc(F.interpolate(nchw(x), scale_factor=(sh, sw), mode="nearest"))
        again = x.repeat_interleave(sh, dim=1).repeat_interleave(sw, dim=2)
        assert torch.equal(y, again)
        return y
    return forward


def global_max_pooling(args):
    return lambda x: x.amax(dim=(1, 2))


# name, input shape (H, W, C), Keras class, arguments, the forward, integer input (ties)
CASES = [
    ("zeropad_default", [3, 4, 2], "ZeroPadding2D", {}, zero_padding, False),
    ("zeropad_edges", [3, 4, 2], "ZeroPadding2D", {"padding": [[1, 2], [0, 3]]},
     zero_padding, False),
    ("zeropad_pair", [2, 3, 3], "ZeroPadding2D", {"padding": [2, 1]}, zero_padding, False),
    ("crop_edges", [6, 7, 2], "Cropping2D", {"cropping": [[1, 2], [2, 0]]}, cropping, False),
    ("crop_int", [5, 5, 3], "Cropping2D", {"cropping": 1}, cropping, False),
    ("crop_mixed", [4, 6, 1], "Cropping2D", {"cropping": [0, [1, 3]]}, cropping, False),
    ("crop_default", [3, 4, 2], "Cropping2D", {}, cropping, False),
    ("upsample_default", [3, 4, 2], "UpSampling2D", {}, up_sampling, False),
    ("upsample_rect", [2, 3, 3], "UpSampling2D", {"size": [3, 2]}, up_sampling, False),
    ("upsample_one", [3, 2, 5], "UpSampling2D", {"size": [1, 4]}, up_sampling, False),
    ("gmp", [3, 4, 5], "GlobalMaxPooling2D", {}, global_max_pooling, False),
    ("gmp_ties", [3, 3, 4], "GlobalMaxPooling2D", {}, global_max_pooling, True),
]


def flow(v):
    if isinstance(v, list):
        return "[" + ", ".join(flow(e) for e in v) + "]"
    return str(v)


def c_array(name, a):
    values = np.asarray(a, dtype=np.float32).ravel()
    body = ",".join(("\n    " if i % 8 == 0 else " ") + "%.9g" % v for i, v in enumerate(values))
    return "static const float %s[%d] = {%s\n};\n" % (name, len(values), body)


def first_argmax_dx(x, dy):
    """dy sent, per sample and channel, to the first maximum in row-major order."""
    n, h, w, c = x.shape
    flat = x.reshape(n, h * w, c)
    first = flat.argmax(axis=1)            # numpy: the first occurrence
    dx = np.zeros_like(flat)
    for s in range(n):
        dx[s, first[s], np.arange(c)] = dy[s]
    return dx.reshape(x.shape)


def case(name, shape, kind, args, make, ties):
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    if ties:
        x = rng.integers(0, 3, [N] + shape).astype(np.float32)
    else:
        x = rng.uniform(-1, 1, [N] + shape).astype(np.float32)
    xt = torch.tensor(x.astype(np.float64), requires_grad=True)
    y = make(args)(xt)
    dy = rng.uniform(-1, 1, y.shape).astype(np.float32)
    (y * torch.tensor(dy.astype(np.float64))).sum().backward()
    dx = xt.grad.numpy()
    if kind == "GlobalMaxPooling2D":
        alone = (x == x.max(axis=(1, 2), keepdims=True)).sum(axis=(1, 2), keepdims=True) == 1
        first = first_argmax_dx(x.astype(np.float64), dy.astype(np.float64))
        assert np.array_equal(np.where(alone, dx, 0), np.where(alone, first, 0)), name
        assert ties == (not alone.all()), name
        dx = first
    out_shape = list(y.shape[1:])
    yaml = "%s: {%sname: probe}" % (kind, "".join("%s: %s, " % (k, flow(v))
                                                  for k, v in args.items()))
    return ("/* %s: input %s -> output %s */\n"
            "#define %s_YAML \"%s\"\n"
            "#define %s_SHAPE \"%s\"\n"
            "enum { %s_IN = %d, %s_OUT = %d };\n" %
            (name, shape, out_shape, name, yaml, name, flow(shape), name,
             int(np.prod(shape)), name, int(np.prod(out_shape))) +
            c_array(name + "_x", x) + c_array(name + "_dy", dy) +
            c_array(name + "_y", y.detach().numpy()) + c_array(name + "_dx", dx))


def main():
    print("/* spatial_ref.h - written by tests/spatial_ref.py (torch %s, numpy %s);\n"
          " * do not edit. N = %d samples per case, NHWC. */\n"
          "enum { REF_N = %d };\n" % (torch.__version__, np.__version__, N, N))
    for c in CASES:
        print(case(*c))


if __name__ == "__main__":
    main()
