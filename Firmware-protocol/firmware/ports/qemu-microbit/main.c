/*
 * The qemu-microbit port: the firmware core on the BBC micro:bit's nRF51822 (a Cortex-M0), as
 * QEMU's `microbit` machine models it, with the UART on a host pty (`-serial pty`). It runs the
 * conformance suite the same way a real board does; the pen's sensors and actuators are not on a
 * micro:bit, so the board is a still pen: a conforming cartridge in the slot, the pedal and the
 * e-stop released, the motor line on P0.0 (driven, never turning).
 *
 * Polled, no interrupts: TIMER0 runs at 1 MHz as the microsecond counter (32 bits), the UART is
 * read whenever it has a byte, and stp_tick runs every millisecond.
 */
#include <stdint.h>
#include <string.h>

#include "../cortex-m/cortex_m.h"
#include "stipple_pen.h"

#define REG(addr) (*(volatile uint32_t *)(addr))
/* UART0 */
#define UART_STARTRX REG(0x40002000u)
#define UART_STARTTX REG(0x40002008u)
#define UART_RXDRDY REG(0x40002108u)
#define UART_TXDRDY REG(0x4000211Cu)
#define UART_ENABLE REG(0x40002500u)
#define UART_PSELTXD REG(0x4000250Cu)
#define UART_PSELRXD REG(0x40002514u)
#define UART_RXD REG(0x40002518u)
#define UART_TXD REG(0x4000251Cu)
#define UART_BAUDRATE REG(0x40002524u)
/* TIMER0 */
#define TIMER_START REG(0x40008000u)
#define TIMER_CAPTURE0 REG(0x40008040u)
#define TIMER_MODE REG(0x40008504u)
#define TIMER_BITMODE REG(0x40008508u)
#define TIMER_PRESCALER REG(0x40008510u)
#define TIMER_CC0 REG(0x40008540u)
/* GPIO */
#define GPIO_OUTSET REG(0x50000508u)
#define GPIO_OUTCLR REG(0x5000050Cu)
#define GPIO_DIRSET REG(0x50000518u)
#define MOTOR_PIN (1u << 0)

static uint32_t now_us(void) {
    TIMER_CAPTURE0 = 1u;
    return TIMER_CC0;
}

static void motor(void *ctx, int on) {
    (void)ctx;
    if (on) GPIO_OUTSET = MOTOR_PIN;
    else GPIO_OUTCLR = MOTOR_PIN;
}
static void drive(void *ctx, uint16_t depth, uint16_t rate) { (void)ctx; (void)depth; (void)rate; }
static uint16_t tach(void *ctx) { (void)ctx; return 0; }
static uint16_t current(void *ctx) { (void)ctx; return STP_NOT_MEASURED_U16; }
static int16_t temperature(void *ctx) { (void)ctx; return STP_NOT_MEASURED_I16; }
static uint8_t inputs(void *ctx) { (void)ctx; return STP_IN_CARTRIDGE; }
static int cartridge(void *ctx, stw_cartridge *out) {
    (void)ctx;
    memset(out, 0, sizeof *out);
    out->needle_count = 3;
    out->needle_diameter_um = 250;
    out->expiry_days = 21500;
    memcpy(out->cartridge_id, "QEMU-CART-0001", 14);
    memcpy(out->lot, "L2026-12", 8);
    return 1;
}
static void uart(void *ctx, const uint8_t *bytes, size_t n) {
    (void)ctx;
    while (n--) {
        UART_TXDRDY = 0u;
        UART_TXD = *bytes++;
        while (!UART_TXDRDY) {}
    }
}

static const stp_hal hal = {
    0, motor, drive, tach, current, temperature, inputs, cartridge, uart, 0, 0, 0, 0, 0,
};

static const stp_config config = {
    "QEMU-MICROBIT-1", {STP_CORE_VERSION_MAJOR, STP_CORE_VERSION_MINOR, STP_CORE_VERSION_PATCH},
    STW_PROTO_MAJOR, STW_PROTO_MINOR,
    STW_CAPABILITIES_CARTRIDGE_READER | STW_CAPABILITIES_PEDAL | STW_CAPABILITIES_ESTOP_INPUT,
    STW_ABS_DEPTH_CEILING_UM, 1500, 600,
};

static stp_pen pen;

int main(void) {
    uint32_t last_tick;
    GPIO_DIRSET = MOTOR_PIN;
    GPIO_OUTCLR = MOTOR_PIN; /* motor off before anything else */
    TIMER_MODE = 0u;         /* timer */
    TIMER_BITMODE = 3u;      /* 32 bits */
    TIMER_PRESCALER = 4u;    /* 16 MHz / 2^4 = 1 MHz */
    TIMER_START = 1u;
    UART_PSELTXD = 24u;
    UART_PSELRXD = 25u;
    UART_BAUDRATE = 0x01D7E000u; /* 115200 */
    UART_ENABLE = 4u;
    UART_STARTTX = 1u;
    UART_STARTRX = 1u;
    stp_boot(&pen, &config, &hal, now_us(), STW_RESET_CAUSE_POWER_ON);
    last_tick = now_us();
    for (;;) {
        if (UART_RXDRDY) {
            uint8_t byte;
            UART_RXDRDY = 0u;
            byte = (uint8_t)UART_RXD;
            stp_receive(&pen, &hal, now_us(), &byte, 1);
        }
        if ((uint32_t)(now_us() - last_tick) >= 1000u) {
            last_tick = now_us();
            stp_tick(&pen, &hal, last_tick);
        }
    }
}

static void fault_handler(void) {
    GPIO_OUTCLR = MOTOR_PIN;
    for (;;) {}
}
__attribute__((section(".vectors"), used)) static void (*const vectors[])(void) = {
    (void (*)(void))&_estack, reset_handler, fault_handler, fault_handler,
};
