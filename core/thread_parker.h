// Threads mode: every OS thread is its own fiber, and parking blocks the thread on a futex.
//
// The futex word is the permit: 0 none, 1 available. The kind of futex wait is chosen so that the
// kernel itself applies signal(7)'s restart rule (see parker.h WaitKind):
//   - untimed FUTEX_WAIT returns -ERESTARTSYS on a signal: the kernel restarts it after an
//     SA_RESTART handler and reports EINTR otherwise, exactly like a blocking recv without
//     SO_RCVTIMEO;
//   - timed FUTEX_WAIT_BITSET returns -ERESTART_RESTARTBLOCK, which a handler always turns into
//     EINTR, exactly like a blocking recv with SO_RCVTIMEO. kAlwaysEintr with no deadline uses a
//     timed wait with a far deadline for that reason.
// A deadline with kRestartable (a gonet deadline policy on a socket whose app set no timeout)
// needs a timed wait; an EINTR there is reported as kInterrupted only if some installed handler
// lacks SA_RESTART (signal_policy.h); otherwise the wait resumes, as the kernel would have.
//
// Cancellation: glibc acts on pthread_cancel only inside its own cancellation points. A parked
// socket call is one natively, so the futex wait runs with asynchronous cancellation enabled, as
// glibc's own wrappers do around their syscall; callers hold their state in RAII guards, which the
// forced unwind runs.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/parker.h"

namespace gonet::core {

class ThreadParker final : public Parker {
 public:
  ParkResult Park(int64_t deadline_ns, WaitKind kind) override;
  void Unpark() override;

  // The calling thread's parker, taken from a pool on first use and returned at thread exit.
  static ThreadParker* ForCurrentThread();

 private:
  friend class ThreadParkerPool;
  alignas(64) std::atomic<uint32_t> permit_{0};
  ThreadParker* next_free_ = nullptr;  // guarded by the pool's lock
};

}  // namespace gonet::core
