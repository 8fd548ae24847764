// A test-and-test-and-set spinlock for critical sections of a few instructions (queue links).
// Never held across a park or a fiber switch, and never taken in a signal handler: core refuses
// re-entry (base/mode.h, ReentryGuard) before reaching one, so a handler cannot find it held by
// its own thread. The few held across a syscall, and why that is safe, are listed with every
// lock's place in the acquire order in core/README.md (LOCKING).
#pragma once

#include <atomic>

#include "core/base/thread_annotations.h"

namespace gonet::core {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

class GONET_CAPABILITY("mutex") Spinlock {
 public:
  void Lock() GONET_ACQUIRE() {
    for (;;) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) CpuRelax();
    }
  }
  void Unlock() GONET_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

class GONET_SCOPED_CAPABILITY SpinGuard {
 public:
  explicit SpinGuard(Spinlock& mu) GONET_ACQUIRE(mu) : mu_(mu) { mu_.Lock(); }
  ~SpinGuard() GONET_RELEASE() { mu_.Unlock(); }
  SpinGuard(const SpinGuard&) = delete;
  SpinGuard& operator=(const SpinGuard&) = delete;

 private:
  Spinlock& mu_;
};

}  // namespace gonet::core
