// Core's socket operations, one per libc call family. The shim calls these and translates the
// IoResult (kPassthrough: call the real libc function; err: set errno and return -1).
//
// For a socket in blocking mode (the app's view), every operation follows Go's FD.Read loop
// (internal/poll/fd_unix.go): try the call without blocking; on EAGAIN wait on the fd's
// pollDesc for readiness, the deadline, close or a signal; retry. Sockets the app made
// non-blocking, non-sockets, and calls made with MSG_DONTWAIT are passed through.
#pragma once

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>

#include "core/base/base.h"

namespace gonet::core {

// Data: receive family (Mode::kRead).
IoResult Read(int fd, void* buf, size_t len);
IoResult Readv(int fd, const iovec* iov, int iovcnt);
IoResult RecvFrom(int fd, void* buf, size_t len, int flags, sockaddr* addr, socklen_t* addrlen);
IoResult RecvMsg(int fd, msghdr* msg, int flags);
IoResult RecvMmsg(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout);

// Data: send family (Mode::kWrite).
IoResult Write(int fd, const void* buf, size_t len);
IoResult Writev(int fd, const iovec* iov, int iovcnt);
IoResult SendTo(int fd, const void* buf, size_t len, int flags, const sockaddr* addr,
                socklen_t addrlen);
IoResult SendMsg(int fd, const msghdr* msg, int flags);
IoResult SendMmsg(int fd, mmsghdr* vec, unsigned vlen, int flags);

// poll of one socket gonet manages, in a fiber: parks on its pollDesc (poll_wait.cc).
// timeout_ns 0 = none; Passthrough for any other poll (the caller offloads or calls libc).
IoResult PollOneSocket(pollfd* p, int64_t timeout_ns);

// Connections.
IoResult Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags);
IoResult Connect(int fd, const sockaddr* addr, socklen_t addrlen);

// Lifecycle: tell core about sockets the shim created through the real calls.
void NoteSocket(int fd, int domain, int type, int protocol = 0);
void NoteSocketPair(const int sv[2], int domain, int type);
IoResult Close(int fd);
IoResult CloseSocket(int fd);  // Close without fault injection
// The shim asks before creating a socket: Err(errno) if a fault rule says so.
IoResult SocketFault();
// After a successful real dup/F_DUPFD: newfd shares oldfd's open file.
void NoteDup(int oldfd, int newfd);
// dup2/dup3: newfd is closed first by the kernel; core evicts operations parked on it.
IoResult Dup3(int oldfd, int newfd, int flags, bool is_dup2);

// Control: the app's view of O_NONBLOCK and of its timeouts.
IoResult Fcntl(int fd, int cmd, unsigned long arg);
IoResult IoctlFionbio(int fd, int* arg);
IoResult SetSockOpt(int fd, int level, int name, const void* value, socklen_t len);

}  // namespace gonet::core
