/*
 * libFuzzer target for the pen firmware core: arbitrary host bytes, valid-CRC commands with
 * arbitrary payloads, sensor readings, inputs and time, in any order. After every step the
 * invariant of rule 2 is checked: the motor line is never on unless the pen is armed,
 * run-enabled, the pedal is down, limits are verified, and no fault or e-stop is latched.
 *
 * clang -fsanitize=fuzzer,address,undefined (make fuzz).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stipple_pen.h"

typedef struct {
    int motor;
    uint16_t tach, current;
    int16_t temperature;
    uint8_t inputs;
    stw_cartridge chip;
    stw_decoder out; /* the core's output, decoded as the host would */
} board;

static void b_motor(void *c, int on) { ((board *)c)->motor = on; }
static void b_drive(void *c, uint16_t d, uint16_t r) { (void)c; (void)d; (void)r; }
static uint16_t b_tach(void *c) { return ((board *)c)->tach; }
static uint16_t b_current(void *c) { return ((board *)c)->current; }
static int16_t b_temp(void *c) { return ((board *)c)->temperature; }
static uint8_t b_inputs(void *c) { return ((board *)c)->inputs; }
static int b_chip(void *c, stw_cartridge *out) {
    board *b = c;
    if (!(b->inputs & STP_IN_CARTRIDGE)) return 0;
    *out = b->chip;
    return 1;
}
static void b_uart(void *c, const uint8_t *bytes, size_t n) {
    /* Whatever the core sends must be a frame its own codec accepts. */
    board *b = c;
    stw_frame f;
    size_t i;
    for (i = 0; i < n; i++) {
        stw_result r = stw_decoder_push(&b->out, bytes[i], &f);
        if (r != STW_NONE && r != STW_FRAME) abort();
    }
}

/* With STIPPLE_FUZZ_STATS set, how many inputs ran the motor at all: evidence that the invariant
 * below is exercised, not vacuously true (make fuzz prints it over the corpus). */
static unsigned long inputs_run, inputs_with_motor;
static int motor_seen;
static void print_stats(void) {
    fprintf(stderr, "pen-core: the motor ran in %lu of %lu inputs\n", inputs_with_motor, inputs_run);
}

static void check(const stp_pen *p, const board *b) {
    if (!b->motor) return;
    motor_seen = 1;
    if (!p->armed || !p->run_enabled || !(p->inputs & STP_IN_PEDAL) || !(b->inputs & STP_IN_PEDAL) || !p->has_limits ||
        p->fault != STW_FAULT_CODE_NONE || p->estop_latched || (b->inputs & STP_IN_ESTOP) || p->pending) {
        abort(); /* rule 2 broken */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static stp_pen pen;
    board b;
    stp_hal hal;
    stp_config cfg;
    uint32_t now = 0xFFFF0000u; /* start near the wrap */
    uint8_t seq = 0;
    size_t i = 0;
    static int stats = -1;

    if (stats < 0) {
        stats = getenv("STIPPLE_FUZZ_STATS") != NULL;
        if (stats) atexit(print_stats);
    }
    motor_seen = 0;

    memset(&b, 0, sizeof b);
    stw_decoder_init(&b.out); /* per input: each run starts from the same state */
    b.inputs = STP_IN_CARTRIDGE;
    b.chip.needle_count = 3;
    b.chip.needle_diameter_um = 250;
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
    memcpy(cfg.serial, "FUZZ-1", 6);
    cfg.proto_major = STW_PROTO_MAJOR;
    cfg.capabilities = 0x00FFu;
    cfg.depth_ceiling_um = 2000;
    cfg.over_current_ma = 1500;
    cfg.over_temperature_dc = 600;
    stp_boot(&pen, &cfg, &hal, now, 0);

    while (i < size) {
        uint8_t op = data[i++];
        uint8_t arg;
        if (i >= size) break;
        arg = data[i++];
        switch (op % 12u) {
        case 0: { /* raw host bytes */
            size_t n = arg % 70u;
            if (n > size - i) n = size - i;
            stp_receive(&pen, &hal, now, data + i, n);
            i += n;
            break;
        }
        case 1: { /* a CRC-valid command with an arbitrary payload (may be refused by the codec) */
            uint8_t raw[STW_MAX_RAW_FRAME + 4];
            uint8_t wire[2 * sizeof raw];
            size_t n = (size_t)(arg % 20u), j, w, code_at;
            uint8_t code = 1;
            uint32_t crc;
            if (n + 1 > size - i) break;
            raw[0] = (uint8_t)(1u + data[i] % 14u);
            raw[1] = data[i] & 0x80u ? seq : ++seq;
            memcpy(raw + 2, data + i + 1, n);
            i += n + 1;
            crc = stw_crc32c(raw, n + 2);
            raw[n + 2] = (uint8_t)crc; raw[n + 3] = (uint8_t)(crc >> 8);
            raw[n + 4] = (uint8_t)(crc >> 16); raw[n + 5] = (uint8_t)(crc >> 24);
            wire[0] = 0;
            code_at = 1;
            w = 2;
            for (j = 0; j < n + 6; j++) {
                if (raw[j] == 0) { wire[code_at] = code; code_at = w++; code = 1; }
                else { wire[w++] = raw[j]; code++; }
            }
            wire[code_at] = code;
            wire[w++] = 0;
            stp_receive(&pen, &hal, now, wire, w);
            break;
        }
        case 2: { /* the handshake a host does, so deep states are reached */
            stw_message m;
            uint8_t wire[STW_MAX_WIRE_BYTES];
            size_t n;
            memset(&m, 0, sizeof m);
            switch (arg % 4u) {
            case 0: m.id = STW_MSG_HELLO; m.u.hello.proto_major = STW_PROTO_MAJOR; break;
            case 1:
                m.id = STW_MSG_SET_LIMITS;
                m.u.set_limits.depth_min_um = 300; m.u.set_limits.depth_max_um = 1200; m.u.set_limits.depth_trip_um = 1300;
                m.u.set_limits.rate_min_dhz = 800; m.u.set_limits.rate_max_dhz = 1400; m.u.set_limits.rate_stall_dhz = 500;
                m.u.set_limits.rate_runaway_dhz = 1500; m.u.set_limits.deadman_ms = 150;
                break;
            case 2: m.id = STW_MSG_SET_SETPOINTS; m.u.set_setpoints.depth_um = 800; m.u.set_setpoints.rate_dhz = 1200; break;
            default: m.id = STW_MSG_ARM; m.u.arm.limits_crc = pen.limits_crc; break;
            }
            n = stw_encode_frame(++seq, &m, wire, sizeof wire);
            stp_receive(&pen, &hal, now, wire, n);
            break;
        }
        case 3: now += (uint32_t)arg * 997u; stp_tick(&pen, &hal, now); break;
        case 4: b.inputs = arg & 7u; stp_inputs_changed(&pen, &hal, now); break;
        case 5: now += 4000u; stp_stroke(&pen, &hal, now, (uint16_t)(arg * 11u)); break;
        case 6: b.tach = (uint16_t)(arg * 9u); break;
        case 7: b.current = (uint16_t)(arg * 10u); b.temperature = (int16_t)(arg * 4 - 100); break;
        case 8: (void)stp_isr_position(&pen, &hal, now, (uint16_t)(arg * 11u)); break;
        case 9: now += (uint32_t)arg * 1999u; (void)stp_isr_deadman(&pen, &hal, now); break;
        case 10: { /* MOTOR_RUN, often needed and hard to guess */
            stw_message m;
            uint8_t wire[STW_MAX_WIRE_BYTES];
            memset(&m, 0, sizeof m);
            m.id = arg & 1u ? STW_MSG_MOTOR_RUN : STW_MSG_CLEAR_FAULT;
            stp_receive(&pen, &hal, now, wire, stw_encode_frame(++seq, &m, wire, sizeof wire));
            break;
        }
        default: now += 100000u; stp_tick(&pen, &hal, now); break;
        }
        check(&pen, &b);
    }
    inputs_run++;
    inputs_with_motor += (unsigned long)motor_seen;
    return 0;
}
