#include "core/fd/poll_group.h"

#include <fcntl.h>
#include <sys/resource.h>

#include <atomic>
#include <new>

#include "core/base/sys.h"
#include "core/fd/fd_table.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/poll/netpoller.h"
#include "core/poll/poll_desc.h"

namespace gonet::core {
namespace {

constexpr short kReadEvents = POLLIN | POLLRDNORM | POLLRDHUP;
constexpr short kWriteEvents = POLLOUT | POLLWRNORM;

// Where private copies go: the lowest free number from here up. Numbers the program allocates
// come lowest-first, so a copy above them never takes a number the program's next open,
// socket or dup would have had (a program near its limit is the exception: it may find one
// number fewer for the length of a wait). 1024 keeps copies clear of select's FD_SETSIZE too;
// a lower soft limit puts them in its upper half. 0 until first use.
constinit std::atomic<int> g_copy_base{0};

int CopyBase(bool refresh) {
  int base = g_copy_base.load(std::memory_order_relaxed);
  if (base != 0 && !refresh) return base;
  rlimit lim{};
  base = 512;
  if (sys::Call(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &lim) == 0) {
    base = lim.rlim_cur >= 2048 ? 1024 : static_cast<int>(lim.rlim_cur / 2);
    if (base < 3) base = 3;
  }
  g_copy_base.store(base, std::memory_order_relaxed);
  return base;
}

// A close-on-exec copy of fd out of the program's way: >= 0, or -errno.
int CopyFd(int fd) {
  long r = sys::Call(SYS_fcntl, fd, F_DUPFD_CLOEXEC, CopyBase(false));
  // EINVAL: the base is no longer below the soft limit (the program lowered it).
  if (r == -EINVAL) r = sys::Call(SYS_fcntl, fd, F_DUPFD_CLOEXEC, CopyBase(true));
  return static_cast<int>(r);
}

// One call's watches (poll_group.h, step 2), released in the destructor.
class PollGroup {
 public:
  explicit PollGroup(Parker* me) : me_(me) {}
  ~PollGroup() {
    for (size_t i = 0; i < n_; ++i) {
      Slot& s = slots_[i];
      if (s.kind == Kind::kSocket) {
        s.pd->RemoveWatcher(me_);
      } else if (s.kind == Kind::kCopy) {
        // Off the netpoller before the copy is closed (netpoller.h, Disarm); the pollDesc's
        // fdseq moves at Free, so an event already read for it is dropped as stale.
        s.pd->RemoveWatcher(me_);
        Netpoller::Get().Disarm(s.pd);
        s.pd->Free();
        sys::Call(SYS_close, s.copy_fd);
      }
      if (s.has_ref) Ref(i).~FdRef();
    }
  }
  PollGroup(const PollGroup&) = delete;
  PollGroup& operator=(const PollGroup&) = delete;

  // False: this fd cannot be waited on here (the caller offloads).
  bool Add(int fd) {
    for (size_t i = 0; i < n_; ++i) {
      if (slots_[i].fd == fd) return true;  // the same fd twice in one call is watched once
    }
    if (n_ == kMaxPollGroupFds) return false;
    Slot& s = slots_[n_];
    s = Slot{fd, Kind::kNone, false, nullptr, -1};
    FdRef* ref = new (&refs_[n_]) FdRef();
    s.has_ref = true;
    ++n_;  // from here on the destructor releases it
    int a = ref->Acquire(fd);
    if (a == EBADF) return false;  // being closed: the kernel answers with the time left
    if (a == 0) {
      PollDesc* pd = ref->ArmedPollDesc();
      if (pd == nullptr) return false;
      if (pd->AddWatcher(me_)) {
        s.kind = Kind::kSocket;
        s.pd = pd;
        return true;
      }
      // Another poll group watches this socket: watch a copy instead, without the reference
      // (a close must not wait for this wait to end; the copy keeps the socket as poll would).
    }
    ref->~FdRef();
    s.has_ref = false;
    return AddCopy(s);
  }

  bool AnyClosing() {
    for (size_t i = 0; i < n_; ++i) {
      const Slot& s = slots_[i];
      if (s.kind == Kind::kSocket && (Ref(i).closing() || s.pd->closing())) return true;
    }
    return false;
  }

 private:
  enum class Kind : uint8_t {
    kNone,    // nothing watched: a file epoll refuses (EPERM), or a bad fd (the probe says so)
    kSocket,  // a managed socket: its own pollDesc, our parker as its watcher, a reference held
    kCopy,    // a private copy of the fd on the netpoller, under a pollDesc of its own
  };
  struct Slot {
    int fd;
    Kind kind;
    bool has_ref;  // refs_[i] holds a constructed FdRef
    PollDesc* pd;  // kSocket, kCopy
    int copy_fd;   // kCopy
  };

  bool AddCopy(Slot& s) {
    int copy = CopyFd(s.fd);
    if (copy == -EBADF) return true;  // not open: the next probe reports POLLNVAL or EBADF
    if (copy < 0) return false;
    PollDesc* pd = PollDesc::Alloc(copy);
    if (pd == nullptr) {
      sys::Call(SYS_close, copy);
      return false;
    }
    // A fresh pollDesc has no watcher, so this cannot fail; watch before arming, so the edge
    // epoll raises at registration for an fd that is already ready finds us.
    pd->AddWatcher(me_);
    int r = Netpoller::Get().Arm(pd);
    if (r < 0) {
      pd->RemoveWatcher(me_);
      pd->Free();
      sys::Call(SYS_close, copy);
      // EPERM: epoll cannot watch it (a regular file...), and poll never waits for it either.
      return r == -EPERM;
    }
    s.kind = Kind::kCopy;
    s.pd = pd;
    s.copy_fd = copy;
    return true;
  }

  FdRef& Ref(size_t i) { return *std::launder(reinterpret_cast<FdRef*>(&refs_[i])); }

  Parker* me_;
  size_t n_ = 0;
  alignas(FdRef) unsigned char refs_[kMaxPollGroupFds][sizeof(FdRef)];
  Slot slots_[kMaxPollGroupFds];
};

IoResult FromProbe(int r) { return r < 0 ? IoResult::Err(-r) : IoResult::Ok(r); }

}  // namespace

IoResult WaitFds(const pollfd* fds, size_t n, int64_t deadline_ns, PollProbe probe, void* ctx) {
  FiberTask* me = FiberScheduler::Current();
  if (me == nullptr || n > kMaxPollGroupFds) return IoResult::Passthrough();
  PollGroup group(me);
  for (size_t i = 0; i < n; ++i) {
    if (fds[i].fd < 0) continue;
    if ((fds[i].events & ~(kReadEvents | kWriteEvents)) != 0) return IoResult::Passthrough();
    if (!group.Add(fds[i].fd)) return IoResult::Passthrough();
  }
  ScopedWaitNote note(me, kWaitPoll);
  for (;;) {
    int r = probe(ctx);  // after the watches are registered: see the header, step 3
    if (r != 0) return FromProbe(r);
    if (group.AnyClosing()) return IoResult::Passthrough();
    // poll, select and epoll_wait are never restarted after a signal handler (signal(7)).
    ParkResult p = me->Park(deadline_ns, WaitKind::kAlwaysEintr);
    if (p == ParkResult::kInterrupted) return IoResult::Err(EINTR);
    if (p == ParkResult::kTimedOut && Nanotime() >= deadline_ns) return FromProbe(probe(ctx));
  }
}

}  // namespace gonet::core
