#include <cstdlib>
#include <new>

#include "core/fibers/fiber_signals.h"
#include "core/fibers/signal_route.h"
#include "core/fibers/worker.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

// key < PTHREAD_KEYS_MAX.
bool IsSanitizerKey(pthread_key_t key) {
  return (g_sanitizer_keys[key / 64].load(std::memory_order_relaxed) >> (key % 64)) & 1;
}

}  // namespace

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
  free(t->routed_info_.exchange(nullptr, std::memory_order_acq_rel));
  t->sig_routed_.store(0, std::memory_order_relaxed);
  SpinGuard g(g_free_mu);
  t->free_next_ = g_free;
  g_free = t;
}

void FiberWorker::OnExit(FiberTask* t) {
  Count(Stats().fibers_live, -1);
  NoteFiberMasksChanged();  // one fewer (signal_route.h)
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

// A signal for this fiber ran its handlers: the wait returns EINTR, or restarts (the caller
// re-checks and parks again), as the kernel decides (parker.h WaitKind, fibers/fiber_signals.h).
ParkResult FiberTask::AfterSignals(WaitKind kind) {
  const uint32_t before = sig_handled_;
  bool restart = DeliverSignals();
  // Only a handler interrupts: an ignored signal is a spurious wake-up (the kernel restarts the
  // call), e.g. one a SignalWait's watch took for a poll (fiber_signals.h).
  if (sig_handled_ == before) return ParkResult::kUnparked;
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
  RunStart(t);  // returns when the start routine does, or when pthread_exit's unwind ends
  t->RunThreadLocalDestructors();  // glibc's order: thread_local destructors, then keys
  t->RunKeyDestructors();
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

}  // namespace gonet::core
