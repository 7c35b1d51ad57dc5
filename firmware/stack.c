/*
 * Stack painting. The linker script reserves [__ek_stack_start, __ek_stack_end) as a NOLOAD
 * section; the initial stack pointer is __ek_stack_end and the stack grows down.
 */
#include "stack.h"

#define EK_STACK_PAINT 0xC5A5C5A5u

extern uint32_t __ek_stack_start[];
extern uint32_t __ek_stack_end[];

/*
 * In assembly so that the stack pointer is read at the moment of painting: in C, the
 * compiler may read sp before it pushes the return address (shrink-wrapping) and the loop
 * would then overwrite it.
 */
void ek_stack_paint(void)
{
    uint32_t *word = __ek_stack_start;
    uint32_t *stack_pointer;
    __asm__ volatile(
        "mov %[sp_now], sp\n"
        "1:\n\t"
        "cmp %[word], %[sp_now]\n\t"
        "bhs 2f\n\t"
        "str %[paint], [%[word]], #4\n\t"
        "b 1b\n"
        "2:"
        : [word] "+r"(word), [sp_now] "=&r"(stack_pointer)
        : [paint] "r"(EK_STACK_PAINT)
        : "cc", "memory");
}

uint32_t ek_stack_high_water(void)
{
    const uint32_t *word = __ek_stack_start;
    while (word < __ek_stack_end && *word == EK_STACK_PAINT) {
        ++word;
    }
    return (uint32_t)((uintptr_t)__ek_stack_end - (uintptr_t)word);
}

uint32_t ek_stack_reserved(void)
{
    return (uint32_t)((uintptr_t)__ek_stack_end - (uintptr_t)__ek_stack_start);
}
