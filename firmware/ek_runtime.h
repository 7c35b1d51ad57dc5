/*
 * The contract between generated model code, the harness and the host.
 *
 * Generated code includes this header for ek_mark(). The harness (main.c) and the startup
 * code exit with the EK_EXIT_* codes below; edgekit/emulate.py reads them from this file,
 * so each code is defined once, here, with the reason the host prints.
 */
#ifndef EK_RUNTIME_H
#define EK_RUNTIME_H

/*
 * Marks a point in the instruction stream. It does nothing; the QEMU instruction counter
 * logs the running instruction count every time execution reaches it. Generated code calls
 * it at the start of ek_model_run and after every layer, so the differences between
 * consecutive marks are per-layer instruction counts.
 */
void ek_mark(void);

/* Marks the start and the end of one inference; called by the harness only. */
void ek_inference_boundary(void);

/*
 * Defined by the harness, which knows how to reach the host: the semihosting harness (main.c)
 * ends the emulation, the board harness (board/board_main.c) prints over the UART and then waits.
 * The startup code calls ek_exit() with main()'s status and ek_fault() from every fault handler,
 * with the exception's name, its EK_EXIT_* code and the faulting instruction's address.
 */
#include <stdint.h>
__attribute__((noreturn)) void ek_exit(int status);
__attribute__((noreturn)) void ek_fault(const char *name, int status, uint32_t pc);

/* Exit codes: the firmware's exit status (QEMU returns it as its own). */
#define EK_EXIT_OK 0             /* all inferences ran and returned 0 */
#define EK_EXIT_IO 10            /* a semihosting file call failed */
#define EK_EXIT_INPUT_SIZE 11    /* input file length is not a multiple of EK_INPUT_SIZE */
#define EK_EXIT_MODEL_STATUS 12  /* ek_model_run returned nonzero for some input */
#define EK_EXIT_STACK_OVERFLOW 13 /* the stack grew past its reserve (paint guard overwritten) */
#define EK_EXIT_HARDFAULT 20     /* HardFault exception */
#define EK_EXIT_MEMMANAGE 21     /* MemManage fault (MPU or execute-never violation) */
#define EK_EXIT_BUSFAULT 22      /* BusFault (access to unmapped memory) */
#define EK_EXIT_USAGEFAULT 23    /* UsageFault (undefined instruction, unaligned, divide by 0) */
#define EK_EXIT_SECUREFAULT 24   /* SecureFault (Armv8-M security violation) */
#define EK_EXIT_UNEXPECTED_IRQ 25 /* an exception or interrupt without a handler */

#endif
