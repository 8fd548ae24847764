#include "core/fibers/machine_state.h"

#include <fcntl.h>

#include <cstdio>
#include <cstring>

#include "core/base/sys.h"

namespace gonet::core {

bool ThreadRunnable(pid_t tid) {
  if (tid <= 0) return false;
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/stat", static_cast<int>(tid));
  long fd = sys::Call(SYS_openat, AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[512];
  long n = sys::Call(SYS_read, fd, buf, sizeof buf - 1);
  sys::Call(SYS_close, fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  // "tid (comm) S ...": the state follows the last ')' (comm may contain anything).
  const char* close = strrchr(buf, ')');
  return close != nullptr && close[1] == ' ' && close[2] == 'R';
}

int64_t ThreadCpuNs(pid_t tid) {
  if (tid <= 0) return -1;
  // The kernel's clock id of another thread's CPU time (MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED)
  // in linux/posix-timers.h; what pthread_getcpuclockid computes from a pthread_t).
  const clockid_t id = static_cast<clockid_t>((~static_cast<unsigned>(tid) << 3) | 2 | 4);
  timespec ts{};
  if (sys::Call(SYS_clock_gettime, id, &ts) < 0) return -1;
  return int64_t{ts.tv_sec} * 1000000000 + ts.tv_nsec;
}

}  // namespace gonet::core
