"""Independent clients for netrun's Caffe interop tests.

  caffe_interop.py encode OUT_DIR
      Compiles caffe_weights.proto with grpcio-tools' protoc, and with Python's
      protobuf writes OUT_DIR/v2.caffemodel (`layer` entries: blobs with `shape`,
      one as double_data, a layer the test net lacks) and OUT_DIR/v1.caffemodel
      (V1 `layers` entries: enum types, legacy num/channels/height/width), and
      OUT_DIR/expected.json: every blob's shape and float32 values.
  caffe_interop.py decode MODEL.caffemodel OUT.json
      Decodes a caffemodel (netrun's) with Python's protobuf into JSON.
  caffe_interop.py mtcnn-input IMAGE H W OUT.safetensors
      A face crop resized to HxW, RGB, scaled (x - 127.5) * 0.0078125 and
      transposed (H and W swapped) as the MTCNN release expects: tensor `data`.
  caffe_interop.py opencv PROTOTXT MODEL INPUT.safetensors OUT.safetensors BLOB...
      Runs OpenCV's dnn Caffe importer on the input tensor `data` and writes
      the named output blobs.
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def compile_proto(out_dir):
    from grpc_tools import protoc
    import grpc_tools

    include = os.path.join(os.path.dirname(grpc_tools.__file__), "_proto")
    rc = protoc.main(["protoc", f"-I{HERE}", f"-I{include}", f"--python_out={out_dir}",
                      os.path.join(HERE, "caffe_weights.proto")])
    if rc != 0:
        raise SystemExit(f"protoc failed with {rc}")
    sys.path.insert(0, out_dir)
    import caffe_weights_pb2
    return caffe_weights_pb2


def values(rng, shape):
    return rng.standard_normal(int(np.prod(shape))).astype(np.float32)


def encode(out_dir):
    pb = compile_proto(out_dir)
    rng = np.random.default_rng(13)
    # The test net: data 1x3x8x8 -> conv1 (4 filters 3x3) -> relu1 -> ip1 (5 outputs).
    blobs = {
        "conv1": [(4, 3, 3, 3), (4,)],
        "ip1": [(5, 144), (5,)],
        "extra": [(2, 2)],
    }
    vals = {f"{l}.{i}": values(rng, s) for l, ss in blobs.items() for i, s in enumerate(ss)}
    expected = {}
    for name, v in vals.items():
        layer, i = name.rsplit(".", 1)
        shape = blobs[layer][int(i)]
        expected[name] = {"shape": list(shape), "values": [float(x) for x in v]}

    net = pb.NetParameter(name="tiny")
    net.layer.add(name="data", type="Input", top=["data"])
    for layer, typ, bottom in [("conv1", "Convolution", "data"), ("ip1", "InnerProduct", "conv1"),
                               ("extra", "InnerProduct", "ip1")]:
        l = net.layer.add(name=layer, type=typ, bottom=[bottom], top=[layer])
        for i, shape in enumerate(blobs[layer]):
            b = l.blobs.add()
            b.shape.dim.extend(shape)
            v = vals[f"{layer}.{i}"]
            if layer == "ip1" and i == 1:
                b.double_data.extend(float(x) for x in v)
            else:
                b.data.extend(float(x) for x in v)
        if layer == "conv1":
            net.layer.add(name="relu1", type="ReLU", bottom=["conv1"], top=["conv1"])
    with open(os.path.join(out_dir, "v2.caffemodel"), "wb") as f:
        f.write(net.SerializeToString())

    v1 = pb.NetParameter(name="tiny")
    L = pb.V1LayerParameter
    for layer, typ, bottom in [("conv1", L.CONVOLUTION, "data"), ("relu1", L.RELU, "conv1"),
                               ("ip1", L.INNER_PRODUCT, "conv1")]:
        l = v1.layers.add(name=layer, type=typ, bottom=[bottom], top=[layer if layer != "relu1" else "conv1"])
        for i, shape in enumerate(blobs.get(layer, [])):
            b = l.blobs.add()
            legacy = (1,) * (4 - len(shape)) + tuple(shape)
            b.num, b.channels, b.height, b.width = legacy
            b.data.extend(float(x) for x in vals[f"{layer}.{i}"])
    with open(os.path.join(out_dir, "v1.caffemodel"), "wb") as f:
        f.write(v1.SerializeToString())
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f)


def decode(model, out):
    import tempfile

    pb = compile_proto(tempfile.mkdtemp())
    net = pb.NetParameter()
    with open(model, "rb") as f:
        net.ParseFromString(f.read())
    layers = []
    for l in net.layer:
        layers.append({
            "name": l.name, "type": l.type, "bottom": list(l.bottom), "top": list(l.top),
            "blobs": [{"shape": list(b.shape.dim), "values": list(b.data)} for b in l.blobs],
        })
    with open(out, "w") as f:
        json.dump({"name": net.name, "layers": layers}, f)


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", info
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(body[a:b], dtype="<f4").reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    header, offset, chunks = {}, 0, []
    for name, arr in tensors.items():
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        chunks.append(data)
    h = json.dumps(header).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)) + h + b"".join(chunks))


def mtcnn_input(image, h, w, out):
    import cv2

    img = cv2.imread(image, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"cannot read {image}")
    img = cv2.resize(img, (int(w), int(h)), interpolation=cv2.INTER_AREA)
    rgb = cv2.cvtColor(img, cv2.COLOR_BGR2RGB).astype(np.float32)
    x = (rgb - 127.5) * 0.0078125
    # HxWxC -> CxWxH: the transposed image the MTCNN weights were trained on.
    x = x.transpose(2, 1, 0)[None]
    write_safetensors(out, {"data": x})


def opencv(prototxt, model, inputs, out, blobs):
    import cv2

    net = cv2.dnn.readNetFromCaffe(prototxt, model)
    x = read_safetensors(inputs)["data"]
    net.setInput(np.ascontiguousarray(x), "data")
    outs = net.forward(blobs)
    write_safetensors(out, {b: np.asarray(o, dtype=np.float32) for b, o in zip(blobs, outs)})


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "encode":
        encode(*args)
    elif cmd == "decode":
        decode(*args)
    elif cmd == "mtcnn-input":
        mtcnn_input(*args)
    elif cmd == "opencv":
        opencv(args[0], args[1], args[2], args[3], args[4:])
    else:
        raise SystemExit(f"unknown command {cmd}")
