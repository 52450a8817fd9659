#!/usr/bin/python3
"""gen.py - writes the reference fixtures that tests/test_ref.c checks nncc against,
as llm.c checks its C against PyTorch.

What it is for: every layer kind, activation, loss and optimizer that nncc has is
computed here independently, with PyTorch (autograd in float64) or, where PyTorch's
rule is not Keras's, with Keras's published formula in numpy/torch; the numbers go
into small committed fixtures, so `make test` needs no Python. Run it with
`make fixtures` (Debian's python3-torch and python3-numpy; /usr/bin/python3).
Seeded from each fixture's name: the same torch and numpy give the same files.

Each fixture is tests/ref/NAME.npz plus the model it is about, tests/ref/NAME.yaml
(nncc's native format). tests/ref/driver.c treats a fixture by the arrays it holds:
  layer     x [13, ...input], dy [13, outputs]; every tensor by its Keras name
            (LAYER.kernel, ...: the initial weights, Keras layouts); y, dx (per
            sample: batch size n uses the first n) or y@n, dx@n where the batch
            changes them (BatchNormalization); grad.TENSOR@n for every trainable
            tensor; after.TENSOR@n for a statistic a training forward moves.
            batch_sizes [int]: the n to run.
  loss      loss.out (the model's output: logits where the loss is fused), loss.y,
            loss.value (the batch mean), loss.dout (d loss.value / d loss.out).
  optimizer TENSOR (initial), opt.grad<s>.TENSOR and opt.after<s>.TENSOR for
            steps s = 1, 2, 3.
A layer fixture's model is: an identity `feed` layer (Dense, on a vector or on a
sequence's last axis, or a 1x1 Conv2D for an image), the layer under test named
`probe`, and Flatten where it ends in an image or a sequence (nncc wants a flat
output). nncc computes no gradient for the model's input, so dx is the gradient of sum(y * dy) with respect to the probe's input,
which nncc leaves in feed's output-gradient buffer (feed_dout); the feed's kernel
gradient, x^T dx, is checked too.
A graph fixture (GRAPHS) is the same with a Graph after feed instead of the one
probe: named nodes (name, Layer, inputs) whose inputs name earlier nodes, `feed`
or `input` (a layer fixture is the one-node Graph "probe"). Where several nodes
read feed, dx is the sum of their gradients (autograd's, nncc's summed buffer);
every node's tensors are stored and checked by their Keras names, NODE.kernel.

How to add a fixture: one line in LAYERS, GRAPHS, LOSSES or OPTIMIZERS below,
then `make fixtures`. A new layer kind needs a class like Dense below (its Keras
arguments, its weights, its forward in torch; a merge's forward takes the list of
its inputs); test_ref.c and driver.c need nothing.

Layouts: Keras's Dense kernel is [in, out]: torch's F.linear wants [out, in], so
it gets kernel.T. Keras's Conv2D kernel is [kh, kw, in, filters] and its
activations NHWC: torch gets kernel.permute(3, 2, 0, 1) ([filters, in, kh, kw])
and x.permute(0, 3, 1, 2) (NCHW), and its output goes back with permute(0, 2, 3, 1).
TensorFlow's 'same' padding puts the odd pixel after (bottom, right): F.pad pads
explicitly, never torch's symmetric padding argument. A sequence is [N, T, F]
(steps, then features): torch's 1-D ops get x.permute(0, 2, 1) ([N, F, T]) and
Keras's Conv1D kernel [k, in, filters] as permute(2, 1, 0) ([filters, in, k]).
"""
import functools
import os
import sys
import zlib

import numpy as np
import torch
import torch.nn.functional as F

torch.set_default_dtype(torch.float64)
HERE = os.path.dirname(os.path.abspath(__file__))
N = 13                       # samples in a fixture
BATCHES = [1, 5, 6, 7, 13]   # the batch sizes the driver runs: around nncc's 6-row tiles


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def f32(a):
    """What a fixture stores: float32, as nncc computes."""
    return np.asarray(a, dtype=np.float32)


def t64(a, grad=False):
    """The float32 numbers, exactly, as a float64 tensor for the reference."""
    return torch.tensor(np.asarray(a, dtype=np.float32).astype(np.float64), requires_grad=grad)


def flow(v):
    """A Python value as YAML flow text."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(flow(e) for e in v) + "]"
    if isinstance(v, np.ndarray):
        return flow(v.tolist())
    if isinstance(v, dict):
        return "{" + ", ".join("%s: %s" % (k, flow(e)) for k, e in v.items()) + "}"
    if isinstance(v, float):
        return repr(v)
    return str(v)


def yaml_layer(kind, args):
    return "%s: {%s}" % (kind, ", ".join("%s: %s" % (k, flow(v)) for k, v in args.items()))


# ---- activations, Keras's definitions (tf.keras 2.x) ----------------------------------
ACTIVATIONS = {
    "linear": lambda z: z,
    "relu": F.relu,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "softmax": lambda z: F.softmax(z, dim=-1),
    "elu": F.elu,                                    # alpha 1
    "selu": F.selu,                                  # the same constants as Keras
    "softplus": F.softplus,                          # torch's linear tail starts at 20
    "softsign": F.softsign,
    "swish": F.silu,                                 # z * sigmoid(z)
    "gelu": lambda z: F.gelu(z, approximate="none"),  # Keras 2.x: approximate=False
    "hard_sigmoid": lambda z: torch.clamp(0.2 * z + 0.5, 0.0, 1.0),  # tf.keras 2.x's
}


def nhwc_to_nchw(x):
    return x.permute(0, 3, 1, 2)


def nchw_to_nhwc(x):
    return x.permute(0, 2, 3, 1)


def tf_same_pad(size, k, s):
    """TensorFlow's 'same': output ceil(size / s), padding split with the extra after."""
    out = (size + s - 1) // s
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def pair(v):
    return list(v) if isinstance(v, (list, tuple)) else [v, v]


# ---- layers: Keras arguments -> YAML, weights and a torch forward ------------------------
class Layer:
    kind = None
    batch_coupled = False          # outputs depend on the other samples (batch statistics)
    merge = False                  # forward takes the list of its inputs

    def __init__(self, **args):
        self.args = args

    def yaml(self, name, inputs=None):
        args = dict(self.args, name=name)
        if inputs is not None:
            args["inputs"] = list(inputs)
        return yaml_layer(self.kind, args)

    def weights(self, in_shape, rng):
        return {}

    def trainable(self, name):
        return True

    def activation(self, y):
        return ACTIVATIONS[self.args.get("activation", "linear")](y)

    def sample(self, rng, shape):
        return rng.uniform(-1, 1, shape)


class Dense(Layer):
    kind = "Dense"

    def weights(self, in_shape, rng):
        units, fan_in = self.args["units"], in_shape[-1]
        w = {"kernel": rng.uniform(-1, 1, (fan_in, units)) * np.sqrt(3.0 / fan_in)}
        if self.args.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, units)
        return w

    def forward(self, x, w, training):
        return self.activation(F.linear(x, w["kernel"].T, w.get("bias")))   # kernel [in, out]


class Conv2D(Layer):
    kind = "Conv2D"
    kernel_axes = "hwcf"           # Keras's kernel layout: kh, kw, in (c), filters (f)

    def weights(self, in_shape, rng):
        kh, kw = pair(self.args["kernel_size"])
        c, f = in_shape[-1], self.args["filters"]
        shape = [dict(h=kh, w=kw, c=c, f=f)[a] for a in self.kernel_axes]
        w = {"kernel": rng.uniform(-1, 1, shape) * np.sqrt(3.0 / (kh * kw * c))}
        if self.args.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, f)
        return w

    def forward(self, x, w, training):
        kh, kw = pair(self.args["kernel_size"])
        sh, sw = pair(self.args.get("strides", 1))
        x = nhwc_to_nchw(x)
        if self.args.get("padding", "valid") == "same":
            t, b = tf_same_pad(x.shape[2], kh, sh)
            l, r = tf_same_pad(x.shape[3], kw, sw)
            x = F.pad(x, (l, r, t, b))
        k = w["kernel"].permute(3, 2, 0, 1).contiguous()    # [kh,kw,in,f] -> [f,in,kh,kw]
        return self.activation(nchw_to_nhwc(F.conv2d(x, k, w.get("bias"), stride=(sh, sw))))


class Pool2D(Layer):
    def window(self):
        k = pair(self.args.get("pool_size", 2))
        s = pair(self.args.get("strides", self.args.get("pool_size", 2)))
        return k, s

    def pads(self, x, k, s):
        if self.args.get("padding", "valid") != "same":
            return (0, 0, 0, 0)
        t, b = tf_same_pad(x.shape[2], k[0], s[0])
        l, r = tf_same_pad(x.shape[3], k[1], s[1])
        return (l, r, t, b)


class MaxPooling2D(Pool2D):
    kind = "MaxPooling2D"

    def forward(self, x, w, training):
        k, s = self.window()
        x = nhwc_to_nchw(x)
        x = F.pad(x, self.pads(x, k, s), value=-float("inf"))   # TF never picks padding
        return nchw_to_nhwc(F.max_pool2d(x, k, s))


class AveragePooling2D(Pool2D):
    kind = "AveragePooling2D"

    def forward(self, x, w, training):
        # TF averages over the window's cells inside the image: sum of zero-padded x
        # divided by the count of real cells.
        k, s = self.window()
        x = nhwc_to_nchw(x)
        pads = self.pads(x, k, s)
        total = F.avg_pool2d(F.pad(x, pads), k, s) * (k[0] * k[1])
        cells = F.avg_pool2d(F.pad(torch.ones_like(x[:1, :1]), pads), k, s) * (k[0] * k[1])
        return nchw_to_nhwc(total / cells)


class GlobalAveragePooling2D(Layer):
    kind = "GlobalAveragePooling2D"

    def forward(self, x, w, training):
        return x.mean(dim=(1, 2))


def edges(v):
    """Keras's padding / cropping, n, [rows, columns] or [[top, bottom], [left, right]]
    (an axis an int or a pair), as (top, bottom, left, right)."""
    if isinstance(v, int):
        return (v, v, v, v)
    rows, cols = [(a, a) if isinstance(a, int) else tuple(a) for a in v]
    return rows + cols


class ZeroPadding2D(Layer):
    kind = "ZeroPadding2D"

    def forward(self, x, w, training):
        t, b, l, r = edges(self.args.get("padding", 1))
        return nchw_to_nhwc(F.pad(nhwc_to_nchw(x), (l, r, t, b)))


class Cropping2D(Layer):
    kind = "Cropping2D"

    def forward(self, x, w, training):
        t, b, l, r = edges(self.args.get("cropping", 0))
        return x[:, t:x.shape[1] - b, l:x.shape[2] - r, :]


class UpSampling2D(Layer):
    kind = "UpSampling2D"

    def forward(self, x, w, training):
        sh, sw = pair(self.args.get("size", 2))
        y = F.interpolate(nhwc_to_nchw(x), scale_factor=(sh, sw), mode="nearest")
        return nchw_to_nhwc(y)


class GlobalMaxPooling2D(Layer):
    """TensorFlow gives a tie's gradient to the first maximum in row-major order;
    torch's amax would split it. So the maximum is gathered at torch.argmax, which
    returns the first maximal index: autograd then sends the gradient there."""
    kind = "GlobalMaxPooling2D"

    def forward(self, x, w, training):
        flat = x.flatten(1, 2)
        return flat.gather(1, flat.argmax(dim=1, keepdim=True)).squeeze(1)


class Ties(GlobalMaxPooling2D):
    """Inputs 0, 1 or 2 (feed passes them as they are): ties everywhere."""

    def sample(self, rng, shape):
        return rng.integers(0, 3, shape)


class Dropout(Layer):
    kind = "Dropout"

    def forward(self, x, w, training):
        assert self.args["rate"] == 0, "only rate 0 is deterministic"
        return x


class BatchNormalization(Layer):
    """Keras's BatchNormalization in training mode: normalised with the batch's mean
    and biased variance; the moving statistics move by
    moving = moving * momentum + batch * (1 - momentum) (torch's momentum is
    1 - Keras's). Keras runs an image (4-D input) through TF's fused kernel,
    which moves the variance by the unbiased batch variance; a vector (2-D
    input) goes through tf.nn.moments, the biased one."""
    kind = "BatchNormalization"
    batch_coupled = True

    def weights(self, in_shape, rng):
        c = in_shape[-1]
        return {"gamma": rng.uniform(0.5, 1.5, c), "beta": rng.uniform(-0.5, 0.5, c),
                "moving_mean": rng.uniform(-0.5, 0.5, c),
                "moving_variance": rng.uniform(0.5, 1.5, c)}

    def trainable(self, name):
        return name in ("gamma", "beta")

    def forward(self, x, w, training):
        mom = self.args.get("momentum", 0.99)
        eps = self.args.get("epsilon", 1e-3)
        axes = tuple(range(x.dim() - 1))
        count = int(np.prod([x.shape[a] for a in axes]))
        mean = x.mean(dim=axes)
        var = ((x - mean) ** 2).mean(dim=axes)
        if count > 1:   # torch's own batch norm, where it accepts the batch
            c = x.shape[-1]
            y = F.batch_norm(x.reshape(-1, c), None, None, w["gamma"], w["beta"],
                             training=True, eps=eps).reshape(x.shape)
        else:
            y = (x - mean) / torch.sqrt(var + eps) * w["gamma"] + w["beta"]
        batch_var = var * count / (count - 1) if x.dim() == 4 else var
        updates = {"moving_mean": w["moving_mean"] * mom + mean.detach() * (1 - mom),
                   "moving_variance": w["moving_variance"] * mom + batch_var.detach() * (1 - mom)}
        return y, updates


class Activation(Layer):
    kind = "Activation"

    def forward(self, x, w, training):
        return self.activation(x)


# ---- merge layers: forward(xs, ...) gets the list of their inputs --------------------------
class Merge(Layer):
    """A layer of several inputs; an elementwise one folds its op over them, left to right."""
    merge = True
    op = None

    def forward(self, xs, w, training):
        return functools.reduce(self.op, xs)


class Add(Merge):
    kind, op = "Add", torch.add


class Subtract(Merge):
    kind, op = "Subtract", torch.sub   # two inputs: a - b


class Multiply(Merge):
    kind, op = "Multiply", torch.mul


class Average(Merge):
    kind, op = "Average", torch.add

    def forward(self, xs, w, training):
        return super().forward(xs, w, training) / len(xs)


class Maximum(Merge):
    """On a tie nncc gives the whole gradient to the first input that holds the
    maximum (TensorFlow's rule: Keras chains maximum(a, b), whose gradient goes
    to a when a >= b), while torch.maximum splits it between the tied inputs.
    The fixtures' inputs are random floats from different branches: no ties."""
    kind, op = "Maximum", torch.maximum


class Concatenate(Merge):
    """Keras's axis counts the batch (axis 1 is a sample's first), as torch's does
    on these NHWC tensors: the same number, negative or not."""
    kind = "Concatenate"

    def forward(self, xs, w, training):
        return torch.cat(xs, dim=self.args.get("axis", -1))


class Graph:
    """The layers after feed: nodes (name, Layer) or (name, Layer, inputs), in order.
    inputs names earlier nodes, `feed` or `input` (the model's input, which is x
    as feed's output is, but no gradient of it is checked); without it a node reads
    the node before it (feed for the first), as in a plain stack: a one-node Graph
    named probe is a layer fixture. The last node is the model's output (Flatten
    follows it where it is an image). A merge's forward gets the list of its inputs.
    batches: the batch sizes to store, where BATCHES would make the file too big."""

    def __init__(self, *nodes, batches=BATCHES):
        self.batches = batches
        self.nodes = [(node[0], node[1], node[2] if len(node) > 2 else None) for node in nodes]
        names = ["input", "feed"]
        for node, layer, inputs in self.nodes:
            assert node.isidentifier() and node not in names, node
            assert all(i in names for i in inputs or []), (node, inputs)
            assert (inputs is not None and len(inputs) >= 2) == layer.merge, node
            names.append(node)

    def batch_coupled(self):
        return any(layer.batch_coupled for _, layer, _ in self.nodes)

    def forward(self, x, h, w, training, rng=None, made=None):
        """x: the model's input; h: feed's output; w: {node: {tensor: tensor}}.
        Returns the last node's output and {"node.tensor": moved statistic}. With
        rng, first draws each node's weights for its input's shape into made (float32)
        and w."""
        values = {"input": x, "feed": h}
        prev, updates = "feed", {}
        for node, layer, inputs in self.nodes:
            xs = [values[i] for i in inputs or [prev]]
            if rng is not None:
                made[node] = {k: f32(v) for k, v in
                              layer.weights(list(xs[0].shape[1:]), rng).items()}
                w[node] = {k: t64(v) for k, v in made[node].items()}
            out = layer.forward(xs if layer.merge else xs[0], w[node], training)
            if isinstance(out, tuple):
                out, moved = out
                updates.update({"%s.%s" % (node, k): v for k, v in moved.items()})
            values[node] = out
            prev = node
        return out, updates

    def weights(self, x1, rng):
        """Every node's weights, drawn in order from rng: {node: {tensor: float32 array}}."""
        made = {}
        with torch.no_grad():
            self.forward(x1, x1, {}, True, rng, made)
        return made

    def yaml(self, x1, weights):
        """The nodes' YAML lines, and Flatten where the output is an image (nncc wants
        a flat output)."""
        lines = [layer.yaml(node, inputs) for node, layer, inputs in self.nodes]
        with torch.no_grad():
            out, _ = self.forward(x1, x1, {n: {k: t64(v) for k, v in w.items()}
                                           for n, w in weights.items()}, True)
        return lines + ["Flatten"] * (out.dim() > 2)


# ---- activation layers with arguments, Rescaling, Reshape (tf.keras 2.x) -------------------
class LeakyReLU(Layer):
    """Keras 2's alpha or Keras 3's negative_slope, 0.3 by default."""
    kind = "LeakyReLU"

    def forward(self, x, w, training):
        return F.leaky_relu(x, self.args.get("alpha", self.args.get("negative_slope", 0.3)))


class ReLU(Layer):
    """Keras's backend.relu, which the formula in its documentation rounds off at
    the edges: x where x > threshold, else 0 (F.threshold: 0 at the threshold
    itself), clipped to max_value, minus negative_slope * relu(threshold - x)
    (so between max_value and a higher threshold: that slope, not max_value)."""
    kind = "ReLU"

    def forward(self, x, w, training):
        thr = self.args.get("threshold", 0.0)
        y = F.threshold(x, thr, 0.0)
        if self.args.get("max_value") is not None:
            y = torch.clamp(y, 0.0, self.args["max_value"])
        return y - self.args.get("negative_slope", 0.0) * F.relu(thr - x)


class ELU(Layer):
    kind = "ELU"

    def forward(self, x, w, training):
        return F.elu(x, self.args.get("alpha", 1.0))


class PReLU(Layer):
    """Keras's alpha has the input's shape with 1 along shared_axes (the batch is
    axis 0). torch's F.prelu takes one weight per channel, its axis 1: the
    unshared axes go to the front, merged into that axis, the shared ones behind
    it, so that alpha flattened (row-major, Keras's order) is torch's weight."""
    kind = "PReLU"

    def shared(self):
        s = self.args.get("shared_axes") or []
        return s if isinstance(s, list) else [s]

    def weights(self, in_shape, rng):
        # Keras starts alpha at zeros; values of both signs test more.
        return {"alpha": rng.uniform(-0.8, 0.8, [1 if i + 1 in self.shared() else d
                                                 for i, d in enumerate(in_shape)])}

    def forward(self, x, w, training):
        axes = list(range(1, x.dim()))
        kept = [i for i in axes if i not in self.shared()]
        order = [0] + kept + [i for i in axes if i in self.shared()]
        moved = x.permute(order)
        channels = int(np.prod([x.shape[i] for i in kept]))
        y = F.prelu(moved.reshape(x.shape[0], channels, -1), w["alpha"].reshape(-1))
        return y.reshape(moved.shape).permute(list(np.argsort(order)))


class Rescaling(Layer):
    kind = "Rescaling"

    def forward(self, x, w, training):
        return x * self.args["scale"] + self.args.get("offset", 0.0)


class Lambda(Layer):
    """Keras's Lambda as nncc takes it, an expression of x: evaluated here by
    torch on the same text (numbers, + - * / ** and tanh/exp, Python's
    precedence), so the gradient is torch's autograd, not nncc's derivative."""
    kind = "Lambda"

    def forward(self, x, w, training):
        return eval(self.args["expression"], {"__builtins__": {}},
                    {"x": x, "tanh": torch.tanh, "exp": torch.exp})


class Reshape(Layer):
    """Row-major, as Keras's: NHWC stays NHWC."""
    kind = "Reshape"

    def forward(self, x, w, training):
        return x.reshape([x.shape[0]] + self.args["target_shape"])


# ---- recurrent layers: torch's nn.RNN, nn.LSTM and nn.GRU on Keras's weights -------------
# Keras's kernel [F, G] and recurrent_kernel [U, G] are torch's weight_ih_l0 and
# weight_hh_l0 transposed ([G, F], [G, U]). Gate order: torch's LSTM gates i, f, g, o
# are Keras's i, f, c, o, as they are; torch's GRU gates r, z, n are Keras's z, r, h
# with the first two blocks swapped (keras_to_torch_gru). Biases: Keras's LSTM and
# SimpleRNN have one, torch's b_ih (b_hh is 0); Keras's GRU with reset_after has two
# rows, the input's and the recurrent's, which are torch's b_ih and b_hh: torch's
# n = tanh(W_in x + b_in + r (W_hn h + b_hn)) is Keras's reset_after h gate.
# go_backwards: torch runs x flipped in time, and its outputs stay in that order (Keras's).
def keras_to_torch_gru(a):
    """Columns (last axis) z, r, h -> torch's r, z, n."""
    u = a.shape[-1] // 3
    return torch.cat([a[..., u:2 * u], a[..., :u], a[..., 2 * u:]], dim=-1)


class Recurrent(Layer):
    gates = 1

    def weights(self, in_shape, rng):
        f, u = in_shape[-1], self.args["units"]
        g = self.gates * u
        w = {"kernel": rng.uniform(-1, 1, (f, g)) * np.sqrt(3.0 / f),
             "recurrent_kernel": rng.uniform(-1, 1, (u, g)) * np.sqrt(3.0 / u)}
        if self.args.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, self.bias_shape(g))
        return w

    def bias_shape(self, g):
        return [g]

    def torch_params(self, w):
        u = self.args["units"]
        zero = torch.zeros(self.gates * u)
        return {"weight_ih_l0": w["kernel"].T, "weight_hh_l0": w["recurrent_kernel"].T,
                "bias_ih_l0": w.get("bias", zero), "bias_hh_l0": zero}

    def forward(self, x, w, training):
        """torch.nn.LSTM's (GRU's, RNN's) own kernel, called as the module calls it, with
        these weights as its flat parameter list (so that autograd reaches them)."""
        p = self.torch_params(w)
        params = [p["weight_ih_l0"], p["weight_hh_l0"], p["bias_ih_l0"], p["bias_hh_l0"]]
        if self.args.get("go_backwards", False):
            x = torch.flip(x, [1])
        h0 = torch.zeros(1, x.shape[0], self.args["units"])
        y = self.run(x, h0, params)
        return y if self.args.get("return_sequences", False) else y[:, -1]


class SimpleRNN(Recurrent):
    kind = "SimpleRNN"

    def run(self, x, h0, params):
        rnn = {"tanh": torch._VF.rnn_tanh, "relu": torch._VF.rnn_relu}
        return rnn[self.args.get("activation", "tanh")](x, h0, params, True, 1, 0.0, True,
                                                        False, True)[0]


class LSTM(Recurrent):
    kind = "LSTM"
    gates = 4

    def run(self, x, h0, params):
        return torch._VF.lstm(x, (h0, h0), params, True, 1, 0.0, True, False, True)[0]


class GRU(Recurrent):
    kind = "GRU"
    gates = 3

    def run(self, x, h0, params):
        return torch._VF.gru(x, h0, params, True, 1, 0.0, True, False, True)[0]

    def bias_shape(self, g):
        return [2, g]

    def torch_params(self, w):
        u = self.args["units"]
        b = w.get("bias", torch.zeros(2, 3 * u))
        return {"weight_ih_l0": keras_to_torch_gru(w["kernel"]).T,
                "weight_hh_l0": keras_to_torch_gru(w["recurrent_kernel"]).T,
                "bias_ih_l0": keras_to_torch_gru(b[0]), "bias_hh_l0": keras_to_torch_gru(b[1])}


class Bidirectional(Layer):
    """Keras's Bidirectional: the wrapped layer (`layer`, a Recurrent) forwards and a
    copy with go_backwards flipped, weights forward_NAME.* and backward_NAME.*; the
    backward one's output steps reversed (return_sequences), then merged."""
    kind = "Bidirectional"

    def yaml(self, name, inputs=None):
        inner = self.args["layer"]
        text = "Bidirectional: {layer: {%s: {%s}}, merge_mode: %s, name: %s}" % (
            inner.kind, ", ".join("%s: %s" % (k, flow(v)) for k, v in inner.args.items()),
            self.args.get("merge_mode", "concat"), name)
        assert inputs is None
        return text

    def directions(self):
        inner = self.args["layer"]
        backward = type(inner)(**dict(inner.args,
                                      go_backwards=not inner.args.get("go_backwards", False)))
        name = inner.kind.lower() if inner.kind != "SimpleRNN" else "simple_rnn"
        return [("forward_" + name, inner), ("backward_" + name, backward)]

    def weights(self, in_shape, rng):
        return {"%s.%s" % (d, k): v for d, layer in self.directions()
                for k, v in layer.weights(in_shape, rng).items()}

    def forward(self, x, w, training):
        (fname, fw), (bname, bw) = self.directions()
        f = fw.forward(x, {k[len(fname) + 1:]: v for k, v in w.items()
                           if k.startswith(fname + ".")}, training)
        b = bw.forward(x, {k[len(bname) + 1:]: v for k, v in w.items()
                           if k.startswith(bname + ".")}, training)
        if self.args["layer"].args.get("return_sequences", False):
            b = torch.flip(b, [1])
        mode = self.args.get("merge_mode", "concat")
        return {"concat": lambda: torch.cat([f, b], dim=-1), "sum": lambda: f + b,
                "ave": lambda: (f + b) / 2, "mul": lambda: f * b}[mode]()


def tf_conv2d(x, k, args, groups=1):
    """conv2d on NCHW x with torch's weight k, TensorFlow's padding and strides."""
    kh, kw = k.shape[2], k.shape[3]
    sh, sw = pair(args.get("strides", 1))
    if args.get("padding", "valid") == "same":
        t, b = tf_same_pad(x.shape[2], kh, sh)
        l, r = tf_same_pad(x.shape[3], kw, sw)
        x = F.pad(x, (l, r, t, b))
    return F.conv2d(x, k, stride=(sh, sw), groups=groups)


def with_bias(y, w):
    """NCHW y plus the bias over its channels, if the layer has one."""
    return y + w["bias"].view(1, -1, 1, 1) if "bias" in w else y


class Conv2DTranspose(Conv2D):
    """TensorFlow's conv2d_transpose: the transpose of conv2d from the output's size
    to the input's. Keras's kernel [kh, kw, filters, in], permuted (3, 2, 0, 1), is
    torch's conv_transpose2d weight [in, filters, kh, kw]. Keras's output length (deconv_output_length, no output_padding): same,
    n * s; valid, n * s + max(k - s, 0). TF crops torch's full output ((n - 1) * s
    + k) at the top/left by the 'same' padding of the convolution it transposes,
    from the output's length to n (tf_same_pad of the output), the rest at the
    bottom/right; where the output is longer (valid, s > k) the rest is zeros.
    torch's symmetric padding argument is not TF's, so the full output is cropped
    here; and checked against the definition, the vector-Jacobian product of that
    conv2d, so that the cropping is not merely believed."""
    kind = "Conv2DTranspose"
    kernel_axes = "hwfc"

    def forward(self, x, w, training):
        same = self.args.get("padding", "valid") == "same"
        x = nhwc_to_nchw(x)
        k = w["kernel"].permute(3, 2, 0, 1)
        out, crop = [], []
        for n, kk, s in zip(x.shape[2:], k.shape[2:], pair(self.args.get("strides", 1))):
            out.append(n * s if same else n * s + max(kk - s, 0))
            crop.append(tf_same_pad(out[-1], kk, s)[0] if same else 0)
        full = F.conv_transpose2d(x, k, stride=pair(self.args.get("strides", 1)))
        full = F.pad(full, (0, max(crop[1] + out[1] - full.shape[3], 0),
                            0, max(crop[0] + out[0] - full.shape[2], 0)))
        y = full[:, :, crop[0]:crop[0] + out[0], crop[1]:crop[1] + out[1]]
        with torch.enable_grad():   # also where the graph runs without autograd
            z = torch.zeros(y.shape, requires_grad=True)
            conv = tf_conv2d(z, k.detach(), self.args)
            (vjp,) = torch.autograd.grad((conv * x.detach()).sum(), z)
        assert conv.shape == x.shape and torch.allclose(vjp, y.detach(), atol=1e-12)
        return self.activation(nchw_to_nhwc(with_bias(y, w)))


def depthwise(x, kernel, args):
    """tf.nn.depthwise_conv2d on NCHW x: Keras's kernel [kh, kw, in, dm] as torch's
    grouped weight [in * dm, 1, kh, kw]; group c's outputs are c * dm + m, as TF's."""
    kh, kw, c, dm = kernel.shape
    return tf_conv2d(x, kernel.permute(2, 3, 0, 1).reshape(c * dm, 1, kh, kw), args, groups=c)


class DepthwiseConv2D(Layer):
    kind = "DepthwiseConv2D"

    def weights(self, in_shape, rng):
        kh, kw = pair(self.args["kernel_size"])
        c, dm = in_shape[-1], self.args.get("depth_multiplier", 1)
        w = {"depthwise_kernel": rng.uniform(-1, 1, (kh, kw, c, dm)) * np.sqrt(3.0 / (kh * kw))}
        if self.args.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, c * dm)
        return w

    def forward(self, x, w, training):
        y = depthwise(nhwc_to_nchw(x), w["depthwise_kernel"], self.args)
        return self.activation(nchw_to_nhwc(with_bias(y, w)))


class SeparableConv2D(DepthwiseConv2D):
    """tf.nn.separable_conv2d: the depthwise step (strides, padding; no bias), then
    a 1x1 conv2d with the pointwise kernel [1, 1, in * dm, filters] (torch's
    [filters, in * dm, 1, 1]), then the bias."""
    kind = "SeparableConv2D"

    def weights(self, in_shape, rng):
        w = super().weights(in_shape, rng)
        w.pop("bias", None)
        cd, f = in_shape[-1] * self.args.get("depth_multiplier", 1), self.args["filters"]
        w["pointwise_kernel"] = rng.uniform(-1, 1, (1, 1, cd, f)) * np.sqrt(3.0 / cd)
        if self.args.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, f)
        return w

    def forward(self, x, w, training):
        d = depthwise(nhwc_to_nchw(x), w["depthwise_kernel"], self.args)
        y = F.conv2d(d, w["pointwise_kernel"].permute(3, 2, 0, 1))
        return self.activation(nchw_to_nhwc(with_bias(y, w)))


# ---- sequence layers (tf.keras 2.x): x is [N, T, F], torch's 1-D ops want [N, F, T] ---------
def seq_to_ncl(x):
    return x.permute(0, 2, 1)


def ncl_to_seq(x):
    return x.permute(0, 2, 1)


def first(v):
    """Keras's 1-D sizes: 3 or [3]."""
    return v[0] if isinstance(v, (list, tuple)) else v


class Embedding(Layer):
    """Token ids (floats holding integers, as nncc stores them) picking rows of
    the table [input_dim, output_dim]: torch's F.embedding. trainable: false for a
    fixed table. No gradient reaches the ids (autograd: the cast to long)."""
    kind = "Embedding"

    def weights(self, in_shape, rng):
        return {"embeddings": rng.uniform(-1, 1, (self.args["input_dim"], self.args["output_dim"]))}

    def trainable(self, name):
        return self.args.get("trainable", True)

    def sample(self, rng, shape):
        return rng.integers(0, self.args["input_dim"], shape)

    def forward(self, x, w, training):
        return F.embedding(x.round().long(), w["embeddings"])


class Flatten(Layer):
    kind = "Flatten"

    def forward(self, x, w, training):
        return x.flatten(1)


class Conv1D(Layer):
    """F.conv1d with Keras's kernel [k, in, filters] as torch's [filters, in, k]
    (permute(2, 1, 0)), dilation as torch's, and the padding explicit: same is
    TensorFlow's (the extra step after) over the dilated window (k - 1) d + 1;
    causal pads (k - 1) d steps before and none after."""
    kind = "Conv1D"

    def weights(self, in_shape, rng):
        k, c, f = first(self.args["kernel_size"]), in_shape[-1], self.args["filters"]
        w = {"kernel": rng.uniform(-1, 1, (k, c, f)) * np.sqrt(3.0 / (k * c))}
        if self.args.get("use_bias", True):
            w["bias"] = rng.uniform(-0.5, 0.5, f)
        return w

    def forward(self, x, w, training):
        k, s = first(self.args["kernel_size"]), first(self.args.get("strides", 1))
        d = first(self.args.get("dilation_rate", 1))
        span = (k - 1) * d + 1
        x = seq_to_ncl(x)
        padding = self.args.get("padding", "valid")
        if padding == "same":
            x = F.pad(x, tf_same_pad(x.shape[2], span, s))
        elif padding == "causal":
            x = F.pad(x, (span - 1, 0))
        y = F.conv1d(x, w["kernel"].permute(2, 1, 0), w.get("bias"), stride=s, dilation=d)
        return self.activation(ncl_to_seq(y))


class Pool1D(Layer):
    def window(self):
        k = first(self.args.get("pool_size", 2))
        return k, first(self.args.get("strides", k))

    def pads(self, x, k, s):
        return tf_same_pad(x.shape[2], k, s) if self.args.get("padding") == "same" else (0, 0)


class MaxPooling1D(Pool1D):
    kind = "MaxPooling1D"

    def forward(self, x, w, training):
        k, s = self.window()
        x = seq_to_ncl(x)
        x = F.pad(x, self.pads(x, k, s), value=-float("inf"))
        return ncl_to_seq(F.max_pool1d(x, k, s))


class AveragePooling1D(Pool1D):
    """TF averages over the window's steps inside the sequence, as in 2-D."""
    kind = "AveragePooling1D"

    def forward(self, x, w, training):
        k, s = self.window()
        x = seq_to_ncl(x)
        pads = self.pads(x, k, s)
        total = F.avg_pool1d(F.pad(x, pads), k, s) * k
        cells = F.avg_pool1d(F.pad(torch.ones_like(x[:1, :1]), pads), k, s) * k
        return ncl_to_seq(total / cells)


class GlobalAveragePooling1D(Layer):
    kind = "GlobalAveragePooling1D"

    def forward(self, x, w, training):
        return x.mean(dim=1)


class GlobalMaxPooling1D(Layer):
    """The first maximum over the steps takes the gradient (see GlobalMaxPooling2D)."""
    kind = "GlobalMaxPooling1D"

    def forward(self, x, w, training):
        return x.gather(1, x.argmax(dim=1, keepdim=True)).squeeze(1)


# ---- the table of layer fixtures: name, input shape, the layer ------------------------------
LAYERS = [
    ("dense", [7], Dense(units=4)),
    ("dense_nobias", [7], Dense(units=4, use_bias=False)),
    ("dense_17", [9], Dense(units=17)),
    ("dense_wide", [3], Dense(units=16)),     # GCC once refused this one's backward
    ("conv_valid", [6, 5, 3], Conv2D(filters=4, kernel_size=3)),
    ("conv_valid_strided", [7, 6, 2], Conv2D(filters=3, kernel_size=[3, 2], strides=[2, 2])),
    ("conv_same", [5, 5, 2], Conv2D(filters=3, kernel_size=3, padding="same")),
    ("conv_same_odd", [6, 6, 2], Conv2D(filters=3, kernel_size=[3, 4], strides=[2, 1],
                                        padding="same")),
    ("conv_same_strided_nobias", [7, 5, 2], Conv2D(filters=2, kernel_size=2, strides=2,
                                                   padding="same", use_bias=False)),
    ("conv_relu", [5, 4, 2], Conv2D(filters=3, kernel_size=2, activation="relu")),
    # 3x3 stride 1: nncc's cost rule picks Winograd F(4x4, 3x3) for the first;
    # test_ref runs every conv_ fixture with NNCC_WINOGRAD=2x2, =4x4 and =never too.
    ("conv_wino_valid", [6, 6, 16], Conv2D(filters=16, kernel_size=3)),
    ("conv_3x3_same_odd", [7, 5, 4], Conv2D(filters=6, kernel_size=3, padding="same")),
    ("conv_3x3_valid_odd", [8, 7, 3], Conv2D(filters=5, kernel_size=3, use_bias=False)),
    ("conv_3x3_same_even", [6, 8, 8], Conv2D(filters=12, kernel_size=3, padding="same",
                                             activation="relu")),
    ("maxpool", [6, 6, 2], MaxPooling2D()),
    ("maxpool_3s2", [7, 7, 2], MaxPooling2D(pool_size=3, strides=2)),
    ("maxpool_same", [5, 5, 2], MaxPooling2D(pool_size=2, padding="same")),
    ("avgpool", [6, 6, 2], AveragePooling2D()),
    ("avgpool_same", [5, 5, 2], AveragePooling2D(pool_size=2, padding="same")),
    ("avgpool_3s2_same", [6, 5, 2], AveragePooling2D(pool_size=3, strides=2, padding="same")),
    ("gap", [4, 3, 3], GlobalAveragePooling2D()),
    ("batchnorm_image", [3, 3, 3], BatchNormalization()),
    ("batchnorm_vector", [6], BatchNormalization(momentum=0.9, epsilon=0.01)),
    ("dropout_rate0", [6], Dropout(rate=0.0)),
    ("leaky_relu", [6], LeakyReLU()),
    ("leaky_relu_image", [3, 4, 2], LeakyReLU(alpha=0.05)),
    ("leaky_relu_keras3", [6], LeakyReLU(negative_slope=0.2)),
    ("relu_layer", [7], ReLU()),
    ("relu_max_value", [3, 4, 2], ReLU(max_value=0.5)),
    ("relu_slope", [8], ReLU(negative_slope=0.25)),
    ("relu_all", [9], ReLU(max_value=0.8, negative_slope=0.1, threshold=0.2)),
    ("relu_threshold_above_max", [9], ReLU(max_value=0.2, negative_slope=0.3, threshold=0.5)),
    ("elu_layer", [7], ELU()),
    ("elu_alpha", [3, 4, 2], ELU(alpha=0.5)),
    ("prelu_flat", [7], PReLU()),
    ("prelu_image", [3, 4, 2], PReLU()),
    ("prelu_channels", [3, 4, 3], PReLU(shared_axes=[1, 2])),
    ("prelu_one", [3, 4, 2], PReLU(shared_axes=[1, 2, 3])),
    ("prelu_shared_channels", [3, 4, 2], PReLU(shared_axes=3)),
    ("prelu_shared_width", [3, 4, 2], PReLU(shared_axes=[2])),
    ("rescaling", [3, 4, 2], Rescaling(scale=0.5, offset=-0.25)),
    ("rescaling_flat", [6], Rescaling(scale=-3.0)),
    ("reshape", [12], Reshape(target_shape=[-1, 3, 2])),
    ("lambda_scale", [6], Lambda(expression="x * 100")),
    ("lambda_poly", [3, 4, 2], Lambda(expression="(x + 1) ** 2 / 3 - tanh(x)")),
    ("lambda_precedence", [7], Lambda(expression="-x ** 2 + 2 ** -x * exp(x / 4) - 3")),
    ("zeropad", [3, 4, 2], ZeroPadding2D()),
    ("zeropad_edges", [3, 4, 2], ZeroPadding2D(padding=[[1, 2], [0, 3]])),
    ("crop_edges", [6, 7, 2], Cropping2D(cropping=[[1, 2], [2, 0]])),
    ("crop_mixed", [4, 6, 1], Cropping2D(cropping=[0, [1, 3]])),
    ("upsample", [3, 4, 2], UpSampling2D()),
    ("upsample_rect", [2, 3, 3], UpSampling2D(size=[3, 2])),
    ("gmp", [3, 4, 5], GlobalMaxPooling2D()),
    ("gmp_ties", [3, 3, 4], Ties()),
    # total padding 1 (k - s), all of it at the bottom and right; 8 channels: vectors of 8
    ("conv_transpose_same", [3, 4, 8], Conv2DTranspose(filters=4, kernel_size=3, strides=2,
                                                       padding="same")),
    # height: stride 3 beyond kernel 2, every third row the bias alone
    ("conv_transpose_valid_s3", [3, 2, 2], Conv2DTranspose(filters=3, kernel_size=[2, 3],
                                                           strides=[3, 1], activation="tanh")),
    # height and width: total 3, 1 at the top/left and 2 after
    ("conv_transpose_same_odd_nobias", [2, 3, 5],
     Conv2DTranspose(filters=2, kernel_size=[5, 4], strides=[2, 1], padding="same",
                     use_bias=False)),
    # height: kernel 1, stride 2: every other row the bias alone
    ("conv_transpose_same_k1", [2, 2, 4], Conv2DTranspose(filters=3, kernel_size=[1, 3],
                                                          strides=2, padding="same")),
    # height: total 2 (1 before); width: total 1 (after)
    ("depthwise_same_strided", [5, 6, 3], DepthwiseConv2D(kernel_size=3, strides=2,
                                                          padding="same")),
    ("depthwise_valid_dm3", [4, 5, 2], DepthwiseConv2D(kernel_size=[2, 3], strides=[1, 2],
                                                       depth_multiplier=3, activation="tanh")),
    # height: total 3 (1 before, 2 after); 16 channels
    ("depthwise_same_odd_nobias", [4, 4, 16],
     DepthwiseConv2D(kernel_size=[4, 3], padding="same", depth_multiplier=2, use_bias=False)),
    ("separable_same", [4, 5, 3], SeparableConv2D(filters=4, kernel_size=3, padding="same")),
    # 16 filters: the backward's dot products in vectors of 16
    ("separable_valid_dm2", [5, 6, 2], SeparableConv2D(filters=16, kernel_size=[3, 2],
                                                       strides=2, depth_multiplier=2)),
    ("separable_same_strided_nobias", [5, 5, 4],
     SeparableConv2D(filters=3, kernel_size=[2, 4], strides=[2, 1], padding="same",
                     use_bias=False, activation="tanh")),
    # Sequences [T, F], each layer at two lengths T. Dense applies to the last axis.
    ("dense_sequence", [5, 3], Dense(units=4, activation="tanh")),
    ("dense_sequence_long", [11, 6], Dense(units=16)),
    ("dense_sequence_softmax", [4, 3], Dense(units=5, activation="softmax")),
    # per feature over the batch and the steps; the moving variance moves by the
    # biased batch variance (Keras's non-fused path: not a 4-D input)
    ("batchnorm_sequence", [5, 3], BatchNormalization(momentum=0.8)),
    ("conv1d_valid", [9, 3], Conv1D(filters=4, kernel_size=3)),
    ("conv1d_valid_long", [16, 3], Conv1D(filters=4, kernel_size=3, activation="relu")),
    ("conv1d_same_strided", [7, 2], Conv1D(filters=3, kernel_size=4, strides=2, padding="same")),
    ("conv1d_same_strided_long", [10, 2], Conv1D(filters=3, kernel_size=4, strides=2,
                                                 padding="same", use_bias=False)),
    ("conv1d_causal_dilated", [8, 3], Conv1D(filters=5, kernel_size=3, padding="causal",
                                             dilation_rate=2)),
    ("conv1d_causal_dilated_long", [13, 3], Conv1D(filters=5, kernel_size=3, padding="causal",
                                                   dilation_rate=2, activation="tanh")),
    ("conv1d_causal_strided", [9, 2], Conv1D(filters=2, kernel_size=2, strides=3,
                                             padding="causal")),
    ("conv1d_same_dilated", [9, 2], Conv1D(filters=3, kernel_size=3, padding="same",
                                           dilation_rate=3)),
    ("conv1d_valid_dilated", [12, 4], Conv1D(filters=16, kernel_size=2, dilation_rate=4)),
    ("maxpool1d", [8, 3], MaxPooling1D()),
    ("maxpool1d_3s2_same", [11, 2], MaxPooling1D(pool_size=3, strides=2, padding="same")),
    ("avgpool1d", [8, 3], AveragePooling1D()),
    ("avgpool1d_3s2_same", [7, 2], AveragePooling1D(pool_size=3, strides=2, padding="same")),
    ("gap1d", [5, 3], GlobalAveragePooling1D()),
    ("gap1d_long", [12, 4], GlobalAveragePooling1D()),
    ("gmp1d", [6, 3], GlobalMaxPooling1D()),
    ("gmp1d_long", [13, 2], GlobalMaxPooling1D()),
] + [("act_" + a, [6], Dense(units=5, activation=a)) for a in ACTIVATIONS]

# ---- graph fixtures: name, input shape, the nodes after feed -------------------------------
# Every merge reads branches that both come from feed, so feed's output gradient
# (dx) is a sum over the branches, and the branches' weights are trained through
# the merge. Images are [H, W, C]; Concatenate's axis 1 is H, 2 is W, 3 or -1 is C.
GRAPHS = [
    ("reshape_conv", [12], Graph(("shape", Reshape(target_shape=[-1, 3, 2])),
                                 ("probe", Conv2D(filters=2, kernel_size=2)))),
    ("reshape_prelu_sequence", [2, 3, 2], Graph(("shape", Reshape(target_shape=[6, 2])),
                                                ("probe", PReLU(shared_axes=[1])))),
    ("activation_layers", [3, 4, 3], Graph(("scale", Rescaling(scale=0.5, offset=-0.1)),
                                           ("probe", PReLU(shared_axes=[1, 2])),
                                           ("leaky", LeakyReLU(alpha=0.1)),
                                           ("relu", ReLU(max_value=0.6, negative_slope=0.05,
                                                         threshold=0.1)),
                                           ("elu", ELU(alpha=0.5)))),
    ("merge_add", [6], Graph(("a", Dense(units=6, activation="tanh")),
                             ("sum", Add(), ["feed", "a"]))),
    ("merge_add3", [5], Graph(("a", Dense(units=5)),
                              ("b", Dense(units=5, activation="sigmoid"), ["feed"]),
                              ("sum", Add(), ["feed", "a", "b"]))),
    ("merge_subtract", [6], Graph(("a", Dense(units=6, activation="tanh")),
                                  ("diff", Subtract(), ["a", "feed"]))),
    ("merge_multiply", [6], Graph(("a", Dense(units=4, activation="sigmoid")),
                                  ("b", Dense(units=4), ["feed"]),
                                  ("prod", Multiply(), ["a", "b"]))),
    ("merge_multiply_same", [5], Graph(("a", Dense(units=4)),
                                       ("square", Multiply(), ["a", "a"]))),
    ("merge_average", [6], Graph(("a", Dense(units=6)),
                                 ("mean", Average(), ["feed", "a"]))),
    ("merge_maximum", [6], Graph(("a", Dense(units=5)),
                                 ("b", Dense(units=5, activation="tanh"), ["feed"]),
                                 ("max", Maximum(), ["a", "b"]))),
    ("merge_maximum3", [5], Graph(("a", Dense(units=5)),
                                  ("b", Dense(units=5), ["feed"]),
                                  ("max", Maximum(), ["b", "feed", "a"]))),
    ("merge_concat", [5], Graph(("a", Dense(units=3, activation="relu")),
                                ("cat", Concatenate(), ["feed", "a"]))),
    ("merge_concat3", [4], Graph(("a", Dense(units=3)),
                                 ("b", Dense(units=2), ["feed"]),
                                 ("cat", Concatenate(axis=1), ["a", "feed", "b"]))),
    ("merge_add_image", [3, 4, 2], Graph(("a", Conv2D(filters=2, kernel_size=3, padding="same")),
                                         ("sum", Add(), ["a", "feed"]))),
    ("merge_maximum_image", [3, 4, 2], Graph(("a", Conv2D(filters=2, kernel_size=2,
                                                          padding="same")),
                                             ("max", Maximum(), ["feed", "a"]))),
    ("merge_concat_channels", [3, 4, 2],
     Graph(("a", Conv2D(filters=3, kernel_size=3, padding="same", activation="relu")),
           ("cat", Concatenate(), ["feed", "a"]))),
    ("merge_concat3_channels", [3, 3, 2],
     Graph(("a", Conv2D(filters=1, kernel_size=3, padding="same")),
           ("b", Conv2D(filters=2, kernel_size=1), ["feed"]),
           ("cat", Concatenate(axis=3), ["a", "b", "feed"]))),
    ("merge_concat_height", [3, 4, 2], Graph(("a", Conv2D(filters=2, kernel_size=[2, 1])),
                                             ("cat", Concatenate(axis=1), ["feed", "a"]))),
    ("merge_concat_width", [3, 4, 2], Graph(("a", Conv2D(filters=2, kernel_size=[1, 3])),
                                            ("cat", Concatenate(axis=2), ["a", "feed"]))),
    ("merge_concat_width_neg", [3, 3, 2], Graph(("a", Conv2D(filters=2, kernel_size=2)),
                                                ("b", Conv2D(filters=2, kernel_size=[2, 3]),
                                                 ["feed"]),
                                                ("cat", Concatenate(axis=-2), ["a", "b"]))),
    # Recurrent layers read [T, F] sequences: Reshape makes them of feed's flat output.
    ("lstm_last", [5 * 3], Graph(("seq", Reshape(target_shape=[5, 3])),
                                 ("probe", LSTM(units=4)))),
    ("lstm_sequences", [9 * 2], Graph(("seq", Reshape(target_shape=[9, 2])),
                                      ("probe", LSTM(units=3, return_sequences=True)))),
    ("lstm_backwards_nobias", [6 * 4], Graph(("seq", Reshape(target_shape=[6, 4])),
                                             ("probe", LSTM(units=8, use_bias=False,
                                                            go_backwards=True)))),
    ("lstm_stacked", [7 * 3], Graph(("seq", Reshape(target_shape=[7, 3])),
                                    ("probe", LSTM(units=5, return_sequences=True)),
                                    ("top", LSTM(units=4)))),
    ("gru_last", [5 * 3], Graph(("seq", Reshape(target_shape=[5, 3])),
                                ("probe", GRU(units=4)))),
    ("gru_sequences", [9 * 2], Graph(("seq", Reshape(target_shape=[9, 2])),
                                     ("probe", GRU(units=6, return_sequences=True,
                                                   go_backwards=True)))),
    ("gru_stacked_nobias", [4 * 5], Graph(("seq", Reshape(target_shape=[4, 5])),
                                          ("probe", GRU(units=3, return_sequences=True,
                                                        use_bias=False)),
                                          ("top", GRU(units=2)))),
    ("simple_rnn_last", [5 * 3], Graph(("seq", Reshape(target_shape=[5, 3])),
                                       ("probe", SimpleRNN(units=4)))),
    ("simple_rnn_sequences", [9 * 2], Graph(("seq", Reshape(target_shape=[9, 2])),
                                            ("probe", SimpleRNN(units=5, return_sequences=True,
                                                                activation="relu")))),
    ("simple_rnn_backwards", [6 * 2], Graph(("seq", Reshape(target_shape=[6, 2])),
                                            ("probe", SimpleRNN(units=3, go_backwards=True)))),
    ("bidirectional_lstm_concat", [6 * 3],
     Graph(("seq", Reshape(target_shape=[6, 3])),
           ("probe", Bidirectional(layer=LSTM(units=4, return_sequences=True))))),
    ("bidirectional_gru_sum", [5 * 4],
     Graph(("seq", Reshape(target_shape=[5, 4])),
           ("probe", Bidirectional(layer=GRU(units=3), merge_mode="sum")))),
    ("bidirectional_rnn_ave", [4 * 2],
     Graph(("seq", Reshape(target_shape=[4, 2])),
           ("probe", Bidirectional(layer=SimpleRNN(units=3, return_sequences=True),
                                   merge_mode="ave")))),
    ("bidirectional_lstm_mul", [7 * 2],
     Graph(("seq", Reshape(target_shape=[7, 2])),
           ("probe", Bidirectional(layer=LSTM(units=2), merge_mode="mul")))),
    # Embedding: the ids come through feed, so the model also concatenates feed
    # itself, which gives feed a gradient to check (none comes through the ids).
    ("embedding", [7], Graph(("probe", Embedding(input_dim=10, output_dim=4)),
                             ("flat", Flatten()), ("cat", Concatenate(), ["flat", "feed"]))),
    ("embedding_long", [12], Graph(("probe", Embedding(input_dim=5, output_dim=8)),
                                   ("flat", Flatten()), ("cat", Concatenate(), ["flat", "feed"]))),
    ("embedding_frozen", [6], Graph(("probe", Embedding(input_dim=4, output_dim=3, trainable=False)),
                                    ("flat", Flatten()), ("cat", Concatenate(), ["flat", "feed"]))),
    # A Dense layer big enough for the paths small ones skip: 520 inputs (two
    # steps over the kernel's rows), 128 units (two packed blocks of columns),
    # and its relu; a sequence flattened keeps feed small, one batch the file.
    ("dense_big", [40, 13], Graph(("flat", Flatten()),
                                  ("probe", Dense(units=128, activation="relu")), batches=[N])),
    # The layers that take any shape, on sequences [T, F]: Add, Activation,
    # Dropout, Concatenate over the steps and over the features, Reshape, then
    # Dense on the last axis (and Flatten, added, at the end).
    ("sequence_layers", [6, 3], Graph(("a", Conv1D(filters=3, kernel_size=3, padding="same")),
                                      ("sum", Add(), ["a", "feed"]),
                                      ("act", Activation(activation="tanh")),
                                      ("drop", Dropout(rate=0.0)),
                                      ("steps", Concatenate(axis=1), ["drop", "feed"]),
                                      ("both", Concatenate(axis=-1), ["steps", "steps"]),
                                      ("shape", Reshape(target_shape=[9, 8])),
                                      ("out", Dense(units=2, activation="softmax")))),
    # Embedding -> Conv1D -> GlobalAveragePooling1D, end to end
    ("embedding_conv1d", [9], Graph(("probe", Embedding(input_dim=6, output_dim=4)),
                                    ("conv", Conv1D(filters=3, kernel_size=3, padding="causal")),
                                    ("pool", GlobalAveragePooling1D()),
                                    ("cat", Concatenate(), ["pool", "feed"]))),
    # A residual block, end to end: relu(feed + conv(relu(conv(feed)))).
    ("graph_residual", [4, 4, 2],
     Graph(("conv1", Conv2D(filters=2, kernel_size=3, padding="same", activation="relu")),
           ("conv2", Conv2D(filters=2, kernel_size=3, padding="same")),
           ("res", Add(), ["conv2", "feed"]),
           ("out", Activation(activation="relu")))),
]


def identity_feed(shape):
    """The first layer, whose output is x and whose output gradient is dx."""
    c = shape[-1]
    eye = np.eye(c, dtype=int)
    if len(shape) <= 2:   # a vector, or a sequence (Dense on its last axis)
        return (yaml_layer("Dense", {"units": c, "use_bias": False, "name": "feed"})[:-1] +
                ", weights: {kernel: %s}}" % flow(eye)), eye.astype(np.float64)
    kernel = eye.reshape(1, 1, c, c)
    return (yaml_layer("Conv2D", {"filters": c, "kernel_size": 1, "use_bias": False,
                                  "name": "feed"})[:-1] +
            ", weights: {kernel: %s}}" % flow(kernel)), kernel.astype(np.float64)


def feed_forward(x, kernel):
    if x.dim() <= 3:
        return F.linear(x, kernel.T)
    return nchw_to_nhwc(F.conv2d(nhwc_to_nchw(x), kernel.permute(3, 2, 0, 1)))


def write_yaml(name, input_shape, layers, compile_text):
    text = ("# Written by tests/ref/gen.py: the model of fixture %s.npz.\n"
            "name: %s\ninput_shape: %s\nlayers:\n%s%s" %
            (name, name, flow(input_shape), "".join("  - %s\n" % l for l in layers),
             compile_text))
    with open(os.path.join(HERE, name + ".yaml"), "w") as f:
        f.write(text)


def save(name, arrays):
    path = os.path.join(HERE, name + ".npz")
    np.savez_compressed(path, **arrays)
    return os.path.getsize(path)


def layer_fixture(name, in_shape, layer):
    return graph_fixture(name, in_shape, Graph(("probe", layer)))


def graph_fixture(name, in_shape, graph):
    rng = rng_for(name)
    feed_yaml, feed_kernel = identity_feed(in_shape)
    x = f32(graph.nodes[0][1].sample(rng, [N] + in_shape))   # the first layer draws them
    weights = graph.weights(t64(x[:1]), rng)      # {node: {tensor: array}}

    def run(n):
        xt = t64(x[:n])
        wt = {node: {k: t64(v, grad=layer.trainable(k)) for k, v in weights[node].items()}
              for node, layer, _ in graph.nodes}
        fk = t64(feed_kernel, grad=True)
        h = feed_forward(xt, fk)
        h.retain_grad()
        out, updates = graph.forward(xt, h, wt, True)
        return h, fk, wt, out.reshape(n, -1), updates

    _, _, _, y1, _ = run(1)
    dy = f32(rng.uniform(-1, 1, (N, y1.shape[1])))
    arrays = {"x": x, "dy": dy, "batch_sizes": np.array(graph.batches, dtype=np.int64),
              "feed.kernel": f32(feed_kernel)}
    for node, w in weights.items():
        arrays.update({node + "." + k: v for k, v in w.items()})
    per_n = {}
    for n in graph.batches:
        h, fk, wt, y, updates = run(n)
        (y * t64(dy[:n])).sum().backward()
        # h feeds every branch that reads feed: autograd sums their gradients into h.grad.
        per_n[n] = (y.detach().numpy(), h.grad.numpy().reshape(n, -1))
        arrays["grad.feed.kernel@%d" % n] = f32(fk.grad.numpy())
        for node, w in wt.items():
            for k, v in w.items():
                if v.requires_grad:
                    arrays["grad.%s.%s@%d" % (node, k, n)] = f32(v.grad.numpy())
        for k, v in updates.items():
            arrays["after.%s@%d" % (k, n)] = f32(v.numpy())
    # Per-sample results are stored once, for 13 samples, unless the batch changes them.
    y13, dx13 = per_n[N]
    arrays["y"], arrays["dx"] = f32(y13), f32(dx13)
    for n in graph.batches[:-1]:
        y, dx = per_n[n]
        if graph.batch_coupled():
            arrays["y@%d" % n], arrays["dx@%d" % n] = f32(y), f32(dx)
        else:
            assert np.allclose(y, y13[:n], rtol=0, atol=1e-12), name
    write_yaml(name, in_shape, [feed_yaml] + graph.yaml(t64(x[:1]), weights),
               "compile:\n  optimizer: sgd\n  loss: mse\n")
    return save(name, arrays)
# ---- losses: Keras's formulas (tf.keras 2.x, keras/backend.py), autograd for dout ----------
# Keras's epsilon() is 1e-7, applied as a float32 tensor: the clip bounds are float32.
EPS = float(np.float32(1e-7))
ONE_MINUS_EPS = float(np.float32(1) - np.float32(1e-7))


def keras_loss(loss, fused, out, y, args):
    """Per-sample losses of Keras's loss on the model's output `out` (logits when
    fused: Keras then takes the from_logits path, as it does for a final softmax or
    sigmoid, or as from_logits asks). Non-fused: Keras clips probabilities to
    [eps, 1 - eps] with tf.clip_by_value, which passes no gradient where it clips
    (torch.clamp alike). label_smoothing: Keras's y (1 - s) + s / 2 (binary) or
    + s / K (categorical), keras/losses.py."""
    s = args.get("label_smoothing", 0.0)
    if loss == "binary_crossentropy":
        y = y * (1 - s) + 0.5 * s
    if loss == "categorical_crossentropy":
        y = y * (1 - s) + s / y.shape[-1]
    if loss == "mse":
        return ((out - y) ** 2).mean(dim=-1)
    if loss == "mean_absolute_error":          # torch's l1 is Keras's mae
        return F.l1_loss(out, y, reduction="none").mean(dim=-1)
    if loss == "huber":                         # torch's huber is Keras's, delta alike
        return F.huber_loss(out, y, reduction="none", delta=args.get("delta", 1.0)).mean(dim=-1)
    if loss == "log_cosh":                      # none in torch: Keras's formula
        e = out - y
        return (e + F.softplus(-2 * e) - np.log(2.0)).mean(dim=-1)
    if loss == "kl_divergence":                 # torch's kl_div clips nothing: Keras's formula
        t, p = y.clamp(EPS, 1), out.clamp(EPS, 1)
        return (t * torch.log(t / p)).sum(dim=-1)
    if loss == "binary_crossentropy":
        if fused:
            return F.binary_cross_entropy_with_logits(out, y, reduction="none").mean(dim=-1)
        p = out.clamp(EPS, ONE_MINUS_EPS)
        return -(y * torch.log(p + EPS) + (1 - y) * torch.log(1 - p + EPS)).mean(dim=-1)
    if loss == "sparse_categorical_crossentropy":
        labels = y.long()
        # non-fused: Keras takes log(clip(p)) as logits of a sparse softmax CE
        z = out if fused else torch.log(out.clamp(EPS, ONE_MINUS_EPS))
        return F.cross_entropy(z, labels, reduction="none")
    if loss == "categorical_crossentropy":
        if fused:
            return -(y * F.log_softmax(out, dim=-1)).sum(dim=-1)
        q = (out / out.sum(dim=-1, keepdim=True)).clamp(EPS, ONE_MINUS_EPS)
        return -(y * torch.log(q)).sum(dim=-1)
    raise ValueError(loss)


# name, loss, the last layer's activation (softmax/sigmoid with a cross-entropy: fused),
# units, which labels ("onehot", "soft", "index", "binary", "real"), and optionally the
# loss's arguments in the model file, with "class_weight" for fit: class_weight
# (Keras's data_adapter: a sample's weight is its class's, by argmax for one-hot
# labels; the loss is sum(weight * loss) / samples, SUM_OVER_BATCH_SIZE).
CLASS_WEIGHT5 = {0: 1.0, 1: 3.0, 2: 0.5, 3: 2.0, 4: 1.5}
LOSSES = [
    ("loss_mse", "mse", "linear", 4, "real"),
    ("loss_bce_logits", "binary_crossentropy", "sigmoid", 3, "binary"),
    ("loss_bce_probs", "binary_crossentropy", "linear", 3, "binary"),
    ("loss_bce_soft_logits", "binary_crossentropy", "sigmoid", 1, "soft"),
    ("loss_sparse_logits", "sparse_categorical_crossentropy", "softmax", 5, "index"),
    ("loss_sparse_probs", "sparse_categorical_crossentropy", "linear", 5, "index"),
    ("loss_cce_logits", "categorical_crossentropy", "softmax", 4, "onehot"),
    ("loss_cce_soft_logits", "categorical_crossentropy", "softmax", 4, "soft"),
    ("loss_cce_probs", "categorical_crossentropy", "linear", 4, "onehot"),
    ("loss_mae", "mean_absolute_error", "linear", 4, "real"),
    ("loss_huber", "huber", "linear", 4, "real"),
    ("loss_huber_delta", "huber", "linear", 4, "real", {"delta": 0.5}),
    ("loss_log_cosh", "log_cosh", "linear", 4, "real"),
    ("loss_kld", "kl_divergence", "linear", 4, "soft"),
    ("loss_bce_smooth_logits", "binary_crossentropy", "sigmoid", 3, "binary",
     {"label_smoothing": 0.1}),
    ("loss_bce_smooth_probs", "binary_crossentropy", "linear", 3, "binary",
     {"label_smoothing": 0.2}),
    ("loss_bce_from_logits", "binary_crossentropy", "linear", 3, "binary", {"from_logits": True}),
    ("loss_cce_smooth_logits", "categorical_crossentropy", "softmax", 4, "onehot",
     {"label_smoothing": 0.1}),
    ("loss_cce_smooth_probs", "categorical_crossentropy", "linear", 4, "onehot",
     {"label_smoothing": 0.1}),
    ("loss_cce_from_logits", "categorical_crossentropy", "linear", 4, "onehot",
     {"from_logits": True, "label_smoothing": 0.05}),
    ("loss_sparse_from_logits", "sparse_categorical_crossentropy", "linear", 5, "index",
     {"from_logits": True}),
    ("loss_sparse_class_weight", "sparse_categorical_crossentropy", "softmax", 5, "index",
     {"class_weight": CLASS_WEIGHT5}),
    ("loss_bce_class_weight", "binary_crossentropy", "sigmoid", 1, "binary",
     {"class_weight": {0: 1.0, 1: 3.0}}),
    ("loss_cce_class_weight", "categorical_crossentropy", "softmax", 4, "onehot",
     {"class_weight": {0: 0.5, 1: 2.0, 2: 1.0, 3: 4.0}}),
    ("loss_mse_class_weight", "mse", "linear", 1, "binary", {"class_weight": {0: 2.0, 1: 0.5}}),
]


def sample_weights(class_weight, y, labels):
    """Keras's _make_class_weight_map_fn: argmax of a one-hot row, else the label."""
    classes = y.argmax(-1) if labels == "onehot" else y.reshape(len(y), -1)[:, 0].astype(int)
    return np.array([class_weight[int(c)] for c in classes])


def loss_fixture(name, loss, act, k, labels, args=None):
    args = dict(args or {})
    class_weight = args.pop("class_weight", None)
    rng = rng_for(name)
    fused = act != "linear" or args.get("from_logits", False)
    if fused or loss in ("mse", "mean_absolute_error", "huber", "log_cosh"):
        out = rng.uniform(-4, 4, (N, k))
    elif loss == "binary_crossentropy":
        out = rng.uniform(0, 1, (N, k))
        out.flat[:6] = [0.0, 1.0, 1e-9, 1 - 1e-9, 1e-7, 0.5]   # clipped and edge values
    else:
        out = rng.uniform(0, 1, (N, k))                       # not normalised: Keras divides
        out[:3] = np.exp(out[:3] * 8) / np.exp(out[:3] * 8).sum(-1, keepdims=True)
        out[3, 0], out[4, 1], out[5] = 0.0, 1e-9, [1.0] + [0.0] * (k - 1)
    if labels == "index":
        y = rng.integers(0, k, N).astype(np.float64)
        y[5] = 1   # a label whose probability is clipped from 0
    elif labels == "onehot":
        y = np.eye(k)[rng.integers(0, k, N)]
        y[5] = np.eye(k)[1]
    elif labels == "soft":
        y = rng.uniform(0, 1, (N, k))
        if k > 1:
            y /= y.sum(-1, keepdims=True)
    elif labels == "binary":
        y = rng.integers(0, 2, (N, k)).astype(np.float64)
    else:
        y = rng.uniform(-1, 1, (N, k))
    out, y = f32(out), f32(y)
    ot = t64(out, grad=True)
    losses = keras_loss(loss, fused, ot, t64(y), args)
    if class_weight:
        losses = losses * t64(sample_weights(class_weight, y, labels))
    value = losses.mean()   # Keras: the sum over the batch divided by its size
    value.backward()
    loss_text = yaml_layer("", dict(name=loss, **args))[2:] if args else loss
    fit_text = "fit:\n  class_weight: %s\n" % flow(class_weight) if class_weight else ""
    write_yaml(name, [k], [yaml_layer("Dense", {"units": k, "activation": act, "name": "out"})],
               "compile:\n  optimizer: sgd\n  loss: %s\n%s" % (loss_text, fit_text))
    return save(name, {"loss.out": out, "loss.y": y,
                       "loss.value": np.array(value.item(), dtype=np.float64),
                       "loss.dout": f32(ot.grad.numpy())})


# ---- optimizers: three steps of Keras's update rules -------------------------------------
# SGD (plain, momentum, nesterov) and RMSprop without momentum: torch.optim's rules
# are Keras's: Keras's velocity v = mu v - lr g is torch's buffer b = mu b + g times
# -lr, and Nesterov's p += mu v - lr g is torch's p -= lr (g + mu b); RMSprop divides
# by sqrt(avg) + eps in both. The others differ from torch.optim, so Keras's rule
# is written out in numpy (keras_rule below):
#   Adam (ResourceApplyAdam, as Keras 2 calls it): lr_t = lr sqrt(1 - b2^t) / (1 - b1^t),
#     m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= lr_t m / (sqrt(v) + eps);
#     torch divides by sqrt(v / (1 - b2^t)) + eps instead: its eps is not scaled.
#   RMSprop with momentum (ResourceApplyRMSProp): ms = rho ms + (1 - rho) g^2,
#     mom = mu mom + lr g / sqrt(ms + eps), p -= mom; torch puts eps outside the root.
#   Nadam (keras/optimizers/nadam.py, Keras 2.11+): u_t = b1 (1 - 0.5 * 0.96^t),
#     m_hat = u_{t+1} m / (1 - u_1...u_{t+1}) + (1 - u_t) g / (1 - u_1...u_t),
#     v_hat = v / (1 - b2^t), p -= lr m_hat / (sqrt(v_hat) + eps); torch's NAdam
#     has the older 0.96^(0.004 t) schedule.
#   Adamax (keras/optimizers/adamax.py): u = max(b2 u, |g|),
#     p -= lr m / ((1 - b1^t) (u + eps)); torch adds eps to |g| inside the max.
#   Adagrad (keras/optimizers/adagrad.py): acc (from initial_accumulator_value 0.1)
#     += g^2, p -= lr g / sqrt(acc + eps); torch adds eps outside the root.
#   AdamW (keras/optimizers/adamw.py): Keras's Adam after the weight decay below.
# Every optimizer, as Keras 2.11+'s Optimizer.apply_gradients does
# (keras/optimizers/optimizer.py): first the clipping (_clip_gradients: clipnorm
# per tensor, else global_clipnorm over all, else clipvalue; TensorFlow's
# clip_by_norm is g * c / max(norm, c)), then the weight decay
# (_apply_weight_decay: p -= p * weight_decay * lr), then the update.
KERAS_COMMON = {"weight_decay": 0.0, "clipnorm": 0.0, "clipvalue": 0.0, "global_clipnorm": 0.0}
ADAM_DEFAULTS = {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
KERAS_DEFAULTS = {"sgd": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
                  "adam": ADAM_DEFAULTS,
                  "rmsprop": {"learning_rate": 0.001, "rho": 0.9, "momentum": 0.0,
                              "epsilon": 1e-7},
                  "nadam": ADAM_DEFAULTS,
                  "adamax": ADAM_DEFAULTS,
                  "adagrad": {"learning_rate": 0.001, "initial_accumulator_value": 0.1,
                              "epsilon": 1e-7},
                  "adamw": dict(ADAM_DEFAULTS, weight_decay=0.004)}


def keras_clip(a, g):
    """Keras's _clip_gradients on {name: gradient} (float64)."""
    def by_norm(v, norm, c):
        return v * c / max(norm, c)
    if a["clipnorm"] > 0:
        return {k: by_norm(v, np.sqrt(np.sum(v * v)), a["clipnorm"]) for k, v in g.items()}
    if a["global_clipnorm"] > 0:
        norm = np.sqrt(sum(np.sum(v * v) for v in g.values()))
        return {k: by_norm(v, norm, a["global_clipnorm"]) for k, v in g.items()}
    if a["clipvalue"] > 0:
        return {k: np.clip(v, -a["clipvalue"], a["clipvalue"]) for k, v in g.items()}
    return g


def nadam_u(b1, t):
    return b1 * (1 - 0.5 * 0.96 ** t)


def keras_rule(opt, a, t, p, g, m, v):
    """One step of Keras's update of one tensor p at step t (from 1); m, v: its two
    state arrays, updated in place (Adagrad's accumulator is v). Returns the new p."""
    lr, b1, b2, eps = a["learning_rate"], a.get("beta_1"), a.get("beta_2"), a.get("epsilon")
    if opt in ("adam", "adamw", "nadam", "adamax"):
        m[:] = b1 * m + (1 - b1) * g
    if opt in ("adam", "adamw"):
        v[:] = b2 * v + (1 - b2) * g * g
        return p - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    if opt == "nadam":
        v[:] = b2 * v + (1 - b2) * g * g
        prod_t = np.prod([nadam_u(b1, i) for i in range(1, t + 1)])
        prod_next = prod_t * nadam_u(b1, t + 1)
        m_hat = (nadam_u(b1, t + 1) * m / (1 - prod_next) +
                 (1 - nadam_u(b1, t)) * g / (1 - prod_t))
        return p - lr * m_hat / (np.sqrt(v / (1 - b2 ** t)) + eps)
    if opt == "adamax":
        v[:] = np.maximum(b2 * v, np.abs(g))
        return p - lr * m / ((1 - b1 ** t) * (v + eps))
    if opt == "adagrad":
        v[:] = v + g * g
        return p - lr * g / np.sqrt(v + eps)
    # rmsprop with momentum; v: the mean square, m: the momentum
    v[:] = a["rho"] * v + (1 - a["rho"]) * g * g
    m[:] = a["momentum"] * m + lr * g / np.sqrt(v + eps)
    return p - m


def keras_steps(opt, args, params, grads):
    """params: {name: array} of the trainable tensors; grads: a list of such dicts.
    Returns the params after each step."""
    a = dict(KERAS_COMMON, **KERAS_DEFAULTS[opt])
    a.update(args)
    p = {k: torch.tensor(v.astype(np.float64), requires_grad=True) for k, v in params.items()}
    names = list(p)
    if opt == "sgd":
        o = torch.optim.SGD([p[k] for k in names], lr=a["learning_rate"], momentum=a["momentum"],
                            nesterov=a["nesterov"])
    elif opt == "rmsprop" and a["momentum"] == 0:
        o = torch.optim.RMSprop([p[k] for k in names], lr=a["learning_rate"], alpha=a["rho"],
                                eps=a["epsilon"])
    else:
        o = None
    start = a.get("initial_accumulator_value", 0.0)
    state = {k: [np.zeros_like(v, dtype=np.float64), np.full(v.shape, start, dtype=np.float64)]
             for k, v in params.items()}
    cur = {k: v.astype(np.float64) for k, v in params.items()}
    after = []
    for t, g in enumerate(grads, start=1):
        g = keras_clip(a, {k: g[k].astype(np.float64) for k in names})
        decay = a["weight_decay"] * a["learning_rate"]
        if o:
            with torch.no_grad():
                for k in names:
                    p[k] -= p[k] * decay
                    p[k].grad = torch.tensor(g[k])
            o.step()
            after.append({k: p[k].detach().numpy().copy() for k in names})
            continue
        for k in names:
            cur[k] = keras_rule(opt, a, t, cur[k] - cur[k] * decay, g[k], *state[k])
        after.append({k: cur[k].copy() for k in names})
    return after


# name, optimizer, arguments written in the model file (the rest are Keras's defaults)
OPTIMIZERS = [
    ("opt_sgd", "sgd", {}),
    ("opt_sgd_momentum", "sgd", {"learning_rate": 0.1, "momentum": 0.9}),
    ("opt_sgd_nesterov", "sgd", {"learning_rate": 0.05, "momentum": 0.8, "nesterov": True}),
    ("opt_adam", "adam", {}),
    ("opt_adam_args", "adam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.9,
                               "epsilon": 0.01}),
    ("opt_rmsprop", "rmsprop", {}),
    ("opt_rmsprop_args", "rmsprop", {"learning_rate": 0.01, "rho": 0.8, "epsilon": 0.01}),
    ("opt_rmsprop_momentum", "rmsprop", {"learning_rate": 0.01, "rho": 0.8, "momentum": 0.5,
                                         "epsilon": 0.01}),
    ("opt_nadam", "nadam", {}),
    ("opt_nadam_args", "nadam", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.9,
                                 "epsilon": 0.01}),
    ("opt_adamax", "adamax", {}),
    ("opt_adamax_args", "adamax", {"learning_rate": 0.01, "beta_1": 0.8, "beta_2": 0.9,
                                   "epsilon": 0.01}),
    ("opt_adagrad", "adagrad", {}),
    ("opt_adagrad_args", "adagrad", {"learning_rate": 0.1, "initial_accumulator_value": 0.5,
                                     "epsilon": 0.01}),
    ("opt_adamw", "adamw", {}),
    ("opt_adamw_args", "adamw", {"learning_rate": 0.01, "weight_decay": 0.1, "beta_1": 0.8,
                                 "beta_2": 0.9, "epsilon": 0.01}),
    ("opt_sgd_weight_decay", "sgd", {"learning_rate": 0.1, "weight_decay": 0.05}),
    ("opt_sgd_clipnorm", "sgd", {"learning_rate": 0.1, "clipnorm": 0.3}),
    ("opt_sgd_global_clipnorm", "sgd", {"learning_rate": 0.1, "momentum": 0.9,
                                        "global_clipnorm": 0.5}),
    ("opt_sgd_clipvalue", "sgd", {"learning_rate": 0.1, "clipvalue": 0.2}),
    ("opt_adam_clipnorm", "adam", {"learning_rate": 0.01, "clipnorm": 0.3}),
    ("opt_adam_global_clipnorm", "adam", {"learning_rate": 0.01, "global_clipnorm": 0.5}),
    ("opt_adam_clipvalue", "adam", {"learning_rate": 0.01, "clipvalue": 0.2}),
    ("opt_adagrad_clipnorm_decay", "adagrad", {"learning_rate": 0.1, "clipnorm": 0.3,
                                               "weight_decay": 0.05}),
]


def optimizer_fixture(name, opt, args):
    """A Dense(2) on 3 inputs and a BatchNormalization, whose moving statistics are
    not trainable: the optimizer must leave them alone whatever their gradient says."""
    rng = rng_for(name)
    shapes = {"dense.kernel": (3, 2), "dense.bias": (2,), "bn.gamma": (2,), "bn.beta": (2,),
              "bn.moving_mean": (2,), "bn.moving_variance": (2,)}
    trainable = ["dense.kernel", "dense.bias", "bn.gamma", "bn.beta"]
    params = {k: f32(rng.uniform(0.5, 1.5, s)) for k, s in shapes.items()}
    # Gradients of a few sizes, some tiny, so that epsilon's place shows.
    grads = [{k: f32(rng.uniform(-1, 1, s) * 10.0 ** rng.integers(-4, 1, s))
              for k, s in shapes.items()} for _ in range(3)]
    after = keras_steps(opt, args, {k: params[k] for k in trainable},
                        [{k: g[k] for k in trainable} for g in grads])
    arrays = dict(params)
    for s, (g, p) in enumerate(zip(grads, after), start=1):
        for k in shapes:
            arrays["opt.grad%d.%s" % (s, k)] = g[k]
            arrays["opt.after%d.%s" % (s, k)] = f32(p[k]) if k in p else params[k]
    write_yaml(name, [3], ["Dense: {units: 2, name: dense}", "BatchNormalization: {name: bn}"],
               "compile:\n  optimizer: %s\n  loss: mse\n" %
               yaml_layer("", dict(name=opt, **args))[2:])
    return save(name, arrays)


def main():
    names = set()
    total = 0
    jobs = ([(n, layer_fixture, a) for n, *a in LAYERS] +
            [(n, graph_fixture, a) for n, *a in GRAPHS] +
            [(n, loss_fixture, a) for n, *a in LOSSES] +
            [(n, optimizer_fixture, a) for n, *a in OPTIMIZERS])
    only = set(sys.argv[1:])
    for name, make, args in jobs:
        assert name.isidentifier() and name not in names, name
        names.add(name)
        if only and name not in only:
            continue
        torch.manual_seed(0)
        size = make(name, *args)
        total += size
        print("%-28s %6d bytes" % (name + ".npz", size))
    # Fixtures whose table line went away go too.
    for f in sorted(os.listdir(HERE)):
        base, ext = os.path.splitext(f)
        if ext in (".npz", ".yaml") and base not in names:
            os.remove(os.path.join(HERE, f))
    print("%d fixtures, %d bytes" % (len(names), total))


if __name__ == "__main__":
    main()
