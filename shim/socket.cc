// Socket creation, accept and connect.
#include <sys/socket.h>

#include "core/fd/ops.h"
#include "shim/abi.h"
#include "shim/real.h"

using gonet::shim::ToCAbi;
namespace core = gonet::core;
namespace real = gonet::real;

GONET_HOOK int socket(int domain, int type, int protocol) {
  if (core::IoResult f = core::SocketFault(); !f.ok()) return ToCAbi<int>(f);
  int fd = real::socket(domain, type, protocol);
  if (fd >= 0) core::NoteSocket(fd, domain, type, protocol);
  return fd;
}

GONET_HOOK int socketpair(int domain, int type, int protocol, int sv[2]) {
  int r = real::socketpair(domain, type, protocol, sv);
  if (r == 0) core::NoteSocketPair(sv, domain, type);
  return r;
}

GONET_HOOK int accept(int fd, struct sockaddr* addr, socklen_t* addrlen) {
  core::IoResult r = core::Accept(fd, addr, addrlen, 0);
  if (!r.passthrough()) return ToCAbi<int>(r);
  int nfd = real::accept(fd, addr, addrlen);
  if (nfd >= 0) core::NoteDup(-1, nfd);  // a new number: forget what the slot held
  return nfd;
}

GONET_HOOK int accept4(int fd, struct sockaddr* addr, socklen_t* addrlen, int flags) {
  core::IoResult r = core::Accept(fd, addr, addrlen, flags);
  if (!r.passthrough()) return ToCAbi<int>(r);
  int nfd = real::accept4(fd, addr, addrlen, flags);
  if (nfd >= 0) core::NoteDup(-1, nfd);
  return nfd;
}

GONET_HOOK int connect(int fd, const struct sockaddr* addr, socklen_t addrlen) {
  core::IoResult r = core::Connect(fd, addr, addrlen);
  return r.passthrough() ? real::connect(fd, addr, addrlen) : ToCAbi<int>(r);
}
