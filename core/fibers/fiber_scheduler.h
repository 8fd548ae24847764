// core/fibers/: the fiber scheduler (this file: interface and state machines; worker.h: its parts),
// the switch (fiber.h), stacks, sync, offload, TLS, signals, TLS scan, key kinds. May include:
// threads/, poll/, stats/, base/ (core/README.md: Layers, LOCKING).
//
// Fibers mode (M:N): pthread_create'd threads run as fibers on a pool of worker OS threads.
//
// FiberTask is one such thread (Go's g): a Fiber (fiber.h, the switch mechanism) plus its
// scheduling state, and it is the Parker (parker.h) that CurrentParker() returns while it runs,
// so a socket call, a mutex or a sleep in a fiber parks the fiber, not the worker.
//
// Park/Unpark state of a task (state_ = seq << 2 | st):
//   kRun      running (or queued to run) with no permit. Unpark -> kPermit. The task's own Park
//             suspends it; its worker then commits kRun(seq) -> kParked(seq+1).
//   kPermit   running with a permit. Park consumes it (-> kRun) and returns at once; if it
//             arrives after Park suspended but before the commit, the commit fails, consumes it
//             and requeues the task (no lost wake-up: the commit runs only after the switch is
//             complete, so no other worker can resume a half-suspended stack).
//   kParked   suspended. Unpark (any thread) or the task's timer CASes kParked(seq) -> kRun(seq)
//             and the winner, alone, queues the task on its worker. The timer compares the whole
//             word, seq included, so a timer left from an earlier park can never wake a later one.
// Timed parks: each worker has a timer heap (deadline order) under its own leaf lock: a task adds
// itself before suspending, the worker fires it in its loop, and a task woken early removes its
// entry when it resumes, so stale entries do not pile up. A task whose timer becomes the
// earliest wakes its worker if that one is idle, so no worker sleeps past a new, earlier timer.
//
// Workers and machines, after Go's P and M: a FiberWorker is a run queue, a timer heap and an
// idle word; a Machine is the OS thread that runs it. Normally each worker keeps its machine.
//
// Handoff (Go's sysmon retake), status of a worker (status = gen << 2 | st):
//   kInSched    its machine is in the scheduler loop. Only that machine touches the worker.
//   kInFiber    its machine is running a fiber (gen counts runs). Run stores it before resuming
//               and CASes kInFiber(gen) -> kInSched(gen) when the fiber comes back.
//   kHandedOff  the sysmon CASed kInFiber(gen) -> kHandedOff(gen): the fiber had run for
//               kRetakeNs (20 ms) blocked in the kernel, or, runnable, had then used
//               kRetakeRunnableNs (200 ms) of CPU (fibers/machine_state.h), and fibers or due
//               timers were waiting behind it.
//               It gives the worker to a spare machine (or a new thread), secured before the CAS,
//               which runs it from there. The old machine's CAS then fails: it finishes that one
//               fiber's switch (requeuing it on the worker it lost if it yielded), and becomes a
//               spare.
// So a fiber stuck in a call gonet cannot see (a glibc-internal read, a slow disk, a long
// computation) costs its worker's other fibers at most ~30 ms, never a deadlock. The stuck fiber
// itself keeps running on the old machine until it comes back to the scheduler; after that it
// runs on the worker's new machine. The calls gonet can see and that may block for long (poll,
// select, epoll_wait, waitpid, IO on pipes and ttys) do not wait for the sysmon: they park the
// fiber and run on an offload thread (syscall_offload.h).
// The sysmon ticks every 10 ms while any fiber runs, and polls the netpoller when every worker
// has been busy for 10 ms (nobody else would); after 0.5 s with no fiber running it sleeps until
// Run wakes it (one load per Run), so an idle process makes no periodic wake-ups. Once a second
// it also gives back the stack pages below SP of fibers parked since its last look
// (stack_release.cc); going to sleep with such fibers left, it wakes once more to do so.
//
// Scheduling, after Go's schedule()/findrunnable():
//   - every worker has its own run queue; a started task runs on its home worker. Tasks that
//     have run do not move to another worker's queue, because code compiled for threads caches
//     TLS addresses across calls (glibc declares __errno_location const): a fiber that parked on
//     one thread and resumed on another would write errno into the first thread's TLS. The only
//     exception is the handoff above, where the alternative is a deadlock. New tasks are spread
//     round-robin, away from workers stuck for over 20 ms.
//   - work stealing, limited to fresh tasks: an idle worker takes a queued task that has never
//     run (no frames, no cached TLS addresses) from another worker's queue (Go's runqsteal).
//     Spawning a task onto a busy worker wakes an idle one to steal it (Go's wakep).
//   - a worker with nothing to run fires its due timers, steals, then becomes the poller if nobody
//     is (one at a time): Netpoller::Poll with its nearest timer as the delay, so readiness is
//     delivered by the worker that will run the woken fiber, with no thread hop. Other idle
//     workers sleep on a futex until their nearest timer or until work is queued for them.
//   - queuing a task for a worker wakes it: a futex wake if it sleeps, Netpoller::Break if it is
//     the one polling, nothing if it is running (it looks at its queue before idling).
//   - a busy worker polls without blocking if nobody has polled for 1 ms, so a worker that runs
//     CPU-bound fibers cannot starve the others' I/O.
//   - a poller that found work for itself wakes a sleeping worker to take over the polling.
//
// Limits of fibers mode (README: keep this list and the README's in step):
//   - Signals (fibers/fiber_signals.h): each fiber has its own mask, installed on its machine at
//     the switch; pthread_kill/pthread_sigqueue of a fiber run the handler on that fiber when it
//     parks or wakes, and interrupt its park as the kernel would interrupt the call. A fiber that
//     computes is interrupted by a kick (gonet's SIGURG, signal_kick.cc) that runs the handler
//     where the program's code was interrupted. A fiber in an offloaded call runs the handler
//     at once and then interrupts the helper's call (gonet's SIGURG): poll and friends fail with
//     EINTR, and a pipe read or a waitpid too without SA_RESTART (x86_64). sigsuspend, pause
//     and ppoll/pselect/epoll_pwait with a mask park with the call's mask as the fiber's, and a
//     watch (an offloaded sigtimedwait) takes the process-directed signals they wait for, for
//     that fiber alone (SignalWait); sigpending answers the fiber's pending set and the
//     process's. A process-directed signal that the kernel gives a gonet thread (an idle
//     worker, the sysmon) is handed to a fiber that accepts it (fibers/signal_route.h).
//     pthread_cancel(fiber) acts at the cancellation points glibc's threads have (parks in
//     socket calls, sleeps, joins, condition and semaphore waits, offloaded cancellable calls),
//     unwinding as glibc does (forced unwind, C cleanup handlers on the fiber); asynchronous
//     cancellation acts at the next of them (fibers/fiber_signals.h, Cancellation).
//   - errno, libstdc++'s exception state, pthread_getspecific data (a sanitizer runtime's key too,
//     but its destructor is not run at fiber exit: key_kind.h) and the program's own
//     __thread/thread_local variables (fibers/fiber_tls.h, with C++ destructors at fiber exit)
//     are per fiber. The TLS of glibc and the runtimes tls_scan.h lists stays per worker (glibc's
//     uselocale); an object dlopen'ed along its caller's own search path (dlopen_search.h)
//     is shared and named on stderr.
//   - poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2, waitpid, wait, wait3,
//     wait4, waitid, flock, lockf, fcntl(F_SETLKW/F_OFD_SETLKW), msgrcv, msgsnd, semop,
//     semtimedop, mq_(timed)receive, mq_(timed)send, getaddrinfo, getnameinfo,
//     gethostby{name,name2,addr}_r, res_n{query,search,querydomain,send} and
//     res_{query,search,querydomain,send} (always offloaded; the last four with the helper's _res
//     pointer aimed at the caller's: resolver_offload.h), and read/readv/write/writev on
//     a pipe, FIFO, tty, character device,
//     eventfd/timerfd/signalfd or a socket gonet does not manage, are offloaded
//     (syscall_offload.h): made once without waiting, then, if they would wait, run on a helper
//     OS thread while the fiber parks. The fiber does not move; result and errno are the kernel's.
//     A poll or ppoll of one socket gonet manages parks on its pollDesc instead (poll_wait.cc),
//     and poll, ppoll, select and pselect over several managed sockets on all of their pollDescs
//     at once (fd/poll_group.h).
//   - A call gonet neither parks nor offloads (regular-file IO, the non-_r resolver calls
//     gethostbyname/gethostbyaddr, glibc-internal IO such as stdio on a pipe, process-shared or
//     robust mutexes, rwlocks and barriers, named or process-shared semaphores and condvars, shared
//     futexes, futex_waitv; the README lists each with its reason) blocks its machine; its worker's
//     other fibers move to another machine after ~20-30 ms (handoff). After a handoff those fibers,
//     and the stuck one once it returns, run on a different OS thread: a compiled-in cached TLS
//     address (errno's, above) from before would then point at the old thread. That is the price of
//     never deadlocking; it needs a fiber stuck for 20 ms with others waiting behind it.
//   - No preemption: a fiber that computes without parking keeps its machine; once it has used
//     200 ms of CPU the fibers queued behind it are handed to another machine. Nor wakeup
//     preemption: a fiber woken on its waker's worker runs when the waker parks, so a waker that
//     releases and retakes something in a loop starves it longer than the kernel would (libdbus's
//     manual-test-thread-blocking: 4 s natively, 18 s to over a minute here).
//   - pthread_attr_setstack (a program-provided stack) is ignored; the stack size is honoured.
//     The default is 256 KiB (GONET_FIBER_STACK); an overflow is reported, then the process dies
//     of SIGSEGV, as it would natively.
//   - fork from a fiber: in the child only that fiber's worker remains, with that fiber alone.
//
// LOCKING (core/README.md): each worker's run-queue spinlock is lock 3: Unpark takes it, also
// from under a wait-queue lock (a DirLock, a fiber_sync bucket: lock 2), and nothing is taken
// under it. The timer spinlock, each task's join spinlock, the spare-machine list and the task
// free list are leaves (lock 4). None is held across a switch or a blocking syscall; the futex
// wake or Netpoller::Break that follows a push comes after the queue lock is released.
#pragma once

#include <pthread.h>
#include <unwind.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/base/spinlock.h"
#include "core/fibers/fiber.h"
#include "core/fibers/fiber_thread_state.h"
#include "core/fibers/key_kind.h"
#include "core/poll/parker.h"

namespace gonet::core {

struct FiberWorker;
class SignalWait;

class FiberTask final : public Parker {
 public:
  // Thread rule: Park only by the running task itself; Unpark from any thread.
  ParkResult Park(int64_t deadline_ns, WaitKind kind) override;
  void Unpark() override;
  // Lets the other tasks of this worker run (sched_yield in a fiber).
  void Yield();

  // pthread_join/detach semantics. Join may be called from a fiber or an OS thread.
  // deadline_ns (CLOCK_MONOTONIC): 0 waits forever, -1 only tries (pthread_tryjoin_np: EBUSY);
  // otherwise ETIMEDOUT once it passes (pthread_timedjoin_np/clockjoin_np).
  int Join(void** retval, int64_t deadline_ns = 0);
  int Detach();
  bool detached() {
    SpinGuard g(join_mu_);
    return detached_;
  }
  // pthread_exit in a fiber, and cancellation acted on: a forced unwind of the fiber's stack
  // (running destructors, catch (...) blocks that rethrow, and C cleanup handlers) to its start
  // (fibers/fiber_signals.h, Cancellation).
  [[noreturn]] void Exit(void* retval);

  // glibc's C cleanup-handler entry points, for this fiber (running): pthread_cleanup_push/pop
  // in C (__pthread_register_cancel, __pthread_unregister_cancel, __pthread_unwind_next, the
  // _defer/_restore twins of pthread_cleanup_push_defer_np) and the old _pthread_cleanup_push
  // ABI. The chains live on the fiber, as glibc keeps them on its thread (fiber_cancel.cc).
  void RegisterCancel(__pthread_unwind_buf_t* buf, bool defer);
  void UnregisterCancel(__pthread_unwind_buf_t* buf, bool restore);
  [[noreturn]] void UnwindNext(__pthread_unwind_buf_t* buf);
  void CleanupPush(_pthread_cleanup_buffer* buf, void (*routine)(void*), void* arg, bool defer);
  void CleanupPop(_pthread_cleanup_buffer* buf, int execute, bool restore);

  // C++ thread_local destructors registered by this fiber (__cxa_thread_atexit_impl for an
  // object whose TLS is per fiber): run at the fiber's exit, newest first, before the pthread key
  // destructors, as glibc's start_thread runs __call_tls_dtors before them
  // (fibers/fiber_thread_exit.cc). 0, or ENOMEM.
  int AtThreadExit(void (*fn)(void*), void* obj);
  // Runs them (the task's own thread only): at its exit, and when it calls exit(), which runs
  // the calling thread's thread_local destructors first, as glibc's exit does.
  void RunThreadLocalDestructors();

  // Thread-specific data of this fiber (pthread_getspecific/setspecific).
  void* GetSpecific(pthread_key_t key) const;
  int SetSpecific(pthread_key_t key, const void* value);

  // A process-unique id for mutex ownership; never a kernel tid (bit 30 set).
  uint32_t id() const { return id_; }
  // The id without the marker bit: what gonet prints (fiber 1, 2, ...).
  uint32_t number() const;
  // True while the task is parked (not queued, not running): what gonet dump calls "waiting".
  bool parked() const { return (state_.load(std::memory_order_acquire) & kStMask) == kParked; }
  const FiberStack& stack() const { return fiber_.stack(); }
  // The thread attributes kept per fiber (fibers/fiber_thread_state.h), allocated on first use
  // (most fibers never set one: the task array stays small). nullptr: out of memory.
  FiberThreadState* thread_state();
  const FiberThreadState* thread_state_if_any() const {
    return extra_.load(std::memory_order_acquire);
  }
  // The kernel tid of the OS thread that runs (or last ran) this fiber's worker, or 0.
  int MachineTid() const;

  // Signals to this fiber (fibers/fiber_signals.cc). Kill is pthread_kill/pthread_sigqueue
  // (code SI_TKILL or SI_QUEUE): the signal is pending on the fiber, a parked fiber is woken for
  // it, and the handler runs on the fiber when it next parks or wakes (at once for the fiber
  // itself). SigMask is pthread_sigmask/sigprocmask in this fiber (running). 0 or an errno.
  int Kill(int sig, int code, const sigval& value);
  int SigMask(int how, const sigset_t* set, sigset_t* old);
  // Runs the handlers of the pending signals this fiber does not block (on the fiber itself).
  // Returns true if every handler that ran had SA_RESTART (the caller's wait may restart).
  bool DeliverSignals();
  // A handler the kernel runs on this fiber's machine (signal_route.h's trampoline, the fiber
  // running and not blocking sig): the kernel blocked sa_mask and sig (unless SA_NODEFER) on the
  // machine, and the fiber's own mask, which pthread_sigmask answers, must say so too for the
  // handler's length. Enter returns the mask to give back; Leave gives it back and notes the
  // machine mask the kernel restores at the handler's return (uc's). Async-signal-safe.
  uint64_t EnterKernelHandler(int sig, const struct sigaction& sa);
  void LeaveKernelHandler(uint64_t saved, const void* ucontext);
  // Handlers run on this fiber so far (the fiber's own counter: an offloaded call it waits for
  // is interrupted when it changes, syscall_offload.h).
  uint32_t signals_handled() const {
    return sig_handled_ + sigwait_kicks_.load(std::memory_order_acquire);
  }
  // sigwait/sigwaitinfo/sigtimedwait in this fiber (running): a signal of `set` pending on the
  // fiber is taken at once; otherwise the wait runs on an offload helper (the process-directed
  // ones reach it there, as they would reach any thread that blocks them) and a pthread_kill of
  // this fiber with a signal of `set` ends it. Returns the signal, or -1 with errno.
  int SigTimedWait(const sigset_t* set, siginfo_t* info, const timespec* timeout);
  // sigpending in this fiber (running): its pending signals united with the process's, those it
  // blocks, as the kernel answers for a thread. 0.
  int SigPending(sigset_t* set) const;
  // Process-directed signals (fibers/signal_route.h). The router's choice of a fiber for sig: one
  // in sigwait for it, else the first that neither blocks it nor has it pending (nullptr: none);
  // the signals some fiber accepts (does not block, or waits for); and the hand-over, with the
  // kernel's siginfo: pending on the fiber, woken or kicked as for Kill.
  static FiberTask* ChooseForProcessSignal(int sig);
  static uint64_t SignalsAcceptedByFibers();
  // False: the fiber has exited (the router queues the signal again).
  bool TakeRouted(int sig, const siginfo_t& info);
  // pthread_cancel of this fiber, and the fiber's own cancelability (pthread_setcancelstate,
  // pthread_setcanceltype, pthread_testcancel): fibers/fiber_signals.h, Cancellation.
  int Cancel();
  int SetCancelState(int state, int* old);
  int SetCancelType(int type, int* old);
  void TestCancel();
  // A park that is not a cancellation point, or that must not be left by unwinding (a mutex, a
  // queued address wait, an offloaded call a helper still runs): cancellation waits for its end.
  struct NoCancelScope {
    FiberTask* t;
    explicit NoCancelScope(FiberTask* task) : t(task) {
      if (t != nullptr) ++t->no_cancel_;
    }
    ~NoCancelScope() {
      if (t != nullptr) --t->no_cancel_;
    }
    // A cancellation point that waits inside this scope (a condition wait, sem_wait: their
    // waiter must leave its queue before unwinding) asks: would cancellation act, were it not
    // for this scope? The waiter then leaves and acts (ActOnCancel) once the scope is gone.
    bool CancelDueInside() const {
      return t != nullptr && t->CancelRequested() && t->no_cancel_ == 1;
    }
  };
  // A cancellation point's own check, outside any NoCancelScope: acts on a due cancellation.
  void ActOnCancel() { TestCancel(); }
  uint64_t signal_mask() const { return sig_mask_.load(std::memory_order_relaxed); }
  // What its machine blocks while it runs: its mask, and during a SignalWait the signals that
  // wait's watch takes for it (fibers/fiber_signals.h).
  uint64_t machine_signal_mask() const {
    return sig_mask_.load(std::memory_order_relaxed) | sig_hold_.load(std::memory_order_relaxed);
  }
  // A running fiber's signal or asynchronous cancellation (fibers/signal_kick.cc): the kick
  // (gonet's SIGURG) and its handler, gonet's SIGURG claim; the sysmon's repeat, each tick; and
  // the code ranges the handler tells apart, noted when the workers start.
  static bool IsKick(const siginfo_t* si);
  static void OnKick(const siginfo_t* si, void* ucontext);
  static void KickRunningTasks();
  static void NoteCodeRanges();
  bool HasDeliverableSignal() const {
    return (sig_pending_.load(std::memory_order_relaxed) &
            ~sig_mask_.load(std::memory_order_relaxed)) != 0;
  }

 private:
  friend class FiberScheduler;
  friend struct FiberWorker;
  friend class SignalWait;
  enum : uint64_t { kRun = 0, kPermit = 1, kParked = 2, kStMask = 3 };
  enum class Action { kNone, kPark, kYield };

  static void Entry(void* self);
  ParkResult AfterSignals(WaitKind kind);
  bool KickWanted() const;  // signal_kick.cc
  void KickIfRunning();
  // The siginfo a SignalWait's watch took for sig, copied to *out (once); nullptr if none.
  const siginfo_t* TakeWatchedInfo(int sig, siginfo_t* out);
  // A routed signal made pending on this fiber with its siginfo, without waking it (TakeRouted,
  // and the fiber itself taking one pending for the process); and its siginfo, read once.
  void MakePendingRouted(int sig, const siginfo_t& info);
  // After a signal became pending on this fiber from another thread (Kill, TakeRouted): wakes a
  // sigwait for it, or a parked fiber that does not block it, and kicks a running one.
  void WakeForSignal(uint64_t bit);
  const siginfo_t* TakeRoutedInfo(int sig, siginfo_t* out);
  // Takes the signals pending for the process that `accepts` lets through onto this fiber
  // (running): as the kernel delivers them to a thread that unblocks or waits for them.
  void TakeProcessSignals(uint64_t accepts);
  // Pending, enabled and not already exiting (glibc's EXITING_BIT: a cleanup handler's
  // cancellation points do not start the unwind again).
  bool CancelRequested() const {
    return cancel_pending_.load(std::memory_order_relaxed) && !cancel_disabled_ && !exiting_;
  }
  bool CancelDue() const { return CancelRequested() && no_cancel_ == 0; }
  [[noreturn]] void Unwind(void* buf);  // a forced unwind to buf (fiber_cancel.cc)
  static void RunStart(FiberTask* t);   // the frame every unwind of this fiber ends in
  static _Unwind_Reason_Code UnwindStop(int version, _Unwind_Action actions,
                                        _Unwind_Exception_Class cls, _Unwind_Exception* exc,
                                        _Unwind_Context* context, void* param);
  bool CommitPark();         // on the worker, after the switch; false: a permit came, requeue
  void RunKeyDestructors();  // program keys only (key_kind.h)
  struct ThreadExitFn;

  Fiber fiber_;
  std::atomic<FiberThreadState*> extra_{nullptr};
  // Signals (fibers/fiber_signals.cc): bit sig-1 of each word. The mask is the fiber's own
  // (written by the fiber, installed on its machine at each switch when it differs); pending
  // bits are set by any thread (Kill) and cleared by the fiber as it runs the handlers.
  std::atomic<uint64_t> sig_pending_{0};
  std::atomic<uint64_t> sig_mask_{0};
  std::atomic<uint64_t> sig_queued_{0};  // pending with SI_QUEUE (pthread_sigqueue): the value
  uint32_t sig_handled_ = 0;
  std::atomic<uint64_t> sigwait_set_{0};    // the set of a sigwait in progress
  std::atomic<uint32_t> sigwait_kicks_{0};  // signals of that set sent meanwhile (Kill)
  // A wait with a temporary mask whose watch runs (fibers/fiber_signals.h, SignalWait; the
  // fiber's own), the signals its machine blocks beyond sig_mask_ meanwhile
  // (machine_signal_mask), and the signal the watch took, whose siginfo it left in the thread
  // state (watch_info), written before this (release) and read once by DeliverSignals.
  SignalWait* sig_wait_ = nullptr;
  std::atomic<uint64_t> sig_hold_{0};
  std::atomic<int> sig_watch_taken_{0};
  // Routed signals pending with the kernel's siginfo (signal_route.h): their bits, and the
  // siginfo of each (64 entries, allocated by the first one; freed when the task is recycled).
  // The router writes an entry only while its bit and the pending bit are clear; the fiber reads
  // it, then clears the bit.
  std::atomic<uint64_t> sig_routed_{0};
  std::atomic<siginfo_t*> routed_info_{nullptr};
  std::atomic<bool> cancel_pending_{false};
  bool cancel_disabled_ = false;
  bool cancel_async_ = false;  // remembered for pthread_setcanceltype; acted on as deferred
  int no_cancel_ = 0;
  bool exiting_ = false;  // Exit began: cancellation is no longer acted on
  // The forced unwind (fiber_cancel.cc): its exception object, and glibc's two cleanup chains
  // as this fiber's (the task's own thread only): the innermost registered
  // __pthread_unwind_buf_t, the last of which is RunStart's own, and the old ABI's
  // _pthread_cleanup_buffer list.
  _Unwind_Exception exc_{};
  __pthread_unwind_buf_t* cleanup_jmp_buf_ = nullptr;
  _pthread_cleanup_buffer* cleanup_ = nullptr;
  std::atomic<uint64_t> state_{kRun};
  // Pinning (ForEachSuspendedTask, ScanParkedStacks), a Dekker pair: the worker stores on_cpu_
  // before it looks at pinned_, a pinner adds to pinned_ before it looks at on_cpu_; so either the
  // worker sees the pin and waits, or the pinner sees the task on a CPU and leaves it. pinned_
  // counts pins: a dump and a stack scan may hold one each (stack_release.cc).
  std::atomic<uint32_t> on_cpu_{0};  // 0, or the tid of the OS thread running it (signal_kick)
  std::atomic<uint32_t> pinned_{0};
  // Stack release (stack_release.cc), the scanner's alone (one scan at a time): the park word
  // (state_) this task had at the last scan (0: not parked then), and whether its pages below SP
  // went back to the kernel in that park.
  uint64_t stack_scan_word_ = 0;
  bool stack_released_ = false;
  std::atomic<bool> alive_{false};  // spawned and not exited
  bool started_ = false;            // resumed at least once (a fresh task has no park site)
  FiberWorker* home_ = nullptr;
  FiberTask* next_ = nullptr;  // run queue link, guarded by home_'s queue lock
  Action action_ = Action::kNone;
  // Timer (home worker's thread only).
  int64_t timer_deadline_ns_ = 0;
  uint64_t timer_seq_ = 0;
  int heap_index_ = -1;
  bool timed_out_ = false;
  // The thread it emulates.
  void* (*start_)(void*) = nullptr;
  void* arg_ = nullptr;
  void** specific_ = nullptr;        // PTHREAD_KEYS_MAX slots, allocated on first setspecific
  ThreadExitFn* at_exit_ = nullptr;  // thread_local destructors, newest first (task's own thread)
  uint32_t id_ = 0;
  Spinlock join_mu_;
  bool exited_ GONET_GUARDED_BY(join_mu_) = false;
  bool detached_ GONET_GUARDED_BY(join_mu_) = false;
  Parker* joiner_ GONET_GUARDED_BY(join_mu_) = nullptr;
  void* retval_ = nullptr;          // written by the task before it ends, read by the joiner
  FiberTask* free_next_ = nullptr;  // free list link
};

class FiberScheduler {
 public:
  // Starts the workers once (first pthread_create or first armed fd). Thread rule: any thread.
  // Returns false if no worker could be started.
  static bool EnsureStarted();
  // pthread_create: a new task with stack_bytes (0 = default), queued on a worker. 0 or EAGAIN.
  static int Spawn(size_t stack_bytes, void* (*start)(void*), void* arg, bool detached,
                   FiberTask** out);
  // The task running on this thread, or nullptr (an OS thread, or a worker between tasks).
  static FiberTask* Current();
  // True if p is a FiberTask handle (a pthread_t that pthread_create returned in fibers mode).
  static bool IsTask(const void* p);
  static int workers();
  // pthread_key_create: remember the destructor to run at fiber exit, unless the key is a
  // sanitizer's (key_kind.h). pthread_key_delete: (key, nullptr).
  // Thread rule: any thread, during loader start-up too (a sanitizer creates its key then).
  static void NoteKeyDestructor(pthread_key_t key, void (*destructor)(void*),
                                KeyKind kind = KeyKind::kProgram);

  // gonet dump (dump.h): calls fn for every live task that has run and is now suspended (parked
  // or queued), with its saved context (Fiber::SavedContext). While fn runs the task is pinned:
  // a worker that picks it waits, so its stack holds still for an unwinder. Running and
  // never-started tasks are skipped. Thread rule: an OS thread that is not a worker (the pinned
  // task's worker would wait for us); lock-free, so a signal handler on such a thread may call it
  // (gonet dump does); fn must not park.
  using SuspendedTaskFn = void (*)(void* ctx, const FiberTask& t, const void* saved_context);
  static void ForEachSuspendedTask(SuspendedTaskFn fn, void* ctx);

  // One pass of the stack release (stack_release.cc: the rule): gives back to the kernel the
  // stack pages below SP of every task parked in the same park since the previous pass. Returns
  // the pages released; *pending (if given) is set to the tasks seen parked for the first time,
  // which the next pass may release. 0 at once if another pass is running. The sysmon calls it
  // every kStackScanNs; tests call it to release without waiting. Thread rule: an OS thread that
  // is not a worker (a pinned task's worker would wait for us).
  static size_t ScanParkedStacks(size_t* pending = nullptr);

  // In a fork child: a dump or a stack scan of the parent may have been between its pin and
  // unpin at the fork. Its thread is gone, so the pin would hold the task's next resume forever
  // (worker.cc), and the scan flag every later scan.
  static void ForgetPinsAfterFork();

 private:
  static bool StartWorkers(int n);
  static FiberWorker* PlaceNewFiber();
};

// In a fork child (runtime/ calls it): see fiber_scheduler.cc.
void FiberSchedulerAfterForkChild();

// Runs on the sysmon thread when it starts (runtime/ sets it: publish the sysmon as gonet dump's
// answerer of last resort, observe/dump.h), since fibers/ cannot name observe/.
using SysmonStartHook = bool (*)();
void SetSysmonStartHook(SysmonStartHook hook);

}  // namespace gonet::core
