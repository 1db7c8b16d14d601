/*
 * The Stipple pen firmware core: the whole pen side of PROTOCOL.md (handshake and version rule,
 * sequencing and duplicate suppression, limits and their checksum, setpoints, arming and the
 * state table, the stroke-rate window, the over-depth trip, the host-heartbeat deadman, e-stop
 * and latched faults, telemetry and status, cartridge checks, identify), written once.
 *
 * Portable C99 with no heap, no floating point and no libc beyond string.h: a pen is one
 * `stp_pen` value and the board is reached only through `stp_hal` (stipple_hal.h). Time is an
 * explicit input: every entry point takes `now_us`, the port's free-running microsecond counter,
 * which may wrap modulo 2^32 (the same counter the protocol calls pen_time_us). Every interval
 * the core measures is shorter than 35 minutes as long as stp_tick runs at least every 100 ms.
 *
 * When to call stp_tick: at least every STP_TICK_MAX_US (1 ms), or — a tickless port — exactly
 * when stp_time_to_deadline says. The periodic reports are sent when less than a tick remains
 * before their period ends, so a 1 ms tick still keeps TELEMETRY within 100 ms and STATUS within
 * 1 s. The pedal and e-stop are read again on every command and before the motor is switched
 * on, so a port that only polls its inputs never starts the motor on a stale pedal.
 *
 * Contexts: stp_isr_position and stp_isr_deadman may be called from interrupts; every other
 * entry point runs in one main context (never concurrently with itself).
 */
#ifndef STIPPLE_PEN_H
#define STIPPLE_PEN_H

#include <stddef.h>
#include <stdint.h>

#include "stipple_hal.h"
#include "stipple_wire.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The core's own version (HELLO_REPLY fw_* unless the port overrides it in its config). */
#define STP_CORE_VERSION_MAJOR 1u
#define STP_CORE_VERSION_MINOR 0u
#define STP_CORE_VERSION_PATCH 0u

/* Depth-sensor plausibility (FAULT depth_sensor): this many strokes in a row without a reading
 * (detail 1), or with the very same reading (detail 2), latch. */
#define STP_SENSOR_MISSING_STROKES 10u
#define STP_SENSOR_SAME_STROKES 50u
/* The longest a port may leave between two stp_tick calls (or leave a deadline unserved). */
#define STP_TICK_MAX_US 1000u

/* Rule 11: over-temperature is cleared only this far (0.1 degC) below the firmware's limit. */
#define STP_TEMPERATURE_CLEAR_MARGIN_DC 50

/* What a board is: compiled-in on a microcontroller, configured per pen by the simulator. */
typedef struct {
    char serial[17];          /* printable ASCII, NUL-padded; never empty */
    uint8_t fw_version[3];    /* major, minor, patch */
    uint8_t proto_major;      /* normally STW_PROTO_MAJOR (a test pen may speak another) */
    uint8_t proto_minor;
    uint16_t capabilities;    /* STW_CAPABILITIES_* */
    uint16_t depth_ceiling_um;/* compiled-in ceiling; held to at most STW_ABS_DEPTH_CEILING_UM */
    uint16_t over_current_ma; /* rule 8 thresholds, the firmware's own */
    int16_t over_temperature_dc;
} stp_config;

/* Reports a shutdown decided in interrupt context leaves for the main context to send. */
#define STP_PENDING_TRIP 0x01u
#define STP_PENDING_DEADMAN 0x02u

/* One pen. A plain value (no pointers): copying it copies the pen. Fields are read-only for
 * ports; use the stp_* functions. */
typedef struct {
    stp_config config;
    stw_decoder decoder;
    stw_set_limits limits;
    uint32_t limits_crc;
    uint32_t now_us;
    volatile uint32_t last_host_us; /* read by stp_isr_deadman */
    uint32_t last_telemetry_us;
    uint32_t last_status_us;
    uint32_t motor_on_us;
    uint32_t identify_until_us;
    uint32_t commands_applied;
    uint32_t stroke_count;        /* strokes since boot, wraps */
    int32_t last_reading_um;
    int32_t trip_value_um;
    uint32_t deadman_elapsed_ms;
    uint16_t deadman_ms;
    uint16_t depth_setpoint_um;
    uint16_t rate_setpoint_dhz;
    uint16_t missing_readings;
    uint16_t same_readings;
    uint16_t peak_since_frame_um; /* STP_NOT_MEASURED_U16: none */
    stw_cartridge cartridge;      /* the cartridge last seen in the slot */
    stw_cartridge reported_chip;  /* what the last ok READ_CARTRIDGE read (its data reply) */
    uint8_t has_limits;
    uint8_t has_setpoints;
    uint8_t handshake_done;
    volatile uint8_t armed;       /* read by stp_isr_deadman */
    uint8_t run_enabled;
    uint8_t fault;                /* STW_FAULT_CODE_* (the first latched) */
    uint8_t estop_latched;
    uint8_t inputs;               /* STP_IN_* as last read */
    uint8_t has_cartridge;
    uint8_t has_last_reading;
    volatile uint8_t motor_on;    /* what was last written to motor_enable */
    uint8_t motor_timing;         /* motor_on_us holds when the motor was last switched on */
    uint8_t motor_spun_up;        /* on for longer than the stall grace */
    uint8_t identifying;
    uint8_t trip_stroke_reported; /* stp_isr_position's stroke was reported from its trip */
    uint8_t reported_state;
    uint8_t tx_seq;
    uint8_t last_valid;           /* the duplicate filter holds an entry */
    uint8_t last_seq, last_id, last_status, last_detail;
    volatile uint8_t pending;     /* STP_PENDING_*: set in interrupt context */
} stp_pen;

/* Power-up, reset or brown-out (rule 1): everything forgotten, motor off, FAULT reset (detail =
 * cause, STW_RESET_CAUSE_*) sent once, a pressed e-stop latched, STATUS sent. */
void stp_boot(stp_pen *pen, const stp_config *config, const stp_hal *hal, uint32_t now_us, uint8_t reset_cause);

/* Bytes from the host. Each complete command is applied and answered before this returns. */
void stp_receive(stp_pen *pen, const stp_hal *hal, uint32_t now_us, const uint8_t *bytes, size_t len);

/* The main loop's periodic call (at least every STP_TICK_MAX_US, or at stp_time_to_deadline): the deadman, the rate
 * window, over-current and over-temperature, idle TELEMETRY, periodic STATUS, identify, the
 * inputs (for ports without edge interrupts), reports left by interrupts; kicks the watchdog. */
void stp_tick(stp_pen *pen, const stp_hal *hal, uint32_t now_us);

/* The pedal, e-stop or cartridge slot may have changed (an edge interrupt's deferred work, or a
 * simulator's input): re-read them and react at once. */
void stp_inputs_changed(stp_pen *pen, const stp_hal *hal, uint32_t now_us);

/* A stroke completed. peak_um is its peak protrusion from the depth sensor, or
 * STP_NOT_MEASURED_U16 without a reading. Sends that stroke's TELEMETRY, then applies the
 * over-depth trip (rule 3), the sensor plausibility checks, the rate window and over-current. */
void stp_stroke(stp_pen *pen, const stp_hal *hal, uint32_t now_us, uint16_t peak_um);

/* ISR. A position sample during the stroke (a depth sensor's conversion-complete interrupt):
 * over depth_trip_um stops the motor at once, from interrupt context, and the main context
 * latches over_depth at its next call. Returns 1 when it stopped the motor. */
int stp_isr_position(stp_pen *pen, const stp_hal *hal, uint32_t now_us, uint16_t protrusion_um);

/* ISR. The deadman from a timer interrupt, so a hung main loop still stops the needle: armed
 * and no valid host frame for deadman_ms stops the motor at once. Returns 1 when it did. */
int stp_isr_deadman(stp_pen *pen, const stp_hal *hal, uint32_t now_us);

/* Sends a TELEMETRY now: a port whose inputs change between strokes (a GPIO pen's pedal) tells
 * the host at once instead of at the next stroke or idle period. */
void stp_send_telemetry(stp_pen *pen, const stp_hal *hal, uint32_t now_us);

/* Sends any pen -> host message through the pen's numbering (a port's LOG lines). */
void stp_send(stp_pen *pen, const stp_hal *hal, const stw_message *msg);

/* 1 when the caller's sizes of the core's three structs are the core's own. A port in another
 * language (the simulator's Swift, over a cached import of this header) checks it once at start:
 * a stale view of stp_pen would let the core write past the caller's storage. */
int stp_layout_matches(size_t pen_size, size_t hal_size, size_t config_size);

/* Observation. */
uint8_t stp_state(const stp_pen *pen);        /* STW_PEN_STATE_* */
/* STW_PEN_FLAGS_*. motor_on is set while the motor is driven, and also while the tachometer sees
 * it turning at or above the stall rate without being driven (a welded relay, a shorted driver):
 * the host must see motion it did not ask for. */
uint16_t stp_flags(const stp_pen *pen, const stp_hal *hal);
int stp_motor_driven(const stp_pen *pen);     /* rule 2: armed, run, pedal, no fault, no e-stop */
/* Microseconds from now_us to the core's next timed decision (the deadman, idle TELEMETRY,
 * periodic STATUS, the end of the stall grace, the end of IDENTIFY); 0 when one is already due.
 * A simulator steps to it; a tickless port sleeps until it and then calls stp_tick. */
uint32_t stp_time_to_deadline(const stp_pen *pen, uint32_t now_us);

#ifdef __cplusplus
}
#endif

#endif
