// accept and connect on blocking-mode sockets. Neither has a per-call MSG_DONTWAIT, so:
//   - a listener is switched to O_NONBLOCK in the kernel the first time a blocking accept would
//     wait (forced_nonblock), and fcntl/ioctl keep showing the app its own view (fd_ops.cc);
//   - connect switches O_NONBLOCK on for its own duration, waits for writability like Go's
//     netFD.connect, reads SO_ERROR, and switches it back.
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "core/base/mode.h"
#include "core/base/sys.h"
#include "core/fd/blocking_call.h"
#include "core/fd/direct_call.h"
#include "core/fd/faults.h"
#include "core/fd/fd_table.h"
#include "core/fd/ops.h"
#include "core/threads/kernel_wait.h"

namespace gonet::core {
namespace {

int ForceNonblock(FdRef& ref) {
  SocketState& s = *ref.sock();
  if (s.forced_nonblock.load(std::memory_order_acquire)) return 0;
  long fl = sys::Call(SYS_fcntl, ref.fd(), F_GETFL, 0);
  if (fl < 0) return static_cast<int>(-fl);
  if (!(fl & O_NONBLOCK)) {
    long r = sys::Call(SYS_fcntl, ref.fd(), F_SETFL, fl | O_NONBLOCK);
    if (r < 0) return static_cast<int>(-r);
  }
  s.forced_nonblock.store(true, std::memory_order_release);
  return 0;
}

// Linux sockets from accept do not inherit O_NONBLOCK (accept4 flags decide), but do inherit
// SO_RCVTIMEO/SO_SNDTIMEO from the listener.
void InstallAccepted(const SocketState& s, int nfd, int flags) {
  if (!FdTable::InstallNew(nfd, s.family, SOCK_STREAM, (flags & SOCK_NONBLOCK) != 0)) return;
  SocketState* ns = FdTable::Find(nfd)->sock.load(std::memory_order_acquire);
  ns->rcvtimeo_ns.store(s.rcvtimeo_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
  ns->sndtimeo_ns.store(s.sndtimeo_ns.load(std::memory_order_relaxed), std::memory_order_relaxed);
  ns->short_read_drains.store(s.short_read_drains.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
  int type = 0;
  socklen_t len = sizeof type;
  if (s.type != SOCK_STREAM &&
      sys::Call(SYS_getsockopt, nfd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
    ns->type = type;  // SOCK_SEQPACKET listeners accept SOCK_SEQPACKET sockets
  }
}

}  // namespace

IoResult Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags) {
  GONET_INJECT_FAULT(kAccept, fd);
  if (!Enabled()) return IoResult::Passthrough();
  ReentryGuard guard;
  FdRef ref;
  if (int a = ref.Acquire(fd); a != 0) {
    return a == kPassthrough ? IoResult::Passthrough() : IoResult::Err(a);
  }
  SocketState& s = *ref.sock();
  if (s.app_nonblock.load(std::memory_order_relaxed)) return IoResult::Passthrough();
  if (KernelWaitEnabled() && !s.forced_nonblock.load(std::memory_order_acquire)) {
    IoResult r =
        DirectCall(ref, 'a', [&] { return sys::Call(SYS_accept4, fd, addr, addrlen, flags); });
    if (r.ok()) InstallAccepted(s, static_cast<int>(r.n), flags);
    return r;
  }
  // Switched once, on the first blocking accept; every accept after that is a plain
  // non-blocking attempt. If the switch fails, the kernel's blocking accept is still correct.
  if (ForceNonblock(ref) != 0) return IoResult::Passthrough();
  // Only the app's own SO_RCVTIMEO bounds accept: gonet's --read-timeout protects against slow
  // clients, and an idle listener is not one.
  int64_t app_timeout = s.rcvtimeo_ns.load(std::memory_order_relaxed);
  BlockingCall call(ref, Mode::kRead, app_timeout, app_timeout != 0);
  for (;;) {
    long r = sys::Call(SYS_accept4, fd, addr, addrlen, flags);
    if (r >= 0) {
      InstallAccepted(s, static_cast<int>(r), flags);
      return IoResult::Ok(r);
    }
    if (r != -EAGAIN) return IoResult::Err(static_cast<int>(-r));
    int e = call.WaitReady();
    if (e != 0) return IoResult::Err(e);
  }
}

IoResult Connect(int fd, const sockaddr* addr, socklen_t addrlen) {
  const bool inet =
      addr != nullptr && addrlen >= static_cast<socklen_t>(sizeof(sockaddr_in)) &&
      (addr->sa_family == AF_INET ||
       (addr->sa_family == AF_INET6 && addrlen >= static_cast<socklen_t>(sizeof(sockaddr_in6))));
  if (IoResult f = InjectFault(FaultOp::kConnect, fd, inet ? addr : nullptr); !f.ok()) return f;
  if (!Enabled()) return IoResult::Passthrough();
  ReentryGuard guard;
  FdRef ref;
  if (int a = ref.Acquire(fd); a != 0) {
    return a == kPassthrough ? IoResult::Passthrough() : IoResult::Err(a);
  }
  SocketState& s = *ref.sock();
  // Unix stream connects complete or fail at once (or wait for backlog room, which epoll on the
  // connecting socket would not report): leave them to the kernel.
  if (s.app_nonblock.load(std::memory_order_relaxed) || s.family == AF_UNIX ||
      (s.family != AF_INET && s.family != AF_INET6)) {
    return IoResult::Passthrough();
  }
  CallTimeout t = ConnectTimeoutFor(s);
  if (KernelWaitEnabled() && (t.ns == 0 || t.app)) {
    // A connect restarted after gonet's own wake-up (dump, a stale close wake-up) finds the
    // handshake in progress, where the blocking call waits, or already done: EISCONN then
    // means the connect this call started has succeeded.
    int calls = 0;
    return DirectCall(ref, 'c', [&] {
      long r = sys::Call(SYS_connect, fd, addr, addrlen);
      return (calls++ > 0 && r == -EISCONN) ? 0 : r;
    });
  }
  long fl = sys::Call(SYS_fcntl, fd, F_GETFL, 0);
  if (fl < 0) return IoResult::Err(static_cast<int>(-fl));
  bool flip = !(fl & O_NONBLOCK);
  if (flip) sys::Call(SYS_fcntl, fd, F_SETFL, fl | O_NONBLOCK);
  struct Restore {
    int fd;
    long fl;
    bool flip;
    ~Restore() {
      if (flip) sys::Call(SYS_fcntl, fd, F_SETFL, fl);
    }
  } restore{fd, fl, flip};

  long r = sys::Call(SYS_connect, fd, addr, addrlen);
  if (r == 0) return IoResult::Ok(0);
  // EALREADY: a connect that timed out or was interrupted earlier is still in progress; a
  // blocking connect waits for it too, and reports EALREADY if it times out again.
  if (r != -EINPROGRESS && r != -EALREADY) return IoResult::Err(static_cast<int>(-r));
  const int timeout_errno = r == -EALREADY ? EALREADY : EINPROGRESS;
  BlockingCall call(ref, Mode::kWrite, t.ns, t.app);
  for (;;) {
    int e = call.WaitReady(timeout_errno);
    if (e != 0) return IoResult::Err(e);
    // Ask connect itself rather than SO_ERROR (Go's way): on a failed handshake the kernel's
    // connect reports the error *and* resets the socket to unconnected, exactly as the blocking
    // call would have, so a later connect retries instead of failing with ECONNABORTED.
    r = sys::Call(SYS_connect, fd, addr, addrlen);
    if (r == 0 || r == -EISCONN) return IoResult::Ok(0);
    if (r == -EALREADY || r == -EINPROGRESS) continue;  // woken early: still in progress
    return IoResult::Err(static_cast<int>(-r));
  }
}

}  // namespace gonet::core
