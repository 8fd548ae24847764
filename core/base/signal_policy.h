// What gonet needs to know about the program's signal handlers: whether every installed handler
// has SA_RESTART. Only one path needs it: a wait that must be timed because of a gonet deadline
// policy (--read-timeout) on a socket whose program set no timeout. The kernel would restart such a
// call after an SA_RESTART handler; a timed futex cannot, so the parker resumes the wait itself
// when no installed handler lacks SA_RESTART (thread_parker.h). Which signal arrived is not known
// there, so one non-restarting handler anywhere makes such waits report EINTR: a documented limit.
#pragma once

#include <signal.h>

namespace gonet::core {

// Records the disposition the program just installed (the shim calls this after a successful
// sigaction/signal). Async-signal-safe: one atomic read-modify-write.
void NoteSigaction(int sig, const struct sigaction* act);

// Seeds the table from the handlers installed before gonet was loaded or initialised.
void ScanInstalledHandlers();

bool AllHandlersRestart();

}  // namespace gonet::core
