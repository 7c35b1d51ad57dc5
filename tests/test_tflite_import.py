"""The TFLite importer, and the int8 reference interpreter proven byte-identical to TFLite.

Two oracles. TFLite Micro (the ``tflite-micro`` package) runs whole int8 models as a
microcontroller does, and edgekit's outputs must equal its outputs byte for byte. ai-edge-litert's
BUILTIN_REF kernels check every layer on its own: each node gets TFLite's own input tensors and must
produce TFLite's output tensor. FULLY_CONNECTED is left out of that layer check because LiteRT's
reference FULLY_CONNECTED (unlike TFLite Micro, CMSIS-NN and LiteRT's optimized kernels) requantizes
with ``round(acc * double_scale)`` instead of the Q31 fixed-point multiply that firmware uses.
"""

import flatbuffers
import numpy as np
import pytest
import tflite
from ai_edge_litert.interpreter import Interpreter, OpResolverType
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions
from tflite.TensorType import TensorType

from edgekit.errors import ModelFileError, UnsupportedOpError
from edgekit.frontend.images import IMAGENET_CROP_FRACTION, IMAGENET_MEAN, IMAGENET_STD, load_image, quantize_input
from edgekit.frontend.tflite import import_tflite
from edgekit.ir import QuantParams
from edgekit.ir.interpreter import run_graph
from edgekit.ops import get_op

RANDOM_INPUTS = 4
PERSON_IMAGES = ("person_det.jpg", "astronaut.png", "chelsea.png")
INT8_MODELS = [
    "mlperf-tiny/vww_96_int8",
    "mlperf-tiny/resnet8_cifar10_int8",
    "mlperf-tiny/dscnn_kws_int8",
    "mlperf-tiny/ad01_int8",
    "tflite-micro/hello_world_int8",
    pytest.param("tflite-micro/mobilenet_v2_int8_224_nchw", marks=pytest.mark.slow),
]
FC_ONLY_MODELS = ("mlperf-tiny/ad01_int8", "tflite-micro/hello_world_int8")
LAYER_MODELS = [m for m in INT8_MODELS if m not in FC_ONLY_MODELS]


def _real_inputs(model: str, graph, data_dir) -> list[np.ndarray]:
    """Inputs the model was made for: photos, the TFLM dog sample, points on the sine curve."""
    quant = graph.tensors[graph.inputs[0]].quant
    name = model.split("/")[1]
    if name.startswith("vww"):
        return [quantize_input(load_image(data_dir / "images" / f, 96), quant) for f in PERSON_IMAGES]
    if name.startswith("resnet8"):  # CIFAR-10 pixels 0..255 at input scale 1
        return [quantize_input(load_image(data_dir / "images" / f, 32) * 255, quant) for f in PERSON_IMAGES]
    if name.startswith("mobilenet_v2"):
        return [np.load(data_dir / "samples" / "dog_bytes_as_int8_1x3x224x224.npy").astype(np.int8)]
    if name.startswith("hello_world"):
        return [quantize_input(np.full((1, 1), x, np.float32), quant) for x in (0.0, 1.5, 3.0, 6.0)]
    return []  # keyword MFCCs and machine sounds: no real samples here, random inputs only


def _inputs(model, graph, data_dir):
    shape = graph.tensors[graph.inputs[0]].shape
    rng = np.random.default_rng(2024)
    random = [rng.integers(-128, 128, size=shape, dtype=np.int8) for _ in range(RANDOM_INPUTS)]
    return _real_inputs(model, graph, data_dir) + random


def _tflm_outputs(path, inputs) -> list[np.ndarray]:
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime", reason="pip install tflite-micro")
    interpreter = runtime.Interpreter.from_file(str(path))
    outputs = []
    for x in inputs:
        interpreter.set_input(x, 0)
        interpreter.invoke()
        outputs.append(interpreter.get_output(0).copy())
        interpreter.reset()
    return outputs


def _litert(path, resolver=OpResolverType.BUILTIN_REF, keep_all=False) -> Interpreter:
    interpreter = Interpreter(model_path=str(path), experimental_op_resolver_type=resolver,
                              experimental_preserve_all_tensors=keep_all)
    interpreter.allocate_tensors()
    return interpreter


def _invoke(interpreter, x):
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


@pytest.mark.parametrize("model", INT8_MODELS)
def test_int8_model_is_byte_identical_to_tflite_micro(model, models_dir, data_dir):
    path = models_dir / f"{model}.tflite"
    graph = import_tflite(path)
    inputs = _inputs(model, graph, data_dir)
    for i, (x, expected) in enumerate(zip(inputs, _tflm_outputs(path, inputs))):
        ours = run_graph(graph, [x], mode="int8")[graph.outputs[0]]
        mismatched = int(np.sum(ours.reshape(expected.shape).view(np.uint8) != expected.view(np.uint8)))
        assert mismatched == 0, f"{model} input {i}: {mismatched} of {expected.size} output bytes differ"


@pytest.mark.parametrize("model", LAYER_MODELS)
def test_int8_layers_are_byte_identical_to_builtin_ref(model, models_dir, data_dir):
    """Every node but FULLY_CONNECTED, fed TFLite's own inputs, gives TFLite's own output bytes."""
    path = models_dir / f"{model}.tflite"
    graph = import_tflite(path)
    interpreter = _litert(path, keep_all=True)
    checked = set()
    for x in _inputs(model, graph, data_dir):
        _invoke(interpreter, x)
        reference = {d["name"]: interpreter.get_tensor(d["index"]) for d in interpreter.get_tensor_details()}
        ours = {}
        for node in graph.nodes:
            args = [graph.tensors[n].data if graph.tensors[n].is_constant
                    else reference[n].reshape(graph.tensors[n].shape) if n in reference else ours[n]
                    for n in node.inputs]
            ours[node.output] = get_op(node.op, node).run_int8(node, graph, args)[0]
            if node.op == "fully_connected" or node.output not in reference:
                continue
            expected = reference[node.output].reshape(ours[node.output].shape)
            mismatched = int(np.sum(ours[node.output] != expected))
            assert mismatched == 0, f"{model} node {node.name} ({node.op}): {mismatched} of {expected.size} differ"
            checked.add(node.op)
    assert checked, "no layer was compared"


def test_fully_connected_multiplier_is_computed_in_double(models_dir):
    """keep: input_scale * filter_scale in double, as TFLite Micro does (LiteRT's optimized kernels
    multiply the two float32 scales in float32). These three random inputs, found by search, each
    flip one output byte of the autoencoder when the product is taken in float32."""
    path = models_dir / "mlperf-tiny/ad01_int8.tflite"
    graph = import_tflite(path)
    rng = np.random.default_rng(5)
    candidates = [rng.integers(-128, 128, size=(1, 640), dtype=np.int8) for _ in range(466)]
    inputs = [candidates[i] for i in (231, 239, 465)]
    for x, expected in zip(inputs, _tflm_outputs(path, inputs)):
        np.testing.assert_array_equal(run_graph(graph, [x])[graph.outputs[0]], expected)


@pytest.mark.parametrize("model", ["mlperf-tiny/vww_96_float", "mlperf-tiny/resnet8_cifar10_float"])
def test_float_model_matches_litert(model, models_dir, data_dir):
    path = models_dir / f"{model}.tflite"
    graph = import_tflite(path)
    shape = graph.tensors[graph.inputs[0]].shape
    interpreter = _litert(path)
    photo = load_image(data_dir / "images" / "person_det.jpg", shape[1])
    for x in (photo, np.random.default_rng(0).random(shape, dtype=np.float32)):
        expected = _invoke(interpreter, x)
        ours = run_graph(graph, [x], mode="float")[graph.outputs[0]]
        np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-6)


def test_mobilenet_v2_recognises_the_dog(models_dir, data_dir):
    """The TFLM example's own sample: class 258, Samoyed."""
    graph = import_tflite(models_dir / "tflite-micro/mobilenet_v2_int8_224_nchw.tflite")
    x = np.load(data_dir / "samples" / "dog_bytes_as_int8_1x3x224x224.npy").astype(np.int8)
    assert int(np.argmax(run_graph(graph, [x])[graph.outputs[0]])) == 258


def test_imported_graph_keeps_quantization(models_dir):
    graph = import_tflite(models_dir / "mlperf-tiny/vww_96_int8.tflite")
    conv = next(n for n in graph.nodes if n.op == "conv2d")
    depthwise = next(n for n in graph.nodes if n.op == "depthwise_conv2d")
    assert graph.tensors[conv.inputs[1]].quant.axis == 0
    assert graph.tensors[depthwise.inputs[1]].quant.axis == 3
    assert graph.tensors[graph.inputs[0]].quant.scale.dtype == np.float32
    assert {n.attrs.activation for n in graph.nodes if n.op == "conv2d"} <= {None, "relu", "relu6"}


# --- single-operator models built with the flatbuffer builder -------------------------------------

def _single_op_model(op: int, tensors, options=None) -> bytes:
    """A one-operator TFLite model: tensor 0 -> op -> tensor 1.

    ``tensors`` are (name, shape, TensorType, (scale, zero_point) or None); ``options`` is
    (BuiltinOptions type, function(builder) -> options table offset).
    """
    b = flatbuffers.Builder(1024)
    tensor_offsets = []
    for name, shape, dtype, quant in tensors:
        name_offset = b.CreateString(name)
        shape_offset = b.CreateNumpyVector(np.asarray(shape, np.int32))
        quant_offset = None
        if quant is not None:
            scale = b.CreateNumpyVector(np.asarray([quant[0]], np.float32))
            zero_point = b.CreateNumpyVector(np.asarray([quant[1]], np.int64))
            tflite.QuantizationParametersStart(b)
            tflite.QuantizationParametersAddScale(b, scale)
            tflite.QuantizationParametersAddZeroPoint(b, zero_point)
            quant_offset = tflite.QuantizationParametersEnd(b)
        tflite.TensorStart(b)
        tflite.TensorAddName(b, name_offset)
        tflite.TensorAddShape(b, shape_offset)
        tflite.TensorAddType(b, dtype)
        tflite.TensorAddBuffer(b, 0)
        if quant_offset is not None:
            tflite.TensorAddQuantization(b, quant_offset)
        tensor_offsets.append(tflite.TensorEnd(b))
    options_offset = options[1](b) if options else None
    op_inputs = b.CreateNumpyVector(np.asarray([0], np.int32))
    op_outputs = b.CreateNumpyVector(np.asarray([1], np.int32))
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, 0)
    tflite.OperatorAddInputs(b, op_inputs)
    tflite.OperatorAddOutputs(b, op_outputs)
    if options:
        tflite.OperatorAddBuiltinOptionsType(b, options[0])
        tflite.OperatorAddBuiltinOptions(b, options_offset)
    operator = tflite.OperatorEnd(b)

    def vector(start, offsets):
        start(b, len(offsets))
        for offset in reversed(offsets):
            b.PrependUOffsetTRelative(offset)
        return b.EndVector()

    tensors_vector = vector(tflite.SubGraphStartTensorsVector, tensor_offsets)
    operators_vector = vector(tflite.SubGraphStartOperatorsVector, [operator])
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vector)
    tflite.SubGraphAddInputs(b, op_inputs)
    tflite.SubGraphAddOutputs(b, op_outputs)
    tflite.SubGraphAddOperators(b, operators_vector)
    subgraph = tflite.SubGraphEnd(b)
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(op, 127))
    tflite.OperatorCodeAddBuiltinCode(b, op)
    tflite.OperatorCodeAddVersion(b, 1)
    opcode = tflite.OperatorCodeEnd(b)
    tflite.BufferStart(b)
    empty_buffer = tflite.BufferEnd(b)
    opcodes_vector = vector(tflite.ModelStartOperatorCodesVector, [opcode])
    subgraphs_vector = vector(tflite.ModelStartSubgraphsVector, [subgraph])
    buffers_vector = vector(tflite.ModelStartBuffersVector, [empty_buffer])
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, opcodes_vector)
    tflite.ModelAddSubgraphs(b, subgraphs_vector)
    tflite.ModelAddBuffers(b, buffers_vector)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _softmax_options(beta: float):
    def build(b):
        tflite.SoftmaxOptionsStart(b)
        tflite.SoftmaxOptionsAddBeta(b, beta)
        return tflite.SoftmaxOptionsEnd(b)
    return BuiltinOptions.SoftmaxOptions, build


@pytest.mark.parametrize("input_scale, beta", [(0.0625, 1.0), (0.2, 1.0), (0.01, 1.0), (1.3, 1.0), (0.1, 0.5)])
def test_int8_softmax_is_byte_identical_to_builtin_ref(tmp_path, input_scale, beta):
    """Many rows at once: peaked, flat and saturated rows, through TFLite's integer softmax."""
    rows, depth = 512, 10
    model = _single_op_model(BuiltinOperator.SOFTMAX, [
        ("logits", (rows, depth), TensorType.INT8, (input_scale, 3)),
        ("probabilities", (rows, depth), TensorType.INT8, (1 / 256, -128)),
    ], _softmax_options(beta))
    path = tmp_path / "softmax.tflite"
    path.write_bytes(model)
    graph = import_tflite(path)
    x = np.random.default_rng(7).integers(-128, 128, size=(rows, depth), dtype=np.int8)
    x[:64] //= 16  # nearly flat rows
    expected = _invoke(_litert(path), x)
    ours = run_graph(graph, [x])[graph.outputs[0]]
    assert int(np.sum(ours != expected)) == 0


# --- user errors ------------------------------------------------------------------------------------

def _assert_one_line(error):
    assert "\n" not in str(error)


def test_missing_file_is_a_model_file_error(tmp_path):
    with pytest.raises(ModelFileError, match="cannot read model file") as info:
        import_tflite(tmp_path / "nope.tflite")
    _assert_one_line(info.value)


def test_non_tflite_file_is_a_model_file_error(tmp_path):
    path = tmp_path / "model.tflite"
    path.write_text("definitely not a flatbuffer\n")
    with pytest.raises(ModelFileError, match="not a TFLite model") as info:
        import_tflite(path)
    _assert_one_line(info.value)


@pytest.mark.parametrize("keep", [12, 100, 1000, 20000])
def test_truncated_file_is_a_model_file_error(tmp_path, models_dir, keep):
    path = tmp_path / "cut.tflite"
    path.write_bytes((models_dir / "mlperf-tiny/resnet8_cifar10_int8.tflite").read_bytes()[:keep])
    with pytest.raises(ModelFileError, match="truncated or corrupt") as info:
        import_tflite(path)
    _assert_one_line(info.value)


def test_unsupported_op_names_the_file_the_op_and_its_output(tmp_path):
    path = tmp_path / "log.tflite"
    path.write_bytes(_single_op_model(BuiltinOperator.LOG, [
        ("x", (1, 8), TensorType.FLOAT32, None), ("log_out", (1, 8), TensorType.FLOAT32, None)]))
    with pytest.raises(UnsupportedOpError, match=r"^log\.tflite: operator 0 \(LOG, output 'log_out'\) is not supp") as info:
        import_tflite(path)
    _assert_one_line(info.value)


def test_unsupported_tensor_type_names_the_tensor(tmp_path):
    path = tmp_path / "uint8.tflite"
    path.write_bytes(_single_op_model(BuiltinOperator.QUANTIZE, [
        ("x", (1, 8), TensorType.FLOAT32, None), ("x_uint8", (1, 8), TensorType.UINT8, (0.1, 128))]))
    with pytest.raises(UnsupportedOpError, match="tensor 'x_uint8' has type UINT8") as info:
        import_tflite(path)
    _assert_one_line(info.value)


# --- image preprocessing ----------------------------------------------------------------------------

def test_vww_image_quantizes_to_pixel_minus_128(data_dir):
    """Scale 1/255, zero point -128: the int8 input is exactly the 8-bit pixel minus 128."""
    x = load_image(data_dir / "images" / "person_det.jpg", 96)
    assert x.shape == (1, 96, 96, 3) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    quant = QuantParams.per_tensor(1 / 255, -128)
    pixels = np.rint(x * 255).astype(np.int16)
    np.testing.assert_array_equal(quantize_input(x, quant).astype(np.int16), pixels - 128)


def test_imagenet_preprocessing_resizes_256_and_crops_224(data_dir):
    from PIL import Image

    path = data_dir / "images" / "chelsea.png"
    x = load_image(path, 224, crop_fraction=IMAGENET_CROP_FRACTION, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    with Image.open(path) as image:
        width, height = image.size
        resized = image.convert("RGB").resize((int(256 * width / height), 256), Image.BILINEAR)
    left = int(round((resized.size[0] - 224) / 2.0))
    top = int(round((256 - 224) / 2.0))
    crop = np.asarray(resized.crop((left, top, left + 224, top + 224)), np.float32) / 255
    expected = (crop - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)
    assert width > height  # the photo is landscape, so the height is the shorter side
    np.testing.assert_allclose(x[0], expected, rtol=1e-6, atol=1e-6)
