// Fibers mode's once, barrier and C++ static-initialisation guard, on the futex table
// (futex_table.h), each keeping the protocol of the code it replaces so the rule at the top of
// fiber_sync.h holds (a waiter sleeping in glibc's or libstdc++'s code is woken by gonet's waker):
//   - pthread_once (and C11 call_once): glibc's once word: bit 1 done, bit 0 in progress, the
//     fork generation above them (an initialiser that was running in the parent when it forked
//     is not waited for in the child). Waiters sleep while the word reads in-progress of this
//     generation; the initialiser stores done and wakes them all. An initialiser that unwinds (a
//     C++ exception: std::call_once rethrows it) resets the word and wakes the waiters, one of
//     which then runs the initialisation, as glibc's cleanup handler does.
//   - pthread_barrier_wait: glibc 2.36's round-based barrier (in, current_round, count, shared,
//     out): an arrival takes a ticket from `in`; the one completing a round publishes it in
//     current_round and wakes the round's waiters; the last to leave after BARRIER_IN_THRESHOLD
//     arrivals resets the barrier and wakes arrivals held back meanwhile.
//   - __cxa_guard_acquire/release/abort: libstdc++'s futex guard (first int of the 64-bit guard:
//     byte 0 done, byte 1 pending, byte 2 someone waits). libstdc++'s waiters use shared futex
//     ops, so gonet's release also issues a shared FUTEX_WAKE.
// Process-shared barriers are left to glibc (BarrierSupported false).
#pragma once

#include <pthread.h>

#include <cstdint>

namespace gonet::core {

// Always 0. before_late_init(ctx), if given, runs right before init when the caller had to wait
// first (its worker ran other fibers meanwhile, which may have changed per-worker state the
// initialiser reads: libstdc++'s std::call_once passes its callable through TLS).
int OnceRun(pthread_once_t* once, void (*init)(), void (*before_late_init)(void*) = nullptr,
            void* ctx = nullptr);

bool BarrierSupported(const pthread_barrier_t* b);
int BarrierWait(pthread_barrier_t* b);  // PTHREAD_BARRIER_SERIAL_THREAD for one of each round, or 0

int GuardAcquire(uint64_t* guard);  // 1: the caller initialises; 0: already done
void GuardRelease(uint64_t* guard);
void GuardAbort(uint64_t* guard);

// fork child: a new fork generation for once words.
void InitSyncAfterForkChild();

}  // namespace gonet::core
