// Signals in fibers mode: per-fiber masks and thread-directed signals (pthread_kill,
// pthread_sigqueue) delivered to the fiber they name, as the kernel delivers them to a thread.
//
// Masks: a fiber's signal mask is its own (inherited from its creator, as a thread's is). The
// kernel only knows masks of OS threads, so a machine installs the mask of the fiber it is about
// to run when it differs from the one it has (FiberWorker::Run: one compare per switch, a
// sigprocmask only when fibers with different masks share a worker). A process-directed signal
// therefore reaches a worker only while it runs, or last ran, a fiber that does not block it, and
// its handler runs there, as on a thread that does not block it.
//
// Thread-directed signals: the kernel cannot send a signal to a fiber, so pthread_kill and
// pthread_sigqueue of a fiber make it pending on the fiber (FiberTask::Kill) and wake the fiber
// if it is parked. The fiber runs the handler itself, on its own stack, with the handler's
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
// Limits: a fiber that computes without parking runs the handler at its next park; the other
// offloaded calls (read of a pipe, waitpid, ...) restart even when the program's handler lacks
// SA_RESTART (gonet's SIGURG handler has it), where the kernel would fail them with EINTR.
//
// Cancellation: pthread_cancel of a fiber marks it and wakes it if parked; the fiber acts on it
// (unwinding its stack, running destructors and C++ cleanup handlers, as pthread_exit in a fiber
// does; pthread_join then returns PTHREAD_CANCELED) when it parks at a cancellation point or calls
// pthread_testcancel, with cancellation enabled. The parks that act are those of socket calls,
// sleeps and joins; a condition wait, sem_wait, a mutex and an offloaded call (whose job a helper
// still holds) do not (FiberTask::NoCancelScope). Asynchronous cancellation acts as deferred.
// Limits: the unwinding is a C++ exception, not glibc's forced unwind, so a catch (...) that does
// not rethrow stops it, and C code's pthread_cleanup_push (glibc's per-OS-thread buffers) is not
// run.
#pragma once

#include <signal.h>

#include <cstdint>

namespace gonet::core {

class FiberTask;

// The mask of the machine that runs t is t's (FiberWorker::Run, before the switch).
void SwitchSignalMask(const FiberTask& t);
// A machine starts with this mask installed (WorkerMain).
void NoteMachineSignalMask(const sigset_t& mask);
// The mask a fiber created by the calling OS thread starts with: that thread's own.
uint64_t OsThreadSignalMask();

}  // namespace gonet::core
