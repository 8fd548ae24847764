#include "core/fibers/futex_call.h"

#include <linux/futex.h>
#include <time.h>

#include <atomic>
#include <cerrno>
#include <cstdint>

#include "core/base/base.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/fiber_sync.h"
#include "core/fibers/futex_table.h"

namespace gonet::core {
namespace {

bool ValidTimespec(const timespec* t) {
  return t->tv_sec >= 0 && t->tv_nsec >= 0 && t->tv_nsec < 1000000000;
}

}  // namespace

bool FutexCall(const long a[6], long* result) {
  const int op = static_cast<int>(a[1]);
  if ((op & FUTEX_PRIVATE_FLAG) == 0) return false;  // shared: another process may wake it
  const int cmd = op & FUTEX_CMD_MASK;
  auto* addr = reinterpret_cast<std::atomic<uint32_t>*>(a[0]);
  // The kernel's own answer for a bad address (EINVAL, EFAULT) is left to the kernel.
  if (addr == nullptr || (a[0] & 3) != 0) return false;
  const bool bitset_op = cmd == FUTEX_WAIT_BITSET || cmd == FUTEX_WAKE_BITSET;
  const uint32_t bitset = bitset_op ? static_cast<uint32_t>(a[5]) : kFutexMatchAny;
  if (bitset == 0) return false;  // EINVAL from the kernel

  if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) {
    if (op & FUTEX_CLOCK_REALTIME) return false;  // ENOSYS from the kernel
    int n = static_cast<int>(a[2]);
    *result = n <= 0 ? 0 : FutexWake(addr, n, KernelSleepers::kMayHaveGlibcSleepers, bitset);
    return true;
  }
  if (cmd != FUTEX_WAIT && cmd != FUTEX_WAIT_BITSET) return false;
  // An OS thread waits in the kernel, where every wake of gonet's reaches it (futex_table.h).
  if (FiberScheduler::Current() == nullptr) return false;
  const auto* timeout = reinterpret_cast<const timespec*>(a[3]);
  if (timeout != nullptr && !ValidTimespec(timeout)) return false;  // EINVAL from the kernel
  int64_t deadline_ns = 0;
  if (timeout != nullptr) {
    if (cmd == FUTEX_WAIT) {  // relative (FUTEX_CLOCK_REALTIME changes nothing for a duration)
      int64_t ns = TimespecNs(*timeout);
      deadline_ns = ns <= 0 ? Nanotime() : DeadlineAfter(ns);
    } else {
      deadline_ns = MonotonicDeadline(
          (op & FUTEX_CLOCK_REALTIME) ? CLOCK_REALTIME : CLOCK_MONOTONIC, *timeout);
    }
  }
  ScopedWaitNote note(CurrentParker(), kWaitFutex);
  int r = FutexWait(addr, static_cast<uint32_t>(a[2]), deadline_ns, WaitKind::kRestartable, bitset);
  *result = r == 0 ? 0 : -r;
  return true;
}

}  // namespace gonet::core
