"""CPUs load from targets/cpus/, boards from targets/boards/; a CPU target keeps its default board's
budget at the emulator's addresses, a board target links at the board's real addresses."""

import pytest

from edgekit.errors import EdgekitError, UnknownNameError
from edgekit.target import list_boards, list_targets, load_board, load_target

BOARDS = ["stm32f746g-disco", "nucleo-h743zi", "nrf52840-dk", "nucleo-l4r5zi", "netduinoplus2"]


def test_all_targets_load():
    names = list_targets()
    assert {"cortex-m4", "cortex-m7", "cortex-m55"} <= set(names)
    for name in names:
        target = load_target(name)
        assert target.name == name and target.harness == "semihosting"
        assert target.flash.length > 0 and target.ram.length > 0
        assert target.qemu_machine and target.cpu_flags


def test_cortex_m7_is_the_stm32f746_disco_budget():
    target = load_target("cortex-m7")
    assert target.ram.length == 320 * 1024
    assert target.flash.length == 1024 * 1024
    assert target.external_weights.length == 16 * 1024 * 1024
    assert target.qemu_machine == "mps2-an500"
    assert "-mcpu=cortex-m7" in target.cpu_flags
    assert target.flash.origin == 0 and target.flash.board_origin == 0x0800_0000  # emulator map, board address
    assert target.board.name == "stm32f746g-disco"


def test_cpu_features_for_kernel_selection():
    assert load_target("cortex-m55").mve and load_target("cortex-m55").dsp
    assert not load_target("cortex-m7").mve and load_target("cortex-m7").dsp
    assert load_target("cortex-m4").fpu == "fpv4-sp-d16"


def test_keep_target_without_external_flash():
    """A target may have no external-weights region."""
    assert load_target("cortex-m4").external_weights is None


@pytest.mark.parametrize("name", BOARDS)
def test_board_targets_link_at_the_boards_addresses(name):
    board = load_board(name)
    target = load_target(name)
    assert target.harness == "uart" and target.is_board and target.board == board
    assert target.flash.origin == target.flash.board_origin
    assert target.cpu_flags == load_target(board.cpu).cpu_flags


def test_board_memory_maps_from_the_reference_manuals():
    """Addresses and sizes as RM0385, RM0433, RM0432, RM0090 and the nRF52840 PS give them."""
    expected = {  # board: (flash origin, flash bytes, linked RAM origin, RAM bytes)
        "stm32f746g-disco": (0x0800_0000, 1 << 20, 0x2000_0000, 320 << 10),
        "nucleo-h743zi": (0x0800_0000, 2 << 20, 0x2400_0000, 512 << 10),
        "nrf52840-dk": (0x0000_0000, 1 << 20, 0x2000_0000, 256 << 10),
        "nucleo-l4r5zi": (0x0800_0000, 2 << 20, 0x2000_0000, 640 << 10),
        "netduinoplus2": (0x0800_0000, 1 << 20, 0x2000_0000, 128 << 10),
    }
    for name, (flash_origin, flash_bytes, ram_origin, ram_bytes) in expected.items():
        target = load_target(name)
        assert (target.flash.origin, target.flash.length, target.ram.origin, target.ram.length) == (
            flash_origin, flash_bytes, ram_origin, ram_bytes), name
    assert load_target("stm32f746g-disco").external_weights.origin == 0x9000_0000
    assert load_target("netduinoplus2").qemu_machine == "netduinoplus2"
    assert load_target("nucleo-h743zi").qemu_machine is None


def test_unknown_target_lists_cpus_and_boards():
    with pytest.raises(UnknownNameError) as error:
        load_target("cortex-m99")
    message = str(error.value)
    assert "cortex-m99" in message and "\n" not in message
    for name in list_targets() + list_boards():
        assert name in message


def test_board_without_runtime_says_use_its_cpu():
    with pytest.raises(EdgekitError, match="--target cortex-m55"):
        load_target("mps3-an547")
