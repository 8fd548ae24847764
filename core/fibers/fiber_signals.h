// Signals in fibers mode: per-fiber masks and thread-directed signals (pthread_kill,
// pthread_sigqueue) delivered to the fiber they name, as the kernel delivers them to a thread.
//
// Masks: a fiber's signal mask is its own (inherited from its creator, as a thread's is). The
// kernel only knows masks of OS threads, so a machine installs the mask of the fiber it is about
// to run when it differs from the one it has (FiberWorker::Run: one compare per switch, a
// sigprocmask only when fibers with different masks share a worker). A process-directed signal
// therefore reaches a worker only while it runs, or last ran, a fiber that does not block it; its
// handler runs there when that fiber is running, and otherwise (an idle worker, the sysmon) the
// signal is handed to a fiber that accepts it (signal_route.h).
//
// Thread-directed signals: the kernel cannot send a signal to a fiber, so pthread_kill and
// pthread_sigqueue of a fiber make it pending on the fiber (FiberTask::Kill) and wake the fiber
// if it is parked. The fiber runs the handler itself, on its own stack (SA_ONSTACK: on its own
// sigaltstack, unless already there; call_on_stack.h), with the handler's
// sa_mask and the signal added to its mask (unless SA_NODEFER), SA_RESETHAND and SA_SIGINFO
// honoured (siginfo: si_code SI_TKILL or SI_QUEUE, the sender's pid and uid, the value), when it:
//   - is woken from a park: the interrupted wait then returns EINTR or restarts exactly as the
//     kernel decides for that call (parker.h WaitKind: a handler without SA_RESTART interrupts a
//     restartable wait; a call with a timeout, a sleep, sem_wait always fail with EINTR), or
//   - unblocks the signal, or signals itself (delivered before pthread_kill returns).
// A signal whose disposition is the default action kills (or stops) the process as the kernel
// would: it is re-sent to the worker with tgkill. An ignored one is discarded.
// A fiber inside an offloaded call (syscall_offload.h) is parked like any other: the signal wakes
// it, the handler runs on the fiber at once, and the fiber then interrupts the helper's call with
// gonet's SIGURG (resent every 5 ms until the call returns), so the calls the kernel never
// restarts after a handler (poll, select, epoll_wait and their variants) fail with EINTR.
// A fiber that runs (computes, or sits in a system call gonet does not park) is interrupted by a
// kick, gonet's SIGURG to its OS thread, whose handler runs the program's handler there when the
// interrupted code is the program's (signal_kick.cc).
// The other offloaded calls (read of a pipe, waitpid, ...) restart after a handler with
// SA_RESTART; after one without it, the helper's rewound call is ended with EINTR, as the kernel
// ends the program's (syscall_offload.h, Signals; x86_64: elsewhere they restart).
//
// Waits with a temporary mask (SignalWait, below): sigsuspend and pause, and ppoll, pselect,
// epoll_pwait and epoll_pwait2 with a mask. The fiber's mask is the call's for the wait, so a
// pthread_kill of the fiber with a signal it lets through wakes the fiber (Kill), and one it
// blocks stays pending until the old mask is back. A parked fiber is on no OS thread, so the
// kernel cannot choose it for a process-directed signal (kill, raise, alarm). The kernel chooses
// among the threads that do not block the signal, and one in sigwait for it; so the wait keeps a
// watch: an offloaded rt_sigtimedwait (StartOffload) for the signals it watches, which takes such
// a signal for this fiber alone and makes it pending on the fiber with the kernel's siginfo; the
// handler then runs on the fiber as for a thread-directed one, and the wait ends. Meanwhile the
// fiber's machine also blocks the watched signals (machine_signal_mask), so that the kernel
// never runs their handler on the machine where this fiber cannot notice. Observable as natively:
// with several fibers waiting, one process-directed signal is taken by one watch, so exactly one
// wait ends and the handler runs once; one that arrives before the wait stays pending for the
// process and the watch takes it at once; an ignored one (SIG_IGN, or a default action that
// ignores) ends nothing (the watch discards it and goes on); a default action that kills kills.
// Watched:
//   - sigsuspend, pause: every signal the call's mask lets through (the wait is for them);
//   - ppoll, pselect, epoll_pwait with a mask: those the mask lets through and the fiber's own
//     mask blocks (what the mask is passed for, the pselect idiom). None: no watch, no helper,
//     as for their maskless forms, where a parked fiber is not chosen for a process-directed
//     signal either (the kernel then chooses another thread, as it may natively).
// Never watched: SIGURG (gonet's interruption of helpers; threads/sigurg.h), the synchronous
// faults (raised by the faulting thread itself), and the signals nobody can block. A watch costs
// an offload helper for the length of the wait; if none can be started, the wait sees only the
// signals sent to the fiber. Before a handler runs, the watch is ended (DeliverSignals ->
// EndWatch), so a handler that siglongjmps out of the wait leaves no job in flight on the frame
// it abandons. sigsuspend and pause are cancellation points (their park acts on a cancel).
// sigpending in a fiber (SigPending) answers the fiber's pending signals united with the kernel's
// answer on its machine (the process's pending set), masked with the fiber's mask, as the kernel
// answers for a thread.
//
// Cancellation: pthread_cancel of a fiber marks it and wakes it if parked; the fiber acts on it,
// with cancellation enabled, at a cancellation point: a park in a socket call, a sleep or a join,
// pthread_testcancel, a condition wait (it takes the mutex back first, as glibc's
// __condvar_cleanup_waiting, so a cleanup handler finds it held), sem_wait/sem_timedwait/
// sem_clockwait (checked on entry even with a token, as glibc; a cancelled waiter unregisters),
// and an offloaded call that is a POSIX cancellation point (read/write of a pipe, the waits for a
// child, poll and friends, fcntl(F_SETLKW), lockf, sigwait: syscall_offload.h, Cancellation: the
// helper's call is ended if it did not complete; one that completed returns its result, and the
// cancellation acts at the next point, as glibc's cancellable syscalls). A mutex lock is not a
// cancellation point (FiberTask::NoCancelScope), nor the resolver's offloaded calls, which finish
// first. Acting is pthread_exit(PTHREAD_CANCELED): a forced unwind of the fiber's stack with the
// same stop function and exception object glibc's threads use in kind (fiber_cancel.cc):
// destructors run, catch (abi::__forced_unwind&) and catch (...) see it and must rethrow (one
// that swallows it aborts: "FATAL: exception not rethrown"), and C cleanup handlers
// (pthread_cleanup_push compiled as C, the _np defer twins, the old _pthread_cleanup_push ABI),
// kept on the fiber, run interleaved with them in stack order; then thread_local and key
// destructors, and pthread_join returns PTHREAD_CANCELED. Once the unwind began, cancellation
// is no longer acted on (glibc's EXITING_BIT). pthread_setcancelstate/setcanceltype are the
// fiber's; enabling asynchronous cancellation with a request pending acts at once, as glibc.
// Asynchronous cancellation of a running fiber acts through a kick (signal_kick.cc), a forced
// unwind from the interrupted instruction, when that is the program's code; otherwise at the
// next cancellation point. Limits: an offloaded call's syscall is ended only
// on x86_64 (elsewhere a pipe read or a waitpid restarts, and cancellation acts once it returns).
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

#include "core/fibers/syscall_offload.h"

namespace gonet::core {

class FiberTask;
struct FiberThreadState;

// The mask of the machine that runs t is t's (FiberWorker::Run, before the switch).
void SwitchSignalMask(const FiberTask& t);
// A machine starts with this mask installed (WorkerMain).
void NoteMachineSignalMask(const sigset_t& mask);
// The mask a fiber created by the calling OS thread starts with: that thread's own.
uint64_t OsThreadSignalMask();

// A wait with a temporary mask (header), in the running fiber: from construction to destruction
// the fiber's mask is `mask` (nullptr: its own, unchanged: pause) and the watch runs. The
// destructor ends the watch, runs the handlers of the signals that arrived for the wait (under
// `mask`, as the kernel delivers them before the call returns), then restores the old mask and
// runs those that it lets through and `mask` blocked. Thread rule: InFiber() only.
class SignalWait {
 public:
  enum class Watch {
    kAll,             // sigsuspend, pause
    kNewlyUnblocked,  // ppoll, pselect, epoll_pwait (header)
  };
  SignalWait(const sigset_t* mask, Watch watch);
  ~SignalWait();
  SignalWait(const SignalWait&) = delete;
  SignalWait& operator=(const SignalWait&) = delete;

  // sigsuspend, pause: parks until a handler has run on the fiber. -1 with errno EINTR.
  int Suspend();

  // Ends the watch (DeliverSignals calls it before it runs a handler: a handler may siglongjmp
  // out of the wait, and must leave no job of this frame in flight and no signal held).
  void EndWatch();

 private:
  static long WatchCall(void* self);  // on the helper
  void StartWatch();

  FiberTask* t_;
  uint64_t old_ = 0;
  uint64_t watch_ = 0;
  bool watching_ = false;
  FiberThreadState* state_ = nullptr;  // the fiber's, where the watch leaves the siginfo
  OffloadJob job_;
};

// sigsuspend(mask) and pause() (mask nullptr) in a fiber.
int FiberSigsuspend(const sigset_t* mask);

}  // namespace gonet::core
