#ifndef BENCH_PTY_H
#define BENCH_PTY_H
#include <stddef.h>
/// posix_openpt + grantpt + unlockpt + ptsname_r (Glibc's Swift module does not import them).
int bench_open_pty(char *name, size_t capacity);
#endif
