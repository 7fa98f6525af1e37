"""Files for the BVLC layer tests, written by independent clients.

  bvlc_files.py infogain OUT.binaryproto C
      Compiles caffe_weights.proto with grpcio-tools' protoc and writes, with Python's
      protobuf, a BlobProto of shape 1x1xCxC holding H[l, k] = 1 + l + 0.25*k (and
      prints the values as JSON).
  bvlc_files.py h5write DIR
      With h5py writes DIR/a.h5 (data: 5x2x3 float32 contiguous, label: 5 float64) and
      DIR/b.h5 (data: 3x2x3 float64, chunked, gzip and shuffle filters;
      label: 3 float32, chunked and gzip), DIR/list.txt naming both (b.h5 relative, a.h5 absolute), and prints
      {"a": {...}, "b": {...}} with every dataset's values as JSON.
  bvlc_files.py h5read FILE
      Reads every dataset of FILE with h5py and prints {name: {"shape", "dtype", "values"}}.
"""
import json
import os
import sys
import tempfile

from caffe_interop import compile_proto


def infogain(out, c):
    with tempfile.TemporaryDirectory() as tmp:
        pb = compile_proto(tmp)
        blob = pb.BlobProto()
        blob.shape.dim.extend([1, 1, c, c])
        values = [1.0 + l + 0.25 * k for l in range(c) for k in range(c)]
        blob.data.extend(values)
        with open(out, "wb") as f:
            f.write(blob.SerializeToString())
    print(json.dumps(values))


def h5write(d):
    import h5py
    import numpy as np

    rng = np.random.default_rng(5)
    a_data = rng.standard_normal((5, 2, 3)).astype(np.float32)
    a_label = np.arange(5, dtype=np.float64) * 1.5
    b_data = rng.standard_normal((3, 2, 3))
    b_label = np.array([[7.0], [8.0], [9.0]], dtype=np.float32)
    with h5py.File(os.path.join(d, "a.h5"), "w") as f:
        f.create_dataset("data", data=a_data)
        f.create_dataset("label", data=a_label)
        f.create_dataset("unused", data=np.zeros(3))
    with h5py.File(os.path.join(d, "b.h5"), "w") as f:
        f.create_dataset("data", data=b_data, chunks=(2, 2, 3), compression="gzip", shuffle=True)
        f.create_dataset("label", data=b_label.reshape(3), chunks=(1,), compression="gzip")
    with open(os.path.join(d, "list.txt"), "w") as f:
        f.write(os.path.join(d, "a.h5") + "\n\nb.h5\n")
    out = {
        "a": {"data": a_data.ravel().tolist(), "label": a_label.tolist()},
        "b": {"data": b_data.ravel().tolist(), "label": b_label.ravel().tolist()},
    }
    print(json.dumps(out))


def h5read(path):
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for name, ds in f.items():
            out[name] = {"shape": list(ds.shape), "dtype": str(ds.dtype),
                         "values": [float(v) for v in ds[()].ravel()]}
    print(json.dumps(out))


def main():
    cmd = sys.argv[1]
    if cmd == "infogain":
        infogain(sys.argv[2], int(sys.argv[3]))
    elif cmd == "h5write":
        h5write(sys.argv[2])
    elif cmd == "h5read":
        h5read(sys.argv[2])
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
