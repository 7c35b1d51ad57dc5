/*
 * Number formatting for the harnesses, without printf: newlib's printf would pull in kilobytes
 * of code and a heap, and the harnesses only print integers.
 */
#ifndef EK_TEXT_H
#define EK_TEXT_H

#include <stdint.h>

/* Writes `value` in decimal (with a '-' when negative) to dst, no terminator; returns the length (<= 11). */
int ek_format_decimal(char *dst, int32_t value);
/* Writes `value` as 8 lowercase hex digits to dst, no terminator; returns 8. */
int ek_format_hex32(char *dst, uint32_t value);

#endif
