"""Segments of a chain and the compression plan made of them; which segments are valid.

A segment (i, j] replaces convolutions i+1..j by one convolution: the activations strictly inside
it are removed, its padding moves to its first convolution (the papers' ``adjust_padding``), a
residual lying wholly inside folds into the kernel, and (LayerMerge) ``dropped`` convolutions
become identities. ``keep_activation`` says whether the activation at position j stays (the
ICML'23 DP may cut a linear span into several segments without activations between them).
"""

from dataclasses import dataclass, field

from edgekit.compress.chain import Chain


@dataclass(frozen=True)
class Segment:
    start: int
    end: int
    dropped: tuple[int, ...] = ()  # convolution indices (1-based positions) replaced by identities
    keep_activation: bool = True

    @property
    def convs(self) -> list[int]:
        """The kept convolutions, as positions start+1..end."""
        return [k for k in range(self.start + 1, self.end + 1) if k not in self.dropped]

    def label(self) -> str:
        text = f"({self.start},{self.end}]"
        if self.dropped:
            text += " drop " + ",".join(map(str, self.dropped))
        return text if self.keep_activation else text + " linear"


@dataclass
class Plan:
    """Segments covering positions 0..L in order; the identity plan has one segment per convolution."""

    segments: list[Segment]
    mode: str = "identity"
    meta: dict = field(default_factory=dict)

    @classmethod
    def identity(cls, chain: Chain) -> "Plan":
        return cls([Segment(k, k + 1) for k in range(chain.length)])

    def to_json(self) -> list[dict]:
        return [{"start": s.start, "end": s.end, "dropped": list(s.dropped), "keep_activation": s.keep_activation}
                for s in self.segments]


def folds_residual(segment: Segment, start: int, end: int) -> bool:
    """The residual (start, end) lies wholly inside the segment, so its identity joins the kernel."""
    return segment.start <= start and end <= segment.end


def segment_problem(chain: Chain, segment: Segment, max_kernel: int) -> str | None:
    """Why the segment cannot be merged exactly, or None when it can."""
    i, j = segment.start, segment.end
    if not 0 <= i < j <= chain.length:
        return f"positions {i}..{j} are outside 0..{chain.length}"
    if segment.start + 1 in segment.dropped:
        return "its first convolution is dropped (keep it: the moved padding goes there)"
    for k in segment.dropped:
        if not i < k <= j or not chain.layers[k - 1].droppable:
            return f"convolution {k} cannot become an identity (shape or stride changes)"
    for residual in chain.residuals:
        if folds_residual(segment, residual.start, residual.end):
            continue
        if i < residual.start < j:
            return f"it splits the residual {residual.start}->{residual.end} at its start"
        if i < residual.end < j:
            return f"it splits the residual {residual.start}->{residual.end} at its end"
    kernel = merged_kernel(chain, segment)
    if max(kernel) > max_kernel:
        return f"the merged kernel {kernel[0]}x{kernel[1]} exceeds {max_kernel}x{max_kernel}"
    return None


def merged_kernel(chain: Chain, segment: Segment) -> tuple[int, int]:
    """k = k1 + (k2 - 1) s1 applied along the kept convolutions."""
    size, stride = [1, 1], [1, 1]
    for k in segment.convs:
        layer = chain.layers[k - 1]
        for axis in range(2):
            size[axis] += (layer.kernel[axis] - 1) * stride[axis]
            stride[axis] *= layer.stride[axis]
    return size[0], size[1]


def check_plan(chain: Chain, plan: Plan, max_kernel: int = 99) -> None:
    """ValueError when the segments do not tile 0..L or one cannot be merged."""
    position = 0
    for segment in plan.segments:
        if segment.start != position:
            raise ValueError(f"plan segment {segment.label()} does not start at position {position}")
        problem = segment_problem(chain, segment, max_kernel)
        if problem:
            raise ValueError(f"plan segment {segment.label()} is invalid: {problem}")
        position = segment.end
    if position != chain.length:
        raise ValueError(f"plan ends at position {position}, the chain at {chain.length}")
