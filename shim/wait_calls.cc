// The readiness waits (poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2, and
// the fortified __poll_chk/__ppoll_chk) and the child waits (waitpid, wait, wait3, wait4,
// waitid). Only fibers mode acts on them: a fiber that would wait in the kernel parks, on the
// netpoller or while a helper thread makes the call (core/fibers/syscall_offload.h), so the
// fibers sharing its worker keep running. Everywhere else (other modes, the main thread, gonet's
// own threads, a signal handler inside core) each call goes to libc at once, unchanged.
//
// In a fiber, a call that cannot wait (a zero timeout, WNOHANG) is made inline, and poll of no
// fds with a timeout, a portable sleep, parks the fiber like nanosleep does. Any other call is
// first made without waiting (a zero timeout, WNOHANG): an answer or an error is returned at
// once, as the blocking call would have returned it. On "nothing yet", the readiness waits park
// on the netpoller when epoll can watch every fd they name (core/fd/poll_group.h; epoll_wait
// watches the program's epoll fd itself), those with a signal mask with the fiber's mask the
// call's meanwhile (MaskedWait); the rest, and the child waits, are offloaded with the
// program's own timeout. The probe's few microseconds are added to the program's timeout (the
// call waits that much longer than asked at most), which the kernel's timer slack already exceeds.
// One visible trace: when select's probe finds something ready, its timeval is left as the program
// gave it, where Linux would have written the time left (the same, less those microseconds).
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/wait.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "core/base/base.h"
#include "core/fd/ops.h"
#include "core/fd/poll_group.h"
#include "core/fibers/fiber_signals.h"
#include "core/fibers/fiber_sync.h"
#include "core/fibers/syscall_offload.h"
#include "shim/abi.h"
#include "shim/real.h"

using gonet::shim::ToCAbi;
namespace core = gonet::core;
namespace real = gonet::real;

extern "C" void __chk_fail(void) __attribute__((noreturn));

namespace {

// select and pselect write their fd sets even when nothing is ready: the probe runs on copies,
// so the offloaded call sees the program's sets. Sets above FD_SETSIZE (a program allocating
// larger arrays) are not copied and the call is offloaded without a probe.
class FdSetProbe {
 public:
  FdSetProbe(int nfds, fd_set* r, fd_set* w, fd_set* e) : nfds_(nfds), sets_{r, w, e} {}

  // The probe's result, or 0 if it could not be made (the caller offloads).
  template <typename Call>
  int Run(Call call) {
    if (nfds_ < 0 || nfds_ > FD_SETSIZE) return 0;
    for (int i = 0; i < 3; ++i) {
      if (sets_[i] != nullptr) copies_[i] = *sets_[i];
    }
    return call(sets_[0] != nullptr ? &copies_[0] : nullptr,
                sets_[1] != nullptr ? &copies_[1] : nullptr,
                sets_[2] != nullptr ? &copies_[2] : nullptr);
  }
  // A probe that found something: the program gets the sets it wrote.
  void Publish() {
    for (int i = 0; i < 3; ++i) {
      if (sets_[i] != nullptr) *sets_[i] = copies_[i];
    }
  }

 private:
  int nfds_;
  fd_set* sets_[3];
  fd_set copies_[3];
};

// A timeout that cannot wait, and so is made inline: zero, or one the kernel refuses with
// EINVAL (a probe with a zero timeout in its place would answer instead of refusing).
bool Immediate(const timespec* t) {
  return t != nullptr && ((t->tv_sec == 0 && t->tv_nsec == 0) || t->tv_sec < 0 || t->tv_nsec < 0 ||
                          t->tv_nsec >= 1000000000);
}

// The program's poll with a zero timeout: the poll group's probe (core/fd/poll_group.h).
struct PollCall {
  pollfd* fds;
  nfds_t nfds;
  const sigset_t* sigmask;
  static int Probe(void* self) {
    auto* c = static_cast<PollCall*>(self);
    const timespec zero{};
    int r = real::ppoll(c->fds, c->nfds, &zero, c->sigmask);
    return r < 0 ? -errno : r;
  }
};

// One park on every fd of the set (poll_group.h). Passthrough: offload.
gonet::core::IoResult PollFds(pollfd* fds, nfds_t nfds, const sigset_t* sigmask,
                              int64_t deadline_ns) {
  if (nfds > core::kMaxPollGroupFds) return core::IoResult::Passthrough();
  PollCall call{fds, nfds, sigmask};
  return core::WaitFds(fds, nfds, deadline_ns, &PollCall::Probe, &call);
}

// The program's epoll_pwait2 with a zero timeout: the probe of a poll group of one fd, the
// program's epoll fd, which is readable while its ready list is not empty.
struct EpollCall {
  int epfd;
  epoll_event* events;
  int maxevents;
  static int Probe(void* self) {
    auto* c = static_cast<EpollCall*>(self);
    int r = real::epoll_wait(c->epfd, c->events, c->maxevents, 0);
    return r < 0 ? -errno : r;
  }
};

gonet::core::IoResult EpollOnNetpoller(int epfd, epoll_event* events, int maxevents,
                                       int64_t deadline_ns) {
  EpollCall call{epfd, events, maxevents};
  const pollfd p{epfd, POLLIN, 0};
  return core::WaitFds(&p, 1, deadline_ns, &EpollCall::Probe, &call);
}

// ppoll, pselect, epoll_pwait and epoll_pwait2 with a signal mask, parked on the netpoller: the
// fiber's mask is the call's for the wait, and a watch takes the process-directed signals it lets
// through that the fiber blocks otherwise (core/fibers/fiber_signals.h, SignalWait). Without a
// mask, nothing.
class MaskedWait {
 public:
  explicit MaskedWait(const sigset_t* sigmask) {
    if (sigmask != nullptr) wait_.emplace(sigmask, core::SignalWait::Watch::kNewlyUnblocked);
  }

 private:
  std::optional<core::SignalWait> wait_;
};

// What is left of a poll timeout (ms, -1 = none) by deadline_ns, for a call offloaded after a
// poll group gave up on it (a socket was closed meanwhile).
int MsLeft(int timeout_ms, int64_t deadline_ns) {
  if (timeout_ms < 0) return -1;
  int64_t left = deadline_ns - core::Nanotime();
  return left <= 0 ? 0 : static_cast<int>((left + 999999) / 1000000);
}

// select's sets as pollfds for a poll group (read and write sets only: exceptfds wait for urgent
// data, which raises no edge gonet waits for). False: not this way (the caller offloads).
bool SelectAsPollfds(int nfds, const fd_set* r, const fd_set* w, const fd_set* e, pollfd* out,
                     size_t* n) {
  *n = 0;
  if (nfds < 0 || nfds > FD_SETSIZE) return false;
  for (int fd = 0; fd < nfds; ++fd) {
    if (e != nullptr && FD_ISSET(fd, e)) return false;
    short ev = 0;
    if (r != nullptr && FD_ISSET(fd, r)) ev |= POLLIN;
    if (w != nullptr && FD_ISSET(fd, w)) ev |= POLLOUT;
    if (ev == 0) continue;
    if (*n == core::kMaxPollGroupFds) return false;
    out[(*n)++] = pollfd{fd, ev, 0};
  }
  return *n > 0;
}

}  // namespace

GONET_HOOK int poll(struct pollfd* fds, nfds_t nfds, int timeout_ms) {
  if (!core::InFiber() || timeout_ms == 0) return real::poll(fds, nfds, timeout_ms);
  if (nfds == 0 && timeout_ms > 0) {  // poll(NULL, 0, ms), a portable sleep: no helper needed
    core::FiberSleepUntil(core::DeadlineAfter(int64_t{timeout_ms} * 1000000));
    return 0;
  }
  if (nfds == 1) {  // one socket of gonet's: park on its pollDesc (core/fd/poll_wait.cc)
    core::IoResult r = core::PollOneSocket(fds, timeout_ms < 0 ? 0 : int64_t{timeout_ms} * 1000000);
    if (!r.passthrough()) return ToCAbi<int>(r);
  }
  if (int r = real::poll(fds, nfds, 0); r != 0) return r;
  int64_t deadline = timeout_ms < 0 ? 0 : core::DeadlineAfter(int64_t{timeout_ms} * 1000000);
  if (core::IoResult r = PollFds(fds, nfds, nullptr, deadline); !r.passthrough()) {
    return ToCAbi<int>(r);
  }
  return core::OffloadCancelPoint(real::poll, fds, nfds, MsLeft(timeout_ms, deadline));
}

GONET_HOOK int __poll_chk(struct pollfd* fds, nfds_t nfds, int timeout_ms, size_t fdslen) {
  if (fdslen / sizeof(*fds) < nfds) __chk_fail();
  return poll(fds, nfds, timeout_ms);
}

GONET_HOOK int ppoll(struct pollfd* fds, nfds_t nfds, const struct timespec* timeout,
                     const sigset_t* sigmask) {
  if (!core::InFiber() || Immediate(timeout)) return real::ppoll(fds, nfds, timeout, sigmask);
  if (nfds == 1 && sigmask == nullptr) {
    // Relative ns for core, where 0 means "none": a nonzero timeout is at least 1 ns.
    int64_t ns = timeout == nullptr ? 0 : std::max<int64_t>(core::TimespecNs(*timeout), 1);
    core::IoResult r = core::PollOneSocket(fds, ns);
    if (!r.passthrough()) return ToCAbi<int>(r);
  }
  const timespec zero{};
  if (int r = real::ppoll(fds, nfds, &zero, sigmask); r != 0) return r;
  int64_t deadline = timeout == nullptr
                         ? 0
                         : core::DeadlineAfter(std::max<int64_t>(core::TimespecNs(*timeout), 1));
  {
    // The fiber's mask is the call's while it waits, as the kernel's would be (MaskedWait).
    MaskedWait masked(sigmask);
    if (core::IoResult r = PollFds(fds, nfds, sigmask, deadline); !r.passthrough()) {
      return ToCAbi<int>(r);
    }
  }
  return core::OffloadCancelPoint(real::ppoll, fds, nfds, timeout, sigmask);
}

GONET_HOOK int __ppoll_chk(struct pollfd* fds, nfds_t nfds, const struct timespec* timeout,
                           const sigset_t* sigmask, size_t fdslen) {
  if (fdslen / sizeof(*fds) < nfds) __chk_fail();
  return ppoll(fds, nfds, timeout, sigmask);
}

GONET_HOOK int select(int nfds, fd_set* r, fd_set* w, fd_set* e, struct timeval* timeout) {
  // select refuses only a negative timeval (it normalises tv_usec beyond a second).
  if (!core::InFiber() || (timeout != nullptr && ((timeout->tv_sec == 0 && timeout->tv_usec == 0) ||
                                                  timeout->tv_sec < 0 || timeout->tv_usec < 0))) {
    return real::select(nfds, r, w, e, timeout);
  }
  FdSetProbe probe(nfds, r, w, e);
  int ready = probe.Run([&](fd_set* pr, fd_set* pw, fd_set* pe) {
    timeval zero{};
    return real::select(nfds, pr, pw, pe, &zero);
  });
  if (ready > 0) probe.Publish();
  if (ready != 0) return ready;
  pollfd pfds[core::kMaxPollGroupFds];
  size_t n = 0;
  if (SelectAsPollfds(nfds, r, w, e, pfds, &n)) {
    int64_t deadline =
        timeout == nullptr
            ? 0
            : core::DeadlineAfter(std::max<int64_t>(
                  int64_t{timeout->tv_sec} * 1000000000 + int64_t{timeout->tv_usec} * 1000, 1));
    struct Ctx {
      FdSetProbe* probe;
      int nfds;
      int result = 0;
    } ctx{&probe, nfds};
    core::IoResult g = core::WaitFds(
        pfds, n, deadline,
        [](void* p) {
          auto* c = static_cast<Ctx*>(p);
          int k = c->probe->Run([&](fd_set* pr, fd_set* pw, fd_set* pe) {
            timeval zero{};
            return real::select(c->nfds, pr, pw, pe, &zero);
          });
          return k < 0 ? -errno : k;
        },
        &ctx);
    if (!g.passthrough()) {
      if (g.err == 0) {
        probe.Publish();  // the kernel's sets, cleared when nothing is ready, as select leaves them
        if (g.n == 0 && timeout != nullptr) *timeout = timeval{};  // Linux: the time left
      }
      return ToCAbi<int>(g);
    }
  }
  return core::OffloadCancelPoint(real::select, nfds, r, w, e, timeout);
}

GONET_HOOK int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const struct timespec* timeout,
                       const sigset_t* sigmask) {
  if (!core::InFiber() || Immediate(timeout)) {
    return real::pselect(nfds, r, w, e, timeout, sigmask);
  }
  FdSetProbe probe(nfds, r, w, e);
  int ready = probe.Run([&](fd_set* pr, fd_set* pw, fd_set* pe) {
    const timespec zero{};
    return real::pselect(nfds, pr, pw, pe, &zero, sigmask);
  });
  if (ready > 0) probe.Publish();
  if (ready != 0) return ready;
  pollfd pfds[core::kMaxPollGroupFds];
  size_t n = 0;
  if (SelectAsPollfds(nfds, r, w, e, pfds, &n)) {
    int64_t deadline = timeout == nullptr
                           ? 0
                           : core::DeadlineAfter(std::max<int64_t>(core::TimespecNs(*timeout), 1));
    struct Ctx {
      FdSetProbe* probe;
      int nfds;
      const sigset_t* sigmask;
    } ctx{&probe, nfds, sigmask};
    MaskedWait masked(sigmask);
    core::IoResult g = core::WaitFds(
        pfds, n, deadline,
        [](void* p) {
          auto* c = static_cast<Ctx*>(p);
          int k = c->probe->Run([&](fd_set* pr, fd_set* pw, fd_set* pe) {
            const timespec zero{};
            return real::pselect(c->nfds, pr, pw, pe, &zero, c->sigmask);
          });
          return k < 0 ? -errno : k;
        },
        &ctx);
    if (!g.passthrough()) {
      if (g.err == 0) probe.Publish();  // the kernel's sets, cleared when nothing is ready
      return ToCAbi<int>(g);
    }
  }
  return core::OffloadCancelPoint(real::pselect, nfds, r, w, e, timeout, sigmask);
}

namespace {

// epoll_wait, and epoll_pwait without a signal mask. A poll group of one copy gives up only
// before it waits (it cannot arm the copy), so the helper gets the whole timeout.
int EpollWait(int epfd, struct epoll_event* events, int maxevents, int timeout_ms) {
  if (!core::InFiber() || timeout_ms == 0) {
    return real::epoll_wait(epfd, events, maxevents, timeout_ms);
  }
  if (int r = real::epoll_wait(epfd, events, maxevents, 0); r != 0) return r;
  int64_t deadline = timeout_ms < 0 ? 0 : core::DeadlineAfter(int64_t{timeout_ms} * 1000000);
  if (core::IoResult g = EpollOnNetpoller(epfd, events, maxevents, deadline); !g.passthrough()) {
    return ToCAbi<int>(g);
  }
  return core::OffloadCancelPoint(real::epoll_wait, epfd, events, maxevents, timeout_ms);
}

}  // namespace

GONET_HOOK int epoll_wait(int epfd, struct epoll_event* events, int maxevents, int timeout_ms) {
  return EpollWait(epfd, events, maxevents, timeout_ms);
}

// With a signal mask the call parks on the netpoller like epoll_wait, with the fiber's mask the
// call's (MaskedWait); if it cannot, the helper waits with the mask.
GONET_HOOK int epoll_pwait(int epfd, struct epoll_event* events, int maxevents, int timeout_ms,
                           const sigset_t* sigmask) {
  if (sigmask == nullptr) return EpollWait(epfd, events, maxevents, timeout_ms);
  if (!core::InFiber() || timeout_ms == 0) {
    return real::epoll_pwait(epfd, events, maxevents, timeout_ms, sigmask);
  }
  if (int r = real::epoll_pwait(epfd, events, maxevents, 0, sigmask); r != 0) return r;
  int64_t deadline = timeout_ms < 0 ? 0 : core::DeadlineAfter(int64_t{timeout_ms} * 1000000);
  {
    MaskedWait masked(sigmask);
    if (core::IoResult g = EpollOnNetpoller(epfd, events, maxevents, deadline); !g.passthrough()) {
      return ToCAbi<int>(g);
    }
  }
  return core::OffloadCancelPoint(real::epoll_pwait, epfd, events, maxevents, timeout_ms, sigmask);
}

GONET_HOOK int epoll_pwait2(int epfd, struct epoll_event* events, int maxevents,
                            const struct timespec* timeout, const sigset_t* sigmask) {
  if (!core::InFiber() || Immediate(timeout)) {
    return real::epoll_pwait2(epfd, events, maxevents, timeout, sigmask);
  }
  const timespec zero{};
  if (int r = real::epoll_pwait2(epfd, events, maxevents, &zero, sigmask); r != 0) return r;
  int64_t deadline = timeout == nullptr
                         ? 0
                         : core::DeadlineAfter(std::max<int64_t>(core::TimespecNs(*timeout), 1));
  {
    MaskedWait masked(sigmask);
    if (core::IoResult g = EpollOnNetpoller(epfd, events, maxevents, deadline); !g.passthrough()) {
      return ToCAbi<int>(g);
    }
  }
  return core::OffloadCancelPoint(real::epoll_pwait2, epfd, events, maxevents, timeout, sigmask);
}

GONET_HOOK pid_t wait4(pid_t pid, int* status, int options, struct rusage* usage) {
  if (!core::InFiber() || (options & WNOHANG)) return real::wait4(pid, status, options, usage);
  if (pid_t r = real::wait4(pid, status, options | WNOHANG, usage); r != 0) return r;
  return core::OffloadCancelPoint(real::wait4, pid, status, options, usage);
}

GONET_HOOK pid_t waitpid(pid_t pid, int* status, int options) {
  if (!core::InFiber() || (options & WNOHANG)) return real::waitpid(pid, status, options);
  if (pid_t r = real::waitpid(pid, status, options | WNOHANG); r != 0) return r;
  return core::OffloadCancelPoint(real::waitpid, pid, status, options);
}

GONET_HOOK pid_t wait(int* status) { return waitpid(-1, status, 0); }

GONET_HOOK pid_t wait3(int* status, int options, struct rusage* usage) {
  return wait4(-1, status, options, usage);
}

// waitid with WNOHANG returns 0 both when it found a child and when it did not; Linux zeroes
// the siginfo in the second case, so si_pid tells them apart. With a NULL info nothing can tell,
// and the call is offloaded without a probe.
GONET_HOOK int waitid(idtype_t idtype, id_t id, siginfo_t* info, int options) {
  if (!core::InFiber() || (options & WNOHANG)) return real::waitid(idtype, id, info, options);
  if (info != nullptr) {
    int r = real::waitid(idtype, id, info, options | WNOHANG);
    if (r != 0 || info->si_pid != 0) return r;
  }
  return core::OffloadCancelPoint(real::waitid, idtype, id, info, options);
}
