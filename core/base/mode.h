// core/base/: vocabulary every layer reads: the mode and configuration (this file), raw syscalls,
// spinlock, arena, durations, parse errors, signal policy, OS threads. May include: nothing of
// core (core/README.md: Layers, LOCKING).
//
// The runtime's vocabulary, read by every layer: the run mode, the configuration, and the
// re-entry guard. The values are set once by runtime/ (Init, InitForTest) before any hook acts.
//
// Re-entry: a signal handler that runs while its thread is inside core, and calls a hooked
// function, must not touch core again (it could wait for a spinlock or a direction lock that its
// own interrupted frame holds). ReentryGuard counts core frames per thread; a nested call is
// passed through to the kernel unchanged.
#pragma once

#include <cstdint>

namespace gonet::core {

enum class RunMode { kOff = 0, kThreads, kFibers, kPassthrough };

struct Config {
  RunMode mode = RunMode::kThreads;
  int64_t read_timeout_ns = 0;     // policy for sockets whose app set no SO_RCVTIMEO (0 = none)
  int64_t write_timeout_ns = 0;    // policy for sockets whose app set no SO_SNDTIMEO
  int64_t connect_timeout_ns = 0;  // policy for connects on sockets with no SO_SNDTIMEO
  bool stats_at_exit = false;
  // Threads mode: make blocking calls in the kernel and wake them with SIGURG on close
  // (threads/kernel_wait.h), instead of parking on a futex until the netpoller thread says ready.
  bool threads_wait_kernel = true;
  int workers = 0;  // fibers mode: 0 = one per CPU in the affinity mask
};

// Inline: every hooked call asks (out of line, each was a call to another cache line of code).
namespace internal {
extern Config g_config;
}
extern RunMode g_mode;
inline const Config& config() { return internal::g_config; }
inline RunMode mode() { return g_mode; }
// Sets both (runtime/ only: Init, InitForTest).
void SetConfig(const Config& c);

// "threads", "fibers", "passthrough" (and "off"); the stats segment stores the mode as its int.
const char* ModeName(RunMode mode);
// "threads", "fibers", "passthrough" -> mode; false if unknown.
bool ParseMode(const char* text, RunMode* out);

extern __thread int t_core_depth __attribute__((tls_model("initial-exec")));

// True when core should handle the call: initialised, not passthrough mode, not re-entered.
inline bool Enabled() {
  return (g_mode == RunMode::kThreads || g_mode == RunMode::kFibers) && t_core_depth == 0;
}

class ReentryGuard {
 public:
  ReentryGuard() { ++t_core_depth; }
  ~ReentryGuard() { --t_core_depth; }
  ReentryGuard(const ReentryGuard&) = delete;
  ReentryGuard& operator=(const ReentryGuard&) = delete;
};

}  // namespace gonet::core
