"""Depth compression of the ImageNet MobileNetV2 (zoo `mobilenetv2`, 224 px): its latency table on
cortex-m7 (measured in QEMU), the plan a budget chooses, and top-1 agreement with the original on the
photos of ../shared/data/images. No ImageNet data is here, so neither fine-tuning nor accuracy: the
proxy importance uses the original's own top-1 answers on the photos as labels.

`python bench/depth_imagenet.py [--budget 0.7] [--max-kernel 3] [--out bench/results.json]`
prints the table and the plan; --out stores them under `depth.imagenet_mobilenetv2`.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
TARGET = "cortex-m7"


def main(argv=None) -> int:
    from edgekit.compress.chain import extract_chain
    from edgekit.compress.compressor import (build_tables, choose_plan, enumerate_segments, finetune_and_merge,
                                             quantized_network)
    from edgekit.compress.importance import HeldOut, ImportanceTable
    from edgekit.compress.merge import merged_geometry
    from edgekit.compress.network import ChainNetwork
    from edgekit.compress.segment import Plan
    from edgekit.compress.tables import LatencyTable, network_forms
    from edgekit.model_source import load_model
    from edgekit.samples import load_inputs
    from edgekit.target import load_target

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", type=float, default=0.7)
    parser.add_argument("--mode", default="dp", choices=["dp", "layermerge"])
    parser.add_argument("--max-kernel", type=int, default=3)
    parser.add_argument("--images", default=str(SHARED / "data" / "images"))
    parser.add_argument("--out", help="results.json to update (key depth.imagenet_mobilenetv2)")
    args = parser.parse_args(argv)
    started = time.perf_counter()

    model = load_model("mobilenetv2")
    chain = extract_chain(model.graph)
    photos = np.concatenate(load_inputs(args.images, model, for_float=True))
    with torch.no_grad():
        original = ChainNetwork(chain).float()
        labels = original(torch.from_numpy(photos.transpose(0, 3, 1, 2).copy())).argmax(1).numpy()
    photos_data = HeldOut.from_arrays(photos, labels)

    target = load_target(TARGET)
    forms = network_forms(quantized_network(chain, photos), chain.length, target)
    print(f"kernel forms: {sum(f.narrow for f in forms.layers)} of {chain.length} convolutions requantize narrow, "
          f"int16 weights {'fit' if forms.wide_weights else 'do not fit'} the flash", file=sys.stderr)
    latency = LatencyTable(TARGET, progress=lambda: print(".", end="", file=sys.stderr, flush=True))
    tables = build_tables(chain, enumerate_segments(chain, args.mode, args.max_kernel), latency, target.ram.length,
                          forms)
    print(f"latency table: {len(tables.costs)} entries ({latency.measurements} new QEMU measurements, "
          f"{tables.filtered_by_sram} above the SRAM limit), {time.perf_counter() - started:.0f} s", file=sys.stderr)
    identity = Plan.identity(chain)
    before = tables.instructions(identity.segments)
    importance = ImportanceTable(chain, photos_data)
    plan = choose_plan(chain, tables, importance, args.mode, int(args.budget * before))

    merged = ChainNetwork(finetune_and_merge(chain, plan, importance, photos_data, steps=0)).float()
    with torch.no_grad():
        agreement = float((merged(photos_data.x).argmax(1) == photos_data.y).float().mean())

    table = []
    for segment, cost in sorted(tables.costs.items(), key=lambda item: (item[0].start, item[0].end, item[0].dropped)):
        layer = merged_geometry(chain, segment)
        table.append({"segment": segment.label(), "kernel": list(layer.kernel), "depthwise": layer.depthwise,
                      "out_shape": list(layer.out_shape), "instructions": cost.instructions,
                      "sram_bytes": cost.sram_bytes, "flash_bytes": cost.flash_bytes})
    section = {
        "model": "mobilenetv2 1.0, 224 px, ImageNet weights", "target": TARGET, "mode": args.mode,
        "budget": args.budget, "max_kernel": args.max_kernel, "table_entries": len(table),
        "predicted_instructions_before": before, "predicted_instructions_after": tables.instructions(plan.segments),
        "convolutions_before": chain.length, "convolutions_after": len(plan.segments),
        "narrow_layers": sum(f.narrow for f in forms.layers), "int16_weights": forms.wide_weights,
        "plan": [s.label() for s in plan.segments],
        "top1_agreement_with_original": agreement, "photos": len(labels), "finetuned": False,
        "note": "no ImageNet data here: no fine-tuning and no accuracy; agreement on the photos only",
        "seconds": round(time.perf_counter() - started),
    }
    for row in table:
        print(f"{row['segment']:>22} {row['kernel'][0]}x{row['kernel'][1]} {'dw' if row['depthwise'] else 'dense':>5} "
              f"{'x'.join(map(str, row['out_shape'])):>12} {row['instructions']:>14,} {row['sram_bytes']:>10,} B")
    print(json.dumps(section, indent=2))
    if args.out:
        path = Path(args.out)
        results = json.loads(path.read_text()) if path.is_file() else {}
        results.setdefault("depth", {})["imagenet_mobilenetv2"] = {**section, "table": table}
        path.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
