// poll, ppoll, select, pselect and epoll_wait from a fiber, over any fds epoll can watch: one
// park on all of them, on the netpoller, instead of a helper OS thread per waiting call (issue
// 13: stunnel polls its two sockets and its signal pipe before every transfer; at 50
// connections that was 51 gonet-offload threads).
//
// The waiter (a "poll group", one call's worth of state on the fiber's stack):
//   1. (the caller) asks the kernel with a zero timeout (the program's own call, the probe): an
//      answer, or an error, is returned as it is, and nothing is registered (the common case:
//      something is ready);
//   2. registers a watch on every fd named, so that any readiness edge of any of them unparks
//      it:
//      - a socket gonet manages: an fd reference (Go's fdMutex: it is not closed under us), the
//        socket armed with the netpoller, and our parker as its pollDesc's watcher (poll_desc.h),
//        so that a close (Evict) ends the wait too;
//      - anything else epoll accepts (a pipe, FIFO, eventfd, timerfd, signalfd, tty, the
//        program's own epoll fd, a managed socket another poll group already watches): a private
//        watch, i.e. a copy of the fd (F_DUPFD_CLOEXEC, above the numbers the program allocates)
//        registered with the netpoller under a pollDesc of its own, for the wait only. The copy
//        is what makes it safe and shareable: epoll keys a registration on (open file, fd
//        number), so every waiter's copy is a registration of its own (no EEXIST when 50 fibers
//        poll one pipe), and neither a close nor a dup2 of the program's number can make our
//        EPOLL_CTL_DEL name another file. Holding the open file while we wait is what the
//        kernel's own poll does (its wait-queue entries hold a reference on every file);
//      - a file epoll refuses with EPERM (a regular file, a directory, /dev/null): poll reports
//        it ready, or never, without waiting, so it needs no watch;
//   3. probes again. Because the watches were registered first, readiness that arrives after
//      this probe raises an edge that finds them: no wake-up is lost;
//   4. parks until an unpark, a signal or the deadline, then goes back to 3; at the deadline the
//      last probe is the answer (0 if still nothing); a signal whose handler ran ends the wait
//      with EINTR, as poll, select and epoll_wait are never restarted (signal(7)).
// A call with a signal mask (ppoll, pselect, epoll_pwait) waits inside a SignalWait
// (fibers/fiber_signals.h): the fiber's mask is the call's for the park, so step 4's signals are
// those the mask lets through, and a watch brings it the process-directed ones it waits for.
// So revents, fd sets and epoll events are always the kernel's own, made at the moment the call
// returns. Anything else is left to the caller (kPassthrough), which offloads the call: events
// with no edge gonet waits for (POLLPRI, POLLRDBAND, select's exceptfds), more than
// kMaxPollGroupFds fds, an fd epoll refuses otherwise (ELOOP, ENOSPC...) or that cannot be
// copied (EMFILE), or a managed socket being closed (the caller offloads with the time left, and
// the kernel then reports POLLNVAL or EBADF for it exactly as it would).
// Limit of the private copies: a fork while a poll group waits leaves the child its copies (the
// waiter does not exist in the child); they close at exec (close-on-exec).
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>

#include "core/base/base.h"

namespace gonet::core {

// The kernel's zero-timeout answer to the program's call: >= 0, or -errno.
using PollProbe = int (*)(void* ctx);

inline constexpr size_t kMaxPollGroupFds = 128;

// fds: what to wait on (fd < 0 entries are skipped, as poll does); only the fd and events are
// read (POLLIN/POLLOUT and their RDNORM/WRNORM/RDHUP twins; an epoll fd is waited on with
// POLLIN). deadline_ns: CLOCK_MONOTONIC, 0 = none. Thread rule: a fiber only.
IoResult WaitFds(const pollfd* fds, size_t n, int64_t deadline_ns, PollProbe probe, void* ctx);

}  // namespace gonet::core
