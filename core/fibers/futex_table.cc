#include "core/fibers/futex_table.h"

#include <time.h>

#include <cerrno>
#include <climits>
#include <new>

#include "core/base/base.h"
#include "core/base/spinlock.h"
#include "core/base/sys.h"
#include "core/base/thread_annotations.h"
#include "core/fibers/fiber_scheduler.h"

namespace gonet::core {
namespace {

// One queued waiter. It lives on the waiter's stack for the length of its wait. A fiber parks on
// its parker; an OS thread (parker nullptr) sleeps in the kernel on the word itself (rule 3) and is
// queued only to keep its place in line: wakers go through the queue in arrival order, fibers and
// threads alike, as the kernel's own futex queue does. Without the place in line, a wake of one
// always went to a queued fiber first, and an OS thread waiting on a lock or condition variable
// that fibers keep taking could wait forever (python3 -m http.server in fibers mode: the main
// thread, which accepts, starved of the GIL by its handler fibers).
struct Waiter {
  const void* addr;
  uint32_t bitset;
  Parker* parker;  // nullptr: an OS thread asleep in the kernel on addr
  Waiter* next = nullptr;
  Waiter* prev = nullptr;
  std::atomic<bool> woken{false};
};

struct Bucket {
  Spinlock mu;
  Waiter* head GONET_GUARDED_BY(mu) = nullptr;
  Waiter* tail GONET_GUARDED_BY(mu) = nullptr;
  // OS threads gonet put to sleep in the kernel on a word of this bucket (rule 4, kOnlyGonets).
  // seq_cst pair: incremented before the kernel reads the word; a waker changes the word before
  // it reads this count. So either the waker sees the sleeper or the kernel sees the new word.
  std::atomic<int> kernel_sleepers{0};

  void Unlink(Waiter* w) GONET_REQUIRES(mu) {
    (w->prev ? w->prev->next : head) = w->next;
    (w->next ? w->next->prev : tail) = w->prev;
    w->next = w->prev = nullptr;
  }
};

constexpr int kBuckets = 251;  // prime, as Go's semTabSize
Bucket g_table[kBuckets];

Bucket& BucketFor(const void* addr) {
  return g_table[(reinterpret_cast<uintptr_t>(addr) >> 2) % kBuckets];
}

// Rule 3: an OS thread sleeps in the kernel on the word itself, as glibc's waiters do, with its
// place in line in the bucket (Waiter). It leaves the line itself, whoever woke it: a kernel wake
// from the line may reach another sleeper on the word, whose own entry then leaves instead, so
// the line always holds one entry per OS thread still asleep or about to sleep.
int KernelWait(Bucket& b, const std::atomic<uint32_t>* addr, uint32_t expected, int64_t deadline_ns,
               WaitKind kind, uint32_t bitset) {
  timespec abs{};
  if (deadline_ns != 0) {
    abs.tv_sec = deadline_ns / 1000000000;
    abs.tv_nsec = deadline_ns % 1000000000;
  }
  Waiter w{addr, bitset, nullptr};
  {
    SpinGuard g(b.mu);
    if (addr->load(std::memory_order_seq_cst) != expected) return EAGAIN;
    w.prev = b.tail;
    (b.tail ? b.tail->next : b.head) = &w;
    b.tail = &w;
  }
  b.kernel_sleepers.fetch_add(1, std::memory_order_seq_cst);
  long r;
  for (;;) {
    // FUTEX_WAIT_BITSET without FUTEX_CLOCK_REALTIME: an absolute CLOCK_MONOTONIC deadline.
    r = sys::Call(SYS_futex, addr, FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG, expected,
                  deadline_ns != 0 ? &abs : nullptr, nullptr, bitset);
    if (r != -EINTR || kind == WaitKind::kAlwaysEintr) break;
    if (addr->load(std::memory_order_seq_cst) != expected) {
      r = 0;
      break;
    }
  }
  b.kernel_sleepers.fetch_sub(1, std::memory_order_seq_cst);
  {
    SpinGuard g(b.mu);
    b.Unlink(&w);
  }
  return r == 0 ? 0 : static_cast<int>(-r);  // EAGAIN, ETIMEDOUT, EINTR as the kernel says
}

}  // namespace

void FutexTableAfterForkChild() {
  for (Bucket& b : g_table) {
    new (&b.mu) Spinlock();
    b.head = b.tail = nullptr;
    b.kernel_sleepers.store(0, std::memory_order_relaxed);
  }
}

namespace {

int Wait(const std::atomic<uint32_t>* addr, uint32_t expected, int64_t deadline_ns, WaitKind kind,
         uint32_t bitset, bool cancel_point) {
  Bucket& b = BucketFor(addr);
  FiberTask* t = FiberScheduler::Current();
  if (t == nullptr) return KernelWait(b, addr, expected, deadline_ns, kind, bitset);
  // The waiter is linked in its bucket until it leaves below: never unwound out of its park. A
  // cancellation point leaves with ECANCELED instead, and its caller acts.
  FiberTask::NoCancelScope no_cancel(t);
  if (cancel_point && no_cancel.CancelDueInside()) return ECANCELED;
  Waiter w{addr, bitset, t};
  {
    SpinGuard g(b.mu);
    if (addr->load(std::memory_order_seq_cst) != expected) return EAGAIN;
    w.prev = b.tail;
    (b.tail ? b.tail->next : b.head) = &w;
    b.tail = &w;
  }
  for (;;) {
    ParkResult r = w.parker->Park(deadline_ns, kind);
    if (w.woken.load(std::memory_order_acquire)) return 0;
    bool cancel = cancel_point && no_cancel.CancelDueInside();  // pthread_cancel's Unpark
    if (r == ParkResult::kUnparked && !cancel) continue;        // a stale permit: keep waiting
    SpinGuard g(b.mu);
    // Woken while leaving: the wake is this waiter's (cancellation acts at the next point, so
    // the wake is not lost to the waiters behind it).
    if (w.woken.load(std::memory_order_acquire)) return 0;
    b.Unlink(&w);
    if (cancel) return ECANCELED;
    if (r == ParkResult::kInterrupted) return EINTR;
    return r == ParkResult::kTimedOut ? ETIMEDOUT : 0;
  }
}

}  // namespace

int FutexWait(const std::atomic<uint32_t>* addr, uint32_t expected, int64_t deadline_ns,
              WaitKind kind, uint32_t bitset) {
  return Wait(addr, expected, deadline_ns, kind, bitset, false);
}

int FutexWaitCancellable(const std::atomic<uint32_t>* addr, uint32_t expected, int64_t deadline_ns,
                         WaitKind kind) {
  return Wait(addr, expected, deadline_ns, kind, kFutexMatchAny, true);
}

int FutexWake(const void* addr, int n, KernelSleepers sleepers, uint32_t bitset) {
  if (n <= 0) return 0;
  Bucket& b = BucketFor(addr);
  int woken = 0;
  // A wake of everyone needs no order: the OS threads are woken by one kernel call below.
  const bool in_order = n != INT32_MAX && n != INT_MAX;
  {
    SpinGuard g(b.mu);
    for (Waiter* w = b.head; w != nullptr && woken < n;) {
      Waiter* next = w->next;
      if (w->parker == nullptr) {
        // An OS thread's place in line: wake one kernel sleeper on the word now, before the
        // fibers queued behind it. It stays queued (it leaves by itself); 0 means no sleeper yet
        // (it is about to sleep and will find the word changed), so the line goes on.
        if (in_order && w->addr == addr && (w->bitset & bitset) != 0) {
          long r = sys::Call(SYS_futex, addr, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, 1, nullptr,
                             nullptr, bitset);
          if (r > 0) ++woken;
        }
        w = next;
        continue;
      }
      if (w->addr == addr && (w->bitset & bitset) != 0) {
        b.Unlink(w);
        // The waiter may return, and its frame die, once woken is visible: read the parker first
        // (parkers are type-stable, so the Unpark after that is safe).
        Parker* p = w->parker;
        w->woken.store(true, std::memory_order_release);
        p->Unpark();
        ++woken;
      }
      w = next;
    }
  }
  if (woken < n && (sleepers == KernelSleepers::kMayHaveGlibcSleepers ||
                    b.kernel_sleepers.load(std::memory_order_seq_cst) != 0)) {
    long r = sys::Call(SYS_futex, addr, FUTEX_WAKE_BITSET | FUTEX_PRIVATE_FLAG, n - woken, nullptr,
                       nullptr, bitset);
    if (r > 0) woken += static_cast<int>(r);
  }
  return woken;
}

int FutexQueued(const void* addr) {
  Bucket& b = BucketFor(addr);
  int n = 0;
  SpinGuard g(b.mu);
  for (Waiter* w = b.head; w != nullptr; w = w->next) n += w->addr == addr && w->parker != nullptr;
  return n;
}

}  // namespace gonet::core
