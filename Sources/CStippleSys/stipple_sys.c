#define _GNU_SOURCE
#include "stipple_sys.h"

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
