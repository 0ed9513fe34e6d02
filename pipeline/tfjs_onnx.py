"""Convert a TensorFlow.js graph model (``model.json`` + weight shards) to ONNX, without TensorFlow.

The licence-clean default detector is published on the npm registry only in the TF.js format; the
pipeline runs ONNX Runtime. The usual route (tensorflowjs → SavedModel → tf2onnx) needs a 600 MB
TensorFlow install at build time, so this module reads the graph itself: constant sub-graphs are
folded with NumPy, every other node becomes ONNX nodes. TF.js graphs computed in NHWC; ONNX
convolutions want NCHW, so each convolution and pooling is wrapped in a pair of Transposes, which
ONNX Runtime's layout optimiser cancels against its neighbours.

Only the operations the shipped models use are supported; anything else stops the conversion
with the operation's name, never a silently wrong graph.
"""

import base64
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
TF_DTYPES = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_INT64": np.int64, "DT_BOOL": np.bool_}
MANIFEST_DTYPES = {"float32": np.float32, "int32": np.int32, "bool": np.bool_}
QUANTIZED_DTYPES = {"uint8": np.uint8, "uint16": np.uint16, "float16": np.float16}
NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]


class ConversionError(ValueError):
    """The graph uses something this converter does not translate."""


def read_weights(model: dict, folder: Path) -> dict[str, np.ndarray]:
    """Every weight of the manifest as a NumPy array, de-quantised to its original dtype."""
    weights: dict[str, np.ndarray] = {}
    for group in model["weightsManifest"]:
        buffer = b"".join((folder / path).read_bytes() for path in group["paths"])
        offset = 0
        for spec in group["weights"]:
            shape = [int(d) for d in spec["shape"]]
            count = int(np.prod(shape)) if shape else 1
            quantization = spec.get("quantization")
            if quantization:
                stored = np.dtype(QUANTIZED_DTYPES[quantization["dtype"]])
                raw = np.frombuffer(buffer, stored, count, offset)
                if quantization["dtype"] == "float16":
                    values = raw.astype(np.float32)
                else:  # affine: value = min + scale * stored
                    values = raw.astype(np.float32) * quantization["scale"] + quantization["min"]
                values = values.astype(MANIFEST_DTYPES[quantization.get("original_dtype", "float32")])
            else:
                stored = np.dtype(MANIFEST_DTYPES[spec["dtype"]])
                values = np.frombuffer(buffer, stored, count, offset).copy()
            offset += count * stored.itemsize
            weights[spec["name"]] = values.reshape(shape)
        if offset != len(buffer):
            raise ConversionError(f"weight shards hold {len(buffer)} bytes, the manifest describes {offset}")
    return weights


def _attr(node: dict, name: str, default: object = None) -> object:
    """One attribute of a TF node, decoded to a Python value."""
    value = node.get("attr", {}).get(name)
    if value is None:
        return default
    if "list" in value:
        return [int(i) for i in value["list"].get("i", [])]
    if "s" in value:
        return base64.b64decode(value["s"]).decode()
    if "f" in value:
        return float(value["f"])
    if "b" in value:
        return bool(value["b"])
    if "i" in value:
        return int(value["i"])
    if "type" in value:
        return value["type"]
    return default


@dataclass
class _Graph:
    """The ONNX graph under construction."""

    nodes: list[onnx.NodeProto]
    initializers: list[onnx.TensorProto]
    inputs: list[onnx.ValueInfoProto]
    counter: int = 0

    def fresh(self, hint: str) -> str:
        self.counter += 1
        return f"{hint}__{self.counter}"

    def constant(self, array: np.ndarray, hint: str) -> str:
        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def add(self, op: str, inputs: list[str], hint: str, outputs: int = 1, **attributes: object) -> list[str]:
        names = [self.fresh(hint) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, name=self.fresh(op), **attributes))
        return names

    def static_shape(self, tensor: str) -> list[int]:
        """The inferred shape of an intermediate tensor (the graphs converted here have static shapes)."""
        probe = helper.make_graph(
            self.nodes, "probe", self.inputs, [helper.make_tensor_value_info(tensor, TensorProto.FLOAT, None)]
        )
        probe.initializer.extend(self.initializers)
        opsets = [helper.make_opsetid("", OPSET)]
        inferred = onnx.shape_inference.infer_shapes(helper.make_model(probe, opset_imports=opsets))
        for info in [*inferred.graph.value_info, *inferred.graph.output]:
            if info.name == tensor:
                dims = [d.dim_value for d in info.type.tensor_type.shape.dim]
                if dims and all(d > 0 for d in dims):
                    return dims
        raise ConversionError(f"cannot infer the shape of {tensor}")


class _Converter:
    """Walks the TF nodes in file order (TF.js writes them topologically) and emits ONNX."""

    def __init__(self, model: dict, weights: dict[str, np.ndarray]) -> None:
        self.model = model
        self.weights = weights
        self.graph = _Graph([], [], [])
        self.values: dict[str, np.ndarray | str] = {}  # TF output name → constant or ONNX tensor name

    def value(self, reference: str) -> np.ndarray | str:
        name, _, index = reference.partition(":")
        key = name if index in ("", "0") else f"{name}:{index}"
        if key not in self.values:
            raise ConversionError(f"node input {reference} is not produced by any earlier node")
        return self.values[key]

    def tensor(self, reference: str) -> str:
        """An input as an ONNX tensor name (constants become initialisers)."""
        value = self.value(reference)
        return value if isinstance(value, str) else self.graph.constant(value, reference.replace("/", "_"))

    def run(self) -> onnx.ModelProto:
        for node in self.model["modelTopology"]["node"]:
            inputs = [i for i in node.get("input", []) if not i.startswith("^")]  # drop control edges
            op = node["op"]
            if op == "Const":
                self.values[node["name"]] = self._const(node)
            elif op == "Placeholder":
                self._placeholder(node)
            elif all(not isinstance(self.value(i), str) for i in inputs):
                self.values[node["name"]] = self._fold(node, [np.asarray(self.value(i)) for i in inputs])
            else:
                handler = getattr(self, f"_op_{op}", None)
                if handler is None:
                    raise ConversionError(f"operation {op} (node {node['name']}) is not supported")
                handler(node, inputs)
        return self._model()

    def _const(self, node: dict) -> np.ndarray:
        if node["name"] in self.weights:
            return self.weights[node["name"]]
        raise ConversionError(f"constant {node['name']} has no value in the weight manifest")

    def _placeholder(self, node: dict) -> None:
        dims = [int(d.get("size", 0)) for d in node["attr"]["shape"]["shape"]["dim"]]
        dtype = helper.np_dtype_to_tensor_dtype(np.dtype(TF_DTYPES[_attr(node, "dtype", "DT_FLOAT")]))
        self.graph.inputs.append(helper.make_tensor_value_info(node["name"], dtype, dims))
        self.values[node["name"]] = node["name"]

    @staticmethod
    def _fold(node: dict, args: list[np.ndarray]) -> np.ndarray:
        """Evaluate a node whose inputs are all constants."""
        op = node["op"]
        if op in ("Add", "AddV2"):
            return args[0] + args[1]
        if op == "Identity":
            return args[0]
        if op == "SparseToDense":
            indices, shape, values, default = args
            dense = np.full(shape.astype(np.int64), default, dtype=default.dtype)
            if indices.size:
                dense[tuple(indices.astype(np.int64).reshape(len(indices), -1).T)] = values
            return dense
        raise ConversionError(f"operation {op} (node {node['name']}) on constants is not supported")

    def _bind(self, node: dict, names: list[str]) -> None:
        self.values[node["name"]] = names[0]
        for index, name in enumerate(names[1:], start=1):
            self.values[f"{node['name']}:{index}"] = name

    def _nchw(self, node: dict, inputs: list[str], op: str, extra: list[str], **attributes: object) -> None:
        """Run an NCHW-only ONNX op on an NHWC tensor: transpose in, op, transpose back."""
        hint = node["name"].replace("/", "_")
        (nchw,) = self.graph.add("Transpose", [self.tensor(inputs[0])], hint, perm=NHWC_TO_NCHW)
        (out,) = self.graph.add(op, [nchw, *extra], hint, **attributes)
        self._bind(node, self.graph.add("Transpose", [out], hint, perm=NCHW_TO_NHWC))

    def _window(self, node: dict, kernel: list[int]) -> dict[str, object]:
        """Strides, dilations and padding of a TF NHWC convolution or pooling as ONNX attributes."""
        if _attr(node, "data_format", "NHWC") != "NHWC":
            raise ConversionError(f"node {node['name']}: only NHWC is supported")
        strides = _attr(node, "strides", [1, 1, 1, 1])
        padding = _attr(node, "padding", "VALID")
        attributes: dict[str, object] = {"strides": strides[1:3], "kernel_shape": kernel}
        if padding == "SAME":
            attributes["auto_pad"] = "SAME_UPPER"  # TF puts the odd extra pixel at the end
        elif padding == "EXPLICIT":
            explicit = _attr(node, "explicit_paddings", [])
            attributes["pads"] = [explicit[2], explicit[4], explicit[3], explicit[5]]
        return attributes

    def _op_Conv2D(self, node: dict, inputs: list[str]) -> None:
        kernel = self.value(inputs[1])
        if isinstance(kernel, str):
            raise ConversionError(f"node {node['name']}: only constant convolution kernels are supported")
        channels = self.graph.static_shape(self.tensor(inputs[0]))[3]
        groups = channels // kernel.shape[2]
        weight = self.graph.constant(kernel.transpose(3, 2, 0, 1), node["name"].replace("/", "_") + "_w")  # HWIO→OIHW
        attributes = self._window(node, list(kernel.shape[:2]))
        attributes["dilations"] = _attr(node, "dilations", [1, 1, 1, 1])[1:3]
        self._nchw(node, inputs, "Conv", [weight], group=groups, **attributes)

    def _op_MaxPool(self, node: dict, inputs: list[str]) -> None:
        self._nchw(node, inputs, "MaxPool", [], **self._window(node, _attr(node, "ksize")[1:3]))

    def _op_Transpose(self, node: dict, inputs: list[str]) -> None:
        perm = [int(p) for p in np.asarray(self.value(inputs[1]))]
        self._bind(node, self.graph.add("Transpose", [self.tensor(inputs[0])], node["name"], perm=perm))

    def _pad(self, node: dict, inputs: list[str], constant: np.ndarray) -> None:
        paddings = np.asarray(self.value(inputs[1])).astype(np.int64)
        pads = self.graph.constant(np.concatenate([paddings[:, 0], paddings[:, 1]]), "pads")
        fill = self.graph.constant(np.asarray(constant, dtype=np.float32).reshape(()), "pad_value")
        self._bind(node, self.graph.add("Pad", [self.tensor(inputs[0]), pads, fill], node["name"], mode="constant"))

    def _op_Pad(self, node: dict, inputs: list[str]) -> None:
        self._pad(node, inputs, np.float32(0))

    def _op_PadV2(self, node: dict, inputs: list[str]) -> None:
        self._pad(node, inputs, np.asarray(self.value(inputs[2])))

    def _elementwise(self, op: str, node: dict, inputs: list[str], **attributes: object) -> None:
        args = [self.tensor(i) for i in inputs]
        self._bind(node, self.graph.add(op, args, node["name"], **attributes))

    def _op_Add(self, node: dict, inputs: list[str]) -> None:
        self._elementwise("Add", node, inputs)

    _op_AddV2 = _op_Add

    def _op_LeakyRelu(self, node: dict, inputs: list[str]) -> None:
        self._elementwise("LeakyRelu", node, inputs, alpha=_attr(node, "alpha", 0.2))

    def _op_Sigmoid(self, node: dict, inputs: list[str]) -> None:
        self._elementwise("Sigmoid", node, inputs)

    def _op_Identity(self, node: dict, inputs: list[str]) -> None:
        self._elementwise("Identity", node, inputs)

    def _op_ConcatV2(self, node: dict, inputs: list[str]) -> None:
        axis = int(np.asarray(self.value(inputs[-1])))
        self._bind(node, self.graph.add("Concat", [self.tensor(i) for i in inputs[:-1]], node["name"], axis=axis))

    def _op_Reshape(self, node: dict, inputs: list[str]) -> None:
        shape = self.graph.constant(np.asarray(self.value(inputs[1])).astype(np.int64), "shape")
        self._bind(node, self.graph.add("Reshape", [self.tensor(inputs[0]), shape], node["name"]))

    def _op_SplitV(self, node: dict, inputs: list[str]) -> None:
        sizes = np.asarray(self.value(inputs[1])).astype(np.int64)
        axis = int(np.asarray(self.value(inputs[2])))
        split = self.graph.constant(sizes, "split")
        outputs = self.graph.add("Split", [self.tensor(inputs[0]), split], node["name"], outputs=len(sizes), axis=axis)
        self._bind(node, outputs)

    def _op_ResizeBilinear(self, node: dict, inputs: list[str]) -> None:
        source = self.tensor(inputs[0])
        height, width = (int(v) for v in np.asarray(self.value(inputs[1])))
        if _attr(node, "align_corners", False):
            mode = "align_corners"
        elif _attr(node, "half_pixel_centers", False):
            mode = "half_pixel"
        else:
            mode = "asymmetric"
        # As scale factors, not sizes: the same graph then runs at any input size (see ``free_spatial``).
        _, in_height, in_width, _ = self.graph.static_shape(source)
        scales = np.array([1.0, height / in_height, width / in_width, 1.0], dtype=np.float32)
        self._bind(
            node,
            self.graph.add(
                "Resize",
                [source, "", self.graph.constant(scales, "scales")],
                node["name"],
                mode="linear",
                coordinate_transformation_mode=mode,
            ),
        )

    def _model(self) -> onnx.ModelProto:
        outputs = []
        for key, spec in self.model["signature"]["outputs"].items():
            tensor = self.tensor(spec["name"])
            name = key.partition(":")[0]
            self.graph.nodes.append(helper.make_node("Identity", [tensor], [name], name=f"output_{name}"))
            dims = [int(d.get("size", 0)) for d in spec["tensorShape"]["dim"]]
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
        graph = helper.make_graph(self.graph.nodes, "tfjs", self.graph.inputs, outputs, self.graph.initializers)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="gaitid-tfjs")
        model.ir_version = 8  # readable by every ONNX Runtime the project supports
        onnx.checker.check_model(model)
        return model


def free_spatial(model: onnx.ModelProto, axes: tuple[int, int]) -> None:
    """Let the first input's ``axes`` (height, width) take any size, in place.

    A converted graph has the TF.js input size baked in wherever a node stored a size; resizes are
    emitted as scale factors and the detector's reshapes infer their last axis (-1), so a
    convolutional detector then runs on a letterbox of the frame's own aspect ratio instead of a
    padded square (a 16:9 frame: 62 % of the pixels). Every output dimension other than the first
    (batch) and the last (values per cell) becomes free too: the number of cells follows the input.
    """
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for axis, name in zip(axes, ("height", "width"), strict=True):
        dims[axis].Clear()
        dims[axis].dim_param = name
    for output in model.graph.output:
        out_dims = output.type.tensor_type.shape.dim
        for index in range(1, len(out_dims) - 1):
            out_dims[index].Clear()
            out_dims[index].dim_param = f"{output.name}_cells"
    onnx.checker.check_model(model)


def convert(model_json: Path) -> onnx.ModelProto:
    """The ONNX model of the TF.js graph model described by ``model_json`` (shards beside it)."""
    model = json.loads(model_json.read_text())
    if model.get("format") != "graph-model":
        raise ConversionError(f"{model_json.name} is not a TF.js graph model")
    return _Converter(model, read_weights(model, model_json.parent)).run()
