// The resolver in fibers mode: getaddrinfo, getnameinfo and gethostbyname_r,
// gethostbyname2_r and gethostbyaddr_r, and the res_* calls (res_nquery, res_nsearch,
// res_nquerydomain, res_nsend and their non-reentrant twins res_query, res_search,
// res_querydomain, res_send) may wait seconds for a DNS server, and glibc makes their socket
// calls through internal aliases gonet never sees, so in a fiber each would hold its worker's OS
// thread for the whole lookup. In a fiber each lookup runs on an offload helper
// (core/fibers/syscall_offload.h) while the fiber parks: helpers start on demand, so there are as
// many lookups in flight as fibers asking, and a slow DNS server holds no worker. The answer (and
// errno, h_errno through the _r functions' own out-parameter) is glibc's own.
// A getnameinfo that looks nothing up (NI_NUMERICHOST, and NI_NUMERICSERV or no service wanted:
// only inet_ntop and a port number; stunnel asks that for both ends of every connection) is
// made inline: a helper hop would cost more than the call, and it cannot wait.
// The res_* calls report failure in h_errno, which the fiber takes from the helper; the
// non-reentrant four use the calling thread's _res, which the helper uses for the call
// (core/fibers/resolver_offload.h says how, and why that is exactly glibc's behaviour). Each is
// interposed under both of its names: res_nquery@GLIBC_2.34, what <resolv.h> gives a program
// built since glibc 2.34, and __res_nquery@GLIBC_2.2.5, what older headers mapped it to.
// What differs: getaddrinfo and the other NSS lookups run with the helper thread's resolver
// state, so resolver options a thread set in its own _res (res_init, then changing _res.options)
// do not apply to them.
#include <netdb.h>
#include <resolv.h>
#include <sys/socket.h>

#include "core/fibers/resolver_offload.h"
#include "core/fibers/syscall_offload.h"
#include "shim/abi.h"
#include "shim/next.h"
#include "shim/real.h"

namespace core = gonet::core;
namespace real = gonet::real;

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

namespace {

// An n-form: the caller's state, as it is.
template <typename Fn, typename... Args>
int OnState(Fn next, res_state statp, Args... args) {
  if (!core::InFiber()) return next(statp, args...);
  return core::OffloadStateCall(next, statp, args...);
}

// A non-reentrant form: the calling thread's _res (inline where glibc's __resp is not found).
template <typename Fn, typename... Args>
int OnThreadState(Fn next, Args... args) {
  if (!core::InFiber() || real::ResStateSlot() == nullptr) return next(args...);
  return core::OffloadThreadStateCall(&real::ResStateSlot, next, args...);
}

}  // namespace

GONET_HOOK int res_nquery(res_state statp, const char* dname, int cls, int type,
                          unsigned char* answer, int anslen) {
  return OnState(NEXT(res_nquery), statp, dname, cls, type, answer, anslen);
}

GONET_HOOK int __res_nquery(res_state statp, const char* dname, int cls, int type,
                            unsigned char* answer, int anslen) {
  return OnState(NEXT(__res_nquery), statp, dname, cls, type, answer, anslen);
}

GONET_HOOK int res_nsearch(res_state statp, const char* dname, int cls, int type,
                           unsigned char* answer, int anslen) {
  return OnState(NEXT(res_nsearch), statp, dname, cls, type, answer, anslen);
}

GONET_HOOK int __res_nsearch(res_state statp, const char* dname, int cls, int type,
                             unsigned char* answer, int anslen) {
  return OnState(NEXT(__res_nsearch), statp, dname, cls, type, answer, anslen);
}

GONET_HOOK int res_nquerydomain(res_state statp, const char* name, const char* domain, int cls,
                                int type, unsigned char* answer, int anslen) {
  return OnState(NEXT(res_nquerydomain), statp, name, domain, cls, type, answer, anslen);
}

GONET_HOOK int __res_nquerydomain(res_state statp, const char* name, const char* domain, int cls,
                                  int type, unsigned char* answer, int anslen) {
  return OnState(NEXT(__res_nquerydomain), statp, name, domain, cls, type, answer, anslen);
}

GONET_HOOK int res_nsend(res_state statp, const unsigned char* msg, int msglen,
                         unsigned char* answer, int anslen) {
  return OnState(NEXT(res_nsend), statp, msg, msglen, answer, anslen);
}

GONET_HOOK int __res_nsend(res_state statp, const unsigned char* msg, int msglen,
                           unsigned char* answer, int anslen) {
  return OnState(NEXT(__res_nsend), statp, msg, msglen, answer, anslen);
}

GONET_HOOK int res_query(const char* dname, int cls, int type, unsigned char* answer, int anslen) {
  return OnThreadState(NEXT(res_query), dname, cls, type, answer, anslen);
}

GONET_HOOK int __res_query(const char* dname, int cls, int type, unsigned char* answer,
                           int anslen) {
  return OnThreadState(NEXT(__res_query), dname, cls, type, answer, anslen);
}

GONET_HOOK int res_search(const char* dname, int cls, int type, unsigned char* answer, int anslen) {
  return OnThreadState(NEXT(res_search), dname, cls, type, answer, anslen);
}

GONET_HOOK int __res_search(const char* dname, int cls, int type, unsigned char* answer,
                            int anslen) {
  return OnThreadState(NEXT(__res_search), dname, cls, type, answer, anslen);
}

GONET_HOOK int res_querydomain(const char* name, const char* domain, int cls, int type,
                               unsigned char* answer, int anslen) {
  return OnThreadState(NEXT(res_querydomain), name, domain, cls, type, answer, anslen);
}

GONET_HOOK int __res_querydomain(const char* name, const char* domain, int cls, int type,
                                 unsigned char* answer, int anslen) {
  return OnThreadState(NEXT(__res_querydomain), name, domain, cls, type, answer, anslen);
}

GONET_HOOK int res_send(const unsigned char* msg, int msglen, unsigned char* answer, int anslen) {
  return OnThreadState(NEXT(res_send), msg, msglen, answer, anslen);
}

GONET_HOOK int __res_send(const unsigned char* msg, int msglen, unsigned char* answer, int anslen) {
  return OnThreadState(NEXT(__res_send), msg, msglen, answer, anslen);
}
