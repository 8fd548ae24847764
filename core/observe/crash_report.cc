#include "core/observe/crash_report.h"

#include <dlfcn.h>
#include <link.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "core/base/signal_policy.h"
#include "core/base/sys.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/observe/backtrace.h"

namespace gonet::core {
namespace {

std::atomic<uintptr_t> g_text_lo{0};
std::atomic<uintptr_t> g_text_hi{0};
std::atomic<uintptr_t> g_libc_lo{0};  // libc's text: abort, raise and the signal trampoline
std::atomic<uintptr_t> g_libc_hi{0};

constexpr int kSignals[] = {SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT};
constexpr int kMaxFrames = 48;
constexpr size_t kNameSize = 96;

struct Range {
  uintptr_t base;
  uintptr_t lo = 0;
  uintptr_t hi = 0;
};

int FindText(dl_phdr_info* info, size_t, void* arg) {
  Range* r = static_cast<Range*>(arg);
  if (info->dlpi_addr != r->base) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    uintptr_t hi = lo + ph.p_memsz;
    if (r->lo == 0 || lo < r->lo) r->lo = lo;
    if (hi > r->hi) r->hi = hi;
  }
  return 1;
}

void Write(const char* s, size_t n) { sys::Call(SYS_write, 2, s, n); }

void Report(int sig, siginfo_t* info, void* uc) {
  uint64_t pcs[kMaxFrames];
  uint64_t offsets[kMaxFrames];
  static char names[kMaxFrames * kNameSize];  // a handler may not allocate; one report at a time
  int n = SignalBacktrace(uc, pcs, offsets, names, kNameSize, kMaxFrames);
  uintptr_t lo = g_text_lo.load(std::memory_order_relaxed);
  uintptr_t hi = g_text_hi.load(std::memory_order_relaxed);
  uintptr_t libc_lo = g_libc_lo.load(std::memory_order_relaxed);
  uintptr_t libc_hi = g_libc_hi.load(std::memory_order_relaxed);
  // gonet's fault only if the innermost frame outside libc is gonet's: abort() called by the
  // program is the program's, and a gonet frame further out (fibers mode's fiber entry at the
  // base of every fiber's stack, an interposed call the program made) says nothing.
  int first = 0;
  while (first < n && pcs[first] >= libc_lo && pcs[first] < libc_hi) ++first;
  bool ours = first < n && pcs[first] >= lo && pcs[first] < hi;
  char line[256];
  if (!ours) {
    if (FiberScheduler::Current() != nullptr) {
      int len = snprintf(line, sizeof line,
                         "gonet: note: %s in the program's own code, not in gonet (it ran as a "
                         "fiber in gonet's fibers mode)\n",
                         sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal");
      if (len > 0) Write(line, static_cast<size_t>(len) < sizeof line ? len : sizeof line - 1);
    }
    return;
  }
  int len = snprintf(line, sizeof line,
                     "gonet: fatal %s inside gonet (a gonet bug, please report it); fault address "
                     "%p; backtrace of the faulting thread:\n",
                     sigabbrev_np(sig) ? sigabbrev_np(sig) : "signal",
                     info != nullptr ? info->si_addr : nullptr);
  if (len > 0) Write(line, static_cast<size_t>(len) < sizeof line ? len : sizeof line - 1);
  for (int i = 0; i < n; ++i) {
    const char* name = names + static_cast<size_t>(i) * kNameSize;
    bool in_gonet = pcs[i] >= lo && pcs[i] < hi;
    len = snprintf(line, sizeof line, "  #%-2d 0x%016llx %s%s+0x%llx%s\n", i,
                   static_cast<unsigned long long>(pcs[i]), in_gonet ? "[libgonet.so] " : "",
                   name[0] ? name : "?", static_cast<unsigned long long>(offsets[i]),
                   in_gonet ? "  <- gonet" : "");
    if (len > 0) Write(line, static_cast<size_t>(len) < sizeof line ? len : sizeof line - 1);
  }
}

void CrashHandler(int sig, siginfo_t* info, void* uc) {
  int saved = errno;
  Report(sig, info, uc);
  errno = saved;
  // SA_RESETHAND made the disposition SIG_DFL: a fault is re-executed and takes the default
  // action; abort() raises SIGABRT again itself; a SIGSEGV sent with kill would not repeat, so
  // raise it once more for that case.
  if (info != nullptr && info->si_code <= 0 && sig != SIGABRT)
    sys::Call(SYS_tgkill, sys::Call(SYS_getpid), sys::Call(SYS_gettid), sig);
}

}  // namespace

void InstallCrashReporter() {
  Dl_info self{};
  if (dladdr(reinterpret_cast<void*>(&InstallCrashReporter), &self) == 0) return;
  Range r{reinterpret_cast<uintptr_t>(self.dli_fbase)};
  dl_iterate_phdr(FindText, &r);
  if (r.hi == 0) return;
  g_text_lo.store(r.lo, std::memory_order_relaxed);
  g_text_hi.store(r.hi, std::memory_order_relaxed);
  Dl_info libc{};
  if (dladdr(reinterpret_cast<void*>(&abort), &libc) != 0) {
    Range c{reinterpret_cast<uintptr_t>(libc.dli_fbase)};
    dl_iterate_phdr(FindText, &c);
    g_libc_lo.store(c.lo, std::memory_order_relaxed);
    g_libc_hi.store(c.hi, std::memory_order_relaxed);
  }
  for (int sig : kSignals) {
    struct sigaction old {};
    if (sigaction(sig, nullptr, &old) != 0) continue;
    bool dfl = !(old.sa_flags & SA_SIGINFO) && old.sa_handler == SIG_DFL;
    if (!dfl) continue;  // the program's own handler (or SIG_IGN) stays
    struct sigaction sa {};
    sa.sa_sigaction = CrashHandler;
    sa.sa_flags = SA_SIGINFO | SA_RESETHAND | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(sig, &sa, nullptr);
    // Synchronous faults never interrupt a blocking call: not a handler for signal_policy.h.
    struct sigaction dfl_view {};
    NoteSigaction(sig, &dfl_view);
  }
}

}  // namespace gonet::core
