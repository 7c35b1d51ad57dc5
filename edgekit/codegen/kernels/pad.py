"""pad int8 kernel: constant padding of every axis with a runtime value (the zero point for int8).

``int32_t NAME(const int8_t* input, int8_t* output, int32_t pad_value)``. Output elements are
written in order (innermost axis contiguous); each reads its input element or ``pad_value``.
"""

from dataclasses import dataclass
from functools import lru_cache

from tvm import te, tirx

from edgekit.codegen.kernels.kernel_source import OUTPUT_STAGE, KernelSource, build_kernel


@dataclass(frozen=True)
class PadSpec:
    """Static shape of one pad: the input shape and (before, after) per axis."""

    input_shape: tuple[int, ...]
    pads: tuple[tuple[int, int], ...]

    @property
    def output_shape(self) -> tuple[int, ...]:
        return tuple(d + before + after for d, (before, after) in zip(self.input_shape, self.pads))


@lru_cache(maxsize=None)
def pad_kernel(spec: PadSpec) -> KernelSource:
    """The C kernel ``ek_pad_s8_<hash>`` for ``spec``."""
    if len(spec.pads) != len(spec.input_shape):
        raise ValueError(f"pad spec has {len(spec.pads)} (before, after) pairs for a {len(spec.input_shape)}-D input")
    pad_value = te.var("pad_value", "int32")
    x = te.placeholder(spec.input_shape, "int8", name="input")

    def element(*index):
        inside = tirx.all(*(tirx.all(i >= before, i < before + d)
                            for i, d, (before, _) in zip(index, spec.input_shape, spec.pads)))
        source = tuple(i - before for i, (before, _) in zip(index, spec.pads))
        return tirx.if_then_else(inside, x[source], pad_value.astype("int8"))

    output = te.compute(spec.output_shape, element, name=OUTPUT_STAGE)
    return build_kernel("pad", spec, [x, output, pad_value], lambda sch: None, ("input",))


@lru_cache(maxsize=None)
def mirror_pad_kernel(spec: PadSpec, reflect: bool) -> KernelSource:
    """The C kernel ``ek_mirror_pad_s8_<hash>`` (``int32_t NAME(const int8_t* input, int8_t* output)``):
    each output element reads its input index mirrored at the edges (``edgekit.ops.mirror_pad``)."""
    offset = 1 if reflect else 0
    x = te.placeholder(spec.input_shape, "int8", name="input")

    def mirrored(i, d):
        return tirx.if_then_else(i < 0, offset - 1 - i, tirx.if_then_else(i >= d, 2 * d - 1 - offset - i, i))

    output = te.compute(spec.output_shape, lambda *index: x[tuple(
        mirrored(o - before, d) for o, d, (before, _) in zip(index, spec.input_shape, spec.pads))], name=OUTPUT_STAGE)
    return build_kernel("mirror_pad", (spec, reflect), [x, output], lambda sch: None, ("input",))
