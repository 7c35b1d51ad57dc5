"""The linker script for one target: `targets/linker.ld.in` filled with the target's regions.

Region origins come from the QEMU machine's map and lengths from the board, so a link that
succeeds here means the image fits the board. A target without external flash gets an empty
EXTFLASH region, so anything placed in `.ek_extflash` fails the link with a clear region name.
"""

from string import Template

from edgekit.paths import TARGETS_DIR
from edgekit.target import Target

TEMPLATE = TARGETS_DIR / "linker.ld.in"


def render_linker_script(target: Target, stack_bytes: int, heap_bytes: int) -> str:
    """The linker script text; stack and heap are reserved in RAM with these sizes."""
    external = target.external_weights
    return Template(TEMPLATE.read_text()).substitute(
        target_name=target.name,
        flash_origin=f"{target.flash.origin:#010x}",
        flash_length=target.flash.length,
        ram_origin=f"{target.ram.origin:#010x}",
        ram_length=target.ram.length,
        extflash_origin=f"{external.origin:#010x}" if external else "0x00000000",
        extflash_length=external.length if external else 0,
        stack_size=stack_bytes,
        heap_size=heap_bytes,
    )
