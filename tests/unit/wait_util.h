// Shared by the core unit tests: wait for observable state (never for time to pass), and tell
// whether another thread sleeps in futex(2).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include "core/base/base.h"

namespace gonet::core::testing_util {

inline constexpr int64_t kMs = 1000000;
inline constexpr int64_t kHangNs = 20000 * kMs;  // hang detector only

template <typename Pred>
bool WaitUntil(Pred pred, int64_t hang_ns = kHangNs) {
  const int64_t give_up = Nanotime() + hang_ns;
  while (!pred()) {
    if (Nanotime() > give_up) return false;
    usleep(100);
  }
  return true;
}

// What thread `tid` of this process is doing, from /proc: false if it is running (or gone);
// else its syscall number and first argument.
inline bool ReadThreadSyscall(pid_t tid, long* nr, unsigned long* arg0) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid));
  FILE* f = fopen(path, "r");
  if (f == nullptr) return false;
  *nr = -1;
  *arg0 = 0;
  int got = fscanf(f, "%ld %lx", nr, arg0);
  fclose(f);
  return got >= 1 && *nr >= 0;
}

// True while thread `tid` of this process sleeps in syscall `nr`.
inline bool InSyscall(pid_t tid, long nr) {
  long got = -1;
  unsigned long arg0;
  return ReadThreadSyscall(tid, &got, &arg0) && got == nr;
}

// True while thread `tid` of this process sleeps in futex(2).
inline bool InFutex(pid_t tid) { return InSyscall(tid, SYS_futex); }

}  // namespace gonet::core::testing_util
