"""`edgekit flash`: the exact pyOCD / OpenOCD / st-flash commands per board, checked against pyOCD's
own target list and the configuration files Debian's openocd package installs; one-line errors
when no probe is attached or a build cannot be flashed."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgekit.build import build_firmware
from edgekit.build_folder import write_manifest
from edgekit.target import list_boards, load_board, load_target

pytestmark = pytest.mark.usefixtures("private_edgekit_home")

TINY_MODEL = Path(__file__).parent / "fixtures" / "tiny_model"
BOARDS = ["stm32f746g-disco", "nucleo-h743zi", "nrf52840-dk", "nucleo-l4r5zi", "netduinoplus2"]
OPENOCD_SCRIPTS = Path("/usr/share/openocd/scripts")  # Debian's openocd package


def edgekit(*args) -> subprocess.CompletedProcess:
    """The CLI as a user runs it (a subprocess)."""
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def edgekit_here(capsys, *args) -> subprocess.CompletedProcess:
    """The CLI's main() in this process (no interpreter start-up): exit code, stdout, stderr."""
    from edgekit.cli import main

    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, code, captured.out, captured.err)


def board_build(folder: Path, name: str, model: Path = TINY_MODEL) -> Path:
    """A real image for the board (the tiny model) with the manifest fields flash reads."""
    firmware = build_firmware(model, load_target(name), folder,
                              test_inputs=np.zeros((1, 64), dtype=np.int8))
    write_manifest(folder, {"target": name, "sizes": firmware.sizes.__dict__})
    return folder


def test_pyocd_target_names_are_pyocds():
    """Built-in names must be in pyOCD's own list; the others must not be (they come from a CMSIS
    pack, and `flash` says to install it)."""
    from pyocd.target import TARGET

    for name in BOARDS:
        probe = load_board(name).probe
        assert (probe.pyocd in TARGET) == probe.pyocd_builtin, (name, probe.pyocd)


def test_openocd_configs_are_installed():
    assert OPENOCD_SCRIPTS.is_dir(), "install Debian's openocd (make setup)"
    for name in list_boards():
        for config in load_board(name).probe.openocd:
            assert (OPENOCD_SCRIPTS / config).is_file(), (name, config)


@pytest.mark.parametrize("name", BOARDS)
def test_dry_run_prints_each_probes_command(name, tmp_path, capsys):
    build = board_build(tmp_path / name, name)
    board = load_board(name)
    result = edgekit_here(capsys, "flash", build, "--dry-run")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"pyocd flash -t {board.probe.pyocd} {build}/firmware.elf" in lines
    assert any(f"pyocd pack install {board.probe.pyocd}" in line for line in lines) != board.probe.pyocd_builtin
    configs = " ".join(f"-f {config}" for config in board.probe.openocd)
    assert f"openocd {configs} -c 'program {build}/firmware.elf verify reset exit'" in lines
    stlink = f"st-flash --reset write {build}/firmware.bin 0x8000000"
    assert (stlink in lines) == board.probe.stlink
    doc = json.loads(edgekit_here(capsys, "flash", build, "--dry-run", "--json", "--probe", "openocd").stdout)
    assert doc[0]["commands"][0][:2] == ["openocd", "-f"]


def test_no_probe_is_one_line_saying_what_was_looked_for(tmp_path):
    from edgekit.flash import _pyocd_probes

    if _pyocd_probes():
        pytest.skip("a debug probe is attached to this machine: not flashing it from a test")
    build = board_build(tmp_path / "b", "nucleo-h743zi")
    result = edgekit("flash", build)
    assert result.returncode == 4 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "pyOCD found no" in result.stderr and "st-info" in result.stderr
    result = edgekit("flash", build, "--probe", "openocd")
    assert result.returncode == 4 and result.stderr.count("\n") == 1
    assert "board/st_nucleo_h743zi.cfg" in result.stderr


def test_qspi_weights_need_openocd(tmp_path, capsys):
    """A DISCO build with weights in QSPI flash: OpenOCD (whose board config drives the QSPI) flashes
    the ELF with both; pyOCD and st-flash are refused with the reason."""
    model = tmp_path / "src"
    model.mkdir()
    (model / "model.h").write_text((TINY_MODEL / "model.h").read_text())
    (model / "model.c").write_text(
        '#include "model.h"\n'
        'static const int8_t table[4096] __attribute__((section(".ek_extflash"))) = {1};\n'
        "int ek_model_run(const int8_t *i, int8_t *o) { for (int k = 0; k < 64; ++k) o[k] = i[k] ^ table[k]; "
        "return 0; }\n")
    build = board_build(tmp_path / "b", "stm32f746g-disco", model)
    for probe in ("pyocd", "stlink"):
        result = edgekit_here(capsys, "flash", build, "--dry-run", "--probe", probe)
        assert result.returncode == 2 and "qspi flash at 0x90000000" in result.stderr and "--probe openocd" in result.stderr
    result = edgekit_here(capsys, "flash", build, "--dry-run")
    assert result.returncode == 0 and result.stdout.count("openocd -f board/stm32f746g-disco.cfg") == 1
    assert "pyocd flash" not in result.stdout and "4,096 B of weights" in result.stdout


def test_emulated_build_is_not_flashable(tmp_path, capsys):
    folder = tmp_path / "b"
    firmware = build_firmware(TINY_MODEL, load_target("cortex-m7"), folder)
    write_manifest(folder, {"target": "cortex-m7", "sizes": firmware.sizes.__dict__})
    result = edgekit_here(capsys, "flash", folder, "--dry-run")
    assert result.returncode == 2 and "--board stm32f746g-disco" in result.stderr
