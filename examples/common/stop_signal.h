// Clean shutdown of a blocking daemon on SIGTERM or SIGINT.
//
// A legacy daemon sits in a blocking accept() or recvfrom(). Setting a flag from the handler is
// not enough: if the signal lands between the flag check and the call, the call blocks forever.
// So the handler also shuts the serving socket down, which is async-signal-safe and makes the
// blocked call (or the next one) return at once: accept with EINVAL, recvfrom with 0. The
// handler is installed without SA_RESTART, so a call it interrupts may also return EINTR; the
// serving loop treats all three as "check StopRequested()".
#pragma once

#include <signal.h>

namespace examples {

// Installs the SIGTERM/SIGINT handler for `fd`. `also`, if given, runs inside the handler after
// the shutdown and must be async-signal-safe (e.g. a sem_post that wakes a loop waiting for a
// connection slot).
void StopOnSignal(int fd, void (*also)() = nullptr);

// True once SIGTERM or SIGINT arrived.
bool StopRequested();

// Blocks SIGTERM and SIGINT in the calling thread for its lifetime. Create connection threads
// inside one: they inherit the mask, so the signal is delivered to the serving thread and never
// interrupts a connection's recv with EINTR.
class ScopedStopSignalsBlocked {
 public:
  ScopedStopSignalsBlocked();
  ~ScopedStopSignalsBlocked();
  ScopedStopSignalsBlocked(const ScopedStopSignalsBlocked&) = delete;
  ScopedStopSignalsBlocked& operator=(const ScopedStopSignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};

}  // namespace examples
