#include "core/base/own_fd.h"

#include <fcntl.h>
#include <sys/resource.h>

#include "core/base/sys.h"

namespace gonet::core {

int PlaceOutOfTheWay(int src, RaiseLimit raise) {
  rlimit lim;
  if (sys::Call(SYS_prlimit64, 0, RLIMIT_NOFILE, nullptr, &lim) != 0) return -1;
  if (lim.rlim_cur > static_cast<rlim_t>(kOwnFdFloor)) {
    long fd = sys::Call(SYS_fcntl, src, F_DUPFD_CLOEXEC, kOwnFdFloor);
    return fd >= 0 ? static_cast<int>(fd) : -1;
  }
  int limit = static_cast<int>(lim.rlim_cur);
  if (raise == RaiseLimit::kAlone && lim.rlim_cur < lim.rlim_max) {
    rlimit raised = {lim.rlim_cur + 1, lim.rlim_max};
    if (sys::Call(SYS_prlimit64, 0, RLIMIT_NOFILE, &raised, nullptr) == 0) {
      long fd = sys::Call(SYS_fcntl, src, F_DUPFD_CLOEXEC, limit);  // limit itself, or EMFILE
      sys::Call(SYS_prlimit64, 0, RLIMIT_NOFILE, &lim, nullptr);
      if (fd >= 0) return static_cast<int>(fd);
    }
  }
  // The highest free number below the limit: F_DUPFD gives the lowest free one from its base.
  for (int base = limit - 1; base > 2 && base >= limit - 64; --base) {
    long fd = sys::Call(SYS_fcntl, src, F_DUPFD_CLOEXEC, base);
    if (fd >= 0) return static_cast<int>(fd);
  }
  return -1;
}

int MoveOutOfTheWay(int fd, RaiseLimit raise) {
  int moved = PlaceOutOfTheWay(fd, raise);
  if (moved < 0) return fd;
  sys::Call(SYS_close, fd);
  return moved;
}

}  // namespace gonet::core
