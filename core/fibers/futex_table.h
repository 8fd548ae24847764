// The fiber-aware futex table: one address-keyed wait queue (Go's semtable, a userspace futex) for
// every word a fiber may wait on: gonet's mutexes, condition variables, rwlocks and semaphores
// (fiber_sync.h), and the private futexes programs reach through syscall(SYS_futex) (Rust's std,
// libstdc++'s std::atomic::wait; shim/futex.cc).
//
// THE RULE (bit-compatible with glibc in both directions):
//   1. The word is the truth. It lives in the program's object, in glibc's own layout and, where
//      glibc's protocol is followed (mutex __lock, sem_t's value, a program's futex), with glibc's
//      meaning, so a waiter sleeping inside glibc sleeps in the kernel on this same word.
//   2. A fiber waits here: FutexWait queues it only if the word still holds the expected value,
//      checked under the bucket lock that FutexWake takes (no wake-up is lost), then parks it;
//      its worker runs other fibers.
//   3. An OS thread (the main thread, an offload helper, any thread that is not a fiber) waits in
//      the kernel, FUTEX_WAIT_PRIVATE on the word, exactly where glibc's own waiters sleep, so
//      glibc's wakers wake it as they would natively. It also takes its place in the bucket's
//      line, so that gonet's wakers serve it in its turn (rule 4).
//   4. A waker serves the line in arrival order, fibers and OS threads alike, as the kernel serves
//      its own futex queue: a queued fiber is unparked, and an OS thread's place is served by
//      waking one kernel sleeper on the word (FUTEX_WAKE_PRIVATE, 1). A wake of one that always
//      preferred fibers starved an OS thread for as long as fibers kept queuing (the main thread
//      of python3 -m http.server in fibers mode, waiting for the GIL, stopped accepting). A wake
//      of everyone wakes the fibers and then every kernel sleeper in one call. Then it asks the
//      kernel for what is left of n, since a glibc sleeper may be there and the table cannot know
//      (kMayHaveGlibcSleepers). A word whose protocol is gonet's alone (condvar, rwlock) has no
//      glibc sleepers; its kernel wake is skipped unless an OS thread of gonet's sleeps on the
//      bucket (counted). Callers gate the whole call on their own "someone may wait" state
//      (mutex 2, sem nwaiters, condvar waiters), so an uncontended unlock makes no call at all.
//   5. The one thing a kernel wake cannot reach is a fiber queued here. So every entry that can
//      wake a word fibers wait on must be gonet's: each interposed name with all its symbol
//      versions and exported aliases (__pthread_mutex_unlock, ...), and C11's mtx_/cnd_ entries,
//      which glibc routes to internal aliases that bypass the PLT.
//
// LOCKING (core/README.md, lock 2): one spinlock per bucket, held for list edits and for the
// Unparks of a wake (DirLock::WakeAll does the same), which take a worker's run-queue lock
// (lock 3) for a fiber, and for the FUTEX_WAKE that serves an OS thread's place in line (it never
// blocks); never across a park or a blocking syscall.
#pragma once

#include <linux/futex.h>

#include <atomic>
#include <cstdint>

#include "core/poll/parker.h"

namespace gonet::core {

constexpr uint32_t kFutexMatchAny = FUTEX_BITSET_MATCH_ANY;

// Waits while *addr == expected, for a wake whose bitset intersects `bitset`.
// Returns 0 (woken, maybe spuriously: callers loop), EAGAIN (*addr != expected when checked),
// ETIMEDOUT (deadline_ns passed; CLOCK_MONOTONIC, 0 = none), or EINTR: an OS thread's kernel wait
// was interrupted by a signal handler and `kind` is kAlwaysEintr (kRestartable waits resume;
// fibers are never interrupted).
int FutexWait(const std::atomic<uint32_t>* addr, uint32_t expected, int64_t deadline_ns,
              WaitKind kind = WaitKind::kRestartable, uint32_t bitset = kFutexMatchAny);

// FutexWait for a wait that is a POSIX cancellation point (a condition wait, sem_wait): as
// FutexWait, and ECANCELED when a cancellation of the calling fiber is due, before it queues or
// while parked. The waiter has then left the queue, having consumed no wake; the caller restores
// what the wait changed (re-takes the mutex, unregisters) and acts (FiberTask::ActOnCancel).
// An OS thread's wait is FutexWait's.
int FutexWaitCancellable(const std::atomic<uint32_t>* addr, uint32_t expected, int64_t deadline_ns,
                         WaitKind kind = WaitKind::kRestartable);
enum class KernelSleepers {
  kMayHaveGlibcSleepers,  // glibc's protocol: always ask the kernel for the rest of n
  kOnlyGonets,            // gonet's protocol alone: ask only if gonet put an OS thread there
};
// Wakes up to n waiters of addr whose bitset intersects `bitset`: queued fibers first, then
// kernel sleepers (rule 4). Returns how many were woken.
int FutexWake(const void* addr, int n,
              KernelSleepers sleepers = KernelSleepers::kMayHaveGlibcSleepers,
              uint32_t bitset = kFutexMatchAny);

// Fibers queued on addr now (tests and gonet dump); OS threads in line are not counted.
int FutexQueued(const void* addr);

// fork child: forget other threads' waiters and any bucket lock they held.
void FutexTableAfterForkChild();

}  // namespace gonet::core
