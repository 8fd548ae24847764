// Fibers mode's mutexes, condition variables and sleeps, for every thread of the process.
//
// In fibers mode one pthread_mutex_t may be locked by a fiber and by an OS thread (the main
// thread, say) in turn, so there is a single implementation for all callers: the app's own
// pthread_mutex_t / pthread_cond_t storage holds the state, and a waiter parks on its
// CurrentParker() — the running fiber's (which suspends only the fiber) or the OS thread's futex
// parker. Waiters queue in an address-keyed table (Go's semtable, a userspace futex): AddrWait
// sleeps only if the word still holds the expected value, checked under the bucket lock that
// AddrWake takes, so no wake-up is lost.
//
// Mutex (Drepper, "Futexes are tricky", mutex #2): __lock is 0 free, 1 locked, 2 locked with
// possible waiters; unlocking a 2 wakes one waiter. __owner holds the owner's id (a kernel tid or
// a FiberTask id) and __count the recursion depth, so PTHREAD_MUTEX_RECURSIVE and ERRORCHECK
// behave as glibc's; __kind, set by pthread_mutex_init or a static initializer, is only read.
// Robust, priority-inheritance/protect and process-shared mutexes are left to glibc (kSupported
// false): they block the worker, a documented limit.
//
// Condition variable: the low 32 bits of __wseq count signals (a waiter sleeps while it still
// holds the value it read before unlocking the mutex); the next word counts waiters so that a
// signal with nobody waiting costs no table lookup. The clock comes from pthread_condattr as
// glibc records it (__wrefs bit 1: CLOCK_MONOTONIC). pthread_cond_init/destroy stay glibc's.
//
// LOCKING (core/README.md, lock 2): one spinlock per table bucket, held for list edits and for
// the Unparks of a wake (DirLock::WakeAll does the same), which take a worker's run-queue lock
// (lock 3) for a fiber.
#pragma once

#include <pthread.h>
#include <semaphore.h>
#include <time.h>

#include <atomic>
#include <cstdint>

#include "core/poll/parker.h"

namespace gonet::core {

// 0: woken (or the word had changed: EAGAIN folded in), ETIMEDOUT: deadline passed, EINTR: an
// OS thread's wait was interrupted by a signal handler as `kind` says (fibers are never
// interrupted). deadline_ns: CLOCK_MONOTONIC, 0 = none. Spurious returns are allowed; callers
// loop.
int AddrWait(std::atomic<uint32_t>* addr, uint32_t expected, int64_t deadline_ns,
             WaitKind kind = WaitKind::kRestartable);
// Wakes up to n waiters on addr; returns how many.
int AddrWake(const void* addr, int n);

bool MutexSupported(const pthread_mutex_t* m);
int MutexLock(pthread_mutex_t* m, int64_t deadline_ns);  // 0, ETIMEDOUT, EDEADLK, EAGAIN
int MutexTryLock(pthread_mutex_t* m);                    // 0, EBUSY, EAGAIN
int MutexUnlock(pthread_mutex_t* m);                     // 0, EPERM

// clock: the clock of abstime (nullptr: no timeout). 0 or ETIMEDOUT.
int CondWait(pthread_cond_t* c, pthread_mutex_t* m, clockid_t clock, const timespec* abstime);
clockid_t CondClock(const pthread_cond_t* c);
int CondSignal(pthread_cond_t* c);
int CondBroadcast(pthread_cond_t* c);

// Unnamed process-private semaphores (sem_init(s, 0, n)): glibc keeps the count in the low 32
// bits of the sem_t's first word, which is also the word waiters sleep on here. Process-shared
// and named semaphores are left to glibc (SemSupported false).
bool SemSupported(const sem_t* s);
// 0, ETIMEDOUT, or EINTR (an OS thread's wait interrupted by any signal handler, as sem_wait).
int SemWait(sem_t* s, int64_t deadline_ns);
int SemTryWait(sem_t* s);  // 0 or EAGAIN
int SemPost(sem_t* s);     // 0 or EOVERFLOW

// Reader-writer locks (process-private): the low bits of __readers count readers, its top bit
// marks a writer; __writers counts waiters so an unlock with nobody waiting skips the table. As
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
