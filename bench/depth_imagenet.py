"""Depth compression of the ImageNet MobileNetV2 (zoo `mobilenetv2`, 224 px): its latency table on
cortex-m7 (measured in QEMU), the plan a budget chooses, and how the compressed float network (no
fine-tuning: no ImageNet data here) agrees with the original on the photos of ../shared/data/images.
No labels either, so the proxy importance is the KL divergence from the original's softmax on the
photos (importance.py, ``against="original"``), and agreement is top-1 against the original's
answers plus the cosine similarity and KL divergence of the logits.

`python bench/depth_imagenet.py [--budget 0.7] [--mode dp|layermerge] [--max-kernel 3] [--measure]
[--measure-original] [--out bench/results.json]` prints the table and the plan; --measure also
compiles the compressed network for cortex-m7 and runs it in QEMU (--measure-original: the original
too, first); --out stores the results under
`depth.imagenet_mobilenetv2` (`..._layermerge` for that mode).
"""

import argparse
import json
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch.nn import functional as F

from edgekit.compress.chain import extract_chain
from edgekit.compress.compressor import (build_tables, choose_plan, enumerate_segments, finetune_and_merge,
                                         measure_model, quantized_network)
from edgekit.compress.importance import HeldOut, ImportanceTable, spearman
from edgekit.compress.merge import merged_geometry
from edgekit.compress.network import ChainNetwork
from edgekit.compress.segment import Plan, Segment
from edgekit.compress.tables import LatencyTable, network_forms
from edgekit.model_source import load_model
from edgekit.samples import load_inputs
from edgekit.target import load_target

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TARGET = "cortex-m7"
CALIBRATION_PHOTOS = 4  # the kernel forms come from a quantization on these (the float interpreter is slow)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.7)
    parser.add_argument("--mode", default="dp", choices=["dp", "layermerge"])
    parser.add_argument("--max-kernel", type=int, default=3)
    parser.add_argument("--images", default=str(SHARED / "data" / "images"))
    parser.add_argument("--also", type=float, nargs="*", default=[0.95, 0.9, 0.8],
                        help="further budgets whose plans' agreement is reported (importance is shared)")
    parser.add_argument("--measure", action="store_true", help="compile the compressed network and run it in QEMU")
    parser.add_argument("--measure-original", action="store_true", help="the same for the original")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: on the shared, loaded 2-core machine two spinning OpenMP threads "
                             "made a forward pass 3.7x slower than one)")
    parser.add_argument("--out", help="results.json to update (key depth.imagenet_mobilenetv2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    model = load_model("mobilenetv2")
    chain = extract_chain(model.graph)
    photos = np.concatenate(load_inputs(args.images, model, for_float=True))
    with torch.no_grad():
        original = ChainNetwork(chain).float().eval()
        original_logits = original(torch.from_numpy(photos.transpose(0, 3, 1, 2).copy()))
    photos_data = HeldOut.from_arrays(photos, original_logits.argmax(1).numpy())

    target = load_target(TARGET)
    forms = network_forms(quantized_network(chain, photos[:CALIBRATION_PHOTOS]), chain.length, target)
    print(f"kernel forms: {sum(f.narrow for f in forms.layers)} of {chain.length} convolutions requantize narrow, "
          f"int16 weights {'fit' if forms.wide_weights else 'do not fit'} the flash", file=sys.stderr)
    latency = LatencyTable(TARGET, progress=lambda: print(".", end="", file=sys.stderr, flush=True))
    tables = build_tables(chain, enumerate_segments(chain, args.mode, args.max_kernel), latency, target.ram.length,
                          forms)
    print(f"latency table: {len(tables.costs)} entries ({latency.measurements} new QEMU measurements, "
          f"{tables.filtered_by_sram} above the SRAM limit), {time.perf_counter() - started:.0f} s", file=sys.stderr)
    identity = Plan.identity(chain)
    before = tables.instructions(identity.segments)
    table = []
    for segment, cost in sorted(tables.costs.items(), key=lambda item: (item[0].start, item[0].end, item[0].dropped)):
        layer = merged_geometry(chain, segment)
        table.append({"segment": segment.label(), "kernel": list(layer.kernel), "depthwise": layer.depthwise,
                      "out_shape": list(layer.out_shape), "instructions": cost.instructions,
                      "sram_bytes": cost.sram_bytes, "flash_bytes": cost.flash_bytes})
    for row in table:
        print(f"{row['segment']:>22} {row['kernel'][0]}x{row['kernel'][1]} {'dw' if row['depthwise'] else 'dense':>5} "
              f"{'x'.join(map(str, row['out_shape'])):>12} {row['instructions']:>14,} {row['sram_bytes']:>10,} B",
              flush=True)
    section = {
        "model": "mobilenetv2 1.0, 224 px, ImageNet weights", "target": TARGET, "mode": args.mode,
        "budget": args.budget, "max_kernel": args.max_kernel, "table_entries": len(table),
        "table_qemu_measurements": latency.measurements, "table_filtered_by_sram": tables.filtered_by_sram,
        "predicted_instructions_before": before, "predicted_peak_sram_before": tables.peak_sram(identity.segments),
        "convolutions_before": chain.length, "activations_before": kept_activations(chain, identity),
        "narrow_layers": sum(f.narrow for f in forms.layers), "int16_weights": forms.wide_weights,
        "note": "no ImageNet data here: no fine-tuning and no accuracy; agreement with the original on the photos",
    }
    key = "imagenet_mobilenetv2" + ("" if args.mode == "dp" else f"_{args.mode}")
    save(args.out, key, section, table)  # the table first

    timer = time.perf_counter()
    importance = ImportanceTable(chain, photos_data, against="original",
                                 progress=lambda: print(",", end="", file=sys.stderr, flush=True))

    def compress(budget):
        """The plan at ``budget``, its merged float network (BN re-estimated, no fine-tuning) and its outputs."""
        plan = choose_plan(chain, tables, importance, args.mode, int(budget * before))
        merged = finetune_and_merge(chain, plan, importance, photos_data, steps=0)
        with torch.no_grad():
            logits = ChainNetwork(merged).float().eval()(photos_data.x)
        after = tables.instructions(plan.segments)
        return plan, merged, {
            "budget": budget, "predicted_instructions_after": after, "predicted_ratio": round(after / before, 4),
            "predicted_peak_sram_after": tables.peak_sram(plan.segments), "convolutions_after": merged.length,
            "activations_after": kept_activations(chain, plan), "agreement": agreement(original_logits, logits),
            "merged": [s.label() for s in plan.segments if s.end > s.start + 1 or not s.keep_activation]}

    plan, merged_chain, chosen = compress(args.budget)
    section["importance"] = {
        "against": "KL divergence from the original's softmax on the photos", "candidates": len(importance.cache),
        "seconds_with_the_plan": round(time.perf_counter() - timer, 1),
        "spans": {label(key): round(value, 4)
                  for key, value in sorted(importance.cache.items(), key=lambda item: -item[1])}}
    section["importance"]["halves"] = halves_agreement(chain, photos_data, list(importance.cache))
    section.update({**chosen, "photos": len(photos_data), "finetuned": False,
                    "plan": [describe(chain, tables, s) for s in plan.segments
                             if s.end > s.start + 1 or not s.keep_activation]})
    print_plan(section)
    section["other_budgets"] = []
    for budget in args.also:
        section["other_budgets"].append(compress(budget)[2])
        print(summary(section["other_budgets"][-1]))
    save(args.out, key, section, table)
    measured = (("measure_original", "measured_before", chain), ("measure", "measured_after", merged_chain))
    for flag, which, network in measured:
        if getattr(args, flag):  # compiled as `edgekit compile` does (patched first stages), run in QEMU
            section[which] = measure_model(network, TARGET, SimpleNamespace(x=photos), latency=latency)
            print(which, json.dumps(section[which]), flush=True)
            save(args.out, key, section, table)
    section["seconds"] = round(time.perf_counter() - started)
    save(args.out, key, section, table)
    return 0


def halves_agreement(chain, photos, candidates) -> dict:
    """How stable the 9-photo proxy is: Spearman's rho between the importances of the scored candidates
    on the first 4 and on the last 5 photos."""
    half = len(photos) // 2
    values = []
    for part in (slice(0, half), slice(half, len(photos))):
        table = ImportanceTable(chain, HeldOut(photos.x[part], photos.y[part]), against="original")
        values.append([table.importance(list(candidate)) for candidate in candidates])
    rho = spearman(*values)
    print(f"proxy on photos 1-{half} vs {half + 1}-{len(photos)}: Spearman {rho:.3f} over {len(candidates)} "
          "candidates", file=sys.stderr)
    return {"photos": [half, len(photos) - half], "spearman": round(rho, 3)}


def kept_activations(chain, plan) -> int:
    """Activation functions left in the backbone: one per segment whose merged convolution has one."""
    return sum(s.keep_activation and merged_geometry(chain, s).activation is not None for s in plan.segments)


def describe(chain, tables, segment) -> dict:
    layer, cost = merged_geometry(chain, segment), tables.cost(segment)
    unmerged = sum(tables.cost(Segment(k, k + 1)).instructions for k in range(segment.start, segment.end))
    return {"segment": segment.label(), "kernel": list(layer.kernel), "depthwise": layer.depthwise,
            "out_shape": list(layer.out_shape), "instructions": cost.instructions,
            "unmerged_instructions": unmerged, "sram_bytes": cost.sram_bytes}


def agreement(original: torch.Tensor, merged: torch.Tensor) -> dict:
    """Top-1 agreement, mean cosine similarity of the logits, mean KL(original || merged) of the softmax."""
    kl = F.kl_div(F.log_softmax(merged, 1), F.log_softmax(original, 1), log_target=True, reduction="batchmean")
    return {"top1": int((merged.argmax(1) == original.argmax(1)).sum()), "of": len(original),
            "original_top1": original.argmax(1).tolist(), "compressed_top1": merged.argmax(1).tolist(),
            "cosine": round(float(F.cosine_similarity(original, merged, dim=1).mean()), 4),
            "kl": round(float(kl), 4)}


def label(segments) -> str:
    """A scored candidate: one span "(i,j)" (dp) or one segment's label (layermerge)."""
    return f"({segments[0].start},{segments[-1].end})" if len(segments) > 1 else segments[0].label()


def summary(result) -> str:
    agree = result["agreement"]
    return (f"budget {result['budget']}: {result['predicted_ratio']:.3f}x predicted, {result['convolutions_after']} "
            f"convolutions, {result['activations_after']} activations, peak SRAM "
            f"{result['predicted_peak_sram_after']:,} B; top-1 {agree['top1']}/{agree['of']}, "
            f"cosine {agree['cosine']}, KL {agree['kl']}")


def print_plan(section) -> None:
    print(f"\nplan ({section['mode']}, budget {section['budget']}): {section['convolutions_before']} -> "
          f"{section['convolutions_after']} convolutions, activations {section['activations_before']} -> "
          f"{section['activations_after']}")
    for row in section["plan"]:
        print(f"{row['segment']:>22} {row['kernel'][0]}x{row['kernel'][1]} {'dw' if row['depthwise'] else 'dense':>5} "
              f"{row['instructions']:>14,} (unmerged {row['unmerged_instructions']:,}) {row['sram_bytes']:>10,} B")
    print(f"predicted instructions {section['predicted_instructions_before']:,} -> "
          f"{section['predicted_instructions_after']:,} ({section['predicted_ratio']:.3f}x); peak SRAM "
          f"{section['predicted_peak_sram_before']:,} -> {section['predicted_peak_sram_after']:,} B")
    print(summary(section) + f" (no fine-tuning); importance of {section['importance']['candidates']} candidates in "
          f"{section['importance']['seconds_with_the_plan']} s (with the plan)")


def save(out, key, section, table) -> None:
    """Store the section under depth.``key`` of ``out`` (other keys kept), staged then moved into place."""
    if out:
        path = Path(out)
        results = json.loads(path.read_text()) if path.is_file() else {}
        results.setdefault("depth", {})[key] = {**section, "table": table}
        staged = path.with_name(f".{path.name}.tmp")
        staged.write_text(json.dumps(results, indent=2) + "\n")
        staged.replace(path)


if __name__ == "__main__":
    sys.exit(main())
