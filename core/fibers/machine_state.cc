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

}  // namespace gonet::core
