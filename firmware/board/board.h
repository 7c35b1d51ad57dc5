/*
 * What a board runtime provides (one file per chip family: stm32.c, nrf52.c). Register-level,
 * no vendor HAL. The build passes the board's facts from targets/boards/<name>.toml as macros:
 * EK_UART_BASE, EK_UART_BAUD, EK_UART_TX_PORT/EK_UART_TX_PIN, EK_UART_AF, EK_UART_RCC_OFFSET/BIT,
 * EK_UART_LAYOUT_SR or EK_UART_LAYOUT_ISR, EK_UART_LPUART, and the EK_CLOCK_* PLL settings.
 *
 * Every wait on a hardware flag is bounded (EK_WAIT_LIMIT polls): an emulator without a clock model
 * (QEMU's STM32 RCC reads as zero) must not hang, and a board whose oscillator does not start must
 * still print. A runtime that gives up on a faster clock stays on the reset clock and says so
 * through ek_board_init's return value, which the UART's baud divider is computed from.
 */
#ifndef EK_BOARD_H
#define EK_BOARD_H

#include <stdint.h>

#define EK_WAIT_LIMIT 100000u

#define EK_REG(address) (*(volatile uint32_t *)(uintptr_t)(address))

/* Polls until (register & mask) == value, at most EK_WAIT_LIMIT times; returns 1 when it got there. */
static inline int ek_wait_for(uint32_t address, uint32_t mask, uint32_t value)
{
    for (uint32_t polls = 0; polls < EK_WAIT_LIMIT; ++polls) {
        if ((EK_REG(address) & mask) == value) {
            return 1;
        }
    }
    return 0;
}

/* Sets up the clocks and the UART; returns the core clock in Hz that the chip now runs at. */
uint32_t ek_board_init(void);
/* Sends `length` bytes over the UART, waiting for each to leave the transmit register. */
void ek_uart_write(const char *text, uint32_t length);

#endif
