#include "core/fibers/fiber_signals.h"

#include <pthread.h>
#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/base/sys.h"
#include "core/base/thread_signals.h"
#include "core/fibers/call_on_stack.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/fiber_thread_state.h"
#include "core/fibers/signal_route.h"
#include "core/fibers/syscall_offload.h"
#include "core/fibers/worker.h"
#include "core/threads/sigurg.h"

namespace gonet::core {
namespace {

// The mask this machine has installed (signals 1..64, bit sig-1: the kernel's first word).
__thread uint64_t t_mask_installed __attribute__((tls_model("initial-exec"))) = 0;

uint64_t Word(const sigset_t& s) {
  uint64_t w;
  memcpy(&w, &s, sizeof w);
  return w;
}

void SetWord(sigset_t* s, uint64_t w) {
  sigemptyset(s);
  memcpy(s, &w, sizeof w);
}

void Install(uint64_t mask) {
  if (mask == t_mask_installed) return;
  if (sys::Call(SYS_rt_sigprocmask, SIG_SETMASK, &mask, nullptr, sizeof mask) == 0) {
    t_mask_installed = mask;
  }
}

// The program's disposition of sig (its own view of SIGURG, which gonet may hold:
// threads/sigurg.h).
void Disposition(int sig, struct sigaction* sa) {
  int unused = 0;
  if (VirtualSigaction(sig, nullptr, sa, &unused)) return;
  if (sigaction(sig, nullptr, sa) != 0) memset(sa, 0, sizeof *sa);
}

// The signal's action is to do nothing: SIG_IGN, or a default action that ignores. sa_handler
// and sa_sigaction are one union: SIG_DFL or SIG_IGN with SA_SIGINFO (a program can install it,
// and SA_RESETHAND leaves it) is still that, as the kernel reads it.
bool Ignored(int sig) {
  struct sigaction sa {};
  Disposition(sig, &sa);
  return sa.sa_handler == SIG_IGN || (sa.sa_handler == SIG_DFL && DefaultActionIgnores(sig));
}

// A handler's third argument: this context (getcontext returns twice: kept apart).
__attribute__((noinline)) void CallWithContext(void (*fn)(int, siginfo_t*, void*), int sig,
                                               siginfo_t* si) {
  ucontext_t uc;
  getcontext(&uc);
  fn(sig, si, &uc);
}

// One handler call, as CallOnStack passes it.
struct HandlerCall {
  const struct sigaction* sa;
  int sig;
  siginfo_t* si;  // nullptr: a handler without SA_SIGINFO
};

void RunHandler(void* p) {
  auto* call = static_cast<HandlerCall*>(p);
  if (call->si != nullptr) {
    CallWithContext(call->sa->sa_sigaction, call->sig, call->si);
  } else {
    call->sa->sa_handler(call->sig);
  }
}

}  // namespace

void SwitchSignalMask(const FiberTask& t) { Install(t.machine_signal_mask()); }

void NoteMachineSignalMask(const sigset_t& mask) { t_mask_installed = Word(mask); }

uint64_t OsThreadSignalMask() {
  uint64_t m = 0;
  sys::Call(SYS_rt_sigprocmask, SIG_BLOCK, nullptr, &m, sizeof m);
  return m;
}

int FiberTask::Kill(int sig, int code, const sigval& value) {
  if (sig < 0 || sig > 64) return EINVAL;
  // Exited, not yet joined: glibc 2.36 answers 0 for pthread_kill, ESRCH for pthread_sigqueue.
  if (!alive_.load(std::memory_order_acquire)) return code == SI_QUEUE ? ESRCH : 0;
  if (sig == 0) return 0;
  uint64_t bit = SignalBit(sig);
  if (code == SI_QUEUE) {
    FiberThreadState* x = thread_state();
    if (x == nullptr) return EAGAIN;  // as sigqueue when it cannot queue
    x->sig_value[sig - 1] = value;
    sig_queued_.fetch_or(bit, std::memory_order_relaxed);
  } else {
    sig_queued_.fetch_and(~bit, std::memory_order_relaxed);
  }
  sig_pending_.fetch_or(bit, std::memory_order_seq_cst);
  if (this == FiberScheduler::Current() &&
      (sigwait_set_.load(std::memory_order_seq_cst) & bit) == 0) {
    if (HasDeliverableSignal()) DeliverSignals();  // as the kernel: before pthread_kill returns
    return 0;
  }
  WakeForSignal(bit);
  return 0;
}

void FiberTask::WakeForSignal(uint64_t bit) {
  // A sigwait for it (SigTimedWait): wake the fiber, which interrupts the helper's wait.
  if ((sigwait_set_.load(std::memory_order_seq_cst) & bit) != 0) {
    sigwait_kicks_.fetch_add(1, std::memory_order_seq_cst);
    Unpark();
    return;
  }
  // Blocked: it stays pending until the fiber unblocks it (SigMask delivers it then). Not
  // blocked: a parked fiber is woken for it, a running one interrupted (signal_kick.cc).
  if ((sig_mask_.load(std::memory_order_seq_cst) & bit) == 0) {
    Unpark();
    KickIfRunning();
  }
}

int FiberTask::SigMask(int how, const sigset_t* set, sigset_t* old) {
  uint64_t cur = sig_mask_.load(std::memory_order_relaxed);
  uint64_t next = cur;
  if (set != nullptr) {
    uint64_t s = Word(*set);
    switch (how) {
      case SIG_BLOCK:
        next = cur | s;
        break;
      case SIG_UNBLOCK:
        next = cur & ~s;
        break;
      case SIG_SETMASK:
        next = s;
        break;
      default:
        return EINVAL;
    }
  }
  if (old != nullptr) SetWord(old, cur);
  if (set == nullptr) return 0;
  sig_mask_.store(next & ~kUnblockableSignals, std::memory_order_seq_cst);
  SwitchSignalMask(*this);
  NoteFiberMasksChanged();
  TakeProcessSignals(~next);
  // Unblocked a pending signal: the kernel delivers it before sigprocmask returns.
  if (HasDeliverableSignal()) DeliverSignals();
  return 0;
}

uint64_t FiberTask::EnterKernelHandler(int sig, const struct sigaction& sa) {
  uint64_t saved = sig_mask_.load(std::memory_order_relaxed);
  uint64_t during = saved | Word(sa.sa_mask) | ((sa.sa_flags & SA_NODEFER) ? 0 : SignalBit(sig));
  sig_mask_.store(during & ~kUnblockableSignals, std::memory_order_seq_cst);
  SwitchSignalMask(*this);  // what the kernel installed, and now what this machine notes
  return saved;
}

void FiberTask::LeaveKernelHandler(uint64_t saved, const void* ucontext) {
  sig_mask_.store(saved, std::memory_order_seq_cst);
  // The kernel puts uc_sigmask back at sigreturn: noting it (not installing saved) keeps the
  // note true even when the signal interrupted SigMask between its store and its install.
  NoteMachineSignalMask(static_cast<const ucontext_t*>(ucontext)->uc_sigmask);
}

bool FiberTask::DeliverSignals() {
  bool all_restart = true;
  int saved_errno = errno;
  for (;;) {
    uint64_t ready =
        sig_pending_.load(std::memory_order_acquire) & ~sig_mask_.load(std::memory_order_relaxed);
    if (ready == 0) break;
    int sig = __builtin_ctzll(ready) + 1;
    uint64_t bit = SignalBit(sig);
    sig_pending_.fetch_and(~bit, std::memory_order_acq_rel);
    bool queued = (sig_queued_.fetch_and(~bit, std::memory_order_relaxed) & bit) != 0;
    // Taken from the process by a SignalWait's watch: the kernel's siginfo (kill, alarm...).
    siginfo_t taken_info, routed_info;
    const siginfo_t* taken = TakeWatchedInfo(sig, &taken_info);
    // Or given to this fiber by the router (signal_route.h), with the kernel's siginfo too.
    const siginfo_t* routed = TakeRoutedInfo(sig, &routed_info);
    if (taken == nullptr) taken = routed;
    struct sigaction sa {};
    Disposition(sig, &sa);
    bool info = (sa.sa_flags & SA_SIGINFO) != 0;
    // The union, whatever SA_SIGINFO says (Ignored): SIG_DFL with SA_SIGINFO is no handler to call.
    if (sa.sa_handler == SIG_IGN) continue;
    if (sa.sa_handler == SIG_DFL) {
      if (DefaultActionIgnores(sig)) continue;
      // Terminate, dump core or stop: the kernel's default action on the process, from this
      // machine with the signal unblocked.
      Install(machine_signal_mask() & ~bit);
      sys::Call(SYS_tgkill, sys::Call(SYS_getpid), sys::Call(SYS_gettid), sig);
      SwitchSignalMask(*this);
      continue;
    }
    // A handler may siglongjmp out of the wait: nothing of a watch may be left in flight then.
    if (sig_wait_ != nullptr) sig_wait_->EndWatch();
    if ((sa.sa_flags & SA_RESTART) == 0) all_restart = false;
    ++sig_handled_;
    uint64_t saved = sig_mask_.load(std::memory_order_relaxed);
    uint64_t during = saved | Word(sa.sa_mask) | ((sa.sa_flags & SA_NODEFER) ? 0 : bit);
    sig_mask_.store(during & ~kUnblockableSignals, std::memory_order_seq_cst);
    SwitchSignalMask(*this);
    if (sa.sa_flags & SA_RESETHAND) {
      // The kernel resets the handler alone: sa_flags and sa_mask read back as installed.
      struct sigaction dfl = sa;
      dfl.sa_handler = SIG_DFL;
      sigaction(sig, &dfl, nullptr);
    }
    siginfo_t si{};
    if (info && taken != nullptr) {
      si = *taken;
    } else if (info) {
      si.si_signo = sig;
      si.si_code = queued ? SI_QUEUE : SI_TKILL;
      si.si_pid = static_cast<pid_t>(sys::Call(SYS_getpid));
      si.si_uid = static_cast<uid_t>(sys::Call(SYS_getuid));
      if (queued) si.si_value = thread_state_if_any()->sig_value[sig - 1];
    }
    HandlerCall call{&sa, sig, info ? &si : nullptr};
    // SA_ONSTACK: on the fiber's alternate stack, as the kernel runs a thread's handler.
    void* alt = (sa.sa_flags & SA_ONSTACK) != 0 && CanCallOnStack()
                    ? AltStackTopForHandler(thread_state_if_any())
                    : nullptr;
    if (alt != nullptr) {
      CallOnStack(alt, &RunHandler, &call);
    } else {
      RunHandler(&call);
    }
    sig_mask_.store(saved, std::memory_order_seq_cst);
    SwitchSignalMask(*this);
  }
  errno = saved_errno;
  return all_restart;
}

namespace {

// Takes the lowest pending signal of `want` off the fiber, filling info; 0 if none.
int TakePending(std::atomic<uint64_t>& pending, std::atomic<uint64_t>& queued,
                const FiberThreadState* state, uint64_t want, siginfo_t* info) {
  for (;;) {
    uint64_t p = pending.load(std::memory_order_acquire);
    uint64_t hit = p & want;
    if (hit == 0) return 0;
    int sig = __builtin_ctzll(hit) + 1;
    uint64_t bit = SignalBit(sig);
    if ((pending.fetch_and(~bit, std::memory_order_acq_rel) & bit) == 0) continue;
    bool q = (queued.fetch_and(~bit, std::memory_order_relaxed) & bit) != 0;
    if (info != nullptr) {
      memset(info, 0, sizeof *info);
      info->si_signo = sig;
      info->si_code = q ? SI_QUEUE : SI_TKILL;
      info->si_pid = static_cast<pid_t>(sys::Call(SYS_getpid));
      info->si_uid = static_cast<uid_t>(sys::Call(SYS_getuid));
      if (q && state != nullptr) info->si_value = state->sig_value[sig - 1];
    }
    return sig;
  }
}

long RawSigTimedWait(const uint64_t* set, siginfo_t* info, const timespec* timeout) {
  long r = sys::Call(SYS_rt_sigtimedwait, set, info, timeout, sizeof *set);
  if (r < 0) {
    errno = static_cast<int>(-r);
    return -1;
  }
  return r;
}

}  // namespace

int FiberTask::SigTimedWait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  uint64_t want = Word(*set) & ~kUnblockableSignals;
  sigwait_set_.store(want, std::memory_order_seq_cst);
  NoteFiberMasksChanged();  // the sysmon lets the kernel deliver what it waits for (signal_route)
  struct Clear {
    std::atomic<uint64_t>& w;
    ~Clear() {
      w.store(0, std::memory_order_seq_cst);
      NoteFiberMasksChanged();
    }
  } clear{sigwait_set_};
  int saved_errno = errno;
  for (;;) {
    // Read before looking at what is pending (Kill sets the pending bit, then kicks): a signal
    // this look misses is a kick after this read, which interrupts the offloaded wait below.
    const uint32_t kicks = sigwait_kicks_.load(std::memory_order_seq_cst);
    const uint32_t handled = signals_handled();
    if (int sig = TakePending(sig_pending_, sig_queued_, thread_state_if_any(), want, info)) {
      siginfo_t routed;
      if (TakeRoutedInfo(sig, &routed) != nullptr && info != nullptr) *info = routed;
      errno = saved_errno;
      return sig;
    }
    // One already pending for the process: at once, without a thread hop (gonet's own queue of
    // them first, signal_route.h, then the kernel's).
    siginfo_t local;
    siginfo_t* out = info != nullptr ? info : &local;
    if (int sig = TakeProcessSignal(want, out)) {
      errno = saved_errno;
      return sig;
    }
    timespec zero{0, 0};
    long r = RawSigTimedWait(&want, out, &zero);
    if (r > 0) return static_cast<int>(r);
    if (timeout != nullptr && timeout->tv_sec == 0 && timeout->tv_nsec == 0) {
      errno = EAGAIN;
      return -1;
    }
    r = OffloadCallSince(handled, true, RawSigTimedWait, const_cast<const uint64_t*>(&want), out,
                         timeout);
    if (r > 0) return static_cast<int>(r);
    // Interrupted for a signal sent to this fiber: take it. Anything else is the kernel's answer.
    if (errno == EINTR && sigwait_kicks_.load(std::memory_order_acquire) != kicks) continue;
    return -1;
  }
}

const siginfo_t* FiberTask::TakeWatchedInfo(int sig, siginfo_t* out) {
  int want = sig;
  if (!sig_watch_taken_.compare_exchange_strong(want, 0, std::memory_order_acq_rel)) return nullptr;
  *out = thread_state_if_any()->watch_info;  // written before sig_watch_taken_ (release)
  return out;
}

int FiberTask::SigPending(sigset_t* set) const {
  // The kernel's answer on this machine: its own pending and the process's, masked with what the
  // machine blocks (this fiber's mask, and a SignalWait's watched signals when a handler asks).
  uint64_t kernel = 0;
  sys::Call(SYS_rt_sigpending, &kernel, sizeof kernel);
  uint64_t mask = sig_mask_.load(std::memory_order_relaxed);
  SetWord(set,
          (kernel | sig_pending_.load(std::memory_order_acquire) | ProcessPendingSignals()) & mask);
  return 0;
}

FiberTask* FiberTask::ChooseForProcessSignal(int sig) {
  if (g_task_base == nullptr) return nullptr;
  const uint64_t bit = SignalBit(sig);
  FiberTask* pick = nullptr;
  size_t n = g_task_count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    FiberTask& t = g_task_base[i];
    if (!t.alive_.load(std::memory_order_acquire)) continue;
    uint64_t pending = t.sig_pending_.load(std::memory_order_acquire) |
                       t.sig_routed_.load(std::memory_order_acquire);
    if ((pending & bit) != 0) continue;
    if ((t.sigwait_set_.load(std::memory_order_acquire) & bit) != 0) return &t;
    if (pick == nullptr && (t.sig_mask_.load(std::memory_order_acquire) & bit) == 0) pick = &t;
  }
  return pick;
}

uint64_t FiberTask::SignalsAcceptedByFibers() {
  if (g_task_base == nullptr) return 0;
  uint64_t accepted = 0;
  size_t n = g_task_count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    FiberTask& t = g_task_base[i];
    if (!t.alive_.load(std::memory_order_acquire)) continue;
    accepted |= ~t.sig_mask_.load(std::memory_order_acquire) |
                t.sigwait_set_.load(std::memory_order_acquire);
  }
  return accepted;
}

void FiberTask::MakePendingRouted(int sig, const siginfo_t& info) {
  const uint64_t bit = SignalBit(sig);
  siginfo_t* slots = routed_info_.load(std::memory_order_acquire);
  if (slots == nullptr) {
    auto* fresh = static_cast<siginfo_t*>(calloc(64, sizeof(siginfo_t)));
    if (fresh != nullptr) {
      if (routed_info_.compare_exchange_strong(slots, fresh, std::memory_order_acq_rel)) {
        slots = fresh;
      } else {
        free(fresh);
      }
    }
  }
  // Out of memory: pending all the same, with the siginfo of pthread_kill.
  if (slots != nullptr) {
    slots[sig - 1] = info;
    sig_routed_.fetch_or(bit, std::memory_order_release);
  }
  sig_queued_.fetch_and(~bit, std::memory_order_relaxed);
  sig_pending_.fetch_or(bit, std::memory_order_seq_cst);
}

bool FiberTask::TakeRouted(int sig, const siginfo_t& info) {
  if (!alive_.load(std::memory_order_acquire)) return false;
  MakePendingRouted(sig, info);
  WakeForSignal(SignalBit(sig));  // as for Kill (the router is never this fiber)
  return true;
}

const siginfo_t* FiberTask::TakeRoutedInfo(int sig, siginfo_t* out) {
  const uint64_t bit = SignalBit(sig);
  if ((sig_routed_.load(std::memory_order_acquire) & bit) == 0) return nullptr;
  siginfo_t* slots = routed_info_.load(std::memory_order_acquire);
  if (slots == nullptr) return nullptr;
  *out = slots[sig - 1];
  sig_routed_.fetch_and(~bit, std::memory_order_acq_rel);  // after the copy: the router waits
  return out;
}

void FiberTask::TakeProcessSignals(uint64_t accepts) {
  if (GONET_LIKELY(ProcessPendingSignals() == 0)) return;
  siginfo_t info;
  for (;;) {
    uint64_t mine =
        sig_pending_.load(std::memory_order_acquire) | sig_routed_.load(std::memory_order_acquire);
    int sig = TakeProcessSignal(accepts & ~mine, &info);
    if (sig == 0) return;
    MakePendingRouted(sig, info);
  }
}

SignalWait::SignalWait(const sigset_t* mask, Watch watch) : t_(FiberScheduler::Current()) {
  old_ = t_->sig_mask_.load(std::memory_order_relaxed);
  uint64_t during = mask != nullptr ? Word(*mask) & ~kUnblockableSignals : old_;
  uint64_t lets_through = ~during & ~kSignalsLeftAlone;
  watch_ = watch == Watch::kAll ? lets_through : lets_through & old_;
  t_->sig_mask_.store(during, std::memory_order_seq_cst);
  NoteFiberMasksChanged();
  // Pending for the process and let through by the wait's mask: delivered at the call, as the
  // kernel would (signal_route.h).
  t_->TakeProcessSignals(~during & ~kSignalsLeftAlone);
  if (watch_ != 0) StartWatch();  // installs the machine's mask with the watched signals held
  if (!watching_) SwitchSignalMask(*t_);
}

long SignalWait::WatchCall(void* self) {
  auto* w = static_cast<SignalWait*>(self);
  siginfo_t info;
  long r;
  // An ignored signal is discarded as the kernel discards it, and the watch goes on.
  do {
    r = RawSigTimedWait(&w->watch_, &info, nullptr);
  } while (r > 0 && Ignored(static_cast<int>(r)));
  if (r > 0) {
    // Pending on the fiber, with the kernel's siginfo; the job's completion then unparks it.
    int sig = static_cast<int>(r);
    w->state_->watch_info = info;
    w->t_->sig_watch_taken_.store(sig, std::memory_order_release);
    w->t_->sig_pending_.fetch_or(SignalBit(sig), std::memory_order_seq_cst);
  }
  return r;
}

void SignalWait::StartWatch() {
  state_ = t_->thread_state();  // where the watch leaves a siginfo (nullptr: out of memory)
  if (state_ == nullptr) return;
  job_.~OffloadJob();
  new (&job_) OffloadJob();
  job_.fn = &WatchCall;
  job_.arg = this;
  // One sigprocmask: the machine never has a watched signal unblocked while the fiber waits.
  t_->sig_hold_.store(watch_, std::memory_order_relaxed);
  SwitchSignalMask(*t_);
  t_->sig_wait_ = this;
  watching_ = StartOffload(&job_);
  if (!watching_) EndWatch();  // no helper: only the signals sent to the fiber end the wait
}

void SignalWait::EndWatch() {
  t_->sig_wait_ = nullptr;
  if (watching_) {
    // Nothing is delivered inside this park (a handler there would run with the job in flight);
    // what arrives meanwhile stays pending for the caller's delivery.
    uint64_t mask = t_->sig_mask_.load(std::memory_order_relaxed);
    t_->sig_mask_.store((~kUnblockableSignals & ~SyncFaultBits()) | (mask & SyncFaultBits()),
                        std::memory_order_seq_cst);
    int saved_errno = errno;
    FinishOffload(&job_);
    errno = saved_errno;
    watching_ = false;
    t_->sig_mask_.store(mask, std::memory_order_seq_cst);
  }
  t_->sig_hold_.store(0, std::memory_order_relaxed);
  SwitchSignalMask(*t_);
}

SignalWait::~SignalWait() {
  EndWatch();
  // What arrived for the wait (taken by the watch, or sent to the fiber as it ended) runs under
  // the wait's mask, as the kernel delivers it before the call returns.
  if (t_->HasDeliverableSignal()) t_->DeliverSignals();
  t_->sig_mask_.store(old_, std::memory_order_seq_cst);
  SwitchSignalMask(*t_);
  NoteFiberMasksChanged();
  if (t_->HasDeliverableSignal()) t_->DeliverSignals();
}

int SignalWait::Suspend() {
  const uint32_t before = t_->sig_handled_;
  ScopedWaitNote note(t_, kWaitSignal);
  for (;;) {
    // A watch that finished has made what it took pending (before done): collect it first.
    bool rewatch = false;
    if (watching_ && job_.done.load(std::memory_order_acquire) != 0) {
      EndWatch();
      rewatch = true;
    }
    if (t_->HasDeliverableSignal()) t_->DeliverSignals();
    if (t_->sig_handled_ != before) break;
    // It took one that ran no handler (a stop, then a continue): the wait goes on, watched again.
    if (rewatch) StartWatch();
    t_->Park(0, WaitKind::kAlwaysEintr);  // a cancellation point, as sigsuspend and pause are
  }
  errno = EINTR;
  return -1;
}

int FiberSigsuspend(const sigset_t* mask) {
  SignalWait wait(mask, SignalWait::Watch::kAll);
  return wait.Suspend();
}

int FiberTask::Cancel() {
  if (!alive_.load(std::memory_order_acquire)) return 0;  // exited, not joined: as glibc
  cancel_pending_.store(true, std::memory_order_seq_cst);
  if (this == FiberScheduler::Current()) {
    if (cancel_async_ && CancelDue()) Exit(PTHREAD_CANCELED);  // asynchronous: at once
    return 0;
  }
  Unpark();         // a parked fiber acts on it at its cancellation point (Park)
  KickIfRunning();  // a running one with asynchronous cancellation, at once (signal_kick.cc)
  return 0;
}

int FiberTask::SetCancelState(int state, int* old) {
  if (state != PTHREAD_CANCEL_ENABLE && state != PTHREAD_CANCEL_DISABLE) return EINVAL;
  if (old != nullptr) *old = cancel_disabled_ ? PTHREAD_CANCEL_DISABLE : PTHREAD_CANCEL_ENABLE;
  cancel_disabled_ = state == PTHREAD_CANCEL_DISABLE;
  if (cancel_async_ && CancelDue()) Exit(PTHREAD_CANCELED);  // as glibc: enabling acts at once
  return 0;
}

int FiberTask::SetCancelType(int type, int* old) {
  if (type != PTHREAD_CANCEL_DEFERRED && type != PTHREAD_CANCEL_ASYNCHRONOUS) return EINVAL;
  if (old != nullptr) *old = cancel_async_ ? PTHREAD_CANCEL_ASYNCHRONOUS : PTHREAD_CANCEL_DEFERRED;
  cancel_async_ = type == PTHREAD_CANCEL_ASYNCHRONOUS;
  if (cancel_async_ && CancelDue()) Exit(PTHREAD_CANCELED);  // as glibc
  return 0;
}

void FiberTask::TestCancel() {
  if (CancelDue()) Exit(PTHREAD_CANCELED);
}

}  // namespace gonet::core
