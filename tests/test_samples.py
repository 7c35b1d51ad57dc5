"""Model inputs from .npy files: layouts are recognised on the whole array, never guessed by reshape."""

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.samples import _stacked

SHAPE = (1, 4, 5, 3)


def _nhwc_stack(n=3):
    return np.arange(n * 4 * 5 * 3, dtype=np.int64).reshape(n, 4, 5, 3)


def test_stack_of_nhwc_inputs_splits_in_order():
    stack = _nhwc_stack()
    inputs = _stacked(stack, SHAPE, "x.npy")
    assert [x.shape for x in inputs] == [SHAPE] * 3
    for i, x in enumerate(inputs):
        np.testing.assert_array_equal(x[0], stack[i])


def test_stack_of_nchw_images_is_transposed_not_reshaped():
    stack = _nhwc_stack()
    inputs = _stacked(stack.transpose(0, 3, 1, 2), SHAPE, "x.npy")
    for i, x in enumerate(inputs):
        np.testing.assert_array_equal(x[0], stack[i])


def test_single_chw_image_is_transposed():
    stack = _nhwc_stack(1)
    (x,) = _stacked(stack[0].transpose(2, 0, 1), SHAPE, "x.npy")
    np.testing.assert_array_equal(x[0], stack[0])


def test_flat_array_of_the_right_size_is_refused():
    with pytest.raises(EdgekitError, match=r"neither inputs of shape"):
        _stacked(np.zeros(4 * 5 * 3), SHAPE, "x.npy")
