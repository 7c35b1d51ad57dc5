"""Board images: linked at each board's real addresses with the board runtime, and on the board QEMU
emulates (netduinoplus2) run unchanged, reporting over the emulated USART.

The tiny fixture model computes output = input ^ 0x5a; DS-CNN (MLPerf Tiny, int8 .tflite) is the real
model whose UART outputs must equal the integer reference interpreter and a semihosting build's.
"""

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

from edgekit.build import build_firmware
from edgekit.elf import symbol_address
from edgekit.emulate import run_firmware
from edgekit.errors import EdgekitError
from edgekit.target import load_target
from edgekit.uart_report import UartReport

pytestmark = pytest.mark.usefixtures("private_edgekit_home")

TINY_MODEL = Path(__file__).parent / "fixtures" / "tiny_model"
BOARDS = ["stm32f746g-disco", "nucleo-h743zi", "nrf52840-dk", "nucleo-l4r5zi", "netduinoplus2"]
DSCNN = "mlperf-tiny/dscnn_kws_int8.tflite"


def inputs(count, seed=0):
    return np.random.default_rng(seed).integers(-128, 128, (count, 64), dtype=np.int8)


@pytest.mark.parametrize("name", BOARDS)
def test_vector_table_at_the_boards_flash_origin(name, tmp_path):
    """The image starts with the vector table at the board's flash address: the initial stack pointer
    is the top of the board's RAM region's stack, the reset vector a Thumb address inside flash."""
    target = load_target(name)
    firmware = build_firmware(TINY_MODEL, target, tmp_path, test_inputs=inputs(2))
    assert symbol_address(firmware.elf, "ek_vectors") == target.flash.origin
    stack_pointer, reset = np.frombuffer(firmware.bin.read_bytes()[:8], dtype="<u4")
    assert target.ram.origin < stack_pointer <= target.ram.origin + target.ram.length
    assert reset & 1 and target.flash.origin <= reset < target.flash.origin + target.flash.length
    assert symbol_address(firmware.elf, "ek_test_inputs") >= target.flash.origin


def test_netduinoplus2_image_runs_in_qemu_over_the_usart(tmp_path):
    target = load_target("netduinoplus2")
    records = inputs(3)
    firmware = build_firmware(TINY_MODEL, target, tmp_path, test_inputs=records)
    result = run_firmware(firmware, target, records, 64, timeout_s=30)
    assert result.ok, result.console
    np.testing.assert_array_equal(result.outputs, records ^ 0x5A)
    assert "ek begin" in result.console and "ek end" in result.console
    assert 0 < result.stack_high_water_bytes < result.stack_reserved_bytes
    counts = result.instructions_per_inference
    assert len(counts) == 3 and counts[0] > 0 and len(set(counts)) == 1  # same work per input
    assert [sum(marks) for marks in result.marks] == [sum(result.marks[0])] * 3


def test_board_image_fault_is_reported_over_the_usart(tmp_path):
    model = tmp_path / "src"
    model.mkdir()
    (model / "model.h").write_text((TINY_MODEL / "model.h").read_text())
    (model / "model.c").write_text('#include "model.h"\nint ek_model_run(const int8_t *i, int8_t *o) '
                                   '{ o[0] = *(volatile int8_t *)0xF0000000u + i[0]; return 0; }\n')
    target = load_target("netduinoplus2")
    result = run_firmware(build_firmware(model, target, tmp_path / "build", test_inputs=inputs(1)), target,
                          inputs(1), timeout_s=30)
    assert not result.ok and "BusFault" in result.exit_reason
    assert "ek fault name=BusFault status=22 pc=" in result.console


def test_board_image_runs_only_its_own_inputs(tmp_path):
    target = load_target("netduinoplus2")
    firmware = build_firmware(TINY_MODEL, target, tmp_path, test_inputs=inputs(2))
    with pytest.raises(EdgekitError, match="runs the inputs it was compiled with"):
        run_firmware(firmware, target, inputs(5), timeout_s=30)


def test_uart_line_with_a_dropped_byte_is_refused():
    report = UartReport()
    report.add_line("ek begin clock_hz=16000000 inputs=1 input_bytes=4 output_bytes=4")
    data = bytes([1, 2, 3, 4])
    line = f"ek output index=0 status=0 cycles=5 crc32={zlib.crc32(data):08x} data={data.hex()}"
    with pytest.raises(EdgekitError, match="CRC"):
        report.add_line(line.replace("01020304", "010204"))  # one byte lost on the wire
    report.add_line(line)
    assert report.output_array().tolist() == [[1, 2, 3, 4]] and report.cycles == [5]


def edgekit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def dscnn_board_build(models_dir, tmp_path_factory):
    """DS-CNN compiled for the netduinoplus2 board (a real image: board runtime, UART harness)."""
    build = tmp_path_factory.mktemp("dscnn") / "netduinoplus2"
    compiled = edgekit("compile", models_dir / DSCNN, "--board", "netduinoplus2", "-o", build)
    assert compiled.returncode == 0, compiled.stderr
    return build


@pytest.mark.slow
def test_dscnn_on_netduinoplus2_equals_the_interpreter_and_the_semihosting_build(dscnn_board_build, models_dir,
                                                                                 tmp_path):
    """The board image, unchanged, in qemu -M netduinoplus2: outputs read from the USART are the
    integer interpreter's (edgekit run checks every byte) and the semihosting build's, and
    `edgekit run --json` gives the same fields."""
    semihosting_build = tmp_path / "cortex-m4"
    compiled = edgekit("compile", models_dir / DSCNN, "--target", "cortex-m4", "-o", semihosting_build)
    assert compiled.returncode == 0, compiled.stderr
    runs = {}
    for name, build in (("board", dscnn_board_build), ("semihosting", semihosting_build)):
        ran = edgekit("run", build, "--json", "--outputs", tmp_path / f"{name}.npy")
        assert ran.returncode == 0, ran.stderr
        runs[name] = json.loads(ran.stdout)
    board, semihosting = runs["board"], runs["semihosting"]
    assert board["bit_exact"] and board["mismatches"] == 0 and board["inputs"] == 2
    assert set(board) == set(semihosting)
    np.testing.assert_array_equal(np.load(tmp_path / "board.npy"), np.load(tmp_path / "semihosting.npy"))
    assert board["instructions_per_inference"] > 0 and len(board["layer_instructions"]) == len(
        semihosting["layer_instructions"])
    manifest = json.loads((dscnn_board_build / "edgekit.json").read_text())
    assert manifest["board"] == "netduinoplus2" and manifest["harness"] == "uart"


def pty_port() -> tuple[int, str]:
    """A pseudo-terminal standing in for a board's serial port: (the board's end, the port name)."""
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)
    return master, os.ttyname(slave)


@pytest.mark.slow
def test_monitor_reads_the_boards_serial_port(dscnn_board_build):
    """`edgekit monitor` on a serial port carrying the emulated board's UART: bit-exact; one changed
    output byte (with a CRC that matches it, as a wrong board would send) is a mismatch, exit 5."""
    from edgekit.monitor import monitor_build

    manifest = json.loads((dscnn_board_build / "edgekit.json").read_text())
    records = np.load(dscnn_board_build / "test_inputs.npy")[:manifest["embedded_test_inputs"]]
    emulated = run_firmware(dscnn_board_build / "firmware.elf", load_target("netduinoplus2"),
                            records.reshape(len(records), -1), timeout_s=60)
    board, port = pty_port()
    result = monitor_build(dscnn_board_build, port, timeout_s=30,
                           on_open=lambda: os.write(board, emulated.console.encode()))  # the board resets now
    assert result.bit_exact and result.inputs == len(records) and result.stack_bytes > 0
    assert result.clock_hz == 16_000_000  # QEMU has no RCC model: the runtime stayed on the HSI, and says so

    wrong = bytearray(emulated.outputs[0].tobytes())
    wrong[0] ^= 1
    lines = emulated.console.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("ek output index=0"))
    lines[first] = (f"ek output index=0 status=0 cycles=0 crc32={zlib.crc32(bytes(wrong)):08x} "
                    f"data={bytes(wrong).hex()}")
    board, port = pty_port()
    process = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "monitor", str(dscnn_board_build), "--port", port,
                                "--timeout", "30"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "waiting for" in process.stderr.readline()  # the port is open: the board may talk
    os.write(board, ("\n".join(lines) + "\n").encode())
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 5, stderr
    assert "bit-exact vs integer reference: NO (1/2)" in stdout
