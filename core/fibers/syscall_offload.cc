#include "core/fibers/syscall_offload.h"

#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <sys/prctl.h>
#include <ucontext.h>

#include <atomic>
#include <cerrno>
#include <new>

#include "core/base/base.h"
#include "core/base/os_thread.h"
#include "core/base/sanitizer_thread_start.h"
#include "core/base/spinlock.h"
#include "core/base/sys.h"
#include "core/base/thread_signals.h"
#include "core/poll/parker.h"
#include "core/stats/stats.h"
#include "core/threads/sigurg.h"

namespace gonet::core {
namespace {

constexpr int kMaxHelpers = 10000;  // Go's default debug.SetMaxThreads
constexpr int kKeepIdle = 4;        // idle helpers kept without a timeout
constexpr int64_t kIdleExitNs = int64_t{10} * 1000000000;
// Enough for what runs here (a libc call; getaddrinfo's NSS modules are the deepest), and only
// touched pages cost memory.
constexpr size_t kHelperStackBytes = 512 * 1024;

using Job = OffloadJob;

std::atomic<uint32_t> g_job_seq{0};
std::atomic<int> g_pid{0};
// The helper thread's own: its tid, the job it runs, and whether an interruption meant for
// another job (sent just as this helper finished it and took ours) hit this one.
__thread int t_helper_tid __attribute__((tls_model("initial-exec"))) = 0;
__thread volatile uint32_t t_running_seq __attribute__((tls_model("initial-exec"))) = 0;
__thread volatile sig_atomic_t t_stray __attribute__((tls_model("initial-exec"))) = 0;
__thread Job* volatile t_running_job __attribute__((tls_model("initial-exec"))) = nullptr;

// Resend period while the fiber waits for an interrupted call to return: the first signal may
// land before the helper enters the syscall.
constexpr int64_t kInterruptResendNs = 5 * 1000000;

// One helper thread's slot. Slots are type-stable (a static array, recycled through a free
// list), like parkers: a submitter's FUTEX_WAKE may land after the helper it was meant for has
// taken the job, gone idle and even exited, and must then be only a spurious wake-up for the
// slot's next occupant, which re-checks `wake` in its loop.
struct Helper {
  std::atomic<uint32_t> wake{0};  // futex word: 1 = `job` was handed over
  Job* job = nullptr;             // written under g_mu before wake = 1 (release)
  Helper* prev = nullptr;         // idle list / free list links, guarded by g_mu
  Helper* next = nullptr;
};

Spinlock g_mu;
Helper g_slots[kMaxHelpers];
int g_slots_used GONET_GUARDED_BY(g_mu) = 0;      // bump allocator over g_slots
Helper* g_free GONET_GUARDED_BY(g_mu) = nullptr;  // slots of helpers that exited
Helper* g_idle GONET_GUARDED_BY(g_mu) = nullptr;  // idle helpers, most recent first
int g_idle_count GONET_GUARDED_BY(g_mu) = 0;
int g_threads GONET_GUARDED_BY(g_mu) = 0;  // helper threads alive

void FutexWait(std::atomic<uint32_t>* word, uint32_t val, const timespec* rel) {
  sys::Call(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, rel, nullptr, 0);
}

void FutexWake(std::atomic<uint32_t>* word) {
  sys::Call(SYS_futex, word, FUTEX_WAKE_PRIVATE, 1, nullptr, nullptr, 0);
}

void RunJob(Job* job) {
  t_running_seq = job->seq;
  t_running_job = job;
  t_stray = 0;
  job->tid.store(t_helper_tid, std::memory_order_release);
  errno = job->errno_in;
  long r;
  for (;;) {
    if (job->cancel_point && job->end_eintr.load(std::memory_order_acquire)) {
      r = -1;  // interrupted before the call began: it is not made (header: Cancellation)
      errno = EINTR;
      break;
    }
    r = job->fn(job->arg);
    // EINTR from an interruption that was meant for this helper's previous job: not this call's.
    if (r == -1 && errno == EINTR && t_stray) {
      t_stray = 0;
      errno = job->errno_in;
      continue;
    }
    break;
  }
  t_running_seq = 0;
  t_running_job = nullptr;
  job->errno_out = errno;
  job->result = r;
  Parker* p = job->parker;  // before done: after it the job may be gone
  job->done.store(1, std::memory_order_release);
  p->Unpark();
}

void LinkIdle(Helper* h) GONET_REQUIRES(g_mu) {
  h->prev = nullptr;
  h->next = g_idle;
  if (g_idle != nullptr) g_idle->prev = h;
  g_idle = h;
  ++g_idle_count;
}

void UnlinkIdle(Helper* h) GONET_REQUIRES(g_mu) {
  if (h->prev != nullptr) h->prev->next = h->next;
  if (h->next != nullptr) h->next->prev = h->prev;
  if (g_idle == h) g_idle = h->next;
  --g_idle_count;
}

// Parks the helper until a job is handed to it; nullptr: it stayed idle too long and must exit
// (its slot is already back on the free list).
Job* WaitForJob(Helper* h) {
  bool timed;
  {
    SpinGuard g(g_mu);
    h->wake.store(0, std::memory_order_relaxed);
    timed = g_idle_count >= kKeepIdle;
    LinkIdle(h);
  }
  const int64_t deadline = timed ? Nanotime() + kIdleExitNs : 0;
  for (;;) {
    if (h->wake.load(std::memory_order_acquire) != 0) return h->job;
    if (!timed) {
      FutexWait(&h->wake, 0, nullptr);
      continue;
    }
    int64_t left = deadline - Nanotime();
    if (left > 0) {
      timespec rel{static_cast<time_t>(left / 1000000000), static_cast<long>(left % 1000000000)};
      FutexWait(&h->wake, 0, &rel);
      continue;
    }
    SpinGuard g(g_mu);
    // A submitter that took us off the idle list just before we gave up has handed us its job.
    if (h->wake.load(std::memory_order_acquire) != 0) return h->job;
    UnlinkIdle(h);
    h->next = g_free;
    g_free = h;
    --g_threads;
    return nullptr;
  }
}

void* HelperMain(void* arg) {
  SanitizerThreadStart();  // made with libc's pthread_create (sanitizer_thread_start.h)
  prctl(PR_SET_NAME, "gonet-offload", 0, 0, 0);
  MarkGonetThread();
  t_helper_tid = static_cast<int>(sys::Call(SYS_gettid));
  auto* h = static_cast<Helper*>(arg);
  // The first job came with the thread (wake is already 1).
  for (Job* job = h->job; job != nullptr; job = WaitForJob(h)) RunJob(job);
  return nullptr;
}

bool StartHelper(Helper* h) {
  pthread_attr_t attr;
  if (pthread_attr_init(&attr) != 0) return false;
  sigset_t all;
  // The program's signals, not its faults, and not gonet's interruption (header: Signals).
  SigurgHelperThreadMask(&all);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, kHelperStackBytes);
  // glibc leaves its internal signals (cancellation, setxid) unblocked, as it must.
  pthread_attr_setsigmask_np(&attr, &all);
  pthread_t t;
  int r = CreateOsThread(&t, &attr, &HelperMain, h);
  pthread_attr_destroy(&attr);
  return r == 0;
}

// In the child of fork only the forking thread exists: no helper survived.

// Hands the job to a helper (idle or new). False: no helper could take it (the caller runs it
// inline).
bool Submit(Job* job) {
  Helper* h = nullptr;
  bool fresh = false;
  {
    SpinGuard g(g_mu);
    if (g_idle != nullptr) {
      h = g_idle;
      UnlinkIdle(h);
    } else if (g_threads < kMaxHelpers) {
      if (g_free != nullptr) {
        h = g_free;
        g_free = h->next;
      } else {
        h = &g_slots[g_slots_used++];
      }
      ++g_threads;
      fresh = true;
    } else {
      return false;
    }
    h->job = job;
    h->wake.store(1, std::memory_order_release);
  }
  if (!fresh) {
    FutexWake(&h->wake);
    return true;
  }
  if (StartHelper(h)) return true;
  SpinGuard g(g_mu);
  h->next = g_free;
  g_free = h;
  --g_threads;
  return false;
}

// Interrupts the helper's call with gonet's SIGURG (its handler has SA_RESTART: the kernel then
// fails the calls it never restarts, poll and friends, with EINTR, and restarts the others).
void InterruptHelper(const Job& job) {
  int tid = job.tid.load(std::memory_order_acquire);
  if (tid == 0) return;  // not in fn yet: the next resend
  SendGonetSigurg(tid, kOffloadSignalMagic, job.seq);
}

}  // namespace

bool IsOffloadInterrupt(const siginfo_t* si) {
  return IsGonetSigurg(si, kOffloadSignalMagic, nullptr);
}

void NoteOffloadInterrupt(const siginfo_t* si, void* uc) {
  uint32_t seq = 0;
  IsGonetSigurg(si, kOffloadSignalMagic, &seq);
  if (seq != t_running_seq) {
    t_stray = 1;
    return;
  }
  Job* job = t_running_job;
  if (job == nullptr || !job->cancel_point || !job->end_eintr.load(std::memory_order_acquire))
    return;
  // The call did not complete if the context resumes at its syscall instruction: the kernel
  // rewound it there to restart it after this SA_RESTART handler, or the signal came just before
  // it was made. It ends with EINTR instead, as glibc's cancellation handler ends a cancellable
  // syscall it finds in that window; a call that completed keeps its result. (Elsewhere than
  // x86_64 a restartable call restarts: cancellation acts when it returns.)
  EndRewoundSyscallWithEintr(uc);
}

namespace {
// The call on a helper while the fiber parks: false if no helper could take it.
bool RunOffloaded(FiberTask* self, uint32_t handled, long (*fn)(void*), void* arg,
                  bool cancel_point, long* result);
}  // namespace

long Offload(long (*fn)(void*), void* arg, bool cancel_point) {
  if (!InFiber()) return fn(arg);
  return OffloadSince(FiberScheduler::Current()->signals_handled(), fn, arg, cancel_point);
}

long OffloadSince(uint32_t handled, long (*fn)(void*), void* arg, bool cancel_point) {
  if (!InFiber()) return fn(arg);
  FiberTask* self = FiberScheduler::Current();
  // A cancellation point with a cancellation already due acts before making the call (glibc's
  // cancellable syscalls check first).
  if (cancel_point) self->ActOnCancel();
  long result;
  if (!RunOffloaded(self, handled, fn, arg, cancel_point, &result)) return fn(arg);
  // The call ended with EINTR while cancelled: it did not complete, so cancellation acts now;
  // a call that completed returns its result, and cancellation acts at the next point.
  if (cancel_point && result == -1 && errno == EINTR) self->ActOnCancel();
  return result;
}

namespace {

// Once per process: the pid interruptions name, and gonet's SIGURG handler that receives them.
void PrepareInterrupts() {
  if (GONET_UNLIKELY(g_pid.load(std::memory_order_relaxed) == 0)) {
    g_pid.store(static_cast<int>(sys::Call(SYS_getpid)), std::memory_order_relaxed);
    EnsureDumpHandler();  // gonet's SIGURG handler: what interrupts a helper's call
  }
}

// Parks the job's fiber until the helper is done with the job. interrupting: interrupt the
// helper's call at once (and every kInterruptResendNs until it returns); otherwise only once a
// handler ran on the fiber since `handled`, or (a cancellation point, no_cancel given) once a
// cancellation is due: the helper's handler then ends the call unless it completed (header).
void AwaitJob(Job& job, FiberTask* self, uint32_t handled, bool interrupting,
              const FiberTask::NoCancelScope* no_cancel) {
  ScopedWaitNote note(job.parker, kWaitOffload);  // gonet dump: parked on a helper's call
  if (interrupting) InterruptHelper(job);
  while (job.done.load(std::memory_order_acquire) == 0) {
    ParkResult woke = job.parker->Park(interrupting ? DeadlineAfter(kInterruptResendNs) : 0,
                                       WaitKind::kRestartable);
    if (job.done.load(std::memory_order_acquire) != 0) break;
    // A handler ran on this fiber: the call is interrupted as the kernel would interrupt it.
    if (!interrupting && self->signals_handled() != handled) interrupting = true;
    // One without SA_RESTART: the kernel would fail even a call it restarts (a pipe read, a
    // waitpid) with EINTR; the helper's handler ends it so (header: Signals).
    if (woke == ParkResult::kInterrupted && job.cancel_point && no_cancel != nullptr &&
        !job.end_eintr.load(std::memory_order_relaxed)) {
      job.end_eintr.store(true, std::memory_order_release);  // before the signal that reads it
      interrupting = true;
    }
    if (job.cancel_point && no_cancel != nullptr &&
        !job.end_eintr.load(std::memory_order_relaxed) && no_cancel->CancelDueInside()) {
      job.end_eintr.store(true, std::memory_order_release);  // before the signal that reads it
      interrupting = true;
    }
    if (interrupting) InterruptHelper(job);
  }
}

bool RunOffloaded(FiberTask* self, uint32_t handled, long (*fn)(void*), void* arg,
                  bool cancel_point, long* result) {
  // A signal handler that runs on this worker while we hold g_mu must not reach Submit again.
  ReentryGuard guard;
  PrepareInterrupts();
  FiberTask::NoCancelScope no_cancel(self);  // the helper writes into the job until done
  Job job;
  job.fn = fn;
  job.arg = arg;
  job.parker = CurrentParker();
  job.errno_in = errno;
  job.seq = g_job_seq.fetch_add(1, std::memory_order_relaxed) + 1;
  job.cancel_point = cancel_point;
  if (!Submit(&job)) return false;
  Count(Stats().offloaded_calls);
  AwaitJob(job, self, handled, /*interrupting=*/false, &no_cancel);
  errno = job.errno_out;
  *result = job.result;
  return true;
}

}  // namespace

bool StartOffload(Job* job) {
  if (!InFiber()) return false;
  ReentryGuard guard;  // as in RunOffloaded
  PrepareInterrupts();
  job->parker = CurrentParker();
  job->errno_in = errno;
  job->seq = g_job_seq.fetch_add(1, std::memory_order_relaxed) + 1;
  return Submit(job);
}

long FinishOffload(Job* job) {
  FiberTask* self = FiberScheduler::Current();
  {
    FiberTask::NoCancelScope no_cancel(self);
    AwaitJob(*job, self, 0, /*interrupting=*/job->done.load(std::memory_order_acquire) == 0,
             nullptr);
  }
  errno = job->errno_out;
  return job->result;
}

void SyscallOffloadAfterForkChild() {
  new (&g_mu) Spinlock();
  g_slots_used = 0;
  g_free = nullptr;
  g_idle = nullptr;
  g_idle_count = 0;
  g_threads = 0;
}

}  // namespace gonet::core
