"""What a board image links besides the model: the board runtime's sources, the macros that carry
the board file's facts into them, and the test inputs embedded in flash.

An emulated CPU target links the semihosting harness (firmware/main.c), which reads its inputs from
host files. A board has no host: its harness (firmware/board/board_main.c) runs the test inputs
compiled into the image (`ek_test_inputs.c`) and prints its results over the UART.
"""

import re
from pathlib import Path

import numpy as np

from edgekit.errors import EdgekitError
from edgekit.target import Target

#: linked into every image
COMMON_SOURCES = ("startup.c", "stack.c", "ek_mark.c", "text.c")
#: the emulated CPU targets' harness
SEMIHOSTING_SOURCES = ("semihosting.c", "main.c")
#: board runtime family -> its C file in firmware/board/
RUNTIME_FILES = {"stm32f4": "stm32.c", "stm32f7": "stm32.c", "stm32h7": "stm32.c", "stm32l4": "stm32.c",
                 "nrf52": "nrf52.c"}
TEST_INPUTS_C = "ek_test_inputs.c"
TEST_INPUTS_H = "ek_test_inputs.h"
#: at most this many bytes of test inputs go into a board image (always at least one input)
TEST_INPUTS_FLASH_BYTES = 64 * 1024

_STM32_PIN = re.compile(r"P([A-K])(\d+)")
_NRF_PIN = re.compile(r"P0\.(\d+)")


def runtime_sources(target: Target) -> tuple[str, ...]:
    """The firmware/ sources an image for `target` links (board files as board/NAME.c)."""
    if not target.is_board:
        return COMMON_SOURCES + SEMIHOSTING_SOURCES
    return COMMON_SOURCES + ("board/board_main.c", f"board/{RUNTIME_FILES[target.board.runtime]}", TEST_INPUTS_C)


def runtime_defines(target: Target) -> list[str]:
    """-D flags with the board's UART and clock facts (empty for an emulated CPU target)."""
    if not target.is_board:
        return []
    board, uart = target.board, target.board.uart
    if board.runtime not in RUNTIME_FILES:
        raise EdgekitError(f"targets/boards/{board.name}.toml: runtime {board.runtime!r} is not one of "
                           f"{', '.join(RUNTIME_FILES)}")
    defines = {f"EK_FAMILY_{board.runtime.upper()}": 1, "EK_UART_BASE": f"{uart.base:#x}u", "EK_UART_BAUD": uart.baud}
    if board.runtime == "nrf52":
        match = _NRF_PIN.fullmatch(uart.tx_pin)
        if not match:
            raise EdgekitError(f"targets/boards/{board.name}.toml: tx_pin {uart.tx_pin!r} is not P0.NN")
        defines["EK_UART_TX_PIN"] = int(match[1])
    else:
        port, pin = _stm32_pin(uart.tx_pin, board.name)
        defines.update({
            "EK_UART_TX_PORT": port, "EK_UART_TX_PIN": pin,
            "EK_UART_AF": uart.alternate_function, "EK_UART_RCC_OFFSET": f"{uart.rcc_enable_offset:#x}u",
            "EK_UART_RCC_BIT": uart.rcc_enable_bit, f"EK_UART_LAYOUT_{uart.layout.upper()}": 1,
            "EK_UART_LPUART": int(uart.instance.startswith("LPUART")),
            "EK_UART_BUS_APB2": int(uart.bus == "apb2"),
        })
        if board.qspi:
            defines.update(_qspi_defines(board, target.external_weights))
        if "pll_m" in board.clock:
            defines.update({f"EK_CLOCK_{key.upper()}": int(board.clock[key]) for key in (
                "pll_m", "pll_n", "pll_p", "pll_q", "flash_wait_states", "apb1_divider", "apb2_divider",
                "overdrive")})
    return [f"-D{name}={value}" for name, value in defines.items()]


def _stm32_pin(pin: str, board_name: str) -> tuple[int, int]:
    match = _STM32_PIN.fullmatch(pin)
    if not match:
        raise EdgekitError(f"targets/boards/{board_name}.toml: pin {pin!r} is not like PA9")
    return ord(match[1]) - ord("A"), int(match[2])


def _qspi_defines(board, region) -> dict:
    """The QSPI pins as a C initializer of {port, pin, alternate function}, and the controller settings."""
    pins = []
    for entry in board.qspi["pins"]:
        pin, af = entry.split(":")
        pins.append("{%d,%d,%d}" % (*_stm32_pin(pin, board.name), int(af)))
    return {"EK_QSPI_PINS": '"' + ",".join(pins) + '"', "EK_QSPI_PRESCALER": board.qspi["prescaler"],
            "EK_QSPI_FSIZE": region.length.bit_length() - 2,  # the flash holds 2^(FSIZE+1) bytes
            "EK_QSPI_READ_INSTRUCTION": f"{board.qspi['read_instruction']:#x}"}


def embedded_inputs(records: np.ndarray) -> np.ndarray:
    """The input records (int8 [N, EK_INPUT_SIZE], see io_records.input_records) a board image carries:
    as many as fit TEST_INPUTS_FLASH_BYTES, and at least one."""
    if records.dtype != np.int8 or records.ndim != 2 or not len(records):
        raise EdgekitError(f"test inputs must be int8 records [N, EK_INPUT_SIZE], got {records.dtype} "
                           f"{list(records.shape)}")
    return records[:max(1, TEST_INPUTS_FLASH_BYTES // records.shape[1])]


def write_test_inputs(folder: Path, inputs: np.ndarray) -> None:
    """ek_test_inputs.h/.c: `ek_test_inputs[EK_TEST_INPUTS][EK_INPUT_SIZE]`, const, in flash."""
    count, size = inputs.shape
    (folder / TEST_INPUTS_H).write_text(
        "/* The test inputs the board harness runs, embedded in flash; written by edgekit. */\n"
        "#ifndef EK_TEST_INPUTS_H\n#define EK_TEST_INPUTS_H\n#include <stdint.h>\n"
        f"#define EK_TEST_INPUTS {count}\n"
        f"extern const int8_t ek_test_inputs[EK_TEST_INPUTS][{size}];\n#endif\n")
    rows = ",\n".join("{" + ",".join(map(str, record.tolist())) + "}" for record in inputs)
    (folder / TEST_INPUTS_C).write_text(
        f'#include "{TEST_INPUTS_H}"\n\n'
        f"const int8_t ek_test_inputs[EK_TEST_INPUTS][{size}] __attribute__((aligned(8))) = {{\n{rows}\n}};\n")
