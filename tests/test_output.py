"""Readable output (issue 12, step 7): `compile` and `run` print a short summary and `report` the full
table; one name per tensor and node across the tables; progress per stage, as plain lines when
stderr is not a terminal (CI logs, pipes) and as bars on a terminal."""

import io
import json
import re

import pytest
from test_cli import edgekit
from test_memory_patch_stage import mobilenetv2_like

from edgekit.compiler import plan_schedule
from edgekit.ir.serialize import load_graph
from edgekit.progress import Stages
from edgekit.report import render_patch_text
from edgekit.target import load_target

HELLO = "tflite-micro/hello_world_int8.tflite"


@pytest.fixture(scope="module")
def hello(tmp_path_factory, models_dir):
    """hello_world compiled for cortex-m4 and run, through the CLI with stderr on a pipe."""
    out = tmp_path_factory.mktemp("output") / "hello"
    compiled = edgekit("compile", models_dir / HELLO, "--target", "cortex-m4", "-o", out)
    assert compiled.returncode == 0, compiled.stderr
    ran = edgekit("run", out)
    assert ran.returncode == 0, ran.stderr
    return out, compiled, ran


def _finished_stages(stderr: str) -> list[str]:
    return [match.group(1) for match in re.finditer(r"^edgekit: (.+) done \(", stderr, re.MULTILINE)]


def test_compile_reports_each_stage_as_plain_lines(hello):
    _, compiled, _ = hello
    assert _finished_stages(compiled.stderr) == ["import", "planning", "kernels", "compile C", "link", "report"]
    assert re.search(r"^edgekit: compile C done \((\d+)/\1, [\d.]+ s\)$", compiled.stderr, re.MULTILINE)
    assert "\r" not in compiled.stderr and "\x1b[" not in compiled.stderr  # no bar redrawn in a log
    assert all(line.startswith("edgekit: ") for line in compiled.stderr.splitlines())


def test_compile_prints_a_summary_and_report_the_full_table(hello):
    out, compiled, _ = hello
    target = load_target("cortex-m4")
    manifest = json.loads((out / "edgekit.json").read_text())
    lines = compiled.stdout.splitlines()
    assert lines[0] == "compiled hello_world_int8 for cortex-m4: fits" and len(lines) <= 8
    rows = {line.split()[0]: line for line in lines[1:]}
    assert f"{manifest['static_ram_bytes']:,} B of {target.ram.length:,} B" in rows["SRAM"]
    assert f"activations {manifest['arena_bytes']:,} B" in rows["SRAM"]
    assert f"{manifest['flash_bytes']:,} B of {target.flash.length:,} B" in rows["flash"]
    assert "layer by layer" in rows["plan"]
    assert f"{out}/" in rows["files"] and "firmware.elf" in rows["files"]
    assert f"edgekit run {out}" in rows["next"] and f"edgekit report {out}" in rows["next"]
    nodes = [layer["node"] for layer in manifest["layers"]]
    assert not any(node in compiled.stdout for node in nodes)  # no per-layer table
    full = edgekit("report", out)
    assert full.returncode == 0, full.stderr
    assert all(node in full.stdout for node in nodes) and "peak SRAM" in full.stdout


def test_report_json_keeps_the_timeline_and_names_each_layers_tensors(hello):
    """`report --json --timeline` carries the timeline (it was dropped); --json only adds fields."""
    out, _, _ = hello
    plain = json.loads(edgekit("report", out, "--json").stdout)
    with_timeline = json.loads(edgekit("report", out, "--json", "--timeline").stdout)
    assert with_timeline.pop("timeline") == (out / "arena_timeline.txt").read_text()
    assert with_timeline == plain
    graph = load_graph(out / "model.ek")
    assert [layer["output_tensors"] for layer in plain["layers"]] == [list(node.outputs) for node in graph.nodes]


def test_run_counts_the_qemu_inferences_and_prints_a_summary(hello):
    out, _, ran = hello
    run = json.loads((out / "edgekit.json").read_text())["last_run"]
    inputs = run["inputs"]
    assert f"edgekit: QEMU inference 0/{inputs}" in ran.stderr
    assert _finished_stages(ran.stderr) == ["QEMU inference", "integer reference"]
    assert f"QEMU inference done ({inputs}/{inputs}, " in ran.stderr
    lines = ran.stdout.splitlines()
    assert len(lines) <= 6
    assert lines[0].endswith(f"bit-exact vs integer reference yes ({inputs}/{inputs})")
    assert f"peak {run['peak_sram_bytes']:,} B" in ran.stdout and f"stack {run['stack_bytes']:,} B" in ran.stdout
    assert f"{run['instructions_per_inference']:,} instructions per inference" in ran.stdout


def _progress_text(terminal: bool, steps: int) -> str:
    """What Stages writes for a counted stage of ``steps``, a stage that fails, and a plain one."""
    stream = io.StringIO()
    with Stages(stream, terminal=terminal) as stages:
        with stages.stage("calibration", steps) as advance:
            for _ in range(steps):
                advance()
        with pytest.raises(KeyError), stages.stage("kernels"):
            raise KeyError("x")
        with stages.stage("link"):
            pass
    return stream.getvalue()


def test_plain_progress_is_a_few_lines_however_many_steps():
    lines = _progress_text(False, 5000).splitlines()
    assert lines[0] == "edgekit: calibration 0/5000"
    assert re.fullmatch(r"edgekit: calibration done \(5000/5000, [\d.]+ s\)", lines[1])
    assert lines[2] == "edgekit: kernels..."  # a failed stage is not reported as done
    assert lines[3] == "edgekit: link..." and re.fullmatch(r"edgekit: link done \([\d.]+ s\)", lines[4])
    assert len(lines) == 5


def test_terminal_progress_draws_a_bar_per_stage():
    text = _progress_text(True, 3)
    assert "calibration" in text and "3/3" in text and "link" in text and "\x1b[" in text


def test_patch_tables_call_each_tensor_by_its_nodes_name():
    """The split, alternatives and peak tables and the schedule's reason name a tensor by the node that
    writes it, as the layer table does: no tensor name that differs from its node's name shows up."""
    graph = mobilenetv2_like()
    schedule = plan_schedule(graph, "auto", 0.2, False)
    assert schedule.patches is not None
    report = {"layers": schedule.layer_rows(graph), "patch": schedule.to_json()}
    text = render_patch_text(report) + "\n" + schedule.reason
    hidden = {tensor for node in graph.nodes for tensor in node.outputs if tensor != node.name}
    assert hidden
    for tensor in hidden:
        assert not re.search(rf"(?<![\w/]){re.escape(tensor)}(?![\w/])", text), tensor
    split_node = graph.producer(schedule.patches.stage.split).name
    assert f"split after {split_node}" in schedule.reason and f"({split_node}, " in text
    assert graph.nodes.index(graph.producer(schedule.patches.stage.split)) == report["patch"]["chosen"]["split_node"]


def test_patch_accepts_the_node_name_the_report_shows():
    graph = mobilenetv2_like()
    node = graph.nodes[3]
    by_name = plan_schedule(graph, f"{node.name}:2", 0.2, False)
    by_index = plan_schedule(graph, "3:2", 0.2, False)
    assert by_name.patches.stage.split == by_index.patches.stage.split == node.output
