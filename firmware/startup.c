/*
 * Reset and exception entry for Armv7-M and Armv8-M cores: the vector table, a Reset_Handler
 * that sets up C (copy .data, zero .bss, enable the FPU, paint the stack) and calls main, and
 * fault handlers that end the emulation with a distinct exit code instead of hanging.
 */
#include <stdint.h>
#include <string.h>

#include "ek_runtime.h"
#include "semihosting.h"
#include "stack.h"

int main(void);

/* Symbols defined by the generated linker script. */
extern uint32_t __ek_stack_end[];
extern uint8_t __ek_data_load[], __ek_data_start[], __ek_data_end[];
extern uint8_t __ek_bss_start[], __ek_bss_end[];

#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_SHCSR (*(volatile uint32_t *)0xE000ED24u)
#define CPACR_CP10_CP11_FULL (0xFu << 20)
#define SHCSR_FAULTS_ENABLE ((1u << 16) | (1u << 17) | (1u << 18)) /* MemManage, Bus, Usage */
#define SHCSR_SECUREFAULT_ENABLE (1u << 19)

static __attribute__((noreturn)) void fail(const char *message, int status)
{
    ek_sh_write0(message);
    ek_sh_exit(status);
}

static void nmi_or_unexpected_handler(void) { fail("edgekit: unexpected exception\n", EK_EXIT_UNEXPECTED_IRQ); }
static void hard_fault_handler(void) { fail("edgekit: HardFault\n", EK_EXIT_HARDFAULT); }
static void mem_manage_handler(void) { fail("edgekit: MemManage fault\n", EK_EXIT_MEMMANAGE); }
static void bus_fault_handler(void) { fail("edgekit: BusFault\n", EK_EXIT_BUSFAULT); }
static void usage_fault_handler(void) { fail("edgekit: UsageFault\n", EK_EXIT_USAGEFAULT); }
static void secure_fault_handler(void) { fail("edgekit: SecureFault\n", EK_EXIT_SECUREFAULT); }

__attribute__((noreturn)) void Reset_Handler(void)
{
    memcpy(__ek_data_start, __ek_data_load, (size_t)(__ek_data_end - __ek_data_start));
    memset(__ek_bss_start, 0, (size_t)(__ek_bss_end - __ek_bss_start));
#if defined(__ARM_FP) || defined(__ARM_FEATURE_MVE)
    SCB_CPACR |= CPACR_CP10_CP11_FULL;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    SCB_SHCSR |= SHCSR_FAULTS_ENABLE;
#if defined(__ARM_ARCH_8M_MAIN__) || defined(__ARM_ARCH_8_1M_MAIN__)
    SCB_SHCSR |= SHCSR_SECUREFAULT_ENABLE;
#endif
    ek_stack_paint();
    ek_sh_exit(main());
}

typedef void (*vector_t)(void);

/* The 16 core vectors; no peripheral interrupt is enabled, so none has a vector. */
__attribute__((section(".isr_vector"), used)) const vector_t ek_vectors[16] = {
    (vector_t)(uintptr_t)__ek_stack_end, /* initial stack pointer */
    Reset_Handler,
    nmi_or_unexpected_handler,           /* NMI */
    hard_fault_handler,
    mem_manage_handler,
    bus_fault_handler,
    usage_fault_handler,
    secure_fault_handler,                /* Armv8-M only; reserved on Armv7-M */
    0,
    0,
    0,
    nmi_or_unexpected_handler,           /* SVCall */
    nmi_or_unexpected_handler,           /* DebugMonitor */
    0,
    nmi_or_unexpected_handler,           /* PendSV */
    nmi_or_unexpected_handler,           /* SysTick */
};
