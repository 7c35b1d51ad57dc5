"""Streaming in-place writes: how far an output may start below the input it overwrites."""

import random

import pytest

from edgekit.memory.streaming import Access, RowCalls, max_shift


def brute_force_safe(calls, shift) -> bool:
    """Byte by byte: no call writes a source byte that it (unless elementwise and trailing) or a
    later call reads."""
    for k, call in enumerate(calls):
        written = set(range(shift + call.writes[0], shift + call.writes[1]))
        for later in calls[k + 1:]:
            if written & set(range(*later.reads)):
                return False
        if call.elementwise:
            if any(shift + call.writes[0] + i > call.reads[0] + i and shift + call.writes[0] + i in range(*call.reads)
                   for i in range(call.writes[1] - call.writes[0])):
                return False
        elif written & set(range(*call.reads)):
            return False
    return True


def test_shrinking_rows_need_one_output_row():
    """4 rows of 8 pixels, 6 channels in, 2 out: output row r must end before input row r starts."""
    calls = RowCalls(4, 0, 48, 48, 16, 16)
    assert max_shift(list(calls)) == calls.max_shift() == -16


def test_widening_rows_put_the_input_in_the_output_tail():
    """4 rows, 2 channels in, 6 out: the last output row may not reach the last input row."""
    calls = RowCalls(4, 0, 16, 16, 48, 48)
    assert calls.max_shift() == 3 * 16 - 4 * 48 == max_shift(list(calls))


def test_elementwise_calls_may_write_where_they_read():
    assert max_shift([Access((0, 64), (0, 64), elementwise=True)]) == 0
    assert max_shift([Access((0, 64), (0, 64))]) == -64


@pytest.mark.parametrize("seed", range(60))
def test_closed_form_matches_the_calls_and_the_bound_is_tight(seed):
    rng = random.Random(seed)
    width, in_channels, out_channels = rng.randint(1, 5), rng.randint(1, 4), rng.randint(1, 4)
    held_width = width + rng.randint(0, 3)
    elementwise = rng.random() < 0.3
    if elementwise:
        out_channels = in_channels
    calls = RowCalls(rng.randint(1, 5), rng.randint(0, 3) * in_channels, held_width * in_channels,
                     width * in_channels, width * out_channels, width * out_channels, elementwise)
    listed = list(calls)
    shift = max_shift(listed)
    assert calls.max_shift() == shift
    assert brute_force_safe(listed, shift)
    if shift < 0:  # the conservative test may reject safe shifts, but it must not overshoot by much
        assert shift >= -(width * out_channels) - calls.rows * max(0, (out_channels - in_channels) * width)
