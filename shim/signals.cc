// sigaction and its family (signal, bsd_signal, ssignal, sysv_signal, sigignore, siginterrupt,
// sigset), the System V and BSD mask calls, and the signal waits. gonet watches which handlers
// lack SA_RESTART (core/base/signal_policy.h); keeps the program's own view of SIGURG, which
// threads mode uses to wake blocked calls (core/threads/sigurg.h); and in fibers mode holds the
// program's handlers behind its trampoline (core/fibers/signal_route.h), so every entry that can
// change a disposition goes through the one sigaction below.
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

#include "core/base/signal_policy.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/fibers/fiber_signals.h"
#include "core/fibers/signal_route.h"
#include "core/fibers/syscall_offload.h"
#include "core/threads/kernel_wait.h"
#include "core/threads/sigurg.h"
#include "shim/abi.h"
#include "shim/next.h"
#include "shim/real.h"

namespace core = gonet::core;
namespace real = gonet::real;

// The System V and BSD calls below are deprecated in glibc's headers, and still exported: hooking
// them names them.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

namespace {

// The program's sigaction as gonet serves it: its own view of SIGURG (core/threads/sigurg.h),
// fibers mode's table of handlers behind the trampoline (core/fibers/signal_route.h), or libc's.
int ProgramSigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  int r = 0;
  if (!core::VirtualSigaction(sig, act, old, &r) && !core::RoutedSigaction(sig, act, old, &r)) {
    r = real::sigaction(sig, act, old);
  }
  if (r == 0 && act != nullptr) core::NoteSigaction(sig, act);
  return r;
}

// True when gonet, not libc, holds sig's disposition: then glibc's own signal(), sysv_signal(),
// sigset()... must not run, since they install through glibc's internal sigaction, which no hook
// sees. (Asking VirtualSigaction with neither act nor old changes nothing.)
bool Served(int sig) {
  int unused = 0;
  return core::VirtualSigaction(sig, nullptr, nullptr, &unused) || core::RoutesDisposition(sig);
}

// What glibc's signal-family functions install, through ProgramSigaction: handler h, the flags,
// and sa_mask empty or just sig. Returns the previous handler, or SIG_ERR.
sighandler_t InstallLike(int sig, sighandler_t h, int flags, bool self_in_mask) {
  if (h == SIG_ERR || sig < 1 || sig >= NSIG) {
    errno = EINVAL;
    return SIG_ERR;
  }
  struct sigaction act {};
  act.sa_handler = h;
  sigemptyset(&act.sa_mask);
  if (self_in_mask) sigaddset(&act.sa_mask, sig);
  act.sa_flags = flags;
  struct sigaction old {};
  if (ProgramSigaction(sig, &act, &old) != 0) return SIG_ERR;
  return old.sa_handler;
}

// glibc's signal() (BSD semantics): SA_RESTART unless siginterrupt(sig, 1) said otherwise, and
// the signal blocked while its handler runs.
sighandler_t BsdSignal(int sig, sighandler_t h) {
  return InstallLike(sig, h, core::SignalInterrupts(sig) ? 0 : SA_RESTART, true);
}

sigset_t One(int sig) {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, sig);
  return set;
}

}  // namespace

GONET_HOOK int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  return ProgramSigaction(sig, act, old);
}

GONET_HOOK int __sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  return ProgramSigaction(sig, act, old);
}

// glibc's signal() installs through its internal sigaction, which no hook sees: where gonet holds
// the disposition it installs the same action itself; elsewhere it asks afterwards.
GONET_HOOK sighandler_t signal(int sig, sighandler_t handler) {
  if (Served(sig)) return BsdSignal(sig, handler);
  sighandler_t prev = real::signal(sig, handler);
  if (prev != SIG_ERR) {
    struct sigaction now {};
    if (real::sigaction(sig, nullptr, &now) == 0) core::NoteSigaction(sig, &now);
  }
  return prev;
}

GONET_HOOK sighandler_t bsd_signal(int sig, sighandler_t handler) { return signal(sig, handler); }
GONET_HOOK sighandler_t ssignal(int sig, sighandler_t handler) { return signal(sig, handler); }

// System V signal(): reset to SIG_DFL at delivery, the signal not blocked in its handler.
GONET_HOOK sighandler_t __sysv_signal(int sig, sighandler_t handler) {
  if (Served(sig)) return InstallLike(sig, handler, SA_RESETHAND | SA_NODEFER, false);
  return NEXT(__sysv_signal)(sig, handler);
}

GONET_HOOK sighandler_t sysv_signal(int sig, sighandler_t handler) {
  return __sysv_signal(sig, handler);
}

GONET_HOOK int sigignore(int sig) {
  if (!Served(sig)) return NEXT(sigignore)(sig);
  return InstallLike(sig, SIG_IGN, 0, false) == SIG_ERR ? -1 : 0;
}

// siginterrupt changes SA_RESTART of the installed action, and what later signal() calls install.
GONET_HOOK int siginterrupt(int sig, int interrupt) {
  if (!Served(sig)) return NEXT(siginterrupt)(sig, interrupt);
  struct sigaction act {};
  if (ProgramSigaction(sig, nullptr, &act) != 0) return -1;
  core::SetSignalInterrupts(sig, interrupt != 0);
  if (interrupt != 0) {
    act.sa_flags &= ~SA_RESTART;
  } else {
    act.sa_flags |= SA_RESTART;
  }
  return ProgramSigaction(sig, &act, nullptr);
}

// The System V mask-and-disposition calls, and the BSD mask calls: glibc's change the mask with
// its internal sigprocmask, which in a fiber is not the fiber's (core/fibers/fiber_signals.h).
// Taken over whenever gonet holds the disposition or the caller is a fiber, through the hooked
// sigprocmask and sigaction.
GONET_HOOK sighandler_t sigset(int sig, sighandler_t disp) {
  if (!Served(sig) && !core::InFiber()) return NEXT(sigset)(sig, disp);
  if (disp == SIG_ERR || sig < 1 || sig >= NSIG) {
    errno = EINVAL;
    return SIG_ERR;
  }
  sigset_t set = One(sig), was;
  if (disp == SIG_HOLD) {
    if (sigprocmask(SIG_BLOCK, &set, &was) != 0) return SIG_ERR;
    if (sigismember(&was, sig) == 1) return SIG_HOLD;
    struct sigaction old {};
    if (ProgramSigaction(sig, nullptr, &old) != 0) return SIG_ERR;
    return old.sa_handler;
  }
  sighandler_t prev = InstallLike(sig, disp, 0, false);
  if (prev == SIG_ERR) return SIG_ERR;
  if (sigprocmask(SIG_UNBLOCK, &set, &was) != 0) return SIG_ERR;
  return sigismember(&was, sig) == 1 ? SIG_HOLD : prev;
}

GONET_HOOK int sighold(int sig) {
  if (!core::InFiber()) return NEXT(sighold)(sig);
  sigset_t set = One(sig);
  return sigprocmask(SIG_BLOCK, &set, nullptr);
}

GONET_HOOK int sigrelse(int sig) {
  if (!core::InFiber()) return NEXT(sigrelse)(sig);
  sigset_t set = One(sig);
  return sigprocmask(SIG_UNBLOCK, &set, nullptr);
}

namespace {

// The BSD calls' int mask: the first 32 signals (glibc's sigblock, sigsetmask, siggetmask).
int BsdMask(int how, int mask) {
  sigset_t set, old;
  sigemptyset(&set);
  for (int sig = 1; sig <= 32 && sig < NSIG; ++sig) {
    if ((mask & (1u << (sig - 1))) != 0) sigaddset(&set, sig);
  }
  if (sigprocmask(how, how == SIG_BLOCK && mask == 0 ? nullptr : &set, &old) != 0) return -1;
  unsigned word = 0;
  for (int sig = 1; sig <= 32 && sig < NSIG; ++sig) {
    if (sigismember(&old, sig) == 1) word |= 1u << (sig - 1);
  }
  return static_cast<int>(word);
}

}  // namespace

GONET_HOOK int sigblock(int mask) {
  if (!core::InFiber()) return NEXT(sigblock)(mask);
  return BsdMask(SIG_BLOCK, mask);
}

GONET_HOOK int sigsetmask(int mask) {
  if (!core::InFiber()) return NEXT(sigsetmask)(mask);
  return BsdMask(SIG_SETMASK, mask);
}

GONET_HOOK int siggetmask(void) {
  if (!core::InFiber()) return NEXT(siggetmask)();
  return BsdMask(SIG_BLOCK, 0);
}

// A fiber's alternate signal stack is the fiber's, installed on whichever worker runs it
// (core/fibers/fiber_thread_state.h).
GONET_HOOK int sigaltstack(const stack_t* ss, stack_t* old) {
  if (core::FiberTask* t = core::FiberScheduler::Current()) {
    core::FiberThreadState* s = t->thread_state();
    if (s == nullptr) {
      errno = ENOMEM;
      return -1;
    }
    return core::FiberSigaltstack(*s, ss, old);
  }
  return static_cast<int>(syscall(SYS_sigaltstack, ss, old));  // what glibc's wrapper does
}

// sigwait and friends in a fiber do not hold its worker, and see the signals sent to the fiber
// (core/fibers/fiber_signals.h). Elsewhere they are glibc's (cancellation points included).

GONET_HOOK int sigtimedwait(const sigset_t* set, siginfo_t* info, const timespec* timeout) {
  if (core::InFiber()) return core::FiberScheduler::Current()->SigTimedWait(set, info, timeout);
  auto next = NEXT(sigtimedwait);
  return next(set, info, timeout);
}

GONET_HOOK int sigwaitinfo(const sigset_t* set, siginfo_t* info) {
  if (core::InFiber()) return core::FiberScheduler::Current()->SigTimedWait(set, info, nullptr);
  auto next = NEXT(sigwaitinfo);
  return next(set, info);
}

GONET_HOOK int sigwait(const sigset_t* set, int* sig) {
  if (!core::InFiber()) {
    auto next = NEXT(sigwait);
    return next(set, sig);
  }
  for (;;) {
    int r = core::FiberScheduler::Current()->SigTimedWait(set, nullptr, nullptr);
    if (r > 0) {
      *sig = r;
      return 0;
    }
    if (errno != EINTR) return errno;  // sigwait restarts after a handler, as glibc's
  }
}

// sigsuspend, pause and the sigpause family in a fiber wait for the fiber's signals with the
// fiber's mask, parked (core/fibers/fiber_signals.h, SignalWait). glibc's sigpause reads the mask
// and calls its internal sigsuspend, which no hook sees: each is taken over whole.

GONET_HOOK int sigsuspend(const sigset_t* mask) {
  if (core::InFiber()) return core::FiberSigsuspend(mask);
  auto next = NEXT(sigsuspend);
  return next(mask);
}

GONET_HOOK int pause(void) {
  if (core::InFiber()) return core::FiberSigsuspend(nullptr);
  auto next = NEXT(pause);
  return next();
}

// glibc's __sigpause(sig_or_mask, is_sig): the calling thread's mask without sig (is_sig), or
// with its first 32 signals replaced by mask (BSD sigpause), for the length of a sigsuspend.
GONET_HOOK int __sigpause(int sig_or_mask, int is_sig) {
  if (!core::InFiber()) {
    using Fn = int (*)(int, int);
    static std::atomic<Fn> slot{nullptr};
    return gonet::shim::Next(slot, "__sigpause")(sig_or_mask, is_sig);
  }
  sigset_t set;
  pthread_sigmask(SIG_SETMASK, nullptr, &set);  // the fiber's (hooked)
  if (is_sig != 0) {
    if (sigdelset(&set, sig_or_mask) != 0) return -1;
  } else {
    uint64_t word;
    memcpy(&word, &set, sizeof word);
    word = (word & ~uint64_t{0xffffffff}) | static_cast<uint32_t>(sig_or_mask);
    memcpy(&set, &word, sizeof word);
  }
  return core::FiberSigsuspend(&set);
}

// sigpause(sig) as <signal.h> names it for XPG programs; the old BSD sigpause(mask).
GONET_HOOK int __xpg_sigpause(int sig) { return __sigpause(sig, 1); }
GONET_HOOK int BsdSigpause(int mask) __asm__("sigpause");
GONET_HOOK int BsdSigpause(int mask) { return __sigpause(mask, 0); }

// sigpending in a fiber: the fiber's pending signals and the process's.
GONET_HOOK int sigpending(sigset_t* set) {
  if (core::InFiber()) return core::FiberScheduler::Current()->SigPending(set);
  auto next = NEXT(sigpending);
  return next(set);
}
