// Threads mode's direct kernel wait.
//
// DESIGN.md lets threads mode park "on a futex or an equivalent kernel wait". Measured on
// echo_threads (README, benchmarks), the futex park costs a hop: the netpoller thread wakes, then
// wakes the parked thread, and every request pays an EAGAIN attempt plus futex_wait/futex_wake
// and two context switches. So by default a blocking-mode socket call in threads mode is made as
// the blocking call itself, and the kernel both waits and wakes the thread directly. Everything
// the kernel defines (SO_RCVTIMEO, MSG_WAITALL, partial counts, SIGPIPE, SA_RESTART) is then the
// kernel's own behaviour, not an emulation.
//
// What gonet adds on that path, and how:
//   - close()/dup2() of an fd another thread is blocked on wakes that thread with EBADF (Go's
//     evict). Each thread blocked in such a call is recorded (fd, op, since); the closer sends
//     it SIGURG, as Go's runtime does for preemption: SIGURG's default action is to ignore it, so
//     a stray one can never kill a program. The handler is installed without SA_RESTART so the
//     blocking call returns EINTR; a thread-local flag tells gonet's wake-up from the program's
//     own signals (whose EINTR or restart is the kernel's decision, exactly as natively).
//     The handler and the program's own SIGURG view are sigurg.h's.
//   - the records are what `gonet dump` lists for threads mode.
// What it does not do: gonet's deadline policies (--read-timeout, ...) need a timer, so a
// direction with a policy deadline uses the netpoller path (blocking_call.h). A thread that
// blocks SIGURG cannot be woken: the closer waits a bounded time, then closes anyway, which is
// the kernel's native behaviour. GONET_THREADS_WAIT=netpoller selects the netpoller path for all
// calls (the benchmarks compare both).
#pragma once

#include <signal.h>

#include <atomic>
#include <cstdint>

namespace gonet::core {

// One thread's record while it is blocked in a kernel call on an fd.
struct KernelWaitRecord {
  std::atomic<int> fd{-1};           // -1: not blocked in a gonet-visible call
  std::atomic<int> tid{0};           // the thread, for tgkill
  std::atomic<int64_t> since_ns{0};  // when the call started (Nanotime)
  std::atomic<char> op{0};           // 'r' or 'w' (or 'a' accept, 'c' connect)
};

bool KernelWaitEnabled();

// RAII: marks the calling thread as blocked in a kernel call on fd for the scope.
class KernelWait {
 public:
  KernelWait(int fd, char op);
  ~KernelWait();
  KernelWait(const KernelWait&) = delete;
  KernelWait& operator=(const KernelWait&) = delete;

  // After the call failed with EINTR: true if gonet's wake-up caused it (the caller re-checks
  // closing and retries), false if it was the program's own signal.
  bool ConsumeWake();

 private:
  KernelWaitRecord* rec_;
};

// Sends the wake-up to every thread blocked in a kernel call on fd. Returns how many.
int WakeKernelWaiters(int fd);

// Forgets other threads' records (fork child).
void KernelWaitAfterForkChild();

// For the SIGURG handler (sigurg.h), async-signal-safe: marks the interrupted call as woken by
// gonet, and the calling thread's record (nullptr if it never made a kernel wait).
void NoteKernelWake();
KernelWaitRecord* CurrentKernelWaitRecord();

// Visits every thread's record (dump).
template <typename F>
void ForEachKernelWait(F f);
uint32_t KernelWaitRecordCount();
KernelWaitRecord* KernelWaitRecordAt(uint32_t i);

template <typename F>
void ForEachKernelWait(F f) {
  uint32_t n = KernelWaitRecordCount();
  for (uint32_t i = 0; i < n; ++i) {
    if (KernelWaitRecord* r = KernelWaitRecordAt(i)) f(*r);
  }
}

}  // namespace gonet::core
