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
run and where its time went (``seconds_by_stage``). The defaults are the README's recipe, about an
hour on a shared 2-core machine: the original trained on all 59,000 non-held-out training images
(augmented), each plan distilled for FINETUNE_STEPS mini-batches, int8 accuracy by the exact integer
interpreter on the first TEST_SAMPLES test images (about 10 ms per image on the loaded machine, so
all 10,000 for 34 networks would take the hour alone), float accuracy on all 10,000. Seed 0 of each plan is compiled and run in QEMU; the other seeds
have the same network shape, so they are only quantized the same way (the interpreter is bit-exact
with the firmware) for their accuracy. One torch thread: with two, on a machine whose cores are
shared, every step waits for the busier core (measured 5-10x slower than one thread).
"""

import argparse
from contextlib import contextmanager
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

FASHION = Path("/usr/share/datasets/fashion-mnist")
TARGET = "cortex-m7"


def fashion_mnist(split: str):
    from edgekit.compress.dataset import idx_dataset

    prefix = "train" if split == "train" else "t10k"
    return idx_dataset(FASHION / f"{prefix}-images-idx3-ubyte.gz", FASHION / f"{prefix}-labels-idx1-ubyte.gz")


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


SHIFT = 2  # augmentation: random translation by up to SHIFT pixels, and horizontal flips


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of an NCHW batch shifted by its own random offset (zero fill) and flipped with p = 0.5."""
    n, _, height, width = x.shape
    padded = nn.functional.pad(x, (SHIFT, SHIFT, SHIFT, SHIFT))
    dy, dx = (torch.randint(0, 2 * SHIFT + 1, (2, n, 1), generator=generator))
    rows = (torch.arange(height) + dy)[:, None, :, None]
    cols = (torch.arange(width) + dx)[:, None, None, :]
    shifted = padded[torch.arange(n)[:, None, None, None], torch.arange(x.shape[1])[None, :, None, None], rows, cols]
    flip = torch.rand(n, generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], shifted.flip(3), shifted)


def train(model: nn.Module, x: np.ndarray, y: np.ndarray, epochs: int, seed: int, log=None) -> None:
    """Adam with a one-cycle schedule (warm-up, then cosine decay to ~0), weight decay, batch 128, augmentation."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    data = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    labels = torch.from_numpy(y)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    steps = epochs * (len(y) // 128)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 5e-3, total_steps=steps)
    model.train()
    for epoch in range(epochs):
        order = torch.randperm(len(y), generator=generator)
        for begin in range(0, len(y) - 127, 128):
            batch = order[begin:begin + 128]
            loss = nn.functional.cross_entropy(model(augment(data[batch], generator)), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
        if log:
            log(f"epoch {epoch + 1}/{epochs}: last batch loss {loss.item():.3f}")
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
EPOCHS = 6
FINETUNE_STEPS = 400
TEST_SAMPLES = 2000


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
    parser.add_argument("--train-samples", type=int, default=60000, help="the last 1,000 are held out")
    parser.add_argument("--test-samples", type=int, default=TEST_SAMPLES, help="int8 accuracy on the first N test images")
    parser.add_argument("--epochs", type=int, default=EPOCHS, help="training epochs of the original")
    parser.add_argument("--finetune-steps", type=int, default=FINETUNE_STEPS, help="distillation steps (batch 64) per plan")
    parser.add_argument("--baseline-seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared 2-core machine two "
                                                                  "threads ran 5-10x slower than one)")
    parser.add_argument("--rank-entries", type=int, default=10, help="entries for the proxy vs fine-tune ranking")
    parser.add_argument("--rank-steps", type=int, default=10, help="fine-tune steps of each ranked entry")
    parser.add_argument("--importance-samples", type=int, default=128, help="held-out samples of the proxy")
    parser.add_argument("--workdir", default="build/bench-depth")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    seconds = dict.fromkeys(("train", "latency_table", "importance", "finetune", "compile_and_qemu", "int8_accuracy",
                             "float_accuracy", "rank_agreement"), 0.0)

    @contextmanager
    def timed(stage):
        """Adds the block's wall time to ``seconds[stage]`` (the section's per-stage profile)."""
        begin = time.perf_counter()
        yield
        seconds[stage] += time.perf_counter() - begin

    def log(message):
        print(f"[{time.perf_counter() - started:6.0f} s] {message}", file=sys.stderr, flush=True)

    train_set, test_set = fashion_mnist("train"), fashion_mnist("test")
    x_train, y_train = train_set.x[:args.train_samples], train_set.y[:args.train_samples]
    x_test, y_test = test_set.x, test_set.y
    held = slice(len(y_train) - HELD_OUT, len(y_train))  # held out of training: importance, calibration
    int8_test = (x_test[:args.test_samples], y_test[:args.test_samples])
    float_test = HeldOut.from_arrays(x_test, y_test)
    model = benchmark_network()
    with timed("train"):
        train(model, x_train[:held.start], y_train[:held.start], args.epochs, seed=0, log=log)
    graph = run_pipeline(import_torch_module(model, (1, 1, 28, 28)))
    chain = extract_chain(graph)
    training = HeldOut.from_arrays(x_train[:held.start], y_train[:held.start])
    held_out = HeldOut.from_arrays(x_train[held], y_train[held])
    log(f"trained; {chain.length} convolutions")

    target = load_target(TARGET)
    held_out_arrays = Dataset(x_train[held], y_train[held])
    calibration = held_out_arrays.x[:CALIBRATION_SAMPLES]
    latency = LatencyTable(TARGET)
    with timed("compile_and_qemu"):
        original = measure_model(chain, TARGET, held_out_arrays, workdir / "original", int8_test, latency)
    with timed("float_accuracy"):
        original["float_accuracy"] = accuracy_of(ChainNetwork(chain).float(), float_test)
    forms = network_forms(quantized_network(chain, calibration), chain.length, target)
    log(f"original: {json.dumps(original)}")
    importance = ImportanceTable(chain, held_out.first(args.importance_samples))
    section = {"target": TARGET, "network": f"MobileNetV2-style, 28x28x1, {chain.length} convolutions, "
                                             f"{len(chain.residuals)} residuals",
               "trained": {"epochs": args.epochs, "train_samples": held.start, "held_out_samples": HELD_OUT,
                           "batch": 128, "optimizer": "AdamW, one-cycle to lr 5e-3, weight decay 1e-4",
                           "augmentation": f"shift up to {SHIFT} px, horizontal flip"},
               "torch_threads": args.threads, "importance_samples": args.importance_samples,
               "int8_test_samples": len(int8_test[1]), "float_test_samples": len(y_test), "seeds": args.seeds,
               "baseline_seeds": args.baseline_seeds, "finetune_steps": args.finetune_steps, "finetune_batch": 64,
               "accuracy": "int8 test accuracy in percent on the first int8_test_samples test images (exact "
                           "integer interpreter, bit-exact with the firmware), mean over seeds; float_accuracy "
                           "on all test images",
               "original": original, "runs": [], "baseline": {}}
    tables_by_mode = {}
    for mode in args.modes:
        with timed("latency_table"):
            tables_by_mode[mode] = build_tables(chain, enumerate_segments(chain, mode), latency, target.ram.length,
                                                forms)
        log(f"{mode}: latency table of {len(tables_by_mode[mode].costs)} candidates "
            f"({latency.measurements} QEMU measurements so far)")
    identity = Plan.identity(chain)
    before = tables_by_mode[args.modes[0]].instructions(identity.segments)
    section["predicted_instructions_before"] = before

    def save():
        """Write the section as it stands (the run is long: what finished is kept if it is stopped)."""
        section["seconds"] = round(time.perf_counter() - started)
        section["seconds_by_stage"] = {stage: round(value) for stage, value in seconds.items()}
        if args.out:
            path = Path(args.out)
            results = json.loads(path.read_text()) if path.is_file() else {}
            imagenet = {key: value for key, value in results.get("depth", {}).items()
                        if key.startswith("imagenet")}  # bench/depth_imagenet.py's part
            results["depth"] = {**section, **imagenet}
            path.write_text(json.dumps(results, indent=2) + "\n")

    def evaluate(mode, plan, label):
        """Seed 0: fine-tuned, compiled and run in QEMU (instructions, SRAM, int8 accuracy)."""
        with timed("finetune"):
            merged = finetune_and_merge(chain, plan, importance, training, args.finetune_steps, seed=0)
        with timed("compile_and_qemu"):  # with the int8 accuracy of the compiled graph
            measured = measure_model(merged, TARGET, held_out_arrays, workdir / label, int8_test, latency)
        with timed("float_accuracy"):
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
        with timed("finetune"):
            merged = finetune_and_merge(chain, plan, importance, training, args.finetune_steps, seed=seed)
        with timed("int8_accuracy"):  # quantization and the integer interpreter
            run["accuracy_after_per_seed"].append(int8_accuracy(quantized_network(merged, calibration), *int8_test))
        with timed("float_accuracy"):
            run["float_accuracy_after_per_seed"].append(accuracy_of(ChainNetwork(merged).float(), float_test))
        run["accuracy_after"] = round(float(np.mean(run["accuracy_after_per_seed"])), 2)
        run["float_accuracy_after"] = round(float(np.mean(run["float_accuracy_after_per_seed"])), 2)

    plans = []  # (run, plan): the seeds after the first are added once every plan has one
    for mode in args.modes:
        for budget in args.budgets:
            with timed("importance"):  # the DP's proxy entries, computed as it asks for them
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
        with timed("importance"):
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

    with timed("rank_agreement"):
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
