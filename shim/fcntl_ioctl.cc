// fcntl and ioctl: the app's view of O_NONBLOCK (F_GETFL/F_SETFL, FIONBIO) and F_DUPFD*. Every
// other command goes to libc unchanged.
#include <fcntl.h>
#include <sys/ioctl.h>

#include <cstdarg>

#include "core/fd/ops.h"
#include "shim/abi.h"
#include "shim/file_locks.h"
#include "shim/real.h"

using gonet::shim::ToCAbi;
namespace core = gonet::core;
namespace real = gonet::real;

// fcntl's third argument is an int or a pointer; the x86-64 and aarch64 ABIs pass both in a
// full register, so reading it as unsigned long is what glibc's own wrapper does.
GONET_HOOK int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  if (int locked; gonet::shim::FcntlLockWait(fd, cmd, arg, false, &locked)) return locked;
  core::IoResult r = core::Fcntl(fd, cmd, arg);
  return r.passthrough() ? real::fcntl(fd, cmd, arg) : ToCAbi<int>(r);
}

GONET_HOOK int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  unsigned long arg = va_arg(ap, unsigned long);
  va_end(ap);
  if (int locked; gonet::shim::FcntlLockWait(fd, cmd, arg, true, &locked)) return locked;
  core::IoResult r = core::Fcntl(fd, cmd, arg);
  return r.passthrough() ? real::fcntl64(fd, cmd, arg) : ToCAbi<int>(r);
}

GONET_HOOK int ioctl(int fd, unsigned long request, ...) {
  va_list ap;
  va_start(ap, request);
  void* arg = va_arg(ap, void*);
  va_end(ap);
  if (request == FIONBIO) {
    core::IoResult r = core::IoctlFionbio(fd, static_cast<int*>(arg));
    if (!r.passthrough()) return ToCAbi<int>(r);
  }
  return real::ioctl(fd, request, arg);
}
