"""Patch-based inference over the elementwise ops of MobileNetV3-style models (hard-swish, per-channel
MUL and ADD by constants, LEAKY_RELU, LOGISTIC), in firmware: a model converted by TensorFlow
to int8 at test time, compiled for cortex-m7 with its patch stage ending after those ops, run in the
real QEMU. The firmware must equal the layer-by-layer interpreter, the patch schedule in NumPy and
TFLite Micro byte for byte; the squeeze-and-excite MUL after the split (a gate broadcast over space)
runs layer by layer."""

import numpy as np
import pytest
from tflite_models import IMAGE_SHAPE, convert, photos, tensorflow, tflm_outputs

from edgekit.compiler import compile_model
from edgekit.frontend.tflite import _read_model, import_tflite
from edgekit.ir.interpreter import run_graph
from edgekit.ir.serialize import load_graph
from edgekit.memory.patch_reference import run_patched
from edgekit.memory.patch_search import build_patch_plan
from edgekit.runner import run_build

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]

PATCHED_OPS = {"hard_swish", "mul", "add", "leaky_relu", "logistic"}


def _mobilenetv3_block():
    tf = tensorflow()
    rng = np.random.default_rng(23)
    w = tf.constant(rng.normal(0, 0.5, size=(1, 1, 3, 8)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.3, size=(3, 3, 8, 8)).astype(np.float32))
    scale = tf.constant(rng.uniform(0.3, 1.5, size=(8,)).astype(np.float32))
    bias = tf.constant(rng.uniform(-0.5, 0.5, size=(8,)).astype(np.float32))

    def block(x):
        y = (tf.nn.conv2d(x, w, 1, "SAME") - 0.2) * 4.0
        y = y * tf.nn.relu6(y + 3.0) * (1.0 / 6.0)
        y = tf.nn.leaky_relu(y, 0.1) * scale + bias
        z = tf.sigmoid(tf.nn.conv2d(y, w2, 1, "SAME"))
        gate = tf.sigmoid(tf.reduce_mean(z, axis=[1, 2], keepdims=True))
        return z * gate

    return block


def test_patched_elementwise_ops_are_byte_identical(data_dir, tmp_path):
    images = photos(data_dir)
    path = convert(_mobilenetv3_block(), tmp_path / "mbv3.tflite", images, int8_io=True)
    assert {"HARD_SWISH", "MUL", "ADD", "LEAKY_RELU", "LOGISTIC"} <= {op.name for op in _read_model(path).operators}
    imported = import_tflite(path)
    split = next(node.output for node in imported.nodes if node.op == "logistic")
    q_in = imported.tensors[imported.inputs[0]].quant
    rng = np.random.default_rng(5)
    inputs = [q_in.quantize(image[np.newaxis]) for image in images[:4]] + [
        rng.integers(-128, 128, size=IMAGE_SHAPE, dtype=np.int8) for _ in range(2)]
    stacked = tmp_path / "inputs.npy"
    np.save(stacked, np.stack(inputs))

    build = compile_model(str(path), "cortex-m7", patch=f"{split}:2", output=tmp_path / "build")
    graph = load_graph(build.build_dir / "model.ek")
    stage_ops = {graph.nodes[i].op for i in range(build.manifest["patch"]["chosen"]["split_node"] + 1)}
    assert PATCHED_OPS <= stage_ops, f"the patch stage holds {stage_ops}"
    result = run_build(build.build_dir, inputs=stacked)
    assert result.inputs == len(inputs) and result.bit_exact, f"{result.mismatches} outputs differ"

    schedule = build_patch_plan(graph, f"{split}:2")
    for x, firmware, (tflm,) in zip(inputs, result.outputs[0], tflm_outputs(path, inputs)):
        layered = run_graph(graph, [x], mode="int8")[graph.outputs[0]]
        np.testing.assert_array_equal(run_patched(schedule.stage, x).outputs[graph.outputs[0]], layered)
        np.testing.assert_array_equal(firmware.reshape(tflm.shape), tflm)
    assert len(np.unique(result.outputs[0])) > 10
