/* fuzz.h - what every harness under tests/fuzz/ shares (docs/fuzzing.md).
 *
 * A harness is one LLVMFuzzerTestOneInput per reader. It is linked two ways:
 * with libFuzzer (make fuzz: clang, ASan, UBSan) and with replay.c's main()
 * (make test: each regression input once, no libFuzzer needed).
 *
 * The readers take paths, so the input is written to a file in /dev/shm (RAM,
 * not disk) with the extension the reader wants, rewritten on every run.
 *
 * exit(): the runtime reports errors by returning -1 and must never exit, so
 * an exit() during a run is a finding (abort, so that libFuzzer keeps the
 * input). The compiler's front end does exit(1) on the first error by design;
 * its harness sets fuzz_exit_jump, and exit() then jumps back to it instead.
 * Every other exit() (libFuzzer's own, at the end) goes to libc's. */
#ifndef NNCC_FUZZ_H
#define NNCC_FUZZ_H

#include <dlfcn.h>
#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_in_run;               /* inside LLVMFuzzerTestOneInput */
static jmp_buf *fuzz_exit_jump;       /* where exit() returns to, or NULL */

void exit(int status)
{
    if (fuzz_in_run && fuzz_exit_jump)
        longjmp(*fuzz_exit_jump, status + 1);
    if (fuzz_in_run) {
        fprintf(stderr, "fuzz: the reader called exit(%d); it must return an error\n", status);
        abort();
    }
    void (*libc_exit)(int) = (void (*)(int))dlsym(RTLD_NEXT, "exit");
    libc_exit(status);
    __builtin_unreachable();
}

/* The input files of this process, removed when it ends. */
static char fuzz_paths[4][64];
static int fuzz_n_paths;

static inline void fuzz_remove_inputs(void)
{
    for (int i = 0; i < fuzz_n_paths; i++)
        unlink(fuzz_paths[i]);
}

/* Writes data to this process's input file number slot (0..3) with the given
 * extension (".csv"); returns its path. */
static inline const char *fuzz_write_input(int slot, const char *ext, const uint8_t *data, size_t size)
{
    char *path = fuzz_paths[slot];
    snprintf(path, sizeof fuzz_paths[slot], "/dev/shm/nncc-fuzz-%ld-%d%s", (long)getpid(), slot, ext);
    if (slot >= fuzz_n_paths) {
        if (fuzz_n_paths == 0)
            atexit(fuzz_remove_inputs);
        fuzz_n_paths = slot + 1;
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f) != 0) {
        perror(path);
        abort();
    }
    return path;
}

/* Takes a byte off the front of the input for a harness's settings (0 when
 * the input is empty), so that the rest is the file. */
static inline unsigned fuzz_take(const uint8_t **data, size_t *size)
{
    if (*size == 0)
        return 0;
    unsigned v = **data;
    (*data)++, (*size)--;
    return v;
}

#endif
