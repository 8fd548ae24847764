// The data calls and their _FORTIFY_SOURCE twins. Each: ask core; if core passes, call libc.
// In fibers mode, a passed-through read or write that could wait for another party (a pipe, a
// tty, core/fd/file_kind_cache.h) runs on a helper thread while the fiber parks
// (core/fibers/syscall_offload.h), so it cannot stall the other fibers of its worker.
#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "core/fd/file_kind_cache.h"
#include "core/fd/ops.h"
#include "core/fibers/syscall_offload.h"
#include "shim/abi.h"
#include "shim/real.h"

using gonet::shim::ToCAbi;
namespace core = gonet::core;
namespace real = gonet::real;

extern "C" void __chk_fail(void) __attribute__((noreturn));

GONET_HOOK ssize_t read(int fd, void* buf, size_t n) {
  core::IoResult r = core::Read(fd, buf, n);
  if (!r.passthrough()) return ToCAbi(r);
  if (core::InFiber() && core::FileCallMayWait(fd, POLLIN, n)) {
    return core::OffloadCancelPoint(real::read, fd, buf, n);
  }
  return real::read(fd, buf, n);
}

GONET_HOOK ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen) {
  if (n > buflen) __chk_fail();
  core::IoResult r = core::Read(fd, buf, n);
  if (!r.passthrough()) return ToCAbi(r);
  if (core::InFiber() && core::FileCallMayWait(fd, POLLIN, n)) {
    return core::OffloadCancelPoint(real::read, fd, buf, n);  // the size check is done
  }
  return real::__read_chk(fd, buf, n, buflen);
}

GONET_HOOK ssize_t readv(int fd, const struct iovec* iov, int iovcnt) {
  core::IoResult r = core::Readv(fd, iov, iovcnt);
  if (!r.passthrough()) return ToCAbi(r);
  if (core::InFiber() && core::FileCallMayWait(fd, POLLIN, iov, iovcnt)) {
    return core::OffloadCancelPoint(real::readv, fd, iov, iovcnt);
  }
  return real::readv(fd, iov, iovcnt);
}

GONET_HOOK ssize_t recv(int fd, void* buf, size_t n, int flags) {
  core::IoResult r = core::RecvFrom(fd, buf, n, flags, nullptr, nullptr);
  return r.passthrough() ? real::recv(fd, buf, n, flags) : ToCAbi(r);
}

GONET_HOOK ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags) {
  if (n > buflen) __chk_fail();
  core::IoResult r = core::RecvFrom(fd, buf, n, flags, nullptr, nullptr);
  return r.passthrough() ? real::__recv_chk(fd, buf, n, buflen, flags) : ToCAbi(r);
}

GONET_HOOK ssize_t recvfrom(int fd, void* buf, size_t n, int flags, struct sockaddr* addr,
                            socklen_t* addrlen) {
  core::IoResult r = core::RecvFrom(fd, buf, n, flags, addr, addrlen);
  return r.passthrough() ? real::recvfrom(fd, buf, n, flags, addr, addrlen) : ToCAbi(r);
}

GONET_HOOK ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags,
                                  struct sockaddr* addr, socklen_t* addrlen) {
  if (n > buflen) __chk_fail();
  core::IoResult r = core::RecvFrom(fd, buf, n, flags, addr, addrlen);
  return r.passthrough() ? real::__recvfrom_chk(fd, buf, n, buflen, flags, addr, addrlen)
                         : ToCAbi(r);
}

GONET_HOOK ssize_t recvmsg(int fd, struct msghdr* msg, int flags) {
  core::IoResult r = core::RecvMsg(fd, msg, flags);
  return r.passthrough() ? real::recvmsg(fd, msg, flags) : ToCAbi(r);
}

GONET_HOOK int recvmmsg(int fd, struct mmsghdr* vec, unsigned vlen, int flags,
                        struct timespec* timeout) {
  core::IoResult r = core::RecvMmsg(fd, vec, vlen, flags, timeout);
  return r.passthrough() ? real::recvmmsg(fd, vec, vlen, flags, timeout) : ToCAbi<int>(r);
}

GONET_HOOK ssize_t write(int fd, const void* buf, size_t n) {
  core::IoResult r = core::Write(fd, buf, n);
  if (!r.passthrough()) return ToCAbi(r);
  if (core::InFiber() && core::FileCallMayWait(fd, POLLOUT, n)) {
    return core::OffloadCancelPoint(real::write, fd, buf, n);
  }
  return real::write(fd, buf, n);
}

GONET_HOOK ssize_t writev(int fd, const struct iovec* iov, int iovcnt) {
  core::IoResult r = core::Writev(fd, iov, iovcnt);
  if (!r.passthrough()) return ToCAbi(r);
  if (core::InFiber() && core::FileCallMayWait(fd, POLLOUT, iov, iovcnt)) {
    return core::OffloadCancelPoint(real::writev, fd, iov, iovcnt);
  }
  return real::writev(fd, iov, iovcnt);
}

GONET_HOOK ssize_t send(int fd, const void* buf, size_t n, int flags) {
  core::IoResult r = core::SendTo(fd, buf, n, flags, nullptr, 0);
  return r.passthrough() ? real::send(fd, buf, n, flags) : ToCAbi(r);
}

GONET_HOOK ssize_t sendto(int fd, const void* buf, size_t n, int flags, const struct sockaddr* addr,
                          socklen_t addrlen) {
  core::IoResult r = core::SendTo(fd, buf, n, flags, addr, addrlen);
  return r.passthrough() ? real::sendto(fd, buf, n, flags, addr, addrlen) : ToCAbi(r);
}

GONET_HOOK ssize_t sendmsg(int fd, const struct msghdr* msg, int flags) {
  core::IoResult r = core::SendMsg(fd, msg, flags);
  return r.passthrough() ? real::sendmsg(fd, msg, flags) : ToCAbi(r);
}

GONET_HOOK int sendmmsg(int fd, struct mmsghdr* vec, unsigned vlen, int flags) {
  core::IoResult r = core::SendMmsg(fd, vec, vlen, flags);
  return r.passthrough() ? real::sendmmsg(fd, vec, vlen, flags) : ToCAbi<int>(r);
}
