/*
 * The link-only reference target: the firmware core and codec on a Cortex-M0+ with the wiring a
 * port needs (vector table, interrupts, a receive ring, the main loop), so that `make test`
 * measures what a real pen firmware costs in flash, RAM and stack. The peripheral addresses are
 * placeholders: this image links and is measured; it is not flashed to a board.
 */
#include <stdint.h>
#include <string.h>

#include "../cortex-m/cortex_m.h"
#include "stipple_pen.h"

/* Placeholder peripheral registers (a port uses its MCU's). */
#define REG(addr) (*(volatile uint32_t *)(addr))
#define MOTOR_EN REG(0x50000000u)
#define DEPTH_DAC REG(0x50000004u)
#define RATE_PWM REG(0x50000008u)
#define TACH_PERIOD_US REG(0x5000000Cu)
#define CURRENT_ADC REG(0x50000010u)
#define TEMP_ADC REG(0x50000014u)
#define INPUTS REG(0x50000018u)
#define UART_DATA REG(0x5000001Cu)
#define UART_STATUS REG(0x50000020u)
#define LED REG(0x50000024u)
#define WDT_KICK REG(0x50000028u)
#define TIMER_US REG(0x5000002Cu)
#define DEPTH_SAMPLE REG(0x50000030u)
#define CART_CHIP ((volatile const uint8_t *)0x50000100u)

static uint32_t irq_off(void *ctx) {
    uint32_t primask;
    (void)ctx;
    __asm volatile("mrs %0, primask\n cpsid i" : "=r"(primask)::"memory");
    return primask;
}
static void irq_on(void *ctx, uint32_t saved) {
    (void)ctx;
    __asm volatile("msr primask, %0" ::"r"(saved) : "memory");
}
static volatile uint32_t last_stroke_at; /* set by the stroke interrupt */
static volatile uint8_t stroke_seen;

static void motor(void *ctx, int on) {
    (void)ctx;
    if (on && !MOTOR_EN) stroke_seen = 0; /* a start begins a new measurement */
    MOTOR_EN = on ? 1u : 0u;
}
static void drive(void *ctx, uint16_t depth, uint16_t rate) { (void)ctx; DEPTH_DAC = depth; RATE_PWM = rate; }
/* Per stroke (PROTOCOL.md section 7, "Decisions"): the last stroke's period from the capture
 * register, and never less than the time since that stroke, so a silent tachometer reads as a
 * rate falling to zero. */
static uint16_t tach(void *ctx) {
    uint32_t period = TACH_PERIOD_US, since = TIMER_US - last_stroke_at;
    (void)ctx;
    if (!stroke_seen || period == 0u) return 0u;
    if (since > period) period = since;
    return (uint16_t)(10000000u / period > 65535u ? 65535u : 10000000u / period);
}
static uint16_t current(void *ctx) { (void)ctx; return (uint16_t)CURRENT_ADC; }
static int16_t temperature(void *ctx) { (void)ctx; return (int16_t)TEMP_ADC; }
static uint8_t inputs(void *ctx) { (void)ctx; return (uint8_t)INPUTS; }
static int cartridge(void *ctx, stw_cartridge *out) {
    (void)ctx;
    if (!(INPUTS & STP_IN_CARTRIDGE)) return 0;
    out->needle_count = CART_CHIP[0];
    out->needle_diameter_um = (uint16_t)(CART_CHIP[1] | (CART_CHIP[2] << 8));
    out->expiry_days = (uint16_t)(CART_CHIP[3] | (CART_CHIP[4] << 8));
    for (int i = 0; i < 16; i++) out->cartridge_id[i] = (char)CART_CHIP[5 + i];
    for (int i = 0; i < 12; i++) out->lot[i] = (char)CART_CHIP[21 + i];
    out->cartridge_id[16] = 0;
    out->lot[12] = 0;
    return 1;
}

/* Transmit ring, drained by the UART interrupt. */
static uint8_t tx[256];
static volatile uint8_t tx_head, tx_tail;
static void uart(void *ctx, const uint8_t *bytes, size_t n) {
    uint8_t used = (uint8_t)(tx_head - tx_tail);
    (void)ctx;
    /* Whole frames only: one that does not fit is dropped entire (TELEMETRY is superseded by the
     * next, a latched fault is repeated in every STATUS and TELEMETRY). */
    if (n > (size_t)(sizeof tx - 1u - used)) return;
    while (n--) {
        tx[tx_head] = *bytes++;
        tx_head = (uint8_t)(tx_head + 1u);
    }
}
static void led(void *ctx, int on) { (void)ctx; LED = on ? 1u : 0u; }
static void kick(void *ctx) { (void)ctx; WDT_KICK = 0xA5u; }

static const stp_hal hal = {
    0, motor, drive, tach, current, temperature, inputs, cartridge, uart, led, kick, irq_off, irq_on, 0,
};

static const stp_config config = {
    "REF-M0P-0001", {1, 0, 0}, STW_PROTO_MAJOR, STW_PROTO_MINOR,
    STW_CAPABILITIES_DEPTH_SENSOR | STW_CAPABILITIES_CARTRIDGE_READER | STW_CAPABILITIES_PEDAL | STW_CAPABILITIES_ESTOP_INPUT |
        STW_CAPABILITIES_CURRENT_SENSOR | STW_CAPABILITIES_TEMPERATURE_SENSOR | STW_CAPABILITIES_IDENTIFY_LED,
    2000, 1500, 600,
};

static stp_pen pen;
static uint8_t rx[128];
static volatile uint8_t rx_head, rx_tail;
static volatile uint8_t stroke_done;
static volatile uint16_t stroke_peak = STP_NOT_MEASURED_U16; /* none yet this stroke */

/* Interrupts. */
void uart_irq(void) {
    if (UART_STATUS & 1u) {
        uint8_t next = (uint8_t)((rx_head + 1u) % sizeof rx);
        uint8_t byte = (uint8_t)UART_DATA;
        if (next != rx_tail) {
            rx[rx_head] = byte;
            rx_head = next;
        }
    }
    if ((UART_STATUS & 2u) && tx_tail != tx_head) {
        UART_DATA = tx[tx_tail];
        tx_tail = (uint8_t)(tx_tail + 1u);
    }
}
void systick_irq(void) { (void)stp_isr_deadman(&pen, &hal, TIMER_US); }
void depth_adc_irq(void) {
    uint16_t um = (uint16_t)DEPTH_SAMPLE;
    if (stroke_peak == STP_NOT_MEASURED_U16 || um > stroke_peak) stroke_peak = um;
    (void)stp_isr_position(&pen, &hal, TIMER_US, um);
}
void stroke_irq(void) {
    last_stroke_at = TIMER_US;
    stroke_seen = 1;
    stroke_done = 1;
}

int main(void) {
    uint32_t last_tick;
    stp_boot(&pen, &config, &hal, TIMER_US, STW_RESET_CAUSE_POWER_ON);
    last_tick = TIMER_US;
    for (;;) {
        uint8_t chunk[16];
        uint8_t n = 0;
        while (rx_tail != rx_head && n < sizeof chunk) {
            chunk[n++] = rx[rx_tail];
            rx_tail = (uint8_t)((rx_tail + 1u) % sizeof rx);
        }
        if (n) stp_receive(&pen, &hal, TIMER_US, chunk, n);
        if (stroke_done) {
            uint32_t saved = irq_off(0);
            uint16_t peak = stroke_peak; /* taken and reset with the ADC interrupt masked */
            stroke_done = 0;
            stroke_peak = STP_NOT_MEASURED_U16;
            irq_on(0, saved);
            stp_stroke(&pen, &hal, TIMER_US, peak);
        }
        if ((uint32_t)(TIMER_US - last_tick) >= 1000u) {
            last_tick = TIMER_US;
            stp_tick(&pen, &hal, last_tick); /* also reads the inputs */
        }
    }
}

static void default_handler(void) {
    MOTOR_EN = 0u; /* any unexpected interrupt or fault: motor off, then the watchdog resets */
    for (;;) {}
}
__attribute__((section(".vectors"), used)) static void (*const vectors[])(void) = {
    (void (*)(void))&_estack, reset_handler, default_handler, default_handler, /* NMI, HardFault */
    0, 0, 0, 0, 0, 0, 0, default_handler, 0, 0, default_handler, systick_irq,
    uart_irq, depth_adc_irq, stroke_irq,
};
