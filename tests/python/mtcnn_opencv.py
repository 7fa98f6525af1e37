"""MTCNN's published Caffe nets run by OpenCV's dnn module, for comparison with netrun.

  mtcnn_opencv.py dump MODELS OUT_DIR
      writes OUT_DIR/det{1,2,3}.safetensors: every learnable blob as OpenCV read it
      from the .caffemodel, named <layer>.<index> as netrun names them.
  mtcnn_opencv.py run MODELS STEM IN.safetensors OUT.safetensors [BLOB ...]
      runs MODELS/STEM.prototxt + .caffemodel on tensor `data` of IN and writes the
      named output blobs.
Safetensors are read and written here by hand (8-byte header length, JSON header, data).
"""
import json
import struct
import sys

import cv2
import numpy as np


def write_safetensors(path, tensors):
    header, blobs, offset = {}, [], 0
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype="<f4").reshape(info["shape"])
    return out


def load(models, stem):
    return cv2.dnn.readNetFromCaffe(f"{models}/{stem}.prototxt", f"{models}/{stem}.caffemodel")


def dump(models, out_dir):
    for stem in ["det1", "det2", "det3"]:
        net = load(models, stem)
        tensors = {}
        for name in net.getLayerNames():
            layer = net.getLayer(net.getLayerId(name))
            for i, blob in enumerate(layer.blobs):
                # OpenCV keeps biases and PReLU slopes as (n, 1) or (1, n); netrun as (n,).
                arr = blob if blob.ndim == 4 or (blob.ndim == 2 and min(blob.shape) > 1) else blob.reshape(-1)
                tensors[f"{name}.{i}"] = arr
        write_safetensors(f"{out_dir}/{stem}.safetensors", tensors)


def run(models, stem, inp, out, blobs):
    net = load(models, stem)
    net.setInput(read_safetensors(inp)["data"].astype(np.float32))
    results = net.forward(blobs)
    write_safetensors(out, {b: r for b, r in zip(blobs, results)})


if __name__ == "__main__":
    if sys.argv[1] == "dump":
        dump(sys.argv[2], sys.argv[3])
    else:
        run(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6:])
