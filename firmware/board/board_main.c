/*
 * The board harness: runs the model on the test inputs embedded in flash (ek_test_inputs.c, written
 * by the build) and prints one line per event over the UART, so that `edgekit monitor` (a board on a
 * serial port) and `edgekit run` (the same image in QEMU) read the same report:
 *
 *   ek begin clock_hz=168000000 inputs=2 input_bytes=64 output_bytes=64
 *   ek output index=0 status=0 cycles=123456 crc32=89abcdef data=<output bytes, two hex digits each>
 *   ek end inferences=2 failed=0 stack_high_water_bytes=312 stack_reserved_bytes=8192 exit=0
 *   ek fault name=HardFault status=20 pc=0800012c        (instead of the rest, when one happens)
 *
 * cycles is the DWT cycle counter around ek_model_run (0 where it does not count, as in QEMU); crc32
 * is the IEEE 802.3 CRC of the output bytes, so a corrupted line is detected. After `ek end` the
 * core waits for interrupts forever: a board has nowhere to return to.
 */
#include <stdint.h>
#include <string.h>

#include "board.h"
#include "ek_runtime.h"
#include "ek_test_inputs.h"
#include "model.h"
#include "output_record.h"
#include "stack.h"
#include "text.h"

#define DEMCR 0xE000EDFCu
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL 0xE0001000u
#define DWT_CYCCNT 0xE0001004u
#define DWT_LAR 0xE0001FB0u /* Cortex-M7: the DWT is locked until this key is written */
#define DWT_LAR_KEY 0xC5ACCE55u

static void print(const char *text)
{
    ek_uart_write(text, (uint32_t)strlen(text));
}

/* Prints " name=value" in decimal. */
static void print_field(const char *name, int32_t value)
{
    char digits[12];
    print(" ");
    print(name);
    print("=");
    ek_uart_write(digits, (uint32_t)ek_format_decimal(digits, value));
}

static void print_hex32(uint32_t value)
{
    char digits[8];
    ek_uart_write(digits, (uint32_t)ek_format_hex32(digits, value));
}

static uint32_t crc32(const int8_t *data, uint32_t length)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (uint32_t i = 0; i < length; ++i) {
        crc ^= (uint8_t)data[i];
        for (int bit = 0; bit < 8; ++bit) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}

static void cycle_counter_start(void)
{
    EK_REG(DEMCR) |= DEMCR_TRCENA;
    EK_REG(DWT_LAR) = DWT_LAR_KEY;
    EK_REG(DWT_CYCCNT) = 0u;
    EK_REG(DWT_CTRL) |= 1u; /* CYCCNTENA */
}

#if defined(EK_INPUT_BY_PATCH)
static const int8_t *window_frame; /* the current test input, played back patch by patch */

int ek_model_input_window(int32_t row0, int32_t col0, int32_t rows, int32_t cols, int8_t *dst)
{
    if (row0 < 0 || col0 < 0 || rows < 0 || cols < 0 || row0 + rows > EK_INPUT_HEIGHT
        || col0 + cols > EK_INPUT_WIDTH) {
        return 1;
    }
    for (int32_t r = 0; r < rows; ++r) {
        memcpy(dst + r * cols * EK_INPUT_CHANNELS,
               window_frame + ((row0 + r) * EK_INPUT_WIDTH + col0) * EK_INPUT_CHANNELS,
               (size_t)(cols * EK_INPUT_CHANNELS));
    }
    return 0;
}
#endif


/* Runs test input `index` and prints its line; returns the model's status. */
static int run_one(int32_t index)
{
    const int8_t *input = ek_test_inputs[index];
#if defined(EK_INPUT_BY_PATCH)
    window_frame = input;
    input = 0;
#elif defined(EK_INPUT_BUFFER)
    memcpy(EK_INPUT_BUFFER, input, EK_INPUT_SIZE);
    input = EK_INPUT_BUFFER;
#endif
    ek_inference_boundary();
    uint32_t start = EK_REG(DWT_CYCCNT);
    int status = ek_model_run(input, OUTPUT_RECORD);
    uint32_t cycles = EK_REG(DWT_CYCCNT) - start;
    ek_inference_boundary();
    print("ek output");
    print_field("index", index);
    print_field("status", status);
    print_field("cycles", (int32_t)cycles);
    print(" crc32=");
    print_hex32(crc32(OUTPUT_RECORD, EK_OUTPUT_SIZE));
    print(" data=");
    for (int32_t i = 0; i < EK_OUTPUT_SIZE; ++i) {
        static const char hex[] = "0123456789abcdef";
        char pair[2] = {hex[(uint8_t)OUTPUT_RECORD[i] >> 4], hex[(uint8_t)OUTPUT_RECORD[i] & 0xFu]};
        ek_uart_write(pair, 2);
    }
    print("\n");
    return status;
}

int main(void)
{
    int32_t clock_hz = (int32_t)ek_board_init();
    cycle_counter_start();
    print("ek begin");
    print_field("clock_hz", clock_hz);
    print_field("inputs", EK_TEST_INPUTS);
    print_field("input_bytes", EK_INPUT_SIZE);
    print_field("output_bytes", EK_OUTPUT_SIZE);
    print("\n");
    int32_t failed = 0;
    for (int32_t index = 0; index < EK_TEST_INPUTS; ++index) {
        failed += run_one(index) != 0;
    }
    int32_t high_water = (int32_t)ek_stack_high_water();
    int32_t reserved = (int32_t)ek_stack_reserved();
    int status = high_water >= reserved ? EK_EXIT_STACK_OVERFLOW : failed ? EK_EXIT_MODEL_STATUS : EK_EXIT_OK;
    print("ek end");
    print_field("inferences", EK_TEST_INPUTS);
    print_field("failed", failed);
    print_field("stack_high_water_bytes", high_water);
    print_field("stack_reserved_bytes", reserved);
    print_field("exit", status);
    print("\n");
    return status;
}

void ek_exit(int status)
{
    (void)status;
    for (;;) {
        __asm__ volatile("wfi");
    }
}

void ek_fault(const char *name, int status, uint32_t pc)
{
    print("ek fault name=");
    print(name);
    print_field("status", status);
    print(" pc=");
    print_hex32(pc);
    print("\n");
    ek_exit(status);
}
