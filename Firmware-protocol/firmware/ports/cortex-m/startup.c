/*
 * Start-up shared by the Cortex-M ports (reference-m0plus, qemu-microbit): copy .data from flash,
 * zero .bss, run the port's main. The symbols come from each port's link.ld; each port keeps its
 * own vector table (its interrupts) and fault handler (its motor line).
 */
#include <stdint.h>

#include "cortex_m.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss;

void reset_handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    while (dst < &_edata) *dst++ = *src++;
    for (dst = &_sbss; dst < &_ebss;) *dst++ = 0;
    (void)main();
    for (;;) {}
}
