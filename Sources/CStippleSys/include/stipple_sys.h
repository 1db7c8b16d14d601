#ifndef STIPPLE_SYS_H
#define STIPPLE_SYS_H

#include <stdint.h>

/// The layout of Linux's `struct ucred` (SO_PEERCRED), which Glibc's Swift module does not
/// import without _GNU_SOURCE.
typedef struct stipple_ucred {
    int32_t pid;
    uint32_t uid;
    uint32_t gid;
} stipple_ucred;

/// ioctl(fd, TIOCEXCL): no further open() of this terminal succeeds (except as root).
/// ioctl is variadic, so Swift cannot call it directly. Returns 0 or -1 with errno set.
int stipple_set_exclusive(int fd);

/// SO_PEERCRED of a connected Unix socket. Returns 0 or -1 with errno set.
int stipple_peer_credentials(int fd, stipple_ucred *out);

/// Names the calling thread (as `top -H`, `ps -L` and `perf` show it; at most 15 bytes kept).
void stipple_name_thread(const char *name);

/// Puts the calling thread under SCHED_FIFO at `priority` (1...99); threads it creates run at
/// normal priority (SCHED_RESET_ON_FORK). Allowed for root, with CAP_SYS_NICE, or within
/// RLIMIT_RTPRIO (systemd's LimitRTPRIO=). Returns 0, or an errno.
int stipple_thread_realtime(int priority);

/// Adds `group:GID:rw-` (and the mask rw-) to the POSIX access ACL of `path`, keeping the owner
/// and owning group read-write and others nothing: a second group may then open a socket that
/// belongs to another. Written as the raw `system.posix_acl_access` xattr, so no libacl is
/// needed. Returns 0, or an errno (EOPNOTSUPP where the file system has no ACLs).
int stipple_grant_group_rw(const char *path, uint32_t gid);

#endif
