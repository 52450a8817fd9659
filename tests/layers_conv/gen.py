#!/usr/bin/python3
"""Reference numbers for tests/test_layers_conv.c, from PyTorch (in float64).

    /usr/bin/python3 tests/layers_conv/gen.py     (needs python3-torch, python3-numpy)

writes tests/layers_conv/ref.npz and tests/layers_conv/cases.h. Each case is
one layer, in nncc's YAML and in PyTorch, at batch sizes 1 and 5: a random
input x, random weights in Keras's layouts, a random dy; the layer's output y,
and the gradients of sum(y * dy) with respect to x and every weight. The npz
holds CASE.x, CASE.dy, CASE.y, CASE.dx and, per tensor ROLE (kernel, bias,
depthwise_kernel, pointwise_kernel), CASE.ROLE and CASE.dROLE. cases.h lists
the cases for the test, so that the YAML has one source: this file.

How Keras maps onto PyTorch (NHWC <-> NCHW by permute):
- Conv2DTranspose: Keras's kernel [kh, kw, filters, in] is PyTorch's
  conv_transpose2d weight [in, filters, kh, kw] (permute 3, 2, 0, 1). Keras's
  output length is deconv_output_length: same, n * s; valid, n * s +
  max(k - s, 0). TensorFlow crops the full transposed output ((n - 1) * s + k)
  by the same padding of the convolution it transposes, which runs from the
  output length to n: total max((n - 1) * s + k - out, 0), the smaller half at
  the top/left; where the output is longer than the full one (valid, s > k),
  the rest is zeros (then the bias). PyTorch's own `padding` crops both sides
  alike, so it is not used: the full output is cropped here. The result is
  checked against the definition: the transpose (vector-Jacobian product) of
  a conv2d from the output's size to the input's with that padding.
- DepthwiseConv2D: conv2d with groups = in; Keras's kernel [kh, kw, in, dm] is
  the weight [in * dm, 1, kh, kw] (permute 2, 3, 0, 1, then reshape), since
  group c's outputs are c * dm + m, Keras's (TensorFlow's) order too. Same
  padding is TensorFlow's: total max((out - 1) * s + k - n, 0), the smaller
  half before, applied with F.pad.
- SeparableConv2D: that depthwise step (no bias), then conv2d 1x1 with the
  pointwise kernel [1, 1, in * dm, filters] as [filters, in * dm, 1, 1], plus
  the bias.
"""
import os

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
torch.set_default_dtype(torch.float64)

# name, input (H, W, C), layer class, its arguments (Keras's words)
CASES = [
    # height and width: total padding 1, all of it after
    ("transpose_same_s2", (3, 4, 8), "Conv2DTranspose",
     {"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}),
    # height: stride 3 beyond kernel 2, the last row of every 3 is the bias alone
    ("transpose_valid_rect", (3, 2, 2), "Conv2DTranspose",
     {"filters": 3, "kernel_size": [2, 3], "strides": [3, 1]}),
    # height: total 3 (1 before, 2 after); width: total 3 (1 before)
    ("transpose_same_odd_nobias", (2, 3, 5), "Conv2DTranspose",
     {"filters": 2, "kernel_size": [5, 4], "strides": [2, 1], "padding": "same",
      "use_bias": False}),
    # height: kernel 1, stride 2, same: every other row the bias alone
    ("transpose_same_k1", (2, 2, 4), "Conv2DTranspose",
     {"filters": 3, "kernel_size": [1, 3], "strides": 2, "padding": "same"}),
    # height: total 2 (1 before); width: total 1 (after)
    ("depthwise_same_s2", (5, 6, 3), "DepthwiseConv2D",
     {"kernel_size": 3, "strides": 2, "padding": "same"}),
    ("depthwise_valid_dm3", (4, 5, 2), "DepthwiseConv2D",
     {"kernel_size": [2, 3], "strides": [1, 2], "depth_multiplier": 3}),
    # height: total 3 (1 before, 2 after)
    ("depthwise_same_odd_nobias", (4, 4, 16), "DepthwiseConv2D",
     {"kernel_size": [4, 3], "padding": "same", "depth_multiplier": 2, "use_bias": False}),
    ("separable_same", (4, 5, 3), "SeparableConv2D",
     {"filters": 4, "kernel_size": 3, "padding": "same"}),
    ("separable_valid_dm2", (5, 6, 2), "SeparableConv2D",
     {"filters": 16, "kernel_size": [3, 2], "strides": 2, "depth_multiplier": 2}),
    ("separable_same_s2_nobias", (5, 5, 4), "SeparableConv2D",
     {"filters": 3, "kernel_size": [2, 4], "strides": [2, 1], "padding": "same",
      "use_bias": False}),
]
BATCHES = (1, 5)


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def args_of(a):
    """The arguments with Keras's defaults filled in."""
    return {"kernel": pair(a["kernel_size"]), "strides": pair(a.get("strides", 1)),
            "same": a.get("padding", "valid") == "same", "bias": a.get("use_bias", True),
            "dm": a.get("depth_multiplier", 1), "filters": a.get("filters")}


def conv_out(n, k, s, same):
    return (n + s - 1) // s if same else (n - k) // s + 1


def tf_pad(n, out, k, s):
    """TensorFlow's same padding (before, after) of a window k, stride s, from n to out."""
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def tf_conv2d(x, w, a, groups=1):
    """conv2d on NCHW as TensorFlow pads it; w is PyTorch's [out, in / groups, kh, kw]."""
    (kh, kw), (sh, sw) = a["kernel"], a["strides"]
    h, wd = x.shape[2], x.shape[3]
    if a["same"]:
        pt, pb = tf_pad(h, conv_out(h, kh, sh, True), kh, sh)
        pl, pr = tf_pad(wd, conv_out(wd, kw, sw, True), kw, sw)
        x = F.pad(x, (pl, pr, pt, pb))
    return F.conv2d(x, w, stride=(sh, sw), groups=groups)


def transpose_out(n, k, s, same):
    return n * s if same else n * s + max(k - s, 0)


def conv2d_transpose(x, kernel, a):
    """x NCHW, kernel in Keras's layout [kh, kw, filters, in]; output NCHW, no bias."""
    (kh, kw), (sh, sw) = a["kernel"], a["strides"]
    h, w = x.shape[2], x.shape[3]
    oh, ow = transpose_out(h, kh, sh, a["same"]), transpose_out(w, kw, sw, a["same"])
    pt = tf_pad(oh, h, kh, sh)[0] if a["same"] else 0
    pl = tf_pad(ow, w, kw, sw)[0] if a["same"] else 0
    full = F.conv_transpose2d(x, kernel.permute(3, 2, 0, 1), stride=(sh, sw))
    full = F.pad(full, (0, max(pl + ow - full.shape[3], 0), 0, max(pt + oh - full.shape[2], 0)))
    y = full[:, :, pt:pt + oh, pl:pl + ow]
    check_transpose(x, kernel, a, y)
    return y


def check_transpose(x, kernel, a, y):
    """y must be the transpose of TensorFlow's conv2d from y's size to x's."""
    z = torch.zeros(y.shape, requires_grad=True)
    conv = tf_conv2d(z, kernel.permute(3, 2, 0, 1).detach(), a)
    assert conv.shape == x.shape, (conv.shape, x.shape)
    (vjp,) = torch.autograd.grad((conv * x.detach()).sum(), z)
    assert torch.allclose(vjp, y.detach(), atol=1e-12), "conv2d_transpose against its definition"


def depthwise(x, kernel, a):
    """x NCHW, kernel in Keras's layout [kh, kw, in, dm]."""
    kh, kw, c, dm = kernel.shape
    w = kernel.permute(2, 3, 0, 1).reshape(c * dm, 1, kh, kw)
    return tf_conv2d(x, w, a, groups=c)


def forward(kind, x, t, a):
    """x NHWC, t the tensors by role; y NHWC."""
    xc = x.permute(0, 3, 1, 2)
    if kind == "Conv2DTranspose":
        y = conv2d_transpose(xc, t["kernel"], a)
    elif kind == "DepthwiseConv2D":
        y = depthwise(xc, t["depthwise_kernel"], a)
    else:
        y = F.conv2d(depthwise(xc, t["depthwise_kernel"], a),
                     t["pointwise_kernel"].permute(3, 2, 0, 1))
    if "bias" in t:
        y = y + t["bias"].view(1, -1, 1, 1)
    return y.permute(0, 2, 3, 1)


def tensor_shapes(kind, c, a):
    (kh, kw), f, dm = a["kernel"], a["filters"], a["dm"]
    if kind == "Conv2DTranspose":
        shapes = {"kernel": (kh, kw, f, c)}
    elif kind == "DepthwiseConv2D":
        shapes, f = {"depthwise_kernel": (kh, kw, c, dm)}, c * dm
    else:
        shapes = {"depthwise_kernel": (kh, kw, c, dm), "pointwise_kernel": (1, 1, c * dm, f)}
    if a["bias"]:
        shapes["bias"] = (f,)
    return shapes


def yaml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ", ".join(str(i) for i in v) + "]"
    return str(v)


def yaml_layer(kind, args):
    items = ", ".join(f"{k}: {yaml_value(v)}" for k, v in args.items())
    return f"{kind}: {{{items}, name: probe}}"


def make_case(rng, name, shape, kind, args, n, arrays):
    a = args_of(args)
    x = torch.tensor(rng.uniform(-1, 1, (n,) + shape), requires_grad=True)
    t = {role: torch.tensor(rng.uniform(-1, 1, s), requires_grad=True)
         for role, s in tensor_shapes(kind, shape[2], a).items()}
    y = forward(kind, x, t, a)
    dy = torch.tensor(rng.uniform(-1, 1, tuple(y.shape)))
    (y * dy).sum().backward()
    out = {"x": x, "dy": dy, "y": y, "dx": x.grad}
    for role, v in t.items():
        out[role], out["d" + role] = v, v.grad
    for key, v in out.items():
        arrays[f"{name}.{key}"] = v.detach().numpy().astype(np.float32)


def main():
    rng = np.random.default_rng(20240611)
    arrays, rows = {}, []
    for name, shape, kind, args in CASES:
        for n in BATCHES:
            case = f"{name}_n{n}"
            make_case(rng, case, shape, kind, args, n, arrays)
            rows.append(f'    {{"{case}", "[{shape[0]}, {shape[1]}, {shape[2]}]", {n},\n'
                        f'     "{yaml_layer(kind, args)}"}},\n')
    np.savez(os.path.join(HERE, "ref.npz"), **arrays)
    with open(os.path.join(HERE, "cases.h"), "w") as f:
        f.write("/* cases.h - written by tests/layers_conv/gen.py with ref.npz; do not edit.\n"
                " * Each case: its name in ref.npz, the input shape, the batch size, and the\n"
                " * layer (named probe) in nncc's YAML. */\n"
                "static const struct {\n"
                "    const char *name, *input_shape;\n"
                "    int n;\n"
                "    const char *layer;\n"
                "} ref_cases[] = {\n" + "".join(rows) + "};\n")


if __name__ == "__main__":
    main()
