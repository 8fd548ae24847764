#include "shim/real.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

namespace gonet::real {
namespace {

// Set while this thread is inside dlsym: a nested real:: call must not call dlsym again.
__thread int t_resolving __attribute__((tls_model("initial-exec"))) = 0;

template <typename Fn>
Fn Resolve(std::atomic<Fn>& slot, const char* name) {
  Fn fn = slot.load(std::memory_order_acquire);
  if (__builtin_expect(fn != nullptr, 1)) return fn;
  if (t_resolving) return nullptr;
  ++t_resolving;
  fn = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, name));
  --t_resolving;
  if (fn != nullptr) slot.store(fn, std::memory_order_release);
  return fn;
}

// Raw fallbacks that must not write the caller's timeout (libc's wrappers copy it: the kernel
// writes the time left into the struct it is given).
int RawPpoll(pollfd* f, nfds_t n, const timespec* t, const sigset_t* m) {
  timespec copy = t != nullptr ? *t : timespec{};
  return static_cast<int>(syscall(SYS_ppoll, f, n, t != nullptr ? &copy : nullptr, m, _NSIG / 8));
}

int RawPselect(int n, fd_set* r, fd_set* w, fd_set* e, const timespec* t, const sigset_t* m) {
  timespec copy = t != nullptr ? *t : timespec{};
  struct {
    const sigset_t* set;
    size_t size;
  } mask{m, _NSIG / 8};
  return static_cast<int>(syscall(SYS_pselect6, n, r, w, e, t != nullptr ? &copy : nullptr,
                                  m != nullptr ? &mask : nullptr));
}

}  // namespace

// GONET_REAL(ret, name, params, args, fallback): defines real::name, which calls the next `name`
// or, while that cannot be resolved, `fallback` (a raw syscall with the same meaning).
#define GONET_REAL(ret, name, params, args, fallback)          \
  namespace {                                                  \
  std::atomic<ret(*) params> slot_##name{nullptr};             \
  }                                                            \
  ret name params {                                            \
    if (auto fn = Resolve(slot_##name, #name)) return fn args; \
    return static_cast<ret>(fallback);                         \
  }

// No raw fallback can make a thread: while unresolved, report what pthread_create reports for
// "no resources now" (only reachable from inside dlsym, where nothing starts threads).
GONET_REAL(int, pthread_create,
           (pthread_t * t, const pthread_attr_t* a, void* (*f)(void*), void* arg), (t, a, f, arg),
           EAGAIN)
GONET_REAL(int, socket, (int d, int t, int p), (d, t, p), syscall(SYS_socket, d, t, p))
GONET_REAL(int, socketpair, (int d, int t, int p, int sv[2]), (d, t, p, sv),
           syscall(SYS_socketpair, d, t, p, sv))
GONET_REAL(int, accept, (int fd, sockaddr* a, socklen_t* l), (fd, a, l),
           syscall(SYS_accept4, fd, a, l, 0))
GONET_REAL(int, accept4, (int fd, sockaddr* a, socklen_t* l, int f), (fd, a, l, f),
           syscall(SYS_accept4, fd, a, l, f))
GONET_REAL(int, connect, (int fd, const sockaddr* a, socklen_t l), (fd, a, l),
           syscall(SYS_connect, fd, a, l))
GONET_REAL(ssize_t, read, (int fd, void* b, size_t n), (fd, b, n), syscall(SYS_read, fd, b, n))
GONET_REAL(ssize_t, readv, (int fd, const iovec* v, int c), (fd, v, c),
           syscall(SYS_readv, fd, v, c))
GONET_REAL(ssize_t, write, (int fd, const void* b, size_t n), (fd, b, n),
           syscall(SYS_write, fd, b, n))
GONET_REAL(ssize_t, writev, (int fd, const iovec* v, int c), (fd, v, c),
           syscall(SYS_writev, fd, v, c))
GONET_REAL(ssize_t, recv, (int fd, void* b, size_t n, int f), (fd, b, n, f),
           syscall(SYS_recvfrom, fd, b, n, f, nullptr, nullptr))
GONET_REAL(ssize_t, recvfrom, (int fd, void* b, size_t n, int f, sockaddr* a, socklen_t* l),
           (fd, b, n, f, a, l), syscall(SYS_recvfrom, fd, b, n, f, a, l))
GONET_REAL(ssize_t, recvmsg, (int fd, msghdr* m, int f), (fd, m, f), syscall(SYS_recvmsg, fd, m, f))
GONET_REAL(int, recvmmsg, (int fd, mmsghdr* v, unsigned n, int f, timespec* t), (fd, v, n, f, t),
           syscall(SYS_recvmmsg, fd, v, n, f, t))
GONET_REAL(ssize_t, send, (int fd, const void* b, size_t n, int f), (fd, b, n, f),
           syscall(SYS_sendto, fd, b, n, f, nullptr, 0))
GONET_REAL(ssize_t, sendto,
           (int fd, const void* b, size_t n, int f, const sockaddr* a, socklen_t l),
           (fd, b, n, f, a, l), syscall(SYS_sendto, fd, b, n, f, a, l))
GONET_REAL(ssize_t, sendmsg, (int fd, const msghdr* m, int f), (fd, m, f),
           syscall(SYS_sendmsg, fd, m, f))
GONET_REAL(int, sendmmsg, (int fd, mmsghdr* v, unsigned n, int f), (fd, v, n, f),
           syscall(SYS_sendmmsg, fd, v, n, f))
GONET_REAL(int, close, (int fd), (fd), syscall(SYS_close, fd))
GONET_REAL(int, close_range, (unsigned a, unsigned b, int f), (a, b, f),
           syscall(SYS_close_range, a, b, f))
GONET_REAL(void, closefrom, (int low), (low), syscall(SYS_close_range, low, ~0U, 0))
GONET_REAL(int, dup, (int fd), (fd), syscall(SYS_dup, fd))
GONET_REAL(int, dup2, (int a, int b), (a, b),
           a == b ? (syscall(SYS_fcntl, a, F_GETFD) < 0 ? -1 : b) : syscall(SYS_dup3, a, b, 0))
GONET_REAL(int, dup3, (int a, int b, int f), (a, b, f), syscall(SYS_dup3, a, b, f))
GONET_REAL(int, fcntl, (int fd, int c, unsigned long a), (fd, c, a), syscall(SYS_fcntl, fd, c, a))
GONET_REAL(int, fcntl64, (int fd, int c, unsigned long a), (fd, c, a), syscall(SYS_fcntl, fd, c, a))
GONET_REAL(int, ioctl, (int fd, unsigned long r, void* a), (fd, r, a), syscall(SYS_ioctl, fd, r, a))
GONET_REAL(int, setsockopt, (int fd, int lv, int n, const void* v, socklen_t l), (fd, lv, n, v, l),
           syscall(SYS_setsockopt, fd, lv, n, v, l))
// No raw fallback for these: the kernel's sigaction ABI differs from glibc's, and glibc's own
// restorer is needed. They are resolved in the constructor, before any program code runs.
GONET_REAL(int, sigaction, (int s, const struct sigaction* a, struct sigaction* o), (s, a, o),
           (errno = ENOSYS, -1))
GONET_REAL(sighandler_t, signal, (int s, sighandler_t h), (s, h), (errno = ENOSYS, SIG_ERR))
GONET_REAL(ssize_t, __read_chk, (int fd, void* b, size_t n, size_t bl), (fd, b, n, bl),
           syscall(SYS_read, fd, b, n))
GONET_REAL(ssize_t, __recv_chk, (int fd, void* b, size_t n, size_t bl, int f), (fd, b, n, bl, f),
           syscall(SYS_recvfrom, fd, b, n, f, nullptr, nullptr))
GONET_REAL(ssize_t, __recvfrom_chk,
           (int fd, void* b, size_t n, size_t bl, int f, sockaddr* a, socklen_t* l),
           (fd, b, n, bl, f, a, l), syscall(SYS_recvfrom, fd, b, n, f, a, l))

GONET_REAL(int, poll, (pollfd * f, nfds_t n, int t), (f, n, t), syscall(SYS_poll, f, n, t))
GONET_REAL(int, ppoll, (pollfd * f, nfds_t n, const timespec* t, const sigset_t* m), (f, n, t, m),
           RawPpoll(f, n, t, m))
GONET_REAL(int, select, (int n, fd_set* r, fd_set* w, fd_set* e, timeval* t), (n, r, w, e, t),
           syscall(SYS_select, n, r, w, e, t))
GONET_REAL(int, pselect,
           (int n, fd_set* r, fd_set* w, fd_set* e, const timespec* t, const sigset_t* m),
           (n, r, w, e, t, m), RawPselect(n, r, w, e, t, m))
GONET_REAL(int, epoll_wait, (int ep, epoll_event* ev, int n, int t), (ep, ev, n, t),
           syscall(SYS_epoll_wait, ep, ev, n, t))
GONET_REAL(int, epoll_pwait, (int ep, epoll_event* ev, int n, int t, const sigset_t* m),
           (ep, ev, n, t, m), syscall(SYS_epoll_pwait, ep, ev, n, t, m, _NSIG / 8))
GONET_REAL(int, epoll_pwait2,
           (int ep, epoll_event* ev, int n, const timespec* t, const sigset_t* m),
           (ep, ev, n, t, m), syscall(SYS_epoll_pwait2, ep, ev, n, t, m, _NSIG / 8))
GONET_REAL(pid_t, waitpid, (pid_t p, int* s, int o), (p, s, o),
           syscall(SYS_wait4, p, s, o, nullptr))
GONET_REAL(pid_t, wait4, (pid_t p, int* s, int o, rusage* u), (p, s, o, u),
           syscall(SYS_wait4, p, s, o, u))
GONET_REAL(int, waitid, (idtype_t t, id_t id, siginfo_t* i, int o), (t, id, i, o),
           syscall(SYS_waitid, t, id, i, o, nullptr))

#undef GONET_REAL

namespace {
std::atomic<void* (*)(const char*, int)> slot_dlopen{nullptr};
}  // namespace

void* (*DlopenEntry())(const char* file, int flags) { return Resolve(slot_dlopen, "dlopen"); }

void* ResolveNext(const char* name) {
  // No fallback can stand in for a pthread function, so a nested resolution resolves too; the
  // real:: calls dlsym makes meanwhile take their raw fallbacks.
  ++t_resolving;
  void* fn = dlsym(RTLD_NEXT, name);
  // A name glibc keeps only for old binaries (no default version: _pthread_cleanup_push_defer)
  // is found by the version x86_64's glibc first had.
  if (fn == nullptr) fn = dlvsym(RTLD_NEXT, name, "GLIBC_2.2.5");
  --t_resolving;
  return fn;
}

namespace {
// __resp's offset from the thread pointer: glibc's TLS is static (initial-exec), so the offset is
// the same in every thread. kNoSlot: not found.
constexpr intptr_t kNoSlot = 1;          // never a valid offset: the variable is pointer-aligned
std::atomic<intptr_t> g_resp_offset{0};  // 0: not looked up yet

char* ThreadPointer() { return static_cast<char*>(__builtin_thread_pointer()); }
}  // namespace

res_state* ResStateSlot() {
  intptr_t off = g_resp_offset.load(std::memory_order_acquire);
  if (__builtin_expect(off == 0, 0)) {
    if (t_resolving) return nullptr;
    ++t_resolving;
    // dlvsym of a TLS variable answers the calling thread's copy.
    auto* here = static_cast<res_state*>(dlvsym(RTLD_NEXT, "__resp", "GLIBC_PRIVATE"));
    --t_resolving;
    off = here != nullptr && *here == __res_state()
              ? reinterpret_cast<char*>(here) - ThreadPointer()
              : kNoSlot;
    if (off == 0) off = kNoSlot;  // cannot be: the thread pointer holds the TCB, not __resp
    g_resp_offset.store(off, std::memory_order_release);
  }
  if (off == kNoSlot) return nullptr;
  return reinterpret_cast<res_state*>(ThreadPointer() + off);
}

void ResolveAll() {
  Resolve(slot_dlopen, "dlopen");
  Resolve(slot_pthread_create, "pthread_create");
  Resolve(slot_socket, "socket");
  Resolve(slot_socketpair, "socketpair");
  Resolve(slot_accept, "accept");
  Resolve(slot_accept4, "accept4");
  Resolve(slot_connect, "connect");
  Resolve(slot_read, "read");
  Resolve(slot_readv, "readv");
  Resolve(slot_write, "write");
  Resolve(slot_writev, "writev");
  Resolve(slot_recv, "recv");
  Resolve(slot_recvfrom, "recvfrom");
  Resolve(slot_recvmsg, "recvmsg");
  Resolve(slot_recvmmsg, "recvmmsg");
  Resolve(slot_send, "send");
  Resolve(slot_sendto, "sendto");
  Resolve(slot_sendmsg, "sendmsg");
  Resolve(slot_sendmmsg, "sendmmsg");
  Resolve(slot_close, "close");
  Resolve(slot_close_range, "close_range");
  Resolve(slot_closefrom, "closefrom");
  Resolve(slot_dup, "dup");
  Resolve(slot_dup2, "dup2");
  Resolve(slot_dup3, "dup3");
  Resolve(slot_fcntl, "fcntl");
  Resolve(slot_fcntl64, "fcntl64");
  Resolve(slot_ioctl, "ioctl");
  Resolve(slot_setsockopt, "setsockopt");
  Resolve(slot_sigaction, "sigaction");
  Resolve(slot_signal, "signal");
  Resolve(slot___read_chk, "__read_chk");
  Resolve(slot___recv_chk, "__recv_chk");
  Resolve(slot___recvfrom_chk, "__recvfrom_chk");
  Resolve(slot_poll, "poll");
  Resolve(slot_ppoll, "ppoll");
  Resolve(slot_select, "select");
  Resolve(slot_pselect, "pselect");
  Resolve(slot_epoll_wait, "epoll_wait");
  Resolve(slot_epoll_pwait, "epoll_pwait");
  Resolve(slot_epoll_pwait2, "epoll_pwait2");
  Resolve(slot_waitpid, "waitpid");
  Resolve(slot_wait4, "wait4");
  Resolve(slot_waitid, "waitid");
  ResStateSlot();
}

}  // namespace gonet::real
