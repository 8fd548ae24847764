// Small vocabulary shared by all of core: results, errno discipline, clocks, invariants.
#pragma once

#include <sys/types.h>
#include <time.h>

#include <cerrno>
#include <cstdint>

namespace gonet::core {

// kPassthrough is not an errno: it tells the shim "gonet does not handle this call; give it to
// the real libc function unchanged" (a non-socket fd, an fd the app made non-blocking itself,
// passthrough mode, a nested call from a signal handler). Keeping the real call in the shim keeps
// libc's own behaviour (cancellation points, fortify checks) for everything gonet does not own.
inline constexpr int kPassthrough = -1;

// The result of a core operation, as libuv returns negative errno: the kernel's error is taken as
// a value right after the syscall and never re-read from errno later (STYLE.md §5).
struct IoResult {
  ssize_t n = 0;  // bytes or the call's return value, valid when err == 0
  int err = 0;    // 0, a kernel errno, or kPassthrough

  static IoResult Ok(ssize_t value) { return IoResult{value, 0}; }
  static IoResult Err(int error) { return IoResult{-1, error}; }
  static IoResult Passthrough() { return IoResult{-1, kPassthrough}; }
  bool ok() const { return err == 0; }
  bool passthrough() const { return err == kPassthrough; }
};

// Restores errno on scope exit: every internal syscall on a path that succeeds must leave the
// application's errno as it was (DESIGN.md: "errno is preserved across every path that does not
// fail").
class ErrnoGuard {
 public:
  ErrnoGuard() : saved_(errno) {}
  ~ErrnoGuard() { errno = saved_; }
  ErrnoGuard(const ErrnoGuard&) = delete;
  ErrnoGuard& operator=(const ErrnoGuard&) = delete;

 private:
  int saved_;
};

// Monotonic nanoseconds: deadlines are absolute on this clock (Go's nanotime). vDSO, no syscall.
inline int64_t Nanotime() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// CLOCK_MONOTONIC as of the last scheduler tick (CLOCK_MONOTONIC_COARSE): never ahead of
// Nanotime, behind it by up to one tick (1-10 ms). A read costs about 3 ns against 21 ns (vDSO,
// measured here), so bookkeeping done on every fiber switch or blocked call uses it.
inline int64_t CoarseNanotime() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A timespec as nanoseconds, saturating instead of overflowing (a huge timeout means "never").
inline int64_t TimespecNs(const timespec& t) {
  constexpr int64_t kMaxSec = INT64_MAX / 1000000000 - 1;
  if (t.tv_sec > kMaxSec) return INT64_MAX;
  if (t.tv_sec < -kMaxSec) return -INT64_MAX;
  return static_cast<int64_t>(t.tv_sec) * 1000000000 + t.tv_nsec;
}

// Adds a non-negative duration to now without overflowing: a huge timeout means "never".
inline int64_t DeadlineAfter(int64_t timeout_ns) {
  if (timeout_ns <= 0) return 0;
  int64_t now = Nanotime();
  return timeout_ns > INT64_MAX - now ? INT64_MAX : now + timeout_ns;
}

void NoteInvariantFailure(const char* what, const char* file, int line);

}  // namespace gonet::core

#define GONET_LIKELY(x) __builtin_expect(!!(x), 1)
#define GONET_UNLIKELY(x) __builtin_expect(!!(x), 0)

// gonet must never crash its host: a broken invariant aborts in debug builds (like Go's throw) and
// is counted in release builds, where `gonet stats` shows it as invariant_failures.
#define GONET_DCHECK(cond, what)                                                                \
  do {                                                                                          \
    if (GONET_UNLIKELY(!(cond))) ::gonet::core::NoteInvariantFailure(what, __FILE__, __LINE__); \
  } while (0)
