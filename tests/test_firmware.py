"""Firmware built with the real arm-none-eabi-gcc and run in the real QEMU, per target.

The fixture model in tests/fixtures/tiny_model computes output = input ^ 0x5a in three
"layers" separated by ek_mark(); variants written into tmp_path check the memory limits.
"""

import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgekit.build import build_firmware
from edgekit.emulate import run_firmware
from edgekit.errors import DoesNotFitError, EdgekitError, ToolchainError
from edgekit.target import load_target

pytestmark = pytest.mark.usefixtures("private_edgekit_home")

TINY_MODEL = Path(__file__).parent / "fixtures" / "tiny_model"
TARGETS = ["cortex-m7", "cortex-m4", "cortex-m55"]
RECORD_BYTES = 64


@pytest.fixture(scope="module")
def tiny_firmware(tmp_path_factory):
    """The tiny model built once per target."""
    built = {}

    def get(name):
        if name not in built:
            built[name] = build_firmware(TINY_MODEL, load_target(name), tmp_path_factory.mktemp(name))
        return built[name]

    return get


def random_inputs(count, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, (count, RECORD_BYTES), dtype=np.int8)


def model_variant(folder: Path, body: str, model_h: str | None = None) -> Path:
    """A model folder: the tiny model's header (or `model_h`) and a model.c with `body` after its include."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.h").write_text(model_h or (TINY_MODEL / "model.h").read_text())
    (folder / "model.c").write_text(f'#include "model.h"\n{body}\n')
    return folder


def build_variant(tmp_path: Path, target_name: str, body: str, model_h: str | None = None):
    """(Firmware, Target) for a model.c variant."""
    target = load_target(target_name)
    return build_firmware(model_variant(tmp_path / "src", body, model_h), target, tmp_path / "build"), target


@pytest.mark.parametrize("name", TARGETS)
def test_outputs_match_numpy(name, tiny_firmware):
    inputs = random_inputs(4)
    result = run_firmware(tiny_firmware(name), load_target(name), inputs, RECORD_BYTES, timeout_s=30)
    assert result.ok, result.exit_reason
    np.testing.assert_array_equal(result.outputs, inputs ^ np.int8(0x5A))


@pytest.mark.parametrize("name", TARGETS)
def test_instruction_counts_are_deterministic_and_ordered(name, tiny_firmware):
    target = load_target(name)
    first = run_firmware(tiny_firmware(name), target, random_inputs(3, seed=1), timeout_s=30)
    second = run_firmware(tiny_firmware(name), target, random_inputs(3, seed=2), timeout_s=30)
    assert first.marks == second.marks and len(first.marks) == 3
    assert first.instructions_per_inference == second.instructions_per_inference
    copy, xor, checksum = first.marks[0]
    assert checksum > xor > 0 and copy > 0, "the 4 x 64 checksum layer must count more than the 64-byte xor"
    assert first.instructions_per_inference[0] > sum(first.marks[0])


@pytest.mark.parametrize("name", TARGETS)
def test_stack_high_water_is_within_the_reserve(name, tiny_firmware):
    firmware = tiny_firmware(name)
    result = run_firmware(firmware, load_target(name), random_inputs(1), timeout_s=30)
    assert 0 < result.stack_high_water_bytes < result.stack_reserved_bytes == firmware.sizes.stack


def test_section_sizes_split_weights_from_code(tiny_firmware):
    sizes = tiny_firmware("cortex-m7").sizes
    assert sizes.flash_weights == RECORD_BYTES  # weights.c's key
    assert sizes.code > 0 and sizes.extflash == 0 and sizes.stack == 8 * 1024
    assert sizes.ram_bytes == sizes.data + sizes.bss + sizes.heap + sizes.stack


def test_makefile_rebuilds_by_hand(tiny_firmware):
    firmware = tiny_firmware("cortex-m4")
    result = subprocess.run(["make", "-C", str(firmware.build_dir)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "-mcpu=cortex-m4" in firmware.makefile.read_text()


BIG_STATIC = """
int8_t big_arena[400 * 1024]; /* global, so the stores cannot be optimised away */
int ek_model_run(const int8_t *input, int8_t *output)
{
    for (int i = 0; i < EK_OUTPUT_SIZE; ++i) { big_arena[i * 4096] = input[i]; output[i] = big_arena[i * 4096]; }
    return 0;
}
"""

BIG_CONST = """
SECTION const int8_t weights[2 * 1024 * 1024] = {1, 2, 3};
int ek_model_run(const int8_t *input, int8_t *output)
{
    for (int i = 0; i < EK_OUTPUT_SIZE; ++i) { output[i] = (int8_t)((input[i] ^ 0x5a) + weights[i * 32768 + 2]); }
    return 0;
}
"""
IN_EXTFLASH = '__attribute__((section(".ek_extflash")))'


def test_too_big_static_array_does_not_fit_ram(tmp_path):
    with pytest.raises(DoesNotFitError, match=r"RAM \(sram, 320 KB\) overflowed by [\d,]+ bytes.*--patch auto"):
        build_variant(tmp_path, "cortex-m7", BIG_STATIC)


def test_too_big_const_array_does_not_fit_flash(tmp_path):
    with pytest.raises(DoesNotFitError, match=r"FLASH \(flash, 1,024 KB\) overflowed"):
        build_variant(tmp_path, "cortex-m7", BIG_CONST.replace("SECTION", ""))


def test_big_const_array_in_external_flash_links_and_runs(tmp_path):
    firmware, target = build_variant(tmp_path, "cortex-m7", BIG_CONST.replace("SECTION", IN_EXTFLASH))
    assert firmware.sizes.extflash == 2 * 1024 * 1024 and firmware.sizes.flash_bytes < 64 * 1024
    inputs = random_inputs(2)
    result = run_firmware(firmware, target, inputs, timeout_s=30)
    expected = inputs ^ np.int8(0x5A)
    expected[:, 0] += 3  # weights[2] == 3, read from external flash
    np.testing.assert_array_equal(result.outputs, expected)


def test_external_flash_on_a_target_without_one(tmp_path):
    with pytest.raises(DoesNotFitError, match="cortex-m4 has no external flash"):
        build_variant(tmp_path, "cortex-m4", BIG_CONST.replace("SECTION", IN_EXTFLASH))


@pytest.mark.parametrize(
    "body, first_error",
    [
        (
            "int ek_model_run(const int8_t *i, int8_t *o) { return undeclared; }",
            r"model\.c:\d+:\d+: error: .*undeclared",
        ),
        (
            "int helper(void);\nint ek_model_run(const int8_t *i, int8_t *o) { return helper(); }",
            "undefined reference to `helper'",
        ),
    ],
)
def test_build_failure_is_a_toolchain_error_with_the_first_error(tmp_path, body, first_error):
    with pytest.raises(ToolchainError, match=first_error):
        build_variant(tmp_path, "cortex-m4", body)


def test_missing_compiler_says_make_setup(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match="make setup"):
        build_firmware(TINY_MODEL, load_target("cortex-m4"), tmp_path / "build")


def test_model_status_becomes_the_exit_code(tmp_path):
    firmware, target = build_variant(
        tmp_path, "cortex-m4", "int ek_model_run(const int8_t *i, int8_t *o) { o[0] = i[0]; return -7; }"
    )
    result = run_firmware(firmware, target, random_inputs(2), timeout_s=30)
    assert "returned nonzero" in result.exit_reason and result.outputs.shape == (2, RECORD_BYTES)


def test_fault_becomes_the_exit_code(tmp_path):
    firmware, target = build_variant(
        tmp_path,
        "cortex-m4",
        "int ek_model_run(const int8_t *i, int8_t *o) { o[0] = *(volatile int8_t *)0xF0000000u + i[0]; return 0; }",
    )
    result = run_firmware(firmware, target, random_inputs(1), timeout_s=30)
    assert not result.ok and "BusFault" in result.exit_reason and "BusFault" in result.console


def test_input_records_must_match_ek_input_size(tiny_firmware):
    wrong = np.zeros((2, RECORD_BYTES + 1), dtype=np.int8)
    with pytest.raises(EdgekitError, match="EK_INPUT_SIZE is 64"):
        run_firmware(tiny_firmware("cortex-m4"), load_target("cortex-m4"), wrong, timeout_s=30)


def test_hung_firmware_times_out(tmp_path):
    firmware, target = build_variant(
        tmp_path, "cortex-m4", "int ek_model_run(const int8_t *i, int8_t *o) { for (;;) { o[0] = i[0]; } }"
    )
    with pytest.raises(ToolchainError, match="hung on mps2-an386"):
        run_firmware(firmware, target, random_inputs(1), timeout_s=2)


ARENA_HEADER = (TINY_MODEL / "model.h").read_text().replace(
    "int ek_model_run",
    "extern int8_t tiny_arena[EK_INPUT_SIZE];\n#define EK_INPUT_BUFFER tiny_arena\n\nint ek_model_run",
)
ARENA_MODEL = """
int8_t tiny_arena[EK_INPUT_SIZE];
int ek_model_run(const int8_t *input, int8_t *output)
{
    for (int i = 0; i < EK_OUTPUT_SIZE; ++i) { output[i] = (int8_t)(input[i] ^ 0x5a); }
    return 0;
}
"""


def test_input_read_into_the_model_arena_saves_the_harness_buffer(tmp_path, tiny_firmware):
    """With EK_INPUT_BUFFER the harness reads records into the model's arena: no second copy."""
    firmware, target = build_variant(tmp_path, "cortex-m4", ARENA_MODEL, ARENA_HEADER)
    inputs = random_inputs(3)
    np.testing.assert_array_equal(run_firmware(firmware, target, inputs, timeout_s=30).outputs, inputs ^ np.int8(0x5A))
    assert firmware.sizes.bss < tiny_firmware("cortex-m4").sizes.bss


DEEP_STACK = """
int8_t big_arena[64 * 1024]; /* below the stack, so an overflow lands here and not outside RAM */
int ek_model_run(const int8_t *input, int8_t *output)
{
    volatile int8_t frame[9 * 1024];
    for (int i = 0; i < (int)sizeof frame; ++i) { frame[i] = input[i % EK_INPUT_SIZE]; }
    for (int i = 0; i < EK_OUTPUT_SIZE; ++i) { output[i] = frame[i] ^ big_arena[i]; }
    return 0;
}
"""


def test_stack_overflow_is_detected(tmp_path):
    firmware, target = build_variant(tmp_path, "cortex-m4", DEEP_STACK)
    result = run_firmware(firmware, target, random_inputs(1), timeout_s=30)
    assert "stack grew past its reserve" in result.exit_reason
    assert result.stack_high_water_bytes == result.stack_reserved_bytes == 8 * 1024
