"""The new ops as firmware: three small models built by the tests (every new op inside, so only three
QEMU builds), converted by TensorFlow to int8, compiled for cortex-m7 with real TVM kernels and
arm-none-eabi-gcc, and run in the real QEMU on photos and random inputs. The firmware must be
bit-exact with the integer reference interpreter and byte-identical to TFLite Micro."""

import numpy as np
import pytest
from tflite_models import IMAGE_SHAPE, convert, photos, tensorflow, tflm_outputs

from edgekit.compiler import compile_model
from edgekit.frontend.tflite import _read_model, import_tflite
from edgekit.runner import run_build

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]


def _models():
    tf = tensorflow()
    rng = np.random.default_rng(17)
    w = tf.constant(rng.normal(0, 0.5, size=(3, 3, 3, 8)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.5, size=(1, 1, 3, 8)).astype(np.float32))
    channel_scale = tf.constant(rng.uniform(0.2, 1.5, size=(8,)).astype(np.float32))
    prelu = tf.keras.layers.PReLU(tf.keras.initializers.RandomUniform(0.05, 0.4, seed=4), shared_axes=[1, 2])

    def elementwise(x):
        y = tf.nn.conv2d(x, w, 1, "SAME") - 0.3
        z = tf.nn.conv2d(x, w2, 1, "SAME")
        scaled = tf.nn.relu(y) * channel_scale
        difference = scaled - z
        squared = tf.math.squared_difference(difference, y)
        clipped = tf.minimum(tf.maximum(squared, z), y)
        swished = (lambda t: t * tf.nn.relu6(t + 3.0) * (1.0 / 6.0))(clipped * 4.0)
        gated = tf.sigmoid(swished)
        bent = prelu(tf.nn.leaky_relu(tf.tanh(y * 2.0), 0.15))
        clipped_conv = tf.clip_by_value(tf.nn.conv2d(x, w2 * 2.0, 1, "SAME"), -1.0, 1.0)  # fused RELU_N1_TO_1
        magnitudes = tf.abs(difference) + tf.math.rsqrt(tf.nn.relu(z) + 0.1) + clipped_conv
        return gated + bent + magnitudes + y * z + channel_scale + tf.reduce_mean(y, axis=[2], keepdims=True)

    def geometry(x):
        """Slices of one tensor share its quantization, so the concat needs no requantizing QUANTIZE."""
        left, right = tf.split(tf.nn.conv2d(x, w, 1, "SAME"), 2, axis=3)
        down = tf.reverse(tf.image.resize(left - right, (8, 12), "bilinear"), axis=[2, 3])
        up = tf.image.resize(tf.pad(down, [[0, 0], [1, 1], [2, 0], [0, 0]], mode="REFLECT"), (16, 24), "nearest")
        up = tf.stack(tf.unstack(up, axis=2)[::-1], axis=2)  # columns reversed: UNPACK, then PACK
        joined = tf.concat([up[:, 1::2, ::-2, 1:], up[:, ::2, :12, :]], axis=3)
        return tf.reduce_mean(tf.pad(joined, [[0, 0], [1, 1], [0, 2], [0, 0]], constant_values=0.5), axis=[2])

    up = tf.constant(rng.normal(0, 0.4, size=(3, 3, 6, 8)).astype(np.float32))
    up_bias = tf.constant(rng.uniform(-0.3, 0.3, size=(6,)).astype(np.float32))

    grouped = tf.keras.layers.Conv2D(12, 3, padding="same", groups=4, activation="relu",
                                     kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.5, seed=5),
                                     bias_initializer=tf.keras.initializers.RandomUniform(-0.2, 0.2, seed=6))

    def blocks(x):
        """Space to depth and back at another block size (bytes moved through 6-D transposes), channels
        gathered, a strided transpose convolution upsampling the same features, a batched matmul of
        them, their L2 normalization, their global max, a grouped convolution of them, their sum over
        columns, their minimum over channels, (int32 outputs) the channel of the largest value per pixel
        and the row of the smallest value per column, their blocks moved to the batch and back, and
        three of their pixels."""
        y = tf.nn.conv2d(x, w, 1, "SAME")
        shuffled = tf.gather(tf.nn.depth_to_space(tf.nn.relu(tf.nn.space_to_depth(y, 2)), 4), [1, 0, 1], axis=3)
        upsampled = tf.nn.relu(tf.nn.conv2d_transpose(y, up, (1, 32, 32, 6), 2, "SAME") + up_bias)
        rows = tf.reshape(y, (16, 16, 8))
        normalized = tf.math.l2_normalize(y * 2.0, axis=-1)
        pooled = tf.reduce_max(y, axis=[1, 2])
        summed = tf.reduce_sum(y, axis=[2])
        labels = tf.math.argmax(tf.nn.relu(y), axis=3, output_type=tf.int32)  # ties (all 0) give index 0
        lowest_rows = tf.math.argmin(y, axis=1, output_type=tf.int32)
        floor = tf.reduce_min(y, axis=[3], keepdims=True)
        batched = tf.space_to_batch_nd(y, [4, 2], [[0, 0], [0, 0]])
        unbatched = tf.batch_to_space(tf.reshape(y, (4, 8, 8, 8)), [2, 2], [[1, 0], [2, 1]])
        picked = tf.gather_nd(y, [[0, 3, 5], [0, 15, 0], [0, 7, 7]])
        return (shuffled, upsampled, tf.matmul(rows, tf.nn.relu(rows), transpose_b=True), normalized, pooled,
                grouped(y), summed, labels, lowest_rows, floor, batched, unbatched, picked)

    return {"blocks": (blocks, {"SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "GATHER", "TRANSPOSE_CONV", "BATCH_MATMUL",
                                "L2_NORMALIZATION", "REDUCE_MAX", "SUM", "ARG_MAX", "ARG_MIN", "REDUCE_MIN",
                                "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "GATHER_ND"}),
            "elementwise": (elementwise, {"ADD", "MUL", "SUB", "SQUARED_DIFFERENCE", "MAXIMUM", "MINIMUM", "HARD_SWISH",
                                          "LOGISTIC", "TANH", "LEAKY_RELU", "PRELU", "ABS", "RSQRT"}),
            "geometry": (geometry, {"RESIZE_NEAREST_NEIGHBOR", "STRIDED_SLICE", "SPLIT", "SUB", "RESIZE_BILINEAR",
                                    "CONCATENATION", "PADV2", "MEAN", "UNPACK", "PACK", "MIRROR_PAD", "REVERSE_V2"})}


@pytest.mark.parametrize("name", ["blocks", "elementwise", "geometry"])
def test_new_ops_firmware_is_byte_identical_to_tflite_micro(name, data_dir, tmp_path):
    fn, expected_ops = _models()[name]
    images = photos(data_dir)
    path = convert(fn, tmp_path / f"{name}.tflite", images, int8_io=True)
    assert expected_ops <= {op.name for op in _read_model(path).operators}
    graph = import_tflite(path)
    q_in = graph.tensors[graph.inputs[0]].quant
    rng = np.random.default_rng(9)
    inputs = [q_in.quantize(image[np.newaxis]) for image in images] + [
        rng.integers(-128, 128, size=IMAGE_SHAPE, dtype=np.int8) for _ in range(3)]
    stacked = tmp_path / "inputs.npy"
    np.save(stacked, np.stack(inputs))

    build = compile_model(str(path), "cortex-m7", output=tmp_path / "build").build_dir
    result = run_build(build, inputs=stacked)

    if name == "elementwise":  # the chain of elementwise ops writes over its own inputs
        timeline = (build / "arena_timeline.txt").read_text()
        assert "in-place table lookup" in timeline and "in-place elementwise" in timeline
    assert result.inputs == len(inputs)
    assert result.bit_exact, f"{name}: {result.mismatches} of {result.inputs} outputs differ from the interpreter"
    for i, expected_outputs in enumerate(tflm_outputs(path, inputs, len(graph.outputs))):
        for k, expected in enumerate(expected_outputs):
            got = result.outputs[k][i].reshape(expected.shape)  # per graph output, N stacked
            assert got.dtype == expected.dtype  # int8, or int32 indices
            differ = int(np.sum(got != expected))
            assert differ == 0, f"{name} input {i}: {differ} of {expected.size} firmware output bytes differ from TFLM"
    assert len(np.unique(result.outputs[0])) > 10
