#include "core/runtime.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/thread_signals.h"
#include "core/config.h"
#include "core/crash_report.h"
#include "core/faults.h"
#include "core/fd_table.h"
#include "core/fiber_scheduler.h"
#include "core/kernel_wait.h"
#include "core/netpoller.h"
#include "core/poll_desc.h"
#include "core/sanitizer_thread_start.h"
#include "core/signal_policy.h"
#include "core/stats.h"
#include "core/stats_shm.h"  // ops (issue 6): live-stats segment
#include "core/sys.h"
#include "core/tls_scan.h"

namespace gonet::core {

RunMode g_mode = RunMode::kOff;
__thread int t_core_depth __attribute__((tls_model("initial-exec"))) = 0;

namespace {
Config g_config;
std::atomic<int> g_driver_state{0};  // 0 none, 1 starting, 2 running

void* DriverMain(void*) {
  SanitizerThreadStart();  // made with libc's pthread_create (sanitizer_thread_start.h)
  // The driver must not take the program's signals: they belong to the program's own threads
  // (but a fault in it must still be delivered: base/thread_signals.h).
  ApplyHelperThreadMask();
  pthread_setname_np(pthread_self(), "gonet-netpoll");
  for (;;) Netpoller::Get().Poll(-1);
  return nullptr;
}

void AtForkChild() {
  // Only this thread exists in the child. Forget every other thread's state, then give the child
  // its own epoll instance; pollDescs re-arm on next use (DESIGN.md: fork).
  g_driver_state.store(0, std::memory_order_relaxed);
  FdTable::ResetAfterFork();
  PollDesc::ResetAllAfterFork();
  Netpoller::Get().AfterForkChild();
  KernelWaitAfterForkChild();
  StatsSegmentAfterForkChild();  // ops (issue 6): the child's own live-stats segment
}

void AtExitStats() { PrintStatsSummary(); }

void Configure(const Config& c) {
  g_config = c;
  g_mode = c.mode;
}
}  // namespace

void StartNetpollerDriver() {
  // Fibers mode: no driver thread; idle workers poll (fiber_scheduler.h), so start them.
  if (g_mode == RunMode::kFibers) {
    FiberScheduler::EnsureStarted();
    return;
  }
  if (GONET_LIKELY(g_driver_state.load(std::memory_order_acquire) == 2)) return;
  int expect = 0;
  if (!g_driver_state.compare_exchange_strong(expect, 1, std::memory_order_acq_rel)) return;
  pthread_t t;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  int r = pthread_create(&t, &attr, DriverMain, nullptr);
  pthread_attr_destroy(&attr);
  g_driver_state.store(r == 0 ? 2 : 0, std::memory_order_release);
}

void Init() {
  ErrnoGuard keep;
  Config c;
  LoadConfigFromEnv(&c);
  ScanInstalledHandlers();
  pthread_atfork(nullptr, nullptr, AtForkChild);
  if (c.stats_at_exit) atexit(AtExitStats);
  Configure(c);
  if (c.mode == RunMode::kThreads && c.threads_wait_kernel) {
    InstallKernelWaitHandler();
  } else if (c.mode != RunMode::kPassthrough) {
    // gonet dump's SIGURG handler (dump.h), now rather than at the first park: installing it
    // lazily could race with the program's own sigaction(SIGURG) on another thread.
    EnsureDumpHandler();
  }
  if (c.mode == RunMode::kFibers) WarnAboutThreadLocalStorage();  // issue 5: TLS is per worker
  InstallCrashReporter();
  // ops (issue 6): publish the counters for `gonet stats`; last, so the flags are final.
  CreateStatsSegment(static_cast<int>(c.mode),
                     KernelWaitEnabled() ? uint32_t{kShmFlagKernelWait} : 0u);
}

void InitForTest(const Config& c) {
  static std::atomic<bool> once{false};
  if (!once.exchange(true)) pthread_atfork(nullptr, nullptr, AtForkChild);
  Configure(c);
  if (c.mode == RunMode::kThreads && c.threads_wait_kernel) InstallKernelWaitHandler();
}

const Config& config() { return g_config; }
RunMode mode() { return g_mode; }

void PrintStatsSummary() {
  ErrnoGuard keep;
  char buf[4096];
  int head =
      snprintf(buf, sizeof buf, "gonet stats (pid %d, mode %s):\n", getpid(), ModeName(g_mode));
  size_t len = head > 0 ? static_cast<size_t>(head) : 0;
  len += FormatStats(Stats(), buf + len, sizeof buf - len);
  if (Faults().enabled() && len < sizeof buf) {
    len += Faults().FormatInjections(buf + len, sizeof buf - len);
  }
  sys::Call(SYS_write, 2, buf, len);
}

}  // namespace gonet::core
