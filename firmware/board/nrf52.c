/*
 * nRF52840 board runtime: start the 64 MHz crystal oscillator (the UART's baud rate comes from the
 * high-frequency clock) and send through the legacy UART0, polled. Addresses from the nRF52840
 * Product Specification: CLOCK at 0x40000000, UART0 at 0x40002000, P0 GPIO at 0x50000000.
 * The core always runs at 64 MHz.
 */
#include "board.h"

#define CLOCK_TASKS_HFCLKSTART 0x40000000u
#define CLOCK_EVENTS_HFCLKSTARTED 0x40000100u
#define GPIO_P0_OUTSET 0x50000508u
#define GPIO_P0_DIRSET 0x50000518u
#define UART_TASKS_STARTTX (EK_UART_BASE + 0x008u)
#define UART_EVENTS_TXDRDY (EK_UART_BASE + 0x11Cu)
#define UART_ENABLE (EK_UART_BASE + 0x500u)
#define UART_PSELTXD (EK_UART_BASE + 0x50Cu)
#define UART_TXD (EK_UART_BASE + 0x51Cu)
#define UART_BAUDRATE (EK_UART_BASE + 0x524u)
#define UART_CONFIG (EK_UART_BASE + 0x56Cu)
#define UART_ENABLE_UART 4u
#define UART_BAUDRATE_115200 0x01D7E000u

#if EK_UART_BAUD != 115200
#error "nrf52.c knows the BAUDRATE register value for 115200 baud only"
#endif

uint32_t ek_board_init(void)
{
    EK_REG(CLOCK_EVENTS_HFCLKSTARTED) = 0u;
    EK_REG(CLOCK_TASKS_HFCLKSTART) = 1u;
    ek_wait_for(CLOCK_EVENTS_HFCLKSTARTED, 1u, 1u); /* on timeout the UART runs from the RC oscillator */
    EK_REG(GPIO_P0_OUTSET) = 1u << EK_UART_TX_PIN;  /* idle high before the UART takes the pin */
    EK_REG(GPIO_P0_DIRSET) = 1u << EK_UART_TX_PIN;
    EK_REG(UART_PSELTXD) = EK_UART_TX_PIN;           /* port 0, connected */
    EK_REG(UART_BAUDRATE) = UART_BAUDRATE_115200;
    EK_REG(UART_CONFIG) = 0u;                        /* 8N1, no flow control */
    EK_REG(UART_ENABLE) = UART_ENABLE_UART;
    EK_REG(UART_TASKS_STARTTX) = 1u;
    return 64000000u;
}

void ek_uart_write(const char *text, uint32_t length)
{
    for (uint32_t i = 0; i < length; ++i) {
        EK_REG(UART_EVENTS_TXDRDY) = 0u;
        EK_REG(UART_TXD) = (uint8_t)text[i];
        ek_wait_for(UART_EVENTS_TXDRDY, 1u, 1u);
    }
}
