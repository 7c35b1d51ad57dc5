"""The emitted program: model.h, model.c (arena + static schedule), weights.c (constants in flash)
and one C file per distinct TVM kernel.

The arena is one static, 16-byte aligned buffer in .bss; every activation lives at the offset the
memory plan gave it. ``ek_model_run`` copies the input into the arena unless the harness already
wrote it there (``EK_INPUT_BUFFER``), calls the kernels in order with ``ek_mark()`` after each (the
instruction counter's layer boundaries), and copies the output out likewise. Input and outputs are
bytes in the model's own dtypes (float32 for a float interface); a model with several outputs
writes them one after the other into ``output``, in the model's output order (io_records.py).

With a patched schedule the stage runs first, patch by patch (``patch_program.py``), with one
``ek_mark()`` per (patch, node); ``Program.mark_nodes`` maps every mark interval to its graph node.
With input by patch there is no frame: model.h declares ``ek_model_input_window()``, which the
application defines and the patch loop calls once per patch for that patch's input window.
model.c only prints the ``Plan`` (``step_plan.py``): each step's statement, lowered from the step's
buffer offsets, its scratch binding and its mark, in the plan's order.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit.codegen.kernels.depthwise_mve import HEADER_NAME as DEPTHWISE_MVE_HEADER_NAME
from edgekit.codegen.kernels.depthwise_mve import HEADER_TEXT as DEPTHWISE_MVE_HEADER_TEXT
from edgekit.codegen.kernels.mac_dsp import HEADER_NAME as MAC_DSP_HEADER_NAME
from edgekit.codegen.kernels.mac_dsp import HEADER_TEXT as MAC_DSP_HEADER_TEXT
from edgekit.codegen.kernels.variants import KernelChoice
from edgekit.codegen.layer_calls import ConstArray, LayerCall
from edgekit.codegen.step_plan import Plan, PlanStep, build_plan
from edgekit.codegen.tir_to_c import COMPAT_HEADER_NAME, COMPAT_HEADER_TEXT
from edgekit.codegen.wide_weights import internal_budget, wide_weight_layers

EXTFLASH_ATTRIBUTE = '__attribute__((section(".ek_extflash"), aligned(4)))'
WEIGHT_ATTRIBUTE = "__attribute__((aligned(4)))"


@dataclass
class Program:
    """What was emitted, for the report: schedule, kernels, and where the constants went."""

    calls: list[LayerCall]
    kernel_names: list[str]
    arena_bytes: int
    internal_weight_bytes: int
    external_weight_bytes: int
    files: list[str]
    mark_nodes: list[int]  # per ek_mark() interval of one inference: the graph node it ran
    plan: Plan  # what was printed: every step's kernel variant, buffers and scratch


def c_identifier(index: int, name: str) -> str:
    return f"l{index}_" + re.sub(r"[^0-9A-Za-z_]", "_", name)[:40]


def _c_array(const: ConstArray, attribute: str) -> str:
    values = np.asarray(const.values).ravel().astype(np.int64)
    rows = [",".join(map(str, values[i:i + 24].tolist())) for i in range(0, values.size, 24)]
    return f"const {const.ctype} {const.name}[{values.size}] {attribute} = {{\n" + ",\n".join(rows) + "\n};\n"


def _placement(constants: list[ConstArray], target, flash_reserve_bytes: int = 0) -> set[str]:
    """Names of the arrays that go to external flash: the largest first, until the rest fits inside
    (beside code and `flash_reserve_bytes` of other constants, e.g. a board image's test inputs)."""
    external = target.external_weights
    budget = internal_budget(target, flash_reserve_bytes)
    total = sum(c.values.nbytes for c in constants)
    moved: set[str] = set()
    if external is None or total <= budget:
        return moved
    for const in sorted(constants, key=lambda c: -c.values.nbytes):
        if total <= budget:
            break
        moved.add(const.name)
        total -= const.values.nbytes
    return moved


def emit_program(graph, plan, target, out_dir: Path, patches=None, flash_reserve_bytes: int = 0, tuned=None,
                 prefer=None, wide_weights: bool | None = None) -> Program:
    """Write the C sources of ``graph`` under ``plan`` for ``target`` into ``out_dir``.

    ``flash_reserve_bytes``: internal flash to leave free besides code (a board image's test inputs).

    ``patches`` (a ``PatchSchedule``) runs its stage patch by patch; ``plan`` is then its
    ``memory.arena``, which places the frame, the split tensor, the working block and the rest.
    ``tuned`` maps ``variants.tuning_key`` to the variant ``--tune`` measured best; ``prefer`` gives one
    variant to every layer that can run it (``edgekit/tuning.py`` measures each). ``wide_weights``: whether
    the int16-weight kernels may be used; None decides layer by layer (``wide_weights.wide_weight_layers``;
    a single layer measured for depth compression's latency table takes the value its network gives it).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    if wide_weights is None:
        wide_weights = wide_weight_layers(graph, target, flash_reserve_bytes)
    choice = KernelChoice(target, wide_weights, dict(tuned or {}), prefer,
                          lean=patches is not None and patches.lean_kernels)
    prefixes = {node.name: c_identifier(i, node.name) for i, node in enumerate(graph.nodes)}
    step_plan = build_plan(graph, plan, choice, prefixes, patches)
    plan = step_plan.memory
    calls = [step.call for step in step_plan.steps]
    constants = list({c.name: c for call in calls for c in call.constants}.values())
    external = _placement(constants, target, flash_reserve_bytes)
    kernels = {call.kernel.name: call.kernel for call in calls if call.kernel is not None}

    files = [COMPAT_HEADER_NAME, MAC_DSP_HEADER_NAME, DEPTHWISE_MVE_HEADER_NAME, "weights.h", "weights.c", "model.h",
             "model.c"]
    (out_dir / COMPAT_HEADER_NAME).write_text(COMPAT_HEADER_TEXT)
    (out_dir / MAC_DSP_HEADER_NAME).write_text(MAC_DSP_HEADER_TEXT)
    (out_dir / DEPTHWISE_MVE_HEADER_NAME).write_text(DEPTHWISE_MVE_HEADER_TEXT)
    (out_dir / "weights.h").write_text(_weights_header(constants))
    (out_dir / "weights.c").write_text(
        '#include "weights.h"\n\n' + "\n".join(
            _c_array(c, EXTFLASH_ATTRIBUTE if c.name in external else WEIGHT_ATTRIBUTE) for c in constants))
    for kernel in kernels.values():
        (out_dir / f"{kernel.name}.c").write_text(kernel.c_code)
        files.append(f"{kernel.name}.c")
    (out_dir / "kernels.h").write_text(
        f'#ifndef EK_KERNELS_H\n#define EK_KERNELS_H\n#include "{COMPAT_HEADER_NAME}"\n'
        + "".join(f"{k.prototype};\n" for k in kernels.values()) + "#endif\n")
    files.append("kernels.h")
    input_by_patch = patches is not None and patches.memory.input_by_patch
    (out_dir / "model.h").write_text(_model_header(graph, plan, input_by_patch))
    (out_dir / "model.c").write_text(_model_source(graph, step_plan, input_by_patch))
    ext_bytes = sum(c.values.nbytes for c in constants if c.name in external)
    index = {node.name: i for i, node in enumerate(graph.nodes)}
    mark_nodes = [index[step.node] for step in step_plan.steps if step.mark]
    return Program(calls, list(kernels), plan.arena_bytes,
                   sum(c.values.nbytes for c in constants) - ext_bytes, ext_bytes, files, mark_nodes, step_plan)


def _weights_header(constants) -> str:
    decls = "".join(f"extern const {c.ctype} {c.name}[{np.asarray(c.values).size}];\n" for c in constants)
    return f"#ifndef EK_WEIGHTS_H\n#define EK_WEIGHTS_H\n#include <stdint.h>\n{decls}#endif\n"


def _describe(tensor) -> str:
    return f"{tensor.dtype} {'x'.join(map(str, tensor.shape))}"


def _output_buffer(graph, plan) -> str:
    """The harness writes one output straight out of the arena; several are gathered by ek_model_run."""
    if len(graph.outputs) > 1:
        return "/* Several outputs: ek_model_run copies them into `output`, one after the other. */\n"
    return f"#define EK_OUTPUT_BUFFER (ek_arena + {plan.offset(graph.outputs[0])})\n"


def _model_header(graph, plan, input_by_patch: bool) -> str:
    x = graph.tensors[graph.inputs[0]]
    outputs = [graph.tensors[name] for name in graph.outputs]
    if input_by_patch:
        _, height, width, channels = x.shape
        input_api = f"""/* Input by patch: the model has no frame buffer. During ek_model_run it calls this function, which
 * the application defines, once per patch: copy the window of `rows` x `cols` pixels starting at
 * pixel (row0, col0) of the {height}x{width}x{channels} int8 input frame (NHWC) into `dst`, contiguous
 * (row stride cols * EK_INPUT_CHANNELS bytes). Return 0, or nonzero to stop the inference:
 * ek_model_run then returns that status. */
#define EK_INPUT_BY_PATCH 1
#define EK_INPUT_HEIGHT {height}
#define EK_INPUT_WIDTH {width}
#define EK_INPUT_CHANNELS {channels}
int ek_model_input_window(int32_t row0, int32_t col0, int32_t rows, int32_t cols, int8_t *dst);
{_output_buffer(graph, plan)}
/* Run one inference; `input` must be NULL (the input comes through ek_model_input_window). Returns
 * 0, the nonzero status of the first failing kernel or window, or -1 for a non-NULL input. */
int ek_model_run(const int8_t *input, int8_t *output);
"""
    else:
        input_api = f"""/* The harness reads inputs straight into the arena. */
#define EK_INPUT_BUFFER (ek_arena + {plan.offset(x.name)})
{_output_buffer(graph, plan)}
/* Run one inference. Returns 0, or the nonzero status of the first failing kernel. */
int ek_model_run(const int8_t *input, int8_t *output);
"""
    return f"""/* Generated by edgekit for model {graph.name!r}: do not edit. */
#ifndef EK_MODEL_H
#define EK_MODEL_H
#include <stdint.h>

#define EK_INPUT_SIZE {x.nbytes}   /* bytes: {_describe(x)} */
#define EK_OUTPUT_SIZE {sum(y.nbytes for y in outputs)}  /* bytes: {', then '.join(map(_describe, outputs))} */
#define EK_ARENA_SIZE {max(plan.arena_bytes, 1)}

extern int8_t ek_arena[EK_ARENA_SIZE];
{input_api}
#endif
"""


COPY_ROWS = """/* Copies `rows` rows of `row_bytes` bytes between buffers with different row strides. */
static void ek_copy_rows(int8_t *dst, int32_t dst_stride, const int8_t *src, int32_t src_stride, int32_t rows,
                         int32_t row_bytes)
{
    for (int32_t r = 0; r < rows; ++r) {
        memcpy(dst + r * dst_stride, src + r * src_stride, (size_t)row_bytes);
    }
}
"""


def _indent(code: str) -> str:
    return "\n".join(f"    {line}" if line else line for line in code.splitlines())


def _copy_outputs(graph, plan) -> str:
    """Copy each graph output into ``output`` (skipped when the harness reads the one output in place)."""
    copies, start = [], 0
    for name in graph.outputs:
        size = graph.tensors[name].nbytes
        copies.append(f"    if (output + {start} != (ek_arena + {plan.offset(name)})) {{\n"
                      f"        memcpy(output + {start}, ek_arena + {plan.offset(name)}, {size});\n    }}")
        start += size
    return "\n".join(copies)


def _statement(step: PlanStep) -> str:
    """A step's C statement, its scratch bound to the name the call uses, then its mark."""
    code = step.call.c_statement()
    if step.call.scratch_bytes:
        code = (f"{{ int8_t *const ek_scratch = ek_arena + {step.scratch_offset}; /* {step.call.scratch_bytes} B */\n"
                f"    {code}\n}}")
    return f"{code}\nek_mark();" if step.mark else code


def _schedule(steps: list[PlanStep]) -> str:
    """Every step of the plan in order, a comment where the patch stage and each of its patches start
    (with the patch's tile of the split tensor: the region its last step writes)."""
    lines, patch = [], None
    stage = [step for step in steps if step.stage == "patch"]
    tiles = {step.patch: step.region for step in stage}
    if stage:
        lines.append(f"/* patch stage: {sum(step.mark for step in stage)} (patch, node) steps */")
    for step in steps:
        if step.stage == "patch" and step.patch != patch:
            patch = step.patch
            lines.append(f"/* patch {patch[0]},{patch[1]}: split rows {tiles[patch].rows}, cols {tiles[patch].cols} */")
        lines.append(_statement(step))
    return _indent("\n".join(lines))


def _model_source(graph, step_plan: Plan, input_by_patch: bool) -> str:
    plan = step_plan.memory
    x = graph.tensors[graph.inputs[0]]
    if input_by_patch:
        take_input = "    if (input != 0) {\n        return -1;\n    }"
    else:
        take_input = (f"    if (input != (ek_arena + {plan.offset(x.name)})) {{\n"
                      f"        memcpy(ek_arena + {plan.offset(x.name)}, input, EK_INPUT_SIZE);\n    }}")
    helpers = COPY_ROWS if step_plan.patched else ""
    return f"""/* Generated by edgekit for model {graph.name!r}: do not edit. */
#include <string.h>
#include "model.h"
#include "kernels.h"
#include "weights.h"
#include "ek_runtime.h"

#define EK_CHECK(call) do {{ int32_t status_ = (call); if (status_ != 0) return (int)status_; }} while (0)

int8_t ek_arena[EK_ARENA_SIZE] __attribute__((aligned(16)));
{helpers}
int ek_model_run(const int8_t *input, int8_t *output)
{{
    ek_mark();
{take_input}
{_schedule(step_plan.steps)}
{_copy_outputs(graph, plan)}
    return 0;
}}
"""
