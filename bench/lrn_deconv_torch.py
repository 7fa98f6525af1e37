"""PyTorch side of bench/lrn_deconv.sh: the same LRN and Deconvolution as
lrn_deconv.prototxt (LocalResponseNorm divides alpha by the size as Caffe's
ACROSS_CHANNELS does; ConvTranspose2d is Caffe's Deconvolution), median
forward and backward ms of each over ITERATIONS after one warm-up."""
import statistics
import sys
import time

import torch

threads, iterations = int(sys.argv[1]), int(sys.argv[2])
torch.set_num_threads(threads)
torch.manual_seed(0)


def timed(op, x):
    fwd, bwd = [], []
    for i in range(iterations + 1):
        x = x.detach().requires_grad_(True)
        t = time.perf_counter()
        y = op(x)
        f = time.perf_counter() - t
        g = torch.rand_like(y)
        t = time.perf_counter()
        y.backward(g)
        b = time.perf_counter() - t
        if i:
            fwd.append(f * 1e3)
            bwd.append(b * 1e3)
    return statistics.median(fwd), statistics.median(bwd)


lrn = torch.nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)
deconv = torch.nn.ConvTranspose2d(64, 32, 4, stride=2, padding=1, bias=True)
for name, op, shape in [("lrn", lrn, (8, 96, 55, 55)), ("deconv", deconv, (8, 64, 28, 24))]:
    f, b = timed(op, torch.rand(shape) * 2 - 1)
    print(f"{name} {f:.3f} {b:.3f}")
