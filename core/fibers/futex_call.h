// Futexes that programs make themselves, through syscall(SYS_futex, ...): Rust's std mutexes,
// condvars and parkers, libstdc++'s std::atomic::wait and std::counting_semaphore, and many lock
// libraries. In fibers mode a private wait by a fiber parks it in the futex table
// (futex_table.h) instead of holding its worker in the kernel, and every private wake, whoever
// makes it, wakes the table and then the kernel (an OS thread's wait, which stays in the kernel,
// or a glibc sleeper). Handled: FUTEX_WAIT, FUTEX_WAIT_BITSET (absolute, on CLOCK_MONOTONIC or,
// with FUTEX_CLOCK_REALTIME, CLOCK_REALTIME), FUTEX_WAKE, FUTEX_WAKE_BITSET, each with
// FUTEX_PRIVATE_FLAG. Everything else (shared futexes, which another process may wake; requeue,
// wake-op, PI, waitv) goes to the kernel unchanged.
#pragma once

namespace gonet::core {

// a: syscall(SYS_futex, a[0], ..., a[5])'s arguments. Returns true if handled, with *result the
// syscall's value or -errno (the kernel's convention); false: make the system call.
// Thread rule: any thread; only a fiber's wait parks.
bool FutexCall(const long a[6], long* result);

// Every other syscall(nr, a...) the program makes through gonet's syscall() hook: the system call
// itself, -errno on failure. Holds nothing of gonet's, so a signal for the fiber that made it may
// interrupt it as the kernel interrupts a thread's call (signal_kick.cc knows this frame and its
// caller's).
long ProgramSyscall(long nr, const long a[6]);

}  // namespace gonet::core
