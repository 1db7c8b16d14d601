#include "stipple_callgrind.h"

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
int stipple_running_on_valgrind(void) { return RUNNING_ON_VALGRIND ? 1 : 0; }
void stipple_callgrind_toggle_collect(void) { CALLGRIND_TOGGLE_COLLECT; }
#else
int stipple_running_on_valgrind(void) { return 0; }
void stipple_callgrind_toggle_collect(void) {}
#endif
