// The resolver in fibers mode: getaddrinfo, getnameinfo and gethostbyname_r,
// gethostbyname2_r and gethostbyaddr_r may wait seconds for a DNS server, and glibc makes their
// socket calls through internal aliases gonet never sees, so in a fiber each would hold its
// worker's OS thread for the whole lookup. In a fiber each lookup runs on an offload helper
// (core/fibers/syscall_offload.h) while the fiber parks: helpers start on demand, so there are as
// many lookups in flight as fibers asking, and a slow DNS server holds no worker. The answer (and
// errno, h_errno through the _r functions' own out-parameter) is glibc's own.
// A getnameinfo that looks nothing up (NI_NUMERICHOST, and NI_NUMERICSERV or no service wanted:
// only inet_ntop and a port number; stunnel asks that for both ends of every connection) is
// made inline: a helper hop would cost more than the call, and it cannot wait.
// What differs: the lookup runs with the helper thread's resolver state, so resolver options a
// thread set in its own _res (res_init, then changing _res.options) do not apply to it; the
// res_* calls, which exist to use that state, are not offloaded for that reason.
#include <netdb.h>
#include <sys/socket.h>

#include "core/fibers/syscall_offload.h"
#include "shim/abi.h"
#include "shim/next.h"

namespace core = gonet::core;

GONET_HOOK int getaddrinfo(const char* node, const char* service, const struct addrinfo* hints,
                           struct addrinfo** res) {
  if (!core::InFiber()) return NEXT(getaddrinfo)(node, service, hints, res);
  return core::OffloadCall(NEXT(getaddrinfo), node, service, hints, res);
}

GONET_HOOK int getnameinfo(const struct sockaddr* addr, socklen_t addrlen, char* host,
                           socklen_t hostlen, char* serv, socklen_t servlen, int flags) {
  const bool numeric = (flags & NI_NUMERICHOST) != 0 &&
                       ((flags & NI_NUMERICSERV) != 0 || serv == nullptr || servlen == 0);
  if (!core::InFiber() || numeric) {
    return NEXT(getnameinfo)(addr, addrlen, host, hostlen, serv, servlen, flags);
  }
  return core::OffloadCall(NEXT(getnameinfo), addr, addrlen, host, hostlen, serv, servlen, flags);
}

GONET_HOOK int gethostbyname_r(const char* name, struct hostent* ret, char* buf, size_t buflen,
                               struct hostent** result, int* h_errnop) {
  if (!core::InFiber()) return NEXT(gethostbyname_r)(name, ret, buf, buflen, result, h_errnop);
  return core::OffloadCall(NEXT(gethostbyname_r), name, ret, buf, buflen, result, h_errnop);
}

GONET_HOOK int gethostbyname2_r(const char* name, int af, struct hostent* ret, char* buf,
                                size_t buflen, struct hostent** result, int* h_errnop) {
  if (!core::InFiber()) {
    return NEXT(gethostbyname2_r)(name, af, ret, buf, buflen, result, h_errnop);
  }
  return core::OffloadCall(NEXT(gethostbyname2_r), name, af, ret, buf, buflen, result, h_errnop);
}

GONET_HOOK int gethostbyaddr_r(const void* addr, socklen_t len, int type, struct hostent* ret,
                               char* buf, size_t buflen, struct hostent** result, int* h_errnop) {
  if (!core::InFiber()) {
    return NEXT(gethostbyaddr_r)(addr, len, type, ret, buf, buflen, result, h_errnop);
  }
  return core::OffloadCall(NEXT(gethostbyaddr_r), addr, len, type, ret, buf, buflen, result,
                           h_errnop);
}
