// The data calls: receive and send families, on blocking-mode sockets.
//
// Every call is attempted with MSG_DONTWAIT, so the kernel's O_NONBLOCK of a data socket is never
// touched (stdio on the socket, children that inherit it, calls gonet does not see keep native
// blocking behaviour). read/readv/write/writev on a socket become recvfrom/recvmsg/sendto/sendmsg,
// which the kernel treats the same way for sockets.
//
// What the kernel does for a blocking call, and gonet reproduces:
//   - receive returns as soon as some data is there (partial), or 0 at EOF; MSG_WAITALL on a
//     stream keeps going until the buffer is full, EOF, an error, the timeout or a signal, and
//     returns the bytes received so far if any;
//   - send on a stream keeps going until every byte is queued; a timeout, signal or error after
//     some bytes returns the partial count (no SIGPIPE then: only a call that fails raises it);
//   - datagram sockets move one message per call, whole.
#include <limits.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include <algorithm>
#include <new>

#include "core/base/mode.h"
#include "core/base/sys.h"
#include "core/fd/blocking_call.h"
#include "core/fd/direct_call.h"
#include "core/fd/faults.h"
#include "core/fd/fd_table.h"
#include "core/fd/ops.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

// An iovec array the loop can advance past bytes already moved, without touching the app's.
class IovCursor {
 public:
  IovCursor(const iovec* iov, int count) {
    if (count <= kInline) {
      iov_ = inline_;
    } else {
      heap_ = new (std::nothrow) iovec[count];
      iov_ = heap_;
    }
    if (iov_ == nullptr) {
      count_ = -1;
      return;
    }
    count_ = count;
    for (int i = 0; i < count; ++i) iov_[i] = iov[i];
  }
  ~IovCursor() { delete[] heap_; }
  IovCursor(const IovCursor&) = delete;
  IovCursor& operator=(const IovCursor&) = delete;

  bool ok() const { return count_ >= 0; }
  iovec* iov() { return iov_ + first_; }
  int count() const { return count_ - first_; }
  void Advance(size_t n) {
    while (n > 0 && first_ < count_) {
      if (n < iov_[first_].iov_len) {
        iov_[first_].iov_base = static_cast<char*>(iov_[first_].iov_base) + n;
        iov_[first_].iov_len -= n;
        return;
      }
      n -= iov_[first_].iov_len;
      ++first_;
    }
  }

 private:
  static constexpr int kInline = 16;
  iovec inline_[kInline];
  iovec* heap_ = nullptr;
  iovec* iov_ = nullptr;
  int count_ = 0;
  int first_ = 0;
};

// gonet copies and walks an iovec array only after this check; what it rejects goes to the
// kernel as it is, for the kernel's own answer (EINVAL, EMSGSIZE, EFAULT).
bool IovecsLookValid(const iovec* iov, size_t count) {
  return count <= IOV_MAX && (iov != nullptr || count == 0);
}

size_t IovTotal(const iovec* iov, int count) {
  size_t total = 0;
  for (int i = 0; i < count; ++i) total += iov[i].iov_len;
  return total;
}

bool IsStream(const SocketState& s) { return s.type == SOCK_STREAM; }

// Bytes queued for reading (SIOCINQ/FIONREAD), or 0 if the kernel will not say.
size_t QueuedBytes(int fd) {
  int n = 0;
  return sys::Call(SYS_ioctl, fd, FIONREAD, &n) == 0 && n > 0 ? static_cast<size_t>(n) : 0;
}

// True if the socket has a pending error or the peer has hung up (poll's POLLERR/POLLRDHUP),
// looked at without consuming the error. A call that already moved bytes must return them and
// leave a pending error for the next call, as the kernel does: a further attempt would consume
// it (ECONNRESET), and the next call would then see only EPIPE.
bool PendingErrorOrHangup(int fd, short events) {
  pollfd p{fd, events, 0};
  timespec zero{};
  return sys::Call(SYS_ppoll, &p, 1, &zero, nullptr, 8) == 1 && (p.revents & events);
}

// Shared prologue: decides whether core handles the call at all.
//   kPassthrough: not ours (mode, re-entry, not a socket, app non-blocking, MSG_DONTWAIT).
//   EBADF: the fd is being closed.
int Enter(FdRef& ref, int fd, int flags) {
  // A program that uses urgent data may find a receive stopped at the urgent mark (the drained
  // hint, poll_desc.h). A socket gonet has not seen yet is adopted without the hint anyway.
  if (flags & MSG_OOB) {
    if (SocketState* s = FdTable::FindSocket(fd)) s->short_read_drains.store(false);
  }
  if (flags & MSG_DONTWAIT) return kPassthrough;
  PrefetchKernelWaitRecord();  // threads mode's direct call writes it next (kernel_wait.h)
  int a = ref.Acquire(fd);
  if (a != 0) return a;
  if (ref.sock()->app_nonblock.load(std::memory_order_relaxed)) return kPassthrough;
  return 0;
}

IoResult Fail(int err) {
  return err == kPassthrough ? IoResult::Passthrough() : IoResult::Err(err);
}

// Threads mode makes the blocking call itself unless a gonet deadline policy needs the
// netpoller's timer for this direction (kernel_wait.h).
bool UseDirectCall(const SocketState& s, Mode mode) {
  if (!KernelWaitEnabled()) return false;
  CallTimeout t = TimeoutFor(s, mode);
  return t.ns == 0 || t.app;
}

// A receive parked on the drained hint (poll_desc.h) and its wait ended with e (a deadline or a
// signal): the kernel's receive would still have returned bytes that were queued before it, even
// if their edge has not been delivered yet, so it asks once more.
template <typename Attempt>
IoResult AfterDrainedWait(int e, bool app_timeout, int nbflags, Attempt attempt) {
  if (e == EBADF) return IoResult::Err(e);
  long r = attempt(nbflags);
  if (r >= 0) return IoResult::Ok(r);
  if (r != -EAGAIN) return IoResult::Err(static_cast<int>(-r));
  if (e == EAGAIN && !app_timeout) Count(Stats().deadline_policy_timeouts);
  return IoResult::Err(e);
}

// A receive's wait ended with e (timeout, signal, close) after `done` bytes of `want`.
IoResult AfterFailedWait(int e, bool app_timeout, const SocketState& s, size_t want, size_t done) {
  if (e == EAGAIN && !app_timeout) Count(Stats().deadline_policy_timeouts);
  // A zero-length receive on a stream waits like any other and, at the timeout, returns 0
  // (nothing was asked, nothing was copied), not EAGAIN. (TCP only: a unix stream socket
  // reports EAGAIN.)
  if (e == EAGAIN && want == 0 && IsStream(s) && s.family != AF_UNIX) return IoResult::Ok(0);
  return done ? IoResult::Ok(static_cast<ssize_t>(done)) : IoResult::Err(e);
}

// The receive loop. attempt(flags) performs one non-blocking call for the bytes still wanted and
// returns >= 0 or -errno; advance(n) moves past n received bytes.
template <typename Attempt, typename Advance>
IoResult ReceiveLoop(FdRef& ref, int flags, size_t want, size_t room, Attempt attempt,
                     Advance advance) {
  const SocketState& s = *ref.sock();
  bool waitall = (flags & MSG_WAITALL) && IsStream(s) && want > 0;
  bool peek = (flags & MSG_PEEK) != 0;
  int nbflags = (flags & ~MSG_WAITALL) | MSG_DONTWAIT;
  CallTimeout t = TimeoutFor(s, Mode::kRead);
  BlockingCall call(ref, Mode::kRead, t.ns, t.app);
  // SO_RCVLOWAT: a blocking stream receive waits until min(lowat, len) bytes are queued (or
  // EOF, an error, the timeout); a non-blocking attempt would return fewer at once.
  const size_t lowat = IsStream(s) && !waitall && want > 0
                           ? std::min<size_t>(static_cast<size_t>(s.rcvlowat.load()), want)
                           : 1;
  // The drained hint (poll_desc.h): a receive that may take `room` bytes and gets fewer leaves
  // the queue empty, so the next call parks before asking the kernel. Not for a receive that
  // leaves the bytes queued (peek), waits for more than one byte, or reads urgent data.
  const bool hint = room > 0 && lowat == 1 && !waitall && !peek &&
                    !(flags & (MSG_OOB | MSG_TRUNC)) &&
                    s.short_read_drains.load(std::memory_order_relaxed);
  bool park_first = hint && call.ReadDrained();
  bool timed_out = false;
  size_t done = 0;
  for (;;) {
    if (park_first) {
      park_first = false;
      if (int e = call.WaitDrained(); e != 0) return AfterDrainedWait(e, t.app, nbflags, attempt);
      continue;
    }
    if (done > 0 && PendingErrorOrHangup(ref.fd(), POLLERR)) {
      return IoResult::Ok(static_cast<ssize_t>(done));
    }
    if (lowat > 1 && !timed_out && QueuedBytes(ref.fd()) < lowat &&
        !PendingErrorOrHangup(ref.fd(), POLLERR | POLLRDHUP | POLLHUP)) {
      int e = call.WaitReady();
      if (e == EAGAIN) {
        timed_out = true;  // at the timeout, take whatever is queued
      } else if (e != 0) {
        return IoResult::Err(e);
      }
      continue;
    }
    if (hint) call.MarkReadEdges();
    long r = attempt(nbflags);
    if (r > 0 && waitall && peek) {
      // MSG_WAITALL|MSG_PEEK: the kernel waits until `want` bytes are queued (or EOF, error,
      // timeout, signal), then peeks them all. Peeking again starts from the front.
      if (static_cast<size_t>(r) >= want ||
          PendingErrorOrHangup(ref.fd(), POLLERR | POLLRDHUP | POLLHUP)) {
        return IoResult::Ok(r);
      }
      int e = call.WaitReady();
      if (e != 0) return IoResult::Ok(r);
      continue;
    }
    if (r > 0) {
      if (hint && static_cast<size_t>(r) < room) call.NoteShortRead();
      done += static_cast<size_t>(r);
      if (!waitall || done >= want) return IoResult::Ok(static_cast<ssize_t>(done));
      advance(static_cast<size_t>(r));
      call.InterruptibleFromNowOn();
      continue;
    }
    if (r == 0) return IoResult::Ok(static_cast<ssize_t>(done));  // EOF (or a 0-byte datagram)
    if (r != -EAGAIN) return done ? IoResult::Ok(static_cast<ssize_t>(done)) : IoResult::Err(-r);
    // A datagram socket shut down for reading: the kernel's blocking receive returns 0, but only
    // from inside its wait; the non-blocking attempt says EAGAIN, and the hang-up edge may be
    // gone already. Look at the state instead of waiting for an edge that will not come.
    if (!IsStream(s) && PendingErrorOrHangup(ref.fd(), POLLRDHUP)) return IoResult::Ok(0);
    if (int e = call.WaitReady(); e != 0) return AfterFailedWait(e, t.app, s, want, done);
  }
}

// The send loop: a stream socket queues every byte before returning, a datagram one message.
template <typename Attempt, typename Advance>
IoResult SendLoop(FdRef& ref, int flags, size_t total, Attempt attempt, Advance advance) {
  const SocketState& s = *ref.sock();
  bool stream = IsStream(s);
  CallTimeout t = TimeoutFor(s, Mode::kWrite);
  BlockingCall call(ref, Mode::kWrite, t.ns, t.app);
  size_t done = 0;
  for (;;) {
    // After a partial send, a later failure returns the partial count and must not raise
    // SIGPIPE: the kernel only signals the call that fails.
    int nbflags = flags | MSG_DONTWAIT | (done ? MSG_NOSIGNAL : 0);
    if (done > 0 && PendingErrorOrHangup(ref.fd(), POLLERR)) {
      return IoResult::Ok(static_cast<ssize_t>(done));
    }
    long r = attempt(nbflags);
    if (r >= 0) {
      done += static_cast<size_t>(r);
      if (!stream || done >= total) return IoResult::Ok(static_cast<ssize_t>(done));
      advance(static_cast<size_t>(r));
      call.InterruptibleFromNowOn();
      continue;
    }
    if (r != -EAGAIN) return done ? IoResult::Ok(static_cast<ssize_t>(done)) : IoResult::Err(-r);
    int e = call.WaitReady();
    if (e != 0) {
      if (e == EAGAIN && !t.app) Count(Stats().deadline_policy_timeouts);
      return done ? IoResult::Ok(static_cast<ssize_t>(done)) : IoResult::Err(e);
    }
  }
}

IoResult RecvBuffer(int fd, void* buf, size_t len, int flags, sockaddr* addr, socklen_t* alen) {
  if (!Enabled()) return IoResult::Passthrough();
  ReentryGuard guard;
  FdRef ref;
  if (int e = Enter(ref, fd, flags); e != 0) return Fail(e);
  if (UseDirectCall(*ref.sock(), Mode::kRead)) {
    return DirectCall(ref, 'r',
                      [&] { return sys::Call(SYS_recvfrom, fd, buf, len, flags, addr, alen); });
  }
  char* p = static_cast<char*>(buf);
  size_t offset = 0;
  return ReceiveLoop(
      ref, flags, len, len,
      [&](int f) { return sys::Call(SYS_recvfrom, fd, p + offset, len - offset, f, addr, alen); },
      [&](size_t n) { offset += n; });
}

IoResult SendBuffer(int fd, const void* buf, size_t len, int flags, const sockaddr* addr,
                    socklen_t alen) {
  if (!Enabled()) return IoResult::Passthrough();
  ReentryGuard guard;
  FdRef ref;
  if (int e = Enter(ref, fd, flags); e != 0) return Fail(e);
  if (UseDirectCall(*ref.sock(), Mode::kWrite)) {
    return DirectCall(ref, 'w',
                      [&] { return sys::Call(SYS_sendto, fd, buf, len, flags, addr, alen); });
  }
  const char* p = static_cast<const char*>(buf);
  size_t offset = 0;
  return SendLoop(
      ref, flags, len,
      [&](int f) { return sys::Call(SYS_sendto, fd, p + offset, len - offset, f, addr, alen); },
      [&](size_t n) { offset += n; });
}

IoResult RecvMessage(int fd, msghdr* msg, int flags) {
  if (!Enabled() || msg == nullptr || !IovecsLookValid(msg->msg_iov, msg->msg_iovlen)) {
    return IoResult::Passthrough();
  }
  ReentryGuard guard;
  FdRef ref;
  if (int e = Enter(ref, fd, flags); e != 0) return Fail(e);
  if (UseDirectCall(*ref.sock(), Mode::kRead)) {
    return DirectCall(ref, 'r', [&] { return sys::Call(SYS_recvmsg, fd, msg, flags); });
  }
  bool waitall = (flags & MSG_WAITALL) && IsStream(*ref.sock());
  const size_t total = IovTotal(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
  if (!waitall) {
    return ReceiveLoop(
        ref, flags, 1, total, [&](int f) { return sys::Call(SYS_recvmsg, fd, msg, f); },
        [](size_t) {});
  }
  // MSG_WAITALL on a stream: loop over a private copy of the iovecs; the app's msghdr gets the
  // fields of the last call (flags), as the kernel's single call would leave them.
  IovCursor cursor(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
  if (!cursor.ok()) return IoResult::Err(ENOMEM);
  msghdr m = *msg;
  return ReceiveLoop(
      ref, flags, total, total,
      [&](int f) {
        m.msg_iov = cursor.iov();
        m.msg_iovlen = static_cast<size_t>(cursor.count());
        long r = sys::Call(SYS_recvmsg, fd, &m, f);
        if (r >= 0) {
          msg->msg_flags = m.msg_flags;
          msg->msg_namelen = m.msg_namelen;
          msg->msg_controllen = m.msg_controllen;
          m.msg_control = nullptr;  // ancillary data arrives once
          m.msg_controllen = 0;
        }
        return r;
      },
      [&](size_t n) { cursor.Advance(n); });
}

IoResult SendMessage(int fd, const msghdr* msg, int flags) {
  if (!Enabled() || msg == nullptr || !IovecsLookValid(msg->msg_iov, msg->msg_iovlen)) {
    return IoResult::Passthrough();
  }
  ReentryGuard guard;
  FdRef ref;
  if (int e = Enter(ref, fd, flags); e != 0) return Fail(e);
  if (UseDirectCall(*ref.sock(), Mode::kWrite)) {
    return DirectCall(ref, 'w', [&] { return sys::Call(SYS_sendmsg, fd, msg, flags); });
  }
  if (!IsStream(*ref.sock())) {
    return SendLoop(
        ref, flags, 0, [&](int f) { return sys::Call(SYS_sendmsg, fd, msg, f); }, [](size_t) {});
  }
  IovCursor cursor(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
  if (!cursor.ok()) return IoResult::Err(ENOMEM);
  msghdr m = *msg;
  return SendLoop(
      ref, flags, IovTotal(msg->msg_iov, static_cast<int>(msg->msg_iovlen)),
      [&](int f) {
        m.msg_iov = cursor.iov();
        m.msg_iovlen = static_cast<size_t>(cursor.count());
        long r = sys::Call(SYS_sendmsg, fd, &m, f);
        if (r >= 0) {
          m.msg_control = nullptr;  // ancillary data (SCM_RIGHTS) goes with the first bytes only
          m.msg_controllen = 0;
        }
        return r;
      },
      [&](size_t n) { cursor.Advance(n); });
}

}  // namespace

// read/readv/write/writev of zero bytes return 0 at once on a socket (the kernel's
// sock_read_iter/sock_write_iter "match SYS5 behaviour"), while recv/send of zero bytes reach the
// protocol and may wait: so these four pass zero-length calls to the kernel as they are.
IoResult Read(int fd, void* buf, size_t len) {
  if (len == 0) return IoResult::Passthrough();
  GONET_INJECT_FAULT(kRead, fd);
  return RecvBuffer(fd, buf, len, 0, nullptr, nullptr);
}

IoResult RecvFrom(int fd, void* buf, size_t len, int flags, sockaddr* addr, socklen_t* alen) {
  GONET_INJECT_FAULT(kRead, fd);
  return RecvBuffer(fd, buf, len, flags, addr, alen);
}

IoResult Write(int fd, const void* buf, size_t len) {
  if (len == 0) return IoResult::Passthrough();
  GONET_INJECT_FAULT(kWrite, fd);
  return SendBuffer(fd, buf, len, 0, nullptr, 0);
}

IoResult SendTo(int fd, const void* buf, size_t len, int flags, const sockaddr* addr,
                socklen_t alen) {
  GONET_INJECT_FAULT(kWrite, fd);
  return SendBuffer(fd, buf, len, flags, addr, alen);
}

// readv/writev: the kernel-wait path makes the call itself, so the kernel alone reads the iovec
// array (an invalid one is its EFAULT, a zero-length one its immediate 0). Only the netpoller
// path, which must loop over the array, looks at it, after the shape checks.
template <typename DirectSyscall, typename Loop>
IoResult VectorIo(int fd, const iovec* iov, int iovcnt, Mode mode, DirectSyscall direct,
                  Loop loop) {
  if (iovcnt < 0 || !IovecsLookValid(iov, static_cast<size_t>(iovcnt)) || !Enabled()) {
    return IoResult::Passthrough();
  }
  {
    ReentryGuard guard;
    FdRef ref;
    if (int e = Enter(ref, fd, 0); e != 0) return Fail(e);
    if (UseDirectCall(*ref.sock(), mode)) {
      return DirectCall(ref, mode == Mode::kRead ? 'r' : 'w', direct);
    }
  }
  if (IovTotal(iov, iovcnt) == 0) return IoResult::Passthrough();
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(iovcnt);
  return loop(&m);
}

IoResult Readv(int fd, const iovec* iov, int iovcnt) {
  GONET_INJECT_FAULT(kRead, fd);
  return VectorIo(
      fd, iov, iovcnt, Mode::kRead, [&] { return sys::Call(SYS_readv, fd, iov, iovcnt); },
      [&](msghdr* m) { return RecvMessage(fd, m, 0); });
}

IoResult Writev(int fd, const iovec* iov, int iovcnt) {
  GONET_INJECT_FAULT(kWrite, fd);
  return VectorIo(
      fd, iov, iovcnt, Mode::kWrite, [&] { return sys::Call(SYS_writev, fd, iov, iovcnt); },
      [&](msghdr* m) { return SendMessage(fd, m, 0); });
}

IoResult RecvMsg(int fd, msghdr* msg, int flags) {
  GONET_INJECT_FAULT(kRead, fd);
  return RecvMessage(fd, msg, flags);
}

IoResult SendMsg(int fd, const msghdr* msg, int flags) {
  GONET_INJECT_FAULT(kWrite, fd);
  return SendMessage(fd, msg, flags);
}

// recvmmsg: the kernel receives each message as a blocking recvmsg would, except that after the
// first one MSG_WAITFORONE makes the rest non-blocking, and the timeout is only checked between
// messages (recvmmsg(2) BUGS). A failure after the first message returns the count so far.
IoResult RecvMmsg(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout) {
  GONET_INJECT_FAULT(kRead, fd);
  if (!Enabled() || vlen == 0 || vec == nullptr || (flags & MSG_DONTWAIT)) {
    return IoResult::Passthrough();
  }
  {
    ReentryGuard guard;
    FdRef ref;
    if (int e = Enter(ref, fd, flags); e != 0) return Fail(e);
    if (UseDirectCall(*ref.sock(), Mode::kRead)) {
      return DirectCall(ref, 'r',
                        [&] { return sys::Call(SYS_recvmmsg, fd, vec, vlen, flags, timeout); });
    }
  }
  int64_t end = 0;
  if (timeout != nullptr) {
    if (timeout->tv_sec < 0 || timeout->tv_nsec < 0 || timeout->tv_nsec >= 1000000000) {
      return IoResult::Passthrough();  // the kernel's EINVAL
    }
    end = timeout->tv_sec >= kMaxTimeoutNs / 1000000000
              ? INT64_MAX
              : DeadlineAfter(timeout->tv_sec * INT64_C(1000000000) + timeout->tv_nsec);
    if (end == 0) end = Nanotime();  // a zero timeout: one message at most, as the kernel
  }
  unsigned got = 0;
  for (; got < vlen; ++got) {
    int f = flags & ~MSG_WAITFORONE;
    if (got > 0 && (flags & MSG_WAITFORONE)) f |= MSG_DONTWAIT;
    IoResult r = f & MSG_DONTWAIT ? IoResult::Passthrough() : RecvMessage(fd, &vec[got].msg_hdr, f);
    if (r.passthrough()) {
      long n = sys::Call(SYS_recvmsg, fd, &vec[got].msg_hdr, f);
      r = n >= 0 ? IoResult::Ok(n) : IoResult::Err(static_cast<int>(-n));
    }
    if (!r.ok()) {
      if (got > 0) break;
      return r;
    }
    vec[got].msg_len = static_cast<unsigned>(r.n);
    if (timeout != nullptr && Nanotime() >= end) {
      ++got;
      break;
    }
  }
  if (timeout != nullptr) {
    int64_t left = end - Nanotime();
    if (left < 0) left = 0;
    timeout->tv_sec = static_cast<time_t>(left / 1000000000);
    timeout->tv_nsec = static_cast<long>(left % 1000000000);
  }
  return IoResult::Ok(got);
}

// sendmmsg: each message is sent as a blocking sendmsg would; a failure after the first message
// returns the count so far.
IoResult SendMmsg(int fd, mmsghdr* vec, unsigned vlen, int flags) {
  GONET_INJECT_FAULT(kWrite, fd);
  if (!Enabled() || vlen == 0 || vec == nullptr || (flags & MSG_DONTWAIT)) {
    return IoResult::Passthrough();
  }
  {
    ReentryGuard guard;
    FdRef ref;
    if (int e = Enter(ref, fd, flags); e != 0) return Fail(e);
    if (UseDirectCall(*ref.sock(), Mode::kWrite)) {
      return DirectCall(ref, 'w', [&] { return sys::Call(SYS_sendmmsg, fd, vec, vlen, flags); });
    }
  }
  unsigned sent = 0;
  for (; sent < vlen; ++sent) {
    IoResult r = SendMessage(fd, &vec[sent].msg_hdr, flags);
    if (r.passthrough()) {
      long n = sys::Call(SYS_sendmsg, fd, &vec[sent].msg_hdr, flags);
      r = n >= 0 ? IoResult::Ok(n) : IoResult::Err(static_cast<int>(-n));
    }
    if (!r.ok()) {
      if (sent > 0) break;
      return r;
    }
    vec[sent].msg_len = static_cast<unsigned>(r.n);
  }
  return IoResult::Ok(sent);
}

}  // namespace gonet::core
