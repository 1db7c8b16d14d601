#ifndef STIPPLE_CALLGRIND_H
#define STIPPLE_CALLGRIND_H
/* Valgrind client requests for the instruction counter; no-ops when not running under
 * valgrind, or when valgrind's headers were missing at build time. */

/* 1 if the process runs under valgrind and the headers were there to ask. */
int stipple_running_on_valgrind(void);

/* Starts or stops callgrind's counting (run callgrind with --collect-atstart=no). */
void stipple_callgrind_toggle_collect(void);
#endif
