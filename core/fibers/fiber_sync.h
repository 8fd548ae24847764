// Fibers mode's mutexes, condition variables, rwlocks, semaphores and sleeps, for every thread of
// the process.
//
// BIT-COMPATIBLE WITH GLIBC, BOTH WAYS (the rule; its mechanism is core/fibers/futex_table.h):
// the program's own pthread_mutex_t / pthread_cond_t / pthread_rwlock_t / sem_t storage holds
// the state, in glibc's layout. A fiber that must wait parks in the futex table on the very word
// glibc's waiters sleep on; an OS thread (the main thread, an offload helper) sleeps in the
// kernel on that word, as glibc would put it; every wake of gonet's wakes both the table and the
// kernel. So a waiter sleeping inside glibc (an entry gonet does not take over, a non-fiber
// thread) is woken by gonet's wakers, and, because every waking entry is gonet's (all versions
// and aliases interposed), gonet's waiters by every waker. Per primitive:
//   - mutex: glibc's own protocol (Drepper, "Futexes are tricky", mutex #2, as nptl's lll_lock):
//     __lock is 0 free, 1 locked, 2 locked with possible waiters; unlocking a 2 wakes one.
//     __owner holds the owner's id (a kernel tid, or a FiberTask id, which never is one),
//     __count the recursion depth, __nusers the holders as glibc counts them (its
//     pthread_mutex_destroy says EBUSY while non-zero); __kind is only read. A glibc locker
//     sleeping in lll_lock_wait is woken by gonet's unlock and vice versa.
//   - semaphore: glibc's 64-bit new_sem: the value in the low half of the first word (the futex
//     word), the waiter count in the high half; waiters register there, as glibc's do, so
//     either side's sem_post knows to wake, and sem_getvalue/sem_destroy stay glibc's.
//   - condition variable and rwlock: gonet's own protocols on glibc's storage (below), so every
//     entry that waits or wakes on them is gonet's while fibers mode runs (C11's cnd_* too); an
//     OS thread of gonet's still sleeps in the kernel on the word, where a wake finds it.
// Robust, priority-inheritance/protect and process-shared mutexes, process-shared rwlocks and
// named or process-shared semaphores are left to glibc (the *Supported checks): they block the
// worker, a documented limit.
//
// ONE CONDITION VARIABLE, ONE PROTOCOL, chosen by the condvar alone (CondSupported: its
// process-shared attribute, fixed at pthread_cond_init), never by the mutex a wait passes:
//   - a process-private condvar is gonet's for every wait and every wake, whatever the mutex.
//     With a mutex gonet leaves to glibc (robust, PI/PP, process-shared: MutexSupported false),
//     CondWait releases and re-takes it with glibc's real pthread_mutex_unlock/lock (the caller
//     passes them: GlibcMutexOps) and parks on the condvar in gonet's table like any other wait;
//     the re-take's EOWNERDEAD/ENOTRECOVERABLE is the wait's answer, as in glibc.
//   - a process-shared condvar is glibc's for every wait and every wake (the shim calls glibc's
//     own pthread_cond_*): its waiters and wakers may live in another process, which gonet's
//     table and its private futex wakes cannot reach, and which may not run gonet at all.
// Why not the other way (leave a wait with such a mutex to glibc and have signal/broadcast find
// glibc's waiters and forward to glibc)? A condvar's two protocols read the same words with
// different meanings (gonet counts signals in __wseq, glibc its waiters' positions and group), so
// a condvar used with a default mutex and later with a robust one (POSIX allows it), or a signal
// that cannot tell whose state it reads, would corrupt glibc's groups or lose a wake; a mixed
// condvar has no single truth to check under one lock. Keying the protocol on the mutex is what
// lost issue 13's wake-ups: glibc's waiter sleeps on __g_signals, which gonet's signal never
// touches. Deciding by the condvar keeps every waiter and every waker of one condvar on one
// protocol, for fibers, OS threads and glibc's own callers alike (glibc calls no program condvar
// behind the PLT but C11's cnd_*, which gonet interposes). The mix left: a process-shared condvar
// waited on with a process-private mutex that gonet drives; glibc's wait then releases that mutex
// with its own unlock, which wakes a thread sleeping in the kernel but not a fiber parked on the
// mutex (futex_table.h, rule 5). Such a pairing only makes sense inside one process.
//
// Condition variable: the low 32 bits of __wseq count signals (a waiter sleeps while it still
// holds the value it read before unlocking the mutex); the next word counts waiters so that a
// signal with nobody waiting costs no table lookup. The clock comes from pthread_condattr as
// glibc records it (__wrefs bit 1: CLOCK_MONOTONIC). pthread_cond_init/destroy stay glibc's
// (gonet never touches __wrefs' waiter references, so destroy does not wait).
//
// LOCKING (core/README.md, lock 2): none of its own; the futex table's bucket locks
// (futex_table.h) are wait-queue locks.
#pragma once

#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include <atomic>
#include <cstdint>

#include "core/poll/parker.h"

namespace gonet::core {

bool MutexSupported(const pthread_mutex_t* m);
int MutexLock(pthread_mutex_t* m, int64_t deadline_ns);  // 0, ETIMEDOUT, EDEADLK, EAGAIN
int MutexTryLock(pthread_mutex_t* m);                    // 0, EBUSY, EAGAIN
int MutexUnlock(pthread_mutex_t* m);                     // 0, EPERM

// A process-private condvar: gonet's protocol for every entry (above); false: glibc's.
bool CondSupported(const pthread_cond_t* c);
// glibc's own pthread_mutex_lock/unlock (the shim's NEXT, a unit test's libc): how CondWait
// releases and re-takes a mutex that MutexSupported leaves to glibc.
struct GlibcMutexOps {
  int (*lock)(pthread_mutex_t*);
  int (*unlock)(pthread_mutex_t*);
};
// clock: the clock of abstime (nullptr: no timeout). 0 or ETIMEDOUT; EPERM if the mutex is not
// the caller's; with a mutex left to glibc, whatever glibc's re-take answered (EOWNERDEAD, ...).
// glibc: required when MutexSupported(m) is false.
int CondWait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* abstime,
             const GlibcMutexOps* glibc = nullptr);
clockid_t CondClock(const pthread_cond_t* c);
int CondSignal(pthread_cond_t* c);
int CondBroadcast(pthread_cond_t* c);

// Unnamed process-private semaphores (sem_init(s, 0, n)). Process-shared and named semaphores are
// left to glibc (SemSupported false). SemWait is for fibers: an OS thread runs glibc's own
// sem_wait, which sleeps in the kernel where SemPost's wake reaches it.
bool SemSupported(const sem_t* s);
// 0, ETIMEDOUT, or EINTR (an OS thread's wait interrupted by any signal handler, as sem_wait).
int SemWait(sem_t* s, int64_t deadline_ns);
int SemTryWait(sem_t* s);  // 0 or EAGAIN
int SemPost(sem_t* s);     // 0 or EOVERFLOW

// Reader-writer locks (process-private): __readers counts readers in glibc's units (1 << 3, above
// glibc's three flag bits, so that a lock glibc used before gonet's mode was set reads right: its
// unlocked write phase as unlocked, its writer as a writer), its top bit marks gonet's writer; __writers counts waiters so an unlock with nobody waiting skips the table. As
// glibc's default (PTHREAD_RWLOCK_PREFER_READER_NP), readers are preferred; a writer or reader
// that already holds the write lock gets EDEADLK.
bool RwLockSupported(const pthread_rwlock_t* l);
int RwLockRead(pthread_rwlock_t* l, int64_t deadline_ns);   // 0, ETIMEDOUT, EDEADLK, EAGAIN
int RwLockWrite(pthread_rwlock_t* l, int64_t deadline_ns);  // 0, ETIMEDOUT, EDEADLK
int RwTryRead(pthread_rwlock_t* l);                         // 0, EBUSY, EAGAIN
int RwTryWrite(pthread_rwlock_t* l);                        // 0, EBUSY
int RwUnlock(pthread_rwlock_t* l);

// A CLOCK_MONOTONIC deadline from an absolute time on `clock` (REALTIME or MONOTONIC).
int64_t MonotonicDeadline(clockid_t clock, const timespec& abstime);
// Parks the calling fiber until deadline_ns (CLOCK_MONOTONIC); other fibers run meanwhile.
// True if a signal handler ran first and ended the sleep (nanosleep's EINTR).
bool FiberSleepUntil(int64_t deadline_ns);

// The calling fiber's id, or the calling thread's kernel tid (mutex ownership).
uint32_t CurrentOwnerId();

// fork child (called by the scheduler's handler): forget other threads' waiters.
void FiberSyncAfterForkChild();

}  // namespace gonet::core
