#include "core/fibers/signal_route.h"

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "core/base/base.h"
#include "core/base/os_thread.h"
#include "core/base/spinlock.h"
#include "core/base/sys.h"
#include "core/base/thread_signals.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/worker.h"

namespace gonet::core {
namespace {

// Routed: a signal fibers mode may take for a fiber (the others: base/thread_signals.h).
bool Routable(int sig) {
  return sig >= 1 && sig <= 64 && (kSignalsLeftAlone & SignalBit(sig)) == 0;
}

bool IsHandler(const struct sigaction& sa) {
  return sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN;  // the union, as the kernel reads it
}

std::atomic<RealSigactionFn> g_real{nullptr};

int RealSigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  RealSigactionFn fn = g_real.load(std::memory_order_acquire);
  return (fn != nullptr ? fn : &::sigaction)(sig, act, old);
}

// The program's dispositions: one seqlock per signal, so the trampoline reads without a lock
// (a writer blocks every signal first, so no reader ever interrupts a writer on its own thread).
constexpr int kWords = (sizeof(struct sigaction) + 7) / 8;
struct Disposition {
  std::atomic<uint32_t> seq{0};
  std::atomic<uint64_t> words[kWords] = {};
};
Disposition g_table[65];
Spinlock g_write_mu;  // writers, with every signal blocked
std::atomic<bool> g_adopted{false};
std::atomic<uint64_t> g_handled{0};     // routed signals with a program handler
std::atomic<uint64_t> g_interrupts{0};  // siginterrupt(sig, 1) was called
std::atomic<uint32_t> g_masks_gen{1};   // NoteFiberMasksChanged; the sysmon's last look below

void Load(int sig, struct sigaction* out) {
  Disposition& d = g_table[sig];
  uint64_t buf[kWords];
  for (;;) {
    uint32_t s = d.seq.load(std::memory_order_acquire);
    if ((s & 1) != 0) {
      CpuRelax();
      continue;
    }
    // Acquire loads (no fence: ThreadSanitizer does not model one): a word the writer stored
    // after making seq odd makes the second load see that odd value or later.
    for (int i = 0; i < kWords; ++i) buf[i] = d.words[i].load(std::memory_order_acquire);
    if (d.seq.load(std::memory_order_relaxed) == s) break;
  }
  memcpy(out, buf, sizeof *out);
}

void Store(int sig, const struct sigaction& sa) {
  Disposition& d = g_table[sig];
  uint64_t buf[kWords] = {};
  memcpy(buf, &sa, sizeof sa);
  d.seq.fetch_add(1, std::memory_order_acq_rel);
  for (int i = 0; i < kWords; ++i) d.words[i].store(buf[i], std::memory_order_release);
  d.seq.fetch_add(1, std::memory_order_release);
}

// Every signal blocked on this OS thread for a writer's scope (raw: in a fiber, the fiber's own
// mask is what the machine returns to).
struct AllBlocked {
  uint64_t saved = 0;
  AllBlocked() {
    uint64_t all = ~uint64_t{0};
    sys::Call(SYS_rt_sigprocmask, SIG_SETMASK, &all, &saved, sizeof all);
  }
  ~AllBlocked() { sys::Call(SYS_rt_sigprocmask, SIG_SETMASK, &saved, nullptr, sizeof saved); }
};

void RealDefault(int sig) {
  sys::KernelSigaction k{nullptr, 0, nullptr, 0};  // SIG_DFL, installed without glibc
  sys::Call(SYS_rt_sigaction, sig, &k, nullptr, sizeof k.mask);
}

void NoteHandled(int sig, bool handled) {
  if (handled) {
    g_handled.fetch_or(SignalBit(sig), std::memory_order_acq_rel);
  } else {
    g_handled.fetch_and(~SignalBit(sig), std::memory_order_acq_rel);
  }
  g_masks_gen.fetch_add(1, std::memory_order_release);
}

void Trampoline(int sig, siginfo_t* si, void* uc);

// Installs act for the kernel (the trampoline in place of a handler) and records what the program
// will read back: glibc's report of the installed action (its restorer flag, the mask the kernel
// kept), with the program's handler and its SA_SIGINFO and SA_RESETHAND. Writer's scope.
int Install(int sig, const struct sigaction& act) {
  bool handler = IsHandler(act);
  struct sigaction kernel = act;
  if (handler) {
    kernel.sa_sigaction = &Trampoline;
    kernel.sa_flags = (act.sa_flags | SA_SIGINFO) & ~SA_RESETHAND;
  }
  if (RealSigaction(sig, &kernel, nullptr) != 0) return -1;
  struct sigaction seen {};
  if (RealSigaction(sig, nullptr, &seen) != 0) seen = kernel;
  if (handler) {
    seen.sa_sigaction = act.sa_sigaction;  // the union: sa_handler too
    seen.sa_flags = (seen.sa_flags & ~(SA_SIGINFO | SA_RESETHAND)) |
                    (act.sa_flags & (SA_SIGINFO | SA_RESETHAND));
  }
  Store(sig, seen);
  NoteHandled(sig, handler);
  return 0;
}

// SA_RESETHAND, at delivery: the disposition is SIG_DFL from now on, as the kernel resets it.
void ResetHand(int sig) {
  AllBlocked blocked;
  SpinGuard g(g_write_mu);
  struct sigaction sa;
  Load(sig, &sa);
  sa.sa_handler = SIG_DFL;
  RealDefault(sig);
  Store(sig, sa);
  NoteHandled(sig, false);
}

// Signals queued for routing (header), one slot each: 0 empty, 1 being filled or taken, 2 full.
struct QueuedSignal {
  std::atomic<uint32_t> state{0};
  siginfo_t info{};
};
QueuedSignal g_queue[65];
std::atomic<uint64_t> g_queued{0};  // bit set while the slot is full

void Queue(int sig, const siginfo_t* si) {
  QueuedSignal& q = g_queue[sig];
  uint32_t empty = 0;
  if (q.state.compare_exchange_strong(empty, 1, std::memory_order_acquire)) {
    if (si != nullptr) {
      q.info = *si;
    } else {
      memset(&q.info, 0, sizeof q.info);
      q.info.si_signo = sig;
    }
    q.state.store(2, std::memory_order_release);
    g_queued.fetch_or(SignalBit(sig), std::memory_order_release);
  }
  PokeSysmon();
}

bool TakeQueued(int sig, siginfo_t* out) {
  QueuedSignal& q = g_queue[sig];
  uint32_t full = 2;
  if (!q.state.compare_exchange_strong(full, 1, std::memory_order_acquire)) return false;
  if (out != nullptr) *out = q.info;
  // The bit goes before the slot is free: a signal queued after that sets it again.
  g_queued.fetch_and(~SignalBit(sig), std::memory_order_acq_rel);
  q.state.store(0, std::memory_order_release);
  return true;
}

// The program's handler on this thread, as the kernel would run it (it already applied the
// sa_mask and the flags, which are the program's).
void RunHere(int sig, siginfo_t* si, void* uc, const struct sigaction& sa) {
  if (!IsHandler(sa)) {
    // Changed since the kernel chose the trampoline: act as the new disposition does. A default
    // action that kills: the signal again, now with SIG_DFL, taken when this handler returns.
    if (sa.sa_handler == SIG_IGN || DefaultActionIgnores(sig)) return;
    RealDefault(sig);
    sys::Call(SYS_tgkill, sys::Call(SYS_getpid), sys::Call(SYS_gettid), sig);
    return;
  }
  if ((sa.sa_flags & SA_RESETHAND) != 0) ResetHand(sig);
  // On a fiber, its own mask (what pthread_sigmask answers in the handler) blocks what the
  // kernel blocked for the handler, as a thread's does.
  FiberTask* t = FiberScheduler::Current();
  uint64_t saved = t != nullptr ? t->EnterKernelHandler(sig, sa) : 0;
  if ((sa.sa_flags & SA_SIGINFO) != 0) {
    sa.sa_sigaction(sig, si, uc);
  } else {
    sa.sa_handler(sig);
  }
  if (t != nullptr) t->LeaveKernelHandler(saved, uc);
}

void Trampoline(int sig, siginfo_t* si, void* uc) {
  const int saved_errno = errno;
  struct sigaction sa;
  Load(sig, &sa);
  FiberTask* t = FiberScheduler::Current();
  bool here = t != nullptr ? (t->signal_mask() & SignalBit(sig)) == 0 : !IsGonetThread();
  if (!here && g_sysmon_asleep.load(std::memory_order_acquire) == 2) here = true;  // no router
  if (here) {
    RunHere(sig, si, uc, sa);
  } else {
    Queue(sig, si);
  }
  errno = saved_errno;
}

// The sysmon's own mask: gonet's helper mask (base/thread_signals.h) less SIGURG, less the
// handled signals some fiber accepts (header).
uint64_t SysmonBaseMask() {
  sigset_t set;
  SigurgHelperThreadMask(&set);
  uint64_t w;
  memcpy(&w, &set, sizeof w);
  return w;
}

// The sysmon's alone (a forked child's new sysmon starts afresh): the generation it last looked
// at, and the mask it installed (0: none yet).
__thread uint32_t t_sysmon_seen_gen __attribute__((tls_model("initial-exec"))) = 0;
__thread uint64_t t_sysmon_mask __attribute__((tls_model("initial-exec"))) = 0;

}  // namespace

void SetRealSigaction(RealSigactionFn fn) { g_real.store(fn, std::memory_order_release); }

void AdoptProgramHandlers() {
  AllBlocked blocked;
  SpinGuard g(g_write_mu);
  for (int sig = 1; sig <= 64; ++sig) {
    if (!Routable(sig)) continue;
    struct sigaction cur {};
    if (RealSigaction(sig, nullptr, &cur) != 0) continue;
    // No handler: the kernel keeps it as it is. Installing it again through glibc would add
    // SA_RESTORER and a restorer to a disposition the exec left with flags 0.
    if (!IsHandler(cur) || Install(sig, cur) != 0) Store(sig, cur);
  }
  g_adopted.store(true, std::memory_order_release);
}

bool RoutedSigaction(int sig, const struct sigaction* act, struct sigaction* old, int* result) {
  if (!RoutesDisposition(sig)) return false;
  int r = 0;
  int err = 0;
  {
    AllBlocked blocked;
    SpinGuard g(g_write_mu);
    struct sigaction prev;
    Load(sig, &prev);
    if (act != nullptr && Install(sig, *act) != 0) {
      r = -1;
      err = errno;
    }
    if (r == 0 && old != nullptr) *old = prev;
  }
  if (r != 0) errno = err;
  *result = r;
  if (r == 0 && act != nullptr) PokeSysmon();  // its mask follows the handlers (header)
  return true;
}

bool RoutesDisposition(int sig) {
  return Routable(sig) && g_adopted.load(std::memory_order_acquire);
}

void SetSignalInterrupts(int sig, bool interrupt) {
  if (sig < 1 || sig > 64) return;
  if (interrupt) {
    g_interrupts.fetch_or(SignalBit(sig), std::memory_order_relaxed);
  } else {
    g_interrupts.fetch_and(~SignalBit(sig), std::memory_order_relaxed);
  }
}

bool SignalInterrupts(int sig) {
  return sig >= 1 && sig <= 64 &&
         (g_interrupts.load(std::memory_order_relaxed) & SignalBit(sig)) != 0;
}

void NoteFiberMasksChanged() {
  if (GONET_UNLIKELY(g_handled.load(std::memory_order_relaxed) != 0)) {
    g_masks_gen.fetch_add(1, std::memory_order_release);
  }
}

void RouteProcessSignals() {
  if (!g_adopted.load(std::memory_order_acquire)) return;
  uint32_t gen = g_masks_gen.load(std::memory_order_acquire);
  if (gen != t_sysmon_seen_gen) {
    t_sysmon_seen_gen = gen;
    uint64_t handled = g_handled.load(std::memory_order_acquire);
    uint64_t want = SysmonBaseMask();
    if (handled != 0) want &= ~(handled & FiberTask::SignalsAcceptedByFibers());
    if (want != t_sysmon_mask) {
      sys::Call(SYS_rt_sigprocmask, SIG_SETMASK, &want, nullptr, sizeof want);
      t_sysmon_mask = want;
    }
  }
  for (uint64_t q = g_queued.load(std::memory_order_acquire); q != 0; q &= q - 1) {
    int sig = __builtin_ctzll(q) + 1;
    FiberTask* t = FiberTask::ChooseForProcessSignal(sig);
    if (t == nullptr) continue;  // pending for the process: offered again next time round
    siginfo_t info;
    if (TakeQueued(sig, &info) && !t->TakeRouted(sig, info)) Queue(sig, &info);
  }
}

uint64_t ProcessPendingSignals() { return g_queued.load(std::memory_order_acquire); }

int TakeProcessSignal(uint64_t want, siginfo_t* info) {
  for (uint64_t q = g_queued.load(std::memory_order_acquire) & want; q != 0; q &= q - 1) {
    int sig = __builtin_ctzll(q) + 1;
    if (TakeQueued(sig, info)) return sig;
  }
  return 0;
}

}  // namespace gonet::core
