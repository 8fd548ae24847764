// core/threads/: threads mode's parker (this file), the kernel-wait path (kernel_wait.h) and SIGURG
// (sigurg.h). May include: poll/, stats/, base/ (core/README.md: Layers, LOCKING).
//
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
//
// gonet dump (dump.h): parkers live in a type-stable arena, so the dump handler can visit every
// one (ForEachThreadParker) with its owner's tid and wait note; before its futex sleep a parker
// publishes its tid and futex address in the segment's parker table once per segment. A dump
// request that interrupts the futex wait is marked (NoteDumpInterrupt) and the wait resumes: the
// program never sees that EINTR.
#pragma once

#include <atomic>
#include <cstdint>

#include "core/poll/parker.h"

namespace gonet::core {

class ThreadParker final : public Parker {
 public:
  ParkResult Park(int64_t deadline_ns, WaitKind kind) override;
  void Unpark() override;

  // The calling thread's parker, taken from a pool on first use and returned at thread exit.
  static ThreadParker* ForCurrentThread();

  // gonet dump. In a signal handler: the calling thread's parker if it has one (no allocation).
  static ThreadParker* OfCurrentThreadIfAny();
  // In the dump handler, when the signal is about to make this thread's futex wait return EINTR:
  // the park loop then resumes the wait instead of reporting kInterrupted.
  static void NoteDumpInterrupt();
  int tid() const { return tid_.load(std::memory_order_relaxed); }  // 0: no owner
  const void* futex_word() const { return &permit_; }

 private:
  friend class ThreadParkerPool;
  friend void ThreadParkersAfterForkChild();
  void Publish();

  alignas(64) std::atomic<uint32_t> permit_{0};
  std::atomic<int> tid_{0};
  const void* published_in_ = nullptr;  // the segment holding our parker-table entry (owner only)
};

// Visits every parker ever handed out (type-stable: a visited one may be changing hands).
// Async-signal-safe.
template <typename F>
void ForEachThreadParker(F f);
uint32_t ThreadParkerCount();
ThreadParker* ThreadParkerAt(uint32_t i);

// Fork child: every other thread is gone; their parkers go back to the pool (runtime/'s
// AtForkChild calls this).
void ThreadParkersAfterForkChild();

template <typename F>
void ForEachThreadParker(F f) {
  uint32_t n = ThreadParkerCount();
  for (uint32_t i = 0; i < n; ++i) {
    if (ThreadParker* p = ThreadParkerAt(i)) f(*p);
  }
}

// Publishes a ThreadParker in the parker table (index: its arena index; beyond kDumpParkers it
// is not published) and marks the process as answering. tid 0 withdraws it. Returns the segment
// it was published in, for the caller to compare with StatsSegment() later.
const void* PublishParker(uint32_t index, int tid, const void* futex);

}  // namespace gonet::core
