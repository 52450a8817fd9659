"""make_seeds.py - writes the small seed inputs of the formats the repository
has no files of (tests/fuzz/seeds/HARNESS/; docs/fuzzing.md). Each starts with
the settings bytes its harness takes off the front (tests/fuzz/fuzz_*.c).
Run from this folder with Debian's python3 (numpy, PIL); the output is committed."""
import gzip
import io
import os
import struct

import numpy as np
from PIL import Image


def write(harness, name, data):
    os.makedirs(harness, exist_ok=True)
    with open(os.path.join(harness, name), "wb") as f:
        f.write(data)


def idx(dtype_code, dims, payload):
    return struct.pack(">BBBB", 0, 0, dtype_code, len(dims)) + b"".join(
        struct.pack(">i", d) for d in dims) + payload


def idx_seeds():
    images = idx(0x08, [2, 3, 3], bytes(range(18)))
    labels = idx(0x08, [2], bytes([1, 7]))
    pad = b"\0" * ((-len(images)) % 4)    # the images file is a multiple of 4 bytes long
    write("idx", "raw", bytes([(len(images) + len(pad)) // 4]) + images + pad + labels)
    gz_images = gzip.compress(images, mtime=0)
    pad = b"\0" * ((-len(gz_images)) % 4)
    write("idx", "gzip", bytes([(len(gz_images) + len(pad)) // 4]) + gz_images + pad +
          gzip.compress(labels, mtime=0))


def image_seeds():
    rgb = Image.fromarray(np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) * 4)
    for fmt, mode in [("PNG", "RGB"), ("PNG", "L"), ("PNG", "P"), ("JPEG", "RGB"),
                      ("JPEG", "L"), ("BMP", "RGB"), ("GIF", "P"), ("PPM", "RGB"), ("TGA", "RGB")]:
        out = io.BytesIO()
        rgb.convert(mode).save(out, fmt)
        write("image", "%s_%s" % (fmt.lower(), mode), bytes([0x83, 7]) + out.getvalue())
    out = io.BytesIO()
    Image.fromarray(np.zeros((4, 4, 4), np.uint8), "RGBA").save(out, "PNG")
    write("image", "png_RGBA", bytes([5, 5]) + out.getvalue())


def text_seeds():
    write("csv", "header", b"\x01a,b,label\n1,2.5,0\n-3,4e2,1\n")
    write("csv", "plain", b"\x00" + b"0.5;1;2\n3;4;5\n")
    write("csv", "quoted", b"\x8a\"x\",\"label\"\n\"1\",\"2\"\n")
    write("series", "value", b"\x41\x02time,value\n" + b"".join(b"%d,%d.5\n" % (i, i * i % 7)
                                                                  for i in range(40)))
    write("series", "last", b"\x10\x81" + b"".join(b"%d\n" % i for i in range(20)))
    write("text", "csv", b"\x05text,label\n\"the cat sat\",pos\n\"a dog, barked\",neg\nhi,pos\n")
    write("text", "jsonl", b"\x1b" + b'{"text": "good film", "label": 1}\n'
          b'{"text": "bad \\u00e9 film", "label": 0}\n')
    write("text", "json", b"\x93" + b'[{"text": "x y z", "label": "a"}, '
          b'{"label": "b", "text": "y\\nz"}]')


def npy_seeds():
    for name, a in [("f4", np.arange(6, dtype="<f4").reshape(2, 3)),
                    ("i8", np.arange(4, dtype="<i8")), ("u1", np.arange(3, dtype="|u1")),
                    ("f8", np.zeros((1, 1, 2), "<f8")), ("b1", np.array([True, False]))]:
        out = io.BytesIO()
        np.save(out, a)
        write("npz", "npy_" + name, out.getvalue())


idx_seeds()
image_seeds()
text_seeds()
npy_seeds()
