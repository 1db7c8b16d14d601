/*
 * The host port: the pen firmware core as a Linux process on a pty, the way Klipper runs its MCU
 * code as a Linux process (src/linux). The host (stippled, stipplectl, the conformance suite)
 * opens the pty's slave as it would a pen's /dev/ttyACM0; a symlink gives it a stable name.
 *
 * The board is modelled in a few lines (this port is for conformance runs and timing, not
 * physics): the motor turns at the rate setpoint while enabled, each stroke protrudes to the
 * depth setpoint (plus any extra asked for on stdin), and the position at the bottom of each
 * stroke is sampled mid-stroke through stp_isr_position, so an over-depth stroke is cut within
 * that stroke. Time is CLOCK_MONOTONIC; one timerfd wakes the loop at the core's next deadline
 * (the deadman) or the next half-stroke, and at least every millisecond.
 *
 * --realtime asks for SCHED_FIFO and locked memory (as Klipper's Linux MCU does), so the deadman
 * and the trip keep their timing on a busy machine; it needs root or CAP_SYS_NICE.
 *
 * The port runs until stdin closes (its parent is gone), "quit", SIGINT or SIGTERM.
 *
 * stdin, one command a line: pedal on|off, estop on|off, cartridge on|off, over-depth EXTRA_UM,
 * quit. stdout: "ready PATH", then one "trip ..." line per over-depth stroke and one
 * "deadman ..." line per deadman (the benchmark reads them).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/timerfd.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "stipple_pen.h"

typedef struct {
    int fd;
    int motor;
    uint16_t depth, rate;
    uint8_t inputs;
    int extra_um;
    uint32_t stroke_start;   /* pen time the stroke in progress began */
    int sampled;             /* its bottom was sampled */
    uint16_t peak;           /* the protrusion at that bottom */
    uint32_t jitter;         /* a small deterministic scatter of the peaks */
    uint32_t last_stroke_us; /* period of the last complete stroke, 0 none */
    uint32_t last_stroke_at;
} board;

static uint64_t mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
static uint32_t now32(void) { return (uint32_t)mono_us(); }

static void b_motor(void *c, int on) {
    board *b = c;
    if (on && !b->motor) {
        b->stroke_start = now32();
        b->sampled = 0;
        b->last_stroke_us = 0;
    }
    b->motor = on;
}
static void b_drive(void *c, uint16_t depth, uint16_t rate) { ((board *)c)->depth = depth, ((board *)c)->rate = rate; }
static uint16_t b_tach(void *c) {
    board *b = c;
    uint32_t period = b->last_stroke_us, since;
    if (!period) return 0;
    since = now32() - b->last_stroke_at;
    if (since > period) period = since; /* a silent tachometer reads as a falling rate */
    return (uint16_t)(10000000u / period > 65535u ? 65535u : 10000000u / period);
}
static uint16_t b_current(void *c) { return ((board *)c)->motor ? (uint16_t)(120u + ((board *)c)->rate / 4u) : 15u; }
static int16_t b_temp(void *c) { (void)c; return 250; }
static uint8_t b_inputs(void *c) { return ((board *)c)->inputs; }
static int b_chip(void *c, stw_cartridge *out) {
    if (!(((board *)c)->inputs & STP_IN_CARTRIDGE)) return 0;
    out->needle_count = 3;
    out->needle_diameter_um = 250;
    out->expiry_days = 21500;
    strcpy(out->cartridge_id, "HOST-CART-0001");
    strcpy(out->lot, "L2026-12");
    return 1;
}
static void b_uart(void *c, const uint8_t *bytes, size_t n) {
    board *b = c;
    while (n > 0) {
        ssize_t w = write(b->fd, bytes, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return; /* nobody reads the pty (EAGAIN/EIO): a UART drops what it cannot send */
        }
        bytes += w;
        n -= (size_t)w;
    }
}

static volatile sig_atomic_t stopping;
static void on_signal(int sig) { (void)sig; stopping = 1; }

int main(int argc, char **argv) {
    const char *link = "/tmp/stipple-pen-host";
    const char *serial = "HOST-0001";
    int master, slave, tfd, i, realtime = 0;
    char name[256];
    struct termios raw;
    board b;
    stp_pen pen;
    stp_hal hal;
    stp_config cfg;
    char line[128];
    size_t line_len = 0;

    for (i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--link") && i + 1 < argc) link = argv[++i];
        else if (!strcmp(argv[i], "--serial") && i + 1 < argc) serial = argv[++i];
        else if (!strcmp(argv[i], "--realtime")) realtime = 1;
        else {
            fprintf(stderr, "usage: %s [--link PATH] [--serial TEXT] [--realtime]\n", argv[0]);
            return 64;
        }
    }
    if (strlen(serial) == 0 || strlen(serial) > 16) {
        fprintf(stderr, "serial: \"%s\" must be 1...16 printable characters\n", serial);
        return 64;
    }
    if (realtime) {
        struct sched_param param;
        memset(&param, 0, sizeof param);
        param.sched_priority = 50;
        if (sched_setscheduler(0, SCHED_FIFO, &param) != 0) perror("--realtime: sched_setscheduler");
        if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) perror("--realtime: mlockall");
    }
    if (openpty(&master, &slave, name, NULL, NULL) != 0) {
        perror("openpty");
        return 1;
    }
    cfmakeraw(&raw);
    if (tcgetattr(slave, &raw) == 0) {
        cfmakeraw(&raw);
        tcsetattr(slave, TCSANOW, &raw);
    }
    fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
    unlink(link);
    if (symlink(name, link) != 0) {
        perror(link);
        return 1;
    }
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    signal(SIGPIPE, SIG_IGN);

    memset(&b, 0, sizeof b);
    b.fd = master;
    b.inputs = STP_IN_CARTRIDGE;
    memset(&hal, 0, sizeof hal);
    hal.ctx = &b;
    hal.motor_enable = b_motor;
    hal.drive_set = b_drive;
    hal.tach_rate_dhz = b_tach;
    hal.current_ma = b_current;
    hal.temperature_dc = b_temp;
    hal.read_inputs = b_inputs;
    hal.cartridge_read = b_chip;
    hal.uart_write = b_uart;
    memset(&cfg, 0, sizeof cfg);
    strncpy(cfg.serial, serial, 16);
    cfg.fw_version[0] = STP_CORE_VERSION_MAJOR;
    cfg.fw_version[1] = STP_CORE_VERSION_MINOR;
    cfg.fw_version[2] = STP_CORE_VERSION_PATCH;
    cfg.proto_major = STW_PROTO_MAJOR;
    cfg.proto_minor = STW_PROTO_MINOR;
    cfg.capabilities = STW_CAPABILITIES_DEPTH_SENSOR | STW_CAPABILITIES_CARTRIDGE_READER | STW_CAPABILITIES_PEDAL |
                       STW_CAPABILITIES_ESTOP_INPUT | STW_CAPABILITIES_CURRENT_SENSOR | STW_CAPABILITIES_TEMPERATURE_SENSOR;
    cfg.depth_ceiling_um = STW_ABS_DEPTH_CEILING_UM;
    cfg.over_current_ma = 1500;
    cfg.over_temperature_dc = 600;
    stp_boot(&pen, &cfg, &hal, now32(), STW_RESET_CAUSE_POWER_ON);
    printf("ready %s\n", link);
    fflush(stdout);

    while (!stopping) {
        struct pollfd fds[3];
        struct itimerspec its;
        uint32_t now = now32(), wait = stp_time_to_deadline(&pen, now);
        if (wait > 1000u) wait = 1000u;
        if (b.motor && b.rate) {
            /* wake at the bottom of the stroke and at its end */
            uint32_t period = 10000000u / b.rate, into = now - b.stroke_start;
            uint32_t next = !b.sampled ? period / 2u : period;
            if (next > into && next - into < wait) wait = next - into;
            if (next <= into) wait = 1;
        }
        memset(&its, 0, sizeof its);
        its.it_value.tv_nsec = (long)(wait ? wait : 1u) * 1000L;
        timerfd_settime(tfd, 0, &its, NULL);
        fds[0].fd = master; fds[0].events = POLLIN;
        fds[1].fd = tfd; fds[1].events = POLLIN;
        fds[2].fd = 0; fds[2].events = POLLIN;
        if (poll(fds, 3, -1) < 0 && errno != EINTR) break;
        if (fds[0].revents & POLLIN) {
            uint8_t buf[256];
            ssize_t n = read(master, buf, sizeof buf);
            if (n > 0) stp_receive(&pen, &hal, now32(), buf, (size_t)n);
        }
        if (fds[1].revents & POLLIN) {
            uint64_t expirations;
            if (read(tfd, &expirations, sizeof expirations) < 0) { /* nothing to do */ }
        }
        if (fds[2].revents & (POLLIN | POLLHUP)) {
            char c;
            ssize_t n = read(0, &c, 1);
            if (n <= 0) {
                break; /* stdin closed: whoever started the port is gone */
            } else if (c != '\n') {
                if (line_len + 1 < sizeof line) line[line_len++] = c;
            } else {
                line[line_len] = 0;
                line_len = 0;
                if (!strcmp(line, "pedal on")) b.inputs |= STP_IN_PEDAL;
                else if (!strcmp(line, "pedal off")) b.inputs &= (uint8_t)~STP_IN_PEDAL;
                else if (!strcmp(line, "estop on")) b.inputs |= STP_IN_ESTOP;
                else if (!strcmp(line, "estop off")) b.inputs &= (uint8_t)~STP_IN_ESTOP;
                else if (!strcmp(line, "cartridge on")) b.inputs |= STP_IN_CARTRIDGE;
                else if (!strcmp(line, "cartridge off")) b.inputs &= (uint8_t)~STP_IN_CARTRIDGE;
                else if (!strncmp(line, "over-depth ", 11)) b.extra_um = atoi(line + 11);
                else if (!strcmp(line, "quit")) break;
                else fprintf(stderr, "unknown command: %s (pedal|estop|cartridge on|off, over-depth UM, quit)\n", line);
                stp_inputs_changed(&pen, &hal, now32());
            }
        }
        now = now32();
        if (b.motor && b.rate) {
            uint32_t period = 10000000u / b.rate, into = now - b.stroke_start;
            if (!b.sampled && into >= period / 2u) {
                b.sampled = 1;
                /* a few micrometres of stroke-to-stroke scatter, as a real needle has (and without
                 * which the core's stuck-sensor check would rightly latch depth_sensor) */
                b.jitter = (b.jitter * 1103515245u + 12345u) & 0x7FFFFFFFu;
                b.peak = (uint16_t)(b.depth + b.extra_um + (int)(b.jitter >> 16) % 11 - 5);
                if (stp_isr_position(&pen, &hal, now, b.peak)) {
                    printf("trip %u us into a stroke of %u us\n", into, period);
                    fflush(stdout);
                    b.extra_um = 0;
                }
            }
            if (b.motor && into >= period) {
                b.last_stroke_us = into;
                b.last_stroke_at = now;
                b.stroke_start = now;
                uint16_t peak = b.sampled ? b.peak : b.depth;
                b.sampled = 0;
                stp_stroke(&pen, &hal, now, peak);
            }
        }
        {
            uint8_t was_armed = pen.armed;
            uint32_t last_host = pen.last_host_us;
            stp_tick(&pen, &hal, now32());
            if (was_armed && pen.fault == STW_FAULT_CODE_HOST_HEARTBEAT_LOST && !pen.armed) {
                printf("deadman %u us after the last host frame (deadman %u ms)\n", (unsigned)(now32() - last_host), pen.deadman_ms);
                fflush(stdout);
            }
        }
    }
    b_motor(&b, 0);
    unlink(link);
    return 0;
}
