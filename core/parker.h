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

#include <cstdint>

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

class Parker {
 public:
  virtual ParkResult Park(int64_t deadline_ns, WaitKind kind) = 0;  // deadline 0 = none
  virtual void Unpark() = 0;

 protected:
  ~Parker() = default;
};

// The parker of the calling thread or fiber. Threads mode: a per-thread futex parker.
Parker* CurrentParker();

// Fibers mode installs its own lookup (the running fiber's parker); nullptr restores threads mode.
using ParkerLookup = Parker* (*)();
void SetParkerLookup(ParkerLookup lookup);

}  // namespace gonet::core
