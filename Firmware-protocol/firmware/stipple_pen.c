/*
 * The Stipple pen firmware core. See include/stipple_pen.h and ../PROTOCOL.md section 7; the
 * rule numbers below are that section's.
 */
#include "stipple_pen.h"

#include <string.h>

#define US_PER_MS 1000u
/* The periodic reports go out when less than one tick remains of their period (section 8's
 * "never less often than"), so a port ticking every STP_TICK_MAX_US is never late. */
#define TELEMETRY_DUE_US (STW_TELEMETRY_IDLE_PERIOD_MS * US_PER_MS - STP_TICK_MAX_US)
#define STATUS_DUE_US (STW_STATUS_PERIOD_MS * US_PER_MS - STP_TICK_MAX_US)
#define STALL_GRACE_US (STW_STALL_GRACE_MS * US_PER_MS)

/* ---- small helpers ------------------------------------------------------------------------ */

/* Elapsed microseconds from `since` to `now` on the wrapping counter. */
static uint32_t elapsed(uint32_t now, uint32_t since) { return (uint32_t)(now - since); }

static uint32_t irq_save(const stp_hal *hal) { return hal->irq_save ? hal->irq_save(hal->ctx) : 0u; }
static void irq_restore(const stp_hal *hal, uint32_t saved) {
    if (hal->irq_restore) hal->irq_restore(hal->ctx, saved);
}

static int pedal(const stp_pen *pen) { return (pen->inputs & STP_IN_PEDAL) != 0; }
static int estop_button(const stp_pen *pen) { return (pen->inputs & STP_IN_ESTOP) != 0; }
static int has_cap(const stp_pen *pen, uint16_t cap) { return (pen->config.capabilities & cap) != 0; }

int stp_motor_driven(const stp_pen *pen) {
    return pen->armed && pen->run_enabled && pedal(pen) && pen->fault == STW_FAULT_CODE_NONE && !estop_button(pen) &&
           !pen->estop_latched && pen->pending == 0;
}

uint8_t stp_state(const stp_pen *pen) {
    if (pen->fault != STW_FAULT_CODE_NONE) return STW_PEN_STATE_FAULTED;
    if (!pen->handshake_done) return STW_PEN_STATE_BOOT;
    if (stp_motor_driven(pen)) return STW_PEN_STATE_RUNNING;
    return pen->armed ? STW_PEN_STATE_ARMED : STW_PEN_STATE_IDLE;
}

static uint16_t measured_rate(const stp_hal *hal) { return hal->tach_rate_dhz(hal->ctx); }

uint16_t stp_flags(const stp_pen *pen, const stp_hal *hal) {
    uint16_t f = 0;
    uint16_t stall = pen->has_limits ? pen->limits.rate_stall_dhz : STW_ABS_RATE_STALL_MIN_DHZ;
    if (pen->handshake_done) f |= STW_PEN_FLAGS_HANDSHAKE_DONE;
    if (pen->has_limits) f |= STW_PEN_FLAGS_LIMITS_SET;
    if (pen->armed) f |= STW_PEN_FLAGS_ARMED;
    if (pen->run_enabled) f |= STW_PEN_FLAGS_RUN_ENABLED;
    if (stp_motor_driven(pen) || measured_rate(hal) >= stall) f |= STW_PEN_FLAGS_MOTOR_ON;
    if (pedal(pen)) f |= STW_PEN_FLAGS_PEDAL_PRESSED;
    if (estop_button(pen)) f |= STW_PEN_FLAGS_ESTOP_PRESSED;
    if (pen->estop_latched) f |= STW_PEN_FLAGS_ESTOP_LATCHED;
    if (pen->has_cartridge) f |= STW_PEN_FLAGS_CARTRIDGE_PRESENT;
    if (pen->fault != STW_FAULT_CODE_NONE) f |= STW_PEN_FLAGS_FAULT_LATCHED;
    return f;
}

int stp_layout_matches(size_t pen_size, size_t hal_size, size_t config_size) {
    return pen_size == sizeof(stp_pen) && hal_size == sizeof(stp_hal) && config_size == sizeof(stp_config);
}

/* ---- sending -------------------------------------------------------------------------------- */

void stp_send(stp_pen *pen, const stp_hal *hal, const stw_message *msg) {
    uint8_t wire[STW_MAX_WIRE_BYTES];
    size_t n = stw_encode_frame(pen->tx_seq, msg, wire, sizeof wire);
    if (n == 0) return; /* not a message this codec knows: nothing is sent, nothing numbered */
    pen->tx_seq = (uint8_t)(pen->tx_seq + 1u);
    hal->uart_write(hal->ctx, wire, n);
}

static void send_status(stp_pen *pen, const stp_hal *hal) {
    stw_message m;
    memset(&m, 0, sizeof m);
    pen->reported_state = stp_state(pen);
    m.id = STW_MSG_STATUS;
    m.u.status.state = pen->reported_state;
    m.u.status.flags = stp_flags(pen, hal);
    m.u.status.fault = pen->fault;
    m.u.status.depth_setpoint_um = pen->depth_setpoint_um;
    m.u.status.rate_setpoint_dhz = pen->rate_setpoint_dhz;
    m.u.status.pen_time_us = pen->now_us;
    stp_send(pen, hal, &m);
    pen->last_status_us = pen->now_us;
}

static void send_telemetry(stp_pen *pen, const stp_hal *hal) {
    stw_message m;
    uint16_t rate = measured_rate(hal);
    memset(&m, 0, sizeof m);
    m.id = STW_MSG_TELEMETRY;
    m.u.telemetry.pen_time_us = pen->now_us;
    m.u.telemetry.stroke_count = pen->stroke_count;
    m.u.telemetry.peak_protrusion_um = pen->peak_since_frame_um;
    m.u.telemetry.stroke_rate_dhz = rate > 5000u ? 5000u : rate;
    m.u.telemetry.motor_current_ma = hal->current_ma(hal->ctx);
    m.u.telemetry.temperature_dc = hal->temperature_dc(hal->ctx);
    m.u.telemetry.flags = stp_flags(pen, hal);
    stp_send(pen, hal, &m);
    pen->peak_since_frame_um = STP_NOT_MEASURED_U16;
    pen->last_telemetry_us = pen->now_us;
}

static void send_fault(stp_pen *pen, const stp_hal *hal, uint8_t code, uint16_t detail, int32_t value) {
    stw_message m;
    memset(&m, 0, sizeof m);
    m.id = STW_MSG_FAULT;
    m.u.fault.code = code;
    m.u.fault.detail = detail;
    m.u.fault.value = value;
    m.u.fault.pen_time_us = pen->now_us;
    stp_send(pen, hal, &m);
}

static void send_ack(stp_pen *pen, const stp_hal *hal, uint8_t seq, uint8_t id, uint8_t status, uint8_t detail) {
    stw_message m;
    memset(&m, 0, sizeof m);
    m.id = STW_MSG_ACK;
    m.u.ack.acked_seq = seq;
    m.u.ack.acked_id = id;
    m.u.ack.status = status;
    m.u.ack.detail = detail;
    stp_send(pen, hal, &m);
}

static void send_cartridge(stp_pen *pen, const stp_hal *hal, uint8_t event) {
    stw_message m;
    memset(&m, 0, sizeof m);
    m.id = STW_MSG_CARTRIDGE;
    m.u.cartridge = pen->cartridge;
    m.u.cartridge.event = event;
    stp_send(pen, hal, &m);
}

static void send_limits(stp_pen *pen, const stp_hal *hal) {
    stw_message m;
    memset(&m, 0, sizeof m);
    m.id = STW_MSG_LIMITS;
    if (pen->has_limits) {
        m.u.limits.depth_min_um = pen->limits.depth_min_um;
        m.u.limits.depth_max_um = pen->limits.depth_max_um;
        m.u.limits.depth_trip_um = pen->limits.depth_trip_um;
        m.u.limits.rate_min_dhz = pen->limits.rate_min_dhz;
        m.u.limits.rate_max_dhz = pen->limits.rate_max_dhz;
        m.u.limits.rate_stall_dhz = pen->limits.rate_stall_dhz;
        m.u.limits.rate_runaway_dhz = pen->limits.rate_runaway_dhz;
    }
    m.u.limits.deadman_ms = pen->deadman_ms;
    m.u.limits.limits_crc = pen->limits_crc;
    stp_send(pen, hal, &m);
}

static void send_hello_reply(stp_pen *pen, const stp_hal *hal) {
    stw_message m;
    memset(&m, 0, sizeof m);
    m.id = STW_MSG_HELLO_REPLY;
    m.u.hello_reply.proto_major = pen->config.proto_major;
    m.u.hello_reply.proto_minor = pen->config.proto_minor;
    m.u.hello_reply.fw_major = pen->config.fw_version[0];
    m.u.hello_reply.fw_minor = pen->config.fw_version[1];
    m.u.hello_reply.fw_patch = pen->config.fw_version[2];
    m.u.hello_reply.capabilities = pen->config.capabilities;
    memcpy(m.u.hello_reply.serial, pen->config.serial, sizeof m.u.hello_reply.serial);
    m.u.hello_reply.limits_crc = pen->limits_crc;
    m.u.hello_reply.depth_ceiling_um = pen->config.depth_ceiling_um;
    stp_send(pen, hal, &m);
}

/* ---- outputs and state changes ---------------------------------------------------------------- */

/* Interrupts are masked from the decision to the write: an interrupt's stop (stp_isr_*) cannot
 * land between them and be undone, and motor_on always says what the line was last told. */
static void write_motor(stp_pen *pen, const stp_hal *hal, int on) {
    uint32_t saved = irq_save(hal);
    if (on && !stp_motor_driven(pen)) on = 0; /* an interrupt stopped it since the caller looked */
    if (on) pen->trip_stroke_reported = 0;    /* a new run: its strokes are new */
    pen->motor_on = (uint8_t)(on != 0);
    hal->motor_enable(hal->ctx, on != 0);
    irq_restore(hal, saved);
}


/* After anything that may change the state: the motor line follows rule 2, the spin-up timer
 * starts and stops with it, and a changed state is reported at once (section 8). */
static void settle(stp_pen *pen, const stp_hal *hal) {
    int driven = stp_motor_driven(pen);
    if (driven && !pen->motor_on) {
        /* Before a start, the pedal and e-stop as they are now, not as the last tick saw them. A
         * released pedal is taken at once; a pressed e-stop keeps the motor still and is latched
         * by the next read of the inputs (stp_tick, stp_receive, stp_inputs_changed). */
        uint8_t fresh = hal->read_inputs(hal->ctx);
        pen->inputs = (uint8_t)((pen->inputs & (uint8_t)~STP_IN_PEDAL) | (fresh & STP_IN_PEDAL));
        driven = stp_motor_driven(pen) && !(fresh & STP_IN_ESTOP);
    }
    if (driven != (int)pen->motor_on) write_motor(pen, hal, driven);
    if (driven) {
        if (!pen->motor_timing) {
            pen->motor_timing = 1;
            pen->motor_spun_up = 0;
            pen->motor_on_us = pen->now_us;
        }
    } else {
        pen->motor_timing = 0;
        pen->motor_spun_up = 0;
    }
    if (stp_state(pen) != pen->reported_state) send_status(pen, hal);
}

static void stop_motion(stp_pen *pen) {
    pen->armed = 0;
    pen->run_enabled = 0;
}

/* The one shutdown routine (Klipper's shutdown() is the model): the motor off first, then the
 * state, then the report. The first latched fault is kept; an e-stop already latched changes
 * nothing and sends no second FAULT (rule 6). An e-stop on top of another fault is reported
 * (FAULT estop) while STATUS keeps naming the first fault (PROTOCOL.md section 7, rule 6). */
static void shutdown(stp_pen *pen, const stp_hal *hal, uint8_t code, uint16_t detail, int32_t value) {
    uint32_t saved;
    write_motor(pen, hal, 0);
    saved = irq_save(hal);
    stop_motion(pen);
    irq_restore(hal, saved);
    /* Already latched for this very reason: nothing new to report (rule 6 for the e-stop). */
    if (code == STW_FAULT_CODE_ESTOP ? pen->estop_latched : pen->fault == code) return;
    saved = irq_save(hal);
    if (code == STW_FAULT_CODE_ESTOP) pen->estop_latched = 1;
    if (pen->fault == STW_FAULT_CODE_NONE) pen->fault = code;
    irq_restore(hal, saved);
    send_fault(pen, hal, code, detail, value);
    if (hal->fault_latched) hal->fault_latched(hal->ctx, code);
    settle(pen, hal);
}

/* Shutdowns an interrupt decided are latched and reported from the main context. */
static void take_pending(stp_pen *pen, const stp_hal *hal) {
    uint32_t saved;
    uint8_t pending;
    if (pen->pending == 0) return;
    saved = irq_save(hal);
    pending = pen->pending;
    pen->pending = 0;
    irq_restore(hal, saved);
    if (pending & STP_PENDING_TRIP) {
        /* Rule 3 as for a completed stroke: that stroke's TELEMETRY with its peak, then FAULT;
         * the stroke's own completion, if the port still reports it, is not reported again. */
        pen->stroke_count++;
        pen->peak_since_frame_um = (uint16_t)pen->trip_value_um;
        send_telemetry(pen, hal);
        shutdown(pen, hal, STW_FAULT_CODE_OVER_DEPTH, 0, pen->trip_value_um);
        pen->trip_stroke_reported = 1;
    }
    if (pending & STP_PENDING_DEADMAN) {
        shutdown(pen, hal, STW_FAULT_CODE_HOST_HEARTBEAT_LOST, 0, (int32_t)pen->deadman_elapsed_ms);
    }
}

static void advance(stp_pen *pen, const stp_hal *hal, uint32_t now_us) {
    pen->now_us = now_us;
    take_pending(pen, hal);
}

/* ---- inputs --------------------------------------------------------------------------------- */

static int same_cartridge(const stw_cartridge *a, const stw_cartridge *b) {
    return a->needle_count == b->needle_count && a->needle_diameter_um == b->needle_diameter_um &&
           a->expiry_days == b->expiry_days && memcmp(a->cartridge_id, b->cartridge_id, sizeof a->cartridge_id) == 0 &&
           memcmp(a->lot, b->lot, sizeof a->lot) == 0;
}

/* A text field as the protocol allows it: printable ASCII, then NUL padding. A chip's text is
 * cut at its first other byte (a blank EEPROM reads 0xFF). */
static void printable_text(char *text, size_t size) {
    size_t i;
    int cut = 0;
    for (i = 0; i < size; i++) {
        if (!cut && (text[i] < 0x20 || text[i] > 0x7E)) cut = 1;
        if (cut) text[i] = 0;
    }
}

/* The chip, held to the CARTRIDGE message's ranges, so the frame is never one the host's
 * decoder rejects (the ARM checks then refuse what is out of range). */
static int read_chip(stp_pen *pen, const stp_hal *hal, stw_cartridge *out) {
    memset(out, 0, sizeof *out);
    if (!has_cap(pen, STW_CAPABILITIES_CARTRIDGE_READER) || !hal->cartridge_read(hal->ctx, out)) return 0;
    out->event = 0;
    if (out->needle_count > 64u) out->needle_count = 64u;
    if (out->needle_diameter_um > 1000u) out->needle_diameter_um = 1000u;
    printable_text(out->cartridge_id, sizeof out->cartridge_id);
    printable_text(out->lot, sizeof out->lot);
    return 1;
}

/* Reads the slot. Without a reader the pen still sees whether a cartridge sits in it. */
static int read_cartridge(stp_pen *pen, const stp_hal *hal, stw_cartridge *out) {
    memset(out, 0, sizeof *out);
    if (has_cap(pen, STW_CAPABILITIES_CARTRIDGE_READER)) return read_chip(pen, hal, out);
    return (hal->read_inputs(hal->ctx) & STP_IN_CARTRIDGE) != 0;
}

static void read_inputs(stp_pen *pen, const stp_hal *hal) {
    uint8_t before = pen->inputs;
    stw_cartridge seen;
    int present;
    pen->inputs = hal->read_inputs(hal->ctx);
    /* Rule 6: the button latches in every state, once. */
    if ((pen->inputs & STP_IN_ESTOP) && !(before & STP_IN_ESTOP)) shutdown(pen, hal, STW_FAULT_CODE_ESTOP, 1, 0);
    /* Rule 3: the switch sits at the trip; its closing is the over-depth stroke (detail 1). */
    if ((pen->inputs & STP_IN_OVER_DEPTH) && !(before & STP_IN_OVER_DEPTH)) {
        shutdown(pen, hal, STW_FAULT_CODE_OVER_DEPTH, 1, pen->has_limits ? (int32_t)pen->limits.depth_trip_um : 0);
    }
    present = read_cartridge(pen, hal, &seen);
    if (present && (!pen->has_cartridge || !same_cartridge(&seen, &pen->cartridge))) {
        pen->cartridge = seen;
        pen->has_cartridge = 1;
        if (has_cap(pen, STW_CAPABILITIES_CARTRIDGE_READER)) send_cartridge(pen, hal, STW_CARTRIDGE_EVENT_INSERTED);
    } else if (!present && pen->has_cartridge) {
        pen->has_cartridge = 0;
        if (has_cap(pen, STW_CAPABILITIES_CARTRIDGE_READER)) send_cartridge(pen, hal, STW_CARTRIDGE_EVENT_REMOVED);
        /* Rule 7. */
        if (pen->armed) shutdown(pen, hal, STW_FAULT_CODE_CARTRIDGE_REMOVED, 0, 0);
    }
}

void stp_inputs_changed(stp_pen *pen, const stp_hal *hal, uint32_t now_us) {
    advance(pen, hal, now_us);
    read_inputs(pen, hal);
    settle(pen, hal);
}

/* ---- boot ------------------------------------------------------------------------------------- */

void stp_boot(stp_pen *pen, const stp_config *config, const stp_hal *hal, uint32_t now_us, uint8_t reset_cause) {
    stw_cartridge seen;
    /* The motor first: whatever the pen was doing before the reset stops now. */
    hal->motor_enable(hal->ctx, 0);
    memset(pen, 0, sizeof *pen);
    pen->config = *config;
    pen->config.serial[16] = 0;
    if (pen->config.depth_ceiling_um > STW_ABS_DEPTH_CEILING_UM) pen->config.depth_ceiling_um = STW_ABS_DEPTH_CEILING_UM;
    stw_decoder_init(&pen->decoder);
    pen->now_us = now_us;
    pen->last_host_us = now_us;
    pen->last_telemetry_us = now_us;
    pen->last_status_us = now_us;
    pen->deadman_ms = STW_DEADMAN_DEFAULT_MS;
    pen->peak_since_frame_um = STP_NOT_MEASURED_U16;
    pen->reported_state = STW_PEN_STATE_BOOT;
    hal->drive_set(hal->ctx, 0, 0);
    if (hal->identify_led) hal->identify_led(hal->ctx, 0);
    /* The cartridge in the slot at power-up is known without a CARTRIDGE frame. */
    pen->has_cartridge = (uint8_t)read_cartridge(pen, hal, &seen);
    if (pen->has_cartridge) pen->cartridge = seen;
    send_fault(pen, hal, STW_FAULT_CODE_RESET, reset_cause, 0);
    pen->inputs = (uint8_t)(hal->read_inputs(hal->ctx) & (uint8_t)~(STP_IN_ESTOP | STP_IN_OVER_DEPTH));
    read_inputs(pen, hal); /* a held e-stop or a closed switch latches at once (rules 3 and 6 hold in boot) */
    send_status(pen, hal);
}

/* ---- commands ------------------------------------------------------------------------------- */

typedef struct {
    uint8_t status;
    uint8_t detail;
} answer;

static answer make(uint8_t status, uint8_t detail) {
    answer a;
    a.status = status;
    a.detail = detail;
    return a;
}

/* Rule 9: the relations in the order the rule lists them; the first that fails gives the lower
 * field index of the two it relates (depth_trip_um's for the ceiling). The ceiling is the pen's
 * own compiled-in one (HELLO_REPLY depth_ceiling_um), never more than the protocol's 2000 um. */
static int inconsistent_field(const stp_pen *pen, const stw_set_limits *l) {
    if (!(l->depth_min_um < l->depth_max_um)) return 0;
    if (!(l->depth_max_um <= l->depth_trip_um)) return 1;
    if (!(l->depth_trip_um <= pen->config.depth_ceiling_um)) return 2;
    if (!(l->rate_stall_dhz < l->rate_min_dhz)) return 3;
    if (!(l->rate_min_dhz <= l->rate_max_dhz)) return 3;
    if (!(l->rate_max_dhz < l->rate_runaway_dhz)) return 4;
    return -1;
}

static uint32_t limits_checksum(const stw_set_limits *l) {
    stw_message m;
    uint8_t payload[STW_MAX_PAYLOAD];
    size_t n;
    memset(&m, 0, sizeof m);
    m.id = STW_MSG_SET_LIMITS;
    m.u.set_limits = *l;
    n = stw_payload_encode(&m, payload);
    return stw_crc32c(payload, n);
}

/* (0, 0) clears them: a rate is never 0 (its protocol range starts at 40 Hz). */
static void set_setpoints(stp_pen *pen, const stp_hal *hal, uint16_t depth_um, uint16_t rate_dhz) {
    pen->has_setpoints = rate_dhz != 0;
    pen->depth_setpoint_um = depth_um;
    pen->rate_setpoint_dhz = rate_dhz;
    hal->drive_set(hal->ctx, depth_um, rate_dhz);
}

/* Rule 11: "cause gone" per fault code; limits and setpoints are kept, the pen stays disarmed. */
static answer clear_fault(stp_pen *pen, const stp_hal *hal) {
    if (pen->fault == STW_FAULT_CODE_NONE && !pen->estop_latched) return make(STW_ACK_STATUS_OK, 0);
    if (estop_button(pen)) return make(STW_ACK_STATUS_CONDITION_PERSISTS, STW_FAULT_CODE_ESTOP);
    if (pen->inputs & STP_IN_OVER_DEPTH) return make(STW_ACK_STATUS_CONDITION_PERSISTS, STW_FAULT_CODE_OVER_DEPTH);
    if (pen->fault == STW_FAULT_CODE_OVER_TEMPERATURE) {
        int16_t t = hal->temperature_dc(hal->ctx);
        if (t != STP_NOT_MEASURED_I16 && (int32_t)t > (int32_t)pen->config.over_temperature_dc - STP_TEMPERATURE_CLEAR_MARGIN_DC) {
            return make(STW_ACK_STATUS_CONDITION_PERSISTS, pen->fault);
        }
    }
    /* Over-current is cleared when no excess current is measured with the motor stopped: the
     * reading must be at most the idle current a stopped motor draws (a tenth of the limit). */
    if (pen->fault == STW_FAULT_CODE_OVER_CURRENT) {
        uint16_t ma = hal->current_ma(hal->ctx);
        if (ma != STP_NOT_MEASURED_U16 && ma > pen->config.over_current_ma / 10u) {
            return make(STW_ACK_STATUS_CONDITION_PERSISTS, pen->fault);
        }
    }
    pen->fault = STW_FAULT_CODE_NONE;
    pen->estop_latched = 0;
    pen->missing_readings = 0;
    pen->same_readings = 0;
    stop_motion(pen);
    return make(STW_ACK_STATUS_OK, 0);
}

static answer arm(stp_pen *pen, const stp_hal *hal, uint32_t crc) {
    stw_cartridge seen;
    if (pen->estop_latched || estop_button(pen)) return make(STW_ACK_STATUS_ESTOP_LATCHED, 0);
    if (pen->fault != STW_FAULT_CODE_NONE) return make(STW_ACK_STATUS_FAULT_LATCHED, pen->fault);
    if (pen->armed) {
        /* Rule 10: the same limits is a no-op; other limits mean host and pen disagree: fail safe. */
        if (crc == pen->limits_crc) return make(STW_ACK_STATUS_OK, 0);
        stop_motion(pen);
        return make(STW_ACK_STATUS_LIMITS_MISMATCH, 0);
    }
    if (!pen->has_limits || !pen->has_setpoints) return make(STW_ACK_STATUS_NO_LIMITS, 0);
    if (crc != pen->limits_crc) return make(STW_ACK_STATUS_LIMITS_MISMATCH, 0);
    if (has_cap(pen, STW_CAPABILITIES_CARTRIDGE_READER)) {
        /* Read the chip again: the identity checked is the one in the slot now. */
        if (!read_chip(pen, hal, &seen)) return make(STW_ACK_STATUS_NO_CARTRIDGE, 0);
        if (seen.needle_count != STW_ABS_NEEDLE_COUNT) return make(STW_ACK_STATUS_CARTRIDGE_REJECTED, 1);
        if (seen.needle_diameter_um < STW_ABS_NEEDLE_DIAMETER_MIN_UM || seen.needle_diameter_um > STW_ABS_NEEDLE_DIAMETER_MAX_UM) {
            return make(STW_ACK_STATUS_CARTRIDGE_REJECTED, 2);
        }
    }
    if (pedal(pen)) return make(STW_ACK_STATUS_PEDAL_PRESSED, 0);
    if (pen->inputs & STP_IN_OVER_DEPTH) return make(STW_ACK_STATUS_FAULT_LATCHED, STW_FAULT_CODE_OVER_DEPTH);
    pen->armed = 1;
    pen->run_enabled = 0;
    return make(STW_ACK_STATUS_OK, 0);
}

static answer apply(stp_pen *pen, const stp_hal *hal, const stw_message *m) {
    switch (m->id) {
    case STW_MSG_HELLO:
        /* Rule 12: every HELLO stops, disarms and clears the setpoints; a latched fault stays. */
        stop_motion(pen);
        set_setpoints(pen, hal, 0, 0);
        if (m->u.hello.proto_major != pen->config.proto_major) {
            /* Another major: back to boot with no limits (the deadman back to its default). */
            pen->handshake_done = 0;
            pen->has_limits = 0;
            memset(&pen->limits, 0, sizeof pen->limits);
            pen->limits_crc = 0;
            pen->deadman_ms = STW_DEADMAN_DEFAULT_MS;
            return make(STW_ACK_STATUS_VERSION_MISMATCH, pen->config.proto_major);
        }
        /* An accepted HELLO keeps the limits, so HELLO_REPLY's limits_crc names them. */
        pen->handshake_done = 1;
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_HEARTBEAT:
    case STW_MSG_GET_STATUS:
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_ESTOP:
        shutdown(pen, hal, STW_FAULT_CODE_ESTOP, 2, 0);
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_IDENTIFY:
        pen->identify_until_us = pen->now_us + (uint32_t)m->u.identify.duration_ms * US_PER_MS;
        pen->identifying = m->u.identify.duration_ms != 0;
        if (hal->identify_led) hal->identify_led(hal->ctx, pen->identifying);
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_CLEAR_FAULT:
        return clear_fault(pen, hal);
    default:
        break;
    }
    if (!pen->handshake_done) return make(STW_ACK_STATUS_NOT_READY, 0);
    switch (m->id) {
    case STW_MSG_SET_LIMITS: {
        int field;
        if (pen->armed) return make(STW_ACK_STATUS_ARMED_LOCKED, 0);
        field = inconsistent_field(pen, &m->u.set_limits);
        if (field >= 0) return make(STW_ACK_STATUS_BAD_FIELD, (uint8_t)field);
        pen->limits = m->u.set_limits;
        pen->has_limits = 1;
        pen->limits_crc = limits_checksum(&pen->limits);
        pen->deadman_ms = pen->limits.deadman_ms;
        set_setpoints(pen, hal, 0, 0);
        return make(STW_ACK_STATUS_OK, 0);
    }
    case STW_MSG_GET_LIMITS:
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_SET_SETPOINTS: {
        const stw_set_setpoints *sp = &m->u.set_setpoints;
        if (!pen->has_limits) return make(STW_ACK_STATUS_NO_LIMITS, 0);
        if (sp->depth_um < pen->limits.depth_min_um || sp->depth_um > pen->limits.depth_max_um) {
            return make(STW_ACK_STATUS_OUT_OF_LIMITS, 0);
        }
        if (sp->rate_dhz < pen->limits.rate_min_dhz || sp->rate_dhz > pen->limits.rate_max_dhz) {
            return make(STW_ACK_STATUS_OUT_OF_LIMITS, 1);
        }
        set_setpoints(pen, hal, sp->depth_um, sp->rate_dhz);
        return make(STW_ACK_STATUS_OK, 0);
    }
    case STW_MSG_ARM:
        return arm(pen, hal, m->u.arm.limits_crc);
    case STW_MSG_DISARM:
        stop_motion(pen);
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_MOTOR_RUN:
        if (pen->estop_latched || estop_button(pen)) return make(STW_ACK_STATUS_ESTOP_LATCHED, 0);
        if (pen->fault != STW_FAULT_CODE_NONE) return make(STW_ACK_STATUS_FAULT_LATCHED, pen->fault);
        if (!pen->armed) return make(STW_ACK_STATUS_NOT_ARMED, 0);
        pen->run_enabled = 1;
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_MOTOR_STOP:
        pen->run_enabled = 0;
        return make(STW_ACK_STATUS_OK, 0);
    case STW_MSG_READ_CARTRIDGE:
        /* The identity read here is the one the data reply carries (and repeats for a
         * retransmission): one read, so an ok is always followed by its CARTRIDGE. */
        if (!read_chip(pen, hal, &pen->reported_chip)) return make(STW_ACK_STATUS_NO_CARTRIDGE, 0);
        return make(STW_ACK_STATUS_OK, 0);
    default:
        return make(STW_ACK_STATUS_UNKNOWN_MESSAGE, 0);
    }
}

/* The data reply that follows an ACK (section 5), with current values: also after a
 * retransmission's repeated ACK. */
static void data_reply(stp_pen *pen, const stp_hal *hal, uint8_t id, uint8_t status) {
    switch (id) {
    case STW_MSG_HELLO:
        send_hello_reply(pen, hal);
        break;
    case STW_MSG_SET_LIMITS:
    case STW_MSG_GET_LIMITS:
        if (status == STW_ACK_STATUS_OK) send_limits(pen, hal);
        break;
    case STW_MSG_GET_STATUS:
        send_status(pen, hal);
        break;
    case STW_MSG_READ_CARTRIDGE:
        if (status == STW_ACK_STATUS_OK) {
            stw_message m;
            memset(&m, 0, sizeof m);
            m.id = STW_MSG_CARTRIDGE;
            m.u.cartridge = pen->reported_chip;
            m.u.cartridge.event = STW_CARTRIDGE_EVENT_REPORT;
            stp_send(pen, hal, &m);
        }
        break;
    default:
        break;
    }
}

static void handle(stp_pen *pen, const stp_hal *hal, const stw_frame *f) {
    uint8_t id = f->msg.id;
    answer a;
    /* A CRC-valid frame carrying a pen -> host id is not a host command: it is ignored, and it
     * is not a sign of the host's life (PROTOCOL.md section 5). */
    if (id == 0 || id > 0x7Fu) return;
    pen->last_host_us = pen->now_us;
    if (id == STW_MSG_HELLO) {
        pen->last_valid = 0;
    } else if (pen->last_valid && pen->last_seq == f->seq && pen->last_id == id) {
        /* A retransmission, recognised by (seq, msg_id) alone: answered again, never applied twice. */
        send_ack(pen, hal, f->seq, id, pen->last_status, pen->last_detail);
        data_reply(pen, hal, id, pen->last_status);
        return;
    }
    a = apply(pen, hal, &f->msg);
    pen->commands_applied++;
    pen->last_valid = 1;
    pen->last_seq = f->seq;
    pen->last_id = id;
    pen->last_status = a.status;
    pen->last_detail = a.detail;
    send_ack(pen, hal, f->seq, id, a.status, a.detail);
    data_reply(pen, hal, id, a.status);
    settle(pen, hal);
}

void stp_receive(stp_pen *pen, const stp_hal *hal, uint32_t now_us, const uint8_t *bytes, size_t len) {
    size_t i;
    stw_frame f;
    advance(pen, hal, now_us);
    read_inputs(pen, hal); /* ARM and MOTOR_RUN judge the pedal and e-stop as they are now */
    for (i = 0; i < len; i++) {
        stw_result r = stw_decoder_push(&pen->decoder, bytes[i], &f);
        switch (r) {
        case STW_FRAME:
            handle(pen, hal, &f);
            break;
        case STW_REJECT_UNKNOWN_ID:
        case STW_REJECT_BAD_LENGTH:
        case STW_REJECT_BAD_FIELD: {
            /* The CRC was good: answer so the host learns at once (section 2). Not applied, and
             * not a sign of life for the deadman. */
            uint8_t id = f.msg.id;
            uint8_t status = r == STW_REJECT_UNKNOWN_ID ? STW_ACK_STATUS_UNKNOWN_MESSAGE
                             : r == STW_REJECT_BAD_LENGTH ? STW_ACK_STATUS_BAD_LENGTH : STW_ACK_STATUS_BAD_FIELD;
            uint8_t detail = r == STW_REJECT_UNKNOWN_ID ? 0 : f.detail;
            if (id == 0 || id > 0x7Fu) break;
            if (pen->last_valid && pen->last_seq == f.seq && pen->last_id == id) {
                /* (seq, msg_id) acknowledged before: the remembered answer, whatever the bytes. */
                send_ack(pen, hal, f.seq, id, pen->last_status, pen->last_detail);
                data_reply(pen, hal, id, pen->last_status);
                break;
            }
            pen->last_valid = 1;
            pen->last_seq = f.seq;
            pen->last_id = id;
            pen->last_status = status;
            pen->last_detail = detail;
            send_ack(pen, hal, f.seq, id, status, detail);
            break;
        }
        default:
            break;
        }
    }
    settle(pen, hal);
}

void stp_send_telemetry(stp_pen *pen, const stp_hal *hal, uint32_t now_us) {
    advance(pen, hal, now_us);
    send_telemetry(pen, hal);
}

/* ---- strokes, time and interrupts ----------------------------------------------------------- */

/* Rule 4: a runaway trips at once, always (during spin-up too); only the stall check waits out
 * the spin-up grace. The rate is the HAL's per-stroke measurement. */
static void check_rate(stp_pen *pen, const stp_hal *hal) {
    uint16_t dhz = measured_rate(hal);
    uint16_t runaway = pen->has_limits ? pen->limits.rate_runaway_dhz : STW_ABS_RATE_RUNAWAY_MAX_DHZ;
    /* A runaway is one whether the motor is driven or not (a welded relay, a shorted driver). */
    if (dhz > runaway && pen->fault == STW_FAULT_CODE_NONE) {
        shutdown(pen, hal, STW_FAULT_CODE_RATE_RUNAWAY, 0, dhz);
        return;
    }
    if (!stp_motor_driven(pen) || !pen->has_limits || !pen->motor_timing) return;
    if (!pen->motor_spun_up) {
        if (elapsed(pen->now_us, pen->motor_on_us) < STALL_GRACE_US) return;
        pen->motor_spun_up = 1; /* from here on no elapsed time is needed, so no wrap can hide a stall */
    }
    if (dhz < pen->limits.rate_stall_dhz) shutdown(pen, hal, STW_FAULT_CODE_STALL, 0, dhz);
}

/* Rule 8 whatever the drive; once latched, a current that stays high is not reported again. */
static void check_current(stp_pen *pen, const stp_hal *hal) {
    uint16_t ma = hal->current_ma(hal->ctx);
    if (ma != STP_NOT_MEASURED_U16 && ma > pen->config.over_current_ma && pen->fault == STW_FAULT_CODE_NONE) {
        shutdown(pen, hal, STW_FAULT_CODE_OVER_CURRENT, 0, ma);
    }
}

void stp_stroke(stp_pen *pen, const stp_hal *hal, uint32_t now_us, uint16_t peak_um) {
    int has_reading;
    advance(pen, hal, now_us);
    if (pen->trip_stroke_reported) {
        /* This is the stroke stp_isr_position cut: its TELEMETRY and FAULT went already. */
        pen->trip_stroke_reported = 0;
        settle(pen, hal);
        return;
    }
    pen->stroke_count++;
    has_reading = has_cap(pen, STW_CAPABILITIES_DEPTH_SENSOR) && peak_um != STP_NOT_MEASURED_U16;
    if (has_cap(pen, STW_CAPABILITIES_DEPTH_SENSOR)) {
        if (!has_reading) {
            if (pen->missing_readings < 0xFFFFu) pen->missing_readings++;
        } else {
            pen->missing_readings = 0;
        }
        if (has_reading && pen->has_last_reading && (int32_t)peak_um == pen->last_reading_um) {
            if (pen->same_readings < 0xFFFFu) pen->same_readings++;
        } else {
            pen->same_readings = 0;
        }
        if (has_reading) {
            pen->last_reading_um = peak_um;
            pen->has_last_reading = 1;
        }
    }
    pen->peak_since_frame_um = has_reading ? peak_um : STP_NOT_MEASURED_U16;
    send_telemetry(pen, hal);
    /* Rule 3: the stroke over the trip is the last one (its TELEMETRY went first). */
    if (has_reading && pen->has_limits && peak_um > pen->limits.depth_trip_um) {
        shutdown(pen, hal, STW_FAULT_CODE_OVER_DEPTH, 0, peak_um);
        return;
    }
    if (pen->missing_readings >= STP_SENSOR_MISSING_STROKES || pen->same_readings >= STP_SENSOR_SAME_STROKES) {
        shutdown(pen, hal, STW_FAULT_CODE_DEPTH_SENSOR, pen->missing_readings >= STP_SENSOR_MISSING_STROKES ? 1 : 2,
                 pen->has_last_reading ? pen->last_reading_um : -1);
        return;
    }
    check_rate(pen, hal);
    check_current(pen, hal);
    settle(pen, hal);
}

void stp_tick(stp_pen *pen, const stp_hal *hal, uint32_t now_us) {
    int16_t t;
    advance(pen, hal, now_us);
    if (hal->watchdog_kick) hal->watchdog_kick(hal->ctx);
    read_inputs(pen, hal);
    /* Rule 5: silence strictly longer than deadman_ms fires (150 ms of silence does not trip a
     * 150 ms deadman; 150 ms and 1 us does). */
    if (pen->armed && elapsed(pen->now_us, pen->last_host_us) > (uint32_t)pen->deadman_ms * US_PER_MS) {
        shutdown(pen, hal, STW_FAULT_CODE_HOST_HEARTBEAT_LOST, 0, (int32_t)(elapsed(pen->now_us, pen->last_host_us) / US_PER_MS));
    }
    /* Only a pen without a latched fault latches over-temperature: the motor is off anyway, and a
     * hot pen must not repeat FAULT on every tick (CLEAR_FAULT waits for it to cool). */
    t = hal->temperature_dc(hal->ctx);
    if (t != STP_NOT_MEASURED_I16 && t > pen->config.over_temperature_dc && pen->fault == STW_FAULT_CODE_NONE) {
        shutdown(pen, hal, STW_FAULT_CODE_OVER_TEMPERATURE, 0, t);
    }
    check_current(pen, hal);
    /* A motor that does not turn at all completes no strokes: the stall is checked here too. */
    check_rate(pen, hal);
    if (elapsed(pen->now_us, pen->last_telemetry_us) >= TELEMETRY_DUE_US) send_telemetry(pen, hal);
    if (elapsed(pen->now_us, pen->last_status_us) >= STATUS_DUE_US) send_status(pen, hal);
    if (pen->identifying && (int32_t)(pen->identify_until_us - pen->now_us) <= 0) {
        pen->identifying = 0;
        if (hal->identify_led) hal->identify_led(hal->ctx, 0);
    }
    settle(pen, hal);
}

int stp_isr_position(stp_pen *pen, const stp_hal *hal, uint32_t now_us, uint16_t protrusion_um) {
    (void)now_us;
    if (!pen->has_limits || protrusion_um <= pen->limits.depth_trip_um || (pen->pending & STP_PENDING_TRIP)) return 0;
    hal->motor_enable(hal->ctx, 0);
    pen->motor_on = 0;
    pen->trip_value_um = protrusion_um;
    pen->pending |= STP_PENDING_TRIP;
    return 1;
}

int stp_isr_deadman(stp_pen *pen, const stp_hal *hal, uint32_t now_us) {
    uint32_t silent = elapsed(now_us, pen->last_host_us);
    if (!pen->armed || (pen->pending & STP_PENDING_DEADMAN) || silent <= (uint32_t)pen->deadman_ms * US_PER_MS) return 0;
    hal->motor_enable(hal->ctx, 0);
    pen->motor_on = 0;
    pen->deadman_elapsed_ms = silent / US_PER_MS;
    pen->pending |= STP_PENDING_DEADMAN;
    return 1;
}

/* Folds one deadline, `period` after `since`, into *best (0 when it is already due). */
static void fold_deadline(uint32_t *best, uint32_t now_us, uint32_t since, uint32_t period) {
    uint32_t gone = elapsed(now_us, since);
    uint32_t left = gone >= period ? 0u : period - gone;
    if (left < *best) *best = left;
}

uint32_t stp_time_to_deadline(const stp_pen *pen, uint32_t now_us) {
    uint32_t best = UINT32_MAX;
    /* The deadman: the first microsecond past deadman_ms. */
    if (pen->armed) fold_deadline(&best, now_us, pen->last_host_us, (uint32_t)pen->deadman_ms * US_PER_MS + 1u);
    fold_deadline(&best, now_us, pen->last_telemetry_us, TELEMETRY_DUE_US);
    fold_deadline(&best, now_us, pen->last_status_us, STATUS_DUE_US);
    if (pen->motor_timing && !pen->motor_spun_up) fold_deadline(&best, now_us, pen->motor_on_us, STALL_GRACE_US);
    if (pen->identifying) {
        int32_t left = (int32_t)(pen->identify_until_us - now_us);
        uint32_t u = left <= 0 ? 0u : (uint32_t)left;
        if (u < best) best = u;
    }
    if (pen->pending) best = 0;
    return best;
}
