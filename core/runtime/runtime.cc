#include "core/runtime/runtime.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/base/sanitizer_thread_start.h"
#include "core/base/signal_policy.h"
#include "core/base/sys.h"
#include "core/base/thread_signals.h"
#include "core/fd/faults.h"
#include "core/fd/fd_table.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/fiber_stack.h"
#include "core/fibers/fiber_sync.h"
#include "core/fibers/fiber_tls.h"
#include "core/fibers/signal_route.h"
#include "core/fibers/syscall_offload.h"
#include "core/fibers/tls_scan.h"
#include "core/observe/crash_report.h"
#include "core/observe/dump.h"
#include "core/poll/netpoller.h"
#include "core/poll/poll_desc.h"
#include "core/runtime/config.h"
#include "core/stats/stats.h"
#include "core/stats/stats_shm.h"  // ops (issue 6): live-stats segment
#include "core/threads/kernel_wait.h"
#include "core/threads/sigurg.h"
#include "core/threads/thread_parker.h"

namespace gonet::core {

namespace {
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
  SigurgAfterForkChild();
  KernelWaitAfterForkChild();
  ThreadParkersAfterForkChild();
  StatsSegmentAfterForkChild();  // the child's own live-stats segment
  // Fibers mode: the forking thread's worker, if any, is the only one left (fiber_scheduler.cc).
  FiberSyncAfterForkChild();
  fiber_tls::AfterForkChild();
  FiberStackPool::AfterForkChild();
  FiberSchedulerAfterForkChild();
  SyscallOffloadAfterForkChild();
}

void AtExitStats() { PrintStatsSummary(); }

// A fiber's signal interrupting its offloaded call (syscall_offload.h), via gonet's SIGURG.
// Or a signal for a fiber that runs (fibers/signal_kick.cc).
bool ClaimOffloadInterrupt(const siginfo_t* si, void* uc) {
  if (FiberTask::IsKick(si)) {
    FiberTask::OnKick(si, uc);
    return true;
  }
  if (!IsOffloadInterrupt(si)) return false;
  NoteOffloadInterrupt(si, uc);
  return true;
}

void Configure(const Config& c) {
  SetConfig(c);
  SetArmHook(&StartNetpollerDriver);
  SetDumpAnswerer(&AnswerDumpRequest);
  SetSysmonStartHook(&PublishDumpAnswerer);
  SetSigurgClaim(&ClaimOffloadInterrupt);
}
}  // namespace

void StartNetpollerDriver() {
  // Fibers mode: no driver thread; idle workers poll (fiber_scheduler.h), so start them.
  if (mode() == RunMode::kFibers) {
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
  // Issue 14: __thread/thread_local per fiber; names on stderr what must stay shared.
  if (c.mode == RunMode::kFibers) {
    fiber_tls::Init();
    // The program's handlers behind gonet's trampoline, so that a process-directed signal reaches
    // a fiber that accepts it (fibers/signal_route.h).
    AdoptProgramHandlers();
  }
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

void PrintStatsSummary() {
  ErrnoGuard keep;
  char buf[4096];
  int head =
      snprintf(buf, sizeof buf, "gonet stats (pid %d, mode %s):\n", getpid(), ModeName(mode()));
  size_t len = head > 0 ? static_cast<size_t>(head) : 0;
  len += FormatStats(Stats(), buf + len, sizeof buf - len);
  if (Faults().enabled() && len < sizeof buf) {
    len += Faults().FormatInjections(buf + len, sizeof buf - len);
  }
  sys::Call(SYS_write, 2, buf, len);
}

}  // namespace gonet::core
