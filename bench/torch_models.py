#!/usr/bin/python3
"""torch_models.py - the PyTorch side of `make bench`: the course's models as
nncc compiles them from models/*.yaml, trained and run the way PyTorch runs
best on this machine (see /work/shared/BENCHMARKING.md):

  torch_models.py train MODEL --threads N [--epochs E] [--limit L] [--batch-size B] [--data DIR]
  torch_models.py infer MODEL --threads N --npy X.npy [--batch-size B]

`train` prints one JSON line per epoch: {"epoch", "seconds", "loss", "accuracy"}.
`seconds` times the training step loop only (forward, loss, backward, update,
accuracy), with the data already in memory as float32 tensors, as nncc's
--history `seconds` column does. `infer` prints {"images", "seconds"} for
model(x) in eval mode under no_grad over the whole array, batch by batch.

Same architecture, Keras initialisation (glorot_uniform kernels, zero
biases), optimizer settings and batch size as the YAML files. PyTorch is NCHW
where nncc is NHWC: the arithmetic is the same, only the memory order differs.
The caller sets OPENBLAS_CORETYPE; this file sets threads and flush-denormal.
"""
import argparse
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
from torch import nn

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def fashion_mlp(units):
    return nn.Sequential(nn.Flatten(), nn.Linear(784, units), nn.ReLU(), nn.Linear(units, 10))


def fashion_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(5 * 5 * 64, 128), nn.ReLU(), nn.Linear(128, 10))


def horse_or_human():
    layers, channels = [], 3
    for filters in (16, 32, 64, 64):
        layers += [nn.Conv2d(channels, filters, 3), nn.ReLU(), nn.MaxPool2d(2)]
        channels = filters
    # 300 -> 298 -> 149 -> 147 -> 73 -> 71 -> 35 -> 33 -> 16
    layers += [nn.Flatten(), nn.Linear(16 * 16 * 64, 512), nn.ReLU(), nn.Linear(512, 1)]
    return nn.Sequential(*layers)


# name: (builder, batch size, steps per epoch or None, data kind, optimizer)
MODELS = {
    "fashion_mlp": (lambda: fashion_mlp(128), 32, None, "fashion", "adam"),
    "fashion_mlp_1024": (lambda: fashion_mlp(1024), 32, None, "fashion", "adam"),
    "fashion_cnn": (fashion_cnn, 32, None, "fashion", "adam"),
    "horse_or_human": (horse_or_human, 128, 6, "images", "rmsprop"),
}


def keras_init(model):
    """glorot_uniform kernels and zero biases: PyTorch's xavier_uniform_ uses
    the same fans (in*kh*kw, out*kh*kw) and limit sqrt(6/(fan_in+fan_out))."""
    for layer in model.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)


def make_optimizer(kind, params):
    if kind == "adam":
        return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    return torch.optim.RMSprop(params, lr=1e-3, alpha=0.9, eps=1e-7)


def read_idx(path):
    """An IDX file (gzip): big-endian dimensions after a 4-byte magic."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def fashion_data(train, limit):
    prefix = "train" if train else "t10k"
    x = read_idx(os.path.join(FASHION_DIR, prefix + "-images-idx3-ubyte.gz"))
    y = read_idx(os.path.join(FASHION_DIR, prefix + "-labels-idx1-ubyte.gz"))
    if limit:
        x, y = x[:limit], y[:limit]
    x = torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)  # N, 1, 28, 28
    return x.contiguous(), torch.from_numpy(y.astype(np.int64))


def image_data(root, limit):
    """Class folders under ROOT/train, sorted by name as Keras (and nncc) do."""
    from PIL import Image
    train = os.path.join(root, "train")
    xs, ys = [], []
    for label, cls in enumerate(sorted(os.listdir(train))):
        folder = os.path.join(train, cls)
        if not os.path.isdir(folder):
            continue
        for name in sorted(os.listdir(folder)):
            if limit and len(xs) == limit:
                break
            img = Image.open(os.path.join(folder, name)).convert("RGB").resize((300, 300))
            xs.append(np.asarray(img, dtype=np.uint8))
            ys.append(label)
    x = np.stack(xs).astype(np.float32) / 255.0
    x = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous()  # N, 3, 300, 300
    return x, torch.tensor(ys, dtype=torch.float32).unsqueeze(1)


def batches(n, batch, steps, gen):
    """Index tensors for one epoch: a fresh permutation each pass; with STEPS
    the batches stay whole and wrap into another pass (Keras generators)."""
    if steps is None:
        perm = torch.randperm(n, generator=gen)
        return [perm[i:i + batch] for i in range(0, n, batch)]
    need = steps * batch
    perm = torch.cat([torch.randperm(n, generator=gen) for _ in range((need + n - 1) // n)])
    return [perm[i * batch:(i + 1) * batch] for i in range(steps)]


def train(args):
    build, batch, steps, kind, opt_kind = MODELS[args.model]
    batch = args.batch_size or batch
    torch.manual_seed(args.seed)
    model = build()
    keras_init(model)
    model.train()
    opt = make_optimizer(opt_kind, model.parameters())
    if kind == "fashion":
        x, y = fashion_data(True, args.limit)
        loss_fn = nn.CrossEntropyLoss()
    else:
        x, y = image_data(args.data, args.limit)
        loss_fn = nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(args.seed)
    for epoch in range(args.epochs):
        idx_list = batches(x.shape[0], batch, steps, gen)
        start = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        for idx in idx_list:
            xb, yb = x[idx], y[idx]
            opt.zero_grad(set_to_none=True)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            opt.step()
            with torch.no_grad():
                if kind == "fashion":
                    correct += int((out.argmax(1) == yb).sum())
                else:
                    correct += int(((out > 0).float() == yb).sum())
            loss_sum += float(loss) * len(idx)
            seen += len(idx)
        seconds = time.perf_counter() - start
        print(json.dumps({"epoch": epoch + 1, "seconds": seconds, "loss": loss_sum / seen,
                          "accuracy": correct / seen}), flush=True)


def infer(args):
    build = MODELS[args.model][0]
    torch.manual_seed(args.seed)
    model = build()
    keras_init(model)
    model.eval()
    x = torch.from_numpy(np.load(args.npy).astype(np.float32, copy=False))
    if x.dim() == 4:        # N, H, W, C as nncc reads it -> N, C, H, W
        x = x.permute(0, 3, 1, 2)
    else:                   # N, 28, 28 -> N, 1, 28, 28
        x = x.unsqueeze(1)
    x = x.contiguous()
    batch = args.batch_size or MODELS[args.model][1]
    with torch.no_grad():
        model(x[:batch])  # warm-up: oneDNN primitives are made on first use
        start = time.perf_counter()
        for i in range(0, x.shape[0], batch):
            model(x[i:i + batch])
        seconds = time.perf_counter() - start
    print(json.dumps({"images": int(x.shape[0]), "seconds": seconds}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("command", choices=["train", "infer"])
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--limit", type=int, default=0)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--data", default="")
    p.add_argument("--npy", default="")
    p.add_argument("--batch-size", type=int, default=0, help="default: the model's")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    (train if args.command == "train" else infer)(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
