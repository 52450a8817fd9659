#!/usr/bin/python3
"""The reference numbers of tests/test_init.c's regulariser test, from PyTorch.

Keras (keras/regularizers.py) adds l1 * sum|w| + l2 * sum w^2 of each
regularised weight to the mean loss of the batch; PyTorch's autograd then
gives the gradient of that whole loss. One SGD step (learning rate 0.1) of a
Dense(2) layer, mse, a batch of all 4 samples; then the loss at the new
weights, as `evaluate` reports it. Prints C initialisers for the test.
"""
import torch

torch.set_default_dtype(torch.float64)
x = torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, -1.0], [2.0, 0.5, 1.5], [-1.0, -1.0, 0.25]])
y = torch.tensor([[0.5, -1.0], [1.0, 0.0], [-0.5, 2.0], [0.25, 0.75]])
kernel = torch.tensor([[0.3, -0.6], [0.0, 0.9], [-1.2, 0.4]], requires_grad=True)
bias = torch.tensor([0.5, -0.25], requires_grad=True)
L1, L2, BIAS_L2, LR = 0.1, 0.2, 0.01, 0.1   # kernel_regularizer {l1: 0.1, l2: 0.2}; bias_regularizer: l2


def loss_of(k, b):
    mse = ((x @ k + b - y) ** 2).mean()
    return mse + L1 * k.abs().sum() + L2 * (k ** 2).sum() + BIAS_L2 * (b ** 2).sum()


loss = loss_of(kernel, bias)
loss.backward()
with torch.no_grad():
    k1 = kernel - LR * kernel.grad
    b1 = bias - LR * bias.grad
    after = loss_of(k1, b1)


def c(v):
    return ", ".join("%.9g" % f for f in v.flatten().tolist())


print("static const double ref_loss = %.9g, ref_loss_after = %.9g;" % (loss.item(), after.item()))
print("static const double ref_kernel[6] = {%s};" % c(k1))
print("static const double ref_bias[2] = {%s};" % c(b1))
