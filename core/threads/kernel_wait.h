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

#include "core/base/base.h"
#include "core/base/mode.h"
#include "core/stats/stats.h"
#include "core/threads/sigurg.h"

namespace gonet::core {

// One thread's record while it is blocked in a kernel call on an fd. Every call writes it, and
// with a thread per connection it is cold each time (the other threads ran since): aligned so
// that it (and its arena node) never straddles two cache lines.
struct alignas(32) KernelWaitRecord {
  std::atomic<int> fd{-1};           // -1: not blocked in a gonet-visible call
  std::atomic<int> tid{0};           // the thread, for tgkill
  std::atomic<int64_t> since_ns{0};  // when the call started (CoarseNanotime)
  std::atomic<char> op{0};           // 'r' or 'w' (or 'a' accept, 'c' connect)
};

// Inline, as the constructor and destructor below: they run on every blocking socket call in
// threads mode, where with a thread per connection each distinct function is another cold line
// of code to fetch.
inline bool KernelWaitEnabled() {
  return mode() == RunMode::kThreads && config().threads_wait_kernel &&
         KernelWaitHandlerInstalled();
}

namespace internal {
extern __thread KernelWaitRecord* t_kernel_wait_record __attribute__((tls_model("initial-exec")));
// Set by the SIGURG handler when gonet's own wake-up arrives; read and cleared by the call.
extern __thread volatile sig_atomic_t t_kernel_woken __attribute__((tls_model("initial-exec")));
// The calling thread's record, made on its first kernel wait (nullptr: no memory).
KernelWaitRecord* NewKernelWaitRecord();
}  // namespace internal

// Starts loading the calling thread's record into the cache, at the start of a call that may make
// a kernel wait: its miss then overlaps the fd table's instead of following it (the atomic
// read-modify-writes in between would serialise them). A hint only: no effect on anything.
inline void PrefetchKernelWaitRecord() {
  if (KernelWaitRecord* r = internal::t_kernel_wait_record) __builtin_prefetch(r, 1);
}

// RAII: marks the calling thread as blocked in a kernel call on fd for the scope.
class KernelWait {
 public:
  KernelWait(int fd, char op);
  ~KernelWait() {
    Count(Stats().threads_in_kernel, -1);
    if (rec_ != nullptr) rec_->fd.store(-1, std::memory_order_release);
  }
  KernelWait(const KernelWait&) = delete;
  KernelWait& operator=(const KernelWait&) = delete;

  // After the call failed with EINTR: true if gonet's wake-up caused it (the caller re-checks
  // closing and retries), false if it was the program's own signal.
  bool ConsumeWake() {
    if (!internal::t_kernel_woken) return false;
    internal::t_kernel_woken = 0;
    return true;
  }

 private:
  KernelWaitRecord* rec_;
};

inline KernelWait::KernelWait(int fd, char op) {
  KernelWaitRecord* r = internal::t_kernel_wait_record;
  rec_ = GONET_LIKELY(r != nullptr) ? r : internal::NewKernelWaitRecord();
  internal::t_kernel_woken = 0;
  // Gauge apart from threads_parked, so that parks == wakes + threads_parked keeps holding for
  // the pollDesc path: a blocking call made in the kernel is not a park.
  Count(Stats().threads_in_kernel);
  Count(Stats().kernel_waits);
  if (rec_ == nullptr) return;
  rec_->op.store(op, std::memory_order_relaxed);
  // The coarse clock (a tick behind at most, as the park notes, parker.h): it only tells a dump
  // how long the call has waited, and the precise clock cost a vDSO TSC read per call.
  rec_->since_ns.store(CoarseNanotime(), std::memory_order_relaxed);
  // seq_cst pairs with the closer's store of closing before it scans the records: either the
  // closer sees this fd, or this thread sees closing in FdRef::Acquire... which it already passed,
  // so the caller re-checks closing after registering (see direct_call.h).
  rec_->fd.store(fd, std::memory_order_seq_cst);
}

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
