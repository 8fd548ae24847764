// transcript.h: how a conformance scenario reports what it observed.
//
// A scenario runs twice, natively and under LD_PRELOAD=libgonet.so, and the runner diffs the two
// transcripts, so a transcript may only contain what the kernel's semantics fix: return values,
// errno names, byte counts and checksums, signals seen, EOF. Never ports, pids, fd numbers or
// durations: a duration is reported only as "did the call wait at least its timeout, and return
// well before the timeout plus a generous slack".
#pragma once

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

namespace conf {

// ErrnoName: "EAGAIN" for EAGAIN. Names are stable across runs and machines; strerror text is
// not (locale), and raw numbers make a diff unreadable.
inline const char* ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  if (name != nullptr) return name;
  static thread_local char unknown[32];
  snprintf(unknown, sizeof unknown, "errno#%d", err);
  return unknown;
}

// Say writes one line with a single write(2) to stdout: lines printed by several threads never
// interleave, and nothing sits in a stdio buffer that a fork would duplicate. Preserves errno.
inline void Say(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
inline void Say(const char* fmt, ...) {
  int saved_errno = errno;
  char line[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if (n > static_cast<int>(sizeof line) - 2) n = sizeof line - 2;
  line[n++] = '\n';
  for (int off = 0; off < n;) {
    ssize_t w = write(STDOUT_FILENO, line + off, n - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    off += w;
  }
  errno = saved_errno;
}

// Show prints "<what> -> <r>" or "<what> -> -1 <ERRNO>" and returns r with errno intact. Pass
// the call itself as r: errno is read first thing, before anything else can touch it.
inline long Show(long r, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline long Show(long r, const char* fmt, ...) {
  int err = errno;
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (r < 0) {
    Say("%s -> %ld %s", what, r, ErrnoName(err));
  } else {
    Say("%s -> %ld", what, r);
  }
  errno = err;
  return r;
}

// ShowOk prints "<what> -> ok" for r >= 0 (when the value itself varies, e.g. an fd number or a
// pid) or "-1 <ERRNO>".
inline long ShowOk(long r, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline long ShowOk(long r, const char* fmt, ...) {
  int err = errno;
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (r < 0) {
    Say("%s -> %ld %s", what, r, ErrnoName(err));
  } else {
    Say("%s -> ok", what);
  }
  errno = err;
  return r;
}

// ShowRc prints "<what> -> 0" or "<what> -> <ERRNO>" for calls that return an error number
// instead of setting errno (pthread_*, posix_spawn).
inline int ShowRc(int rc, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
inline int ShowRc(int rc, const char* fmt, ...) {
  char what[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (rc == 0) {
    Say("%s -> 0", what);
  } else {
    Say("%s -> %s", what, ErrnoName(rc));
  }
  return rc;
}

// Fail ends a scenario whose set-up (not the behaviour under test) went wrong. The exit status
// differs from every scenario's own, so the runner's diff shows it.
[[noreturn]] inline void Fail(const char* what) {
  int err = errno;
  Say("SETUP FAILED: %s: %s", what, ErrnoName(err));
  _exit(3);
}

inline long Must(long r, const char* what) {
  if (r < 0) Fail(what);
  return r;
}

inline const char* YesNo(bool b) { return b ? "yes" : "no"; }

// Checksum (FNV-1a, 32 bit) stands for the bytes themselves in a transcript.
inline uint32_t Checksum(const void* data, size_t len, uint32_t h = 2166136261u) {
  const unsigned char* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < len; ++i) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

// Pattern fills a buffer with bytes that depend on their offset in the stream, so a lost,
// duplicated or reordered chunk changes the checksum.
inline void Pattern(void* data, size_t len, size_t stream_offset = 0) {
  unsigned char* p = static_cast<unsigned char*>(data);
  for (size_t i = 0; i < len; ++i) {
    size_t k = stream_offset + i;
    p[i] = static_cast<unsigned char>((k * 131 + (k >> 8) * 7 + 11) & 0xff);
  }
}

inline int64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline void SleepMs(int ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

// Generous upper slack for "returned after its timeout": a loaded 2-core machine can be late by
// a lot, but never by this much unless the deadline was lost.
constexpr int kSlackMs = 2000;

// The kernel turns a timeout into jiffies and its timer may fire up to one tick (4 ms at
// HZ=250, 10 ms at HZ=100) before the full time has passed on CLOCK_MONOTONIC.
constexpr int kTickMs = 10;

// Stopwatch measures one call; the transcript gets only the verdict of Waited/Immediate.
class Stopwatch {
 public:
  Stopwatch() : start_ns_(NowNs()) {}
  int64_t ElapsedMs() const { return (NowNs() - start_ns_) / 1000000; }

  // "waited its timeout": elapsed >= timeout (less a tick) and < timeout + slack.
  const char* Waited(int timeout_ms) const {
    int64_t ms = ElapsedMs();
    if (ms < timeout_ms - kTickMs) return "returned EARLY, before the timeout";
    if (ms >= timeout_ms + kSlackMs) return "returned LATE, far after the timeout";
    return "waited the timeout";
  }

  // "returned without waiting for a timeout of timeout_ms".
  const char* Before(int timeout_ms) const {
    return ElapsedMs() < timeout_ms - kTickMs ? "before the timeout" : "NOT before the timeout";
  }

 private:
  int64_t start_ns_;
};

}  // namespace conf
