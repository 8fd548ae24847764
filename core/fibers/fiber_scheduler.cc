#include "core/fibers/fiber_scheduler.h"

#include <sched.h>
#include <sys/mman.h>

#include <new>

#include "core/base/mode.h"
#include "core/base/thread_signals.h"
#include "core/fibers/fiber_signals.h"
#include "core/fibers/signal_route.h"
#include "core/fibers/fiber_tls.h"
#include "core/fibers/worker.h"
#include "core/poll/netpoller.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

Parker* LookupCurrentTask() { return t_current; }

}  // namespace

int CpusAllowed() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

// fork in fibers mode (runtime/ calls it in the child, after FiberSyncAfterForkChild and
// FiberStackPool::AfterForkChild). Only the forking thread exists in the child, as for threads: the
// other workers and every fiber they ran are gone. Locks another worker held at the fork are
// re-initialised (their holders no longer exist), and:
//   - forked from an OS thread (the main thread): no worker is left; the next pthread_create or
//     armed fd starts a fresh set;
//   - forked from a fiber: its worker is the only one left, with an empty queue and no timers,
//     so the other fibers of that worker do not run again in the child either.
void FiberSchedulerAfterForkChild() {
  g_poller_busy.store(false, std::memory_order_relaxed);
  new (&g_free_mu) Spinlock();
  // No other thread survives: no spare machines, no sysmon (the next Spawn starts one).
  new (&g_spare_mu) Spinlock();
  {
    SpinGuard g(g_spare_mu);
    g_spares = nullptr;
  }
  g_machines.store(t_worker != nullptr ? 1 : 0, std::memory_order_relaxed);
  g_sysmon_asleep.store(2, std::memory_order_relaxed);
  FiberScheduler::ForgetPinsAfterFork();
  FiberWorker* self = t_worker;
  if (self == nullptr) {
    g_nworkers.store(0, std::memory_order_relaxed);
    g_workers = nullptr;  // leaked: the parent's memory image, not ours to free
    g_started.store(0, std::memory_order_release);
    return;
  }
  self->ForgetAfterFork();
  g_workers = self;
  g_nworkers.store(1, std::memory_order_relaxed);
}

// Runs with g_started == 1 (this thread alone is starting the scheduler).
bool FiberScheduler::StartWorkers(int n) {
  auto* workers = new (std::nothrow) FiberWorker[n];
  if (workers == nullptr) {
    g_started.store(3, std::memory_order_release);
    return false;
  }
  g_workers = workers;
  FiberTask::NoteCodeRanges();  // before any fiber can be kicked (signal_kick.cc)
  g_last_poll_ns.store(CoarseNanotime(), std::memory_order_relaxed);
  pthread_sigmask(SIG_SETMASK, nullptr, &g_machine_mask);
  UnblockSyncFaults(&g_machine_mask);
  // Open the netpoller before any worker can poll: Netpoller::Break before the epoll instance
  // exists marks a break pending without writing the eventfd, and then dedups every later Break,
  // so a worker that then blocks in Poll(-1) would never see the work queued for it. Poll(0)
  // opens it (and delivers whatever is ready, as any poll would).
  Netpoller::Get().Poll(0);
  int started = 0;
  for (int i = 0; i < n; ++i) {
    // Workers are placed before they start: a worker that failed to start would strand the
    // tasks given to it, so only the first `started` ones are used.
    if (StartMachine(&workers[started]) != nullptr) ++started;
  }
  g_nworkers.store(started, std::memory_order_release);
  g_started.store(started > 0 ? 2 : 3, std::memory_order_release);
  if (started > 0) EnsureSysmon();
  return started > 0;
}

// Round-robin over the workers, skipping one whose current fiber has run for more than
// kStuckNs: it is likely blocked in the kernel, and a new fiber placed there would wait for it.
// (Fibers already on that worker wait anyway: they cannot migrate, see the header.)
FiberWorker* FiberScheduler::PlaceNewFiber() {
  constexpr int64_t kStuckNs = 20 * 1000000;
  auto n = static_cast<uint32_t>(g_nworkers.load(std::memory_order_relaxed));
  uint32_t first = g_next_worker.fetch_add(1, std::memory_order_relaxed);
  int64_t now = Nanotime();
  for (uint32_t k = 0; k < n; ++k) {
    FiberWorker* w = &g_workers[(first + k) % n];
    int64_t since = w->running_since_ns.load(std::memory_order_relaxed);
    if (since == 0 || now - since < kStuckNs) {
      if (k != 0) g_next_worker.store(first + k + 1, std::memory_order_relaxed);
      return w;
    }
  }
  return &g_workers[first % n];
}

bool FiberScheduler::EnsureStarted() {
  int s = g_started.load(std::memory_order_acquire);
  if (GONET_LIKELY(s == 2)) return true;
  int expect = 0;
  if (g_started.compare_exchange_strong(expect, 1, std::memory_order_acq_rel)) {
    int n = config().workers > 0 ? config().workers : CpusAllowed();
    if (g_task_base != nullptr) return StartWorkers(n);  // again, in a forked child
    void* tasks = mmap(nullptr, kMaxTasks * sizeof(FiberTask), PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (tasks == MAP_FAILED) {
      g_started.store(3, std::memory_order_release);
      return false;
    }
    g_task_base = static_cast<FiberTask*>(tasks);
    SetParkerLookup(&LookupCurrentTask);
    InstallOverflowHandler();
    return StartWorkers(n);
  }
  while ((s = g_started.load(std::memory_order_acquire)) == 1) sched_yield();
  return s == 2;
}

int FiberScheduler::Spawn(size_t stack_bytes, void* (*start)(void*), void* arg, bool detached,
                          FiberTask** out) {
  if (!EnsureStarted()) return EAGAIN;
  fiber_tls::NoticeUnfollowedLoads();  // names TLS dlopen'ed behind gonet's back (fiber_tls.h)
  FiberTask* t = FiberWorker::AllocTask();
  if (t == nullptr) return EAGAIN;
  t->start_ = start;
  t->arg_ = arg;
  t->retval_ = nullptr;
  t->action_ = FiberTask::Action::kNone;
  t->heap_index_ = -1;
  t->timed_out_ = false;
  {
    SpinGuard g(t->join_mu_);
    t->exited_ = false;
    t->detached_ = detached;
    t->joiner_ = nullptr;
  }
  t->extra_.store(
      InheritThreadState(t_current != nullptr ? t_current->thread_state_if_any() : nullptr,
                         t_current != nullptr),
      std::memory_order_release);
  // A new thread's signal mask is its creator's; nothing is pending for it.
  t->sig_mask_.store(t_current != nullptr ? t_current->sig_mask_.load(std::memory_order_relaxed)
                                          : OsThreadSignalMask(),
                     std::memory_order_relaxed);
  t->sig_pending_.store(0, std::memory_order_relaxed);
  t->cancel_pending_.store(false, std::memory_order_relaxed);
  t->cancel_disabled_ = false;
  t->cancel_async_ = false;
  t->no_cancel_ = 0;
  t->exiting_ = false;
  t->cleanup_jmp_buf_ = nullptr;
  t->cleanup_ = nullptr;
  t->sig_queued_.store(0, std::memory_order_relaxed);
  t->home_ = PlaceNewFiber();
  if (!t->fiber_.Start(stack_bytes, &FiberTask::Entry, t)) {
    FiberWorker::Recycle(t);
    return EAGAIN;
  }
  t->started_ = false;
  t->alive_.store(true, std::memory_order_release);
  NoteFiberMasksChanged();  // one more fiber that may accept a signal (signal_route.h)
  Count(Stats().fibers_live);
  *out = t;                      // before it can run: the task may call pthread_self and compare
  FiberWorker* home = t->home_;  // t may be stolen and even finish once it is queued
  MakeRunnable(t, home);
  // Its worker is busy: an idle one may take it (StealFresh) instead of waiting (Go's wakep): a
  // sleeping one, else the poller.
  if (g_nworkers.load(std::memory_order_relaxed) > 1 &&
      home->idle.load(std::memory_order_relaxed) == FiberWorker::kBusy && !WakeOneSleeper(home) &&
      g_poller_busy.load(std::memory_order_relaxed)) {
    Netpoller::Get().Break();
  }
  EnsureSysmon();
  return 0;
}

FiberTask* FiberScheduler::Current() { return t_current; }
bool FiberScheduler::IsTask(const void* p) {
  if (g_task_base == nullptr) return false;
  auto a = reinterpret_cast<uintptr_t>(p);
  auto b = reinterpret_cast<uintptr_t>(g_task_base);
  size_t n = g_task_count.load(std::memory_order_acquire);
  return a >= b && a < b + n * sizeof(FiberTask) && (a - b) % sizeof(FiberTask) == 0;
}

int FiberScheduler::workers() { return g_nworkers.load(std::memory_order_relaxed); }
void FiberScheduler::ForEachSuspendedTask(SuspendedTaskFn fn, void* ctx) {
  if (g_task_base == nullptr) return;
  size_t n = g_task_count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    FiberTask& t = g_task_base[i];
    if (!t.alive_.load(std::memory_order_acquire)) continue;
    t.pinned_.fetch_add(1, std::memory_order_seq_cst);
    // started_ is written by the worker before on_cpu_ drops (release) and read after we saw
    // on_cpu_ == 0 with our pin up, so it is the value of the last run.
    if (t.on_cpu_.load(std::memory_order_seq_cst) == 0 &&
        t.alive_.load(std::memory_order_acquire) && t.started_) {
      fn(ctx, t, t.fiber_.SavedContext());
    }
    t.pinned_.fetch_sub(1, std::memory_order_release);
  }
}

void FiberScheduler::NoteKeyDestructor(pthread_key_t key, void (*destructor)(void*), KeyKind kind) {
  if (key >= PTHREAD_KEYS_MAX) return;
  uint64_t bit = uint64_t{1} << (key % 64);
  // Relaxed: a fiber that has a value for the key got it after pthread_key_create returned, and
  // whatever ordered that (the creator publishing the key) orders this too.
  if (kind == KeyKind::kSanitizer) {
    g_sanitizer_keys[key / 64].fetch_or(bit, std::memory_order_relaxed);
  } else {
    g_sanitizer_keys[key / 64].fetch_and(~bit, std::memory_order_relaxed);
  }
  g_key_dtors[key].store(destructor, std::memory_order_release);
}

}  // namespace gonet::core
