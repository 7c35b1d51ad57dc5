/*
 * Reset and exception entry for Armv7-M and Armv8-M cores: the vector table (placed first in the
 * code region, at the board's flash origin or the emulator's address 0), a Reset_Handler that sets
 * up C (copy .data, zero .bss, enable the FPU, point VTOR at the table, paint the stack) and calls
 * main, and one fault entry that hands the exception's name and faulting address to the harness
 * (ek_fault: the emulator exits with a distinct code, a board prints it over the UART).
 */
#include <stdint.h>
#include <string.h>

#include "ek_runtime.h"
#include "stack.h"

int main(void);

/* Symbols defined by the generated linker script. */
extern uint32_t __ek_stack_end[];
extern uint8_t __ek_data_load[], __ek_data_start[], __ek_data_end[];
extern uint8_t __ek_bss_start[], __ek_bss_end[];

typedef void (*vector_t)(void);
extern const vector_t ek_vectors[16];

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)
#define SHCSR_FAULTS_ENABLE ((1u << 16) | (1u << 17) | (1u << 18)) /* MemManage, Bus, Usage */
#define SHCSR_SECUREFAULT_ENABLE (1u << 19)

/*
 * Called by fault_entry with the exception's stacked frame (r0-r3, r12, lr, pc, xpsr) and its
 * number (IPSR): names the exception and passes the faulting pc on.
 */
__attribute__((used, noreturn)) void ek_fault_report(const uint32_t *frame, uint32_t exception)
{
    uint32_t pc = frame[6];
    switch (exception) {
    case 3: ek_fault("HardFault", EK_EXIT_HARDFAULT, pc);
    case 4: ek_fault("MemManage", EK_EXIT_MEMMANAGE, pc);
    case 5: ek_fault("BusFault", EK_EXIT_BUSFAULT, pc);
    case 6: ek_fault("UsageFault", EK_EXIT_USAGEFAULT, pc);
    case 7: ek_fault("SecureFault", EK_EXIT_SECUREFAULT, pc);
    default: ek_fault("UnexpectedException", EK_EXIT_UNEXPECTED_IRQ, pc);
    }
}

/* Every fault and unexpected exception: find the stacked frame (MSP or PSP, from EXC_RETURN bit 2). */
__attribute__((naked)) static void fault_entry(void)
{
    __asm__ volatile(
        "tst lr, #4\n\t"
        "ite eq\n\t"
        "mrseq r0, msp\n\t"
        "mrsne r0, psp\n\t"
        "mrs r1, ipsr\n\t"
        "b ek_fault_report\n\t");
}

__attribute__((noreturn)) void Reset_Handler(void)
{
    memcpy(__ek_data_start, __ek_data_load, (size_t)(__ek_data_end - __ek_data_start));
    memset(__ek_bss_start, 0, (size_t)(__ek_bss_end - __ek_bss_start));
    SCB_VTOR = (uint32_t)(uintptr_t)ek_vectors;
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    SCB_SHCSR |= SHCSR_FAULTS_ENABLE;
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    SCB_SHCSR |= SHCSR_SECUREFAULT_ENABLE;
#endif
    ek_stack_paint();
    ek_exit(main());
}

/* The 16 core vectors; no peripheral interrupt is enabled, so none has a vector. */
__attribute__((section(".isr_vector"), used)) const vector_t ek_vectors[16] = {
    (vector_t)(uintptr_t)__ek_stack_end, /* initial stack pointer */
    Reset_Handler,
    fault_entry,                         /* NMI */
    fault_entry,                         /* HardFault */
    fault_entry,                         /* MemManage */
    fault_entry,                         /* BusFault */
    fault_entry,                         /* UsageFault */
    fault_entry,                         /* SecureFault: Armv8-M only; reserved on Armv7-M */
    0,
    0,
    0,
    fault_entry,                         /* SVCall */
    fault_entry,                         /* DebugMonitor */
    0,
    fault_entry,                         /* PendSV */
    fault_entry,                         /* SysTick */
};
