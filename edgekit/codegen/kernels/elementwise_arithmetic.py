"""The per-element int8 arithmetic of the binary ops, as TE expressions for broadcast_binary.py.

Each function takes the two operands as int32 expressions and the op's integer parameters by name
(the fields of its ``*Int8Params``) and returns the int8 result, step for step as the op's NumPy
reference in ``edgekit/ops/<op>.py`` (TFLite's kernels). As in fixed_point.py, selections are sign-bit
arithmetic, not comparisons.
"""

from tvm import tirx

from edgekit.codegen.kernels.fixed_point import clamp_to_int8, let, multiply_by_quantized_multiplier


def lifted(x, offset, left_shift: int, multiplier, shift):
    """(x + offset) * 2**left_shift rescaled to the common scale (TFLite's ADD/SUB/SQUARED_DIFFERENCE)."""
    return multiply_by_quantized_multiplier((x + offset) * (1 << left_shift), multiplier, shift)


def _is_negative(x):
    """1 where the int32 expression ``x`` is negative, else 0."""
    return (x >> tirx.const(31, "int32")) & tirx.const(1, "int32")


def mul_element(a, b, s):
    product = (a + s["a_offset"]) * (b + s["b_offset"])
    scaled = multiply_by_quantized_multiplier(product, s["out_mult"], s["out_shift"]) + s["out_offset"]
    return clamp_to_int8(scaled, s["act_min"], s["act_max"])


def _difference(a, b, s, left_shift: int):
    return lifted(a, s["a_offset"], left_shift, s["a_mult"], s["a_shift"]) - lifted(
        b, s["b_offset"], left_shift, s["b_mult"], s["b_shift"])


def add_element(a, b, s):
    from edgekit.ops.add import LEFT_SHIFT

    total = lifted(a, s["a_offset"], LEFT_SHIFT, s["a_mult"], s["a_shift"]) + lifted(
        b, s["b_offset"], LEFT_SHIFT, s["b_mult"], s["b_shift"])
    scaled = multiply_by_quantized_multiplier(total, s["out_mult"], s["out_shift"])
    return clamp_to_int8(scaled + s["out_offset"], s["act_min"], s["act_max"])


def sub_element(a, b, s):
    from edgekit.ops.sub import LEFT_SHIFT

    scaled = multiply_by_quantized_multiplier(_difference(a, b, s, LEFT_SHIFT), s["out_mult"], s["out_shift"])
    return clamp_to_int8(scaled + s["out_offset"], s["act_min"], s["act_max"])


def squared_difference_element(a, b, s):
    from edgekit.ops.squared_difference import LEFT_SHIFT

    def squared(difference):
        scaled = multiply_by_quantized_multiplier(difference * difference, s["out_mult"], s["out_shift"])
        return clamp_to_int8(scaled + s["out_offset"], s["act_min"], s["act_max"])

    return let("difference", _difference(a, b, s, LEFT_SHIFT), squared)


def maximum_element(a, b, s):
    return tirx.max(a, b).astype("int8")


def minimum_element(a, b, s):
    return tirx.min(a, b).astype("int8")


def prelu_element(x, alpha, s):
    """x - zp >= 0: rescaled by the identity multiplier; below: (x - zp) * (alpha - zp_alpha) rescaled."""

    def chosen(centred):
        identity = multiply_by_quantized_multiplier(centred, s["identity_multiplier"], s["identity_shift"])
        scaled = multiply_by_quantized_multiplier(centred * (alpha + s["alpha_offset"]), s["alpha_multiplier"],
                                                  s["alpha_shift"])
        return let("identity", identity, lambda i: let(
            "scaled", scaled, lambda sc: i + _is_negative(centred) * (sc - i)))

    return clamp_to_int8(let("centred", x + s["input_offset"], chosen) + s["output_offset"], -128, 127)
