#!/usr/bin/python3
"""The reference numbers of tests/test_image_output.c, from PyTorch.

A model whose output is an image: Conv2D(1, 3x3, padding same, sigmoid) on
4x4x1 inputs, trained as an autoencoder (the target is the input) with mse,
Keras's mean over every output element. One SGD step (learning rate 0.5) on
a batch of both samples; then the trained model's outputs. Then the same
step with binary_crossentropy, which Keras computes from the logits when the
output is a sigmoid's (as nncc fuses it): BCE with logits, the mean over
every element. Keras's kernel
layout [kh, kw, in, out] is PyTorch's [out, in, kh, kw] transposed.
Prints C initialisers for the test.
"""
import torch

torch.set_default_dtype(torch.float64)
x = torch.tensor([[0.0, 0.2, 0.4, 0.6], [0.8, 1.0, 0.1, 0.3], [0.5, 0.7, 0.9, 0.0], [0.25, 0.5, 0.75, 1.0],
                  [1.0, 0.9, 0.8, 0.7], [0.6, 0.5, 0.4, 0.3], [0.2, 0.1, 0.0, 0.5], [0.3, 0.6, 0.9, 0.2]])
x = x.reshape(2, 1, 4, 4)
k = torch.tensor([[0.1, -0.2, 0.3], [0.0, 0.5, -0.1], [0.2, 0.1, -0.3]])   # [kh][kw], one channel
kernel = k.reshape(1, 1, 3, 3).clone().requires_grad_(True)
bias = torch.tensor([0.05], requires_grad=True)


def forward(kk, b):
    return torch.sigmoid(torch.nn.functional.conv2d(x, kk, b, padding=1))


loss = ((forward(kernel, bias) - x) ** 2).mean()
loss.backward()
with torch.no_grad():
    k1 = kernel - 0.5 * kernel.grad
    b1 = bias - 0.5 * bias.grad
    y1 = forward(k1, b1)


def c(v):
    return ", ".join("%.9g" % f for f in v.flatten().tolist())


print("static const double ref_loss = %.9g;" % loss.item())
print("static const double ref_kernel[9] = {%s};" % c(k1))   # [kh][kw] is Keras's order here
print("static const double ref_bias = %.9g;" % b1.item())
print("static const double ref_y[32] = {%s};" % c(y1))       # NHWC with one channel is NCHW


kernel = k.reshape(1, 1, 3, 3).clone().requires_grad_(True)
bias = torch.tensor([0.05], requires_grad=True)
logits = torch.nn.functional.conv2d(x, kernel, bias, padding=1)
bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, x)
bce.backward()
with torch.no_grad():
    print("static const double bce_loss = %.9g;" % bce.item())
    print("static const double bce_kernel[9] = {%s};" % c(kernel - 0.5 * kernel.grad))
    print("static const double bce_bias = %.9g;" % (bias - 0.5 * bias.grad).item())
