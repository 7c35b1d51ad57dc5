"""The report a firmware engineer reads after compile and run (Vela/STM32Cube.AI style).

Built from the build folder's manifest (plan, sizes) and its last run (measured stack and
instructions), rendered as an aligned text table, JSON, and a PNG of live activation bytes per
layer against the SRAM budget.

A patched build (``--patch``) adds: the layer-by-layer live bytes next to the patched ones per node
(stage nodes marked ``*``, their instructions summed over all patches), the split, n, MAC
overhead and input mode, the live bytes and instructions of each step of one patch, and the
alternatives the search considered. The plot then shows both schedules against the budget.
"""

import io
from pathlib import Path

from edgekit.build_folder import BuildFolder

NAME_WIDTH = 32


def layer_rows_text(layers: list[dict], run: dict, stage_nodes: int = 0, only: set[int] | None = None) -> str:
    """The per-layer table; with ``stage_nodes`` (a patched build) the first that many nodes run on
    patches and a layer-by-layer column is shown beside the patched live bytes; ``only``: these rows."""
    instructions = run.get("layer_instructions") or []
    patched = stage_nodes > 0
    headers = ("#", "node", "op", "output", "MACs", "weights B") + (
        ("layer-by-layer B", "patched live B") if patched else ("live arena B",)) + (
        "instructions", "instr/MAC", "kernel")
    rows = []
    for i, layer in enumerate(layers):
        if only is not None and i not in only:
            continue
        name = short_name(layer["node"]) + ("*" if i < stage_nodes else "")
        live = ((f"{layer.get('layer_live_bytes', 0):,}",) if patched else ()) + (f"{layer['live_bytes']:,}",)
        count = instructions[i] if i < len(instructions) else None
        per_mac = f"{count / layer['macs']:.2f}" if count is not None and layer["macs"] else "-"
        rows.append((str(i), name, layer["op"], "x".join(map(str, layer["output_shape"])),
                     f"{layer['macs']:,}", f"{layer['weight_bytes']:,}") + live +
                    ("-" if count is None else f"{count:,}", per_mac, layer.get("kernel_variant") or "-"))
    out = io.StringIO()
    out.write(_table(headers, rows, indent="", left=(1, 2, 3, len(headers) - 1)))
    if only is not None:
        out.write(f"({len(rows)} of {len(layers)} layers; `edgekit inspect` lists them all)\n")
    if patched:
        out.write(f"* runs patch by patch (nodes 0-{stage_nodes - 1}); its live bytes are those of one patch step plus "
                  "the split tensor and any frame, its instructions are summed over all patches\n")
    if instructions:
        out.write(op_kind_text(layers, instructions))
    return out.getvalue()


def largest_layers_text(layers: list[dict], count: int = 5) -> str:
    """The layer table cut to what a model that does not fit needs: the ``count`` layers with the most
    live activation bytes and the ``count`` with the most weight bytes."""
    def top(key):
        return sorted(range(len(layers)), key=lambda i: -layers[i][key])[:count]

    return layer_rows_text(layers, {}, only=set(top("live_bytes")) | set(top("weight_bytes")))


def op_kind_text(layers: list[dict], instructions: list) -> str:
    """Where the time goes: instructions, MACs and instructions per MAC summed by op kind, largest first."""
    kinds: dict[str, list[int]] = {}
    for layer, count in zip(layers, instructions):
        totals = kinds.setdefault(layer["op"], [0, 0, 0])
        totals[0] += 1
        totals[1] += count or 0
        totals[2] += layer["macs"]
    total = sum(t[1] for t in kinds.values()) or 1
    rows = [(op, str(n), f"{count:,}", f"{count / total:.0%}", f"{macs:,}", f"{count / macs:.2f}" if macs else "-")
            for op, (n, count, macs) in sorted(kinds.items(), key=lambda item: -item[1][1])]
    return "\nby op kind:\n" + _table(("op", "layers", "instructions", "share", "MACs", "instr/MAC"), rows)


def _table(headers: tuple, rows: list[tuple], indent: str = "  ", left=(0,)) -> str:
    """An aligned text table: columns in ``left`` align left (names), the rest right (numbers)."""
    widths = [max(len(h), *(len(r[c]) for r in rows)) if rows else len(h) for c, h in enumerate(headers)]
    return "".join(indent + "  ".join(cell.ljust(w) if c in left else cell.rjust(w)
                                      for c, (cell, w) in enumerate(zip(row, widths))).rstrip() + "\n"
                   for row in (headers, *rows))


def build_report(build_dir) -> dict:
    """One JSON-able dict with everything the text and the plot show."""
    folder = BuildFolder(build_dir)
    manifest = folder.manifest()
    if manifest["layers"] and "output_tensors" not in manifest["layers"][0]:  # built before the field existed
        for layer, node in zip(manifest["layers"], folder.load_graph().nodes):
            layer["output_tensors"] = list(node.outputs)
    run = manifest.get("last_run") or {}
    sizes = manifest.get("sizes", {})
    return {
        "model": manifest["model"], "target": manifest["target"], "scheme": manifest["scheme"],
        "ram_budget_bytes": manifest["ram_budget_bytes"], "flash_budget_bytes": manifest["flash_budget_bytes"],
        "arena_bytes": manifest["arena_bytes"], "plan_method": manifest["plan_method"],
        "plan_lower_bound": manifest["plan_lower_bound"],
        "stack_bytes": run.get("stack_bytes"), "other_static_ram_bytes": run.get("other_static_ram_bytes"),
        "peak_sram_bytes": run.get("peak_sram_bytes"),
        "calibration": manifest.get("calibration"),
        "flash_bytes": manifest.get("flash_bytes"), "code_bytes": sizes.get("code"),
        "internal_weight_bytes": sizes.get("flash_weights"), "external_flash_bytes": sizes.get("extflash"),
        "instructions_per_inference": run.get("instructions_per_inference"),
        "verification": {k: run.get(k) for k in ("bit_exact", "inputs", "mismatches", "top1_agreement", "cosine",
                                                 "max_abs_error", "real_inputs")} if run else None,
        "total_macs": sum(layer["macs"] for layer in manifest["layers"]),
        "layers": [dict(layer, instructions=(run.get("layer_instructions") or [None] * (i + 1))[i]
                        if i < len(run.get("layer_instructions") or []) else None)
                   for i, layer in enumerate(manifest["layers"])],
        "compile_seconds": manifest.get("compile_seconds"),
        "static_ram_bytes": manifest.get("static_ram_bytes"), "stack_reserve_bytes": sizes.get("stack"),
        "kernels": len(manifest.get("kernels") or []), "build_dir": str(folder.path),
        "scratch_bytes": manifest.get("scratch_bytes", 0),
        "peak": manifest.get("peak"),
        "patch": _patch_report(manifest.get("patch"), run),
        "schedule": manifest.get("schedule"),
    }


def _patch_report(patch: dict | None, run: dict) -> dict | None:
    """The manifest's patch section plus, per step of one patch, the instructions summed over patches."""
    if not patch:
        return None
    patch = dict(patch)
    per_patch = run.get("patch_step_instructions")
    if patch.get("chosen") and per_patch:
        stage = patch["stage_nodes"]
        totals = [sum(counts[i] for counts in per_patch) for i in range(len(stage))]
        patch["stage_instructions"] = dict(zip(stage, totals))
        patch["patch_instructions"] = [sum(counts) for counts in per_patch]
    return patch


def tensor_names(report: dict) -> dict[str, str]:
    """Tensor -> the name every table gives it: the node that writes it (as Graph.display_name; the
    layer table's name), from the layers' ``output_tensors``; graph inputs keep their own name."""
    return {tensor: layer["node"] for layer in report["layers"] for tensor in layer.get("output_tensors", ())}


def short_name(name: str) -> str:
    """A node name as every table prints it: long names (TFLite's joined scopes) cut the same way
    everywhere, so a name found in one table is found in the others."""
    return name if len(name) <= NAME_WIDTH else name[:NAME_WIDTH - 1] + "~"


def _shown(names: dict[str, str], tensor: str) -> str:
    """``tensor`` by its node's (short) name, keeping a qualifier such as " (patch)"."""
    base, paren, rest = tensor.partition(" (")
    return short_name(names.get(base, base)) + paren + rest


def _kib(value) -> str:
    return "-" if value is None else f"{value:,} B ({value / 1024:.1f} KiB)"


def _peak_lines(report: dict) -> list[str]:
    """Where the activation peak is and which tensors make it up."""
    peak = report.get("peak")
    if not peak:
        return []
    names = tensor_names(report)
    parts = ", ".join(f"{_shown(names, t['tensor'])} {t['bytes']:,} B" for t in peak["tensors"])
    return [f"    peak at the {peak['phase']} step {short_name(peak['node'])}: {peak['live_bytes']:,} B live ({parts})"]


def _other_flash(report: dict):
    """Flash that is neither code nor weights: .rodata and the initial values of .data."""
    parts = (report["flash_bytes"], report["code_bytes"], report["internal_weight_bytes"])
    return None if None in parts else parts[0] - parts[1] - parts[2]


def _calibration_line(report: dict) -> list[str]:
    calibration = report.get("calibration")
    if not calibration:
        return []
    if calibration["synthetic"]:
        return [f"calibration    {calibration['samples']} synthetic inputs: accuracy figures are meaningless; "
                "pass --calib DIR"]
    agreement = calibration.get("top1_agreement")
    return [f"calibration    {calibration.get('source') or str(calibration['samples']) + ' samples'}" +
            (f"; int8 top-1 agreement with float on them {agreement:.0%}" if agreement is not None else "")]


def render_text(report: dict) -> str:
    run_layers = {"layer_instructions": [layer["instructions"] for layer in report["layers"]
                                         if layer["instructions"] is not None]}
    patch = report.get("patch") or {}
    chosen = patch.get("chosen")
    lines = [f"edgekit report: {report['model']} on {report['target']} ({report['scheme']})", "",
             layer_rows_text(report["layers"], run_layers, len(patch["stage_nodes"]) if chosen else 0)]
    if report.get("schedule"):
        schedule = report["schedule"]
        lines.append(f"schedule       {schedule['plan']} (--patch {schedule['mode']}): {schedule['reason']}")
    if patch:
        lines.append(render_patch_text(report))
    ram, flash = report["ram_budget_bytes"], report["flash_budget_bytes"]
    peak = report["peak_sram_bytes"]
    lines += [
        f"peak SRAM      {_kib(peak)} of {ram:,} B budget" + (f" ({peak / ram:.0%})" if peak else
                                                              " (run `edgekit run` to measure the stack)"),
        f"  activations  {_kib(report['arena_bytes'])} arena (planner {report['plan_method']}, lower bound "
        f"{report['plan_lower_bound']:,} B)",
        *_peak_lines(report),
        f"  scratch      {_kib(report.get('scratch_bytes') or 0)} in the arena (the largest step's: kernel windows, "
        "widened rows, channel planes)",
        f"  stack        {_kib(report['stack_bytes'])} (high-water mark measured in QEMU)",
        f"  static       {_kib(report['other_static_ram_bytes'])} (runtime and harness: static RAM besides the arena)",
        *([f"  input        {patch['input']}"] if chosen else []),
        f"flash          {_kib(report['flash_bytes'])} of {flash:,} B internal "
        f"(code {_kib(report['code_bytes'])}, weights {_kib(report['internal_weight_bytes'])}, other constants and "
        f"initial data {_kib(_other_flash(report))})",
        f"external flash {_kib(report['external_flash_bytes'])} (weights that do not fit internal flash)",
        f"MACs           {report['total_macs']:,}; instructions per inference "
        f"{report['instructions_per_inference'] or '-':,}" if report["instructions_per_inference"] else
        f"MACs           {report['total_macs']:,}",
    ]
    lines += _calibration_line(report)
    v = report["verification"]
    if v:
        lines.append(f"verification   bit-exact vs integer reference: {'yes' if v['bit_exact'] else 'NO'} "
                     f"({v['inputs'] - v['mismatches']}/{v['inputs']} inputs)" +
                     _float_comparison(v))
    return "\n".join(lines) + "\n"


def _share(part, whole) -> str:
    return f"{part:,} B of {whole:,} B ({part / whole:.0%})"


def _plan_line(report: dict) -> str:
    """The schedule in one line: layer by layer, or where the patched stage splits and what it costs."""
    chosen = (report.get("patch") or {}).get("chosen")
    if not chosen:
        return f"layer by layer (activations {report['arena_bytes']:,} B)"
    n, split = chosen["patches"], _shown(tensor_names(report), chosen["split"])
    return (f"patched: nodes 0-{chosen['split_node']} on {n}x{n} patches, split after {split}, "
            f"{chosen['mac_overhead']:+.1%} MACs (activations {chosen['activation_peak_bytes']:,} B; layer by layer "
            f"{report['patch']['layer_by_layer_arena_bytes']:,} B)")


def render_summary(report: dict) -> str:
    """What `edgekit compile` prints: whether it fits, SRAM and flash against the target, the plan,
    where the files are and what to run next (`edgekit report` prints the full table)."""
    build, ram, flash = report["build_dir"], report["ram_budget_bytes"], report["flash_budget_bytes"]
    static, stack = report["static_ram_bytes"], report["stack_reserve_bytes"]
    runtime = static - report["arena_bytes"] - stack
    external = report["external_flash_bytes"] or 0
    lines = [
        f"compiled {report['model']} for {report['target']}: fits",
        f"  SRAM    {_share(static, ram)} linked: activations {report['arena_bytes']:,} B, stack reserve "
        f"{stack:,} B, runtime and buffers {runtime:,} B (`edgekit run` measures the stack)",
        f"  flash   {_share(report['flash_bytes'], flash)}: weights {report['internal_weight_bytes']:,} B, code "
        f"{report['code_bytes']:,} B, other {_other_flash(report):,} B" +
        (f"; external flash {external:,} B" if external else ""),
        f"  plan    {_plan_line(report)}",
        f"  files   {build}/: firmware.elf, firmware.bin, report.txt, memory.png "
        f"({report['kernels']} kernels (TVM and C), compiled in {report['compile_seconds']} s)",
        f"  next    edgekit run {build}    (full table: edgekit report {build})",
    ]
    return "\n".join(lines) + "\n"


def render_run_summary(report: dict) -> str:
    """What `edgekit run` prints: the verification, measured SRAM and speed, and where the rest is."""
    build, v = report["build_dir"], report["verification"]
    peak, ram = report["peak_sram_bytes"], report["ram_budget_bytes"]
    exact = "yes" if v["bit_exact"] else "NO"
    lines = [f"ran {report['model']} on {report['target']} in QEMU, {v['inputs']} inputs: bit-exact vs integer "
             f"reference {exact} ({v['inputs'] - v['mismatches']}/{v['inputs']})"]
    if v["cosine"] is not None:
        lines.append(f"  float   {_float_comparison(v).removeprefix('; ')}")
    lines += [
        f"  SRAM    peak {_share(peak, ram)} (stack {report['stack_bytes']:,} B measured)",
        f"  speed   {report['instructions_per_inference']:,} instructions per inference",
        f"  next    edgekit report {build}    (per-layer table; plot {build}/memory.png)",
    ]
    return "\n".join(lines) + "\n"


def _float_comparison(v: dict) -> str:
    if v["cosine"] is None:
        return ""
    if v.get("real_inputs") is False:
        return (f"; random inputs, so no accuracy figure (pass --inputs IMAGES); vs float: cosine {v['cosine']:.4f}, "
                f"max abs error {v['max_abs_error']:.3f}")
    return (f"; vs float: top-1 agreement {v['top1_agreement']:.0%}, cosine {v['cosine']:.4f}, "
            f"max abs error {v['max_abs_error']:.3f}")


def render_patch_text(report: dict) -> str:
    """The patch-based inference section: before/after, split, n, MAC overhead, steps, alternatives."""
    patch = report["patch"]
    chosen = patch.get("chosen")
    search = patch.get("search")
    layer_arena = patch["layer_by_layer_arena_bytes"]
    out = [f"patch-based inference (--patch {patch['mode']})"]
    fit = search is not None and search.get("goal") == "fit"
    if chosen is None and fit:
        out.append(f"  running layer by layer ({search['baseline_bytes']:,} B); see the schedule line\n")
        return "\n".join(out)
    if chosen is None:
        out.append(f"  no patched schedule needs less SRAM than layer by layer "
                   f"({search['baseline_bytes']:,} B) within a MAC overhead of {search['max_mac_overhead']:.0%}; "
                   "running layer by layer\n")
        return "\n".join(out)
    names = tensor_names(report)
    peak = chosen["activation_peak_bytes"]
    split_shape = "x".join(map(str, chosen["split_shape"][1:]))
    n = chosen["patches"]
    out += [
        f"  split          after node {chosen['split_node']} ({_shown(names, chosen['split'])}, {split_shape}), "
        f"{n}x{n} patches; "
        f"nodes 0-{chosen['split_node']} run patch by patch, the rest layer by layer",
        f"  activations    layer by layer {layer_arena:,} B" +
        (f" ({search['baseline_bytes']:,} B with in-place writes)" if search else "") +
        f" -> patched {peak:,} B ({peak / layer_arena - 1:+.0%})",
        f"  patched peak   {chosen['peak_step']['phase']} step {short_name(chosen['peak_step']['node'])}: "
        f"{chosen['peak_step']['live_bytes']:,} B live "
        f"({', '.join(_shown(names, t) for t in chosen['peak_step']['tensors'][:6])})",
        f"  stage          frame + split + working block {chosen['stage_bytes']:,} B (working block "
        f"{chosen['patch_working_bytes']:,} B; {patch['crops']} crop copies, "
        f"{'tile copy' if patch['tile_copy'] else 'last node writes the split rows'}); rest {chosen['rest_bytes']:,} B",
        f"  in place       patches {chosen.get('order', 'row-major')}; split tensor over "
        f"{chosen.get('frame_reuse_bytes', 0):,} B of dead frame rows; 1x1 convs over their inputs by rows: "
        f"{'yes' if chosen.get('inplace_rows') else 'no'}",
        f"  MAC overhead   {chosen['mac_overhead']:.1%} of the network's {chosen['network_macs']:,} MACs "
        f"(+{chosen['extra_macs']:,}; the stage itself +{chosen['stage_mac_overhead']:.1%})",
        f"  input          {patch['input']}",
        "",
        "  one patch, step by step (live bytes include the split tensor and any frame; instructions over all patches):",
    ]
    totals = patch.get("stage_instructions") or {}
    rows = [(short_name(step["node"]), f"{step['live_bytes']:,}", f"{totals[step['node']]:,}" if step["node"] in totals else "-")
            for step in patch["patch_steps"]]
    out.append(_table(("node", "live B", "instructions"), rows, "    ").rstrip("\n"))
    if patch.get("patch_instructions"):
        counts = patch["patch_instructions"]
        out.append(f"    instructions per patch: min {min(counts):,}, max {max(counts):,} ({len(counts)} patches)")
    if search:
        def rank(c):  # feasible first; then what the search minimises: MAC overhead (fit) or peak (auto)
            return (not c["feasible"],) + ((c["mac_overhead"], c["peak_bytes"]) if fit
                                           else (c["peak_bytes"], c["mac_overhead"]))

        best: dict[str, dict] = {}  # per split, its best n
        for c in search["candidates"]:
            if c["split"] not in best or rank(c) < rank(best[c["split"]]):
                best[c["split"]] = c
        shown = sorted(best.values(), key=rank)[:12]
        rows = [(("-> " if (c["split"], c["n"]) == (chosen["split"], n) else "   ") + _shown(names, c["split"]),
                 str(c["n"]),
                 f"{c['peak_bytes']:,}", f"{c['mac_overhead']:.1%}", "yes" if c["feasible"] else "no")
                for c in shown]
        goal = (f"activation budget {search['fit_bytes']:,} B" if fit
                else f"MAC overhead bound {search['max_mac_overhead']:.0%}")
        out += ["", f"  alternatives considered: {len(search['candidates'])} (split, n) pairs over {len(best)} splits, "
                    f"{goal}; each split's best n, {len(shown)} best splits:",
                _table(("split", "n", "peak B", "MAC overhead", "fits" if fit else "within bound"), rows,
                       "    ").rstrip("\n")]
    return "\n".join(out) + "\n"


def plot_memory(report: dict, path: Path) -> None:
    """Live activation bytes per layer (bars), the arena and the SRAM budget (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    live = [layer["live_bytes"] / 1024 for layer in report["layers"]]
    patch = report.get("patch") or {}
    fig, ax = plt.subplots(figsize=(max(8, len(live) * 0.18), 4.5))
    if patch.get("chosen"):
        stage = len(patch["stage_nodes"])
        layer_live = [layer["layer_live_bytes"] / 1024 for layer in report["layers"]]
        ax.bar(range(len(live)), layer_live, color="#bab0ac", label="layer by layer, as --patch off (live activations)")
        ax.bar(range(len(live)), live, width=0.5, color="#4c78a8",
               label=f"patched: {stage} nodes on {len(patch['patch_steps']) and patch['patch_count']} patches, "
                     "then layer by layer")
        ax.axvspan(-0.5, stage - 0.5, color="#4c78a8", alpha=0.07)
        ax.set_ylim(0, max(max(layer_live), report["ram_budget_bytes"] / 1024) * 1.08)
    else:
        ax.bar(range(len(live)), live, color="#4c78a8", label="live activations")
    _mark_peak(ax, report, live)
    ax.axhline(report["arena_bytes"] / 1024, color="#f58518", linestyle="--", label="arena")
    ax.axhline(report["ram_budget_bytes"] / 1024, color="#e45756", label="SRAM budget")
    if report["peak_sram_bytes"]:
        ax.axhline(report["peak_sram_bytes"] / 1024, color="#54a24b", linestyle=":", label="peak SRAM (measured)")
    ax.set_xlabel("layer")
    ax.set_ylabel("KiB")
    ax.set_title(f"{report['model']} on {report['target']}: live activation memory per layer" + (" (layer by layer vs patched)" if patch.get("chosen") else ""))
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mark_peak(ax, report: dict, live: list[float]) -> None:
    """An arrow at the layer whose step makes the activation peak, labelled with its tensors."""
    peak = report.get("peak")
    names = [layer["node"] for layer in report["layers"]]
    if not peak or peak["node"] not in names:
        return
    index = names.index(peak["node"])
    parts = sorted(peak["tensors"], key=lambda t: -t["bytes"])
    shown = tensor_names(report)
    label = f"peak {peak['live_bytes'] / 1024:.1f} KiB at {short_name(peak['node'])} ({peak['phase']} step):\n" + \
        "\n".join(f"  {_shown(shown, t['tensor'])} {t['bytes'] / 1024:.1f} KiB" for t in parts[:6])
    top = max(live[index], peak["live_bytes"] / 1024)
    ax.annotate(label, xy=(index, top), xytext=(0.02, 0.97), textcoords="axes fraction", va="top", fontsize=7,
                arrowprops={"arrowstyle": "->", "color": "#222222"},
                bbox={"boxstyle": "round", "fc": "white", "ec": "#888888", "alpha": 0.9})


def write_report(build_dir) -> dict:
    report = build_report(build_dir)
    plot_memory(report, BuildFolder(build_dir).save_report(report, render_text(report)))
    return report
