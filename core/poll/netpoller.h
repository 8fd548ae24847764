// The netpoller contract (Go's netpoll.go: "A particular implementation must define the following
// functions"). netpoller_epoll.cc is the only implementation and the only file that includes
// <sys/epoll.h>.
//
//   Arm(pd)        registers pd's fd once, edge-triggered, for both directions; the event data
//                  carries (pd index, fdseq) so a stale event is recognised and dropped.
//                  Returns 0 or -errno (-EPERM: the fd cannot be polled, e.g. a regular file).
//   Disarm(pd)     removes the registration; must run before the fd is really closed, because
//                  epoll keys registrations on the open file, not the fd number.
//   Poll(delay)    waits up to delay_ns (< 0: forever, 0: just look) and calls pd->Ready for
//                  every direction that became ready. Safe from any one thread at a time.
//   Break()        makes a concurrent or the next Poll return promptly (Go's netpollBreak);
//                  de-duplicated, so many calls cost one eventfd write.
//   AfterForkChild the child must never wait on the parent's epoll instance (they share it):
//                  open a fresh one and bump epoch() so every pollDesc re-arms on next use.
//
// An idle process makes no periodic wake-ups: Poll(-1) sleeps until an event or a Break.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/poll/poll_desc.h"

namespace gonet::core {

class Netpoller {
 public:
  static Netpoller& Get();

  int Arm(PollDesc* pd);
  int Disarm(PollDesc* pd);
  int Poll(int64_t delay_ns);
  void Break();
  void AfterForkChild();

  uint32_t epoch() const { return epoch_.load(std::memory_order_acquire); }
  bool IsArmed(PollDesc* pd) const {
    return pd->armed_epoch().load(std::memory_order_acquire) == epoch();
  }

 private:
  int EnsureOpen();

  std::atomic<int> epfd_{-1};
  std::atomic<int> breakfd_{-1};
  std::atomic<bool> break_pending_{false};
  std::atomic<uint32_t> epoch_{1};
};

}  // namespace gonet::core
