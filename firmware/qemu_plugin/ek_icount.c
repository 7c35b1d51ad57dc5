/*
 * ek_icount: a QEMU TCG plugin that counts executed guest instructions and logs the running
 * count each time execution reaches one of a few marker addresses.
 *
 * Arguments: log=FILE (the log to write), at=ADDRESS (repeatable; hexadecimal or decimal).
 * Each time the instruction at the i-th `at` address executes, one line "i count" is
 * appended, where count is the number of guest instructions executed before it.
 *
 * Counting is an inline add of the block's instruction count when a translation block
 * starts (no callback per instruction). A marker's callback subtracts the instructions of
 * its block that have not run yet, so a logged count does not depend on where QEMU splits
 * blocks and is the same on every run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "qemu_plugin_v1.h"

#define MAX_MARKERS 8

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static uint64_t executed; /* instructions in all blocks entered so far (one vCPU) */
static uint64_t marker_address[MAX_MARKERS];
static int marker_count;
static FILE *log_file;

/* userdata packs the marker index (low byte) and the not-yet-executed instructions of its block. */
static void on_marker(unsigned int vcpu_index, void *userdata)
{
    (void)vcpu_index;
    uintptr_t packed = (uintptr_t)userdata;
    fprintf(log_file, "%u %llu\n", (unsigned)(packed & 0xff), (unsigned long long)(executed - (packed >> 8)));
}

static void on_translate(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    (void)id;
    size_t count = qemu_plugin_tb_n_insns(tb);
    qemu_plugin_register_vcpu_tb_exec_inline(tb, QEMU_PLUGIN_INLINE_ADD_U64, &executed, count);
    for (size_t index = 0; index < count; ++index) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, index);
        uint64_t address = qemu_plugin_insn_vaddr(insn);
        for (int marker = 0; marker < marker_count; ++marker) {
            if (address == marker_address[marker]) {
                uintptr_t not_yet_run = count - index;
                qemu_plugin_register_vcpu_insn_exec_cb(insn, on_marker, QEMU_PLUGIN_CB_NO_REGS,
                                                       (void *)(not_yet_run << 8 | (uintptr_t)marker));
            }
        }
    }
}

static void on_qemu_exit(qemu_plugin_id_t id, void *userdata)
{
    (void)id;
    (void)userdata;
    fclose(log_file);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv)
{
    (void)info;
    const char *log_path = NULL;
    for (int index = 0; index < argc; ++index) {
        if (strncmp(argv[index], "log=", 4) == 0) {
            log_path = argv[index] + 4;
        } else if (strncmp(argv[index], "at=", 3) == 0 && marker_count < MAX_MARKERS) {
            marker_address[marker_count++] = strtoull(argv[index] + 3, NULL, 0);
        } else {
            fprintf(stderr, "ek_icount: unknown argument %s (expected log=FILE, at=ADDRESS)\n", argv[index]);
            return -1;
        }
    }
    if (log_path == NULL || (log_file = fopen(log_path, "w")) == NULL) {
        fprintf(stderr, "ek_icount: needs log=FILE, a file it can write\n");
        return -1;
    }
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_translate);
    qemu_plugin_register_atexit_cb(id, on_qemu_exit, NULL);
    return 0;
}
