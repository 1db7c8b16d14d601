/*
 * Unit tests of the pen firmware core, rule by rule and row by row of PROTOCOL.md section 7's
 * state table, against a fake board. Plain C: `make test-firmware` builds it with ASan and UBSan.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stipple_pen.h"

static int failures, checks;
#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        checks++;                                                                          \
        if (!(cond)) {                                                                     \
            failures++;                                                                    \
            fprintf(stderr, "%s:%d: %s: ", __FILE__, __LINE__, #cond);                     \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
        }                                                                                  \
    } while (0)

/* ---- the fake board ------------------------------------------------------------------------ */

typedef struct {
    int motor;
    int motor_writes_off;
    uint16_t depth, rate;
    uint16_t tach_dhz, current_ma;
    int16_t temperature_dc;
    uint8_t inputs;
    int has_chip;
    stw_cartridge chip;
    int led;
    int kicks;
    uint8_t out[8192];
    size_t out_len;
    uint8_t faults[64];
    int fault_count;
} board;

static void b_motor(void *c, int on) {
    board *b = c;
    b->motor = on;
    if (!on) b->motor_writes_off++;
}
static void b_drive(void *c, uint16_t d, uint16_t r) { ((board *)c)->depth = d, ((board *)c)->rate = r; }
static uint16_t b_tach(void *c) { return ((board *)c)->tach_dhz; }
static uint16_t b_current(void *c) { return ((board *)c)->current_ma; }
static int16_t b_temp(void *c) { return ((board *)c)->temperature_dc; }
static uint8_t b_inputs(void *c) { return ((board *)c)->inputs; }
static int b_chip(void *c, stw_cartridge *out) {
    board *b = c;
    if (!b->has_chip) return 0;
    *out = b->chip;
    return 1;
}
static void b_uart(void *c, const uint8_t *bytes, size_t n) {
    board *b = c;
    if (b->out_len + n > sizeof b->out) b->out_len = 0; /* tests read often; never overflow */
    memcpy(b->out + b->out_len, bytes, n);
    b->out_len += n;
}
static void b_led(void *c, int on) { ((board *)c)->led = on; }
static void b_kick(void *c) { ((board *)c)->kicks++; }
static void b_fault(void *c, uint8_t code) {
    board *b = c;
    if (b->fault_count < 64) b->faults[b->fault_count++] = code;
}

static board B;
static stp_pen P;
static stp_hal H;
static stp_config C;
static uint32_t T; /* microseconds */
static uint8_t host_seq;

/* Decoded pen output since the last take. */
static stw_message got[256];
static int got_n;

static void take(void) {
    stw_decoder d;
    stw_frame f;
    size_t i;
    stw_decoder_init(&d);
    got_n = 0;
    for (i = 0; i < B.out_len; i++) {
        stw_result r = stw_decoder_push(&d, B.out[i], &f);
        if (r == STW_FRAME && got_n < 256) got[got_n++] = f.msg;
        CHECK(r == STW_NONE || r == STW_FRAME, "the core sent a frame its own codec rejects (%d)", (int)r);
    }
    B.out_len = 0;
}

static int count(uint8_t id) {
    int i, n = 0;
    for (i = 0; i < got_n; i++) n += got[i].id == id;
    return n;
}

static const stw_message *find(uint8_t id) {
    int i;
    for (i = 0; i < got_n; i++)
        if (got[i].id == id) return &got[i];
    return NULL;
}

static void power_on(uint16_t caps) {
    memset(&B, 0, sizeof B);
    B.current_ma = 15;
    B.temperature_dc = 250;
    B.has_chip = 1;
    B.inputs = STP_IN_CARTRIDGE;
    B.chip.needle_count = 3;
    B.chip.needle_diameter_um = 250;
    B.chip.expiry_days = 21500;
    strcpy(B.chip.cartridge_id, "CART-1");
    strcpy(B.chip.lot, "LOT-1");
    memset(&H, 0, sizeof H);
    H.ctx = &B;
    H.motor_enable = b_motor;
    H.drive_set = b_drive;
    H.tach_rate_dhz = b_tach;
    H.current_ma = b_current;
    H.temperature_dc = b_temp;
    H.read_inputs = b_inputs;
    H.cartridge_read = b_chip;
    H.uart_write = b_uart;
    H.identify_led = b_led;
    H.watchdog_kick = b_kick;
    H.fault_latched = b_fault;
    memset(&C, 0, sizeof C);
    strcpy(C.serial, "TEST-0001");
    C.fw_version[0] = 1;
    C.proto_major = STW_PROTO_MAJOR;
    C.proto_minor = STW_PROTO_MINOR;
    C.capabilities = caps;
    C.depth_ceiling_um = 2000;
    C.over_current_ma = 1500;
    C.over_temperature_dc = 600;
    T = 1000;
    host_seq = 0;
    stp_boot(&P, &C, &H, T, STW_RESET_CAUSE_POWER_ON);
}

#define ALL_CAPS                                                                                     \
    (STW_CAPABILITIES_DEPTH_SENSOR | STW_CAPABILITIES_CARTRIDGE_READER | STW_CAPABILITIES_PEDAL |    \
     STW_CAPABILITIES_ESTOP_INPUT | STW_CAPABILITIES_CURRENT_SENSOR | STW_CAPABILITIES_TEMPERATURE_SENSOR | \
     STW_CAPABILITIES_IDENTIFY_LED)

static void send_raw(uint8_t seq, const stw_message *m) {
    uint8_t wire[STW_MAX_WIRE_BYTES];
    size_t n = stw_encode_frame(seq, m, wire, sizeof wire);
    CHECK(n > 0, "encodable");
    B.out_len = 0;
    stp_receive(&P, &H, T, wire, n);
    take();
}

/* Sends a command with a new seq; returns the ACK's status (detail in *detail). */
static int cmd(stw_message m, uint8_t *detail) {
    const stw_message *ack;
    send_raw(++host_seq, &m);
    ack = find(STW_MSG_ACK);
    CHECK(ack != NULL, "every command is acknowledged (id 0x%02x)", m.id);
    if (!ack) return -1;
    CHECK(ack->u.ack.acked_seq == host_seq && ack->u.ack.acked_id == m.id, "the ACK names the command");
    if (detail) *detail = ack->u.ack.detail;
    return ack->u.ack.status;
}

static stw_message msg(uint8_t id) {
    stw_message m;
    memset(&m, 0, sizeof m);
    m.id = id;
    return m;
}

static int hello(uint8_t major) {
    stw_message m = msg(STW_MSG_HELLO);
    m.u.hello.proto_major = major;
    return cmd(m, NULL);
}

static stw_set_limits good_limits(void) {
    stw_set_limits l;
    l.depth_min_um = 300;
    l.depth_max_um = 1200;
    l.depth_trip_um = 1300;
    l.rate_min_dhz = 800;
    l.rate_max_dhz = 1400;
    l.rate_stall_dhz = 500;
    l.rate_runaway_dhz = 1500;
    l.deadman_ms = 300;
    return l;
}

static int set_limits(stw_set_limits l, uint8_t *detail) {
    stw_message m = msg(STW_MSG_SET_LIMITS);
    m.u.set_limits = l;
    return cmd(m, detail);
}

static int setpoints(uint16_t depth, uint16_t rate, uint8_t *detail) {
    stw_message m = msg(STW_MSG_SET_SETPOINTS);
    m.u.set_setpoints.depth_um = depth;
    m.u.set_setpoints.rate_dhz = rate;
    return cmd(m, detail);
}

static int arm_with(uint32_t crc, uint8_t *detail) {
    stw_message m = msg(STW_MSG_ARM);
    m.u.arm.limits_crc = crc;
    return cmd(m, detail);
}

static void tick(uint32_t us) {
    T += us;
    stp_tick(&P, &H, T);
    take();
}

static void inputs(uint8_t bits) {
    B.inputs = bits;
    stp_inputs_changed(&P, &H, T);
    take();
}

/* Handshake, limits, setpoints, armed; pedal up. */
static void armed_pen(void) {
    power_on(ALL_CAPS);
    CHECK(hello(STW_PROTO_MAJOR) == STW_ACK_STATUS_OK, "hello");
    CHECK(set_limits(good_limits(), NULL) == STW_ACK_STATUS_OK, "limits");
    CHECK(setpoints(800, 1200, NULL) == STW_ACK_STATUS_OK, "setpoints");
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_OK, "arm");
}

/* Armed, run enabled, pedal down, motor turning at 120 Hz. */
static void running_pen(void) {
    armed_pen();
    CHECK(cmd(msg(STW_MSG_MOTOR_RUN), NULL) == STW_ACK_STATUS_OK, "run");
    B.tach_dhz = 1200;
    inputs(STP_IN_CARTRIDGE | STP_IN_PEDAL);
    CHECK(B.motor == 1 && stp_state(&P) == STW_PEN_STATE_RUNNING, "running");
}

/* Motor off, disarmed, and the fault latched and reported once. */
static void expect_latched(uint8_t code) {
    CHECK(B.motor == 0, "motor off after fault %u", code);
    CHECK(!P.armed && stp_state(&P) == STW_PEN_STATE_FAULTED, "faulted, disarmed (fault %u)", code);
    CHECK(P.fault == code, "latched fault %u, got %u", code, P.fault);
}

/* ---- the tests ------------------------------------------------------------------------------ */

static void test_boot(void) {
    power_on(ALL_CAPS);
    take();
    CHECK(got_n >= 2 && got[0].id == STW_MSG_FAULT && got[0].u.fault.code == STW_FAULT_CODE_RESET, "rule 1: FAULT reset first");
    CHECK(find(STW_MSG_STATUS) && find(STW_MSG_STATUS)->u.status.state == STW_PEN_STATE_BOOT, "STATUS boot");
    CHECK(B.motor == 0 && B.depth == 0 && B.rate == 0, "motor off, needle retracted");
    /* A held e-stop latches at boot. */
    memset(&B, 0, sizeof B);
    B.inputs = STP_IN_ESTOP;
    H.ctx = &B;
    stp_boot(&P, &C, &H, T, STW_RESET_CAUSE_BROWNOUT);
    take();
    CHECK(count(STW_MSG_FAULT) == 2 && P.estop_latched && P.fault == STW_FAULT_CODE_ESTOP, "rule 6 in boot");
}

static void test_boot_column(void) {
    static const uint8_t refused[] = {STW_MSG_SET_LIMITS, STW_MSG_GET_LIMITS, STW_MSG_SET_SETPOINTS, STW_MSG_READ_CARTRIDGE,
                                      STW_MSG_ARM, STW_MSG_DISARM, STW_MSG_MOTOR_STOP, STW_MSG_MOTOR_RUN};
    static const uint8_t accepted[] = {STW_MSG_HEARTBEAT, STW_MSG_GET_STATUS, STW_MSG_IDENTIFY, STW_MSG_CLEAR_FAULT};
    size_t i;
    power_on(ALL_CAPS);
    for (i = 0; i < sizeof refused; i++) {
        stw_message m = msg(refused[i]);
        if (refused[i] == STW_MSG_SET_LIMITS) m.u.set_limits = good_limits();
        if (refused[i] == STW_MSG_SET_SETPOINTS) m.u.set_setpoints.depth_um = 800, m.u.set_setpoints.rate_dhz = 1200;
        CHECK(cmd(m, NULL) == STW_ACK_STATUS_NOT_READY, "boot refuses 0x%02x not_ready", refused[i]);
    }
    for (i = 0; i < sizeof accepted; i++) CHECK(cmd(msg(accepted[i]), NULL) == STW_ACK_STATUS_OK, "boot accepts 0x%02x", accepted[i]);
    /* With a fault latched and no handshake, still the boot column. */
    CHECK(cmd(msg(STW_MSG_ESTOP), NULL) == STW_ACK_STATUS_OK, "estop in boot");
    CHECK(cmd(msg(STW_MSG_ARM), NULL) == STW_ACK_STATUS_NOT_READY, "faulted without handshake: not_ready");
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK && stp_state(&P) == STW_PEN_STATE_BOOT, "clear goes back to boot");
}

static void test_hello_and_version(void) {
    const stw_message *r;
    power_on(ALL_CAPS);
    CHECK(hello(STW_PROTO_MAJOR) == STW_ACK_STATUS_OK, "hello ok");
    r = find(STW_MSG_HELLO_REPLY);
    CHECK(r && strcmp(r->u.hello_reply.serial, "TEST-0001") == 0 && r->u.hello_reply.limits_crc == 0, "HELLO_REPLY after ACK");
    CHECK(got[0].id == STW_MSG_ACK, "ACK first");
    CHECK(set_limits(good_limits(), NULL) == STW_ACK_STATUS_OK, "limits");
    CHECK(hello(STW_PROTO_MAJOR) == STW_ACK_STATUS_OK && find(STW_MSG_HELLO_REPLY)->u.hello_reply.limits_crc == P.limits_crc &&
              P.limits_crc != 0, "rule 12: an accepted HELLO keeps the limits");
    CHECK(hello(STW_PROTO_MAJOR + 1u) == STW_ACK_STATUS_VERSION_MISMATCH, "another major refused");
    r = find(STW_MSG_HELLO_REPLY);
    CHECK(r && r->u.hello_reply.limits_crc == 0, "decided: HELLO_REPLY after version_mismatch carries limits_crc 0");
    CHECK(stp_state(&P) == STW_PEN_STATE_BOOT && !P.has_limits && P.deadman_ms == STW_DEADMAN_DEFAULT_MS, "back to boot");
}

static void test_limits_rule9(void) {
    stw_set_limits l;
    uint8_t d = 0xFF;
    power_on(ALL_CAPS);
    hello(STW_PROTO_MAJOR);
    l = good_limits(); l.depth_min_um = l.depth_max_um;
    CHECK(set_limits(l, &d) == STW_ACK_STATUS_BAD_FIELD && d == 0, "min < max, detail 0 (%u)", d);
    l = good_limits(); l.depth_trip_um = l.depth_max_um - 1;
    CHECK(set_limits(l, &d) == STW_ACK_STATUS_BAD_FIELD && d == 1, "max <= trip, detail 1");
    l = good_limits(); l.depth_trip_um = 1600;
    P.config.depth_ceiling_um = 1500;
    CHECK(set_limits(l, &d) == STW_ACK_STATUS_BAD_FIELD && d == 2, "trip <= the pen's own ceiling, detail 2");
    P.config.depth_ceiling_um = 2000;
    l = good_limits(); l.rate_stall_dhz = l.rate_min_dhz;
    CHECK(set_limits(l, &d) == STW_ACK_STATUS_BAD_FIELD && d == 3, "stall < min, detail 3");
    l = good_limits(); l.rate_min_dhz = 1450; l.rate_max_dhz = 1400;
    CHECK(set_limits(l, &d) == STW_ACK_STATUS_BAD_FIELD && d == 3, "min <= max, detail 3");
    l = good_limits(); l.rate_runaway_dhz = l.rate_max_dhz;
    CHECK(set_limits(l, &d) == STW_ACK_STATUS_BAD_FIELD && d == 4, "max < runaway, detail 4");
    /* Order: two failures answer the first. */
    l = good_limits(); l.depth_min_um = l.depth_max_um; l.rate_runaway_dhz = l.rate_max_dhz;
    CHECK(set_limits(l, &d) == STW_ACK_STATUS_BAD_FIELD && d == 0, "the first failing relation");
    CHECK(!P.has_limits, "nothing applied");
    CHECK(set_limits(good_limits(), NULL) == STW_ACK_STATUS_OK && find(STW_MSG_LIMITS), "LIMITS after ok");
    CHECK(find(STW_MSG_LIMITS)->u.limits.limits_crc == P.limits_crc, "read back");
    /* The CRC is CRC-32C over the 16 SET_LIMITS payload bytes. */
    {
        stw_message m = msg(STW_MSG_SET_LIMITS);
        uint8_t payload[STW_MAX_PAYLOAD];
        size_t n;
        m.u.set_limits = good_limits();
        n = stw_payload_encode(&m, payload);
        CHECK(n == 16 && stw_crc32c(payload, n) == P.limits_crc, "limits_crc");
    }
    CHECK(setpoints(800, 1200, NULL) == STW_ACK_STATUS_OK, "setpoints");
    CHECK(set_limits(good_limits(), NULL) == STW_ACK_STATUS_OK && P.depth_setpoint_um == 0, "accepting limits clears setpoints");
    CHECK(B.depth == 0 && B.rate == 0, "and the drive");
}

static void test_setpoints_rule10(void) {
    uint8_t d;
    power_on(ALL_CAPS);
    hello(STW_PROTO_MAJOR);
    CHECK(setpoints(800, 1200, NULL) == STW_ACK_STATUS_NO_LIMITS, "no limits");
    set_limits(good_limits(), NULL);
    CHECK(setpoints(1250, 1200, &d) == STW_ACK_STATUS_OUT_OF_LIMITS && d == 0, "depth out, field 0");
    CHECK(setpoints(800, 1450, &d) == STW_ACK_STATUS_OUT_OF_LIMITS && d == 1, "rate out, field 1");
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_NO_LIMITS, "ARM needs setpoints");
    CHECK(setpoints(800, 1200, NULL) == STW_ACK_STATUS_OK && B.depth == 800 && B.rate == 1200, "drive follows setpoints");
    CHECK(arm_with(P.limits_crc ^ 1u, NULL) == STW_ACK_STATUS_LIMITS_MISMATCH && !P.armed, "crc mismatch");
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_OK && P.armed, "armed");
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_OK && P.armed, "ARM while armed, same crc: ok");
    CHECK(set_limits(good_limits(), NULL) == STW_ACK_STATUS_ARMED_LOCKED, "rule 9: locked while armed");
    {
        stw_set_limits bad = good_limits();
        bad.depth_min_um = bad.depth_max_um;
        CHECK(set_limits(bad, NULL) == STW_ACK_STATUS_ARMED_LOCKED, "decided: an inconsistent SET_LIMITS while armed is armed_locked");
    }
    CHECK(arm_with(P.limits_crc ^ 1u, NULL) == STW_ACK_STATUS_LIMITS_MISMATCH && !P.armed, "mismatch while armed disarms");
}

static void test_arm_checks(void) {
    uint8_t d;
    armed_pen();
    cmd(msg(STW_MSG_DISARM), NULL);
    B.inputs = STP_IN_CARTRIDGE | STP_IN_PEDAL;
    stp_inputs_changed(&P, &H, T);
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_PEDAL_PRESSED, "rule 2: pedal down refuses ARM");
    inputs(STP_IN_CARTRIDGE);
    B.has_chip = 0;
    inputs(0);
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_NO_CARTRIDGE, "rule 7: no cartridge");
    B.has_chip = 1;
    B.chip.needle_count = 5;
    inputs(STP_IN_CARTRIDGE);
    CHECK(find(STW_MSG_CARTRIDGE) && find(STW_MSG_CARTRIDGE)->u.cartridge.event == STW_CARTRIDGE_EVENT_INSERTED, "inserted");
    CHECK(arm_with(P.limits_crc, &d) == STW_ACK_STATUS_CARTRIDGE_REJECTED && d == 1, "needle count");
    B.chip.needle_count = 3;
    B.chip.needle_diameter_um = 350;
    CHECK(arm_with(P.limits_crc, &d) == STW_ACK_STATUS_CARTRIDGE_REJECTED && d == 2, "needle diameter");
    B.chip.needle_diameter_um = 180;
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_OK, "180 um is in");
}

static void test_run_rule2(void) {
    armed_pen();
    inputs(STP_IN_CARTRIDGE | STP_IN_PEDAL);
    CHECK(B.motor == 0, "armed + pedal but no MOTOR_RUN: still");
    CHECK(cmd(msg(STW_MSG_MOTOR_RUN), NULL) == STW_ACK_STATUS_OK && B.motor == 1, "run + pedal: turning");
    CHECK(stp_state(&P) == STW_PEN_STATE_RUNNING, "running");
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_OK && B.motor == 1, "decided: ARM while running with the same crc is ok");
    inputs(STP_IN_CARTRIDGE);
    CHECK(B.motor == 0 && P.armed && stp_state(&P) == STW_PEN_STATE_ARMED, "pedal up: stops, stays armed");
    inputs(STP_IN_CARTRIDGE | STP_IN_PEDAL);
    CHECK(B.motor == 1, "pedal again");
    CHECK(cmd(msg(STW_MSG_MOTOR_STOP), NULL) == STW_ACK_STATUS_OK && B.motor == 0 && P.armed, "MOTOR_STOP: armed, still");
    CHECK(cmd(msg(STW_MSG_MOTOR_RUN), NULL) == STW_ACK_STATUS_OK && B.motor == 1, "run again");
    CHECK(cmd(msg(STW_MSG_DISARM), NULL) == STW_ACK_STATUS_OK && B.motor == 0 && !P.armed, "DISARM");
    CHECK(cmd(msg(STW_MSG_MOTOR_RUN), NULL) == STW_ACK_STATUS_NOT_ARMED, "idle: not_armed");
    CHECK(cmd(msg(STW_MSG_DISARM), NULL) == STW_ACK_STATUS_OK && cmd(msg(STW_MSG_MOTOR_STOP), NULL) == STW_ACK_STATUS_OK,
          "idle: DISARM and MOTOR_STOP are no-ops");
    running_pen();
    CHECK(hello(STW_PROTO_MAJOR) == STW_ACK_STATUS_OK && B.motor == 0 && !P.armed && P.depth_setpoint_um == 0, "rule 12");
}

static void test_depth_trip_rule3(void) {
    const stw_message *t;
    running_pen();
    T += 8000;
    stp_stroke(&P, &H, T, 900);
    take();
    CHECK(count(STW_MSG_TELEMETRY) == 1 && find(STW_MSG_TELEMETRY)->u.telemetry.peak_protrusion_um == 900, "a stroke's telemetry");
    CHECK(B.motor == 1, "under the trip");
    T += 8000;
    stp_stroke(&P, &H, T, 1301);
    take();
    t = find(STW_MSG_TELEMETRY);
    CHECK(t && t->u.telemetry.peak_protrusion_um == 1301, "the tripping stroke's TELEMETRY");
    CHECK(got[0].id == STW_MSG_TELEMETRY && find(STW_MSG_FAULT) && find(STW_MSG_FAULT)->u.fault.code == STW_FAULT_CODE_OVER_DEPTH &&
              find(STW_MSG_FAULT)->u.fault.value == 1301, "then FAULT over_depth with the peak");
    expect_latched(STW_FAULT_CODE_OVER_DEPTH);
    /* Exactly the trip does not trip. */
    running_pen();
    stp_stroke(&P, &H, T, 1300);
    CHECK(B.motor == 1, "1300 is not over 1300");
    /* The interrupt path: a position sample over the trip stops the motor before the main loop runs. */
    CHECK(stp_isr_position(&P, &H, T, 1200) == 0 && B.motor == 1, "under: nothing");
    CHECK(stp_isr_position(&P, &H, T, 1350) == 1 && B.motor == 0, "ISR: motor off at once");
    CHECK(!stp_motor_driven(&P), "and it stays off");
    tick(1000);
    CHECK(find(STW_MSG_FAULT) && find(STW_MSG_FAULT)->u.fault.value == 1350, "main context latches and reports it");
    expect_latched(STW_FAULT_CODE_OVER_DEPTH);
}

static void test_rate_rule4(void) {
    running_pen();
    B.tach_dhz = 1501;
    T += 1000;
    stp_stroke(&P, &H, T, 800);
    take();
    expect_latched(STW_FAULT_CODE_RATE_RUNAWAY);
    CHECK(find(STW_MSG_FAULT)->u.fault.value == 1501, "runaway during spin-up trips at once");
    running_pen();
    B.tach_dhz = 0;
    tick(249000);
    CHECK(B.motor == 1, "stall grace");
    tick(1000);
    expect_latched(STW_FAULT_CODE_STALL);
    /* Silent host across the counter's wrap (100 s steps past 71.6 minutes): the motor stays off.
     * The stall check across the wrap, with the host present, is test_rate_window_long_run. */
    running_pen();
    tick(300000);
    B.tach_dhz = 1200;
    for (int i = 0; i < 50; i++) tick(100000000u); /* ~83 minutes of 100 s steps: beyond the wrap */
    CHECK(B.motor == 0, "the deadman would have fired: no host frames (sanity)");
}

static void test_rate_window_long_run(void) {
    /* 80 minutes of running with the host heartbeating: no stall check blind spot at the wrap. */
    uint32_t i;
    running_pen();
    for (i = 0; i < 48000u; i++) {
        T += 100000u;
        {
            stw_message hb = msg(STW_MSG_HEARTBEAT);
            send_raw(++host_seq, &hb);
        }
        stp_tick(&P, &H, T);
    }
    take();
    CHECK(B.motor == 1, "still running after the counter wrapped");
    B.tach_dhz = 100;
    tick(1000);
    expect_latched(STW_FAULT_CODE_STALL);
}

static void test_deadman_rule5(void) {
    armed_pen();
    T += 300000;
    stp_tick(&P, &H, T);
    take();
    CHECK(P.armed, "decided: exactly deadman_ms of silence does not fire");
    tick(1);
    expect_latched(STW_FAULT_CODE_HOST_HEARTBEAT_LOST);
    /* Frames keep it alive, rejected frames do not. */
    armed_pen();
    tick(200000);
    cmd(msg(STW_MSG_HEARTBEAT), NULL);
    tick(200000);
    CHECK(P.armed, "a heartbeat reset it");
    {
        stw_message m = msg(STW_MSG_HEARTBEAT);
        uint8_t wire[STW_MAX_WIRE_BYTES];
        size_t n = stw_encode_frame(++host_seq, &m, wire, sizeof wire);
        wire[2] ^= 0x01; /* corrupt: bad CRC */
        stp_receive(&P, &H, T, wire, n);
        take();
        CHECK(got_n == 0, "a bad frame gets no answer");
    }
    tick(100001);
    expect_latched(STW_FAULT_CODE_HOST_HEARTBEAT_LOST);
    /* The interrupt path fires with a hung main loop. */
    armed_pen();
    CHECK(stp_isr_deadman(&P, &H, T + 300000) == 0, "not yet");
    CHECK(stp_isr_deadman(&P, &H, T + 300001) == 1 && B.motor == 0, "ISR deadman");
    tick(300001);
    expect_latched(STW_FAULT_CODE_HOST_HEARTBEAT_LOST);
    CHECK(count(STW_MSG_FAULT) == 1, "reported once");
}

static void test_estop_rule6(void) {
    running_pen();
    inputs(STP_IN_CARTRIDGE | STP_IN_PEDAL | STP_IN_ESTOP);
    expect_latched(STW_FAULT_CODE_ESTOP);
    CHECK(count(STW_MSG_FAULT) == 1 && find(STW_MSG_FAULT)->u.fault.detail == 1, "button: detail 1");
    CHECK(cmd(msg(STW_MSG_ESTOP), NULL) == STW_ACK_STATUS_OK && count(STW_MSG_FAULT) == 0, "idempotent: no second FAULT");
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_ESTOP_LATCHED, "ARM: estop_latched");
    CHECK(cmd(msg(STW_MSG_MOTOR_RUN), NULL) == STW_ACK_STATUS_ESTOP_LATCHED, "MOTOR_RUN: estop_latched");
    {
        uint8_t d;
        CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), &d) == STW_ACK_STATUS_CONDITION_PERSISTS && d == STW_FAULT_CODE_ESTOP, "button held");
    }
    inputs(STP_IN_CARTRIDGE);
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK && stp_state(&P) == STW_PEN_STATE_IDLE, "cleared to idle");
    CHECK(P.has_limits && P.depth_setpoint_um == 800, "rule 11 keeps limits and setpoints");
    /* E-stop on top of another fault: FAULT estop is sent, STATUS still names the first. */
    running_pen();
    B.tach_dhz = 2000;
    tick(1000);
    expect_latched(STW_FAULT_CODE_RATE_RUNAWAY);
    CHECK(cmd(msg(STW_MSG_ESTOP), NULL) == STW_ACK_STATUS_OK && find(STW_MSG_FAULT) &&
              find(STW_MSG_FAULT)->u.fault.code == STW_FAULT_CODE_ESTOP && find(STW_MSG_FAULT)->u.fault.detail == 2,
          "decided: ESTOP on another fault sends FAULT estop");
    CHECK(cmd(msg(STW_MSG_GET_STATUS), NULL) == STW_ACK_STATUS_OK && find(STW_MSG_STATUS)->u.status.fault == STW_FAULT_CODE_RATE_RUNAWAY &&
              (find(STW_MSG_STATUS)->u.status.flags & STW_PEN_FLAGS_ESTOP_LATCHED), "STATUS names the first fault, flags the e-stop");
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_ESTOP_LATCHED, "estop_latched takes precedence over fault_latched");
}

static void test_cartridge_rule7(void) {
    running_pen();
    B.has_chip = 0;
    inputs(STP_IN_PEDAL);
    CHECK(find(STW_MSG_CARTRIDGE) && find(STW_MSG_CARTRIDGE)->u.cartridge.event == STW_CARTRIDGE_EVENT_REMOVED &&
              strcmp(find(STW_MSG_CARTRIDGE)->u.cartridge.cartridge_id, "CART-1") == 0, "CARTRIDGE removed names it");
    expect_latched(STW_FAULT_CODE_CARTRIDGE_REMOVED);
    /* READ_CARTRIDGE */
    armed_pen();
    CHECK(cmd(msg(STW_MSG_READ_CARTRIDGE), NULL) == STW_ACK_STATUS_OK && find(STW_MSG_CARTRIDGE) &&
              find(STW_MSG_CARTRIDGE)->u.cartridge.event == STW_CARTRIDGE_EVENT_REPORT, "READ_CARTRIDGE reports");
    B.has_chip = 0;
    CHECK(cmd(msg(STW_MSG_READ_CARTRIDGE), NULL) == STW_ACK_STATUS_NO_CARTRIDGE && find(STW_MSG_CARTRIDGE) &&
              find(STW_MSG_CARTRIDGE)->u.cartridge.event == STW_CARTRIDGE_EVENT_REMOVED && count(STW_MSG_CARTRIDGE) == 1,
          "no data reply (the removal, seen as the command arrives, is reported)");
    /* A pen without a reader: no identity checks, no CARTRIDGE frames. */
    power_on(ALL_CAPS & ~STW_CAPABILITIES_CARTRIDGE_READER);
    hello(STW_PROTO_MAJOR);
    set_limits(good_limits(), NULL);
    setpoints(800, 1200, NULL);
    B.chip.needle_count = 9;
    CHECK(arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_OK, "no reader: no cartridge check");
    CHECK(cmd(msg(STW_MSG_READ_CARTRIDGE), NULL) == STW_ACK_STATUS_NO_CARTRIDGE, "no reader");
}

static void test_current_and_temperature_rule8(void) {
    uint8_t d;
    running_pen();
    B.current_ma = 1501;
    tick(1000);
    expect_latched(STW_FAULT_CODE_OVER_CURRENT);
    B.current_ma = 400;
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), &d) == STW_ACK_STATUS_CONDITION_PERSISTS && d == STW_FAULT_CODE_OVER_CURRENT,
          "decided: excess current measured with the motor stopped persists");
    B.current_ma = 15;
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK, "idle current: cleared");
    running_pen();
    B.temperature_dc = 601;
    tick(1000);
    expect_latched(STW_FAULT_CODE_OVER_TEMPERATURE);
    tick(1000);
    CHECK(count(STW_MSG_FAULT) == 0, "a hot pen does not repeat its FAULT");
    B.temperature_dc = 551;
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_CONDITION_PERSISTS, "5 degC below, not yet");
    B.temperature_dc = 550;
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK, "cooled");
}

static void test_depth_sensor(void) {
    int i;
    running_pen();
    for (i = 0; i < 9; i++) stp_stroke(&P, &H, T += 8000, STP_NOT_MEASURED_U16);
    CHECK(B.motor == 1, "9 missing readings");
    stp_stroke(&P, &H, T += 8000, STP_NOT_MEASURED_U16);
    take();
    expect_latched(STW_FAULT_CODE_DEPTH_SENSOR);
    running_pen();
    for (i = 0; i < 50; i++) stp_stroke(&P, &H, T += 8000, 777);
    CHECK(B.motor == 1, "50 strokes: 49 repeats");
    stp_stroke(&P, &H, T += 8000, 777);
    take();
    expect_latched(STW_FAULT_CODE_DEPTH_SENSOR);
}

static void test_duplicates_and_rejections(void) {
    stw_message m;
    uint32_t applied;
    uint8_t wire[8];
    armed_pen();
    m = msg(STW_MSG_GET_LIMITS);
    send_raw(++host_seq, &m);
    applied = P.commands_applied;
    send_raw(host_seq, &m);
    CHECK(P.commands_applied == applied && find(STW_MSG_ACK) && find(STW_MSG_LIMITS), "a retransmission: ACK and data again, not applied");
    m = msg(STW_MSG_MOTOR_RUN);
    send_raw(host_seq, &m);
    CHECK(P.commands_applied == applied + 1, "decided: (seq, id) alone; a different id with the same seq is new");
    /* A HELLO repeating the remembered (seq, HELLO) is applied again. */
    m = msg(STW_MSG_HELLO);
    m.u.hello.proto_major = STW_PROTO_MAJOR;
    send_raw(50, &m);
    applied = P.commands_applied;
    send_raw(50, &m);
    CHECK(P.commands_applied == applied + 1, "decided: HELLO is never a retransmission");
    /* unknown_id, bad_length, bad_field answered from the header. */
    {
        static const uint8_t raw_unknown[] = {0x7E, 9};
        static const uint8_t raw_short[] = {STW_MSG_SET_SETPOINTS, 10, 0x20};
        uint8_t raw[16];
        uint32_t crc;
        size_t i, n, w;
        const uint8_t *srcs[2] = {raw_unknown, raw_short};
        size_t lens[2] = {sizeof raw_unknown, sizeof raw_short};
        uint8_t want[2] = {STW_ACK_STATUS_UNKNOWN_MESSAGE, STW_ACK_STATUS_BAD_LENGTH};
        for (i = 0; i < 2; i++) {
            memcpy(raw, srcs[i], lens[i]);
            n = lens[i];
            crc = stw_crc32c(raw, n);
            raw[n++] = (uint8_t)crc; raw[n++] = (uint8_t)(crc >> 8); raw[n++] = (uint8_t)(crc >> 16); raw[n++] = (uint8_t)(crc >> 24);
            /* COBS by hand: no zero bytes in these frames except possibly the CRC; encode generally. */
            {
                uint8_t out[32];
                size_t code_at = 1, j;
                uint8_t code = 1;
                out[0] = 0;
                w = 2;
                for (j = 0; j < n; j++) {
                    if (raw[j] == 0) { out[code_at] = code; code_at = w++; code = 1; }
                    else { out[w++] = raw[j]; code++; }
                }
                out[code_at] = code;
                out[w++] = 0;
                stp_receive(&P, &H, T, out, w);
            }
            take();
            CHECK(find(STW_MSG_ACK) && find(STW_MSG_ACK)->u.ack.status == want[i], "answered %u", want[i]);
        }
    }
    /* A CRC-valid frame carrying a pen -> host id: ignored, no answer. */
    m = msg(STW_MSG_ACK);
    send_raw(3, &m);
    CHECK(got_n == 0, "decided: a pen -> host id from the host is ignored silently");
    (void)wire;
}

static void test_over_depth_switch(void) {
    uint8_t d;
    running_pen();
    inputs(STP_IN_CARTRIDGE | STP_IN_PEDAL | STP_IN_OVER_DEPTH);
    expect_latched(STW_FAULT_CODE_OVER_DEPTH);
    CHECK(find(STW_MSG_FAULT)->u.fault.detail == 1 && find(STW_MSG_FAULT)->u.fault.value == 1300, "switch: detail 1, the trip");
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), &d) == STW_ACK_STATUS_CONDITION_PERSISTS && d == STW_FAULT_CODE_OVER_DEPTH, "closed");
    inputs(STP_IN_CARTRIDGE);
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK, "opened: cleared");
    /* Closed at boot: latched at once. */
    memset(&B, 0, sizeof B);
    B.inputs = STP_IN_OVER_DEPTH;
    stp_boot(&P, &C, &H, T, STW_RESET_CAUSE_POWER_ON);
    CHECK(P.fault == STW_FAULT_CODE_OVER_DEPTH, "a closed switch at boot");
    /* Motion the pen did not drive is reported as motor_on. */
    armed_pen();
    B.tach_dhz = 1200;
    CHECK((stp_flags(&P, &H) & STW_PEN_FLAGS_MOTOR_ON) && !B.motor, "a turning motor that is not driven: motor_on");
    B.tach_dhz = 0;
    CHECK(!(stp_flags(&P, &H) & STW_PEN_FLAGS_MOTOR_ON), "still");
}

/* From the review: each of these was a bug. */
static void test_review_findings(void) {
    uint8_t d;
    stw_message m;
    /* An interrupt's stop is never undone by the main loop, and it is reported once. */
    running_pen();
    CHECK(stp_isr_position(&P, &H, T, 1400) == 1 && B.motor == 0, "ISR trip");
    stp_inputs_changed(&P, &H, T);
    take();
    CHECK(B.motor == 0, "the main loop does not switch it back on");
    T += 4000;
    stp_stroke(&P, &H, T, 1400); /* the port still reports the cut stroke */
    take();
    CHECK(count(STW_MSG_TELEMETRY) == 0 && count(STW_MSG_FAULT) == 0, "the cut stroke is not reported twice");
    CHECK(P.fault == STW_FAULT_CODE_OVER_DEPTH, "latched");
    /* A motor turning without being driven past the runaway rate latches (a welded relay). */
    armed_pen();
    B.tach_dhz = 3000;
    tick(1000);
    CHECK(P.fault == STW_FAULT_CODE_RATE_RUNAWAY, "runaway while not driven");
    /* Over-current while idle latches once. */
    armed_pen();
    B.current_ma = 2000;
    tick(1000);
    tick(1000);
    CHECK(P.fault == STW_FAULT_CODE_OVER_CURRENT && count(STW_MSG_FAULT) == 0, "over-current idle, reported once");
    /* MOTOR_RUN with the pedal already released at the line (the last tick saw it down). */
    armed_pen();
    inputs(STP_IN_CARTRIDGE | STP_IN_PEDAL);
    B.inputs = STP_IN_CARTRIDGE; /* released, no tick since */
    CHECK(cmd(msg(STW_MSG_MOTOR_RUN), NULL) == STW_ACK_STATUS_OK && B.motor == 0, "a stale pedal never starts the motor");
    /* A blank chip (all 0xFF) gives a CARTRIDGE the host can decode, and is refused. */
    armed_pen();
    cmd(msg(STW_MSG_DISARM), NULL);
    memset(&B.chip, 0xFF, sizeof B.chip);
    CHECK(cmd(msg(STW_MSG_READ_CARTRIDGE), NULL) == STW_ACK_STATUS_OK && find(STW_MSG_CARTRIDGE), "a blank chip reads");
    CHECK(find(STW_MSG_CARTRIDGE)->u.cartridge.needle_count == 64 && find(STW_MSG_CARTRIDGE)->u.cartridge.cartridge_id[0] == 0,
          "clamped and cut to printable text");
    CHECK(arm_with(P.limits_crc, &d) == STW_ACK_STATUS_CARTRIDGE_REJECTED, "and refused");
    /* A LOG longer than a payload is not sent (and does not overflow). */
    m = msg(STW_MSG_LOG);
    m.u.log.text_len = 56;
    memset(m.u.log.text, 'x', sizeof m.u.log.text);
    B.out_len = 0;
    stp_send(&P, &H, &m);
    CHECK(B.out_len == 0, "an over-long LOG is refused by the encoder");
    /* A depth setpoint of 0 is a setpoint when the limits allow it. */
    power_on(ALL_CAPS);
    hello(STW_PROTO_MAJOR);
    {
        stw_set_limits l = good_limits();
        l.depth_min_um = 0;
        set_limits(l, NULL);
    }
    CHECK(setpoints(0, 1200, NULL) == STW_ACK_STATUS_OK && arm_with(P.limits_crc, NULL) == STW_ACK_STATUS_OK, "depth 0 arms");
    /* A rejected command is remembered: the same (seq, id) with valid bytes is not applied. */
    power_on(ALL_CAPS);
    hello(STW_PROTO_MAJOR);
    set_limits(good_limits(), NULL);
    CHECK(setpoints(800, 1200, NULL) == STW_ACK_STATUS_OK, "setpoints");
    {
        stw_message sp = msg(STW_MSG_SET_SETPOINTS);
        sp.u.set_setpoints.depth_um = 900;
        sp.u.set_setpoints.rate_dhz = 100; /* outside the protocol range: bad_field */
        send_raw(++host_seq, &sp);
        CHECK(find(STW_MSG_ACK) && find(STW_MSG_ACK)->u.ack.status == STW_ACK_STATUS_BAD_FIELD, "bad_field");
        sp.u.set_setpoints.rate_dhz = 1200;
        send_raw(host_seq, &sp);
        CHECK(find(STW_MSG_ACK) && find(STW_MSG_ACK)->u.ack.status == STW_ACK_STATUS_BAD_FIELD && P.depth_setpoint_um == 800,
              "answered as remembered, not applied");
    }
    /* Deadlines: one already due reads 0; STATUS, the stall grace and IDENTIFY are deadlines. */
    power_on(ALL_CAPS);
    CHECK(stp_time_to_deadline(&P, T + 200000) == 0, "overdue is 0, never 'nothing due'");
    running_pen();
    CHECK(stp_time_to_deadline(&P, T) <= 250000u, "the stall grace");
}

static void test_periodic_and_identify(void) {
    int i;
    power_on(ALL_CAPS);
    take();
    tick(100000 - STP_TICK_MAX_US - 1);
    CHECK(count(STW_MSG_TELEMETRY) == 0, "not yet");
    tick(1);
    CHECK(count(STW_MSG_TELEMETRY) == 1, "idle TELEMETRY a tick before 100 ms: never late with a 1 ms tick");
    for (i = 0; i < 9; i++) tick(100000);
    CHECK(count(STW_MSG_STATUS) == 1, "STATUS every second");
    CHECK(B.kicks > 0, "the watchdog is kicked from the main loop");
    {
        stw_message m = msg(STW_MSG_IDENTIFY);
        m.u.identify.duration_ms = 500;
        CHECK(cmd(m, NULL) == STW_ACK_STATUS_OK && B.led == 1, "identify blinks");
    }
    tick(499000);
    CHECK(B.led == 1, "still");
    tick(1000);
    CHECK(B.led == 0, "done");
    CHECK(stp_time_to_deadline(&P, T) <= 100000u, "a deadline within the idle period");
}

/* Every state against every command: the answers of PROTOCOL.md section 7's table. */
static void test_state_table(void) {
    /* idle */
    power_on(ALL_CAPS);
    hello(STW_PROTO_MAJOR);
    CHECK(stp_state(&P) == STW_PEN_STATE_IDLE, "idle");
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK, "idle: CLEAR_FAULT no-op");
    CHECK(cmd(msg(STW_MSG_GET_LIMITS), NULL) == STW_ACK_STATUS_OK && find(STW_MSG_LIMITS)->u.limits.deadman_ms == 300,
          "GET_LIMITS before SET_LIMITS: zeros and the default deadman");
    CHECK(arm_with(0, NULL) == STW_ACK_STATUS_NO_LIMITS, "idle: ARM checks");
    /* armed */
    armed_pen();
    CHECK(cmd(msg(STW_MSG_GET_LIMITS), NULL) == STW_ACK_STATUS_OK, "armed: GET_LIMITS");
    CHECK(setpoints(900, 1200, NULL) == STW_ACK_STATUS_OK, "armed: SET_SETPOINTS");
    CHECK(cmd(msg(STW_MSG_READ_CARTRIDGE), NULL) == STW_ACK_STATUS_OK, "armed: READ_CARTRIDGE");
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK && P.armed, "armed: CLEAR_FAULT no-op, stays armed");
    /* faulted (with handshake) */
    cmd(msg(STW_MSG_ESTOP), NULL);
    inputs(STP_IN_CARTRIDGE);
    CHECK(set_limits(good_limits(), NULL) == STW_ACK_STATUS_OK, "faulted: SET_LIMITS yes");
    CHECK(setpoints(800, 1200, NULL) == STW_ACK_STATUS_OK, "faulted: SET_SETPOINTS yes");
    CHECK(cmd(msg(STW_MSG_DISARM), NULL) == STW_ACK_STATUS_OK && cmd(msg(STW_MSG_MOTOR_STOP), NULL) == STW_ACK_STATUS_OK, "faulted: no-ops");
    CHECK(cmd(msg(STW_MSG_CLEAR_FAULT), NULL) == STW_ACK_STATUS_OK && stp_state(&P) == STW_PEN_STATE_IDLE, "faulted -> idle");
    /* A latched non-estop fault: fault_latched with the code. */
    running_pen();
    B.tach_dhz = 1600;
    tick(1000);
    {
        uint8_t d;
        CHECK(arm_with(P.limits_crc, &d) == STW_ACK_STATUS_FAULT_LATCHED && d == STW_FAULT_CODE_RATE_RUNAWAY, "fault_latched, code");
        CHECK(cmd(msg(STW_MSG_MOTOR_RUN), &d) == STW_ACK_STATUS_FAULT_LATCHED && d == STW_FAULT_CODE_RATE_RUNAWAY, "run: fault_latched");
    }
    CHECK(hello(STW_PROTO_MAJOR + 1u) == STW_ACK_STATUS_VERSION_MISMATCH && stp_state(&P) == STW_PEN_STATE_FAULTED,
          "another major while faulted stays faulted");
}

static void test_no_motor_without_everything(void) {
    /* A pseudo-random walk over inputs and commands: the motor line is never on unless armed,
     * run-enabled, pedal down, limits set and nothing latched (the fuzzer's invariant, here
     * with a fixed seed). */
    uint32_t x = 12345;
    int i;
    power_on(ALL_CAPS);
    for (i = 0; i < 200000; i++) {
        uint32_t r;
        x ^= x << 13; x ^= x >> 17; x ^= x << 5;
        r = x % 16;
        switch (r) {
        case 0: hello(STW_PROTO_MAJOR); break;
        case 1: set_limits(good_limits(), NULL); break;
        case 2: setpoints(800, 1200, NULL); break;
        case 3: arm_with(P.limits_crc, NULL); break;
        case 4: cmd(msg(STW_MSG_MOTOR_RUN), NULL); break;
        case 5: inputs((uint8_t)(x >> 8) & 7u); break;
        case 6: B.tach_dhz = (uint16_t)(x >> 12) % 2000u; tick((x >> 4) % 20000u); break;
        case 7: stp_stroke(&P, &H, T += 5000, (uint16_t)((x >> 9) % 1600u)); take(); break;
        case 8: cmd(msg(STW_MSG_CLEAR_FAULT), NULL); break;
        case 9: if ((x >> 20) % 50 == 0) cmd(msg(STW_MSG_ESTOP), NULL); break;
        case 10: B.current_ma = (x >> 7) % 64 == 0 ? 2000 : 300; tick(1000); break;
        case 11: cmd(msg(STW_MSG_MOTOR_STOP), NULL); break;
        default: tick((x >> 3) % 50000u); break;
        }
        if (B.motor) {
            CHECK(P.armed && P.run_enabled && (P.inputs & STP_IN_PEDAL) && P.has_limits && P.fault == STW_FAULT_CODE_NONE &&
                      !P.estop_latched && !(B.inputs & STP_IN_ESTOP), "step %d: the motor runs only when rule 2 holds", i);
            if (failures) break;
        }
    }
}

int main(void) {
    test_boot();
    test_boot_column();
    test_hello_and_version();
    test_limits_rule9();
    test_setpoints_rule10();
    test_arm_checks();
    test_run_rule2();
    test_depth_trip_rule3();
    test_rate_rule4();
    test_rate_window_long_run();
    test_deadman_rule5();
    test_estop_rule6();
    test_cartridge_rule7();
    test_current_and_temperature_rule8();
    test_depth_sensor();
    test_duplicates_and_rejections();
    test_over_depth_switch();
    test_review_findings();
    test_periodic_and_identify();
    test_state_table();
    test_no_motor_without_everything();
    printf("firmware core: %d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
