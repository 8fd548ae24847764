// close and the dup family.
//
// gonet's stats segment has an fd of its own (core/stats/stats_shm.h, "The fd"), which the program
// never opened: for that one number these calls answer as the kernel would for a free number, and
// keep the fd open. close and dup/dup2/dup3 of it fail with EBADF; close_range and closefrom close
// the rest of their range; dup2/dup3 onto it move the segment to another number first.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

#include "core/fd/ops.h"
#include "core/stats/stats_shm.h"
#include "shim/abi.h"
#include "shim/real.h"

using gonet::shim::ToCAbi;
namespace core = gonet::core;
namespace real = gonet::real;

namespace {

int FailBadFd() {
  errno = EBADF;
  return -1;
}

}  // namespace

GONET_HOOK int close(int fd) {
  if (__builtin_expect(core::IsStatsSegmentFd(fd), 0)) return FailBadFd();
  core::IoResult r = core::Close(fd);
  return r.passthrough() ? real::close(fd) : ToCAbi<int>(r);
}

GONET_HOOK int dup(int fd) {
  if (__builtin_expect(core::IsStatsSegmentFd(fd), 0)) return FailBadFd();
  int nfd = real::dup(fd);
  if (nfd >= 0) core::NoteDup(fd, nfd);
  return nfd;
}

GONET_HOOK int dup2(int oldfd, int newfd) {
  if (__builtin_expect(core::IsStatsSegmentFd(oldfd), 0)) return FailBadFd();
  if (__builtin_expect(core::IsStatsSegmentFd(newfd), 0)) core::MoveStatsSegmentFd(newfd);
  core::IoResult r = core::Dup3(oldfd, newfd, 0, true);
  return r.passthrough() ? real::dup2(oldfd, newfd) : ToCAbi<int>(r);
}

GONET_HOOK int dup3(int oldfd, int newfd, int flags) {
  if (__builtin_expect(core::IsStatsSegmentFd(oldfd), 0)) return FailBadFd();
  // oldfd == newfd is the kernel's EINVAL whatever the number: leave it to the kernel.
  if (__builtin_expect(core::IsStatsSegmentFd(newfd) && oldfd != newfd, 0)) {
    core::MoveStatsSegmentFd(newfd);
  }
  core::IoResult r = core::Dup3(oldfd, newfd, flags, false);
  return r.passthrough() ? real::dup3(oldfd, newfd, flags) : ToCAbi<int>(r);
}

// close_range(2) of a range holding the segment's fd closes the two ranges around it. The
// kernel's own checks (first > last, unknown flags) see the call unchanged. With
// CLOSE_RANGE_CLOEXEC nothing closes now, and exec would close the segment anyway.
GONET_HOOK int close_range(unsigned first, unsigned last, int flags) {
  int seg = core::StatsSegmentFd();
  constexpr int kKnownFlags = CLOSE_RANGE_UNSHARE | CLOSE_RANGE_CLOEXEC;
  if (__builtin_expect(seg < 0, 1) || first > last || (flags & ~kKnownFlags) != 0 ||
      (flags & CLOSE_RANGE_CLOEXEC) != 0 || static_cast<unsigned>(seg) < first ||
      static_cast<unsigned>(seg) > last) {
    return real::close_range(first, last, flags);
  }
  unsigned s = static_cast<unsigned>(seg);
  if (s > first && real::close_range(first, s - 1, flags) != 0) return -1;
  if (s < last && real::close_range(s + 1, last, flags) != 0) return -1;
  return 0;
}

// glibc's closefrom is close_range(lowfd, ~0U, 0) (with a /proc/self/fd walk on kernels without
// it, which closes the segment's fd too: it is then reachable by root only).
GONET_HOOK void closefrom(int lowfd) {
  int seg = core::StatsSegmentFd();
  if (__builtin_expect(seg < 0, 1) || lowfd < 0 || seg < lowfd ||
      close_range(static_cast<unsigned>(lowfd), UINT_MAX, 0) != 0) {
    real::closefrom(lowfd);
  }
}
