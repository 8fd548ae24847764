// accept and connect on blocking-mode sockets. Neither has a per-call MSG_DONTWAIT, so:
//   - a listener is switched to O_NONBLOCK in the kernel the first time a blocking accept would
//     wait (forced_nonblock), and fcntl/ioctl keep showing the app its own view (fd_ops.cc);
//   - connect switches O_NONBLOCK on for its own duration, waits for writability like Go's
//     netFD.connect, reads SO_ERROR, and switches it back.
#include <fcntl.h>
#include <sys/socket.h>

#include "core/blocking_call.h"
#include "core/fd_table.h"
#include "core/ops.h"
#include "core/runtime.h"
#include "core/sys.h"

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

}  // namespace

IoResult Accept(int fd, sockaddr* addr, socklen_t* addrlen, int flags) {
  if (!Enabled()) return IoResult::Passthrough();
  ReentryGuard guard;
  FdRef ref;
  if (int a = ref.Acquire(fd); a != 0) {
    return a == kPassthrough ? IoResult::Passthrough() : IoResult::Err(a);
  }
  SocketState& s = *ref.sock();
  if (s.app_nonblock.load(std::memory_order_relaxed)) return IoResult::Passthrough();
  // Switched once, on the first blocking accept; every accept after that is a plain
  // non-blocking attempt. If the switch fails, the kernel's blocking accept is still correct.
  if (ForceNonblock(ref) != 0) return IoResult::Passthrough();
  CallTimeout t = TimeoutFor(s, Mode::kRead);
  BlockingCall call(ref, Mode::kRead, t.ns, t.app);
  for (;;) {
    long r = sys::Call(SYS_accept4, fd, addr, addrlen, flags);
    if (r >= 0) {
      int nfd = static_cast<int>(r);
      // Linux sockets from accept do not inherit O_NONBLOCK (accept4 flags decide), but do
      // inherit SO_RCVTIMEO/SO_SNDTIMEO from the listener.
      if (FdTable::InstallNew(nfd, s.family, SOCK_STREAM, (flags & SOCK_NONBLOCK) != 0)) {
        SocketState* ns = FdTable::Find(nfd)->sock.load(std::memory_order_acquire);
        ns->rcvtimeo_ns.store(s.rcvtimeo_ns.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
        ns->sndtimeo_ns.store(s.sndtimeo_ns.load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
        int type = 0;
        socklen_t len = sizeof type;
        if (s.type != SOCK_STREAM &&
            sys::Call(SYS_getsockopt, nfd, SOL_SOCKET, SO_TYPE, &type, &len) == 0) {
          ns->type = type;  // SOCK_SEQPACKET listeners accept SOCK_SEQPACKET sockets
        }
      }
      return IoResult::Ok(nfd);
    }
    if (r != -EAGAIN) return IoResult::Err(static_cast<int>(-r));
    int e = call.WaitReady();
    if (e != 0) return IoResult::Err(e);
  }
}

IoResult Connect(int fd, const sockaddr* addr, socklen_t addrlen) {
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
  // EALREADY: a connect interrupted earlier is still in progress; a blocking connect waits for it.
  if (r != -EINPROGRESS && r != -EALREADY) return IoResult::Err(static_cast<int>(-r));
  CallTimeout t = ConnectTimeoutFor(s);
  BlockingCall call(ref, Mode::kWrite, t.ns, t.app);
  for (;;) {
    int e = call.WaitReady(EINPROGRESS);
    if (e != 0) return IoResult::Err(e);
    int soerr = 0;
    socklen_t len = sizeof soerr;
    long g = sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
    if (g < 0) return IoResult::Err(static_cast<int>(-g));
    if (soerr == EINPROGRESS || soerr == EALREADY || soerr == EINTR) continue;
    if (soerr != 0) return IoResult::Err(soerr);
    // Writable with no error may still be a spurious wake-up: connected means a peer exists.
    sockaddr_storage peer;
    socklen_t plen = sizeof peer;
    long p = sys::Call(SYS_getpeername, fd, &peer, &plen);
    if (p == 0) return IoResult::Ok(0);
    if (p != -ENOTCONN) return IoResult::Err(static_cast<int>(-p));
  }
}

}  // namespace gonet::core
