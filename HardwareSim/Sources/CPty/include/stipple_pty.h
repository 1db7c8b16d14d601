#ifndef STIPPLE_PTY_H
#define STIPPLE_PTY_H
#include <stddef.h>
/* Opens a pseudo-terminal master (posix_openpt, grantpt, unlockpt) and writes the slave's
 * path into name. Returns the master fd, or -1 with errno set. These calls sit behind
 * feature macros that the Swift Glibc module does not define, hence this shim. */
int stipple_open_pty(char *name, size_t capacity);
#endif
