#ifndef MALLOC_COUNTER_H
#define MALLOC_COUNTER_H
#include <stdint.h>
/* Number of malloc/calloc/realloc/aligned allocations made by this process so far. */
uint64_t malloc_counter_allocations(void);
#endif
