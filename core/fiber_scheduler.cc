#include "core/fiber_scheduler.h"

#include <dlfcn.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>

#include <cstdio>
#include <new>
#include <utility>
#include <vector>

#include "core/base.h"
#include "core/base/thread_signals.h"
#include "core/dump.h"
#include "core/fiber_sync.h"
#include "core/fibers/fiber_signals.h"
#include "core/netpoller.h"
#include "core/runtime.h"
#include "core/sanitizer_thread_start.h"
#include "core/stats.h"
#include "core/sys.h"

namespace gonet::core {

// One worker (Go's P): a run queue, a timer heap and an idle word, run by one OS thread at a
// time (a Machine, Go's M). The sysmon may hand it to another machine (header: Handoff).
struct FiberWorker {
  enum : uint32_t { kBusy = 0, kSleeping = 1, kPolling = 2 };
  // status = run generation << 2 | one of these (header: Handoff).
  enum : uint64_t { kInSched = 0, kInFiber = 1, kHandedOff = 2, kStatusMask = 3 };

  // Run queue (any thread pushes, the worker pops, an idle worker steals fresh tasks).
  Spinlock mu;
  FiberTask* head GONET_GUARDED_BY(mu) = nullptr;
  FiberTask* tail GONET_GUARDED_BY(mu) = nullptr;
  // Queued tasks that have never run (written under mu; read without it as a hint).
  std::atomic<uint32_t> fresh{0};
  // What the worker is doing when idle; the futex word a sleeping worker waits on.
  std::atomic<uint32_t> idle{kBusy};
  // Timer heap ordered by timer_deadline_ns_. Its own leaf lock: a fiber whose worker was handed
  // off still parks with a timer while the new machine fires the heap.
  Spinlock timer_mu;
  std::vector<FiberTask*> timers GONET_GUARDED_BY(timer_mu);
  std::atomic<int64_t> next_timer_ns{0};  // the heap's top (0: none), for the sysmon
  // When the running fiber was resumed (0: in the scheduler loop). A fiber that has held its
  // worker for long is probably blocked in a call gonet does not park (file IO, DNS): Spawn
  // places new fibers elsewhere, and the sysmon hands the worker to another machine.
  std::atomic<int64_t> running_since_ns{0};
  std::atomic<uint64_t> status{kInSched};
  std::atomic<int> machine_tid{0};  // the OS thread running it (pthread_getcpuclockid)

  void Push(FiberTask* t) {
    SpinGuard g(mu);
    if (!t->started_) fresh.fetch_add(1, std::memory_order_relaxed);
    t->next_ = nullptr;
    if (tail != nullptr) {
      tail->next_ = t;
    } else {
      head = t;
    }
    tail = t;
  }
  FiberTask* Pop() {
    SpinGuard g(mu);
    FiberTask* t = head;
    if (t != nullptr) {
      head = t->next_;
      if (head == nullptr) tail = nullptr;
      if (!t->started_) fresh.fetch_sub(1, std::memory_order_relaxed);
    }
    return t;
  }
  // Unlinks a queued task that has never run, looking at most kStealScan entries deep. A fresh
  // task has no stack frames, timers or TLS addresses of its own yet, so it may start on any
  // worker; started tasks stay home (header: why fibers do not migrate).
  FiberTask* TakeFresh() {
    constexpr int kStealScan = 64;
    if (fresh.load(std::memory_order_relaxed) == 0) return nullptr;
    SpinGuard g(mu);
    FiberTask* prev = nullptr;
    FiberTask* t = head;
    for (int i = 0; t != nullptr && i < kStealScan; ++i, prev = t, t = t->next_) {
      if (t->started_) continue;
      (prev != nullptr ? prev->next_ : head) = t->next_;
      if (tail == t) tail = prev;
      fresh.fetch_sub(1, std::memory_order_relaxed);
      return t;
    }
    return nullptr;
  }
  bool HasWork() {
    SpinGuard g(mu);
    return head != nullptr;
  }

  // A stolen fresh task makes this worker its home.
  void Adopt(FiberTask* t) {
    t->home_ = this;
    Push(t);
  }

  // Timer heap (timer_mu held).
  bool Less(int i, int j) const GONET_REQUIRES(timer_mu) {
    return timers[i]->timer_deadline_ns_ < timers[j]->timer_deadline_ns_;
  }
  void Swap(int i, int j) GONET_REQUIRES(timer_mu) {
    std::swap(timers[i], timers[j]);
    timers[i]->heap_index_ = i;
    timers[j]->heap_index_ = j;
  }
  void Up(int i) GONET_REQUIRES(timer_mu) {
    while (i > 0 && Less(i, (i - 1) / 2)) {
      Swap(i, (i - 1) / 2);
      i = (i - 1) / 2;
    }
  }
  void Down(int i) GONET_REQUIRES(timer_mu) {
    int n = static_cast<int>(timers.size());
    for (;;) {
      int m = i, l = 2 * i + 1, r = l + 1;
      if (l < n && Less(l, m)) m = l;
      if (r < n && Less(r, m)) m = r;
      if (m == i) return;
      Swap(i, m);
      i = m;
    }
  }
  // True if t is now the earliest timer (an idle worker must then recompute its sleep).
  bool AddTimer(FiberTask* t) {
    SpinGuard g(timer_mu);
    t->heap_index_ = static_cast<int>(timers.size());
    timers.push_back(t);
    Up(t->heap_index_);
    next_timer_ns.store(timers[0]->timer_deadline_ns_, std::memory_order_seq_cst);
    return timers[0] == t;
  }
  void RemoveTimer(FiberTask* t) {
    SpinGuard g(timer_mu);
    if (t->heap_index_ >= 0) RemoveTimerLocked(t);
  }
  void RemoveTimerLocked(FiberTask* t) GONET_REQUIRES(timer_mu) {
    int i = t->heap_index_;
    int last = static_cast<int>(timers.size()) - 1;
    if (i != last) Swap(i, last);
    timers.pop_back();
    t->heap_index_ = -1;
    if (i != last) {
      Down(i);
      Up(i);
    }
    next_timer_ns.store(timers.empty() ? 0 : timers[0]->timer_deadline_ns_,
                        std::memory_order_relaxed);
  }
  int64_t NextTimer() const { return next_timer_ns.load(std::memory_order_seq_cst); }

  // The scheduler's steps that touch task internals (FiberWorker is FiberTask's friend).
  void FireTimers();
  bool Run(FiberTask* t);  // false: the worker was handed to another machine meanwhile
  static FiberTask* AllocTask();
  static void Recycle(FiberTask* t);
  static void OnExit(FiberTask* t);
  void ForgetAfterFork();
};

namespace {

constexpr uint32_t kTaskIdBit = uint32_t{1} << 30;  // kernel tids stay below 2^22
constexpr size_t kMaxTasks = size_t{1} << 20;
// A busy worker polls the netpoller when this long has passed since the last poll, on the coarse
// clock (read once per fiber run): at most once per scheduler tick, at least every kSysmonPollNs
// (the sysmon polls then).
constexpr int64_t kBusyPollIntervalNs = 1000000;

FiberWorker* g_workers = nullptr;
// Workers in use; written once they are placed (workers may read it before it settles: a worker
// not started yet is never kSleeping, so WakeOneSleeper skips it).
std::atomic<int> g_nworkers{0};
std::atomic<int> g_started{0};  // 0 not yet, 1 starting, 2 running, 3 failed
std::atomic<uint32_t> g_next_worker{0};
std::atomic<bool> g_poller_busy{false};  // a worker holds the poller role
std::atomic<int64_t> g_last_poll_ns{0};

// Handoff (header): a stuck worker is handed to another machine after kRetakeNs, checked every
// kSysmonTickNs; the sysmon stops ticking after kSysmonIdleTicks ticks with no fiber running.
constexpr int64_t kRetakeNs = 20 * 1000000;
constexpr int64_t kSysmonTickNs = 10 * 1000000;
constexpr int kSysmonIdleTicks = 50;
constexpr int64_t kSysmonPollNs = 10 * 1000000;  // poll for everyone if nobody has for this long
constexpr int kMaxMachines = 10000;              // Go's default limit on threads

// An OS thread that runs workers (Go's M). Machines are never freed: a spare one sleeps on
// `given` until the sysmon hands it a worker.
struct Machine {
  std::atomic<uint32_t> given{0};  // futex word: 1 once `worker` is set for it
  FiberWorker* worker = nullptr;
  Machine* next_spare = nullptr;
};

Spinlock g_spare_mu;
Machine* g_spares GONET_GUARDED_BY(g_spare_mu) = nullptr;
// The signal mask of every machine: that of the program thread that started the workers, with
// the synchronous faults unblocked (StartWorkers).
sigset_t g_machine_mask;
std::atomic<int> g_machines{0};
// Sysmon: 0 ticking, 1 asleep until a fiber runs (futex word), 2 not started.
std::atomic<uint32_t> g_sysmon_asleep{2};

__thread FiberTask* t_current __attribute__((tls_model("initial-exec"))) = nullptr;
// The worker this thread runs now (nullptr: not a worker thread, or a spare machine). A machine
// whose worker was handed off keeps the old value until its fiber comes back to the scheduler;
// nothing but the scheduler loop reads it.
__thread FiberWorker* t_worker __attribute__((tls_model("initial-exec"))) = nullptr;

// Tasks are type-stable (parker.h: a late Unpark must land on valid memory), and a pthread_t
// must be recognisable as a task: they live in one reserved range and are recycled, never freed.
FiberTask* g_task_base = nullptr;
std::atomic<size_t> g_task_count{0};
Spinlock g_free_mu;
FiberTask* g_free GONET_GUARDED_BY(g_free_mu) = nullptr;

// pthread keys (key_kind.h). The destructor to run at fiber exit.
std::atomic<void (*)(void*)> g_key_dtors[PTHREAD_KEYS_MAX];
// One bit per sanitizer key (key_kind.h): its destructor is never run at fiber exit. Read only
// there, so pthread_getspecific's path is unchanged.
std::atomic<uint64_t> g_sanitizer_keys[PTHREAD_KEYS_MAX / 64];

// key < PTHREAD_KEYS_MAX.
bool IsSanitizerKey(pthread_key_t key) {
  return (g_sanitizer_keys[key / 64].load(std::memory_order_relaxed) >> (key % 64)) & 1;
}

// pthread_pause-free unwinding for pthread_exit in a fiber.
struct FiberExitUnwind {};

long FutexWaitUntil(std::atomic<uint32_t>* word, uint32_t val, int64_t deadline_ns) {
  if (deadline_ns == 0) {
    return sys::Call(SYS_futex, word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, val, nullptr);
  }
  timespec ts{static_cast<time_t>(deadline_ns / 1000000000),
              static_cast<long>(deadline_ns % 1000000000)};
  return sys::Call(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, val, &ts, nullptr,
                   FUTEX_BITSET_MATCH_ANY);
}

void FutexWake(std::atomic<uint32_t>* word) {
  sys::Call(SYS_futex, word, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1);
}

// Queues t on its home worker and makes sure that worker will look at its queue. (No shortcut
// for "the caller is that worker": after a handoff the caller may be the machine that lost it.)
void WakeIfIdle(FiberWorker* w);

void MakeRunnable(FiberTask* t, FiberWorker* w) {
  w->Push(t);
  WakeIfIdle(w);
}

// Makes an idle worker look at its queue and timers again. The seq_cst load comes after the
// caller's change (queue lock released, or timer top stored seq_cst), paired with the worker's
// seq_cst store of its idle state before it looks at both: one of the two sees the other.
void WakeIfIdle(FiberWorker* w) {
  uint32_t s = w->idle.load(std::memory_order_seq_cst);
  if (s == FiberWorker::kSleeping) {
    if (w->idle.compare_exchange_strong(s, FiberWorker::kBusy, std::memory_order_seq_cst)) {
      FutexWake(&w->idle);
    }
  } else if (s == FiberWorker::kPolling) {
    Netpoller::Get().Break();
  }
}

bool WakeOneSleeper(FiberWorker* self) {
  int n = g_nworkers.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    FiberWorker* w = &g_workers[i];
    if (w == self) continue;
    uint32_t s = FiberWorker::kSleeping;
    if (w->idle.compare_exchange_strong(s, FiberWorker::kBusy, std::memory_order_seq_cst)) {
      FutexWake(&w->idle);
      return true;
    }
  }
  return false;
}

void PollAsPoller(int64_t delay_ns) {
  Netpoller::Get().Poll(delay_ns);
  g_last_poll_ns.store(CoarseNanotime(), std::memory_order_relaxed);
}

// Go's findrunnable, once nothing is queued: poll (one worker at a time) or sleep.
void Idle(FiberWorker* w) {
  bool poller = !g_poller_busy.exchange(true, std::memory_order_acq_rel);
  w->idle.store(poller ? FiberWorker::kPolling : FiberWorker::kSleeping, std::memory_order_seq_cst);
  if (w->HasWork()) {
    w->idle.store(FiberWorker::kBusy, std::memory_order_seq_cst);
    if (poller) g_poller_busy.store(false, std::memory_order_release);
    return;
  }
  int64_t next = w->NextTimer();
  if (poller) {
    int64_t delay = -1;
    if (next != 0) {
      delay = next - Nanotime();
      if (delay < 0) delay = 0;
    }
    PollAsPoller(delay);
    w->idle.store(FiberWorker::kBusy, std::memory_order_seq_cst);
    g_poller_busy.store(false, std::memory_order_release);
    // We are about to run what the poll found: let a sleeping worker take over the polling, so
    // that readiness for its own fibers is not held up by ours.
    if (g_nworkers.load(std::memory_order_relaxed) > 1 && w->HasWork()) WakeOneSleeper(w);
  } else {
    FutexWaitUntil(&w->idle, FiberWorker::kSleeping, next);
    w->idle.store(FiberWorker::kBusy, std::memory_order_seq_cst);
  }
}

void MaybePollBusy() {
  int64_t now = CoarseNanotime();
  if (now - g_last_poll_ns.load(std::memory_order_relaxed) < kBusyPollIntervalNs) return;
  if (g_poller_busy.exchange(true, std::memory_order_acq_rel)) return;
  PollAsPoller(0);
  g_poller_busy.store(false, std::memory_order_release);
}

}  // namespace

void FiberWorker::FireTimers() {
  FiberWorker* w = this;
  if (w->NextTimer() == 0) return;
  int64_t now = Nanotime();
  for (;;) {
    FiberTask* t;
    {
      SpinGuard g(w->timer_mu);
      if (w->timers.empty() || w->timers[0]->timer_deadline_ns_ > now) return;
      t = w->timers[0];
      w->RemoveTimerLocked(t);
    }
    uint64_t parked = (t->timer_seq_ << 2) | 2;  // kParked of the park that set the timer
    if (t->state_.compare_exchange_strong(parked, t->timer_seq_ << 2, std::memory_order_seq_cst)) {
      t->timed_out_ = true;
      w->Push(t);
    }
    // Otherwise the task was unparked already: a stale timer, nothing to do.
  }
}

void FiberWorker::ForgetAfterFork() {
  new (&mu) Spinlock();
  new (&timer_mu) Spinlock();
  {
    SpinGuard g(mu);
    head = tail = nullptr;
    fresh.store(0, std::memory_order_relaxed);
  }
  {
    SpinGuard g(timer_mu);
    for (FiberTask* t : timers) t->heap_index_ = -1;
    timers.clear();
  }
  next_timer_ns.store(0, std::memory_order_relaxed);
  idle.store(kBusy, std::memory_order_relaxed);
}

bool FiberWorker::Run(FiberTask* t) {
  FiberWorker* w = this;
  t->on_cpu_.store(1, std::memory_order_seq_cst);
  while (GONET_UNLIKELY(t->pinned_.load(std::memory_order_seq_cst) != 0)) {
    // gonet dump is unwinding this task's stack: wait (microseconds) for it to let go.
    t->on_cpu_.store(0, std::memory_order_seq_cst);
    while (t->pinned_.load(std::memory_order_acquire) != 0) CpuRelax();
    t->on_cpu_.store(1, std::memory_order_seq_cst);
  }
  t->started_ = true;
  t_current = t;
  // Coarse, like every stamp read once per fiber run: the sysmon may retake up to one tick early.
  running_since_ns.store(CoarseNanotime(), std::memory_order_relaxed);
  // Retakeable from here until the fiber comes back (header: Handoff). seq_cst: paired with the
  // sysmon's store of g_sysmon_asleep before it looks at every status.
  uint64_t gen = (status.load(std::memory_order_relaxed) >> 2) + 1;
  status.store((gen << 2) | kInFiber, std::memory_order_seq_cst);
  if (GONET_UNLIKELY(g_sysmon_asleep.load(std::memory_order_seq_cst) == 1)) {
    uint32_t one = 1;
    if (g_sysmon_asleep.compare_exchange_strong(one, 0, std::memory_order_seq_cst)) {
      FutexWake(&g_sysmon_asleep);
    }
  }
  SwitchAltStack(t->extra_.load(std::memory_order_relaxed));
  SwitchSignalMask(*t);
  bool finished = t->fiber_.Resume();
  t_current = nullptr;
  uint64_t in_fiber = (gen << 2) | kInFiber;
  bool kept =
      status.compare_exchange_strong(in_fiber, (gen << 2) | kInSched, std::memory_order_seq_cst);
  if (kept) running_since_ns.store(0, std::memory_order_relaxed);
  // A finished task's stack is back in the pool: no longer alive before it is off the CPU.
  if (finished) t->alive_.store(false, std::memory_order_release);
  t->on_cpu_.store(0, std::memory_order_release);
  if (finished) {
    OnExit(t);
    return kept;
  }
  auto action = std::exchange(t->action_, FiberTask::Action::kNone);
  if (action == FiberTask::Action::kYield ||
      (action == FiberTask::Action::kPark && !t->CommitPark())) {
    // Our own queue needs no wake-up; a queue another machine now runs does.
    if (kept) {
      w->Push(t);
    } else {
      MakeRunnable(t, w);
    }
  }
  return kept;
}

namespace {

// Stack overflow in a fiber: the fault hits the guard page below the fiber's stack, where no
// handler could run, so every worker has an alternate signal stack and gonet's SIGSEGV handler
// (SA_ONSTACK) names the cause before the process dies as it would have. Any other SIGSEGV goes
// to the handler that was installed before (or the default action).
constexpr size_t kAltStackBytes = 64 * 1024;
struct sigaction g_prev_segv;

void OnSegv(int sig, siginfo_t* si, void* uc) {
  FiberTask* t = t_current;
  if (t != nullptr && t->stack().InGuard(si->si_addr)) {
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "gonet: fiber stack overflow (fiber %u, stack %zu KiB): raise it with "
                     "pthread_attr_setstacksize or GONET_FIBER_STACK (e.g. GONET_FIBER_STACK=1m)\n",
                     t->id() & ~kTaskIdBit, t->stack().usable() / 1024);
    if (n > 0) sys::Call(SYS_write, 2, msg, static_cast<size_t>(n));
  } else if ((g_prev_segv.sa_flags & SA_SIGINFO) ||
             (g_prev_segv.sa_handler != SIG_DFL && g_prev_segv.sa_handler != SIG_IGN)) {
    // The kernel would have reset a one-shot handler (the crash reporter's) before running it;
    // without that, a handler that returns would see the re-executed fault here again, forever.
    if (g_prev_segv.sa_flags & SA_RESETHAND) {
      struct sigaction dfl {};
      dfl.sa_handler = SIG_DFL;
      sigaction(SIGSEGV, &dfl, nullptr);
    }
    if (g_prev_segv.sa_flags & SA_SIGINFO) return g_prev_segv.sa_sigaction(sig, si, uc);
    return g_prev_segv.sa_handler(sig);
  }
  // Die of the fault as the program would have: default action, and the instruction faults again
  // on return.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &dfl, nullptr);
}

void InstallOverflowHandler() {
  struct sigaction sa {};
  sa.sa_sigaction = &OnSegv;
  // SA_RESTART: a fault handler never interrupts a call, and signal_policy.h counts handlers
  // without it as "some signal may interrupt a wait".
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_prev_segv);
}

// Takes one fresh task from another worker's queue onto w's (Go's runqsteal, limited to tasks
// that have never run: header).
bool StealFresh(FiberWorker* w) {
  int n = g_nworkers.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    FiberWorker* v = &g_workers[i];
    if (v == w) continue;
    if (FiberTask* t = v->TakeFresh()) {
      w->Adopt(t);
      Count(Stats().fiber_steals);
      return true;
    }
  }
  return false;
}

// Runs worker w on this machine until the sysmon hands it to another one.
void RunWorker(FiberWorker* w) {
  t_worker = w;
  w->machine_tid.store(static_cast<int>(sys::Call(SYS_gettid)), std::memory_order_relaxed);
  // Ours now: a handed-off worker still says kHandedOff, and its last fiber's start time.
  uint64_t gen = (w->status.load(std::memory_order_relaxed) >> 2) + 1;
  w->status.store((gen << 2) | FiberWorker::kInSched, std::memory_order_seq_cst);
  w->running_since_ns.store(0, std::memory_order_relaxed);
  for (;;) {
    w->FireTimers();
    if (FiberTask* t = w->Pop()) {
      if (!w->Run(t)) break;
      MaybePollBusy();
      continue;
    }
    if (g_nworkers.load(std::memory_order_relaxed) > 1 && StealFresh(w)) continue;
    Idle(w);
  }
  t_worker = nullptr;
}

// A machine waits to be given a worker: at once if it was started with one, else (a spare) until
// the sysmon's handoff. worker is written before given (release).
FiberWorker* AwaitWorker(Machine* m) {
  while (m->given.load(std::memory_order_acquire) == 0) {
    FutexWaitUntil(&m->given, 0, 0);
  }
  m->given.store(0, std::memory_order_relaxed);
  return std::exchange(m->worker, nullptr);
}

void* WorkerMain(void* arg) {
  SanitizerThreadStart();
  auto* m = static_cast<Machine*>(arg);
  void* alt =
      mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alt != MAP_FAILED) {
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = kAltStackBytes;
    sigaltstack(&ss, nullptr);
    NoteMachineAltStack(alt, kAltStackBytes);
  }
  NoteMachineSignalMask(g_machine_mask);  // created with it (StartMachine)
  pthread_setname_np(pthread_self(), "gonet-worker");
  for (;;) {
    RunWorker(AwaitWorker(m));
    SpinGuard g(g_spare_mu);
    m->next_spare = g_spares;
    g_spares = m;
  }
  return nullptr;
}

int CpusAllowed() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  return 1;
}

// Workers are real OS threads: libc's pthread_create, not the hook that would make them fibers.
using CreateFn = int (*)(pthread_t*, const pthread_attr_t*, void* (*)(void*), void*);
CreateFn RealPthreadCreate() {
  static CreateFn fn = reinterpret_cast<CreateFn>(dlsym(RTLD_NEXT, "pthread_create"));
  return fn != nullptr ? fn : &pthread_create;
}

// Starts a machine thread: running w, or (w == nullptr) as a spare that waits to be given one.
Machine* StartMachine(FiberWorker* w) {
  if (g_machines.fetch_add(1, std::memory_order_relaxed) >= kMaxMachines) {
    g_machines.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto* m = new (std::nothrow) Machine;
  pthread_t thread;
  pthread_attr_t attr;
  if (m != nullptr && pthread_attr_init(&attr) == 0) {
    m->worker = w;
    m->given.store(w != nullptr ? 1 : 0, std::memory_order_relaxed);  // published by the create
    // Every machine has the same mask, whoever creates it (the sysmon blocks the program's
    // signals): the program's fibers run on any of them (base/thread_signals.h).
    pthread_attr_setsigmask_np(&attr, &g_machine_mask);
    int r = RealPthreadCreate()(&thread, &attr, &WorkerMain, m);
    pthread_attr_destroy(&attr);
    if (r == 0) {
      pthread_detach(thread);
      return m;
    }
  }
  delete m;
  g_machines.fetch_sub(1, std::memory_order_relaxed);
  return nullptr;
}

// --- Sysmon (Go's sysmon, reduced to what fibers mode needs; header: Handoff) -------------------

// Hands worker w, whose status the sysmon saw as st (a fiber stuck in it for kRetakeNs), to a
// spare machine. The machine is secured before the status CAS, so a won CAS always has one.
void HandOff(FiberWorker* w, uint64_t st) {
  Machine* m;
  {
    SpinGuard g(g_spare_mu);
    m = g_spares;
    if (m != nullptr) g_spares = m->next_spare;
  }
  if (m == nullptr && (m = StartMachine(nullptr)) == nullptr) return;  // try again next tick
  uint64_t handed = (st & ~uint64_t{FiberWorker::kStatusMask}) | FiberWorker::kHandedOff;
  if (!w->status.compare_exchange_strong(st, handed, std::memory_order_seq_cst)) {
    SpinGuard g(g_spare_mu);  // the fiber came back just now: keep the machine for next time
    m->next_spare = g_spares;
    g_spares = m;
    return;
  }
  Count(Stats().fiber_handoffs);
  m->worker = w;
  m->given.store(1, std::memory_order_release);
  FutexWake(&m->given);
}

// One look at every worker; true if some fiber is running.
bool Retake(int64_t now) {
  bool running = false;
  int n = g_nworkers.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    FiberWorker* w = &g_workers[i];
    uint64_t st = w->status.load(std::memory_order_seq_cst);
    if ((st & FiberWorker::kStatusMask) != FiberWorker::kInFiber) continue;
    running = true;
    // Run stores running_since_ns before status, so this is the start of run st or of a later
    // one (recent), or 0 (it ended): only run st can be too old, and the CAS in HandOff names it.
    int64_t since = w->running_since_ns.load(std::memory_order_relaxed);
    if (since == 0 || now - since < kRetakeNs) continue;
    // Stuck with nobody waiting for the worker: leave it (a handoff costs a thread).
    int64_t next = w->NextTimer();
    if (!w->HasWork() && !(next != 0 && next <= now)) continue;
    HandOff(w, st);
  }
  return running;
}

void* SysmonMain(void*) {
  SanitizerThreadStart();
  // Program signals go to the program's threads; faults reach it; and gonet's SIGURG, since the
  // sysmon answers gonet dump (dump.h: round one).
  sigset_t mask;
  HelperThreadMask(&mask);
  sigdelset(&mask, SIGURG);
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  pthread_setname_np(pthread_self(), "gonet-sysmon");
  PublishDumpAnswerer();
  int quiet_ticks = 0;
  for (;;) {
    timespec tick{0, kSysmonTickNs};
    sys::Call(SYS_nanosleep, &tick, nullptr);  // raw: not fibers mode's nanosleep hook
    int64_t now = Nanotime();
    bool running = Retake(now);
    // Every worker busy (or stuck) for a while: nobody delivers readiness, so poll for them.
    if (running && now - g_last_poll_ns.load(std::memory_order_relaxed) > kSysmonPollNs &&
        !g_poller_busy.exchange(true, std::memory_order_acq_rel)) {
      PollAsPoller(0);
      g_poller_busy.store(false, std::memory_order_release);
    }
    if (running) {
      quiet_ticks = 0;
      continue;
    }
    if (++quiet_ticks < kSysmonIdleTicks) continue;
    // No fiber has run for a while: sleep until one does (Run wakes us), so that an idle process
    // makes no periodic wake-ups.
    g_sysmon_asleep.store(1, std::memory_order_seq_cst);
    if (!Retake(Nanotime())) {  // look again after the store (Run's store/load pair)
      while (g_sysmon_asleep.load(std::memory_order_seq_cst) == 1) {
        FutexWaitUntil(&g_sysmon_asleep, 1, 0);
      }
    }
    g_sysmon_asleep.store(0, std::memory_order_seq_cst);
    quiet_ticks = 0;
  }
  return nullptr;
}

// Once per process (and again in a forked child, which has no sysmon thread).
void EnsureSysmon() {
  static std::atomic<bool> starting{false};
  if (g_sysmon_asleep.load(std::memory_order_relaxed) != 2) return;
  if (starting.exchange(true, std::memory_order_acq_rel)) return;
  pthread_t thread;
  if (RealPthreadCreate()(&thread, nullptr, &SysmonMain, nullptr) == 0) {
    pthread_detach(thread);
    g_sysmon_asleep.store(0, std::memory_order_seq_cst);
  }
  starting.store(false, std::memory_order_release);
}

}  // namespace

FiberTask* FiberWorker::AllocTask() {
  {
    SpinGuard g(g_free_mu);
    if (FiberTask* t = g_free) {
      g_free = t->free_next_;
      return t;
    }
  }
  size_t i = g_task_count.fetch_add(1, std::memory_order_relaxed);
  if (i >= kMaxTasks) {
    g_task_count.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  FiberTask* t = new (&g_task_base[i]) FiberTask();
  t->id_ = kTaskIdBit | static_cast<uint32_t>(i + 1);
  return t;
}

void FiberWorker::Recycle(FiberTask* t) {
  // Freed, not cleared: tasks live in an mmap'd range that leak checkers do not scan, and most
  // fibers never use thread-specific data.
  delete[] t->specific_;
  t->specific_ = nullptr;
  delete t->extra_.exchange(nullptr, std::memory_order_acq_rel);
  SpinGuard g(g_free_mu);
  t->free_next_ = g_free;
  g_free = t;
}

void FiberWorker::OnExit(FiberTask* t) {
  Count(Stats().fibers_live, -1);
  t->alive_.store(false, std::memory_order_release);
  bool detached;
  Parker* joiner;
  {
    SpinGuard g(t->join_mu_);
    t->exited_ = true;
    detached = t->detached_;
    joiner = t->joiner_;
  }
  if (detached) {
    Recycle(t);
  } else if (joiner != nullptr) {
    joiner->Unpark();  // parkers are type-stable: safe even if the joiner already left
  }
}

namespace {

Parker* LookupCurrentTask() { return t_current; }

// fork in fibers mode. Only the forking thread exists in the child, as for threads: the other
// workers and every fiber they ran are gone. Locks another worker held at the fork are
// re-initialised (their holders no longer exist), and:
//   - forked from an OS thread (the main thread): no worker is left; the next pthread_create or
//     armed fd starts a fresh set;
//   - forked from a fiber: its worker is the only one left, with an empty queue and no timers,
//     so the other fibers of that worker do not run again in the child either.
void AtForkChild() {
  FiberSyncAfterForkChild();
  FiberStackPool::AfterForkChild();
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

}  // namespace

// --- FiberTask ---------------------------------------------------------------------------------

// A signal for this fiber ran its handlers: the wait returns EINTR, or restarts (the caller
// re-checks and parks again), as the kernel decides (parker.h WaitKind, fibers/fiber_signals.h).
ParkResult FiberTask::AfterSignals(WaitKind kind) {
  bool restart = DeliverSignals();
  return kind == WaitKind::kAlwaysEintr || !restart ? ParkResult::kInterrupted
                                                    : ParkResult::kUnparked;
}

ParkResult FiberTask::Park(int64_t deadline_ns, WaitKind kind) {
  if (GONET_UNLIKELY(CancelDue())) Exit(PTHREAD_CANCELED);  // a cancellation point
  if (GONET_UNLIKELY(HasDeliverableSignal())) return AfterSignals(kind);
  uint64_t s = state_.load(std::memory_order_seq_cst);
  while ((s & kStMask) == kPermit) {
    if (state_.compare_exchange_weak(s, s & ~kStMask, std::memory_order_seq_cst)) {
      return ParkResult::kUnparked;
    }
  }
  if (deadline_ns != 0) {
    if (deadline_ns <= Nanotime()) return ParkResult::kTimedOut;
    timer_deadline_ns_ = deadline_ns;
    timer_seq_ = (s >> 2) + 1;  // the seq CommitPark will give this park
    // Earliest now: an idle worker (ours after a handoff, or one we share nothing with) must not
    // sleep past it.
    if (home_->AddTimer(this)) WakeIfIdle(home_);
  }
  timed_out_ = false;
  action_ = Action::kPark;
  fiber_.Suspend();
  if (deadline_ns != 0) home_->RemoveTimer(this);  // unless it fired
  if (timed_out_) {
    // Not counted here: wakes_* count pollDesc waits (poll_desc.cc), which count their own
    // timeouts; a sleep or a timed mutex wait is not one of them.
    timed_out_ = false;
    if (GONET_UNLIKELY(HasDeliverableSignal())) DeliverSignals();
    return ParkResult::kTimedOut;
  }
  if (GONET_UNLIKELY(CancelDue())) Exit(PTHREAD_CANCELED);
  if (GONET_UNLIKELY(HasDeliverableSignal())) return AfterSignals(kind);
  return ParkResult::kUnparked;
}

bool FiberTask::CommitPark() {
  uint64_t s = state_.load(std::memory_order_seq_cst);
  for (;;) {
    if ((s & kStMask) == kPermit) {
      if (state_.compare_exchange_weak(s, s & ~kStMask, std::memory_order_seq_cst)) return false;
      continue;
    }
    uint64_t parked = (((s >> 2) + 1) << 2) | kParked;
    if (state_.compare_exchange_weak(s, parked, std::memory_order_seq_cst)) return true;
  }
}

void FiberTask::Unpark() {
  uint64_t s = state_.load(std::memory_order_seq_cst);
  for (;;) {
    switch (s & kStMask) {
      case kPermit:
        return;
      case kRun:
        if (state_.compare_exchange_weak(s, s | kPermit, std::memory_order_seq_cst)) return;
        break;
      default:  // kParked: whoever moves it back to kRun queues it
        if (state_.compare_exchange_weak(s, s & ~kStMask, std::memory_order_seq_cst)) {
          MakeRunnable(this, home_);
          return;
        }
        break;
    }
  }
}

void FiberTask::Yield() {
  action_ = Action::kYield;
  fiber_.Suspend();
  if (GONET_UNLIKELY(HasDeliverableSignal())) DeliverSignals();
}

void FiberTask::Entry(void* self) {
  auto* t = static_cast<FiberTask*>(self);
  try {
    t->retval_ = t->start_(t->arg_);
  } catch (FiberExitUnwind&) {
    // pthread_exit: retval_ already set.
  }
  t->RunKeyDestructors();
}

void FiberTask::Exit(void* retval) {
  retval_ = retval;
  throw FiberExitUnwind{};
}

void FiberTask::RunKeyDestructors() {
  if (specific_ == nullptr) return;
  // As glibc: up to PTHREAD_DESTRUCTOR_ITERATIONS passes while destructors set new values.
  for (int pass = 0; pass < PTHREAD_DESTRUCTOR_ITERATIONS; ++pass) {
    bool any = false;
    for (int k = 0; k < PTHREAD_KEYS_MAX; ++k) {
      void* v = specific_[k];
      if (v == nullptr) continue;
      specific_[k] = nullptr;
      if (IsSanitizerKey(k)) continue;  // it would tear down the worker's state (key_kind.h)
      if (auto dtor = g_key_dtors[k].load(std::memory_order_acquire)) {
        dtor(v);
        any = true;
      }
    }
    if (!any) return;
  }
}

void* FiberTask::GetSpecific(pthread_key_t key) const {
  if (specific_ == nullptr || key >= PTHREAD_KEYS_MAX) return nullptr;
  return specific_[key];
}

int FiberTask::SetSpecific(pthread_key_t key, const void* value) {
  if (key >= PTHREAD_KEYS_MAX) return EINVAL;
  if (specific_ == nullptr) {
    if (value == nullptr) return 0;
    specific_ = new (std::nothrow) void*[PTHREAD_KEYS_MAX]();
    if (specific_ == nullptr) return ENOMEM;
  }
  specific_[key] = const_cast<void*>(value);
  return 0;
}

int FiberTask::Join(void** retval, int64_t deadline_ns) {
  if (this == t_current) return EDEADLK;
  Parker* me = CurrentParker();
  {
    SpinGuard g(join_mu_);
    if (detached_ || joiner_ != nullptr) return EINVAL;
    if (deadline_ns < 0 && !exited_) return EBUSY;
    joiner_ = me;
  }
  ScopedWaitNote note(me, kWaitJoin);  // gonet dump: what this waiter waits for
  // A joiner cancelled in its wait (pthread_join is a cancellation point) leaves the thread
  // joinable, as glibc does.
  struct Unjoin {
    FiberTask* t;
    bool armed = true;
    ~Unjoin() {
      if (!armed) return;
      SpinGuard g(t->join_mu_);
      t->joiner_ = nullptr;
    }
  } unjoin{this};
  for (;;) {
    {
      SpinGuard g(join_mu_);
      if (exited_) break;
      if (deadline_ns > 0 && Nanotime() >= deadline_ns) {
        joiner_ = nullptr;  // no longer joining: a later join may try again
        unjoin.armed = false;
        return ETIMEDOUT;
      }
    }
    me->Park(deadline_ns > 0 ? deadline_ns : 0, WaitKind::kRestartable);  // a signal: look again
  }
  unjoin.armed = false;
  if (retval != nullptr) *retval = retval_;
  FiberWorker::Recycle(this);
  return 0;
}

int FiberTask::Detach() {
  {
    SpinGuard g(join_mu_);
    if (detached_ || joiner_ != nullptr) return EINVAL;
    if (!exited_) {
      detached_ = true;
      return 0;
    }
  }
  FiberWorker::Recycle(this);
  return 0;
}

// Runs with g_started == 1 (this thread alone is starting the scheduler).
bool FiberScheduler::StartWorkers(int n) {
  auto* workers = new (std::nothrow) FiberWorker[n];
  if (workers == nullptr) {
    g_started.store(3, std::memory_order_release);
    return false;
  }
  g_workers = workers;
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

// --- FiberScheduler ----------------------------------------------------------------------------

bool FiberScheduler::EnsureStarted() {
  int s = g_started.load(std::memory_order_acquire);
  if (GONET_LIKELY(s == 2)) return true;
  int expect = 0;
  if (g_started.compare_exchange_strong(expect, 1, std::memory_order_acq_rel)) {
    int n = config().workers > 0 ? config().workers : CpusAllowed();
    if (g_task_base != nullptr) return StartWorkers(n);  // again, in a forked child
    static std::atomic<bool> atfork{false};
    if (!atfork.exchange(true)) pthread_atfork(nullptr, nullptr, &AtForkChild);
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
  t->sig_queued_.store(0, std::memory_order_relaxed);
  t->home_ = PlaceNewFiber();
  if (!t->fiber_.Start(stack_bytes, &FiberTask::Entry, t)) {
    FiberWorker::Recycle(t);
    return EAGAIN;
  }
  t->started_ = false;
  t->alive_.store(true, std::memory_order_release);
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

uint32_t FiberTask::number() const { return id_ & ~kTaskIdBit; }

FiberThreadState* FiberTask::thread_state() {
  FiberThreadState* x = extra_.load(std::memory_order_acquire);
  if (x != nullptr) return x;
  auto* fresh = new (std::nothrow) FiberThreadState;
  if (fresh == nullptr) return nullptr;
  fresh->InitDefault();
  if (extra_.compare_exchange_strong(x, fresh, std::memory_order_acq_rel)) return fresh;
  delete fresh;  // another thread's came first
  return x;
}

int FiberTask::MachineTid() const {
  FiberWorker* w = home_;
  return w != nullptr ? w->machine_tid.load(std::memory_order_relaxed) : 0;
}

void FiberScheduler::ForEachSuspendedTask(SuspendedTaskFn fn, void* ctx) {
  if (g_task_base == nullptr) return;
  size_t n = g_task_count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    FiberTask& t = g_task_base[i];
    if (!t.alive_.load(std::memory_order_acquire)) continue;
    t.pinned_.store(1, std::memory_order_seq_cst);
    // started_ is written by the worker before on_cpu_ drops (release) and read after we saw
    // on_cpu_ == 0 with our pin up, so it is the value of the last run.
    if (t.on_cpu_.load(std::memory_order_seq_cst) == 0 &&
        t.alive_.load(std::memory_order_acquire) && t.started_) {
      fn(ctx, t, t.fiber_.SavedContext());
    }
    t.pinned_.store(0, std::memory_order_release);
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
