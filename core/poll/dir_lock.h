// DirLock: lets one operation at a time wait in one direction of a pollDesc.
//
// Go allows one goroutine per direction in netpollblock and queues the others in fdMutex. An
// unmodified program often has several threads blocked on one fd (a pool of threads in accept on
// one listener, several UDP readers), so gonet queues them here, FIFO, in front of the pollDesc's
// binary semaphore. The holder is the only one that may touch rg_ (or wg_) of the pollDesc.
//
// state_:
//   kFree     no holder. Lock: CAS kFree -> kHeld.
//   kHeld     a holder, no queued waiter. Unlock: CAS kHeld -> kFree.
//   kQueued   a holder and at least one queued waiter (queue_ non-empty, under mu_). Unlock hands
//             the lock straight to the queue head (granted = true) and unparks it: the lock is
//             never free in between, so a newcomer cannot overtake a queued waiter.
// A queued waiter leaves early on close (EBADF), its own deadline (EAGAIN) or a signal (EINTR):
// under mu_ it unlinks itself if it has not been granted yet; if it has, it owns the lock and
// unlocks it again on the way out (passing it on), so no grant is ever lost.
//
// LOCKING (core/README.md, lock 2): mu_ guards the queue and the kHeld <-> kQueued transitions;
// it is a spinlock held for a few instructions and never across a park. WakeAll (the close path)
// unparks every waiter under it: a thread's futex wake, or a fiber's run-queue lock (lock 3) and
// then a non-blocking futex wake or eventfd write.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/base/spinlock.h"
#include "core/poll/parker.h"

namespace gonet::core {

enum class WaitResult {
  kOk,           // lock taken / IO ready
  kClosing,      // the fd is being closed: EBADF
  kTimeout,      // the operation's deadline passed: EAGAIN (EINPROGRESS for connect)
  kInterrupted,  // a signal handler interrupted the wait: EINTR
};

class DirLock {
 public:
  // Takes the lock, waiting in FIFO order. `closing` is polled after every wake-up; the closer
  // calls WakeAll so that queued waiters see it.
  WaitResult Lock(const std::atomic<bool>& closing, int64_t deadline_ns, WaitKind kind);
  // Takes the lock only if nobody holds it; never waits.
  bool TryLock() {
    uint32_t expect = kFree;
    return state_.compare_exchange_strong(expect, kHeld, std::memory_order_acquire);
  }
  void Unlock();
  // Unparks every queued waiter so it re-checks closing (close/evict).
  void WakeAll();
  bool held() const { return state_.load(std::memory_order_relaxed) != kFree; }
  // After fork only the forking thread exists: forget holders and waiters of other threads.
  void ResetAfterFork();

 private:
  enum : uint32_t { kFree = 0, kHeld = 1, kQueued = 2 };
  struct Waiter {
    Parker* parker;
    Waiter* next = nullptr;
    std::atomic<bool> granted{false};
  };
  void Unlink(Waiter* w) GONET_REQUIRES(mu_);

  std::atomic<uint32_t> state_{kFree};
  Spinlock mu_;
  Waiter* head_ GONET_GUARDED_BY(mu_) = nullptr;  // FIFO of waiters on their stacks
  Waiter* tail_ GONET_GUARDED_BY(mu_) = nullptr;
};

}  // namespace gonet::core
