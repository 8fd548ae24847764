#include "core/base/signal_policy.h"

#include <atomic>
#include <cstdint>

#include "core/base/sys.h"
#include "core/base/thread_signals.h"

namespace gonet::core {
namespace {
// Bit (sig-1) set: a handler (not SIG_DFL/SIG_IGN) without SA_RESTART is installed for sig.
std::atomic<uint64_t> g_non_restart_mask{0};
}  // namespace

void NoteSigaction(int sig, const struct sigaction* act) {
  // 32 and 33 are glibc's own (SIGCANCEL, SIGSETXID): never a program's handler.
  if (sig < 1 || sig > 64 || sig == 32 || sig == 33 || act == nullptr) return;
  uint64_t bit = SignalBit(sig);
  bool handler = act->sa_handler != SIG_DFL && act->sa_handler != SIG_IGN;
  if (handler && !(act->sa_flags & SA_RESTART)) {
    g_non_restart_mask.fetch_or(bit, std::memory_order_relaxed);
  } else {
    g_non_restart_mask.fetch_and(~bit, std::memory_order_relaxed);
  }
}

void ScanInstalledHandlers() {
  for (int sig = 1; sig <= 64; ++sig) {
    sys::KernelSigaction old{};
    if (sys::Call(SYS_rt_sigaction, sig, nullptr, &old, 8) != 0) continue;
    struct sigaction act {};
    act.sa_handler = reinterpret_cast<void (*)(int)>(old.handler);
    act.sa_flags = static_cast<int>(old.flags);
    NoteSigaction(sig, &act);
  }
}

bool AllHandlersRestart() { return g_non_restart_mask.load(std::memory_order_relaxed) == 0; }

}  // namespace gonet::core
