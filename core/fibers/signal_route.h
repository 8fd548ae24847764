// Process-directed signals in fibers mode: which thread runs the program's handler.
//
// The kernel gives a process-directed signal (kill, alarm, a timer, a child's SIGCHLD) to one
// thread that does not block it. In fibers mode the program's threads are fibers, and the kernel
// can only choose among OS threads: a worker running some fiber, an idle worker, the sysmon. Run
// on an idle worker, the handler would run outside any fiber, and the parked fiber that was the
// only thread accepting the signal would never see its call interrupted (a recv waiting for
// EINTR to notice shutdown waits forever). So in fibers mode gonet owns the kernel's side of every
// signal the program handles: the program's dispositions live in gonet's table (sigaction and
// its family show and change them exactly, flags and mask as glibc reports them), and the kernel
// knows one handler for each, the trampoline, installed with the program's flags and sa_mask
// (less SA_RESETHAND, which the trampoline applies). The trampoline decides, async-signal-safely:
//
//   it runs on                                 it does
//   a fiber that does not block the signal     the program's handler, there, at once: the kernel
//                                              chose the thread that fiber is
//   an OS thread of the program (main)         the same
//   anything else: a gonet thread (idle        queue it: the kernel's siginfo in the signal's
//   worker, sysmon), or a fiber that blocks    slot (a second one of a number already queued
//   it (its machine's mask lagging)            merges, as a pending standard signal does), and
//                                              poke the sysmon
//
// A handler run on a fiber runs with that fiber's own mask (what pthread_sigmask answers in it)
// blocking what the kernel blocked for it: sa_mask and the signal, unless SA_NODEFER.
//
// The router (the sysmon, each time round its loop: RouteProcessSignals) gives each queued signal
// to one fiber, as the kernel gives it to one thread: a fiber in sigwait for it, else the first
// fiber that neither blocks it nor has it pending. That fiber has it pending with the kernel's
// siginfo (FiberTask::TakeRouted): a parked one is woken and its call ends with EINTR or restarts
// exactly as for pthread_kill (fiber_signals.h), a running one is kicked (signal_kick.cc). A
// signal no fiber accepts stays queued, pending for the process: a fiber takes it when it unblocks
// it (before pthread_sigmask returns), waits for it (sigwait, sigsuspend) or asks sigpending, and
// the router offers it again each time round.
//
// The kernel also needs an OS thread to deliver to when every machine blocks the signal but some
// parked fiber does not. So the sysmon unblocks the signals that have a handler and that some
// fiber accepts (does not block, or waits for); the set is computed again, one pass over the
// fibers, after a fiber's mask or sigwait changed (NoteFiberMasksChanged) or a handler did. A
// handled signal that no fiber accepts stays blocked on the sysmon too, so the kernel keeps it
// pending for the program's OS threads (a main thread in sigwait), as natively.
//
// Not routed: signals without a handler (the kernel's default action, or ignoring, is the same on
// any thread), SIGKILL, SIGSTOP and glibc's internal signals, gonet's SIGURG (threads/sigurg.h:
// its own virtual table), and the synchronous faults, raised by the faulting thread itself
// (base/thread_signals.h, observe/crash_report.h).
// Limits: a real-time signal queued here merges with one of its number already queued (the kernel
// would queue both); a signal queued here that no fiber accepts is not seen by an OS thread of the
// program that then waits for it or unblocks it (the sysmon blocks such signals, so only a race
// with a fiber changing its mask, or an idle worker's stale mask, queues one).
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

namespace gonet::core {

// libc's sigaction, registered by the library's entry (core cannot name shim/real.h). Without a
// registration (core's unit tests) the plain sigaction is libc's own.
using RealSigactionFn = int (*)(int, const struct sigaction*, struct sigaction*);
void SetRealSigaction(RealSigactionFn fn);

// Fibers mode (runtime Init): moves the handlers installed so far into the table and puts the
// trampoline in their place. From then on RoutedSigaction answers for every routed signal.
void AdoptProgramHandlers();

// sigaction for a routed signal once the handlers are adopted: true if it answered (*result is
// sigaction's return value, errno set on failure); false: not routed, the caller asks libc.
bool RoutedSigaction(int sig, const struct sigaction* act, struct sigaction* old, int* result);
// True when RoutedSigaction answers for sig (what the shim asks before glibc's signal() family).
bool RoutesDisposition(int sig);

// siginterrupt's memory, for signal(): glibc installs a handler given to signal() without
// SA_RESTART once siginterrupt(sig, 1) was called (its _sigintr set, which gonet keeps instead).
void SetSignalInterrupts(int sig, bool interrupt);
bool SignalInterrupts(int sig);

// A fiber's mask or sigwait set changed, or a fiber started or ended: the sysmon's set of
// accepted signals is stale. One relaxed load when the program handles no signal.
void NoteFiberMasksChanged();

// The sysmon, each time round its loop: its own mask, then the queued signals (header).
void RouteProcessSignals();

// Fibers: the queued signals (pending for the process), and taking one of `want` for the calling
// fiber (its number, info filled; 0 if none).
uint64_t ProcessPendingSignals();
int TakeProcessSignal(uint64_t want, siginfo_t* info);

}  // namespace gonet::core
