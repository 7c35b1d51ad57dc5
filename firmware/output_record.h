/*
 * The output buffer both harnesses hand to ek_model_run: the model's own arena slot when model.h
 * names one (EK_OUTPUT_BUFFER), so no separate buffer takes RAM, else a static buffer.
 * Include once, after model.h.
 */
#ifndef EK_OUTPUT_RECORD_H
#define EK_OUTPUT_RECORD_H

#ifdef EK_OUTPUT_BUFFER
#define OUTPUT_RECORD (EK_OUTPUT_BUFFER)
#else
static int8_t output_record[EK_OUTPUT_SIZE] __attribute__((aligned(8)));
#define OUTPUT_RECORD output_record
#endif

#endif
