// The fiber scheduler's internals, shared by its files and nothing else (fiber_scheduler.h is
// the interface):
//   worker.cc          FiberWorker: run queue, timer heap, idle/poll (Go's P and findrunnable)
//   sysmon.cc          machines (OS threads) and the sysmon's handoff (Go's M and retake)
//   task.cc            FiberTask: park/unpark, exit, join/detach, thread-specific data
//   stack_overflow.cc  the SIGSEGV handler that names a fiber stack overflow
//   fiber_scheduler.cc starting the workers, spawning, dump's walk, and fork
// The state machines are written down in fiber_scheduler.h. LOCKING: core/README.md.
#pragma once

#include <limits.h>
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <utility>
#include <vector>

#include "core/base/base.h"
#include "core/base/spinlock.h"
#include "core/fibers/fiber_scheduler.h"

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
  std::atomic<pid_t> machine_tid{0};  // the OS thread running it (the sysmon asks /proc about it)
  // The sysmon's own notes (only the sysmon reads or writes them): the run (status) it last found
  // runnable past kRetakeNs, and its machine's CPU time then (machine_state.h).
  uint64_t retake_seen_status = 0;
  int64_t retake_seen_cpu_ns = 0;

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

constexpr uint32_t kTaskIdBit = uint32_t{1} << 30;  // kernel tids stay below 2^22
// Fibers alive at once. The task records are one reserved range (MAP_NORESERVE, touched as
// used), but RLIMIT_AS counts the whole reservation: 2^18 records of 512 bytes are 128 MiB, which
// leaves room for stacks under a modest address-space limit. Beyond it pthread_create returns
// EAGAIN, as glibc's does when threads run out.
constexpr size_t kMaxTasks = size_t{1} << 18;
// A busy worker polls the netpoller when this long has passed since the last poll, on the coarse
// clock (read once per fiber run): at most once per scheduler tick, at least every kSysmonPollNs
// (the sysmon polls then).
constexpr int64_t kBusyPollIntervalNs = 1000000;
// Handoff (header): a stuck worker is handed to another machine after kRetakeNs, checked every
// kSysmonTickNs; the sysmon stops ticking after kSysmonIdleTicks ticks with no fiber running.
constexpr int64_t kRetakeNs = 20 * 1000000;
// A machine that is runnable rather than blocked is handed off only once its fiber has used this
// much CPU in one run, counted from when the sysmon first found it past kRetakeNs (a machine the
// kernel has not scheduled uses none: fibers/machine_state.h says why).
constexpr int64_t kRetakeRunnableNs = 200 * 1000000;
constexpr int64_t kSysmonTickNs = 10 * 1000000;
constexpr int kSysmonIdleTicks = 50;
constexpr int64_t kSysmonPollNs = 10 * 1000000;  // poll for everyone if nobody has for this long
constexpr int kMaxMachines = 10000;              // Go's default limit on threads
// Stack release (stack_release.cc): the sysmon's pass over the parked fibers runs this often, and
// a fiber parked in the same park at two passes gives back its pages below SP; so a fiber parked
// for 1-2 s is released. Go's scale: it shrinks idle goroutine stacks at GC, seconds apart.
constexpr int64_t kStackScanNs = 1000 * 1000000;

// An OS thread that runs workers (Go's M). Machines are never freed: a spare one sleeps on
// `given` until the sysmon hands it a worker.
struct Machine {
  std::atomic<uint32_t> given{0};  // futex word: 1 once `worker` is set for it
  FiberWorker* worker = nullptr;
  Machine* next_spare = nullptr;
};

// Scheduler state (worker.cc).
extern FiberWorker* g_workers;
// Workers in use; written once they are placed (workers may read it before it settles: a worker
// not started yet is never kSleeping, so WakeOneSleeper skips it).
extern std::atomic<int> g_nworkers;
extern std::atomic<int> g_started;  // 0 not yet, 1 starting, 2 running, 3 failed
extern std::atomic<uint32_t> g_next_worker;
extern std::atomic<bool> g_poller_busy;  // a worker holds the poller role
extern std::atomic<int64_t> g_last_poll_ns;

extern __thread FiberTask* t_current __attribute__((tls_model("initial-exec")));
// The worker this thread runs now (nullptr: not a worker thread, or a spare machine). A machine
// whose worker was handed off keeps the old value until its fiber comes back to the scheduler;
// nothing but the scheduler loop reads it.
extern __thread FiberWorker* t_worker __attribute__((tls_model("initial-exec")));

// Machines and the sysmon (sysmon.cc).
extern Spinlock g_spare_mu;
extern Machine* g_spares GONET_GUARDED_BY(g_spare_mu);
// The signal mask of every machine: that of the program thread that started the workers, with
// the synchronous faults unblocked (StartWorkers).
extern sigset_t g_machine_mask;
extern std::atomic<SysmonStartHook> g_sysmon_start_hook;  // SetSysmonStartHook
extern std::atomic<int> g_machines;
// Sysmon: 0 ticking, 1 asleep until a fiber runs (futex word), 2 not started.
extern std::atomic<uint32_t> g_sysmon_asleep;
// Ends the sysmon's sleep (1 -> 0), if it sleeps: a fiber is about to run (FiberWorker::Run).
void WakeSleepingSysmon();
// Makes the sysmon go round its loop now, ticking or asleep (a signal queued for routing:
// signal_route.h). Async-signal-safe: atomics and futex wakes.
void PokeSysmon();

// Task storage (task.cc).
// Tasks are type-stable (parker.h: a late Unpark must land on valid memory), and a pthread_t
// must be recognisable as a task: they live in one reserved range and are recycled, never freed.
extern FiberTask* g_task_base;
extern std::atomic<size_t> g_task_count;
extern Spinlock g_free_mu;
extern FiberTask* g_free GONET_GUARDED_BY(g_free_mu);

// pthread keys (key_kind.h). The destructor to run at fiber exit.
extern std::atomic<void (*)(void*)> g_key_dtors[PTHREAD_KEYS_MAX];
// One bit per sanitizer key (key_kind.h): its destructor is never run at fiber exit. Read only
// there, so pthread_getspecific's path is unchanged.
extern std::atomic<uint64_t> g_sanitizer_keys[PTHREAD_KEYS_MAX / 64];

long FutexWaitUntil(std::atomic<uint32_t>* word, uint32_t val, int64_t deadline_ns);
void FutexWake(std::atomic<uint32_t>* word);

// Queues t on its home worker and makes sure that worker will look at its queue. (No shortcut
// for "the caller is that worker": after a handoff the caller may be the machine that lost it.)
void MakeRunnable(FiberTask* t, FiberWorker* w);
// Makes an idle worker look at its queue and timers again. The seq_cst load comes after the
// caller's change (queue lock released, or timer top stored seq_cst), paired with the worker's
// seq_cst store of its idle state before it looks at both: one of the two sees the other.
void WakeIfIdle(FiberWorker* w);
bool WakeOneSleeper(FiberWorker* self);
void PollAsPoller(int64_t delay_ns);
void MaybePollBusy();
// Takes one fresh task from another worker's queue onto w's (Go's runqsteal, limited to tasks
// that have never run: header).
bool StealFresh(FiberWorker* w);
// Runs worker w on this machine until the sysmon hands it to another one.
void RunWorker(FiberWorker* w);
// Go's findrunnable, once nothing is queued: poll (one worker at a time) or sleep.
void Idle(FiberWorker* w);

// Starts a machine thread: running w, or (w == nullptr) as a spare that waits to be given one.
Machine* StartMachine(FiberWorker* w);
// Once per process (and again in a forked child, which has no sysmon thread).
void EnsureSysmon();

void InstallOverflowHandler();
// Every worker thread gets an alternate signal stack, so that a fault on a fiber's guard page
// can still run a handler (OnSegv).
void InstallWorkerAltStack();

int CpusAllowed();

}  // namespace gonet::core
