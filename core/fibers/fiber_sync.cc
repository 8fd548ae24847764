#include "core/fibers/fiber_sync.h"

#include <limits.h>
#include <unistd.h>

#include <new>

#include "core/base/base.h"
#include "core/base/spinlock.h"
#include "core/base/sys.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/futex_table.h"
#include "core/fibers/init_sync.h"
#include "core/poll/parker.h"

namespace gonet::core {
namespace {

// glibc's mutex __kind bits (nptl/pthreadP.h).
constexpr int kKindMask = 3;  // PTHREAD_MUTEX_KIND_MASK_NP
constexpr int kRobust = 16, kPrioInherit = 32, kPrioProtect = 64, kPshared = 128;
constexpr unsigned kCondShared = 1;          // __PTHREAD_COND_SHARED_MASK in __wrefs
constexpr unsigned kCondClockMonotonic = 2;  // __PTHREAD_COND_CLOCK_MONOTONIC_MASK in __wrefs

__thread uint32_t t_tid __attribute__((tls_model("initial-exec"))) = 0;

std::atomic_ref<int> Lock(pthread_mutex_t* m) { return std::atomic_ref<int>(m->__data.__lock); }
std::atomic_ref<int> Owner(pthread_mutex_t* m) { return std::atomic_ref<int>(m->__data.__owner); }
int Type(const pthread_mutex_t* m) { return m->__data.__kind & kKindMask; }

std::atomic<uint32_t>* CondSeq(pthread_cond_t* c) {
  return reinterpret_cast<std::atomic<uint32_t>*>(&c->__data.__wseq);
}
std::atomic<uint32_t>* CondWaiters(pthread_cond_t* c) {
  return reinterpret_cast<std::atomic<uint32_t>*>(&c->__data.__g1_start);
}

}  // namespace

// Waiters of other threads are gone in the child, and a bucket lock they held would never be
// released. (A waiter of the forking thread cannot be queued: it is running fork.)
void FiberSyncAfterForkChild() {
  FutexTableAfterForkChild();
  InitSyncAfterForkChild();
  t_tid = 0;  // the child has its own tid
}

uint32_t CurrentOwnerId() {
  if (FiberTask* t = FiberScheduler::Current()) return t->id();
  if (GONET_UNLIKELY(t_tid == 0)) t_tid = static_cast<uint32_t>(sys::Call(SYS_gettid));
  return t_tid;
}

bool MutexSupported(const pthread_mutex_t* m) {
  return (m->__data.__kind & (kRobust | kPrioInherit | kPrioProtect | kPshared)) == 0;
}

int MutexTryLock(pthread_mutex_t* m) {
  uint32_t me = CurrentOwnerId();
  if (Type(m) == PTHREAD_MUTEX_RECURSIVE && static_cast<uint32_t>(Owner(m).load()) == me) {
    if (m->__data.__count + 1 == 0) return EAGAIN;
    ++m->__data.__count;
    return 0;
  }
  int expect = 0;
  if (!Lock(m).compare_exchange_strong(expect, 1, std::memory_order_acquire)) return EBUSY;
  Owner(m).store(static_cast<int>(me), std::memory_order_relaxed);
  m->__data.__count = 1;
  ++m->__data.__nusers;  // as glibc: pthread_mutex_destroy answers EBUSY while it is non-zero
  return 0;
}

int MutexLock(pthread_mutex_t* m, int64_t deadline_ns) {
  uint32_t me = CurrentOwnerId();
  int type = Type(m);
  if (type != PTHREAD_MUTEX_NORMAL && static_cast<uint32_t>(Owner(m).load()) == me &&
      Lock(m).load() != 0) {
    if (type == PTHREAD_MUTEX_ERRORCHECK) return EDEADLK;
    if (type == PTHREAD_MUTEX_RECURSIVE) {
      if (m->__data.__count + 1 == 0) return EAGAIN;
      ++m->__data.__count;
      return 0;
    }
  }
  std::atomic_ref<int> lock = Lock(m);
  int c = 0;
  if (!lock.compare_exchange_strong(c, 1, std::memory_order_acquire)) {
    if (c != 2) c = lock.exchange(2, std::memory_order_acquire);
    ScopedWaitNote note(CurrentParker(), kWaitMutex);  // gonet dump: what the waiter waits on
    while (c != 0) {
      auto* word = reinterpret_cast<std::atomic<uint32_t>*>(&m->__data.__lock);
      if (FutexWait(word, 2, deadline_ns) == ETIMEDOUT) return ETIMEDOUT;
      c = lock.exchange(2, std::memory_order_acquire);
    }
  }
  Owner(m).store(static_cast<int>(me), std::memory_order_relaxed);
  m->__data.__count = 1;
  ++m->__data.__nusers;
  return 0;
}

int MutexUnlock(pthread_mutex_t* m) {
  int type = Type(m);
  if (type == PTHREAD_MUTEX_ERRORCHECK || type == PTHREAD_MUTEX_RECURSIVE) {
    if (Lock(m).load() == 0 || static_cast<uint32_t>(Owner(m).load()) != CurrentOwnerId()) {
      return EPERM;
    }
    if (type == PTHREAD_MUTEX_RECURSIVE && --m->__data.__count != 0) return 0;
  }
  Owner(m).store(0, std::memory_order_relaxed);
  --m->__data.__nusers;
  if (Lock(m).fetch_sub(1, std::memory_order_release) != 1) {
    Lock(m).store(0, std::memory_order_release);
    FutexWake(&m->__data.__lock, 1);  // a fiber, or a sleeper in glibc's lll_lock_wait
  }
  return 0;
}

clockid_t CondClock(const pthread_cond_t* c) {
  return (c->__data.__wrefs & kCondClockMonotonic) ? CLOCK_MONOTONIC : CLOCK_REALTIME;
}

int64_t MonotonicDeadline(clockid_t clock, const timespec& abstime) {
  int64_t abs = TimespecNs(abstime);
  if (clock == CLOCK_MONOTONIC) return abs > 0 ? abs : 1;
  timespec now;
  clock_gettime(clock, &now);
  int64_t left = abs - TimespecNs(now);
  if (left <= 0) return 1;  // already past: a deadline in the past, not "none"
  return DeadlineAfter(left);
}

bool CondSupported(const pthread_cond_t* c) { return (c->__data.__wrefs & kCondShared) == 0; }

int CondWait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* abstime,
             const GlibcMutexOps* glibc) {
  int64_t deadline = abstime != nullptr ? MonotonicDeadline(clock, *abstime) : 0;
  std::atomic<uint32_t>* seq = CondSeq(c);
  std::atomic<uint32_t>* waiters = CondWaiters(c);
  // A mutex gonet leaves to glibc is released and re-taken by glibc's own code, which keeps its
  // robust list, priority and owner as glibc's cond wait would (one condvar, one protocol: the
  // condvar's is gonet's whatever the mutex; fiber_sync.h).
  bool gonets = MutexSupported(m);
  GONET_DCHECK(gonets || glibc != nullptr, "CondWait: a mutex left to glibc needs glibc's ops");
  // seq_cst pair: waiters++ then read seq here; seq++ then read waiters in the signaller. A
  // signaller that saw no waiter bumped seq before our read, which we then wait past: that signal
  // came before this wait began, as the mutex the signaller held makes it.
  waiters->fetch_add(1, std::memory_order_seq_cst);
  uint32_t seen = seq->load(std::memory_order_seq_cst);
  unsigned count = m->__data.__count;  // gonet's recursive mutex is released completely
  bool recursive = gonets && Type(m) == PTHREAD_MUTEX_RECURSIVE;
  if (recursive) m->__data.__count = 1;
  int r = gonets ? MutexUnlock(m) : glibc->unlock(m);
  if (r != 0) {
    if (recursive) m->__data.__count = count;
    waiters->fetch_sub(1, std::memory_order_seq_cst);
    return r;
  }
  int w;
  {
    ScopedWaitNote note(CurrentParker(), kWaitCond);
    w = FutexWaitCancellable(seq, seen, deadline);
  }
  waiters->fetch_sub(1, std::memory_order_seq_cst);
  // Cancelled (a fiber): as glibc's __condvar_cleanup_waiting, the mutex is taken back before
  // the unwind, so the program's cleanup handler finds it held and typically unlocks it.
  if (!gonets) {
    // As glibc's pthread_cond_wait: the re-take's error (a robust mutex's dead owner) wins.
    int l = glibc->lock(m);
    if (w == ECANCELED) FiberScheduler::Current()->ActOnCancel();
    if (l != 0) return l;
    return w == ETIMEDOUT ? ETIMEDOUT : 0;
  }
  MutexLock(m, 0);
  if (recursive) m->__data.__count = count;
  if (w == ECANCELED) FiberScheduler::Current()->ActOnCancel();
  return w == ETIMEDOUT ? ETIMEDOUT : 0;
}

int CondSignal(pthread_cond_t* c) {
  CondSeq(c)->fetch_add(1, std::memory_order_seq_cst);
  if (CondWaiters(c)->load(std::memory_order_seq_cst) != 0)
    FutexWake(CondSeq(c), 1, KernelSleepers::kOnlyGonets);

  return 0;
}

int CondBroadcast(pthread_cond_t* c) {
  CondSeq(c)->fetch_add(1, std::memory_order_seq_cst);
  if (CondWaiters(c)->load(std::memory_order_seq_cst) != 0) {
    FutexWake(CondSeq(c), INT32_MAX, KernelSleepers::kOnlyGonets);
  }
  return 0;
}

namespace {
// glibc's struct new_sem on 64-bit (nptl/semaphoreP.h, __HAVE_64B_ATOMICS): one 64-bit word,
// the value in its low half (the futex word waiters sleep on) and the number of waiters in its
// high half; then the futex private flag.
struct GlibcSem {
  std::atomic<uint64_t> data;
  int private_flag;  // glibc's LLL_PRIVATE (0) for sem_init(s, 0, n), LLL_SHARED (128) otherwise
  int pad;
};
static_assert(sizeof(GlibcSem) <= sizeof(sem_t));
constexpr int kLllPrivate = 0;
constexpr int kSemNwaitersShift = 32;  // SEM_NWAITERS_SHIFT
constexpr uint64_t kSemOneWaiter = uint64_t{1} << kSemNwaitersShift;
constexpr uint64_t kSemValueMask = 0xffffffff;  // SEM_VALUE_MASK
std::atomic<uint64_t>& SemData(sem_t* s) { return reinterpret_cast<GlibcSem*>(s)->data; }
// The value half, little-endian: the word glibc's waiters FUTEX_WAIT on (SEM_VALUE_OFFSET 0).
std::atomic<uint32_t>* SemValue(sem_t* s) {
  return reinterpret_cast<std::atomic<uint32_t>*>(&reinterpret_cast<GlibcSem*>(s)->data);
}
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__);
}  // namespace

bool SemSupported(const sem_t* s) {
  return reinterpret_cast<const GlibcSem*>(s)->private_flag == kLllPrivate;
}

int SemTryWait(sem_t* s) {
  std::atomic<uint64_t>& data = SemData(s);
  uint64_t d = data.load(std::memory_order_relaxed);
  while ((d & kSemValueMask) > 0) {
    if (data.compare_exchange_weak(d, d - 1, std::memory_order_acquire)) return 0;
  }
  return EAGAIN;
}

// glibc's __new_sem_wait_slow, with the futex wait a fiber park: register as a waiter in the high
// half (so any sem_post, glibc's or gonet's, knows to wake), then take a token and unregister in
// one CAS, or sleep while the value is 0. As glibc, a timeout or an interruption returns at once.
int SemWait(sem_t* s, int64_t deadline_ns) {
  // As glibc: sem_wait and sem_timedwait "shall" be cancellation points, token or not.
  if (FiberTask* t = FiberScheduler::Current()) t->ActOnCancel();
  if (SemTryWait(s) == 0) return 0;
  ScopedWaitNote note(CurrentParker(), kWaitSem);
  std::atomic<uint64_t>& data = SemData(s);
  uint64_t d = data.fetch_add(kSemOneWaiter, std::memory_order_seq_cst) + kSemOneWaiter;
  for (;;) {
    if ((d & kSemValueMask) > 0) {
      if (data.compare_exchange_weak(d, d - 1 - kSemOneWaiter, std::memory_order_acquire)) return 0;
      continue;
    }
    // sem_wait is never restarted after a signal handler, SA_RESTART or not (signal(7)).
    int r = FutexWaitCancellable(SemValue(s), 0, deadline_ns, WaitKind::kAlwaysEintr);
    if (r == ETIMEDOUT || r == EINTR || r == ECANCELED) {
      data.fetch_sub(kSemOneWaiter, std::memory_order_relaxed);
      if (r == ECANCELED) FiberScheduler::Current()->ActOnCancel();  // unregistered: unwind
      return r;
    }
    d = data.load(std::memory_order_relaxed);
  }
}

// glibc's __new_sem_post: one CAS adds the token and reads the waiter count in the same word, so a
// waiter registered before it is seen, and one registering after sees the token.
int SemPost(sem_t* s) {
  std::atomic<uint64_t>& data = SemData(s);
  uint64_t d = data.load(std::memory_order_relaxed);
  do {
    if ((d & kSemValueMask) == static_cast<uint32_t>(SEM_VALUE_MAX)) return EOVERFLOW;
  } while (!data.compare_exchange_weak(d, d + 1, std::memory_order_seq_cst));
  if ((d >> kSemNwaitersShift) > 0) FutexWake(SemValue(s), 1);  // a fiber, or glibc's sleeper
  return 0;
}

namespace {
// __readers as gonet uses it: glibc's reader count (in units of 1 << PTHREAD_RWLOCK_READER_SHIFT)
// and gonet's writer bit on top. glibc's own flags stay meaningful in the low bits, because a lock
// may have been used by glibc before gonet's mode was set (GObject's constructor takes its type
// lock for writing before libgonet's constructor runs): glibc leaves an unlocked lock in its write
// phase (__readers == PTHREAD_RWLOCK_WRPHASE), which a count in the low bits would read as one
// reader held for ever (GLib's socket-listener, task, contexts... hung in g_type_register_static).
constexpr uint32_t kRwWriter = uint32_t{1} << 31;
constexpr uint32_t kGlibcWrPhase = 1;   // PTHREAD_RWLOCK_WRPHASE: no meaning once unlocked
constexpr uint32_t kGlibcWrLocked = 2;  // PTHREAD_RWLOCK_WRLOCKED: held by a glibc writer
constexpr uint32_t kGlibcFlags = 7;     // WRPHASE | WRLOCKED | RWAITING
constexpr uint32_t kRwReader = 8;       // 1 << PTHREAD_RWLOCK_READER_SHIFT
std::atomic<uint32_t>* RwState(pthread_rwlock_t* l) {
  return reinterpret_cast<std::atomic<uint32_t>*>(&l->__data.__readers);
}
std::atomic<uint32_t>* RwWaiters(pthread_rwlock_t* l) {
  return reinterpret_cast<std::atomic<uint32_t>*>(&l->__data.__writers);
}
std::atomic_ref<int> RwWriter(pthread_rwlock_t* l) {
  return std::atomic_ref<int>(l->__data.__cur_writer);
}
bool WriteLocked(uint32_t s) { return (s & (kRwWriter | kGlibcWrLocked)) != 0; }
bool Unlocked(uint32_t s) { return (s & ~kGlibcWrPhase) == 0; }
bool HoldsWrite(pthread_rwlock_t* l) {
  return (RwState(l)->load() & kRwWriter) &&
         static_cast<uint32_t>(RwWriter(l).load()) == CurrentOwnerId();
}
// Sleeps while the state still reads `seen`. seq_cst pair: waiters++ then state load here;
// state store then waiters load in RwUnlock.
int RwWait(pthread_rwlock_t* l, uint32_t seen, int64_t deadline_ns) {
  RwWaiters(l)->fetch_add(1, std::memory_order_seq_cst);
  int r = 0;
  if (RwState(l)->load(std::memory_order_seq_cst) == seen) {
    ScopedWaitNote note(CurrentParker(), kWaitRwlock);
    r = FutexWait(RwState(l), seen, deadline_ns);
  }
  RwWaiters(l)->fetch_sub(1, std::memory_order_seq_cst);
  return r;
}
}  // namespace

bool RwLockSupported(const pthread_rwlock_t* l) { return l->__data.__shared == 0; }

int RwTryRead(pthread_rwlock_t* l) {
  std::atomic<uint32_t>* state = RwState(l);
  uint32_t s = state->load(std::memory_order_relaxed);
  while (!WriteLocked(s)) {
    if ((s & ~kGlibcFlags) + kRwReader >= kRwWriter) return EAGAIN;  // too many readers
    // A glibc write phase ends with the first reader, as in glibc.
    uint32_t next = (s & ~kGlibcWrPhase) + kRwReader;
    if (state->compare_exchange_weak(s, next, std::memory_order_acquire)) return 0;
  }
  return EBUSY;
}

int RwTryWrite(pthread_rwlock_t* l) {
  std::atomic<uint32_t>* state = RwState(l);
  uint32_t s = state->load(std::memory_order_relaxed);
  while (Unlocked(s)) {
    if (state->compare_exchange_weak(s, kRwWriter, std::memory_order_acquire)) {
      RwWriter(l).store(static_cast<int>(CurrentOwnerId()), std::memory_order_relaxed);
      return 0;
    }
  }
  return EBUSY;
}

int RwLockRead(pthread_rwlock_t* l, int64_t deadline_ns) {
  if (HoldsWrite(l)) return EDEADLK;
  for (;;) {
    int r = RwTryRead(l);
    if (r != EBUSY) return r;
    uint32_t seen = RwState(l)->load(std::memory_order_seq_cst);
    if (!WriteLocked(seen)) continue;
    if (RwWait(l, seen, deadline_ns) == ETIMEDOUT) {
      r = RwTryRead(l);
      return r == EBUSY ? ETIMEDOUT : r;
    }
  }
}

int RwLockWrite(pthread_rwlock_t* l, int64_t deadline_ns) {
  if (HoldsWrite(l)) return EDEADLK;
  for (;;) {
    if (RwTryWrite(l) == 0) return 0;
    uint32_t seen = RwState(l)->load(std::memory_order_seq_cst);
    if (Unlocked(seen)) continue;
    if (RwWait(l, seen, deadline_ns) == ETIMEDOUT) {
      return RwTryWrite(l) == 0 ? 0 : ETIMEDOUT;
    }
  }
}

int RwUnlock(pthread_rwlock_t* l) {
  std::atomic<uint32_t>* state = RwState(l);
  uint32_t s = state->load(std::memory_order_relaxed);
  bool wake;
  if (WriteLocked(s)) {  // gonet's writer, or glibc's from before gonet's mode was set
    RwWriter(l).store(0, std::memory_order_relaxed);
    state->store(0, std::memory_order_seq_cst);
    wake = true;
  } else {
    uint32_t next;
    do {
      if ((s & ~kGlibcFlags) == 0) return EPERM;
      next = s - kRwReader;
      // The last reader leaves the lock unlocked, without flags a glibc reader may have left.
      if ((next & ~kGlibcFlags) == 0) next = 0;
    } while (!state->compare_exchange_weak(s, next, std::memory_order_seq_cst));
    wake = next == 0;
  }
  // Everyone waiting re-checks: readers all get in, or one writer does.
  if (wake && RwWaiters(l)->load(std::memory_order_seq_cst) != 0) {
    FutexWake(state, INT32_MAX, KernelSleepers::kOnlyGonets);
  }
  return 0;
}

bool FiberSleepUntil(int64_t deadline_ns) {
  FiberTask* t = FiberScheduler::Current();
  ScopedWaitNote note(t, kWaitSleep);
  while (Nanotime() < deadline_ns) {
    // A signal handler ends a sleep whatever its SA_RESTART (signal(7)).
    if (t->Park(deadline_ns, WaitKind::kAlwaysEintr) == ParkResult::kInterrupted) return true;
  }
  return false;
}

}  // namespace gonet::core
