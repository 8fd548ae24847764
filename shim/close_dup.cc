// close and the dup family.
#include <unistd.h>

#include "core/fd/ops.h"
#include "shim/abi.h"
#include "shim/real.h"

using gonet::shim::ToCAbi;
namespace core = gonet::core;
namespace real = gonet::real;

GONET_HOOK int close(int fd) {
  core::IoResult r = core::Close(fd);
  return r.passthrough() ? real::close(fd) : ToCAbi<int>(r);
}

GONET_HOOK int dup(int fd) {
  int nfd = real::dup(fd);
  if (nfd >= 0) core::NoteDup(fd, nfd);
  return nfd;
}

GONET_HOOK int dup2(int oldfd, int newfd) {
  core::IoResult r = core::Dup3(oldfd, newfd, 0, true);
  return r.passthrough() ? real::dup2(oldfd, newfd) : ToCAbi<int>(r);
}

GONET_HOOK int dup3(int oldfd, int newfd, int flags) {
  core::IoResult r = core::Dup3(oldfd, newfd, flags, false);
  return r.passthrough() ? real::dup3(oldfd, newfd, flags) : ToCAbi<int>(r);
}
