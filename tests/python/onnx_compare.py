"""Checks an exported ONNX model with the onnx package's checker, runs it in ONNX
Runtime and compares every model output with the blob of the same name that
`netrun forward` wrote.

usage: onnx_compare.py MODEL.onnx INPUTS.safetensors FORWARD.safetensors
Prints one JSON line: {"outputs": {name: max relative error}, "ops": [...], "opset": n,
"input_dims": {name: [dims, a symbolic one as its name]}}, where the
relative error of an output is max|onnx - netrun| / max|netrun|.
"""
import json
import struct
import sys

import numpy as np
import onnx
import onnxruntime as ort


def read_safetensors(path):
    """The F32 tensors of a safetensors file (the format is 8 bytes of header
    length, a JSON header, then the data)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    data = raw[8 + n :]
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        assert info["dtype"] == "F32", (name, info["dtype"])
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype="<f4").reshape(info["shape"])
    return out


def main():
    model_path, inputs_path, forward_path = sys.argv[1:4]
    model = onnx.load(model_path)
    onnx.checker.check_model(model, full_check=True)
    inputs = read_safetensors(inputs_path)
    reference = read_safetensors(forward_path)
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    feed = {i.name: inputs[i.name] for i in session.get_inputs()}
    names = [o.name for o in session.get_outputs()]
    results = session.run(names, feed)
    errors = {}
    for name, got in zip(names, results):
        want = reference[name]
        assert got.shape == want.shape, (name, got.shape, want.shape)
        scale = float(np.max(np.abs(want)))
        assert scale > 0, f"output {name} is all zeros: the comparison would be empty"
        errors[name] = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
    ops = sorted({n.op_type for n in model.graph.node})
    # Each model input's declared dims: an int, or the symbolic name of a dynamic axis.
    input_dims = {
        i.name: [d.dim_param if d.dim_param else d.dim_value
                 for d in i.type.tensor_type.shape.dim]
        for i in model.graph.input
    }
    print(json.dumps({"outputs": errors, "ops": ops, "opset": model.opset_import[0].version,
                      "input_dims": input_dims}))


if __name__ == "__main__":
    main()
