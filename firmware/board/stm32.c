/*
 * STM32 board runtime: system clock, the TX pin's alternate function and a polled USART/LPUART.
 * Register addresses and bit positions are from the reference manuals: RM0090 (F405), RM0385
 * (F746), RM0433 (H743), RM0432 (L4R5). The family macro (EK_FAMILY_STM32F4, _F7, _H7, _L4)
 * picks the RCC and GPIO addresses.
 *
 * Clock: on F4/F7 the PLL is fed from the 16 MHz HSI (no dependence on the board's crystal) with
 * the factors from the board file; F7 above 180 MHz also needs the regulator's over-drive. H7 and
 * L4 keep their reset clock (HSI 64 MHz, MSI 4 MHz), see their board files.
 *
 * A board with a [qspi] section (the F746 DISCO) gets its QUADSPI controller switched to
 * memory-mapped mode, so the weights linked at 0x90000000 read like internal flash.
 */
#include "board.h"

#if defined(EK_FAMILY_STM32F4) || defined(EK_FAMILY_STM32F7)
#define RCC_BASE 0x40023800u
#define GPIO_BASE 0x40020000u
#define RCC_GPIO_ENABLE (RCC_BASE + 0x30u) /* RCC_AHB1ENR: bit n enables port n */
#define RESET_CLOCK_HZ 16000000u           /* HSI */
#elif defined(EK_FAMILY_STM32H7)
#define RCC_BASE 0x58024400u
#define GPIO_BASE 0x58020000u
#define RCC_GPIO_ENABLE (RCC_BASE + 0xE0u) /* RCC_AHB4ENR */
#define RESET_CLOCK_HZ 64000000u           /* HSI, divided by 1 */
#elif defined(EK_FAMILY_STM32L4)
#define RCC_BASE 0x40021000u
#define GPIO_BASE 0x48000000u
#define RCC_GPIO_ENABLE (RCC_BASE + 0x4Cu) /* RCC_AHB2ENR */
#define RESET_CLOCK_HZ 4000000u            /* MSI range 6 */
#define RCC_APB1ENR1 (RCC_BASE + 0x58u)
#define RCC_APB1ENR1_PWREN (1u << 28)
#define PWR_CR2 0x40007004u
#define PWR_CR2_IOSV (1u << 9) /* VDDIO2 valid: port G pins work */
#else
#error "define the STM32 family: EK_FAMILY_STM32F4, EK_FAMILY_STM32F7, EK_FAMILY_STM32H7 or EK_FAMILY_STM32L4"
#endif

#define GPIO_PORT(port) (GPIO_BASE + 0x400u * (uint32_t)(port))
#define GPIO_MODER 0x00u
#define GPIO_OSPEEDR 0x08u
#define GPIO_AFR 0x20u /* AFRL; AFRH follows at 0x24 */

#if defined(EK_UART_LAYOUT_SR) /* STM32F4 USART */
#define UART_STATUS 0x00u      /* USART_SR */
#define UART_DATA 0x04u        /* USART_DR */
#define UART_BRR 0x08u
#define UART_CR1 0x0Cu
#define UART_CR1_ENABLE ((1u << 13) | (1u << 3)) /* UE, TE */
#else                          /* F7/H7/L4 USART and LPUART */
#define UART_STATUS 0x1Cu      /* USART_ISR */
#define UART_DATA 0x28u        /* USART_TDR */
#define UART_BRR 0x0Cu
#define UART_CR1 0x00u
#define UART_CR1_ENABLE ((1u << 0) | (1u << 3)) /* UE, TE */
#endif
#define UART_STATUS_TXE (1u << 7)

#if defined(EK_FAMILY_STM32F4) || defined(EK_FAMILY_STM32F7)
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CR_PLLON (1u << 24)
#define RCC_CR_PLLRDY (1u << 25)
#define RCC_PLLCFGR (RCC_BASE + 0x04u)
#define RCC_CFGR (RCC_BASE + 0x08u)
#define RCC_CFGR_SW_PLL 0x2u
#define RCC_CFGR_SWS_MASK (0x3u << 2)
#define RCC_CFGR_SWS_PLL (0x2u << 2)
#define RCC_APB1ENR (RCC_BASE + 0x40u)
#define RCC_APB1ENR_PWREN (1u << 28)
#define FLASH_ACR 0x40023C00u
#define FLASH_ACR_PREFETCH_CACHE ((1u << 8) | (1u << 9)) /* PRFTEN, and ICEN (F4) / ARTEN (F7) */
#define PWR_CR1 0x40007000u
#define PWR_CSR1 0x40007004u
#define PWR_CR1_ODEN (1u << 16)
#define PWR_CR1_ODSWEN (1u << 17)
#define PWR_CSR1_ODRDY (1u << 16)
#define PWR_CSR1_ODSWRDY (1u << 17)

/* APB prescaler field value for a divider of 1, 2, 4, 8 or 16. */
static uint32_t apb_prescaler(uint32_t divider)
{
    uint32_t code = 0u;
    while (divider > 1u) {
        divider >>= 1;
        code = code ? code + 1u : 4u;
    }
    return code;
}

static uint32_t apb1_hz = RESET_CLOCK_HZ;
static uint32_t apb2_hz = RESET_CLOCK_HZ;

/* HSI -> PLL -> SYSCLK; returns SYSCLK, which stays at the HSI's 16 MHz if a step does not finish. */
static uint32_t clock_init(void)
{
    const uint32_t pll_hz = RESET_CLOCK_HZ / EK_CLOCK_PLL_M * EK_CLOCK_PLL_N / EK_CLOCK_PLL_P;
    EK_REG(RCC_PLLCFGR) = EK_CLOCK_PLL_M | (EK_CLOCK_PLL_N << 6) | ((EK_CLOCK_PLL_P / 2u - 1u) << 16)
                          | (EK_CLOCK_PLL_Q << 24); /* PLLSRC = 0: HSI */
    EK_REG(RCC_CR) |= RCC_CR_PLLON;
    if (!ek_wait_for(RCC_CR, RCC_CR_PLLRDY, RCC_CR_PLLRDY)) {
        return RESET_CLOCK_HZ;
    }
#if EK_CLOCK_OVERDRIVE
    EK_REG(RCC_APB1ENR) |= RCC_APB1ENR_PWREN;
    EK_REG(PWR_CR1) |= PWR_CR1_ODEN;
    if (!ek_wait_for(PWR_CSR1, PWR_CSR1_ODRDY, PWR_CSR1_ODRDY)) {
        return RESET_CLOCK_HZ;
    }
    EK_REG(PWR_CR1) |= PWR_CR1_ODSWEN;
    if (!ek_wait_for(PWR_CSR1, PWR_CSR1_ODSWRDY, PWR_CSR1_ODSWRDY)) {
        return RESET_CLOCK_HZ;
    }
#endif
    EK_REG(FLASH_ACR) = EK_CLOCK_FLASH_WAIT_STATES | FLASH_ACR_PREFETCH_CACHE;
    if ((EK_REG(FLASH_ACR) & 0xFu) != EK_CLOCK_FLASH_WAIT_STATES) {
        return RESET_CLOCK_HZ;
    }
    EK_REG(RCC_CFGR) = (apb_prescaler(EK_CLOCK_APB1_DIVIDER) << 10) | (apb_prescaler(EK_CLOCK_APB2_DIVIDER) << 13)
                       | RCC_CFGR_SW_PLL;
    if (!ek_wait_for(RCC_CFGR, RCC_CFGR_SWS_MASK, RCC_CFGR_SWS_PLL)) {
        EK_REG(RCC_CFGR) = 0u; /* back to HSI, undivided buses */
        return RESET_CLOCK_HZ;
    }
    apb1_hz = pll_hz / EK_CLOCK_APB1_DIVIDER;
    apb2_hz = pll_hz / EK_CLOCK_APB2_DIVIDER;
    return pll_hz;
}

static uint32_t uart_clock_hz(void)
{
    return EK_UART_BUS_APB2 ? apb2_hz : apb1_hz;
}
#else
static uint32_t clock_init(void)
{
    return RESET_CLOCK_HZ;
}

static uint32_t uart_clock_hz(void)
{
    return RESET_CLOCK_HZ; /* buses undivided at reset */
}
#endif

/* Hands `pin` of GPIO port `port` (0 = A) to alternate function `af`, at very high speed. */
static void pin_alternate(uint32_t port, uint32_t pin, uint32_t af)
{
    const uint32_t base = GPIO_PORT(port);
    EK_REG(RCC_GPIO_ENABLE) |= 1u << port;
    (void)EK_REG(RCC_GPIO_ENABLE); /* a read-back delays the first GPIO access until its clock runs */
    const uint32_t afr = base + GPIO_AFR + 4u * (pin / 8u);
    EK_REG(afr) = (EK_REG(afr) & ~(0xFu << (4u * (pin % 8u)))) | (af << (4u * (pin % 8u)));
    EK_REG(base + GPIO_OSPEEDR) |= 0x3u << (2u * pin);
    EK_REG(base + GPIO_MODER) = (EK_REG(base + GPIO_MODER) & ~(0x3u << (2u * pin))) | (0x2u << (2u * pin));
}

#if defined(EK_QSPI_PINS)
#define RCC_AHB3ENR (RCC_BASE + 0x38u)
#define RCC_AHB3ENR_QSPIEN (1u << 1)
#define QUADSPI_CR 0xA0001000u
#define QUADSPI_DCR 0xA0001004u
#define QUADSPI_SR 0xA0001008u
#define QUADSPI_CCR 0xA0001014u
#define QUADSPI_SR_BUSY (1u << 5)
/* CCR for memory-mapped reads: FMODE = 3, data/address/instruction on one line each, 24-bit address. */
#define QUADSPI_CCR_MEMORY_MAPPED ((3u << 26) | (1u << 24) | (2u << 12) | (1u << 10) | (1u << 8))

/* Maps the external flash at 0x90000000 so the weights placed there (.ek_extflash) can be read. */
static void qspi_memory_mapped(void)
{
    static const uint8_t pins[][3] = {EK_QSPI_PINS}; /* {port, pin, alternate function} */
    EK_REG(RCC_AHB3ENR) |= RCC_AHB3ENR_QSPIEN;
    (void)EK_REG(RCC_AHB3ENR);
    for (uint32_t i = 0; i < sizeof pins / sizeof pins[0]; ++i) {
        pin_alternate(pins[i][0], pins[i][1], pins[i][2]);
    }
    EK_REG(QUADSPI_DCR) = (uint32_t)EK_QSPI_FSIZE << 16;
    EK_REG(QUADSPI_CR) = ((uint32_t)EK_QSPI_PRESCALER << 24) | 1u; /* EN */
    ek_wait_for(QUADSPI_SR, QUADSPI_SR_BUSY, 0u);
    EK_REG(QUADSPI_CCR) = QUADSPI_CCR_MEMORY_MAPPED | EK_QSPI_READ_INSTRUCTION;
}
#endif

uint32_t ek_board_init(void)
{
    uint32_t core_hz = clock_init();
#if defined(EK_FAMILY_STM32L4)
    EK_REG(RCC_APB1ENR1) |= RCC_APB1ENR1_PWREN;
    EK_REG(PWR_CR2) |= PWR_CR2_IOSV;
#endif
    pin_alternate(EK_UART_TX_PORT, EK_UART_TX_PIN, EK_UART_AF);
#if defined(EK_QSPI_PINS)
    qspi_memory_mapped();
#endif
    EK_REG(RCC_BASE + EK_UART_RCC_OFFSET) |= 1u << EK_UART_RCC_BIT;
    (void)EK_REG(RCC_BASE + EK_UART_RCC_OFFSET);
#if EK_UART_LPUART
    EK_REG(EK_UART_BASE + UART_BRR) = (uint32_t)(((uint64_t)uart_clock_hz() * 256u + EK_UART_BAUD / 2u) / EK_UART_BAUD);
#else
    EK_REG(EK_UART_BASE + UART_BRR) = (uart_clock_hz() + EK_UART_BAUD / 2u) / EK_UART_BAUD;
#endif
    EK_REG(EK_UART_BASE + UART_CR1) = UART_CR1_ENABLE;
    return core_hz;
}

void ek_uart_write(const char *text, uint32_t length)
{
    for (uint32_t i = 0; i < length; ++i) {
        ek_wait_for(EK_UART_BASE + UART_STATUS, UART_STATUS_TXE, UART_STATUS_TXE);
        EK_REG(EK_UART_BASE + UART_DATA) = (uint8_t)text[i];
    }
}
