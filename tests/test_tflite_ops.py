"""Every TFLite op edgekit imports beyond the classic CNN set, on models the tests build themselves.

Each case is a TensorFlow function on a 16x16 RGB image, converted by TensorFlow's TFLiteConverter
to full-integer int8 (calibrated on the shared photos), once with int8 I/O and once with float32
I/O. edgekit's integer reference interpreter must give TFLite Micro's outputs byte for byte on the
photos and on random inputs.
"""

import numpy as np
import pytest
from tflite_models import IMAGE_SHAPE, convert, photos, tensorflow, tflm_outputs

from edgekit.errors import UnsupportedOpError
from edgekit.frontend.tflite import import_tflite
from edgekit.ir.interpreter import run_graph

RANDOM_INPUTS = 3


def _cases():
    """name -> (function of the image, TFLite operators the converted model must contain)."""
    tf = tensorflow()
    rng = np.random.default_rng(7)
    w = tf.constant(rng.normal(0, 0.5, size=(1, 1, 3, 8)).astype(np.float32))
    w2 = tf.constant(rng.normal(0, 0.5, size=(1, 1, 3, 8)).astype(np.float32))
    channel_scale = tf.constant(rng.uniform(0.2, 1.5, size=(8,)).astype(np.float32))
    prelu = tf.keras.layers.PReLU(tf.keras.initializers.RandomUniform(0.05, 0.4, seed=3), shared_axes=[1, 2])

    up = rng.normal(0, 0.4, size=(3, 3, 6, 8)).astype(np.float32)  # HW, output channels, input channels
    up_bias = tf.constant(rng.uniform(-0.3, 0.3, size=(6,)).astype(np.float32))

    def transpose_conv(y, stride, padding, out_hw):
        return tf.nn.conv2d_transpose(y, tf.constant(up), (1, *out_hw, 6), stride, padding) + up_bias

    grouped = tf.keras.layers.Conv2D(12, 3, padding="same", groups=4, activation="relu",
                                     kernel_initializer=tf.keras.initializers.RandomNormal(0, 0.5, seed=5),
                                     bias_initializer=tf.keras.initializers.RandomUniform(-0.2, 0.2, seed=6))

    def features(x):
        return tf.nn.conv2d(x, w, 1, "SAME") - 0.2

    def two(x):
        return features(x), tf.nn.conv2d(x, w2, 1, "SAME") * 0.7

    def squeeze_excite(x):
        y = features(x)
        gate = tf.sigmoid(tf.reduce_mean(y, axis=[1, 2], keepdims=True))
        return y * gate

    return {
        "add_scalar": (lambda x: tf.nn.relu(features(x)) + 0.5, {"ADD"}),
        "add_channel": (lambda x: tf.nn.relu(features(x)) + channel_scale, {"ADD"}),
        "add_broadcast": (lambda x: features(x) + tf.reduce_mean(features(x), axis=[2], keepdims=True), {"ADD"}),
        "hard_sigmoid": (lambda x: tf.keras.activations.hard_sigmoid(tf.nn.relu(features(x)) * 3.0 - 1.5), {"ADD"}),
        "mul_tensor": (lambda x: tf.multiply(*two(x)), {"MUL"}),
        "mul_scalar": (lambda x: tf.nn.relu(features(x)) * 0.37, {"MUL"}),
        "mul_channel": (lambda x: tf.nn.relu(features(x)) * channel_scale, {"MUL"}),
        "squeeze_excite": (squeeze_excite, {"MUL", "LOGISTIC", "MEAN"}),
        "sub": (lambda x: tf.nn.relu6(tf.subtract(*two(x))), {"SUB"}),
        "sub_broadcast": (lambda x: features(x) - tf.reduce_mean(features(x), axis=[2], keepdims=True), {"SUB"}),
        "squared_difference": (lambda x: tf.math.squared_difference(*two(x)), {"SQUARED_DIFFERENCE"}),
        "maximum": (lambda x: tf.maximum(*two(x)), {"MAXIMUM"}),
        "minimum": (lambda x: tf.minimum(*two(x)), {"MINIMUM"}),
        "hard_swish": (lambda x: (lambda y: y * tf.nn.relu6(y + 3.0) * (1.0 / 6.0))(features(x) * 4.0),
                       {"HARD_SWISH"}),
        "logistic": (lambda x: tf.sigmoid(features(x) * 3.0), {"LOGISTIC"}),
        "tanh": (lambda x: tf.tanh(features(x) * 2.0), {"TANH"}),
        "abs": (lambda x: tf.abs(features(x)), {"ABS"}),
        "rsqrt": (lambda x: tf.math.rsqrt(tf.nn.relu(features(x)) + 0.05), {"RSQRT"}),
        "rsqrt_normalize": (lambda x: features(x) * tf.math.rsqrt(
            tf.reduce_mean(tf.square(features(x)), axis=[3], keepdims=True) + 0.01), {"RSQRT"}),
        "abs_of_difference": (lambda x: tf.abs(tf.subtract(*two(x))) * 0.5, {"ABS"}),
        "leaky_relu": (lambda x: tf.nn.leaky_relu(features(x), 0.15), {"LEAKY_RELU"}),
        "prelu": (lambda x: prelu(features(x)), {"PRELU"}),
        "resize_nearest": (lambda x: tf.image.resize(features(x), (32, 24), "nearest"), {"RESIZE_NEAREST_NEIGHBOR"}),
        "resize_nearest_align": (lambda x: tf.compat.v1.image.resize_nearest_neighbor(
            features(x), (23, 31), align_corners=True), {"RESIZE_NEAREST_NEIGHBOR"}),
        "resize_bilinear": (lambda x: tf.image.resize(features(x), (24, 40), "bilinear"), {"RESIZE_BILINEAR"}),
        "resize_bilinear_align": (lambda x: tf.compat.v1.image.resize_bilinear(
            features(x), (9, 31), align_corners=True), {"RESIZE_BILINEAR"}),
        "mean_axis": (lambda x: tf.reduce_mean(features(x), axis=[2]), {"MEAN"}),
        "mean_channels": (lambda x: tf.reduce_mean(features(x), axis=[3], keepdims=True), {"MEAN"}),
        "mean_all": (lambda x: tf.reduce_mean(features(x), axis=[1, 2, 3]), {"MEAN"}),
        "concat": (lambda x: tf.concat(list(two(x)), axis=3), {"CONCATENATION"}),
        "strided_slice": (lambda x: features(x)[:, 1:15:2, ::-3, 2:7], {"STRIDED_SLICE"}),
        "strided_slice_shrink": (lambda x: features(x)[:, 3, :, 1:], {"STRIDED_SLICE"}),
        "reverse": (lambda x: tf.reverse(features(x), axis=[2, -1]), {"REVERSE_V2"}),
        "space_to_batch": (lambda x: tf.space_to_batch_nd(features(x), [2, 4], [[0, 0], [0, 0]]) * 0.5,
                           {"SPACE_TO_BATCH_ND"}),
        "batch_to_space": (lambda x: tf.batch_to_space(tf.reshape(features(x), (4, 8, 8, 8)), [2, 2],
                                                       [[1, 0], [2, 1]]), {"BATCH_TO_SPACE_ND"}),
        "split": (lambda x: (lambda a, b: a - b)(*tf.split(features(x), 2, axis=3)), {"SPLIT"}),
        "split_v": (lambda x: tf.concat(tf.split(features(x), [3, 5], axis=3)[::-1], axis=3) * 0.5, {"SPLIT_V"}),
        "squeeze": (lambda x: tf.squeeze(tf.reduce_mean(features(x), axis=[1], keepdims=True), axis=1),
                    {"MEAN"}),
        "padv2": (lambda x: tf.pad(features(x), [[0, 0], [1, 2], [3, 0], [0, 0]], constant_values=0.75), {"PADV2"}),
        "mirror_pad_reflect": (lambda x: tf.pad(features(x), [[0, 0], [1, 2], [3, 0], [0, 0]], mode="REFLECT"),
                               {"MIRROR_PAD"}),
        "mirror_pad_symmetric": (lambda x: tf.pad(features(x), [[0, 0], [2, 2], [0, 1], [1, 0]], mode="SYMMETRIC"),
                                 {"MIRROR_PAD"}),
        "depth_to_space": (lambda x: tf.nn.depth_to_space(features(x), 2), {"DEPTH_TO_SPACE"}),
        "space_to_depth": (lambda x: tf.nn.space_to_depth(features(x), 4) * 0.5, {"SPACE_TO_DEPTH"}),
        "transpose_conv_same": (lambda x: tf.nn.relu(transpose_conv(features(x), 2, "SAME", (32, 32))),
                                 {"TRANSPOSE_CONV"}),
        "transpose_conv_valid": (lambda x: transpose_conv(features(x), 2, "VALID", (33, 33)), {"TRANSPOSE_CONV"}),
        "transpose_conv_stride1": (lambda x: transpose_conv(features(x), 1, "SAME", (16, 16)), {"TRANSPOSE_CONV"}),
        "gather_channels": (lambda x: tf.gather(features(x), [7, 0, 3, 3, 5], axis=3), {"GATHER"}),
        "gather_nd_pixels": (lambda x: tf.gather_nd(features(x), [[0, 3, 5], [0, 15, 0], [0, 3, 5]]), {"GATHER_ND"}),
        "gather_nd_rows": (lambda x: tf.gather_nd(tf.nn.relu(features(x)), [[[0, 2]], [[0, 9]]]), {"GATHER_ND"}),
        "gather_rows": (lambda x: tf.gather(tf.nn.relu(features(x)), [[15, 2], [0, 9]], axis=1), {"GATHER"}),
        "batch_matmul_adj_x": (lambda x: tf.matmul(tf.reshape(features(x), (1, 256, 8)),
                                                   tf.reshape(tf.nn.relu(two(x)[1]), (1, 256, 8)), transpose_a=True),
                               {"BATCH_MATMUL"}),
        "batch_matmul_batched": (lambda x: tf.matmul(tf.reshape(features(x), (16, 16, 8)),
                                                     tf.reshape(two(x)[1], (16, 16, 8)), transpose_b=True),
                                 {"BATCH_MATMUL"}),
        "l2_normalization": (lambda x: tf.math.l2_normalize(features(x) * 3.0, axis=-1), {"L2_NORMALIZATION"}),
        "l2_normalization_rows": (lambda x: tf.math.l2_normalize(tf.reshape(two(x)[1], (1, 2048)), axis=-1),
                                  {"L2_NORMALIZATION"}),
        "reduce_max_spatial": (lambda x: tf.reduce_max(features(x), axis=[1, 2]), {"REDUCE_MAX"}),
        "sum_spatial": (lambda x: tf.reduce_sum(features(x), axis=[1, 2]), {"SUM"}),
        "sum_channels": (lambda x: tf.reduce_sum(features(x), axis=[3], keepdims=True), {"SUM"}),
        "sum_rows": (lambda x: tf.reduce_sum(tf.nn.relu(features(x)), axis=[2]) * 0.1, {"SUM"}),
        "arg_max_channels": (lambda x: tf.math.argmax(features(x), axis=3, output_type=tf.int32), {"ARG_MAX"}),
        "arg_max_rows": (lambda x: tf.math.argmax(tf.nn.relu(features(x)), axis=1, output_type=tf.int32),
                         {"ARG_MAX"}),
        "arg_min_columns": (lambda x: tf.math.argmin(features(x), axis=2, output_type=tf.int32), {"ARG_MIN"}),
        "reduce_min_spatial": (lambda x: tf.reduce_min(features(x), axis=[1, 2]), {"REDUCE_MIN"}),
        "reduce_min_channels": (lambda x: tf.reduce_min(features(x), axis=[3], keepdims=True), {"REDUCE_MIN"}),
        "reduce_max_channels": (lambda x: tf.reduce_max(features(x), axis=[3], keepdims=True), {"REDUCE_MAX"}),
        "unpack_pack": (lambda x: tf.stack(tf.unstack(features(x), axis=2)[::-3], axis=1), {"UNPACK", "PACK"}),
        "grouped_conv": (lambda x: grouped(features(x)), {"CONV_2D"}),
        "conv_relu_n1_to_1": (lambda x: tf.clip_by_value(features(x) * 3.0, -1.0, 1.0), {"CONV_2D"}),
        "add_relu_n1_to_1": (lambda x: tf.clip_by_value(tf.add(*two(x)), -1.0, 1.0), {"ADD"}),
        "relu_standalone": (lambda x: tf.nn.relu(tf.concat(list(two(x)), axis=3)), {"RELU"}),
    }


@pytest.fixture(scope="module")
def calibration(data_dir):
    return photos(data_dir)


def _operators(path) -> set[str]:
    from edgekit.frontend.tflite import _read_model

    return {op.name for op in _read_model(path).operators}


def _inputs(graph, images):
    tensor = graph.tensors[graph.inputs[0]]
    if tensor.dtype == "float32":
        rng = np.random.default_rng(1)
        return list(images[:, np.newaxis]) + [rng.uniform(-0.5, 1.5, IMAGE_SHAPE).astype(np.float32)
                                              for _ in range(RANDOM_INPUTS)]
    rng = np.random.default_rng(2)
    return [tensor.quant.quantize(image[np.newaxis]) for image in images] + [
        rng.integers(-128, 128, size=IMAGE_SHAPE, dtype=np.int8) for _ in range(RANDOM_INPUTS)]


@pytest.mark.parametrize("io", ["int8", "float32"])
@pytest.mark.parametrize("case", sorted(_cases()))
def test_op_matches_tflite_micro(case, io, calibration, tmp_path):
    fn, expected_ops = _cases()[case]
    path = convert(fn, tmp_path / f"{case}.tflite", calibration, int8_io=io == "int8")
    assert expected_ops <= _operators(path), f"the converter did not produce {expected_ops}"
    graph = import_tflite(path)
    inputs = _inputs(graph, calibration)
    want = tflm_outputs(path, inputs, len(graph.outputs))
    for index, (x, expected) in enumerate(zip(inputs, want)):
        got = run_graph(graph, [x], mode="int8")
        for name, tflm in zip(graph.outputs, expected):
            assert got[name].dtype == tflm.dtype
            np.testing.assert_array_equal(got[name].reshape(tflm.shape), tflm, err_msg=f"input {index}, output {name}")


def test_int64_arg_max_is_refused_naming_the_fix(calibration, tmp_path):
    """TF's argmax writes int64 by default; TFLite Micro only writes int32, so the import says how to convert."""
    tf = tensorflow()
    path = convert(lambda x: tf.math.argmax(x, axis=3), tmp_path / "argmax64.tflite", calibration, int8_io=True)
    assert "ARG_MAX" in _operators(path)
    with pytest.raises(UnsupportedOpError, match=r"int64 indices.*output_type=tf\.int32"):
        import_tflite(path)


@pytest.mark.parametrize("case, op", [("conv_relu_n1_to_1", "conv2d"), ("add_relu_n1_to_1", "add")])
def test_clip_to_one_is_a_fused_relu_n1_to_1(case, op, calibration, tmp_path):
    """The converter fuses clip(-1, 1) into its producer as RELU_N1_TO_1; the import keeps it as that
    node's activation (the byte-identity with TFLite Micro is test_op_matches_tflite_micro's)."""
    path = convert(_cases()[case][0], tmp_path / f"{case}.tflite", calibration, int8_io=True)
    assert "relu_n1_to_1" in [node.attrs.activation for node in import_tflite(path).nodes if node.op == op]


def test_padded_space_to_batch_is_refused_naming_the_fix(calibration, tmp_path):
    """TFLite Micro pads SPACE_TO_BATCH_ND with an uninitialized value, so there is nothing exact to match."""
    tf = tensorflow()
    path = convert(lambda x: tf.space_to_batch_nd(x, [2, 2], [[1, 1], [0, 2]]), tmp_path / "s2b.tflite", calibration,
                   int8_io=True)
    with pytest.raises(UnsupportedOpError, match=r"SPACE_TO_BATCH_ND.*uninitialized.*pad first"):
        import_tflite(path)
