"""Targets load from targets/*.toml, and an unknown name lists the ones that exist."""

import pytest

from edgekit.errors import UnknownNameError
from edgekit.target import list_targets, load_target


def test_all_targets_load():
    names = list_targets()
    assert {"cortex-m4", "cortex-m7", "cortex-m55"} <= set(names)
    for name in names:
        target = load_target(name)
        assert target.name == name
        assert target.flash.length > 0 and target.ram.length > 0
        assert target.qemu_machine and target.cpu_flags


def test_cortex_m7_is_the_stm32f746_disco_budget():
    target = load_target("cortex-m7")
    assert target.ram.length == 320 * 1024
    assert target.flash.length == 1024 * 1024
    assert target.external_weights.length == 16 * 1024 * 1024
    assert target.qemu_machine == "mps2-an500"
    assert "-mcpu=cortex-m7" in target.cpu_flags


def test_keep_target_without_external_flash():
    """A target may have no external-weights region."""
    assert load_target("cortex-m4").external_weights is None


def test_unknown_target_lists_the_available_ones():
    with pytest.raises(UnknownNameError) as error:
        load_target("cortex-m99")
    message = str(error.value)
    assert "cortex-m99" in message and "\n" not in message
    for name in list_targets():
        assert name in message
