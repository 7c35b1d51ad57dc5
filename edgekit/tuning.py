"""`edgekit compile --tune`: measure every kernel variant of each MAC layer in QEMU and keep the fastest.

A tuning run emits the whole model with one variant preferred wherever it can run (``KernelChoice.prefer``),
builds it and counts each layer's instructions in QEMU over one inference (the kernels' instruction
counts do not depend on the data). A layer's count under a variant is stored in
``$EDGEKIT_HOME/tuning/<target>.json`` keyed by the layer's family and static spec
(``variants.tuning_key``) and the variant, so a later compile of the same shapes for the same target
measures nothing. Each layer then gets its cheapest variant. The measured runs are bit-exact like
any build (the variants compute the same bytes); tuning only picks among them.

Layers of a patched stage keep the default variant: their per-patch kernels differ in shape, and their
marks are summed over patches.
"""

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgekit.scratch import scratch_folder


@dataclass
class Tuning:
    """What tuning chose: ``variants`` maps ``tuning_key`` to the fastest variant; ``instructions`` holds
    every measured count (key -> variant -> instructions); ``runs`` is the number of QEMU runs it took."""

    variants: dict[str, str] = field(default_factory=dict)
    instructions: dict[str, dict[str, int]] = field(default_factory=dict)
    runs: int = 0


def _cache_path(target) -> Path:
    """Per target, under a hash of the kernel generator (its Python and C sources): measurements of
    older kernels never count."""
    import hashlib

    from edgekit.paths import writable_cache_dir

    kernels = Path(__file__).resolve().parent / "codegen" / "kernels"
    digest = hashlib.sha256()
    for source in sorted(kernels.glob("*.py")) + sorted(kernels.glob("*.h")):
        digest.update(source.read_bytes())
    return writable_cache_dir() / "tuning" / digest.hexdigest()[:12] / f"{target.name}.json"


def _load(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _store(path: Path, cache: dict) -> None:
    """Write atomically, so parallel compiles never read half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    temporary.write_text(json.dumps(cache, indent=1, sort_keys=True))
    temporary.replace(path)


def tunable_calls(program, patches) -> list:
    """The layer-by-layer MAC calls of ``program``: those with several variants to choose from."""
    stage = {node.name for node in patches.stage.nodes} if patches is not None else set()
    return [call for call in program.calls
            if call.tuning_key is not None and call.node not in stage and len(call.variants) > 1]


def _measure(graph, plan, target, patches, variant: str, folder: Path) -> tuple[list, list[int]]:
    """Emit, build and run the model with ``variant`` preferred: (its calls, instructions per node)."""
    from edgekit.build import build_firmware
    from edgekit.codegen.program import emit_program
    from edgekit.emulate import run_firmware
    from edgekit.errors import FirmwareFaultError
    from edgekit.io_records import output_record_bytes

    program = emit_program(graph, plan, target, folder / "src", patches, prefer=variant)
    firmware = build_firmware(folder / "src", target, folder)
    x = graph.tensors[graph.inputs[0]]
    result = run_firmware(firmware, target, np.zeros((1, x.nbytes), dtype=np.int8), output_record_bytes(graph))
    if not result.ok:
        raise FirmwareFaultError(f"tuning run with kernel variant {variant} stopped: {result.exit_reason}")
    per_node = [0] * len(graph.nodes)
    for node, count in zip(program.mark_nodes, result.marks[0]):
        per_node[node] += int(count)
    return program.calls, per_node


def tune(graph, plan, target, patches, default_program) -> Tuning:
    """Measure what the cache lacks for the tunable calls of ``default_program`` and pick each layer's
    fastest variant."""
    calls = tunable_calls(default_program, patches)
    path = _cache_path(target)
    cache = _load(path)
    missing = sorted({v for call in calls for v in call.variants if v not in cache.get(call.tuning_key, {})})
    stage = {node.name for node in patches.stage.nodes} if patches is not None else set()
    index = {node.name: i for i, node in enumerate(graph.nodes) if node.name not in stage}
    tuning = Tuning()
    for variant in missing:
        with scratch_folder("tune") as folder:
            measured_calls, per_node = _measure(graph, plan, target, patches, variant, folder)
        tuning.runs += 1
        for call in measured_calls:
            if call.tuning_key is not None and call.kernel.variant == variant and call.node in index:
                cache.setdefault(call.tuning_key, {})[variant] = per_node[index[call.node]]
    if missing:
        _store(path, cache)
    for call in calls:
        counts = {v: cache[call.tuning_key][v] for v in call.variants if v in cache.get(call.tuning_key, {})}
        if counts:
            tuning.instructions[call.tuning_key] = counts
            tuning.variants[call.tuning_key] = min(counts, key=counts.get)
    return tuning
