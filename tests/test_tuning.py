"""`--tune` (edgekit/tuning.py): every variant of each MAC layer is measured in QEMU, the fastest is kept,
and the measurements are cached per (shape, target, variant) so a second tuning runs nothing."""

import pytest
from test_kernels_qemu import Builder

from edgekit.codegen.program import emit_program
from edgekit.memory import plan_memory
from edgekit.target import load_target
from edgekit.tuning import tunable_calls, tune

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("private_edgekit_home")]


def conv_then_fully_connected():
    b = Builder(11, (1, 6, 5, 13))
    y = b.conv2d("x", 6, (3, 3), padding=(1, 1, 1, 1), activation="relu")
    return b.finish(b.fully_connected(b.reshape(y, (1, 180)), 10))


def test_tuning_measures_every_variant_keeps_the_fastest_and_caches(tmp_path):
    graph = conv_then_fully_connected()
    plan = plan_memory(graph)
    target = load_target("cortex-m7")
    program = emit_program(graph, plan, target, tmp_path / "default")
    calls = tunable_calls(program, None)
    assert [call.node for call in calls] == ["conv2d1", "fully_connected3"]
    assert all(set(call.variants) == {"dsp_w16", "dsp", "tvm"} for call in calls)

    tuning = tune(graph, plan, target, None, program)
    assert tuning.runs == 3  # one run per variant measures every layer at once
    for call in calls:
        counts = tuning.instructions[call.tuning_key]
        assert set(counts) == {"dsp_w16", "dsp", "tvm"} and min(counts.values()) > 0
        assert tuning.variants[call.tuning_key] == min(counts, key=counts.get)
        assert counts["tvm"] > 2 * min(counts.values())  # the portable TVM schedule is the slow one

    again = tune(graph, plan, target, None, program)
    assert again.runs == 0 and again.variants == tuning.variants

    tuned = emit_program(graph, plan, target, tmp_path / "tuned", tuned=tuning.variants)
    chosen = {call.node: call.kernel.variant for call in tuned.calls if call.tuning_key}
    assert chosen == {call.node: tuning.variants[call.tuning_key] for call in calls}
