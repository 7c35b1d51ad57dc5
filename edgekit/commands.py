"""The printing half of the CLI: one ``cmd_<name>(args)`` per subcommand, calling api.py.

Tables go to stdout through rich; ``--json`` prints one JSON object instead.
"""

import contextlib
import json
import sys

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from edgekit import api
from edgekit.build_folder import BuildFolder, to_jsonable
from edgekit.errors import EdgekitError
from edgekit.model_source import load_model
from edgekit.report import render_run_summary, render_summary


def _console(min_width: int = 120) -> Console:
    return Console(file=sys.stdout, width=max(Console().width, min_width))


def _print_json(doc) -> None:
    print(json.dumps(doc, indent=2, default=to_jsonable))


@contextlib.contextmanager
def progress_bar(description: str, enabled: bool = True):
    """A rich progress bar on stderr (stdout stays clean for --json); yields the per-step callback."""
    if not enabled:
        yield None
        return
    progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                        console=Console(file=sys.stderr), transient=True)
    task = progress.add_task(description, total=None)
    with progress:
        yield lambda: progress.advance(task)


def _stages(args):
    """Per-stage progress on stderr (bars on a terminal, plain lines otherwise); none with --json."""
    from edgekit.progress import QUIET, Stages

    return QUIET if args.json else Stages()


def _model(args):
    model = load_model(args.model, resolution=args.resolution, width=args.width, num_classes=args.num_classes,
                       pretrained=args.pretrained, calib=getattr(args, "calib", None))
    note_random_weights(model.random_weights, args)
    return model


def note_random_weights(random_weights: bool, args) -> None:
    """Say on stderr that a zoo model has random weights, unless the user asked for them (--no-pretrained)."""
    if random_weights and args.pretrained is None:
        print(f"edgekit: note: {args.model} with these options has no pretrained weights, so its weights are "
              "random: figures for memory and speed only, no accuracy (--no-pretrained silences this note)",
              file=sys.stderr)


def cmd_zoo(args):
    from edgekit.zoo import ZOO

    if args.json:
        return _print_json({name: {"description": e.description, "options": e.options} for name, e in ZOO.items()})
    table = Table("model", "options (defaults)", "description")
    for name, entry in ZOO.items():
        table.add_row(name, ", ".join(f"{k}={v}" for k, v in entry.options.items()), entry.description)
    _console().print(table)


def cmd_ops(args):
    from edgekit.ops.support import supported_ops

    ops = supported_ops()
    if args.json:
        return _print_json([op.__dict__ for op in ops])
    table = Table("op", "int8", "firmware", "weights", "fuses ReLU", "memory sharing", "patches")
    rules = []
    for op in ops:
        int8 = op.int8.split(":", 1)
        table.add_row(op.name, int8[0], "yes" if op.firmware else "no", op.weights,
                      "yes" if op.fuses_activation else "no", op.memory_sharing, "yes" if op.patches else "no")
        rules += [f"{op.name} (int8): {int8[1].strip()}"] if len(int8) > 1 else []
        rules += [f"{op.name}: {rule}" for rule in op.constraints]
        rules += [f"{op.name} (on patches): {rule}" for rule in op.patch_constraints]
    console = _console()
    console.print(table)
    console.print("Constraints:\n" + "\n".join(f"  {rule}" for rule in rules), highlight=False)


def cmd_targets(args):
    from edgekit.target import list_boards, list_targets, load_board, load_cpu

    cpus = [load_cpu(name) for name in list_targets()]
    boards = [load_board(name) for name in list_boards()]
    if args.json:
        return _print_json({"cpus": [dict(cpu.__dict__) for cpu in cpus],
                            "boards": [dict(board.__dict__, uart=board.uart and board.uart.__dict__,
                                            probe=board.probe.__dict__, regions=[r.__dict__ for r in board.regions])
                                       for board in boards]})
    table = Table("CPU (--target)", "features", "emulator", "budget of board", title="CPUs")
    for cpu in cpus:
        features = ", ".join(name for name, on in (("FPU " + (cpu.fpu or ""), cpu.fpu), ("DSP", cpu.dsp),
                                                   ("MVE", cpu.mve)) if on)
        table.add_row(cpu.name, features, cpu.qemu_machine, cpu.default_board)
    console = _console(150)
    console.print(table)
    table = Table("board (--board)", "CPU", "MHz", "SRAM KiB", "flash KiB", "QSPI KiB", "UART", "emulator",
                  "probes", title="boards")
    for board in boards:
        sizes = {role: next((r.length // 1024 for r in board.regions if r.role == role), None)
                 for role in ("ram", "code", "external-weights")}
        probes = ["pyocd"] + (["openocd"] if board.probe.openocd else []) + (["stlink"] if board.probe.stlink else [])
        uart = board.uart
        table.add_row(board.name, board.cpu, f"{board.clock_hz // 1_000_000}", f"{sizes['ram']}", f"{sizes['code']}",
                      f"{sizes['external-weights'] or '-'}",
                      f"{uart.instance} {uart.tx_pin}" if uart else "-", board.qemu_machine or "-", ",".join(probes))
    console.print(table)


def cmd_inspect(args):
    summary = api.inspect(_model(args))
    if args.json:
        return _print_json(summary.to_json())
    table = Table("#", "node", "op", "output shape", "MACs", "params", "in bytes", "out bytes",
                  title=f"{summary.name}: inputs {summary.inputs}")
    for i, layer in enumerate(summary.layers):
        table.add_row(str(i), layer.node, layer.op, "x".join(map(str, layer.output_shape)), f"{layer.macs:,}",
                      f"{layer.params:,}", f"{layer.input_bytes:,}", f"{layer.output_bytes:,}")
    console = _console()
    console.print(table)
    console.print(f"total: {summary.total_macs:,} MACs, {summary.total_params:,} parameters "
                  f"({summary.total_weight_bytes:,} weight bytes as stored)")


def layer_error_table(errors) -> Table:
    table = Table("node", "op", "SQNR (dB)", "cosine", "max abs err", title="int8 vs float, per layer")
    for e in errors:
        table.add_row(e.node, e.op, f"{e.sqnr_db:.1f}", f"{e.cosine:.5f}", f"{e.max_abs:.4f}")
    return table


def cmd_quantize(args):
    from edgekit.io_records import require_one_input
    from edgekit.ir.serialize import save_graph
    from edgekit.quantize.scheme import load_scheme

    api.refuse_overwrite(args.output, args.force)  # user errors before the slow model load
    load_scheme(args.scheme)
    with _stages(args) as stages:
        with stages.stage("import"):
            model = _model(args)
        require_one_input(model.graph, args.model)
        result = api.quantize(model, args.calib, args.scheme, progress=stages)
    if result.synthetic_calibration:
        print(f"edgekit: warning: {api.SYNTHETIC_WARNING}", file=sys.stderr)
    api.write_new_file(args.output, lambda path: save_graph(result.model.graph, path, result.model.preprocess),
                       args.force)
    if args.json:
        return _print_json({
            "output": args.output, "scheme": result.scheme.name, "calibration_samples": result.calibration_samples,
            "calibration_source": result.calibration_source, "synthetic_calibration": result.synthetic_calibration,
            "top1_agreement": result.top1_agreement,
            "layers": [e.__dict__ for e in result.layer_errors],
        })
    console = _console()
    console.print(layer_error_table(result.layer_errors))
    agreement = "" if result.top1_agreement is None else \
        f"; top-1 agreement with float on them: {result.top1_agreement:.0%}"
    console.print(f"scheme {result.scheme.name}: calibrated on {result.calibration_source}{agreement}; "
                  f"wrote {args.output}")


def cmd_infer(args):
    from edgekit.io_records import check_output_path, output_keys, save_outputs

    if args.output:
        api.refuse_overwrite(args.output, args.force)
    model = _model(args)
    if args.output:
        check_output_path(model.graph, args.output)
    outputs = api.infer(model, args.input, args.mode)
    if args.output:
        api.write_new_file(args.output, lambda path: save_outputs(model.graph, outputs, path), args.force)
    summaries = []
    for key, output in zip(output_keys(model.graph), outputs):
        flat = output.reshape(-1)
        top = np.argsort(-flat.astype(np.float64))[:5]
        summaries.append({"key": key, "shape": list(output.shape), "dtype": str(output.dtype),
                          "top5": top.tolist(), "values": flat[top].tolist()})
    if args.json:
        return _print_json({**{k: summaries[0][k] for k in ("shape", "dtype", "top5", "values")},
                            "outputs": summaries, "output": args.output})
    for summary in summaries:
        print(f"{summary['key']} {summary['dtype']} {tuple(summary['shape'])}; top-5 indices {summary['top5']} "
              f"values {summary['values']}")
    if args.output:
        print(f"wrote {args.output}")


def cmd_compile(args):
    from edgekit.errors import DoesNotFitError

    try:
        with _stages(args) as stages:
            result = api.compile(args.model, target=args.target, board=args.board, target_file=args.target_file,
                                 resolution=args.resolution, width=args.width, num_classes=args.num_classes,
                                 pretrained=args.pretrained, calib=args.calib, scheme=args.scheme, patch=args.patch,
                                 max_patch_overhead=args.max_patch_overhead, input_by_patch=args.input_by_patch,
                                 output=args.output, force=args.force, progress=stages,
                                 tune=args.tune)
    except DoesNotFitError as error:
        if not args.json and getattr(error, "report", None):
            print(error.report)
        raise
    m = result.manifest
    note_random_weights(m["random_weights"], args)
    if (m["calibration"] or {}).get("synthetic"):
        print(f"edgekit: warning: {api.SYNTHETIC_WARNING}", file=sys.stderr)
    if args.json:
        return _print_json({"fits": m["fits"], "arena_bytes": m["arena_bytes"], "flash_bytes": m["flash_bytes"],
                            "external_flash_bytes": m["sizes"]["extflash"], "static_ram_bytes": m["static_ram_bytes"],
                            "build_dir": m["build_dir"], "kernels": len(m["kernels"]),
                            "compile_seconds": m["compile_seconds"], "calibration": m["calibration"],
                            "schedule": m["schedule"]})
    print(render_summary(api.report(result.build_dir).document), end="")


def cmd_run(args):
    from edgekit.io_records import check_output_path, save_outputs

    graph = None
    if args.outputs:
        api.refuse_overwrite(args.outputs, args.force)
        folder = BuildFolder(args.build)
        folder.manifest()  # a missing or foreign build folder is reported as such
        graph = folder.load_graph()
        check_output_path(graph, args.outputs)
    with _stages(args) as stages:
        result = api.run(args.build, args.inputs, args.timeout, stages)
    if args.outputs:
        api.write_new_file(args.outputs, lambda path: save_outputs(graph, result.outputs, path), args.force)
    report = api.report(args.build, write=True)
    if args.json:
        _print_json(result.to_json())
    else:
        print(render_run_summary(report.document), end="")
    return 0 if result.bit_exact else 5


def cmd_report(args):
    report = api.report(args.build)
    folder = BuildFolder(args.build)
    if args.json:
        return _print_json(dict(report.document, timeline=folder.timeline()) if args.timeline else report.document)
    print(report.text)
    if args.timeline:
        print(folder.timeline())
    print(f"plot: {folder / folder.MEMORY_PLOT}")


def cmd_flash(args):
    from edgekit.flash import PROBES

    if args.dry_run:
        plans = [api.flash(args.build, args.probe, dry_run=True)] if args.probe else _available_plans(args.build, PROBES)
        if args.json:
            return _print_json([{"probe": plan.probe, "commands": plan.commands, "notes": plan.notes} for plan in plans])
        print("\n".join(plan.text() for plan in plans))
        return
    result = api.flash(args.build, args.probe)
    if args.json:
        return _print_json({"probe": result.probe, "commands": result.commands})
    print(f"flashed {args.build} with {result.probe}; next: edgekit monitor {args.build} --port /dev/ttyACM0")


def _available_plans(build, probes):
    """Every probe's plan for --dry-run without --probe: those that can flash this build on its board."""
    plans, errors = [], []
    for probe in probes:
        try:
            plans.append(api.flash(build, probe, dry_run=True))
        except EdgekitError as error:
            errors.append(error)
    if not plans:
        raise errors[0]
    return plans


def cmd_monitor(args):
    def waiting():
        print(f"waiting for {args.build}'s report on {args.port}: reset the board", file=sys.stderr, flush=True)

    result = api.monitor(args.build, args.port, args.baud, args.timeout, on_open=waiting)
    if args.json:
        _print_json(result.to_json())
    else:
        print("\n".join(result.lines))
        cycles = ", ".join(f"{c:,} ({ms:.1f} ms)" for c, ms in zip(result.cycles_per_inference,
                                                                  result.milliseconds_per_inference))
        print(f"{result.board} at {result.clock_hz / 1e6:g} MHz: bit-exact vs integer reference: "
              f"{'yes' if result.bit_exact else 'NO'} ({result.inputs - result.mismatches}/{result.inputs}); "
              f"cycles per inference {cycles}; stack {result.stack_bytes:,} B")
    return 0 if result.bit_exact else 5


def cmd_compress(args):
    from edgekit.compress.compressor import Progress, compress_model
    if not args.output.lower().endswith(".onnx"):
        raise EdgekitError(f"-o {args.output}: the compressed model is written as ONNX; name it *.onnx")
    with progress_bar("latency table (QEMU)", not args.json) as latency, \
            progress_bar("importance", not args.json) as importance, \
            progress_bar("fine-tuning", not args.json) as finetune:
        result = compress_model(args.model, args.target, args.budget, args.data, mode=args.mode, epochs=args.epochs,
                                output=args.output, force=args.force, resolution=args.resolution, width=args.width,
                                num_classes=args.num_classes, pretrained=args.pretrained, estimate=args.estimate,
                                measure=args.measure, max_kernel=args.max_kernel,
                                progress=Progress(latency, importance, finetune))
    if args.json:
        return _print_json(result.to_json())
    table = Table("segment", "merged kernel", "type", "in (HxWxC)", "out (HxWxC)", "instructions", "SRAM (B)",
                  title=f"{args.mode}: {result.convolutions_before} -> {result.convolutions_after} convolutions "
                        f"(latency {result.latency_source})")
    for s in result.segments:
        table.add_row(s.label, f"{s.kernel[0]}x{s.kernel[1]}", "depthwise" if s.depthwise else "dense",
                      "x".join(map(str, s.in_shape)), "x".join(map(str, s.out_shape)), f"{s.instructions:,}",
                      f"{s.sram_bytes:,}")
    console = _console()
    console.print(table)
    rows = [("instructions, planned by the DP", f"{result.predicted_instructions_before:,}",
             f"{result.planned_instructions_after:,}"),
            ("instructions, predicted for the compiled network", f"{result.predicted_instructions_before:,}",
             f"{result.predicted_instructions_after:,}"),
            ("peak SRAM of a layer, predicted (B)", f"{result.predicted_peak_sram_before:,}",
             f"{result.predicted_peak_sram_after:,}"),
            (f"float accuracy on {result.held_out_samples} held-out samples (%)", f"{result.accuracy_before:.2f}",
             f"{result.accuracy_after:.2f}")]
    if result.measured:
        before, after = result.measured["before"], result.measured["after"]
        rows += [("instructions, measured in QEMU", f"{before['instructions']:,}", f"{after['instructions']:,}"),
                 ("peak SRAM, measured (B)", f"{before['peak_sram_bytes']:,}", f"{after['peak_sram_bytes']:,}")]
    summary = Table("", "before", "after")
    for row in rows:
        summary.add_row(*row)
    console.print(summary)
    print(f"fine-tuned {result.finetune_steps} steps; wrote {result.output} (next: edgekit compile {result.output} "
          f"--target {args.target} --calib ...)")
