"""Depth-compression benchmark: the `depth` section of bench/results.json.

A MobileNetV2-style network (28x28x1 input, 25 convolutions, inverted residuals with 4 skips) is
trained here on Fashion-MNIST (Debian's dataset-fashion-mnist), then compressed for cortex-m7 by
`edgekit compress`'s pipeline at several budgets in both modes (latency table measured in QEMU),
fine-tuned by distillation, quantized to int8, compiled and run in QEMU. Per (mode, budget): the
measured instructions and peak SRAM before/after, and the int8 test accuracy (exact integer
interpreter, which the firmware matches bit for bit; checked on the QEMU inputs). Baseline: every
inverted-residual block merged into one convolution, and each DP at that baseline's instructions.

`python bench/depth.py --out bench/results.json` updates only the `depth` key. Options size the run
(--train-samples, --epochs, --finetune-steps, --test-samples, --seeds); the section records what was
run. The defaults fit about an hour on a shared 2-core machine: the int8 accuracy comes from the
integer interpreter (about 40 ms per image here), so it is taken on the first --test-samples test
images, the float accuracy on all 10,000; seed 0 of each plan is compiled and run in QEMU, the other
seeds are quantized the same way (the interpreter is bit-exact with the firmware) for their accuracy.
"""

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

FASHION = Path("/usr/share/datasets/fashion-mnist")
TARGET = "cortex-m7"


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (MNIST format): big-endian magic (dtype 0x08 = uint8, number of dims), dims, data."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion_mnist(split: str):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(FASHION / f"{prefix}-images-idx3-ubyte.gz").astype(np.float32) / 255.0
    y = read_idx(FASHION / f"{prefix}-labels-idx1-ubyte.gz").astype(np.int64)
    return x[..., np.newaxis], y


def benchmark_network() -> nn.Module:
    """MobileNetV2 at toy size: stem 3x3/2, stages (t, c, n, s) as in the paper's Table 2, 1x1 to 64, classifier."""
    from edgekit.zoo.mobilenetv2 import InvertedResidual, conv_bn_relu6

    class SmallMobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            layers, channels = [conv_bn_relu6(1, 16, stride=2)], 16
            for t, c, n, s in ((1, 8, 1, 1), (4, 16, 2, 2), (4, 24, 3, 1), (4, 32, 2, 2)):
                for i in range(n):
                    layers.append(InvertedResidual(channels, c, s if i == 0 else 1, t))
                    channels = c
            layers.append(conv_bn_relu6(channels, 64, kernel=1))
            self.features = nn.Sequential(*layers)
            self.classifier = nn.Linear(64, 10)

        def forward(self, x):
            return self.classifier(nn.functional.adaptive_avg_pool2d(self.features(x), 1).flatten(1))

    return SmallMobileNetV2()


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int) -> None:
    torch.manual_seed(seed)
    data = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    labels = torch.from_numpy(y)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    steps = epochs * (len(y) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 4e-3, total_steps=steps)
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(y))
        for begin in range(0, len(y) - 127, 128):
            batch = order[begin:begin + 128]
            loss = nn.functional.cross_entropy(model(data[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    model.eval()


def block_baseline_plan(chain):
    """Every inverted residual (expand, depthwise, project) merged into one convolution; the rest unmerged."""
    from edgekit.compress.segment import Plan, Segment

    segments, position = [], 0
    blocks = [(r.start, r.end) for r in chain.residuals]
    while position < chain.length:
        block = next((b for b in blocks if b[0] == position), None)
        end = block[1] if block else position + 1
        segments.append(Segment(position, end))
        position = end
    return Plan(segments, "baseline: merge every residual block")


HELD_OUT = 1000


def main(argv=None) -> int:
    from edgekit.compress.chain import extract_chain
    from edgekit.compress.compressor import (CALIBRATION_SAMPLES, build_tables, choose_plan, enumerate_segments,
                                             finetune_and_merge, int8_accuracy, measure_model, quantized_network)
    from edgekit.compress.dataset import Dataset
    from edgekit.compress.importance import HeldOut, ImportanceTable, accuracy_of
    from edgekit.compress.network import ChainNetwork
    from edgekit.compress.segment import Plan
    from edgekit.compress.tables import LatencyTable, network_forms
    from edgekit.frontend.torch import import_torch_module
    from edgekit.passes import run_pipeline
    from edgekit.target import load_target

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="results.json to update (only its `depth` key)")
    parser.add_argument("--budgets", type=float, nargs="*", default=[0.9, 0.75, 0.6, 0.5])
    parser.add_argument("--modes", nargs="*", default=["dp", "layermerge"])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--train-samples", type=int, default=11000, help="the last 1,000 are held out")
    parser.add_argument("--test-samples", type=int, default=1000, help="int8 accuracy on the first N test images")
    parser.add_argument("--epochs", type=int, default=3, help="training epochs of the original")
    parser.add_argument("--finetune-steps", type=int, default=40, help="distillation steps (batch 64) per plan")
    parser.add_argument("--baseline-seeds", type=int, default=1)
    parser.add_argument("--rank-entries", type=int, default=16, help="entries for the proxy vs fine-tune ranking")
    parser.add_argument("--rank-steps", type=int, default=20, help="fine-tune steps of each ranked entry")
    parser.add_argument("--importance-samples", type=int, default=500, help="held-out samples of the proxy")
    parser.add_argument("--workdir", default="build/bench-depth")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(2)
    workdir = Path(args.workdir)

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    x_train, y_train = fashion_mnist("train")
    x_test, y_test = fashion_mnist("test")
    x_train, y_train = x_train[:args.train_samples], y_train[:args.train_samples]
    held = slice(len(y_train) - HELD_OUT, len(y_train))  # held out of training: importance, calibration
    int8_test = (x_test[:args.test_samples], y_test[:args.test_samples])
    float_test = HeldOut.from_arrays(x_test, y_test)
    model = benchmark_network()
    train(model, x_train[:held.start], y_train[:held.start], args.epochs, seed=0)
    graph = run_pipeline(import_torch_module(model, (1, 1, 28, 28)))
    chain = extract_chain(graph)
    training = HeldOut.from_arrays(x_train[:held.start], y_train[:held.start])
    held_out = HeldOut.from_arrays(x_train[held], y_train[held])
    log(f"trained; {chain.length} convolutions")

    target = load_target(TARGET)
    held_out_arrays = Dataset(x_train[held], y_train[held])
    calibration = held_out_arrays.x[:CALIBRATION_SAMPLES]
    latency = LatencyTable(TARGET)
    original = measure_model(chain, TARGET, held_out_arrays, workdir / "original", int8_test, latency)
    original["float_accuracy"] = accuracy_of(ChainNetwork(chain).float(), float_test)
    forms = network_forms(quantized_network(chain, calibration), chain.length, target)
    log(f"original: {json.dumps(original)}")
    importance = ImportanceTable(chain, HeldOut(held_out.x[:args.importance_samples],
                                                held_out.y[:args.importance_samples]))
    section = {"target": TARGET, "network": f"MobileNetV2-style, 28x28x1, {chain.length} convolutions, "
                                             f"{len(chain.residuals)} residuals",
               "trained": {"epochs": args.epochs, "train_samples": held.start, "held_out_samples": HELD_OUT,
                           "batch": 128}, "importance_samples": args.importance_samples,
               "int8_test_samples": len(int8_test[1]), "float_test_samples": len(y_test), "seeds": args.seeds,
               "baseline_seeds": args.baseline_seeds, "finetune_steps": args.finetune_steps, "finetune_batch": 64,
               "accuracy": "int8 test accuracy in percent on the first int8_test_samples test images (exact "
                           "integer interpreter, bit-exact with the firmware), mean over seeds; float_accuracy "
                           "on all test images",
               "original": original, "runs": [], "baseline": {}}
    tables_by_mode = {}
    for mode in args.modes:
        tables_by_mode[mode] = build_tables(chain, enumerate_segments(chain, mode), latency, target.ram.length, forms)
        log(f"{mode}: latency table of {len(tables_by_mode[mode].costs)} candidates "
            f"({latency.measurements} QEMU measurements so far)")
    identity = Plan.identity(chain)
    before = tables_by_mode[args.modes[0]].instructions(identity.segments)
    section["predicted_instructions_before"] = before

    def save():
        """Write the section as it stands (the run is long: what finished is kept if it is stopped)."""
        section["seconds"] = round(time.perf_counter() - started)
        if args.out:
            path = Path(args.out)
            results = json.loads(path.read_text()) if path.is_file() else {}
            imagenet = results.get("depth", {}).get("imagenet_mobilenetv2")  # bench/depth_imagenet.py's part
            results["depth"] = {**section, **({"imagenet_mobilenetv2": imagenet} if imagenet else {})}
            path.write_text(json.dumps(results, indent=2) + "\n")

    def evaluate(mode, plan, label):
        """Seed 0: fine-tuned, compiled and run in QEMU (instructions, SRAM, int8 accuracy)."""
        merged = finetune_and_merge(chain, plan, importance, training, args.finetune_steps, seed=0)
        measured = measure_model(merged, TARGET, held_out_arrays, workdir / label, int8_test, latency)
        float_accuracy = accuracy_of(ChainNetwork(merged).float(), float_test)
        return {"mode": mode, "segments": [s.label() for s in plan.segments], "convolutions_after": len(plan.segments),
                "planned_instructions_after": tables_by_mode[mode].instructions(plan.segments),
                "predicted_instructions_after": measured["predicted_instructions"],
                "instructions_before": original["instructions"], "instructions_after": measured["instructions"],
                "speedup": round(original["instructions"] / measured["instructions"], 3),
                "accuracy_before": original["int8_accuracy"], "accuracy_after": measured["int8_accuracy"],
                "accuracy_after_per_seed": [measured["int8_accuracy"]],
                "float_accuracy_before": original["float_accuracy"], "float_accuracy_after": float_accuracy,
                "float_accuracy_after_per_seed": [float_accuracy],
                "peak_sram_before": original["peak_sram_bytes"], "peak_sram_after": measured["peak_sram_bytes"],
                "bit_exact": measured["bit_exact"]}

    def add_seed(run, plan, seed):
        """Another fine-tuning seed of a plan: the same network shape, so only its accuracy is new (the
        integer interpreter on the int8 graph compile would make; it is bit-exact with the firmware)."""
        merged = finetune_and_merge(chain, plan, importance, training, args.finetune_steps, seed=seed)
        run["accuracy_after_per_seed"].append(int8_accuracy(quantized_network(merged, calibration), *int8_test))
        run["float_accuracy_after_per_seed"].append(accuracy_of(ChainNetwork(merged).float(), float_test))
        run["accuracy_after"] = round(float(np.mean(run["accuracy_after_per_seed"])), 2)
        run["float_accuracy_after"] = round(float(np.mean(run["float_accuracy_after_per_seed"])), 2)

    plans = []  # (run, plan): the seeds after the first are added once every plan has one
    for mode in args.modes:
        for budget in args.budgets:
            plan = choose_plan(chain, tables_by_mode[mode], importance, mode, int(budget * before))
            section["runs"].append({"budget": budget, **evaluate(mode, plan, f"{mode}-{budget}")})
            plans.append((section["runs"][-1], plan))
            log(json.dumps(section["runs"][-1]))
            save()

    baseline = block_baseline_plan(chain)
    base_mode = args.modes[0]
    base_cost = tables_by_mode[base_mode].instructions(baseline.segments)
    section["baseline"]["merge_every_block"] = {"budget_equivalent": round(base_cost / before, 4),
                                                **evaluate(base_mode, baseline, "baseline")}
    log(json.dumps(section["baseline"]["merge_every_block"]))
    baseline_plans = [(section["baseline"]["merge_every_block"], baseline)]
    for mode in args.modes:
        plan = choose_plan(chain, tables_by_mode[mode], importance, mode, base_cost)
        section["baseline"][f"{mode}_at_equal_instructions"] = evaluate(mode, plan, f"{mode}-equal")
        baseline_plans.append((section["baseline"][f"{mode}_at_equal_instructions"], plan))
        log(json.dumps(section["baseline"][f"{mode}_at_equal_instructions"]))
    save()

    for seed in range(1, args.seeds):
        for run, plan in plans + (baseline_plans if seed < args.baseline_seeds else []):
            add_seed(run, plan, seed)
            log(f"seed {seed}: {run['mode']} {run.get('budget', 'baseline')}: {run['accuracy_after_per_seed']}")
            save()

    section["importance_rank_agreement"] = rank_agreement(tables_by_mode[base_mode], importance, training,
                                                          args.rank_entries, args.rank_steps)
    text = json.dumps(section, indent=2)
    print(text)
    save()
    return 0


def rank_agreement(tables, importance, training, entries: int, steps: int) -> dict:
    """Spearman's rho between the proxy and the short fine-tune importance on ``entries`` dp spans that
    remove at least one activation."""
    from edgekit.compress.importance import finetuned_importance, span_segments, spearman

    chain = importance.chain
    spans = sorted({(s.start, s.end) for s in tables.costs if s.end - s.start > 1
                    and any(chain.layers[k - 1].activation for k in range(s.start + 1, s.end))})
    rng = np.random.default_rng(0)
    chosen = [spans[i] for i in sorted(rng.choice(len(spans), min(entries, len(spans)), replace=False))]
    proxy = [importance.importance(span_segments(i, j)) for i, j in chosen]
    tuned = [finetuned_importance(importance, span_segments(i, j), training, steps=steps) for i, j in chosen]
    return {"entries": len(chosen), "finetune_steps": steps, "spearman": round(spearman(proxy, tuned), 3),
            "spans": [list(s) for s in chosen], "proxy": proxy, "finetuned": tuned}


if __name__ == "__main__":
    sys.exit(main())
