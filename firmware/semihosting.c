/*
 * Arm semihosting: r0 holds the operation, r1 a pointer to its argument block, BKPT 0xAB
 * traps to the host and r0 holds the result. Operation numbers are from Arm's
 * "Semihosting for AArch32 and AArch64" specification.
 */
#include "semihosting.h"

#include <stdint.h>
#include <string.h>

enum {
    SYS_OPEN = 0x01,
    SYS_CLOSE = 0x02,
    SYS_WRITE0 = 0x04,
    SYS_WRITE = 0x05,
    SYS_READ = 0x06,
    SYS_SEEK = 0x0A,
    SYS_FLEN = 0x0C,
    SYS_EXIT_EXTENDED = 0x20,
};

/* Reason code for a normal application exit (ADP_Stopped_ApplicationExit). */
#define ADP_STOPPED_APPLICATION_EXIT 0x20026u

static int semihost_call(int operation, const void *argument)
{
    register int r0 __asm__("r0") = operation;
    register const void *r1 __asm__("r1") = argument;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

int ek_sh_open(const char *path, int mode)
{
    const uintptr_t block[3] = {(uintptr_t)path, (uintptr_t)mode, strlen(path)};
    return semihost_call(SYS_OPEN, block);
}

int ek_sh_close(int handle)
{
    const uintptr_t block[1] = {(uintptr_t)handle};
    return semihost_call(SYS_CLOSE, block);
}

int ek_sh_read(int handle, void *buffer, size_t len)
{
    const uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)buffer, len};
    return semihost_call(SYS_READ, block); /* the number of bytes NOT read */
}

int ek_sh_write(int handle, const void *buffer, size_t len)
{
    const uintptr_t block[3] = {(uintptr_t)handle, (uintptr_t)buffer, len};
    return semihost_call(SYS_WRITE, block); /* the number of bytes NOT written */
}

int ek_sh_seek(int handle, long position)
{
    const uintptr_t block[2] = {(uintptr_t)handle, (uintptr_t)position};
    return semihost_call(SYS_SEEK, block); /* 0 on success, negative on failure */
}

long ek_sh_flen(int handle)
{
    const uintptr_t block[1] = {(uintptr_t)handle};
    return semihost_call(SYS_FLEN, block);
}

void ek_sh_write0(const char *text)
{
    semihost_call(SYS_WRITE0, text);
}

void ek_sh_exit(int status)
{
    const uintptr_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uintptr_t)status};
    semihost_call(SYS_EXIT_EXTENDED, block);
    for (;;) {
    }
}
