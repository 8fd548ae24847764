#include <sys/epoll.h>
#include <sys/eventfd.h>

#include <cstring>
#include <new>

#include "core/base/base.h"
#include "core/base/own_fd.h"
#include "core/base/spinlock.h"
#include "core/base/sys.h"
#include "core/poll/netpoller.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {
// The break eventfd's tag: no pollDesc has this index.
constexpr uint64_t kBreakTag = ~uint64_t{0};
constexpr int kMaxEvents = 128;
Spinlock g_open_mu;
// Constant-initialised: no constructor runs at load, no guard variable on the hot path.
constinit Netpoller g_poller;
}  // namespace

Netpoller& Netpoller::Get() { return g_poller; }

int Netpoller::EnsureOpen() {
  int ep = epfd_.load(std::memory_order_acquire);
  if (GONET_LIKELY(ep >= 0)) return ep;
  SpinGuard g(g_open_mu);
  ep = epfd_.load(std::memory_order_acquire);
  if (ep >= 0) return ep;
  long e = sys::Call(SYS_epoll_create1, EPOLL_CLOEXEC);
  if (e < 0) return static_cast<int>(e);
  long b = sys::Call(SYS_eventfd2, 0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (b < 0) {
    sys::Call(SYS_close, e);
    return static_cast<int>(b);
  }
  // Both got the lowest free numbers, the program's: the first park would otherwise shift every
  // fd the program opens next, and show it two fds it never opened (own_fd.h). Other threads may
  // run: the soft limit is never raised here.
  e = MoveOutOfTheWay(static_cast<int>(e), RaiseLimit::kNever);
  b = MoveOutOfTheWay(static_cast<int>(b), RaiseLimit::kNever);
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLET;
  ev.data.u64 = kBreakTag;
  sys::Call(SYS_epoll_ctl, e, EPOLL_CTL_ADD, b, &ev);
  breakfd_.store(static_cast<int>(b), std::memory_order_release);
  epfd_.store(static_cast<int>(e), std::memory_order_release);
  return static_cast<int>(e);
}

int Netpoller::Arm(PollDesc* pd) {
  if (IsArmed(pd)) return 0;  // a reader and a writer may both find it unarmed
  int ep = EnsureOpen();
  if (ep < 0) return ep;
  epoll_event ev{};
  ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLPRI | EPOLLET;
  ev.data.u64 = pd->EpollTag();
  long r = sys::Call(SYS_epoll_ctl, ep, EPOLL_CTL_ADD, pd->fd(), &ev);
  if (r == -EEXIST) {
    // Registered under an older tag (the fd was closed behind gonet's back and its number
    // reused): refresh the tag.
    r = sys::Call(SYS_epoll_ctl, ep, EPOLL_CTL_MOD, pd->fd(), &ev);
  }
  if (r < 0) return static_cast<int>(r);
  uint32_t prev = pd->armed_epoch().exchange(epoch(), std::memory_order_acq_rel);
  if (prev != epoch()) Count(Stats().fds_armed);
  return 0;
}

int Netpoller::Disarm(PollDesc* pd) {
  if (!IsArmed(pd)) return 0;
  pd->armed_epoch().store(0, std::memory_order_release);
  Count(Stats().fds_armed, -1);
  int ep = epfd_.load(std::memory_order_acquire);
  if (ep < 0) return 0;
  epoll_event ev{};  // non-NULL for kernels before 2.6.9
  return static_cast<int>(sys::Call(SYS_epoll_ctl, ep, EPOLL_CTL_DEL, pd->fd(), &ev));
}

int Netpoller::Poll(int64_t delay_ns) {
  int ep = EnsureOpen();
  if (ep < 0) return ep;
  epoll_event events[kMaxEvents];
  long n;
  if (delay_ns < 0) {
    n = sys::Call(SYS_epoll_wait, ep, events, kMaxEvents, -1);
  } else {
    // epoll_pwait2 takes a timespec: nanosecond precision instead of epoll_wait's milliseconds.
    timespec ts{static_cast<time_t>(delay_ns / 1000000000),
                static_cast<long>(delay_ns % 1000000000)};
    n = sys::Call(SYS_epoll_pwait2, ep, events, kMaxEvents, &ts, nullptr, 8);
    if (n == -ENOSYS) {
      int ms = static_cast<int>((delay_ns + 999999) / 1000000);
      n = sys::Call(SYS_epoll_wait, ep, events, kMaxEvents, ms);
    }
  }
  Count(Stats().epoll_waits);
  if (n <= 0) return 0;
  Count(Stats().epoll_events, n);
  int delivered = 0;
  for (long i = 0; i < n; ++i) {
    uint64_t tag = events[i].data.u64;
    if (tag == kBreakTag) {
      uint64_t v;
      sys::Call(SYS_read, breakfd_.load(std::memory_order_relaxed), &v, sizeof v);
      break_pending_.store(false, std::memory_order_release);
      continue;
    }
    PollDesc* pd = PollDesc::FromIndex(static_cast<uint32_t>(tag >> 32));
    if (pd == nullptr || !pd->MatchesTag(tag)) {
      Count(Stats().stale_events);
      continue;
    }
    uint32_t ev = events[i].events;
    // Before the delivery: see PollDesc's drained hint.
    if (ev & (EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) pd->EndDrainedHint();
    if (ev & (EPOLLIN | EPOLLPRI | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) pd->Ready(Mode::kRead);
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) pd->Ready(Mode::kWrite);
    ++delivered;
  }
  return delivered;
}

void Netpoller::Break() {
  // Open first: a Break before the first Poll must still be seen by it, and a pending flag set
  // with no eventfd to write would swallow every later Break as a duplicate.
  if (EnsureOpen() < 0) return;
  bool expect = false;
  if (!break_pending_.compare_exchange_strong(expect, true, std::memory_order_acq_rel)) return;
  int b = breakfd_.load(std::memory_order_acquire);
  if (b < 0) return;
  uint64_t one = 1;
  sys::Call(SYS_write, b, &one, sizeof one);
}

void Netpoller::AfterForkChild() {
  int ep = epfd_.exchange(-1, std::memory_order_acq_rel);
  int b = breakfd_.exchange(-1, std::memory_order_acq_rel);
  // Closing our copies does not touch the parent's instance; it still holds its own.
  if (ep >= 0) sys::Call(SYS_close, ep);
  if (b >= 0) sys::Call(SYS_close, b);
  break_pending_.store(false, std::memory_order_relaxed);
  epoch_.fetch_add(1, std::memory_order_acq_rel);
  new (&g_open_mu) Spinlock();
}

}  // namespace gonet::core
