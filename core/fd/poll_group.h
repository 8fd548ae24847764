// poll, ppoll, select and pselect over several sockets gonet manages, from a fiber: one park on
// all of them, on the netpoller, instead of a helper OS thread per waiting call (issue 13:
// stunnel polls its two sockets before every transfer; at 50 connections that was 51
// gonet-offload threads).
//
// The waiter (a "poll group", one call's worth of state on the fiber's stack):
//   1. takes an fd reference on every socket named (Go's fdMutex: none is closed under it) and
//      arms each with the netpoller (edge-triggered, both directions);
//   2. registers its parker as each pollDesc's watcher (poll_desc.h), so that any readiness
//      edge, and any close (Evict), of any of them unparks it;
//   3. asks the kernel with a zero timeout (the program's own call, the probe): an answer, or
//      an error, is returned as it is. Because the watchers were registered first, readiness
//      that arrives after the probe raises an edge that finds them: no wake-up is lost;
//   4. parks until an unpark or the deadline, then goes back to 3; at the deadline the last
//      probe is the answer (0 if still nothing).
// So revents and fd sets are always the kernel's own, made at the moment the call returns.
// Anything else is left to the caller (kPassthrough), which offloads the call: an fd that is not
// a socket gonet manages (a pipe, a tty, an epoll fd), events with no edge gonet waits for
// (POLLPRI, select's exceptfds), more than kMaxSockets sockets, a socket another poll group
// already watches, or a socket being closed (the caller offloads with the time left, and the
// kernel then reports POLLNVAL or EBADF for it exactly as it would).
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>

#include "core/base/base.h"

namespace gonet::core {

// The kernel's zero-timeout answer to the program's call: >= 0, or -errno.
using PollProbe = int (*)(void* ctx);

inline constexpr size_t kMaxPollGroupSockets = 128;

// fds: what to wait on (fd < 0 entries are skipped, as poll does); only the fd and events are
// read. deadline_ns: CLOCK_MONOTONIC, 0 = none. Thread rule: a fiber only.
IoResult WaitSockets(const pollfd* fds, size_t n, int64_t deadline_ns, PollProbe probe, void* ctx);

}  // namespace gonet::core
