/*
 * Arm semihosting calls (BKPT 0xAB): host file I/O and exit for firmware run under QEMU
 * with -semihosting-config enable=on. Without a debugger or QEMU, BKPT halts the core.
 */
#ifndef EK_SEMIHOSTING_H
#define EK_SEMIHOSTING_H

#include <stddef.h>

#define EK_SH_MODE_RB 1 /* open for reading, binary */
#define EK_SH_MODE_WB 5 /* open for writing (truncate), binary */

/* Returns a handle, or -1 on failure. */
int ek_sh_open(const char *path, int mode);
/* Returns 0 on success. */
int ek_sh_close(int handle);
/* Reads exactly len bytes; returns 0 on success, nonzero if fewer bytes were read. */
int ek_sh_read(int handle, void *buffer, size_t len);
/* Writes exactly len bytes; returns 0 on success. */
int ek_sh_write(int handle, const void *buffer, size_t len);
/* Moves to byte `position` from the start of the file; returns 0 on success. */
int ek_sh_seek(int handle, long position);
/* Returns the file length in bytes, or -1. */
long ek_sh_flen(int handle);
/* Writes a NUL-terminated string to the host's console. */
void ek_sh_write0(const char *text);
/* Ends the emulation; QEMU exits with this status (SYS_EXIT_EXTENDED). */
__attribute__((noreturn)) void ek_sh_exit(int status);

#endif
