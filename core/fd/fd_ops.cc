// Lifecycle and control calls: socket creation, close, dup, and the app's view of O_NONBLOCK and
// of its timeouts.
// Close and dup2 follow the close protocol of fd_table.h (BeginClose, RetireSlot, EndClose).
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "core/base/mode.h"
#include "core/base/sys.h"
#include "core/fd/faults.h"
#include "core/fd/fd_table.h"
#include "core/fd/file_kind_cache.h"
#include "core/fd/ops.h"
#include "core/poll/netpoller.h"
#include "core/threads/kernel_wait.h"

namespace gonet::core {
namespace {

int64_t TimevalNs(const void* value, socklen_t len) {
  if (value == nullptr || len < static_cast<socklen_t>(sizeof(timeval))) return 0;
  const timeval* tv = static_cast<const timeval*>(value);
  if (tv->tv_sec < 0) return kImmediateTimeoutNs;
  return TimevalToNs(*tv);
}

}  // namespace

void NoteSocket(int fd, int domain, int type, int protocol) {
  if (mode() == RunMode::kOff) return;
  ReentryGuard guard;
  const int base_type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  if (!FdTable::InstallNew(fd, domain, base_type, (type & SOCK_NONBLOCK) != 0)) return;
  if ((domain == AF_INET || domain == AF_INET6) && base_type == SOCK_STREAM &&
      (protocol == 0 || protocol == IPPROTO_TCP)) {
    FdTable::Find(fd)->sock.load(std::memory_order_acquire)->short_read_drains.store(true);
  }
}

void NoteSocketPair(const int sv[2], int domain, int type) {
  NoteSocket(sv[0], domain, type);
  NoteSocket(sv[1], domain, type);
}

IoResult Close(int fd) {
  ForgetFileKind(fd);  // whatever the number names now, it will not after this close
  if (mode() == RunMode::kOff || t_core_depth != 0) return IoResult::Passthrough();
  // A close fault still closes: the kernel releases the fd whatever close reports.
  if (IoResult f = InjectFault(FaultOp::kClose, fd); !f.ok()) {
    IoResult r = CloseSocket(fd);
    if (r.passthrough()) sys::Call(SYS_close, fd);
    return f;
  }
  return CloseSocket(fd);
}

IoResult SocketFault() { return InjectFault(FaultOp::kSocket, -1); }

IoResult CloseSocket(int fd) {
  ReentryGuard guard;
  FdEntry* e = FdTable::Find(fd);
  if (e == nullptr) return IoResult::Passthrough();
  if (e->kind.load(std::memory_order_acquire) != FdKind::kSocket) {
    // Whatever the number held, it will not hold it after this close.
    e->kind.store(FdKind::kUnknown, std::memory_order_release);
    return IoResult::Passthrough();
  }
  if (!BeginClose(fd, e)) return IoResult::Err(EBADF);
  RetireSlot(e);
  long r = sys::Call(SYS_close, fd);
  EndClose(e);
  // Linux releases the fd even when close reports an error (EINTR, EIO): report it, never retry.
  return r < 0 ? IoResult::Err(static_cast<int>(-r)) : IoResult::Ok(0);
}

void NoteDup(int oldfd, int newfd) {
  if (mode() == RunMode::kOff || newfd < 0) return;
  ForgetFileKind(newfd);
  ReentryGuard guard;
  if (SocketState* s = FdTable::FindSocket(oldfd)) {
    FdTable::Install(newfd, s);
  } else if (FdEntry* e = FdTable::Find(newfd)) {
    e->kind.store(FdKind::kUnknown, std::memory_order_release);
  }
}

IoResult Dup3(int oldfd, int newfd, int flags, bool is_dup2) {
  if (mode() == RunMode::kOff || t_core_depth != 0) return IoResult::Passthrough();
  if (oldfd == newfd) return IoResult::Passthrough();  // dup2: a no-op; dup3: EINVAL
  ReentryGuard guard;
  FdEntry* target = FdTable::Find(newfd);
  bool evicted = false;
  if (target != nullptr && target->kind.load(std::memory_order_acquire) == FdKind::kSocket) {
    // dup2 over a socket closes it: treat it like close, so parked operations wake with EBADF.
    // Check oldfd first, so a failing dup2 does not disturb newfd.
    if (sys::Call(SYS_fcntl, oldfd, F_GETFD, 0) < 0) return IoResult::Err(EBADF);
    if (!BeginClose(newfd, target)) return IoResult::Err(EBADF);
    RetireSlot(target);
    evicted = true;
  }
  long r = sys::Call(SYS_dup3, oldfd, newfd, is_dup2 ? 0 : flags);
  // The table learns the replacement while the slot is still closing. Reopened first, the slot
  // would be "unknown" for a moment: a racing read adopts the new file, arms a pollDesc and
  // parks on it, and Install (which takes whatever the slot holds for stale) would free that
  // pollDesc under it (found by StressTest: "pollDesc freed with a direction locked").
  if (r >= 0) {
    ForgetFileKind(newfd);
    if (SocketState* s = FdTable::FindSocket(oldfd)) {
      FdTable::Install(newfd, s);  // a new generation: the slot is open again
    } else if (FdEntry* e = FdTable::Find(newfd)) {
      e->kind.store(FdKind::kUnknown, std::memory_order_release);
    }
  }
  if (evicted) EndClose(target);
  if (r < 0) return IoResult::Err(static_cast<int>(-r));
  return IoResult::Ok(r);
}

IoResult Fcntl(int fd, int cmd, unsigned long arg) {
  if (mode() == RunMode::kOff || t_core_depth != 0) return IoResult::Passthrough();
  switch (cmd) {
    case F_GETFL:
    case F_SETFL:
    case F_DUPFD:
    case F_DUPFD_CLOEXEC:
      break;
    default:
      return IoResult::Passthrough();
  }
  ReentryGuard guard;
  FdRef ref;
  if (int a = ref.Acquire(fd); a != 0) {
    if (a != kPassthrough) return IoResult::Err(a);
    if (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) {
      long r = sys::Call(SYS_fcntl, fd, cmd, arg);
      if (r < 0) return IoResult::Err(static_cast<int>(-r));
      NoteDup(fd, static_cast<int>(r));
      return IoResult::Ok(r);
    }
    return IoResult::Passthrough();
  }
  SocketState& s = *ref.sock();
  long r = sys::Call(SYS_fcntl, fd, cmd, arg);
  if (r < 0) return IoResult::Err(static_cast<int>(-r));
  switch (cmd) {
    case F_GETFL:
      // A listener gonet switched to O_NONBLOCK still shows the app's own view.
      if (s.forced_nonblock.load(std::memory_order_acquire) &&
          !s.app_nonblock.load(std::memory_order_relaxed)) {
        r &= ~static_cast<long>(O_NONBLOCK);
      }
      break;
    case F_SETFL:
      s.app_nonblock.store((arg & O_NONBLOCK) != 0, std::memory_order_relaxed);
      if (s.forced_nonblock.load(std::memory_order_acquire) && !(arg & O_NONBLOCK)) {
        sys::Call(SYS_fcntl, fd, F_SETFL, arg | O_NONBLOCK);  // keep the kernel side switched
      }
      break;
    default:  // F_DUPFD, F_DUPFD_CLOEXEC
      FdTable::Install(static_cast<int>(r), &s);
      break;
  }
  return IoResult::Ok(r);
}

IoResult IoctlFionbio(int fd, int* arg) {
  if (mode() == RunMode::kOff || t_core_depth != 0) return IoResult::Passthrough();
  ReentryGuard guard;
  FdRef ref;
  if (int a = ref.Acquire(fd); a != 0) {
    return a == kPassthrough ? IoResult::Passthrough() : IoResult::Err(a);
  }
  // The kernel validates and reads *arg; gonet reads it only after the kernel accepted it.
  long r = sys::Call(SYS_ioctl, fd, FIONBIO, arg);
  if (r < 0) return IoResult::Err(static_cast<int>(-r));
  SocketState& s = *ref.sock();
  bool nonblock = *arg != 0;
  s.app_nonblock.store(nonblock, std::memory_order_relaxed);
  if (!nonblock && s.forced_nonblock.load(std::memory_order_acquire)) {
    int one = 1;
    sys::Call(SYS_ioctl, fd, FIONBIO, &one);
  }
  return IoResult::Ok(r);
}

namespace {

// Options after which a short TCP receive no longer means an empty queue (the drained hint,
// poll_desc.h): urgent data inline stops a receive at its mark; a ULP (kernel TLS) stops one at
// a record that is not data.
bool EndsShortReadHint(int level, int name) {
  return (level == SOL_SOCKET && name == SO_OOBINLINE) ||
         (level == IPPROTO_TCP && name == TCP_ULP) || level == SOL_TLS;
}

}  // namespace

IoResult SetSockOpt(int fd, int level, int name, const void* value, socklen_t len) {
  if (mode() == RunMode::kOff || t_core_depth != 0) return IoResult::Passthrough();
  if (EndsShortReadHint(level, name)) {
    if (SocketState* s = FdTable::FindSocket(fd)) s->short_read_drains.store(false);
    return IoResult::Passthrough();
  }
  if (level != SOL_SOCKET) return IoResult::Passthrough();
  bool rcv = name == SO_RCVTIMEO_OLD || name == SO_RCVTIMEO_NEW;
  bool snd = name == SO_SNDTIMEO_OLD || name == SO_SNDTIMEO_NEW;
  bool lowat = name == SO_RCVLOWAT;
  if (!rcv && !snd && !lowat) return IoResult::Passthrough();
  ReentryGuard guard;
  FdRef ref;
  if (int a = ref.Acquire(fd); a != 0) {
    return a == kPassthrough ? IoResult::Passthrough() : IoResult::Err(a);
  }
  long r = sys::Call(SYS_setsockopt, fd, level, name, value, len);
  if (r < 0) return IoResult::Err(static_cast<int>(-r));
  if (lowat) {
    // Read back what the kernel keeps (it maps 0 to 1 and negatives to INT_MAX).
    int v = 1;
    socklen_t vlen = sizeof v;
    if (sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_RCVLOWAT, &v, &vlen) == 0) {
      ref.sock()->rcvlowat.store(v < 1 ? 1 : v, std::memory_order_relaxed);
    }
    return IoResult::Ok(0);
  }
  // Keep what the kernel keeps: it rounds to its tick, and getsockopt shows the rounded value.
  // A negative tv_sec makes the kernel store a zero timeout: the call returns EAGAIN at once,
  // although getsockopt then shows {0, 0} like "no timeout".
  timeval tv{};
  socklen_t tlen = sizeof tv;
  int64_t ns = TimevalNs(value, len);
  if (ns != kImmediateTimeoutNs &&
      sys::Call(SYS_getsockopt, fd, SOL_SOCKET, rcv ? SO_RCVTIMEO_OLD : SO_SNDTIMEO_OLD, &tv,
                &tlen) == 0) {
    ns = TimevalNs(&tv, tlen);
  }
  (rcv ? ref.sock()->rcvtimeo_ns : ref.sock()->sndtimeo_ns).store(ns, std::memory_order_relaxed);
  return IoResult::Ok(0);
}

}  // namespace gonet::core
