#include "core/fibers/init_sync.h"

#include <linux/futex.h>
#include <sys/syscall.h>

#include <atomic>
#include <climits>

#include "core/base/sys.h"
#include "core/fibers/futex_table.h"

namespace gonet::core {
namespace {

// --- once ----------------------------------------------------------------------------------
constexpr uint32_t kOnceInProgress = 1;  // __PTHREAD_ONCE_INPROGRESS
constexpr uint32_t kOnceDone = 2;        // __PTHREAD_ONCE_DONE
constexpr uint32_t kForkGenStep = 4;     // __PTHREAD_ONCE_FORK_GEN_INCR
std::atomic<uint32_t> g_fork_generation{0};

std::atomic<uint32_t>* OnceWord(pthread_once_t* once) {
  return reinterpret_cast<std::atomic<uint32_t>*>(once);
}

// Resets the word and wakes the waiters if the initialiser unwinds instead of returning.
class OnceUnwindGuard {
 public:
  explicit OnceUnwindGuard(std::atomic<uint32_t>* word) : word_(word) {}
  ~OnceUnwindGuard() {
    if (word_ == nullptr) return;
    word_->store(0, std::memory_order_release);
    FutexWake(word_, INT_MAX);
  }
  void Done() { word_ = nullptr; }

 private:
  std::atomic<uint32_t>* word_;
};

// --- barrier: glibc 2.36's struct pthread_barrier --------------------------------------------
struct GlibcBarrier {
  std::atomic<uint32_t> in;
  std::atomic<uint32_t> current_round;
  uint32_t count;
  int shared;  // FUTEX_PRIVATE (0) or FUTEX_SHARED (128)
  std::atomic<uint32_t> out;
};
static_assert(sizeof(GlibcBarrier) <= sizeof(pthread_barrier_t));
constexpr uint32_t kBarrierInThreshold = UINT_MAX / 2;  // BARRIER_IN_THRESHOLD

// Sleeps while *word == seen.
void WaitWhile(std::atomic<uint32_t>* word, uint32_t seen) { FutexWait(word, seen, 0); }

// --- C++ guards: libstdc++'s (guard.cc, the futex variant) ------------------------------------
constexpr uint32_t kGuardDone = 1;           // _GLIBCXX_GUARD_BIT
constexpr uint32_t kGuardPending = 0x100;    // _GLIBCXX_GUARD_PENDING_BIT
constexpr uint32_t kGuardWaiting = 0x10000;  // _GLIBCXX_GUARD_WAITING_BIT

std::atomic<uint32_t>* GuardWord(uint64_t* guard) {
  return reinterpret_cast<std::atomic<uint32_t>*>(guard);
}

void GuardWakeAll(std::atomic<uint32_t>* word) {
  FutexWake(word, INT_MAX);
  // libstdc++'s own waiters sleep with shared futex ops, which a private wake does not reach.
  sys::Call(SYS_futex, word, FUTEX_WAKE, INT_MAX);
}

}  // namespace

void InitSyncAfterForkChild() { g_fork_generation.fetch_add(kForkGenStep); }

int OnceRun(pthread_once_t* once, void (*init)(), void (*before_late_init)(void*), void* ctx) {
  std::atomic<uint32_t>* word = OnceWord(once);
  bool waited = false;
  for (;;) {
    uint32_t v = word->load(std::memory_order_acquire);
    if (v & kOnceDone) return 0;
    uint32_t mine = g_fork_generation.load(std::memory_order_relaxed) | kOnceInProgress;
    if (!word->compare_exchange_weak(v, mine, std::memory_order_acquire)) continue;
    if ((v & kOnceInProgress) && v == mine) {  // another thread of this generation initialises
      WaitWhile(word, mine);
      waited = true;
      continue;
    }
    if (waited && before_late_init != nullptr) before_late_init(ctx);
    OnceUnwindGuard unwind(word);
    init();
    unwind.Done();
    word->store(kOnceDone, std::memory_order_release);
    FutexWake(word, INT_MAX);
    return 0;
  }
}

bool BarrierSupported(const pthread_barrier_t* b) {
  return reinterpret_cast<const GlibcBarrier*>(b)->shared == 0;
}

int BarrierWait(pthread_barrier_t* barrier) {
  auto* bar = reinterpret_cast<GlibcBarrier*>(barrier);
  uint32_t count = bar->count;
  uint32_t max_in_before_reset = kBarrierInThreshold - kBarrierInThreshold % count;
  uint32_t i;
  for (;;) {
    i = bar->in.fetch_add(1, std::memory_order_acq_rel) + 1;
    if (i <= max_in_before_reset) break;
    // Too many arrivals since the last reset: wait for the barrier to be reset, then retry.
    while (i > max_in_before_reset) {
      WaitWhile(&bar->in, i);
      i = bar->in.load(std::memory_order_relaxed);
    }
  }
  uint32_t cr = bar->current_round.load(std::memory_order_relaxed);
  bool leave = false;
  while (cr + count <= i) {
    // This arrival completes a round (maybe one others completed already): publish it.
    uint32_t newcr = i - i % count;
    if (bar->current_round.compare_exchange_weak(cr, newcr, std::memory_order_release,
                                                 std::memory_order_relaxed)) {
      cr = newcr;
      FutexWake(&bar->current_round, INT_MAX);
      leave = i <= cr;
      break;
    }
  }
  if (!leave) {
    while (i > cr) {
      WaitWhile(&bar->current_round, cr);
      cr = bar->current_round.load(std::memory_order_relaxed);
    }
  }
  // Acquire what the round's completer published (its CAS is a release); a load rather than a
  // fence, which ThreadSanitizer cannot model.
  (void)bar->current_round.load(std::memory_order_acquire);
  // acq_rel: the last one out acquires every other leaver's release before it resets.
  uint32_t o = bar->out.fetch_add(1, std::memory_order_acq_rel) + 1;
  if (o == max_in_before_reset) {
    bar->current_round.store(0, std::memory_order_relaxed);
    bar->out.store(0, std::memory_order_relaxed);
    bar->in.store(0, std::memory_order_release);
    FutexWake(&bar->in, INT_MAX);
  }
  return i % count == 0 ? PTHREAD_BARRIER_SERIAL_THREAD : 0;
}

int GuardAcquire(uint64_t* guard) {
  std::atomic<uint32_t>* word = GuardWord(guard);
  for (;;) {
    uint32_t expected = 0;
    if (word->compare_exchange_strong(expected, kGuardPending, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      return 1;
    }
    if (expected == kGuardDone) return 0;
    if (expected == kGuardPending) {
      uint32_t waiting = kGuardPending | kGuardWaiting;
      if (!word->compare_exchange_strong(expected, waiting, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
        if (expected == kGuardDone) return 0;
        if (expected == 0) continue;
      }
      expected = waiting;
    }
    WaitWhile(word, expected);
  }
}

void GuardRelease(uint64_t* guard) {
  std::atomic<uint32_t>* word = GuardWord(guard);
  if (word->exchange(kGuardDone, std::memory_order_acq_rel) & kGuardWaiting) GuardWakeAll(word);
}

void GuardAbort(uint64_t* guard) {
  std::atomic<uint32_t>* word = GuardWord(guard);
  if (word->exchange(0, std::memory_order_acq_rel) & kGuardWaiting) GuardWakeAll(word);
}

}  // namespace gonet::core
