#ifndef BENCH_PTY_H
#define BENCH_PTY_H
#include <stddef.h>
/// The baselines, in plain C so that they are as bare as a process on a pty can be: opens
/// `path` raw, then forever waits in poll() for bytes, reads them, and (echo) writes them back.
/// Returns only if the terminal cannot be opened.
int bench_pty_loop(const char *path, int echo);

/// Burns a CPU forever at normal priority: the load of a busy workstation (`--load N`).
void bench_spin(void);

/// SCHED_FIFO at `priority` for the calling thread (processes and threads it starts run at
/// normal priority): 0, or an errno (not root).
int bench_realtime(int priority);
#endif
