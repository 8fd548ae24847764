// DirectCall: one blocking-mode socket call made as the blocking syscall itself (threads mode,
// kernel_wait.h explains why and what gonet adds). The caller passes the syscall as a lambda
// returning >= 0 or -errno.
#pragma once

#include <pthread.h>

#include "core/base/base.h"
#include "core/fd/fd_table.h"
#include "core/stats/stats.h"
#include "core/threads/kernel_wait.h"

namespace gonet::core {

template <typename Syscall>
IoResult DirectCall(FdRef& ref, char op, Syscall syscall) {
  KernelWait wait(ref.fd(), op);
  for (;;) {
    // After registering: a closer that set closing before our record was visible did not see
    // us, so we must see its closing mark here (both sides are seq_cst).
    if (ref.closing()) return IoResult::Err(EBADF);
    // The blocking call is a cancellation point natively: enable asynchronous cancellation around
    // it, as glibc's own wrappers do; RAII guards undo gonet's state during the forced unwind.
    int old_type = 0;
    pthread_setcanceltype(PTHREAD_CANCEL_ASYNCHRONOUS, &old_type);
    long r = syscall();
    pthread_setcanceltype(old_type, nullptr);
    if (r >= 0) return IoResult::Ok(r);
    if (r == -EINTR && wait.ConsumeWake()) {
      if (ref.closing()) {
        Count(Stats().kernel_wakes_close);
        return IoResult::Err(EBADF);
      }
      continue;  // a stale wake-up from an earlier close: not the program's signal
    }
    // kernel_* counters: a call made in the kernel is not a park, so the wakes_* family (which
    // matches parks one to one) does not count it.
    if (r == -EINTR) Count(Stats().kernel_wakes_signal);
    return IoResult::Err(static_cast<int>(-r));
  }
}

}  // namespace gonet::core
