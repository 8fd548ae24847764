// Shared by the core unit tests: wait for observable state (never for time to pass), and tell
// whether another thread sleeps in futex(2).
#pragma once

#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>

#include "core/base.h"

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

// True while thread `tid` of this process sleeps in futex(2).
inline bool InFutex(pid_t tid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/syscall", static_cast<int>(tid));
  FILE* f = fopen(path, "r");
  if (f == nullptr) return false;
  long nr = -1;
  int got = fscanf(f, "%ld", &nr);
  fclose(f);
  return got == 1 && nr == SYS_futex;
}

}  // namespace gonet::core::testing_util
