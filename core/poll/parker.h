// The parking interface. A pollDesc, a direction lock or a closer that must wait asks the current
// Parker to sleep; whoever satisfies the wait calls Unpark. The pollDesc does not know whether a
// futex (threads mode, thread_parker.h) or the fiber scheduler (fibers mode) is behind it.
//
// Contract (LockSupport-style binary permit):
//   - Unpark() stores a permit and wakes the parked owner. It may be called by any thread, any
//     number of times, before or after Park. Permits do not accumulate.
//   - Park() consumes a permit if there is one and returns kUnparked at once; otherwise it sleeps
//     until a permit, the deadline, or a signal handler that the kernel would let interrupt.
//   - Park may also return spuriously (a stale permit from an earlier, already satisfied wait).
//     Every caller re-checks its own condition in a loop; none trusts kUnparked alone.
//
// Lifetime: Parkers are type-stable and never freed (a notifier may hold a pointer after the
// waiter has moved on and call Unpark late); a late permit is just a spurious wake-up for the
// next owner, which the loop rule above makes harmless.
//
// Park is not noexcept, on purpose: pthread_cancel of a thread parked in a socket call unwinds
// through it (glibc's forced unwind), and a noexcept frame would turn that into std::terminate.
#pragma once

#include <time.h>

#include <atomic>
#include <cstdint>

#include "core/base/base.h"

namespace gonet::core {

enum class ParkResult {
  kUnparked,     // a permit was consumed (maybe stale: re-check)
  kTimedOut,     // the deadline passed
  kInterrupted,  // a signal handler ran and the kernel rule says EINTR (see WaitKind)
};

// How a signal interrupts a wait, after signal(7): a blocking socket call with no timeout is
// restarted after a handler installed with SA_RESTART, and fails with EINTR otherwise; a call
// with a timeout (SO_RCVTIMEO/SO_SNDTIMEO) fails with EINTR whatever the handler's flags.
enum class WaitKind {
  kRestartable,  // no app timeout: SA_RESTART handlers restart the wait
  kAlwaysEintr,  // app timeout set: any handler interrupts
};

// What a waiter is parked for, for `gonet dump` (dump.h): a socket operation on an fd, or a reason
// that is not a socket (fibers mode parks fibers on mutexes, sleeps...). 0: nothing noted.
enum WaitWhat : char {
  kWaitNone = 0,
  kWaitRecv = 'r',
  kWaitSend = 'w',
  kWaitAccept = 'a',
  kWaitConnect = 'c',
  kWaitMutex = 'm',
  kWaitCond = 'v',
  kWaitRwlock = 'l',
  kWaitSem = 's',
  kWaitFutex = 'f',  // a futex the program waits on through syscall(SYS_futex)
  kWaitPoll = 'p',   // poll, select or epoll_wait on the netpoller (poll_group.h)
  kWaitSleep = 'z',
  kWaitJoin = 'j',
  kWaitOffload = 'o',  // a call running on an offload helper (syscall_offload.h)
  kWaitSignal = 'g',   // sigsuspend or pause in a fiber (fibers/fiber_signals.h)
};

// The wait note. Written only by the waiter itself, around its park (BlockingCall on the netpoller
// path, fiber_sync for fibers); read by gonet dump from another thread at any time. It is on the
// hot path (every blocked socket call, every contended fiber mutex), so it is three relaxed
// stores and one coarse clock read (CLOCK_MONOTONIC_COARSE: vDSO, ~3 ns against ~20 ns for
// CLOCK_MONOTONIC; a dump's "waiting 1.2s" does not need better than its few milliseconds), no
// fence: the dumper reads what fields tell it the waiter is doing, and a view torn between two
// consecutive waits is at worst one wrong line in one dump. `what` is stored last and cleared
// alone, so a reader that sees it set sees this wait's fd, or the previous one's. It has a cache
// line of its own: a waker on another CPU reads the Parker's vtable pointer to call Unpark, and
// must not find that line just written by the waiter's note.
struct alignas(64) WaitNote {
  std::atomic<int64_t> since_ns{0};  // CLOCK_MONOTONIC_COARSE when the wait began
  std::atomic<int32_t> fd{-1};       // the socket, or -1
  std::atomic<char> what{kWaitNone};
};

class Parker {
 public:
  virtual ParkResult Park(int64_t deadline_ns, WaitKind kind) = 0;  // deadline 0 = none
  virtual void Unpark() = 0;

  // Only the waiter itself calls these (dump.h reads the note).
  void NoteWait(WaitWhat what, int fd) {
    note_.fd.store(fd, std::memory_order_relaxed);
    note_.since_ns.store(CoarseNanotime(), std::memory_order_relaxed);
    note_.what.store(what, std::memory_order_relaxed);
  }
  void ClearWait() { note_.what.store(kWaitNone, std::memory_order_relaxed); }
  const WaitNote& wait_note() const { return note_; }

 protected:
  ~Parker() = default;

 private:
  WaitNote note_;
};

// RAII for a wait that is not a socket operation: notes `what` on the current parker for the
// scope (fiber_sync.cc), so pthread_cancel's unwind clears it too.
class ScopedWaitNote {
 public:
  ScopedWaitNote(Parker* p, WaitWhat what) : p_(p) { p_->NoteWait(what, -1); }
  ~ScopedWaitNote() { p_->ClearWait(); }
  ScopedWaitNote(const ScopedWaitNote&) = delete;
  ScopedWaitNote& operator=(const ScopedWaitNote&) = delete;

 private:
  Parker* p_;
};

// The parker of the calling thread or fiber. Threads mode: a per-thread futex parker.
Parker* CurrentParker();

// Fibers mode installs its own lookup (the running fiber's parker); nullptr restores threads mode.
using ParkerLookup = Parker* (*)();
void SetParkerLookup(ParkerLookup lookup);

}  // namespace gonet::core
