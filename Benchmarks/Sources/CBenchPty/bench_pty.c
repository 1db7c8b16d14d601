#define _GNU_SOURCE
#include "bench_pty.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int bench_pty_loop(const char *path, int echo) {
    int fd = open(path, O_RDWR | O_NOCTTY);
    if (fd < 0) return -1;
    struct termios attributes;
    if (tcgetattr(fd, &attributes) == 0) {
        cfmakeraw(&attributes);
        tcsetattr(fd, TCSANOW, &attributes);
    }
    unsigned char buffer[4096];
    struct pollfd watch = {.fd = fd, .events = POLLIN};
    for (;;) {
        if (poll(&watch, 1, 1000) <= 0) continue;
        ssize_t count = read(fd, buffer, sizeof buffer);
        if (count < 0 && errno != EINTR && errno != EAGAIN) return -1;
        for (ssize_t offset = 0; echo && offset < count;) {
            ssize_t written = write(fd, buffer + offset, (size_t)(count - offset));
            if (written < 0 && errno != EINTR && errno != EAGAIN) return -1;
            if (written > 0) offset += written;
        }
    }
}

int bench_realtime(int priority) {
    struct sched_param parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.sched_priority = priority;
    // Reset on fork: the daemon and the threads started from here run at normal priority.
    return sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &parameters) == 0 ? 0 : errno;
}

void bench_spin(void) {
    volatile unsigned long counter = 0;
    for (;;) counter++;
}
