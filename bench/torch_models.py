#!/usr/bin/python3
"""torch_models.py - the PyTorch side of `make bench`: the course's models as
nncc compiles them from models/*.yaml, trained and run the way PyTorch runs
best on this machine (see /work/shared/BENCHMARKING.md):

  torch_models.py train MODEL --threads N [--epochs E] [--limit L] [--batch-size B] [--data DIR]
  torch_models.py infer MODEL --threads N --npy X.npy [--batch-size B]

`train` prints one JSON line per epoch: {"epoch", "seconds", "loss", "accuracy"}
("mae" in place of "accuracy" for sunspots_lstm). `seconds` times the training
step loop only (forward, loss, backward, update, accuracy), with the data
already in memory as tensors, as nncc's --history `seconds` column does; for
the text and series models, which validate every epoch in nncc (their files
hold a validation split), it also times the same forward pass over the
validation samples, as nncc's epoch does. `infer` prints {"images", "seconds"} for
model(x) in eval mode under no_grad over the whole array, batch by batch.

Same architecture, Keras initialisation (glorot_uniform kernels, zero
biases; recurrent kernels orthogonal and the LSTM's forget-gate bias 1;
embeddings uniform in +-0.05), optimizer settings and batch size as the YAML
files. The text model's word ids come from a tokenizer written here by Keras's
rules (docs/model-file.md, Text), fit on the training 80 % as nncc's is. PyTorch is NCHW
where nncc is NHWC: the arithmetic is the same, only the memory order differs.
The caller sets OPENBLAS_CORETYPE; this file sets threads and flush-denormal.
"""
import argparse
import gzip
import json
import os
import re
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

FASHION_DIR = "/usr/share/datasets/fashion-mnist"


def fashion_mlp(*units):
    layers, width = [nn.Flatten()], 784
    for u in units:
        layers += [nn.Linear(width, u), nn.ReLU()]
        width = u
    return nn.Sequential(*layers, nn.Linear(width, 10))


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


class GlossesBiLSTM(nn.Module):
    """Embedding(10000, 16) -> Bidirectional(LSTM(32)) -> Dense(6, relu) ->
    Dense(1) (the sigmoid is in the loss). Keras's Bidirectional concatenates
    the forward LSTM's last output and the backward one's (h_n[0], h_n[1])."""

    def __init__(self):
        super().__init__()
        self.embedding = nn.Embedding(10000, 16)
        self.lstm = nn.LSTM(16, 32, batch_first=True, bidirectional=True)
        self.dense = nn.Linear(64, 6)
        self.out = nn.Linear(6, 1)

    def forward(self, ids):
        _, (h, _) = self.lstm(self.embedding(ids))
        return self.out(F.relu(self.dense(torch.cat([h[0], h[1]], dim=1))))


class SunspotsLSTM(nn.Module):
    """Conv1D(64, 3, causal, relu) -> LSTM(64, return_sequences) -> LSTM(64)
    -> Dense(30, relu) -> Dense(10, relu) -> Dense(1) -> x * 400. Causal: two
    zeros on the left of each window (kernel_size - 1), as Keras pads."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv1d(1, 64, 3)
        self.lstm = nn.LSTM(64, 64, num_layers=2, batch_first=True)
        self.d1, self.d2, self.d3 = nn.Linear(64, 30), nn.Linear(30, 10), nn.Linear(10, 1)

    def forward(self, x):                      # N, 64, 1 as nncc's windows
        x = F.relu(self.conv(F.pad(x.transpose(1, 2), (2, 0))))
        _, (h, _) = self.lstm(x.transpose(1, 2))
        return self.d3(F.relu(self.d2(F.relu(self.d1(h[-1]))))) * 400


# name: (builder, batch size, steps per epoch or None, data kind, optimizer)
MODELS = {
    "fashion_mlp": (lambda: fashion_mlp(128), 32, None, "fashion", "adam"),
    "fashion_mlp_1024": (lambda: fashion_mlp(1024), 32, None, "fashion", "adam"),
    "fashion_mlp_512_256": (lambda: fashion_mlp(512, 256), 32, None, "fashion", "adam"),
    "fashion_cnn": (fashion_cnn, 32, None, "fashion", "adam"),
    "horse_or_human": (horse_or_human, 128, 6, "images", "rmsprop"),
    "glosses_bilstm": (GlossesBiLSTM, 32, None, "text", "adam"),
    "sunspots_lstm": (SunspotsLSTM, 32, None, "series", "sgd"),
}


def keras_init(model):
    """glorot_uniform kernels and zero biases: PyTorch's xavier_uniform_ uses
    the same fans (in*kh*kw, out*kh*kw) and limit sqrt(6/(fan_in+fan_out)).
    An LSTM's weight_ih (4H, in) is Keras's kernel (in, 4H) transposed, same
    fans; weight_hh orthogonal as Keras's recurrent kernel; of its two biases
    one holds Keras's bias (the forget gate's quarter, PyTorch's second, 1),
    the other stays 0. Embeddings: Keras's RandomUniform(-0.05, 0.05)."""
    for layer in model.modules():
        if isinstance(layer, (nn.Linear, nn.Conv1d, nn.Conv2d)):
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.LSTM):
            keras_lstm_init(layer)
        elif isinstance(layer, nn.Embedding):
            nn.init.uniform_(layer.weight, -0.05, 0.05)


def keras_lstm_init(lstm):
    units = lstm.hidden_size
    for name, param in lstm.named_parameters():
        if name.startswith("weight_ih"):
            nn.init.xavier_uniform_(param)
        elif name.startswith("weight_hh"):
            nn.init.orthogonal_(param)
        else:
            nn.init.zeros_(param)
            if name.startswith("bias_ih"):
                with torch.no_grad():
                    param[units:2 * units] = 1.0


def make_optimizer(kind, params):
    if kind == "adam":
        return torch.optim.Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-7)
    if kind == "sgd":   # Keras's momentum update equals PyTorch's at a constant rate
        return torch.optim.SGD(params, lr=1e-5, momentum=0.9)
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


KERAS_FILTERS = '!"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n'


def keras_words(text):
    """Keras's text_to_word_sequence: lower case, every filter character a space."""
    return re.sub("[" + re.escape(KERAS_FILTERS) + "]", " ", text.lower()).split()


def keras_tokenizer(texts, num_words, oov):
    """Tokenizer(num_words, oov_token).fit_on_texts: ids by descending count,
    ties in first-appearance order, from 1; the oov token is id 1."""
    counts = {}
    for text in texts:
        for w in keras_words(text):
            counts[w] = counts.get(w, 0) + 1
    ranked = [oov] + sorted(counts, key=lambda w: -counts[w])   # sorted() is stable
    return {w: i + 1 for i, w in enumerate(ranked) if i + 1 < num_words}


def keras_sequences(texts, index, length):
    """texts_to_sequences then pad_sequences(padding="post", truncating="post")."""
    rows = np.zeros((len(texts), length), dtype=np.int64)
    for r, text in enumerate(texts):
        ids = [index.get(w, 1) for w in keras_words(text)][:length]
        rows[r, :len(ids)] = ids
    return torch.from_numpy(rows)


def text_data(root, limit):
    """animal_or_plant.json as models/glosses_bilstm.yaml reads it: the
    tokenizer fit on all records but the last 20 % (the same vocabulary as
    nncc's, checked word for word); then, as nncc's --limit, the first LIMIT
    records, of which the last 20 % validate."""
    with open(os.path.join(root, "animal_or_plant.json")) as f:
        records = json.load(f)
    texts = [r["definition"] for r in records]
    index = keras_tokenizer(texts[:int(len(texts) * 0.8)], 10000, "<OOV>")
    texts = texts[:limit or None]
    labels = torch.tensor([[float(r["is_animal"])] for r in records[:len(texts)]])
    x = keras_sequences(texts, index, 120)
    split = int(len(texts) * 0.8)
    return (x[:split], labels[:split]), (x[split:], labels[split:])


def series_data(root, limit):
    """sunspots.csv's column as models/sunspots_lstm.yaml windows it: 64
    values and the next; training windows end before month 3000, the windows
    whose label is month 3000 or later validate."""
    with open(os.path.join(root, "sunspots.csv")) as f:
        values = np.array([float(line.split(",")[1]) for line in f.read().split()[1:]],
                          dtype=np.float32)
    def windows(first, last):   # labels first..last-1
        x = np.stack([values[t - 64:t] for t in range(first, last)])
        return torch.from_numpy(x).unsqueeze(2), torch.from_numpy(values[first:last]).unsqueeze(1)
    x, y = windows(64, 3000)
    if limit:
        x, y = x[:limit], y[:limit]
    return (x, y), windows(3000, len(values))


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
    val = None
    if kind == "fashion":
        x, y = fashion_data(True, args.limit)
        loss_fn = nn.CrossEntropyLoss()
    elif kind == "images":
        x, y = image_data(args.data, args.limit)
        loss_fn = nn.BCEWithLogitsLoss()
    elif kind == "text":
        (x, y), val = text_data(args.data, args.limit)
        loss_fn = nn.BCEWithLogitsLoss()
    else:
        (x, y), val = series_data(args.data, args.limit)
        loss_fn = nn.HuberLoss(delta=1.0)
    metric = "mae" if kind == "series" else "accuracy"
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
                elif kind == "series":
                    correct += float((out - yb).abs().sum())
                else:
                    correct += int(((out > 0).float() == yb).sum())
            loss_sum += float(loss) * len(idx)
            seen += len(idx)
        if val is not None:
            validate(model, loss_fn, val, batch)
        seconds = time.perf_counter() - start
        print(json.dumps({"epoch": epoch + 1, "seconds": seconds, "loss": loss_sum / seen,
                          metric: correct / seen}), flush=True)


def validate(model, loss_fn, val, batch):
    """The validation pass nncc's epoch makes: forward and loss, batch by batch."""
    model.eval()
    with torch.no_grad():
        for i in range(0, val[0].shape[0], batch):
            float(loss_fn(model(val[0][i:i + batch]), val[1][i:i + batch]))
    model.train()


def infer(args):
    build = MODELS[args.model][0]
    torch.manual_seed(args.seed)
    model = build()
    keras_init(model)
    model.eval()
    kind = MODELS[args.model][3]
    x = np.load(args.npy)
    if kind == "text":      # N, 120 word ids
        x = torch.from_numpy(x.astype(np.int64, copy=False))
    else:
        x = torch.from_numpy(x.astype(np.float32, copy=False))
    if kind == "images":    # N, H, W, C as nncc reads it -> N, C, H, W
        x = x.permute(0, 3, 1, 2)
    elif kind == "fashion":  # N, 28, 28 -> N, 1, 28, 28
        x = x.unsqueeze(1)
    elif kind == "series":  # N, 64 -> N, 64, 1 as nncc's windows
        x = x.reshape(x.shape[0], -1, 1)
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
