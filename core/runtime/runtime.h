// The runtime: configuration, the mode switch, re-entry protection, the netpoller driver and
// fork handling. The shim's constructor calls Init; every hook asks Enabled() first.
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
  // (kernel_wait.h), instead of parking on a futex until the netpoller thread says ready.
  bool threads_wait_kernel = true;
  int workers = 0;  // fibers mode: 0 = one per CPU in the affinity mask
};

// Reads GONET_* from the environment (config.cc), registers the fork handlers, scans signal
// handlers. Never throws, never allocates through malloc before main: safe in a constructor.
void Init();
// For tests: run core with an explicit configuration (no environment).
void InitForTest(const Config& config);

const Config& config();
RunMode mode();

extern __thread int t_core_depth __attribute__((tls_model("initial-exec")));

// True when core should handle the call: initialised, not passthrough mode, not re-entered.
inline bool Enabled() {
  extern RunMode g_mode;
  return (g_mode == RunMode::kThreads || g_mode == RunMode::kFibers) && t_core_depth == 0;
}

class ReentryGuard {
 public:
  ReentryGuard() { ++t_core_depth; }
  ~ReentryGuard() { --t_core_depth; }
  ReentryGuard(const ReentryGuard&) = delete;
  ReentryGuard& operator=(const ReentryGuard&) = delete;
};

// Threads mode: starts the thread that runs Netpoller::Poll(-1) and wakes parked threads, on the
// first arm (never at load: a program that never blocks on a socket never gets the thread).
void StartNetpollerDriver();

// Prints the stats summary to stderr (GONET_STATS=1 at exit).
void PrintStatsSummary();

}  // namespace gonet::core
