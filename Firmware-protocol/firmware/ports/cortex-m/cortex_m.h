/* The Cortex-M ports' shared start-up (startup.c). */
#ifndef STIPPLE_CORTEX_M_H
#define STIPPLE_CORTEX_M_H

#include <stdint.h>

/* The top of the stack, from the port's link.ld: the vector table's first word. */
extern uint32_t _estack;
/* Copies .data, zeroes .bss and runs main: the vector table's second word. */
void reset_handler(void);
int main(void);

#endif
