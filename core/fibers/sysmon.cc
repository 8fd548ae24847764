#include <sys/mman.h>

#include <new>

#include "core/base/os_thread.h"
#include "core/base/sanitizer_thread_start.h"
#include "core/base/sys.h"
#include "core/base/thread_signals.h"
#include "core/fibers/fiber_signals.h"
#include "core/fibers/machine_state.h"
#include "core/fibers/signal_route.h"
#include "core/fibers/worker.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

// A machine waits to be given a worker: at once if it was started with one, else (a spare) until
// the sysmon's handoff. worker is written before given (release).
FiberWorker* AwaitWorker(Machine* m) {
  while (m->given.load(std::memory_order_acquire) == 0) {
    FutexWaitUntil(&m->given, 0, 0);
  }
  m->given.store(0, std::memory_order_relaxed);
  return std::exchange(m->worker, nullptr);
}

// The ticking sysmon's sleep, which PokeSysmon ends early (futex word: 1 once poked).
std::atomic<uint32_t> g_sysmon_poke{0};

void* WorkerMain(void* arg) {
  SanitizerThreadStart();
  MarkGonetThread();
  auto* m = static_cast<Machine*>(arg);
  InstallWorkerAltStack();
  NoteMachineSignalMask(g_machine_mask);  // created with it (StartMachine)
  pthread_setname_np(pthread_self(), "gonet-worker");
  for (;;) {
    RunWorker(AwaitWorker(m));
    SpinGuard g(g_spare_mu);
    m->next_spare = g_spares;
    g_spares = m;
  }
  return nullptr;
}

// Hands worker w, whose status the sysmon saw as st (a fiber stuck in it for kRetakeNs), to a
// spare machine. The machine is secured before the status CAS, so a won CAS always has one.
void HandOff(FiberWorker* w, uint64_t st) {
  Machine* m;
  {
    SpinGuard g(g_spare_mu);
    m = g_spares;
    if (m != nullptr) g_spares = m->next_spare;
  }
  if (m == nullptr && (m = StartMachine(nullptr)) == nullptr) return;  // try again next tick
  uint64_t handed = (st & ~uint64_t{FiberWorker::kStatusMask}) | FiberWorker::kHandedOff;
  if (!w->status.compare_exchange_strong(st, handed, std::memory_order_seq_cst)) {
    SpinGuard g(g_spare_mu);  // the fiber came back just now: keep the machine for next time
    m->next_spare = g_spares;
    g_spares = m;
    return;
  }
  Count(Stats().fiber_handoffs);
  m->worker = w;
  m->given.store(1, std::memory_order_release);
  FutexWake(&m->given);
}

// One look at every worker; true if some fiber is running.
bool Retake(int64_t now) {
  bool running = false;
  int n = g_nworkers.load(std::memory_order_acquire);
  for (int i = 0; i < n; ++i) {
    FiberWorker* w = &g_workers[i];
    uint64_t st = w->status.load(std::memory_order_seq_cst);
    if ((st & FiberWorker::kStatusMask) != FiberWorker::kInFiber) continue;
    running = true;
    // Run stores running_since_ns before status, so this is the start of run st or of a later
    // one (recent), or 0 (it ended): only run st can be too old, and the CAS in HandOff names it.
    int64_t since = w->running_since_ns.load(std::memory_order_relaxed);
    if (since == 0 || now - since < kRetakeNs) continue;
    const pid_t tid = w->machine_tid.load(std::memory_order_relaxed);
    if (ThreadRunnable(tid)) {
      // Computing, or waiting for a CPU: only the CPU it has used tells the two apart.
      const int64_t cpu = ThreadCpuNs(tid);
      if (w->retake_seen_status != st) {
        w->retake_seen_status = st;
        w->retake_seen_cpu_ns = cpu;
        continue;
      }
      if (cpu < 0 || cpu - w->retake_seen_cpu_ns < kRetakeRunnableNs) continue;
    }
    // Stuck with nobody waiting for the worker: leave it (a handoff costs a thread).
    int64_t next = w->NextTimer();
    if (!w->HasWork() && !(next != 0 && next <= now)) continue;
    HandOff(w, st);
  }
  return running;
}

void* SysmonMain(void*) {
  SanitizerThreadStart();
  // Program signals go to the program's threads; faults reach it; and gonet's SIGURG, since the
  // sysmon answers gonet dump (dump.h: round one).
  sigset_t mask;
  SigurgHelperThreadMask(&mask);
  pthread_sigmask(SIG_SETMASK, &mask, nullptr);
  pthread_setname_np(pthread_self(), "gonet-sysmon");
  MarkGonetThread();
  if (SysmonStartHook hook = g_sysmon_start_hook.load(std::memory_order_acquire)) hook();
  int quiet_ticks = 0;
  int64_t next_scan = Nanotime() + kStackScanNs;
  size_t scan_pending = 0;  // fibers the last stack scan saw parked for the first time
  auto scan_stacks = [&](int64_t now) {
    FiberScheduler::ScanParkedStacks(&scan_pending);
    next_scan = now + kStackScanNs;
  };
  for (;;) {
    RouteProcessSignals();  // process-directed signals for fibers (signal_route.h)
    if (g_sysmon_poke.load(std::memory_order_acquire) == 0) {
      FutexWaitUntil(&g_sysmon_poke, 0, Nanotime() + kSysmonTickNs);
    }
    g_sysmon_poke.store(0, std::memory_order_relaxed);
    int64_t now = Nanotime();
    bool running = Retake(now);
    if (running) FiberTask::KickRunningTasks();  // a signal for a fiber that computes
    if (now >= next_scan) scan_stacks(now);
    // Every worker busy (or stuck) for a while: nobody delivers readiness, so poll for them.
    if (running && now - g_last_poll_ns.load(std::memory_order_relaxed) > kSysmonPollNs &&
        !g_poller_busy.exchange(true, std::memory_order_acq_rel)) {
      PollAsPoller(0);
      g_poller_busy.store(false, std::memory_order_release);
    }
    if (running) {
      quiet_ticks = 0;
      continue;
    }
    if (++quiet_ticks < kSysmonIdleTicks) continue;
    // No fiber has run for a while: sleep until one does (Run wakes us), so that an idle process
    // makes no periodic wake-ups. Fibers that the last stack scan saw parked for the first time
    // are released by one more scan at its due time (stack_release.cc); only then for good.
    g_sysmon_asleep.store(1, std::memory_order_seq_cst);
    if (!Retake(Nanotime())) {  // look again after the store (Run's store/load pair)
      while (g_sysmon_asleep.load(std::memory_order_seq_cst) == 1) {
        FutexWaitUntil(&g_sysmon_asleep, 1, scan_pending != 0 ? next_scan : 0);
        int64_t now = Nanotime();
        if (scan_pending != 0 && now >= next_scan) scan_stacks(now);
      }
    }
    g_sysmon_asleep.store(0, std::memory_order_seq_cst);
    quiet_ticks = 0;
  }
  return nullptr;
}

}  // namespace

Spinlock g_spare_mu;
Machine* g_spares GONET_GUARDED_BY(g_spare_mu) = nullptr;
// The signal mask of every machine: that of the program thread that started the workers, with
// the synchronous faults unblocked (StartWorkers).
sigset_t g_machine_mask;
std::atomic<SysmonStartHook> g_sysmon_start_hook{nullptr};
std::atomic<int> g_machines{0};
// Sysmon: 0 ticking, 1 asleep until a fiber runs (futex word), 2 not started.
std::atomic<uint32_t> g_sysmon_asleep{2};

void WakeSleepingSysmon() {
  uint32_t one = 1;
  if (g_sysmon_asleep.compare_exchange_strong(one, 0, std::memory_order_seq_cst)) {
    FutexWake(&g_sysmon_asleep);
  }
}

void PokeSysmon() {
  g_sysmon_poke.store(1, std::memory_order_release);
  FutexWake(&g_sysmon_poke);
  WakeSleepingSysmon();
}

// Starts a machine thread: running w, or (w == nullptr) as a spare that waits to be given one.
Machine* StartMachine(FiberWorker* w) {
  if (g_machines.fetch_add(1, std::memory_order_relaxed) >= kMaxMachines) {
    g_machines.fetch_sub(1, std::memory_order_relaxed);
    return nullptr;
  }
  auto* m = new (std::nothrow) Machine;
  pthread_t thread;
  pthread_attr_t attr;
  if (m != nullptr && pthread_attr_init(&attr) == 0) {
    m->worker = w;
    m->given.store(w != nullptr ? 1 : 0, std::memory_order_relaxed);  // published by the create
    // Every machine has the same mask, whoever creates it (the sysmon blocks the program's
    // signals): the program's fibers run on any of them (base/thread_signals.h).
    pthread_attr_setsigmask_np(&attr, &g_machine_mask);
    int r = CreateOsThread(&thread, &attr, &WorkerMain, m);
    pthread_attr_destroy(&attr);
    if (r == 0) {
      pthread_detach(thread);
      return m;
    }
  }
  delete m;
  g_machines.fetch_sub(1, std::memory_order_relaxed);
  return nullptr;
}

// Once per process (and again in a forked child, which has no sysmon thread).
void EnsureSysmon() {
  static std::atomic<bool> starting{false};
  if (g_sysmon_asleep.load(std::memory_order_relaxed) != 2) return;
  if (starting.exchange(true, std::memory_order_acq_rel)) return;
  pthread_t thread;
  if (CreateOsThread(&thread, nullptr, &SysmonMain, nullptr) == 0) {
    pthread_detach(thread);
    g_sysmon_asleep.store(0, std::memory_order_seq_cst);
  }
  starting.store(false, std::memory_order_release);
}

void SetSysmonStartHook(SysmonStartHook hook) {
  g_sysmon_start_hook.store(hook, std::memory_order_release);
}

}  // namespace gonet::core
