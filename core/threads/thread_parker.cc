#include "core/threads/thread_parker.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sys/syscall.h>

#include <climits>
#include <new>

#include "core/base/arena.h"
#include "core/base/base.h"
#include "core/base/signal_policy.h"
#include "core/base/sys.h"
#include "core/stats/dump_area.h"
#include "core/stats/stats_shm.h"
#include "core/threads/sigurg.h"

namespace gonet::core {

namespace {
constinit TypeStableArena<ThreadParker> g_parkers;
}  // namespace

// Parkers are never freed (parker.h: a late Unpark must land on valid memory): threads return
// theirs here at exit and new threads reuse them. The arena also lets gonet dump visit them all.
class ThreadParkerPool {
 public:
  static ThreadParker* Get() {
    ThreadParker* p = g_parkers.Alloc();
    if (p != nullptr) p->tid_.store(static_cast<int>(sys::Call(SYS_gettid)));
    return p;
  }
  static void Put(ThreadParker* p) {
    p->tid_.store(0, std::memory_order_relaxed);
    if (p->published_in_ != nullptr && p->published_in_ == StatsSegment()) {
      PublishParker(g_parkers.IndexOf(p), 0, nullptr);
    }
    p->published_in_ = nullptr;
    g_parkers.Free(p);
  }
};

namespace {

// Returns the parker to the pool when the thread exits. thread_local with a destructor is the
// cheapest portable hook for that; the pointer itself is read through initial-exec TLS.
struct ParkerOwner {
  ThreadParker* p = nullptr;
  ~ParkerOwner() {
    if (p != nullptr) ThreadParkerPool::Put(p);
  }
};

thread_local ParkerOwner t_owner;
__thread ThreadParker* t_parker __attribute__((tls_model("initial-exec"))) = nullptr;
// Set by the dump handler when its signal made this thread's futex wait return EINTR.
__thread volatile sig_atomic_t t_dump_interrupt __attribute__((tls_model("initial-exec"))) = 0;

std::atomic<ParkerLookup> g_lookup{nullptr};

// A far deadline for kAlwaysEintr waits with no deadline: a timed futex wait gives the kernel's
// "EINTR whatever SA_RESTART" rule; the wait simply starts again if it ever expires.
constexpr int64_t kFarFutureNs = INT64_C(365) * 24 * 3600 * 1000000000;

long FutexWait(std::atomic<uint32_t>* word, int64_t deadline_ns, bool timed) {
  // Only a thread that has cancellation enabled may be cancelled in the wait: with it disabled,
  // asynchronous type would still make pthread_cancel send SIGCANCEL, whose EINTR the program
  // would then see although natively nothing interrupts its call.
  int state = 0;
  pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &state);
  pthread_setcancelstate(state, nullptr);
  const bool cancellable = state == PTHREAD_CANCEL_ENABLE;
  int old_type = 0;
  if (cancellable) pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old_type);
  long r;
  if (timed) {
    timespec ts{static_cast<time_t>(deadline_ns / 1000000000),
                static_cast<long>(deadline_ns % 1000000000)};
    r = sys::Call(SYS_futex, word, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, 2, &ts, nullptr,
                  FUTEX_BITSET_MATCH_ANY);
  } else {
    r = sys::Call(SYS_futex, word, FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 2, nullptr);
  }
  if (cancellable) pthread_setcanceltype(old_type, nullptr);
  // A cancellation request that interrupted the wait must act here, as it would at the kernel's
  // blocking call: natively the call never returns EINTR to a cancelled thread.
  if (r == -EINTR && cancellable) pthread_testcancel();
  return r;
}

}  // namespace

ThreadParker* ThreadParker::ForCurrentThread() {
  ThreadParker* p = t_parker;
  if (GONET_LIKELY(p != nullptr)) return p;
  p = ThreadParkerPool::Get();
  t_parker = p;
  t_owner.p = p;
  return p;
}

ThreadParker* ThreadParker::OfCurrentThreadIfAny() { return t_parker; }

void ThreadParker::NoteDumpInterrupt() { t_dump_interrupt = 1; }

void ThreadParker::Publish() {
  published_in_ = PublishParker(g_parkers.IndexOf(this), tid(), &permit_);
}

uint32_t ThreadParkerCount() { return g_parkers.allocated(); }

void ThreadParkersAfterForkChild() {
  g_parkers.ResetLockAfterFork();
  ThreadParker* mine = t_parker;
  if (mine != nullptr) mine->tid_.store(static_cast<int>(sys::Call(SYS_gettid)));
  uint32_t n = g_parkers.allocated();
  for (uint32_t i = 0; i < n; ++i) {
    ThreadParker* p = g_parkers.Get(i);
    if (p == nullptr || p == mine || p->tid() == 0) continue;
    p->ClearWait();
    p->tid_.store(0, std::memory_order_relaxed);
    p->published_in_ = nullptr;
    g_parkers.Free(p);
  }
}
ThreadParker* ThreadParkerAt(uint32_t i) { return g_parkers.Get(i); }

// permit_: 0 = no permit, 1 = permit, 2 = owner asleep in the futex. Unpark only pays for a
// FUTEX_WAKE when it finds 2, so waking a thread that has not gone to sleep yet costs no syscall.
ParkResult ThreadParker::Park(int64_t deadline_ns, WaitKind kind) {
  for (;;) {
    if (permit_.exchange(0, std::memory_order_acquire) == 1) return ParkResult::kUnparked;
    bool timed = deadline_ns != 0 || kind == WaitKind::kAlwaysEintr;
    int64_t d = deadline_ns;
    if (timed && d == 0) d = DeadlineAfter(kFarFutureNs);
    if (timed && d <= Nanotime()) return ParkResult::kTimedOut;
    uint32_t expect = 0;
    if (!permit_.compare_exchange_strong(expect, 2, std::memory_order_acq_rel)) continue;
    // Once per segment (a fork child has its own): the dumper must see this futex as gonet's.
    if (GONET_UNLIKELY(published_in_ != StatsSegment())) Publish();
    t_dump_interrupt = 0;
    long r = FutexWait(&permit_, d, timed);
    uint32_t after = permit_.exchange(0, std::memory_order_acquire);
    if (after == 1) return ParkResult::kUnparked;
    if (r == -EINTR && t_dump_interrupt) continue;  // gonet dump's request: not the program's
    if (r == -ETIMEDOUT) {
      if (deadline_ns != 0) return ParkResult::kTimedOut;
      continue;  // the far deadline expired: keep waiting
    }
    if (r == -EINTR && (kind == WaitKind::kAlwaysEintr || !timed || !AllHandlersRestart())) {
      return ParkResult::kInterrupted;
    }
    // Woken without a permit (spurious) or a restartable signal: sleep again.
  }
}

void ThreadParker::Unpark() {
  if (permit_.exchange(1, std::memory_order_release) == 2) {
    sys::Call(SYS_futex, &permit_, FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1);
  }
}

Parker* CurrentParker() {
  ParkerLookup lookup = g_lookup.load(std::memory_order_acquire);
  if (lookup != nullptr) {
    if (Parker* p = lookup()) return p;
  }
  return ThreadParker::ForCurrentThread();
}

void SetParkerLookup(ParkerLookup lookup) { g_lookup.store(lookup, std::memory_order_release); }

const void* PublishParker(uint32_t index, int tid, const void* futex) {
  ShmHeader* h = StatsSegment();
  if (h == nullptr) return nullptr;
  DumpArea* area = DumpAreaOf(h);
  if (tid != 0 && EnsureDumpHandler()) area->answering.store(1, std::memory_order_release);
  if (index < kDumpParkers) {
    DumpParker& e = area->parkers[index];
    if (tid == 0) {
      e.tid.store(0, std::memory_order_release);
    } else {
      // tid last: the dumper reads tid, then addr, then tid again.
      e.tid.store(0, std::memory_order_release);
      e.addr.store(reinterpret_cast<uint64_t>(futex), std::memory_order_release);
      e.tid.store(tid, std::memory_order_release);
    }
  }
  return h;
}

}  // namespace gonet::core
