/*
 * The test harness: runs the generated model once per input record and reports back.
 *
 * Host files (in QEMU's working directory, through semihosting):
 *   input.bin   N records of EK_INPUT_SIZE bytes (N = file length / EK_INPUT_SIZE)
 *   output.bin  N records of EK_OUTPUT_SIZE bytes, written in order
 *   stats.txt   "name value" lines: input_record_bytes, output_record_bytes, inferences,
 *               failed_inferences, first_failed_status, stack_high_water_bytes,
 *               stack_reserved_bytes; written even when the run stops early
 * The exit status is one of the EK_EXIT_* codes in ek_runtime.h.
 *
 * Records are read straight into one static buffer, so the firmware needs RAM for one input
 * and one output, not for the whole file. If model.h defines EK_INPUT_BUFFER or
 * EK_OUTPUT_BUFFER (an int8_t pointer into the model's own arena), the harness uses that
 * instead and the separate buffer disappears, as it would on a device whose camera writes
 * into the arena.
 *
 * If model.h defines EK_INPUT_BY_PATCH, the model has no frame and pulls its input one patch
 * window at a time through ek_model_input_window(), defined here: the harness plays the camera
 * and reads each window's rows straight from the current record of input.bin (semihosting seek
 * and read), so no frame buffer exists anywhere in the firmware and its SRAM is the model's own.
 */
#include <stdint.h>

#include "ek_runtime.h"
#include "model.h"
#include "output_record.h"
#include "semihosting.h"
#include "stack.h"
#include "text.h"

#if defined(EK_INPUT_BY_PATCH)
#define INPUT_RECORD ((int8_t *)0)
static int window_file = -1;    /* input.bin */
static long window_record = 0;  /* file offset of the current record */

int ek_model_input_window(int32_t row0, int32_t col0, int32_t rows, int32_t cols, int8_t *dst)
{
    if (row0 < 0 || col0 < 0 || rows < 0 || cols < 0 || row0 + rows > EK_INPUT_HEIGHT
        || col0 + cols > EK_INPUT_WIDTH) {
        return 1;
    }
    int32_t row_bytes = cols * EK_INPUT_CHANNELS;
    for (int32_t r = 0; r < rows; ++r) {
        long position = window_record + ((long)(row0 + r) * EK_INPUT_WIDTH + col0) * EK_INPUT_CHANNELS;
        if (ek_sh_seek(window_file, position) != 0 || ek_sh_read(window_file, dst + r * row_bytes, (size_t)row_bytes) != 0) {
            return 2;
        }
    }
    return 0;
}
#elif defined(EK_INPUT_BUFFER)
#define INPUT_RECORD (EK_INPUT_BUFFER)
#else
static int8_t input_record[EK_INPUT_SIZE] __attribute__((aligned(8)));
#define INPUT_RECORD input_record
#endif


struct run_stats {
    int32_t input_record_bytes;
    int32_t output_record_bytes;
    int32_t inferences;
    int32_t failed_inferences;
    int32_t first_failed_status;
    int32_t stack_high_water_bytes;
    int32_t stack_reserved_bytes;
};

/* Writes "name value\n"; returns 0 on success. */
static int write_stat(int handle, const char *name, int32_t value)
{
    char line[64];
    int length = 0;
    while (*name != '\0' && length < 48) {
        line[length++] = *name++;
    }
    line[length++] = ' ';
    length += ek_format_decimal(line + length, value);
    line[length++] = '\n';
    return ek_sh_write(handle, line, (size_t)length);
}

static int write_stats(const struct run_stats *stats)
{
    int handle = ek_sh_open("stats.txt", EK_SH_MODE_WB);
    if (handle < 0) {
        return -1;
    }
    int failed = write_stat(handle, "input_record_bytes", stats->input_record_bytes)
                 | write_stat(handle, "output_record_bytes", stats->output_record_bytes)
                 | write_stat(handle, "inferences", stats->inferences)
                 | write_stat(handle, "failed_inferences", stats->failed_inferences)
                 | write_stat(handle, "first_failed_status", stats->first_failed_status)
                 | write_stat(handle, "stack_high_water_bytes", stats->stack_high_water_bytes)
                 | write_stat(handle, "stack_reserved_bytes", stats->stack_reserved_bytes);
    return failed | ek_sh_close(handle);
}

/* Runs every input record through the model; returns an EK_EXIT_* code. */
static int run_all(struct run_stats *stats)
{
    int input = ek_sh_open("input.bin", EK_SH_MODE_RB);
    if (input < 0) {
        return EK_EXIT_IO;
    }
    long length = ek_sh_flen(input);
    if (length < 0 || length % EK_INPUT_SIZE != 0) {
        return EK_EXIT_INPUT_SIZE;
    }
    int output = ek_sh_open("output.bin", EK_SH_MODE_WB);
    if (output < 0) {
        return EK_EXIT_IO;
    }
    for (long offset = 0; offset < length; offset += EK_INPUT_SIZE) {
#if defined(EK_INPUT_BY_PATCH)
        window_file = input;
        window_record = offset;
#else
        if (ek_sh_read(input, INPUT_RECORD, EK_INPUT_SIZE) != 0) {
            return EK_EXIT_IO;
        }
#endif
        ek_inference_boundary();
        int status = ek_model_run(INPUT_RECORD, OUTPUT_RECORD);
        ek_inference_boundary();
        if (status != 0 && stats->failed_inferences++ == 0) {
            stats->first_failed_status = status;
        }
        stats->inferences++;
        if (ek_sh_write(output, OUTPUT_RECORD, EK_OUTPUT_SIZE) != 0) {
            return EK_EXIT_IO;
        }
    }
    return (ek_sh_close(input) | ek_sh_close(output)) != 0 ? EK_EXIT_IO : EK_EXIT_OK;
}

void ek_exit(int status)
{
    ek_sh_exit(status);
}

void ek_fault(const char *name, int status, uint32_t pc)
{
    (void)pc;
    ek_sh_write0("edgekit: ");
    ek_sh_write0(name);
    ek_sh_write0("\n");
    ek_sh_exit(status);
}

int main(void)
{
    struct run_stats stats = {.input_record_bytes = EK_INPUT_SIZE, .output_record_bytes = EK_OUTPUT_SIZE};
    int status = run_all(&stats);
    stats.stack_high_water_bytes = (int32_t)ek_stack_high_water();
    stats.stack_reserved_bytes = (int32_t)ek_stack_reserved();
    if (write_stats(&stats) != 0) {
        return EK_EXIT_IO;
    }
    if (status != EK_EXIT_OK) {
        return status;
    }
    if (stats.stack_high_water_bytes >= stats.stack_reserved_bytes) {
        return EK_EXIT_STACK_OVERFLOW;
    }
    return stats.failed_inferences != 0 ? EK_EXIT_MODEL_STATUS : EK_EXIT_OK;
}
