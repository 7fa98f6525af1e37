"""Writes tests/layers_recurrent/lstm_torch_reference.json: PyTorch's LSTM on a short
sequence, with its weights permuted into Caffe's LSTM layout, the outputs h and the
gradients of a fixed linear loss, for tests/layers_recurrent/lstm_torch.rs (which reads
the file and needs no torch).

usage: lstm_reference.py OUT.json      (run with a Python that has torch)

Conventions bridged here:
- torch.nn.LSTM packs its 4H gate rows as (i, f, g, o) in weight_ih (4H x I),
  weight_hh (4H x H) and two biases b_ih, b_hh; Caffe's LSTM packs (i, f, o, g) in
  W_xc (4H x I), W_hc (4H x H) and one bias b_c. So W_xc = P·weight_ih,
  W_hc = P·weight_hh, b_c = P·(b_ih + b_hh), P the row permutation below; the
  gradient of b_c is P·dL/db_ih (b_ih and b_hh get the same gradient).
- Caffe's `cont` input: cont[t][n] = 0 starts stream n afresh at step t (h and c
  before it count as zero). torch has no such input, so each stream is run segment
  by segment (a segment starts where cont = 0), every segment from the zero state,
  and the pieces are put back in place; the gradients add up over the pieces.

Values: float32 inputs and weights (what netrun holds), computed in float64; the
loss is L = sum_{t,n,h} R[t,n,h]·h[t,n,h] with a fixed R (written as `top_diff`).
"""
import json
import sys

import torch

T, N, I, H = 4, 2, 3, 5
SEED = 15


def caffe_rows(w):
    """torch's gate blocks (i, f, g, o) of a 4H-row tensor in Caffe's order (i, f, o, g)."""
    i, f, g, o = w.split(H, dim=0)
    return torch.cat([i, f, o, g], dim=0)


def run(lstm, x, cont):
    """h (T x N x H) of `lstm` over x, with stream n restarted wherever cont[t][n] = 0."""
    out = [[None] * N for _ in range(T)]
    for n in range(N):
        starts = [t for t in range(T) if cont[t][n] == 0.0] or [0]
        if starts[0] != 0:
            starts = [0] + starts
        bounds = starts + [T]
        for a, b in zip(bounds, bounds[1:]):
            piece, _ = lstm(x[a:b, n : n + 1, :])
            for t in range(a, b):
                out[t][n] = piece[t - a, 0, :]
    return torch.stack([torch.stack(row) for row in out])


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def case(name, cont, gen):
    lstm = torch.nn.LSTM(I, H).double()
    with torch.no_grad():
        # Uniform weights rounded to float32, so netrun gets exactly these values.
        for p in lstm.parameters():
            p.copy_((torch.rand(p.shape, generator=gen) * 1.4 - 0.7).float().double())
    x = (torch.rand(T, N, I, generator=gen) * 2 - 1).float().double().requires_grad_()
    r = (torch.rand(T, N, H, generator=gen) * 2 - 1).float().double()
    h = run(lstm, x, cont)
    loss = (r * h).sum()
    loss.backward()
    return {
        "name": name,
        "cont": [v for row in cont for v in row],
        "x": flat(x),
        "W_xc": flat(caffe_rows(lstm.weight_ih_l0)),
        "b_c": flat(caffe_rows(lstm.bias_ih_l0 + lstm.bias_hh_l0)),
        "W_hc": flat(caffe_rows(lstm.weight_hh_l0)),
        "top_diff": flat(r),
        "h": flat(h),
        "dx": flat(x.grad),
        "dW_xc": flat(caffe_rows(lstm.weight_ih_l0.grad)),
        "db_c": flat(caffe_rows(lstm.bias_ih_l0.grad)),
        "dW_hc": flat(caffe_rows(lstm.weight_hh_l0.grad)),
    }


def main():
    out = sys.argv[1]
    gen = torch.Generator().manual_seed(SEED)
    torch.manual_seed(SEED)
    start = [[0.0] * N] + [[1.0] * N for _ in range(T - 1)]
    # Stream 1 starts again at step 2.
    reset = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    doc = {
        "about": "torch.nn.LSTM (torch " + torch.__version__ + ") in Caffe's LSTM layout; "
        "written by tests/python/lstm_reference.py",
        "dims": {"T": T, "N": N, "I": I, "H": H},
        "cases": [case("cont_from_zero", start, gen), case("reset_mid_sequence", reset, gen)],
    }
    with open(out, "w") as f:
        f.write(dumps(doc) + "\n")


def dumps(v, indent=""):
    """JSON with one key per line and numbers as %.9g: exact for the float32 inputs
    (9 significant digits round-trip a float32), far inside f32 tolerance for the
    float64 results, and a file of a few KB."""
    if isinstance(v, dict):
        inner = indent + " "
        items = [f"{inner}{json.dumps(k)}: {dumps(x, inner)}" for k, x in v.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(v, list) and v and isinstance(v[0], dict):
        inner = indent + " "
        return "[\n" + ",\n".join(inner + dumps(x, inner) for x in v) + "\n" + indent + "]"
    if isinstance(v, list):
        return "[" + ", ".join("%.9g" % x for x in v) + "]"
    if isinstance(v, float):
        return "%.9g" % v
    return json.dumps(v)


if __name__ == "__main__":
    main()
