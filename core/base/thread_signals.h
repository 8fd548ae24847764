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

#include <cstdint>

namespace gonet::core {

// Raised by the thread's own instruction (or its own abort/raise): never blocked by gonet.
inline constexpr int kSyncFaultSignals[] = {SIGSEGV, SIGBUS,  SIGILL, SIGFPE,
                                            SIGABRT, SIGTRAP, SIGSYS};

// Signal sets kept in one 64-bit word (atomics, masks compared per switch): bit sig-1, as the
// kernel's first mask word.
constexpr uint64_t SignalBit(int sig) { return uint64_t{1} << (sig - 1); }

constexpr uint64_t SyncFaultBits() {
  uint64_t m = 0;
  for (int sig : kSyncFaultSignals) m |= SignalBit(sig);
  return m;
}

// Never blocked, as the kernel and glibc's pthread_sigmask decide: SIGKILL, SIGSTOP, and glibc's
// internal cancellation and setxid signals (32, 33).
inline constexpr uint64_t kUnblockableSignals =
    SignalBit(SIGKILL) | SignalBit(SIGSTOP) | SignalBit(32) | SignalBit(33);

// What fibers mode's signal machinery never takes for a fiber (a SignalWait's watch, the routing
// of process-directed signals: fibers/fiber_signals.h, fibers/signal_route.h): the signals
// nobody can block, gonet's own SIGURG (threads/sigurg.h) and the synchronous faults.
inline constexpr uint64_t kSignalsLeftAlone =
    kUnblockableSignals | SignalBit(SIGURG) | SyncFaultBits();

// The signals whose default action is to do nothing.
constexpr bool DefaultActionIgnores(int sig) {
  return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

inline void UnblockSyncFaults(sigset_t* set) {
  for (int sig : kSyncFaultSignals) sigdelset(set, sig);
}

// Every signal but the synchronous faults (glibc keeps its own internal signals unblocked).
inline void HelperThreadMask(sigset_t* set) {
  sigfillset(set);
  UnblockSyncFaults(set);
}

// A helper thread that answers gonet's SIGURG (the sysmon: gonet dump; offload helpers: a fiber's
// signal interrupting their call): the helper mask less SIGURG.
inline void SigurgHelperThreadMask(sigset_t* set) {
  HelperThreadMask(set);
  sigdelset(set, SIGURG);
}

// For the start routine of a helper thread created without a mask in its attributes.
inline void ApplyHelperThreadMask() {
  sigset_t set;
  HelperThreadMask(&set);
  pthread_sigmask(SIG_SETMASK, &set, nullptr);
}

}  // namespace gonet::core
