#include <sys/mman.h>

#include <cstdio>

#include "core/base/sys.h"
#include "core/fibers/fiber_signals.h"
#include "core/fibers/worker.h"

namespace gonet::core {
namespace {

// Stack overflow in a fiber: the fault hits the guard page below the fiber's stack, where no
// handler could run, so every worker has an alternate signal stack and gonet's SIGSEGV handler
// (SA_ONSTACK) names the cause before the process dies as it would have. Any other SIGSEGV goes
// to the handler that was installed before (or the default action).
constexpr size_t kAltStackBytes = 64 * 1024;
struct sigaction g_prev_segv;

// The kernel resets an SA_RESETHAND handler's disposition when it delivers; chained through
// OnSegv, the previous handler (gonet's crash reporter has SA_RESETHAND) must get the same, or the
// fault, re-executed when it returns, comes back to OnSegv forever instead of killing the process
// (issue 17: a crash in a fiber spun instead of dying).
void ChainResetsHandler() {
  if (!(g_prev_segv.sa_flags & SA_RESETHAND)) return;
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &dfl, nullptr);
}

void OnSegv(int sig, siginfo_t* si, void* uc) {
  FiberTask* t = t_current;
  if (t != nullptr && t->stack().InGuard(si->si_addr)) {
    char msg[256];
    int n = snprintf(msg, sizeof msg,
                     "gonet: fiber stack overflow (fiber %u, stack %zu KiB): raise it with "
                     "pthread_attr_setstacksize or GONET_FIBER_STACK (e.g. GONET_FIBER_STACK=1m)\n",
                     t->id() & ~kTaskIdBit, t->stack().usable() / 1024);
    if (n > 0) sys::Call(SYS_write, 2, msg, static_cast<size_t>(n));
  } else {
    ChainResetsHandler();
    if (g_prev_segv.sa_flags & SA_SIGINFO) {
      if (g_prev_segv.sa_sigaction != nullptr) return g_prev_segv.sa_sigaction(sig, si, uc);
    } else if (g_prev_segv.sa_handler != SIG_DFL && g_prev_segv.sa_handler != SIG_IGN) {
      return g_prev_segv.sa_handler(sig);
    }
  }
  // Die of the fault as the program would have: default action, and the instruction faults again
  // on return.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  sigaction(SIGSEGV, &dfl, nullptr);
}

}  // namespace

void InstallOverflowHandler() {
  struct sigaction sa {};
  sa.sa_sigaction = &OnSegv;
  // SA_RESTART: a fault handler never interrupts a call, and signal_policy.h counts handlers
  // without it as "some signal may interrupt a wait".
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER | SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_prev_segv);
}

// Every worker thread gets an alternate signal stack, so that a fault on a fiber's guard page
// can still run a handler (OnSegv).
void InstallWorkerAltStack() {
  void* alt =
      mmap(nullptr, kAltStackBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (alt != MAP_FAILED) {
    stack_t ss{};
    ss.ss_sp = alt;
    ss.ss_size = kAltStackBytes;
    sigaltstack(&ss, nullptr);
    NoteMachineAltStack(alt, kAltStackBytes);
  }
}

}  // namespace gonet::core
