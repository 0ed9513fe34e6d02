"""The TF.js → ONNX converter against an independent PyTorch computation of the same graph.

The graph is written here in TF.js's own format (NHWC, HWIO kernels, float16-quantised weights,
constant sub-graphs, multi-output SplitV) and holds every operation the default detector uses,
including a grouped and a strided SAME convolution, so a wrong layout, padding or group count in
the converter shows as a numeric difference.
"""

import base64
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch.nn import functional

from pipeline.tfjs_onnx import ConversionError, convert, free_spatial

RNG = np.random.default_rng(7)


def _node(name: str, op: str, inputs: list[str] | None = None, **attr: dict) -> dict:
    return {"name": name, "op": op, "input": inputs or [], "attr": attr}


def _ints(values: list[int]) -> dict:
    return {"list": {"i": [str(v) for v in values]}}


def _text(value: str) -> dict:
    return {"s": base64.b64encode(value.encode()).decode()}


def _conv(name: str, source: str, kernel: str, padding: str, stride: int) -> dict:
    return _node(
        name, "Conv2D", [source, kernel], padding=_text(padding), strides=_ints([1, stride, stride, 1]),
        data_format=_text("NHWC"), dilations=_ints([1, 1, 1, 1]),
    )  # fmt: skip


def _write_model(folder: Path, constants: dict[str, np.ndarray], nodes: list[dict], outputs: list[str]) -> Path:
    """model.json + one shard; float arrays are stored float16-quantised like the published models."""
    specs, blobs = [], []
    for name, array in constants.items():
        spec = {"name": name, "shape": list(array.shape), "dtype": "float32" if array.dtype.kind == "f" else "int32"}
        if array.dtype.kind == "f":
            spec["quantization"] = {"dtype": "float16", "original_dtype": "float32"}
            blobs.append(array.astype(np.float16).tobytes())
        else:
            blobs.append(array.astype(np.int32).tobytes())
        specs.append(spec)
    (folder / "w.bin").write_bytes(b"".join(blobs))
    model = {
        "format": "graph-model",
        "modelTopology": {"node": [_node(n, "Const") for n in constants] + nodes},
        "weightsManifest": [{"paths": ["w.bin"], "weights": specs}],
        "signature": {
            "outputs": {f"{o}:0": {"name": f"{o}:0", "tensorShape": {"dim": []}} for o in outputs},
        },
    }
    path = folder / "model.json"
    path.write_text(json.dumps(model))
    return path


def _f16(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.normal(0, 0.5, shape).astype(np.float16).astype(np.float32)


def _every_op_graph(folder: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A TF.js graph with every operation the detector uses (input [1, 3, 8, 8]), and its constants."""
    constants = {
        "perm_in": np.array([0, 2, 3, 1]),
        "pads": np.array([[0, 0], [1, 1], [1, 1], [0, 0]]),
        "k1": _f16((3, 3, 3, 4)),
        "b1": _f16((4,)),
        "k2": _f16((3, 3, 2, 4)),  # 4 input channels, 2 per group: a grouped convolution
        "pool_pads": np.array([[0, 0], [0, 1], [0, 1], [0, 0]]),
        "pool_fill": np.array(-1e4, dtype=np.float32),
        "size": np.array([8, 8]),
        "axis": np.array(3),
        "sizes": np.array([3, 5]),
        "shape_base": np.array([1, -1, 5]),
        "no_index": np.zeros((0, 1), dtype=np.int32),
        "dense_shape": np.array([3]),
        "no_value": np.zeros((0,), dtype=np.int32),
        "zero": np.array(0),
    }
    nodes = [
        _node("x", "Placeholder", shape={"shape": {"dim": [{"size": str(d)} for d in (1, 3, 8, 8)]}}),
        _node("nhwc", "Transpose", ["x", "perm_in"]),
        _node("padded", "Pad", ["nhwc", "pads"]),
        _conv("conv1", "padded", "k1", "VALID", 1),
        _node("biased", "AddV2", ["conv1", "b1"]),
        _node("act", "LeakyRelu", ["biased"], alpha={"f": 0.1}),
        _conv("conv2", "act", "k2", "SAME", 2),
        _node("pool_in", "PadV2", ["act", "pool_pads", "pool_fill"]),
        _node(
            "pool",
            "MaxPool",
            ["pool_in"],
            ksize=_ints([1, 3, 3, 1]),
            strides=_ints([1, 2, 2, 1]),
            padding=_text("VALID"),
            data_format=_text("NHWC"),
        ),
        _node("up", "ResizeBilinear", ["conv2", "size"], align_corners={"b": False}, half_pixel_centers={"b": True}),
        _node("cat", "ConcatV2", ["act", "up", "axis"]),
        _node("split", "SplitV", ["cat", "sizes", "axis"]),
        _node("sig", "Sigmoid", ["split"]),
        _node("zeros", "SparseToDense", ["no_index", "dense_shape", "no_value", "zero"]),  # folded: [0, 0, 0]
        _node("shape", "AddV2", ["shape_base", "zeros"]),
        _node("flat", "Reshape", ["split:1", "shape"]),
        _node("out_sig", "Identity", ["sig"]),
        _node("out_flat", "Identity", ["flat"]),
        _node("out_pool", "Identity", ["pool"]),
    ]
    return _write_model(folder, constants, nodes, ["out_sig", "out_flat", "out_pool"]), constants


def _run(model: onnx.ModelProto, x: np.ndarray) -> dict[str, np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, {"x": x}), strict=True))


def _expected(x: np.ndarray, constants: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """What the graph means, computed independently with PyTorch in NCHW."""

    def conv(t: torch.Tensor, kernel: np.ndarray, stride: int, groups: int) -> torch.Tensor:
        return functional.conv2d(t, torch.from_numpy(kernel.transpose(3, 2, 0, 1).copy()), stride=stride, groups=groups)

    t = torch.from_numpy(x)
    bias = torch.from_numpy(constants["b1"])[:, None, None]
    act = functional.leaky_relu(conv(functional.pad(t, (1, 1, 1, 1)), constants["k1"], 1, 1) + bias, 0.1)
    strided = conv(functional.pad(act, (0, 1, 0, 1)), constants["k2"], 2, 2)  # TF SAME: the odd pixel at the end
    pool = functional.max_pool2d(functional.pad(act, (0, 1, 0, 1), value=-1e4), 3, 2)
    upsampled = functional.interpolate(strided, size=x.shape[2:], mode="bilinear", align_corners=False)
    cat = torch.cat([act, upsampled], dim=1)
    return {
        "out_sig": torch.sigmoid(cat[:, :3]).permute(0, 2, 3, 1),
        "out_flat": cat[:, 3:].permute(0, 2, 3, 1).reshape(1, -1, 5),
        "out_pool": pool.permute(0, 2, 3, 1),
    }


def test_converted_graph_computes_what_the_tfjs_graph_means(tmp_path):
    path, constants = _every_op_graph(tmp_path)
    x = RNG.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)
    got = _run(convert(path), x)
    for name, reference in _expected(x, constants).items():
        np.testing.assert_allclose(got[name], reference.numpy(), rtol=1e-4, atol=1e-4, err_msg=name)


def test_a_graph_with_free_height_and_width_computes_the_same_at_another_size(tmp_path):
    """The detector runs on letterboxes of the frame's aspect ratio: resizes scale, nothing keeps 8×8."""
    path, constants = _every_op_graph(tmp_path)
    model = convert(path)
    free_spatial(model, axes=(2, 3))
    assert [d.dim_param for d in model.graph.input[0].type.tensor_type.shape.dim[2:]] == ["height", "width"]
    for shape in [(1, 3, 8, 8), (1, 3, 8, 16), (1, 3, 16, 8)]:
        x = RNG.normal(0, 1, shape).astype(np.float32)
        got = _run(model, x)
        for name, reference in _expected(x, constants).items():
            assert got[name].shape == tuple(reference.shape), name
            np.testing.assert_allclose(got[name], reference.numpy(), rtol=1e-4, atol=1e-4, err_msg=f"{name} {shape}")


def test_an_unsupported_operation_is_named(tmp_path):
    nodes = [
        _node("x", "Placeholder", shape={"shape": {"dim": [{"size": "1"}, {"size": "4"}]}}),
        _node("y", "Softplus", ["x"]),
    ]
    path = _write_model(tmp_path, {}, nodes, ["y"])
    with pytest.raises(ConversionError, match="Softplus"):
        convert(path)
