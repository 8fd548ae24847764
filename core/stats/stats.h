// core/stats/: the counters (this file), the live-stats segment (stats_shm.h) and the dump area's
// layout (dump_area.h). May include: base/ (core/README.md: Layers, LOCKING).
//
// Process-wide counters. A plain block of relaxed atomics with a fixed layout, so it can live in
// a shared-memory segment that `gonet stats PID` maps read-only. Relaxed is enough: each counter
// is read on its own, and no decision in gonet is taken on a counter's value.
#pragma once

#include <atomic>
#include <cstdint>

namespace gonet::core {

// X-macro: name, help. The order is the layout; append only.
#define GONET_STATS_COUNTERS(X)                                                                \
  X(parks, "operations that parked waiting for readiness")                                     \
  X(wakes_io, "parked operations woken by readiness")                                          \
  X(wakes_timeout, "parked operations woken by a deadline")                                    \
  X(wakes_close, "parked operations woken by close (EBADF)")                                   \
  X(wakes_signal, "parked operations interrupted by a signal (EINTR)")                         \
  X(eagain_retries, "non-blocking attempts that returned EAGAIN")                              \
  X(epoll_waits, "epoll_wait calls by the netpoller")                                          \
  X(epoll_events, "events returned by epoll_wait")                                             \
  X(stale_events, "events dropped for a closed or reused fd (fdseq)")                          \
  X(fds_armed, "fds registered with the netpoller (now)")                                      \
  X(fds_adopted, "inherited or unknown sockets adopted on first use")                          \
  X(threads_parked, "threads or fibers parked on a pollDesc right now")                        \
  X(fibers_live, "fibers alive (fibers mode)")                                                 \
  X(faults_injected, "faults injected by --fault")                                             \
  X(deadline_policy_timeouts, "timeouts from --read/--write/--connect-timeout")                \
  X(invariant_failures, "broken internal invariants (a gonet bug)")                            \
  X(kernel_waits, "blocking socket calls made in the kernel (threads mode)")                   \
  X(threads_in_kernel, "threads blocked in a socket call made in the kernel (now)")            \
  X(kernel_wakes_close, "kernel-blocked calls woken by close or dup2 (EBADF)")                 \
  X(kernel_wakes_signal, "kernel-blocked calls interrupted by a signal (EINTR)")               \
  X(fiber_handoffs, "workers handed to another thread while a fiber blocked (fibers)")         \
  X(fiber_steals, "new fibers taken by an idle worker from a busy one (fibers)")               \
  X(offloaded_calls, "blocking calls a fiber ran on a helper thread while it parked (fibers)") \
  X(drained_parks, "receives that parked at once: the last one had emptied the queue")         \
  X(stack_pages_released, "stack pages below SP of long-parked fibers given back (fibers)")

struct Counters {
#define GONET_DECLARE_COUNTER(name, help) std::atomic<int64_t> name{0};
  GONET_STATS_COUNTERS(GONET_DECLARE_COUNTER)
#undef GONET_DECLARE_COUNTER
};

// The live block. Points at a static block until the runtime moves it into shared memory.
namespace internal {
extern std::atomic<Counters*> g_stats_block;
}
inline Counters& Stats() { return *internal::g_stats_block.load(std::memory_order_relaxed); }
void SetStatsBlock(Counters* block);

inline void Count(std::atomic<int64_t>& c, int64_t n = 1) {
  c.fetch_add(n, std::memory_order_relaxed);
}

// Writes "name value" lines for every counter into buf (no allocation, async-signal-safe apart
// from the caller's write). Returns the length written.
size_t FormatStats(const Counters& c, char* buf, size_t cap);

}  // namespace gonet::core
