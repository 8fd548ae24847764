// setsockopt: SO_RCVTIMEO/SO_SNDTIMEO become gonet's deadlines; everything goes to the kernel.
// getsockopt is not interposed: the kernel holds exactly what the app set.
#include <sys/socket.h>

#include "core/fd/ops.h"
#include "shim/abi.h"
#include "shim/real.h"

using gonet::shim::ToCAbi;
namespace core = gonet::core;
namespace real = gonet::real;

GONET_HOOK int setsockopt(int fd, int level, int name, const void* value, socklen_t len) {
  core::IoResult r = core::SetSockOpt(fd, level, name, value, len);
  return r.passthrough() ? real::setsockopt(fd, level, name, value, len) : ToCAbi<int>(r);
}
