#define _GNU_SOURCE
#include "stipple_sys.h"

#include <errno.h>
#include <sys/xattr.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

int stipple_set_exclusive(int fd) { return ioctl(fd, TIOCEXCL); }

int stipple_peer_credentials(int fd, stipple_ucred *out) {
    struct ucred credentials;
    socklen_t length = sizeof credentials;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) return -1;
    out->pid = credentials.pid;
    out->uid = credentials.uid;
    out->gid = credentials.gid;
    return 0;
}

void stipple_name_thread(const char *name) {
    char truncated[16];
    strncpy(truncated, name, sizeof truncated - 1);
    truncated[sizeof truncated - 1] = 0;
    pthread_setname_np(pthread_self(), truncated);
}

int stipple_thread_realtime(int priority) {
    struct sched_param parameters;
    memset(&parameters, 0, sizeof parameters);
    parameters.sched_priority = priority;
    // Reset on fork: threads created from this one (libdispatch starts its workers on the
    // thread that queues work) get normal scheduling, so that only this thread is real-time.
    return sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &parameters) == 0 ? 0 : errno;
}

int stipple_grant_group_rw(const char *path, uint32_t gid) {
    /* linux/posix_acl_xattr.h: a little-endian version header, then (tag, perm, id) entries
     * ordered by tag: USER_OBJ, GROUP_OBJ, GROUP, MASK, OTHER. */
    enum { user_obj = 0x01, group_obj = 0x04, group = 0x08, mask = 0x10, other = 0x20 };
    const uint32_t undefined = 0xffffffffu;
    const struct { uint16_t tag, perm; uint32_t id; } entries[] = {
        {user_obj, 6, undefined}, {group_obj, 6, undefined}, {group, 6, gid}, {mask, 6, undefined}, {other, 0, undefined},
    };
    unsigned char value[4 + sizeof entries / sizeof entries[0] * 8];
    size_t at = 0;
    const uint32_t version = 2;
    for (int i = 0; i < 4; i++) value[at++] = (unsigned char)(version >> (8 * i));
    for (size_t e = 0; e < sizeof entries / sizeof entries[0]; e++) {
        value[at++] = (unsigned char)entries[e].tag;
        value[at++] = (unsigned char)(entries[e].tag >> 8);
        value[at++] = (unsigned char)entries[e].perm;
        value[at++] = (unsigned char)(entries[e].perm >> 8);
        for (int i = 0; i < 4; i++) value[at++] = (unsigned char)(entries[e].id >> (8 * i));
    }
    return setxattr(path, "system.posix_acl_access", value, at, 0) == 0 ? 0 : errno;
}
