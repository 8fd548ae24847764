// Syscall offload: a blocking call made by a fiber runs on a helper OS thread while the fiber
// parks, so the fiber's worker keeps running the other fibers queued on it (fibers mode).
//
// Why not Go's handoff (entersyscall: the worker blocks in the call and a spare thread takes its
// queue)? gonet's fibers never migrate, because compiled code caches TLS addresses (errno's)
// across calls; a handed-off queue would resume its fibers on another thread. Offload moves the
// call instead of the fibers: only the kernel call changes thread, and it touches no TLS of the
// program. (The scheduler's sysmon still hands off a worker stuck in a call gonet cannot see.)
//
// A job (one offloaded call) lives on the calling fiber's stack, which stays valid while the
// fiber is parked. Its `done` word goes 0 -> 1 once, on the helper:
//   0  submitted: a helper owns the job and is running (or about to run) fn.
//   1  complete: result and errno are stored. The helper reads job->parker BEFORE it stores 1
//      (release) and then calls Unpark on that parker; after the store it never touches the job,
//      because the fiber may see done (a spurious wake-up, parker.h) and return, popping the job.
//      A late Unpark is harmless: parkers are type-stable and never freed, and a stale permit is
//      a spurious wake-up for the parker's next wait, which re-checks its own condition.
// The fiber loops: done (acquire, pairs with the helper's release) ? return : Park.
//
// errno: the call must look as if it ran on the calling thread. The helper sets its errno to the
// caller's before fn, and the caller takes the helper's errno after it, so a call that succeeds
// without touching errno leaves the program's errno as it was, and a failure shows the kernel's.
//
// Signals: helpers block the program's signals, so a program's handler never runs on one by
// surprise. A call that replaces the mask for its own duration (ppoll, pselect, epoll_pwait with
// a sigmask, when it cannot park on the netpoller: shim/wait_calls.cc) does so on the helper, as
// the program asked, and gets EINTR there exactly as it would have on the program's thread.
// (The netpoller's parks with a mask, and sigsuspend, run a watch instead: a job started with
// StartOffload beside the fiber's own park, fibers/fiber_signals.h SignalWait.) A signal sent
// to the fiber (pthread_kill: fibers/fiber_signals.h) wakes it; once its handler has run, the
// fiber interrupts the helper's call with gonet's own SIGURG (SI_QUEUE, kOffloadSignalMagic and
// the job's seq; gonet's handler has SA_RESTART), resent every 5 ms until the call returns, since
// the first may land before the helper is in the kernel. The kernel then fails the calls it
// never restarts after a handler (poll, select, epoll_wait and their variants) with EINTR, as
// for the program's thread, and restarts the others (read on a pipe, waitpid); when the
// program's handler lacks SA_RESTART and the call is one syscall (the cancellation points,
// below), the fiber marks the job (end_eintr) and the helper's handler ends the rewound call
// with EINTR, as the kernel would for the program's thread (x86_64; elsewhere it restarts). An
// interruption that reaches the helper after it moved on to another job is recognised by the seq,
// and that job's call is remade.
//
// Cancellation: a call that is a POSIX cancellation point and one syscall (read, write, readv,
// writev, poll and friends, the waits for a child, fcntl(F_SETLKW), lockf, sigwait: the callers
// pass cancel_point) acts on a cancellation of the fiber as glibc's cancellable syscalls do: at
// once if it is due before the call; while the helper runs it, the fiber marks the job and
// interrupts the helper's call as for a signal, and gonet's SIGURG handler on the helper, finding
// the context at the syscall instruction (the kernel rewound it there to restart it, or the call
// was not made yet), resumes after it with EINTR instead (x86_64; elsewhere the call restarts and
// cancellation acts when it returns). A call that ended with EINTR then acts on the
// cancellation; one that completed returns its result, and the cancellation acts at the fiber's
// next cancellation point. The other offloaded calls (the resolver's, flock) finish first.
//
// Pool: helpers are made on demand with libc's own pthread_create (not gonet's hook: a helper is
// an OS thread, not a fiber). A submit hands the job to an idle helper or starts a new one; it
// never queues a job behind another, because a pool that is too small could deadlock when every
// helper waits for a call that only a queued job would satisfy (two fibers talking through a
// pipe). Up to kMaxHelpers (Go's default limit of 10,000 threads); beyond that, or if a thread
// cannot be created, the call is made inline on the worker, as it was before offload existed.
// Idle helpers sleep on a futex with no periodic wake-up; a helper that goes idle while
// kKeepIdle others already are exits after 10 s unless a job reaches it first.
//
// fork: the child has no helpers; an atfork child handler empties the pool (a job in flight in
// the parent belonged to a fiber that does not exist in the child).
//
// LOCKING: one spinlock guards the idle list, the free slots and the thread count. A leaf: nothing
// else is taken under it, and no syscall is made under it (the submitter's futex wake and
// pthread_create come after the unlock). A signal handler never takes it on a thread that holds
// it: Offload holds a ReentryGuard, and InFiber() is false while core is re-entered (base/mode.h).
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

#include "core/base/mode.h"
#include "core/fibers/fiber_scheduler.h"

namespace gonet::core {

// True on a fiber, outside core (the caller may park): the only context where Offload helps.
// One load and compare in every other mode, so the non-fiber path of a hook stays as it was.
inline bool InFiber() {
  extern RunMode g_mode;
  return g_mode == RunMode::kFibers && t_core_depth == 0 && FiberScheduler::Current() != nullptr;
}

inline constexpr uint64_t kOffloadSignalMagic = 0x676e6f66;  // "gnof": high half of sival_ptr
// gonet's SIGURG handler (threads/sigurg.cc, through runtime's SetSigurgClaim): an interruption of
// a helper's call, and noting it.
bool IsOffloadInterrupt(const siginfo_t* si);
// uc: the helper's interrupted context, where a cancelled call is ended (Cancellation, above).
void NoteOffloadInterrupt(const siginfo_t* si, void* uc);

// Runs fn(arg) on a helper thread while the calling fiber parks; returns fn's result, with errno
// as fn left it (see above). Called outside a fiber, it runs fn inline. fn must not park or
// touch the calling fiber's TLS (it runs on another thread): a real libc call, nothing more.
// cancel_point: fn is one syscall that POSIX makes a cancellation point (Cancellation, above).
long Offload(long (*fn)(void*), void* arg, bool cancel_point = false);
// The same, for a caller that checked for signals itself before deciding to offload (sigwait):
// the call is interrupted by any signal handled or kick (FiberTask::signals_handled) since the
// caller read `handled_since`, not just since the offload began. A signal sent between the
// caller's check and the offload would otherwise reach no one: the fiber's wait is in the helper,
// which only a kernel signal or gonet's interruption ends.
long OffloadSince(uint32_t handled_since, long (*fn)(void*), void* arg, bool cancel_point = false);

// One offloaded call (a job), on the calling fiber's stack (header: the `done` word).
struct OffloadJob {
  long (*fn)(void*) = nullptr;
  void* arg = nullptr;
  Parker* parker = nullptr;  // the fiber to unpark; read by the helper before it publishes done
  int errno_in = 0;          // the caller's errno, set on the helper before fn
  long result = 0;
  int errno_out = 0;
  std::atomic<uint32_t> done{0};  // 0 -> 1 once (header); the helper's last touch of the job
  uint32_t seq = 0;               // names the job in an interruption (header: Signals)
  std::atomic<int> tid{0};        // the helper running fn, once it does
  bool cancel_point = false;      // fn is one cancellable syscall (above: Cancellation)
  // End fn's syscall with EINTR: the fiber was cancelled, or a handler without SA_RESTART ran on
  // it (above: Signals, Cancellation).
  std::atomic<bool> end_eintr{false};
};

// A call that runs beside the fiber's own parks instead of in place of them: the signal watch of
// a wait with a temporary mask (fibers/fiber_signals.h, SignalWait). StartOffload hands job (fn
// and arg filled in) to a helper, which Unparks the calling fiber once fn returned (a wake-up the
// fiber's other parks take as spurious); false: no helper took it and nothing runs. FinishOffload
// (the same fiber, before the job goes out of scope) interrupts fn as a signal to the fiber
// interrupts an offloaded call, parks until it returned, and returns its result (errno as fn
// left it). Cancellation waits meanwhile: the helper writes into the job until done.
bool StartOffload(OffloadJob* job);
long FinishOffload(OffloadJob* job);

// Offload(fn, arg) for a call with arguments: OffloadCall(real::poll, fds, nfds, timeout).
template <typename Fn, typename... Args>
auto OffloadCall(Fn fn, Args... args) -> decltype(fn(args...)) {
  using Ret = decltype(fn(args...));
  auto call = [&] { return static_cast<long>(fn(args...)); };
  using Call = decltype(call);
  return static_cast<Ret>(
      Offload([](void* c) -> long { return (*static_cast<Call*>(c))(); }, &call));
}
// The same for a call that is a cancellation point (Cancellation, above).
template <typename Fn, typename... Args>
auto OffloadCancelPoint(Fn fn, Args... args) -> decltype(fn(args...)) {
  using Ret = decltype(fn(args...));
  auto call = [&] { return static_cast<long>(fn(args...)); };
  using Call = decltype(call);
  return static_cast<Ret>(
      Offload([](void* c) -> long { return (*static_cast<Call*>(c))(); }, &call, true));
}
template <typename Fn, typename... Args>
auto OffloadCallSince(uint32_t handled_since, bool cancel_point, Fn fn, Args... args)
    -> decltype(fn(args...)) {
  using Ret = decltype(fn(args...));
  auto call = [&] { return static_cast<long>(fn(args...)); };
  using Call = decltype(call);
  return static_cast<Ret>(OffloadSince(
      handled_since, [](void* c) -> long { return (*static_cast<Call*>(c))(); }, &call,
      cancel_point));
}

// In a fork child (runtime/ calls it): no helper survives; the pool starts empty.
void SyscallOffloadAfterForkChild();

}  // namespace gonet::core
