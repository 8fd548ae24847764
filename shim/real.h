// gonet::real: the next definition of every interposed libc function (dlsym RTLD_NEXT), so that
// `real::recv(...)` visibly goes to libc and the kernel.
//
// Resolution is lazy and re-entrancy safe: dlsym may allocate, and an allocator may call a hooked
// function (reading /proc, say) before the symbol it needs is resolved. While a thread is inside
// dlsym, a call to a real:: function that is not resolved yet goes straight to the kernel with
// syscall(2), which is what libc's wrapper would have done anyway.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>

namespace gonet::real {

int socket(int domain, int type, int protocol);
int socketpair(int domain, int type, int protocol, int sv[2]);
int accept(int fd, sockaddr* addr, socklen_t* addrlen);
int accept4(int fd, sockaddr* addr, socklen_t* addrlen, int flags);
int connect(int fd, const sockaddr* addr, socklen_t addrlen);
ssize_t read(int fd, void* buf, size_t n);
ssize_t readv(int fd, const iovec* iov, int iovcnt);
ssize_t write(int fd, const void* buf, size_t n);
ssize_t writev(int fd, const iovec* iov, int iovcnt);
ssize_t recv(int fd, void* buf, size_t n, int flags);
ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* addr, socklen_t* addrlen);
ssize_t recvmsg(int fd, msghdr* msg, int flags);
int recvmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags, timespec* timeout);
ssize_t send(int fd, const void* buf, size_t n, int flags);
ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* addr,
               socklen_t addrlen);
ssize_t sendmsg(int fd, const msghdr* msg, int flags);
int sendmmsg(int fd, mmsghdr* vec, unsigned vlen, int flags);
int close(int fd);
int close_range(unsigned first, unsigned last, int flags);
void closefrom(int lowfd);
int dup(int fd);
int dup2(int oldfd, int newfd);
int dup3(int oldfd, int newfd, int flags);
int fcntl(int fd, int cmd, unsigned long arg);
int fcntl64(int fd, int cmd, unsigned long arg);
int ioctl(int fd, unsigned long request, void* arg);
int setsockopt(int fd, int level, int name, const void* value, socklen_t len);
int sigaction(int sig, const struct sigaction* act, struct sigaction* old);
sighandler_t signal(int sig, sighandler_t handler);
ssize_t __read_chk(int fd, void* buf, size_t n, size_t buflen);
ssize_t __recv_chk(int fd, void* buf, size_t n, size_t buflen, int flags);
ssize_t __recvfrom_chk(int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* addr,
                       socklen_t* addrlen);
// The waits fibers mode offloads (shim/wait_calls.cc).
int poll(pollfd* fds, nfds_t nfds, int timeout_ms);
int ppoll(pollfd* fds, nfds_t nfds, const timespec* timeout, const sigset_t* sigmask);
int select(int nfds, fd_set* r, fd_set* w, fd_set* e, timeval* timeout);
int pselect(int nfds, fd_set* r, fd_set* w, fd_set* e, const timespec* timeout,
            const sigset_t* sigmask);
int epoll_wait(int epfd, epoll_event* events, int maxevents, int timeout_ms);
int epoll_pwait(int epfd, epoll_event* events, int maxevents, int timeout_ms,
                const sigset_t* sigmask);
int epoll_pwait2(int epfd, epoll_event* events, int maxevents, const timespec* timeout,
                 const sigset_t* sigmask);
pid_t waitpid(pid_t pid, int* status, int options);
pid_t wait4(pid_t pid, int* status, int options, rusage* usage);
int waitid(idtype_t idtype, id_t id, siginfo_t* info, int options);
// libc's dlopen itself, for the shim's entry that jumps to it with the program's return address
// (shim/dl.cc) and for core's pinning of objects (fiber_tls.h); nullptr if unresolved.
void* (*DlopenEntry())(const char* file, int flags);

// libc's pthread_create: gonet's own threads are OS threads in every mode (core/base/os_thread.h).
int pthread_create(pthread_t* thread, const pthread_attr_t* attr, void* (*start)(void*), void* arg);

// libc's definition of name (dlsym RTLD_NEXT), for the hooks that resolve by name (shim/next.h).
// While it runs, this thread's real:: calls take their raw fallbacks (see the top).
void* ResolveNext(const char* name);

// Where the calling OS thread keeps its resolver-state pointer: glibc's __resp (GLIBC_PRIVATE),
// what __res_state() returns and res_query and its family use as _res. nullptr if this glibc
// does not export it, or it does not hold what __res_state() returns (the shim then leaves
// those calls inline: core/fibers/resolver_offload.h).
res_state* ResStateSlot();

// Resolves every symbol now (the library's constructor), so that later calls never enter dlsym.
void ResolveAll();

}  // namespace gonet::real
