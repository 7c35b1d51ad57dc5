/*
 * Stack high-water measurement by painting: fill the unused stack with a pattern at reset,
 * then find the deepest word that no longer holds it. QEMU has no cycle-accurate tracing,
 * and painting works the same way on a real board.
 */
#ifndef EK_STACK_H
#define EK_STACK_H

#include <stdint.h>

/* Fills the stack reserve below the caller's frame with the paint pattern. */
void ek_stack_paint(void);
/* Bytes of stack used at the deepest point since ek_stack_paint(), measured from the top. */
uint32_t ek_stack_high_water(void);
/* Bytes reserved for the stack by the linker script. */
uint32_t ek_stack_reserved(void);

#endif
