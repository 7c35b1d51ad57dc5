"""Description: how far an output may be shifted over the input it overwrites, call by call.

A node that streams (a row-wise op run one output row per kernel call, or the patch stage writing
the split tensor tile by tile while it reads the frame patch by patch) reads its source and writes
its output in a known order of calls. The output may then start ``d`` bytes from the source's start
(``d`` <= 0: the output starts lower) and overwrite source bytes that no later call reads:

    for every call k:  [d + write_k)  does not meet  reads of calls k + 1, k + 2, ...
                       [d + write_k)  does not meet  read_k (a kernel may read and write its own
                                      buffers in any order), unless the call is elementwise and its
                                      write trails its read (element i is read before it is written)

Reads and writes are byte ranges [lo, hi) relative to the source's and the output's first byte. The
test here is conservative: the reads of calls k+1.. are taken as [min of their lo, end of source),
so ``max_shift`` is the largest d for which every write lies below every byte still to be read. It
is a sufficient condition, which is what the plan checker needs to prove "no read after overwrite".

A shrinking row-wise op (output row <= input row) gets d = -(one output row): its whole input plus
one row; a growing one ends up with its input in the output's tail: its output plus one input row.
"""

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Access:
    """One kernel call: the source bytes it reads and the output bytes it writes, each [lo, hi).
    ``elementwise``: the call reads element i before it writes element i (an elementwise add)."""

    reads: tuple[int, int]
    writes: tuple[int, int]
    elementwise: bool = False


def max_shift(calls: Sequence[Access]) -> int:
    """The largest shift d (output start minus source start, <= 0) under which no call of ``calls``
    (in execution order) writes a source byte that it or a later call still reads."""
    shift = 0
    later_reads = None  # lowest byte any later call reads
    for call in reversed(calls):
        if later_reads is not None:
            shift = min(shift, later_reads - call.writes[1])
        if call.elementwise and call.writes[1] - call.writes[0] == call.reads[1] - call.reads[0]:
            shift = min(shift, call.reads[0] - call.writes[0])
        else:
            shift = min(shift, call.reads[0] - call.writes[1])
        later_reads = call.reads[0] if later_reads is None else min(later_reads, call.reads[0])
    return shift


@dataclass(frozen=True)
class RowCalls:
    """A row-by-row loop of ``rows`` calls: call r reads ``read_bytes`` at ``read_start + r *
    read_stride`` of the source and writes ``write_bytes`` at ``r * write_stride`` of the output.
    Iterating gives its ``Access`` list; ``max_shift`` is the same bound in closed form."""

    rows: int
    read_start: int
    read_stride: int
    read_bytes: int
    write_stride: int
    write_bytes: int
    elementwise: bool = False

    def __iter__(self):
        for r in range(self.rows):
            read = self.read_start + r * self.read_stride
            yield Access((read, read + self.read_bytes), (r * self.write_stride, r * self.write_stride + self.write_bytes),
                         self.elementwise)

    def max_shift(self) -> int:
        """``max_shift(list(self))`` without the list: every bound is linear in the row, so its
        minimum is at the first or the last row it applies to."""
        if self.rows <= 0:
            return 0
        slope = self.read_stride - self.write_stride
        same = self.read_start - (0 if self.elementwise and self.read_bytes == self.write_bytes else self.write_bytes)
        bounds = [0, same, same + (self.rows - 1) * slope]
        if self.rows > 1:  # call r against the reads of call r + 1 (the lowest of all later reads)
            later = self.read_start + self.read_stride - self.write_bytes
            bounds += [later, later + (self.rows - 2) * slope]
        return min(bounds)


def sequence_shift(calls) -> int:
    """``max_shift`` of one call sequence (a ``RowCalls`` in closed form)."""
    return calls.max_shift() if isinstance(calls, RowCalls) else max_shift(calls)
