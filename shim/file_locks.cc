// flock, lockf and fcntl(F_SETLKW / F_OFD_SETLKW) in fibers mode: a lock another process (or an
// open file description of this one) holds would hold the fiber's worker until it is released,
// which may be never while the holder is a fiber queued behind it. The call is first made
// without waiting (LOCK_NB, F_TLOCK, F_SETLK / F_OFD_SETLK): the lock, or any error other than
// "held by someone else", is the answer at once, exactly as the blocking call would have given
// it. Only a conflict is offloaded (core/fibers/syscall_offload.h): the blocking call itself runs
// on a helper thread while the fiber parks, so deadlock detection (EDEADLK) and the wake-up are the
// kernel's. Record locks belong to the process and OFD and flock locks to the open file
// description, never to a thread, so the helper taking the lock takes it for the program.
// errno: a probe's conflict is not the program's error; it is restored before the real call.
#include "shim/file_locks.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

#include "core/fibers/syscall_offload.h"
#include "shim/abi.h"
#include "shim/next.h"
#include "shim/real.h"

namespace core = gonet::core;
namespace real = gonet::real;

namespace {

bool Conflict(int err) { return err == EAGAIN || err == EACCES; }

int RealFcntl(int fd, int cmd, unsigned long arg) { return real::fcntl(fd, cmd, arg); }
int RealFcntl64(int fd, int cmd, unsigned long arg) { return real::fcntl64(fd, cmd, arg); }

}  // namespace

namespace gonet::shim {

bool FcntlLockWait(int fd, int cmd, unsigned long arg, bool is64, int* result) {
  if ((cmd != F_SETLKW && cmd != F_OFD_SETLKW) || !core::InFiber()) return false;
  int (*call)(int, int, unsigned long) = is64 ? RealFcntl64 : RealFcntl;
  int saved = errno;
  int r = call(fd, cmd == F_SETLKW ? F_SETLK : F_OFD_SETLK, arg);
  if (r == 0 || !Conflict(errno)) {
    *result = r;
    return true;
  }
  errno = saved;
  *result = core::OffloadCancelPoint(call, fd, cmd, arg);
  return true;
}

}  // namespace gonet::shim

GONET_HOOK int flock(int fd, int op) {
  if (!core::InFiber() || (op & LOCK_NB) || (op & (LOCK_SH | LOCK_EX)) == 0) {
    return NEXT(flock)(fd, op);
  }
  int saved = errno;
  int r = NEXT(flock)(fd, op | LOCK_NB);
  if (r == 0 || errno != EWOULDBLOCK) return r;
  errno = saved;
  return core::OffloadCall(NEXT(flock), fd, op);
}

GONET_HOOK int lockf(int fd, int cmd, off_t len) {
  if (!core::InFiber() || cmd != F_LOCK) return NEXT(lockf)(fd, cmd, len);
  int saved = errno;
  int r = NEXT(lockf)(fd, F_TLOCK, len);
  if (r == 0 || !Conflict(errno)) return r;
  errno = saved;
  return core::OffloadCancelPoint(NEXT(lockf), fd, cmd, len);
}

GONET_HOOK int lockf64(int fd, int cmd, off64_t len) {
  if (!core::InFiber() || cmd != F_LOCK) return NEXT(lockf64)(fd, cmd, len);
  int saved = errno;
  int r = NEXT(lockf64)(fd, F_TLOCK, len);
  if (r == 0 || !Conflict(errno)) return r;
  errno = saved;
  return core::OffloadCancelPoint(NEXT(lockf64), fd, cmd, len);
}
