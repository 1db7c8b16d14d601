#define _GNU_SOURCE
#include "bench_pty.h"
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

int bench_open_pty(char *name, size_t capacity) {
    int fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (grantpt(fd) != 0 || unlockpt(fd) != 0 || ptsname_r(fd, name, capacity) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}
