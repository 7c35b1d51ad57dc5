"""The plugin's marker log becomes per-inference totals and per-layer counts."""

from edgekit.instruction_counter import InferenceCounts, parse_marker_log

# marker 1 = ek_inference_boundary (harness), marker 0 = ek_mark (model); "marker count" per line.
LOG = """\
1 100
0 110
0 150
0 400
1 405
1 500
0 510
0 550
0 800
1 805
1 900
0 910
"""


def test_layers_are_differences_between_consecutive_marks():
    assert parse_marker_log(LOG) == [
        InferenceCounts(total=305, layers=[40, 250]),
        InferenceCounts(total=305, layers=[40, 250]),
    ]


def test_keep_model_without_marks():
    """A model that never calls ek_mark still gets its total."""
    assert parse_marker_log("1 10\n1 60\n") == [InferenceCounts(total=50, layers=[])]


def test_unfinished_inference_is_left_out():
    assert len(parse_marker_log(LOG)) == 2  # the third started at 900 but never returned
