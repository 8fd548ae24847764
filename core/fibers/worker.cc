#include "core/fibers/worker.h"

#include <linux/futex.h>

#include "core/base/sys.h"
#include "core/fibers/fiber_signals.h"
#include "core/poll/netpoller.h"
#include "core/stats/stats.h"

namespace gonet::core {

FiberWorker* g_workers = nullptr;
// Workers in use; written once they are placed (workers may read it before it settles: a worker
// not started yet is never kSleeping, so WakeOneSleeper skips it).
std::atomic<int> g_nworkers{0};
std::atomic<int> g_started{0};  // 0 not yet, 1 starting, 2 running, 3 failed
std::atomic<uint32_t> g_next_worker{0};
std::atomic<bool> g_poller_busy{false};  // a worker holds the poller role
std::atomic<int64_t> g_last_poll_ns{0};

__thread FiberTask* t_current = nullptr;
// The worker this thread runs now (nullptr: not a worker thread, or a spare machine). A machine
// whose worker was handed off keeps the old value until its fiber comes back to the scheduler;
// nothing but the scheduler loop reads it.
__thread FiberWorker* t_worker = nullptr;

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
  // Which OS thread runs it: where a kick for it goes (signal_kick.cc).
  const auto tid = static_cast<uint32_t>(machine_tid.load(std::memory_order_relaxed));
  const uint32_t on_cpu = tid != 0 ? tid : 1;
  t->on_cpu_.store(on_cpu, std::memory_order_seq_cst);
  while (GONET_UNLIKELY(t->pinned_.load(std::memory_order_seq_cst) != 0)) {
    // gonet dump is unwinding this task's stack: wait (microseconds) for it to let go.
    t->on_cpu_.store(0, std::memory_order_seq_cst);
    while (t->pinned_.load(std::memory_order_acquire) != 0) CpuRelax();
    t->on_cpu_.store(on_cpu, std::memory_order_seq_cst);
  }
  t->started_ = true;
  t_current = t;
  // Coarse, like every stamp read once per fiber run: the sysmon may retake up to one tick early.
  running_since_ns.store(CoarseNanotime(), std::memory_order_relaxed);
  // Retakeable from here until the fiber comes back (header: Handoff). seq_cst: paired with the
  // sysmon's store of g_sysmon_asleep before it looks at every status.
  uint64_t gen = (status.load(std::memory_order_relaxed) >> 2) + 1;
  status.store((gen << 2) | kInFiber, std::memory_order_seq_cst);
  if (GONET_UNLIKELY(g_sysmon_asleep.load(std::memory_order_seq_cst) == 1)) WakeSleepingSysmon();
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
  w->machine_tid.store(static_cast<pid_t>(sys::Call(SYS_gettid)), std::memory_order_relaxed);
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

}  // namespace gonet::core
