/*
 * The pen firmware core's hardware seam: what a port supplies so that stipple_pen.c can run on
 * its board (a microcontroller), in a Linux process (ports/host) or inside the simulator
 * (HardwareSim, virtual time). See ../README.md, "Porting".
 *
 * The core never calls the HAL from anything but the context it was called from: a function the
 * core calls from stp_isr_* may run in interrupt context and must be ISR-safe (marked ISR below).
 * Every function receives `ctx`, the port's own pointer, so one process can run many pens.
 *
 * Time is not read through the HAL: every entry point of the core takes `now_us`, the port's
 * microsecond counter, as an argument. One explicit time input is what lets the simulator run the
 * same core on a virtual clock, and a test step it microsecond by microsecond.
 */
#ifndef STIPPLE_HAL_H
#define STIPPLE_HAL_H

#include <stddef.h>
#include <stdint.h>

#include "stipple_messages.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Bits of read_inputs. Each is 1 when the input is active (pedal down, e-stop pressed, a
 * cartridge in the slot), whatever the electrical polarity of the port's lines. */
#define STP_IN_PEDAL 0x01u
#define STP_IN_ESTOP 0x02u
#define STP_IN_CARTRIDGE 0x04u
/* The mechanical over-depth switch (rule 3: a pen without a depth sensor has one at the trip). */
#define STP_IN_OVER_DEPTH 0x08u

/* "Not measured", as the protocol writes it. */
#define STP_NOT_MEASURED_U16 0xFFFFu
#define STP_NOT_MEASURED_I16 (-32768)

typedef struct {
    void *ctx;
    /* ISR. Drive the motor (on != 0) or stop it within the current stroke (0). The core calls
     * it with 0 first thing in every shutdown, and may call it repeatedly with the same value.
     * The motor driver's enable MUST default to off in hardware (pull-down), so that a reset, a
     * brown-out or a hung core leaves the needle still. */
    void (*motor_enable)(void *ctx, int on);
    /* The depth actuator and the motor's commanded speed: protrusion in um, rate in 0.1 Hz.
     * (0, 0) means no setpoint: retract. */
    void (*drive_set)(void *ctx, uint16_t depth_um, uint16_t rate_dhz);
    /* ISR. The measured stroke rate in 0.1 Hz from the tachometer or the stroke sensor,
     * saturating at 65535. Per stroke, no averaging (PROTOCOL.md section 7, "Decisions"): the
     * inverse of the last complete stroke's period, and never more than the inverse of the time
     * since that stroke, so a silent tachometer reads as a rate falling to zero; 0 before the
     * first stroke after the motor starts. */
    uint16_t (*tach_rate_dhz)(void *ctx);
    /* Motor current in mA, STP_NOT_MEASURED_U16 without a sensor. */
    uint16_t (*current_ma)(void *ctx);
    /* Pen temperature in 0.1 degC, STP_NOT_MEASURED_I16 without a sensor. */
    int16_t (*temperature_dc)(void *ctx);
    /* The pedal (or hand switch), the e-stop button, the cartridge slot and the over-depth switch:
     * STP_IN_* bits. A pen without a cartridge sensor reports STP_IN_CARTRIDGE always. */
    uint8_t (*read_inputs)(void *ctx);
    /* The cartridge chip: fills *out (event is ignored) and returns 1, or returns 0 when the
     * slot is empty or the pen has no reader. */
    int (*cartridge_read)(void *ctx, stw_cartridge *out);
    /* Queue bytes for the UART (or USB CDC). Must not block for long: a port keeps a
     * transmit ring of at least 2 x STW_MAX_WIRE_BYTES and drops the oldest telemetry when full. */
    void (*uart_write)(void *ctx, const uint8_t *bytes, size_t len);
    /* The identify LED (0 off). May be NULL. */
    void (*identify_led)(void *ctx, int on);
    /* Kick the hardware watchdog. The core calls it from stp_tick only, so a hung main loop
     * resets the pen (rule 1). May be NULL on a port without one (the simulator models its own). */
    void (*watchdog_kick)(void *ctx);
    /* Mask interrupts and return the previous mask; restore it. Around the state an ISR shares
     * with the main loop. May be NULL on a port without interrupts (host, sim). */
    uint32_t (*irq_save)(void *ctx);
    void (*irq_restore)(void *ctx, uint32_t saved);
    /* A fault latched (called after the motor is off and the FAULT frame is queued). For a
     * port's own fault log or a simulator's trace. May be NULL. */
    void (*fault_latched)(void *ctx, uint8_t code);
} stp_hal;

#ifdef __cplusplus
}
#endif

#endif
