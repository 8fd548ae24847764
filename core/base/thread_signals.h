// Signal masks of gonet's own OS threads (fiber workers and spare machines, the sysmon, offload
// helpers, the netpoller driver).
//
// gonet's helper threads must not take the program's asynchronous signals (a SIGTERM or a
// SIGCHLD belongs to the program's threads), so they block them. They must never block the
// synchronous fault signals, though: the kernel delivers a fault to the faulting thread whatever
// its mask says, and when the signal is blocked it resets the disposition and kills the process
// instead, so neither the program's handler (a crash report, a sigaltstack handler) nor gonet's
// (crash_report.h, the fiber stack-overflow report) would run. A fiber's fault happens on a
// worker, and a worker handed to a new machine runs on a thread the sysmon created.
#pragma once

#include <signal.h>

namespace gonet::core {

// Raised by the thread's own instruction (or its own abort/raise): never blocked by gonet.
inline constexpr int kSyncFaultSignals[] = {SIGSEGV, SIGBUS,  SIGILL, SIGFPE,
                                            SIGABRT, SIGTRAP, SIGSYS};

inline void UnblockSyncFaults(sigset_t* set) {
  for (int sig : kSyncFaultSignals) sigdelset(set, sig);
}

// Every signal but the synchronous faults (glibc keeps its own internal signals unblocked).
inline void HelperThreadMask(sigset_t* set) {
  sigfillset(set);
  UnblockSyncFaults(set);
}

// For the start routine of a helper thread created without a mask in its attributes.
inline void ApplyHelperThreadMask() {
  sigset_t set;
  HelperThreadMask(&set);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
}

}  // namespace gonet::core
