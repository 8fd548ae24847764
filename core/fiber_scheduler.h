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
//               kRetakeNs (20 ms) and fibers or due timers were waiting behind it. It gives the
//               worker to a spare machine (or a new thread), secured before the CAS, which runs it
//               from there. The old machine's CAS then fails: it finishes that one fiber's switch
//               (requeuing it on the worker it lost if it yielded), and becomes a spare.
// So a fiber stuck in a call gonet cannot see (a glibc-internal read, a slow disk, a long
// computation) costs its worker's other fibers at most ~30 ms, never a deadlock. The stuck fiber
// itself keeps running on the old machine until it comes back to the scheduler; after that it
// runs on the worker's new machine. The calls gonet can see and that may block for long (poll,
// select, epoll_wait, waitpid, IO on pipes and ttys) do not wait for the sysmon: they park the
// fiber and run on an offload thread (syscall_offload.h).
// The sysmon ticks every 10 ms while any fiber runs, and polls the netpoller when every worker
// has been busy for 10 ms (nobody else would); after 0.5 s with no fiber running it sleeps until
// Run wakes it (one load per Run), so an idle process makes no periodic wake-ups.
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
//   - Signals go to the workers (and the main thread), not to fibers: a fiber parked in a socket
//     call, a mutex or a sleep is never interrupted with EINTR, and pthread_kill(fiber, sig != 0)
//     and pthread_cancel(fiber) return ENOTSUP. Signal masks (pthread_sigmask) are per worker.
//   - __thread/thread_local variables are per worker, shared by the fibers of that worker (and
//     their destructors run only at process exit). errno, libstdc++'s exception state and
//     pthread_getspecific data are per fiber (a sanitizer runtime's key too, but its destructor
//     is not run at fiber exit: key_kind.h). Start-up warns about objects that declare TLS
//     (tls_scan.h).
//   - poll, ppoll, select, pselect, epoll_wait, epoll_pwait, epoll_pwait2, waitpid, wait, wait3,
//     wait4, waitid, flock, lockf, fcntl(F_SETLKW/F_OFD_SETLKW), getaddrinfo, getnameinfo,
//     gethostby{name,name2,addr}_r (always offloaded), and read/readv/write/writev on
//     a pipe, FIFO, tty, character device,
//     eventfd/timerfd/signalfd or a socket gonet does not manage, are offloaded
//     (syscall_offload.h): made once without waiting, then, if they would wait, run on a helper
//     OS thread while the fiber parks. The fiber does not move; result and errno are the kernel's.
//     A poll or ppoll of one socket gonet manages parks on its pollDesc instead (poll_wait.cc),
//     and poll, ppoll, select and pselect over several managed sockets on all of their pollDescs
//     at once (fd/poll_group.h).
//   - A call gonet neither parks nor offloads (regular-file IO, res_* and the non-_r resolver
//     calls, glibc-internal IO such as stdio on a pipe, process-shared or robust mutexes, rwlocks
//     and barriers, named or process-shared semaphores, shared futexes; the README lists each
//     with its reason) blocks its machine; its worker's other fibers move to another
//     machine after ~20-30 ms (handoff). After a handoff those fibers, and the stuck one once it
//     returns, run on a different OS thread: a compiled-in cached TLS address (errno's, above)
//     from before would then point at the old thread. That is the price of never deadlocking; it
//     needs a fiber stuck for 20 ms with others waiting behind it.
//   - No preemption: a fiber that computes without parking keeps its machine; after 20 ms the
//     fibers queued behind it are handed to another machine.
//   - pthread_attr_setstack (a program-provided stack) is ignored; the stack size is honoured.
//     The default is 256 KiB (GONET_FIBER_STACK); an overflow is reported, then the process dies
//     of SIGSEGV, as it would natively.
//   - fork from a fiber: in the child only that fiber's worker remains, with that fiber alone.
//
// LOCKING: each worker's run-queue spinlock (1), timer spinlock (2), each task's join spinlock
// (3) and the spare-machine list's spinlock (4) are leaves: never held together, never across a
// switch or a syscall, except the futex wake after the queue lock is released. The task free list
// has its own leaf spinlock.
#pragma once

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/fiber.h"
#include "core/key_kind.h"
#include "core/parker.h"
#include "core/spinlock.h"

namespace gonet::core {

struct FiberWorker;

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
  // pthread_exit in a fiber: unwinds the fiber's stack (running destructors) to its start.
  [[noreturn]] void Exit(void* retval);

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

 private:
  friend class FiberScheduler;
  friend struct FiberWorker;
  enum : uint64_t { kRun = 0, kPermit = 1, kParked = 2, kStMask = 3 };
  enum class Action { kNone, kPark, kYield };

  static void Entry(void* self);
  bool CommitPark();         // on the worker, after the switch; false: a permit came, requeue
  void RunKeyDestructors();  // program keys only (key_kind.h)

  Fiber fiber_;
  std::atomic<uint64_t> state_{kRun};
  // Dump pinning (ForEachSuspendedTask), a Dekker pair: the worker stores on_cpu_ before it
  // looks at pinned_, the dumper stores pinned_ before it looks at on_cpu_; so either the worker
  // sees the pin and waits, or the dumper sees the task on a CPU and skips it.
  std::atomic<uint32_t> on_cpu_{0};
  std::atomic<uint32_t> pinned_{0};
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
  void** specific_ = nullptr;  // PTHREAD_KEYS_MAX slots, allocated on first setspecific
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

 private:
  static bool StartWorkers(int n);
  static FiberWorker* PlaceNewFiber();
};

}  // namespace gonet::core
