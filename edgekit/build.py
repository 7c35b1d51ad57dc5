"""Cross-compiling generated C sources and the firmware runtime into a firmware image.

`build_firmware` writes a Makefile and a linker script into the build folder and runs make,
so the exact flags stay next to the image and `make -C BUILD_DIR` rebuilds it by hand.
Section sizes are then read back from the linked ELF: they are what the board would hold.

Optimisation is -O2 by default: edgekit reports instruction counts, kernels are loops whose
speed matters, and code is a small part of flash next to the weights. Pass optimize="Os"
to trade speed for code size.
"""

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgekit import __version__
from edgekit.board_runtime import embedded_inputs, runtime_defines, runtime_sources, write_test_inputs
from edgekit.elf import read_sections
from edgekit.errors import DoesNotFitError, EdgekitError, ToolchainError
from edgekit.linker_script import render_linker_script
from edgekit.paths import FIRMWARE_DIR
from edgekit.progress import QUIET, counting
from edgekit.target import Target
from edgekit.toolchain import find_tool, first_error_line, run_tool

DEFAULT_STACK_BYTES = 8 * 1024
DEFAULT_HEAP_BYTES = 0
BUILD_TIMEOUT_S = 600

# Output section (see targets/linker.ld.in) -> SectionSizes field.
_SECTION_FIELDS = {
    ".isr_vector": "code",
    ".text": "code",
    ".ARM.exidx": "code",
    ".rodata": "rodata",
    ".ek_weights": "flash_weights",
    ".ek_extflash": "extflash",
    ".data": "data",
    ".bss": "bss",
    ".heap": "heap",
    ".stack": "stack",
}

# Linker region name -> (Target role, what to try when it overflows).
_LINKER_REGIONS = {
    "FLASH": ("code", "try a smaller model (--width), or a target with external flash for the weights (see "
                      "`edgekit targets`)"),
    "RAM": ("ram", "try --patch auto or a smaller --resolution"),
    "EXTFLASH": ("external-weights", "try a smaller model (--width), or a target with more external flash (see "
                                     "`edgekit targets`)"),
}

_OVERFLOW = re.compile(r"region `(\w+)' overflowed by (\d+) bytes")


@dataclass(frozen=True)
class SectionSizes:
    """Bytes per kind of content in the linked image, from its sections."""

    code: int = 0  # vectors, .text, unwind tables
    rodata: int = 0  # constants other than weights.c
    flash_weights: int = 0  # constants of weights.c, in internal flash
    extflash: int = 0  # .ek_extflash, in external flash
    data: int = 0  # initialised variables: in RAM, with their initial values in flash
    bss: int = 0  # zeroed variables, including the model's arena
    heap: int = 0  # heap reserve
    stack: int = 0  # stack reserve

    @property
    def flash_bytes(self) -> int:
        return self.code + self.rodata + self.flash_weights + self.data

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss + self.heap + self.stack


@dataclass(frozen=True)
class Firmware:
    """A linked firmware image and where its bytes go."""

    target: Target
    build_dir: Path
    elf: Path
    bin: Path  # internal flash image (vectors, code, constants, .data initialisers)
    extflash_bin: Path | None  # the external flash image, for targets that have one
    map: Path
    makefile: Path
    sizes: SectionSizes


def build_firmware(
    source_dir: Path,
    target: Target,
    build_dir: Path | None = None,
    *,
    stack_bytes: int = DEFAULT_STACK_BYTES,
    heap_bytes: int = DEFAULT_HEAP_BYTES,
    optimize: str = "O2",
    test_inputs: np.ndarray | None = None,
    progress=QUIET,
) -> Firmware:
    """Compiles every .c in `source_dir` (model.h included) with the runtime and links it for `target`.

    A board target's image carries its test inputs (`test_inputs`, int8 [N, EK_INPUT_SIZE]; as many
    as board_runtime.TEST_INPUTS_FLASH_BYTES allows). The build folder defaults to `source_dir`.
    Raises DoesNotFitError when a memory region overflows and ToolchainError when the compiler or
    linker fails otherwise. ``progress`` (progress.Stages) counts the compiled files, then the link.
    """
    for name, value, minimum in (("stack_bytes", stack_bytes, 256), ("heap_bytes", heap_bytes, 0)):
        if value % 8 or value < minimum:
            raise EdgekitError(f"{name} is {value}: it must be a multiple of 8 and at least {minimum}")
    source_dir = Path(source_dir).resolve()
    build_dir = Path(build_dir or source_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    find_tool("arm-none-eabi-gcc")
    sources = _source_names(source_dir, target)
    if target.is_board:
        if test_inputs is None:
            raise EdgekitError(f"a {target.name} image runs test inputs embedded in flash: pass test_inputs")
        records = embedded_inputs(test_inputs)
        if records.shape[1] != _input_size(source_dir):
            raise EdgekitError(f"test inputs have {records.shape[1]} bytes per record, the model's EK_INPUT_SIZE "
                               f"is {_input_size(source_dir)}")
        write_test_inputs(build_dir, records)
    _write_if_changed(build_dir / "firmware.ld", render_linker_script(target, stack_bytes, heap_bytes))
    makefile = build_dir / "Makefile"
    _write_if_changed(makefile, _render_makefile(target, _model_dir_text(source_dir, build_dir), sources, optimize))
    make = ["make", "-C", str(build_dir), f"-j{os.cpu_count() or 1}"]
    objects = [f"obj/{Path(source).stem}.o" for source in sources]
    with progress.stage("compile C", len(objects)) as advance, \
            counting(advance, lambda: sum((build_dir / name).is_file() for name in objects)):
        result = run_tool(make + objects, timeout_s=BUILD_TIMEOUT_S)
    if result.returncode == 0:
        with progress.stage("link"):
            result = run_tool(make, timeout_s=BUILD_TIMEOUT_S)
    if result.returncode != 0:
        raise _build_error(result.stdout + result.stderr, target)
    elf = build_dir / "firmware.elf"
    return Firmware(
        target=target,
        build_dir=build_dir,
        elf=elf,
        bin=build_dir / "firmware.bin",
        extflash_bin=build_dir / "firmware-extflash.bin" if target.external_weights else None,
        map=build_dir / "firmware.map",
        makefile=makefile,
        sizes=section_sizes(elf),
    )


def section_sizes(elf: Path) -> SectionSizes:
    """SectionSizes of a linked edgekit ELF; every allocated section must be a known one."""
    totals: dict[str, int] = {}
    for section in read_sections(elf):
        if not section.allocated:
            continue
        field = _SECTION_FIELDS.get(section.name)
        if field is None:
            raise ToolchainError(
                f"{elf}: section {section.name} ({section.size} bytes) is not placed by "
                "targets/linker.ld.in: add it there"
            )
        totals[field] = totals.get(field, 0) + section.size
    return SectionSizes(**totals)


def _write_if_changed(path: Path, text: str) -> None:
    """Writes `text` unless the file already holds it, so make rebuilds only what changed."""
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def _source_names(source_dir: Path, target: Target) -> list[str]:
    """The C files to compile: the generated ones, then the runtime's; names must not clash."""
    generated = sorted(path.name for path in source_dir.glob("*.c"))
    if not (source_dir / "model.h").is_file():
        raise EdgekitError(f"{source_dir} has no model.h: it is not a generated model folder")
    runtime = [Path(name).name for name in runtime_sources(target)]
    clashes = sorted(set(generated) & set(runtime))
    if clashes:
        raise EdgekitError(f"{source_dir} has {', '.join(clashes)}, which the firmware runtime also defines: rename it")
    return generated + runtime


def _input_size(source_dir: Path) -> int:
    """EK_INPUT_SIZE from model.h."""
    match = re.search(r"#define EK_INPUT_SIZE (\d+)", (source_dir / "model.h").read_text())
    if not match:
        raise EdgekitError(f"{source_dir}/model.h does not define EK_INPUT_SIZE")
    return int(match[1])


def _model_dir_text(source_dir: Path, build_dir: Path) -> str:
    """How the Makefile names the model sources: relative to the build folder (make runs there) when
    they sit inside it, so the folder can be moved (a compile builds in a staging folder, then renames
    it) and the dependency files hold no absolute paths."""
    try:
        return str(source_dir.relative_to(build_dir)) if source_dir != build_dir else "."
    except ValueError:
        return str(source_dir)


def _render_makefile(target: Target, source_dir: str, sources: list[str], optimize: str) -> str:
    extflash_rule = (
        "\n\t$(OBJCOPY) -O binary -j .ek_extflash $< firmware-extflash.bin"
        if target.external_weights
        else ""
    )
    return f"""\
# Generated by edgekit {__version__} for target {target.name} ({target.description}).
# Rebuild by hand with `make` in this folder; these are the flags edgekit used.
CC := arm-none-eabi-gcc
OBJCOPY := arm-none-eabi-objcopy
MODEL_DIR := {source_dir}
RUNTIME_DIR := {FIRMWARE_DIR}
CPU_FLAGS := {' '.join(target.cpu_flags)}
BOARD_FLAGS := {' '.join(runtime_defines(target))}
CFLAGS := $(CPU_FLAGS) $(BOARD_FLAGS) -{optimize} -g -std=c99 -Wall -Wextra -ffunction-sections -fdata-sections \\
	-I$(MODEL_DIR) -I$(RUNTIME_DIR) -I$(RUNTIME_DIR)/board -I.
LDFLAGS := $(CPU_FLAGS) -nostartfiles --specs=nano.specs -T firmware.ld \\
	-Wl,--gc-sections -Wl,--no-warn-rwx-segments -Wl,-Map=firmware.map
SOURCES := {' '.join(sources)}
OBJECTS := $(addprefix obj/,$(SOURCES:.c=.o))
vpath %.c $(MODEL_DIR) $(RUNTIME_DIR) $(RUNTIME_DIR)/board .

all: firmware.bin

firmware.bin: firmware.elf
	$(OBJCOPY) -O binary -R .ek_extflash $< $@{extflash_rule}

firmware.elf: $(OBJECTS) firmware.ld
	$(CC) $(LDFLAGS) -o $@ $(OBJECTS)

obj/%.o: %.c Makefile | obj
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

obj:
	mkdir -p $@

clean:
	rm -rf obj firmware.elf firmware.bin firmware-extflash.bin firmware.map

.PHONY: all clean
-include $(OBJECTS:.o=.d)
"""


def _build_error(output: str, target: Target) -> EdgekitError:
    """DoesNotFitError for a region overflow, else ToolchainError with the first diagnostic."""
    overflows = {region: int(amount) for region, amount in _OVERFLOW.findall(output)}
    if overflows:
        messages = [_overflow_message(target, region, amount) for region, amount in overflows.items()]
        numbers = {"overflows": [{"region": region, "overflow_bytes": amount,
                                  "region_bytes": getattr(target.region(_LINKER_REGIONS[region][0]), "length", 0)}
                                 for region, amount in overflows.items()]}
        return DoesNotFitError("; ".join(messages), numbers)
    return ToolchainError(f"firmware build failed: {first_error_line(output)}")


def _overflow_message(target: Target, linker_region: str, amount: int) -> str:
    role, suggestion = _LINKER_REGIONS[linker_region]
    region = target.region(role)
    if region is None:
        return (
            f"{target.name} has no external flash, but {amount:,} bytes were placed in .ek_extflash: "
            "choose a target with external flash (see `edgekit targets`)"
        )
    size = f"{region.name}, {region.length // 1024:,} KB"
    return f"{target.name} {linker_region} ({size}) overflowed by {amount:,} bytes: {suggestion}"
