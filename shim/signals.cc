// sigaction/signal: gonet watches which handlers lack SA_RESTART (core/base/signal_policy.h), and
// keeps the program's own view of SIGURG, which threads mode uses to wake blocked calls
// (core/threads/sigurg.h).
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
#include "core/fibers/syscall_offload.h"
#include "core/threads/kernel_wait.h"
#include "core/threads/sigurg.h"
#include "shim/abi.h"
#include "shim/next.h"
#include "shim/real.h"

namespace core = gonet::core;
namespace real = gonet::real;

GONET_HOOK int sigaction(int sig, const struct sigaction* act, struct sigaction* old) {
  int virtual_result = 0;
  if (core::VirtualSigaction(sig, act, old, &virtual_result)) {
    if (act != nullptr) core::NoteSigaction(sig, act);
    return virtual_result;
  }
  int r = real::sigaction(sig, act, old);
  if (r == 0 && act != nullptr) core::NoteSigaction(sig, act);
  return r;
}

// glibc's signal() installs through its internal sigaction, which no hook sees: ask afterwards.
GONET_HOOK sighandler_t signal(int sig, sighandler_t handler) {
  struct sigaction act {};
  act.sa_handler = handler;
  act.sa_flags = SA_RESTART;  // BSD semantics, as glibc's signal()
  struct sigaction old {};
  int virtual_result = 0;
  if (core::VirtualSigaction(sig, &act, &old, &virtual_result)) {
    core::NoteSigaction(sig, &act);
    return old.sa_handler;
  }
  sighandler_t prev = real::signal(sig, handler);
  if (prev != SIG_ERR) {
    struct sigaction now {};
    if (real::sigaction(sig, nullptr, &now) == 0) core::NoteSigaction(sig, &now);
  }
  return prev;
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
