"""The report a firmware engineer reads after compile and run (Vela/STM32Cube.AI style).

Built from the build folder's manifest (plan, sizes) and its last run (measured stack and
instructions), rendered as an aligned text table, JSON, and a PNG of live activation bytes per
layer against the SRAM budget.
"""

import io
import json
from pathlib import Path

from edgekit.build_folder import read_manifest


def layer_rows_text(layers: list[dict], run: dict) -> str:
    instructions = run.get("layer_instructions") or []
    headers = ("#", "node", "op", "output", "MACs", "weights B", "live arena B", "instructions")
    rows = []
    for i, layer in enumerate(layers):
        rows.append((str(i), layer["node"][:28], layer["op"], "x".join(map(str, layer["output_shape"])),
                     f"{layer['macs']:,}", f"{layer['weight_bytes']:,}", f"{layer['live_bytes']:,}",
                     f"{instructions[i]:,}" if i < len(instructions) else "-"))
    widths = [max(len(h), *(len(r[c]) for r in rows)) if rows else len(h) for c, h in enumerate(headers)]
    out = io.StringIO()
    for row in (headers, *rows):
        cells = [cell.ljust(w) if c in (1, 2, 3) else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths))]
        out.write("  ".join(cells).rstrip() + "\n")
    return out.getvalue()


def build_report(build_dir) -> dict:
    """One JSON-able dict with everything the text and the plot show."""
    manifest = read_manifest(build_dir)
    run = manifest.get("last_run") or {}
    sizes = manifest.get("sizes", {})
    return {
        "model": manifest["model"], "target": manifest["target"], "scheme": manifest["scheme"],
        "ram_budget_bytes": manifest["ram_budget_bytes"], "flash_budget_bytes": manifest["flash_budget_bytes"],
        "arena_bytes": manifest["arena_bytes"], "plan_method": manifest["plan_method"],
        "plan_lower_bound": manifest["plan_lower_bound"],
        "stack_bytes": run.get("stack_bytes"), "other_static_ram_bytes": run.get("other_static_ram_bytes"),
        "peak_sram_bytes": run.get("peak_sram_bytes"),
        "flash_bytes": manifest.get("flash_bytes"), "code_bytes": sizes.get("code"),
        "internal_weight_bytes": sizes.get("flash_weights"), "external_flash_bytes": sizes.get("extflash"),
        "instructions_per_inference": run.get("instructions_per_inference"),
        "verification": {k: run.get(k) for k in ("bit_exact", "inputs", "mismatches", "top1_agreement", "cosine",
                                                 "max_abs_error")} if run else None,
        "total_macs": sum(layer["macs"] for layer in manifest["layers"]),
        "layers": [dict(layer, instructions=(run.get("layer_instructions") or [None] * (i + 1))[i]
                        if i < len(run.get("layer_instructions") or []) else None)
                   for i, layer in enumerate(manifest["layers"])],
        "compile_seconds": manifest.get("compile_seconds"),
    }


def _kib(value) -> str:
    return "-" if value is None else f"{value:,} B ({value / 1024:.1f} KiB)"


def render_text(report: dict) -> str:
    run_layers = {"layer_instructions": [layer["instructions"] for layer in report["layers"]
                                         if layer["instructions"] is not None]}
    lines = [f"edgekit report: {report['model']} on {report['target']} ({report['scheme']})", "",
             layer_rows_text(report["layers"], run_layers)]
    ram, flash = report["ram_budget_bytes"], report["flash_budget_bytes"]
    peak = report["peak_sram_bytes"]
    lines += [
        f"peak SRAM      {_kib(peak)} of {ram:,} B budget" + (f" ({peak / ram:.0%})" if peak else
                                                              " (run `edgekit run` to measure the stack)"),
        f"  arena        {_kib(report['arena_bytes'])} (planner {report['plan_method']}, lower bound "
        f"{report['plan_lower_bound']:,} B)",
        f"  stack        {_kib(report['stack_bytes'])} (high-water mark measured in QEMU)",
        f"  other static {_kib(report['other_static_ram_bytes'])} (runtime, harness)",
        f"flash          {_kib(report['flash_bytes'])} of {flash:,} B internal "
        f"(code {_kib(report['code_bytes'])}, weights {_kib(report['internal_weight_bytes'])})",
        f"external flash {_kib(report['external_flash_bytes'])} (weights that do not fit internal flash)",
        f"MACs           {report['total_macs']:,}; instructions per inference "
        f"{report['instructions_per_inference'] or '-':,}" if report["instructions_per_inference"] else
        f"MACs           {report['total_macs']:,}",
    ]
    v = report["verification"]
    if v:
        lines.append(f"verification   bit-exact vs integer reference: {'yes' if v['bit_exact'] else 'NO'} "
                     f"({v['inputs'] - v['mismatches']}/{v['inputs']} inputs)" +
                     (f"; vs float: top-1 agreement {v['top1_agreement']:.0%}, cosine {v['cosine']:.4f}, "
                      f"max abs error {v['max_abs_error']:.3f}" if v["top1_agreement"] is not None else ""))
    return "\n".join(lines) + "\n"


def plot_memory(report: dict, path: Path) -> None:
    """Live activation bytes per layer (bars), the arena and the SRAM budget (lines)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    live = [layer["live_bytes"] / 1024 for layer in report["layers"]]
    fig, ax = plt.subplots(figsize=(max(8, len(live) * 0.18), 4.5))
    ax.bar(range(len(live)), live, color="#4c78a8", label="live activations")
    ax.axhline(report["arena_bytes"] / 1024, color="#f58518", linestyle="--", label="arena")
    ax.axhline(report["ram_budget_bytes"] / 1024, color="#e45756", label="SRAM budget")
    if report["peak_sram_bytes"]:
        ax.axhline(report["peak_sram_bytes"] / 1024, color="#54a24b", linestyle=":", label="peak SRAM (measured)")
    ax.set_xlabel("layer")
    ax.set_ylabel("KiB")
    ax.set_title(f"{report['model']} on {report['target']}: memory per layer")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(build_dir) -> dict:
    build_dir = Path(build_dir)
    report = build_report(build_dir)
    (build_dir / "report.json").write_text(json.dumps(report, indent=1))
    (build_dir / "report.txt").write_text(render_text(report))
    plot_memory(report, build_dir / "memory.png")
    return report
