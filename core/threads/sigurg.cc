#include "core/threads/sigurg.h"

#include <signal.h>
#include <ucontext.h>

#include <atomic>

#include "core/base/base.h"
#include "core/base/mode.h"
#include "core/base/signal_policy.h"
#include "core/base/spinlock.h"
#include "core/base/sys.h"
#include "core/stats/dump_area.h"
#include "core/threads/kernel_wait.h"
#include "core/threads/thread_parker.h"

namespace gonet::core {
namespace internal {
std::atomic<bool> g_sigurg_handler_installed{false};
}  // namespace internal
namespace {
using internal::g_sigurg_handler_installed;
std::atomic<bool> g_kernel_wait_handler{false};  // installed for the kernel wait (its SI_TKILL)
std::atomic<int> g_pid{0};
std::atomic<DumpAnswerer> g_answer{nullptr};
std::atomic<SigurgClaim> g_claim{nullptr};

// The program's own SIGURG disposition (what sigaction shows it). Guarded by g_virtual_mu for
// writers; the handler reads it without the lock (a torn read is impossible for the pointer-size
// fields it uses, and sigaction races are the program's own).
Spinlock g_virtual_mu;
struct sigaction g_app_urg;  // zero = SIG_DFL

// True if the signal interrupted a syscall that will now return EINTR. x86_64: the kernel stores
// the syscall's result in rax before it saves the context, and for a call it restarts (an untimed
// futex wait after an SA_RESTART handler) puts back the syscall number instead.
bool InterruptedWithEintr(void* uc) {
#if defined(__x86_64__)
  return uc != nullptr && static_cast<ucontext_t*>(uc)->uc_mcontext.gregs[REG_RAX] == -EINTR;
#else
  (void)uc;
  return true;
#endif
}

void WakeHandler(int sig, siginfo_t* si, void* uc) {
  if (si != nullptr && si->si_code == SI_TKILL &&
      si->si_pid == g_pid.load(std::memory_order_relaxed) &&
      g_kernel_wait_handler.load(std::memory_order_relaxed)) {
    NoteKernelWake();
    return;
  }
  if (SigurgClaim claim = g_claim.load(std::memory_order_acquire);
      claim != nullptr && claim(si, uc)) {
    return;
  }
  // `gonet dump`'s request (observe/dump.h), sent by another process with SI_QUEUE. A thread
  // inside a DirectCall or parked on its ThreadParker answers and marks the interruption as
  // gonet's, so the call or the park resumes; any other thread only helps copy the records.
  if (IsDumpRequest(si)) {
    KernelWaitRecord* r = CurrentKernelWaitRecord();
    bool in_call = r != nullptr && r->fd.load(std::memory_order_relaxed) >= 0;
    if (in_call) NoteKernelWake();
    ThreadParker* p = ThreadParker::OfCurrentThreadIfAny();
    if (p != nullptr && InterruptedWithEintr(uc)) ThreadParker::NoteDumpInterrupt();
    bool parked = p != nullptr && p->wait_note().what.load(std::memory_order_relaxed) != kWaitNone;
    if (DumpAnswerer answer = g_answer.load(std::memory_order_acquire)) {
      answer(si, uc, in_call ? r : nullptr, parked ? p : nullptr);
    }
    return;
  }
  // Not ours: the program's SIGURG (out-of-band data, or its own use), to its own handler.
  struct sigaction app = g_app_urg;
  if (app.sa_flags & SA_SIGINFO) {
    if (app.sa_sigaction != nullptr) app.sa_sigaction(sig, si, uc);
  } else if (app.sa_handler != SIG_DFL && app.sa_handler != SIG_IGN && app.sa_handler != nullptr) {
    app.sa_handler(sig);
  }
}

void InstallHandler(int flags) {
  g_pid.store(static_cast<int>(sys::Call(SYS_getpid)), std::memory_order_relaxed);
  // Keep whatever the program (or its parent, for an inherited SIG_IGN) had as its own view.
  struct sigaction old {};
  if (sigaction(SIGURG, nullptr, &old) == 0) g_app_urg = old;
  struct sigaction sa {};
  sa.sa_sigaction = WakeHandler;
  sa.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGURG, &sa, nullptr) == 0) g_sigurg_handler_installed.store(true);
  // The program's restart policy for SIGURG is its own handler's, not gonet's.
  NoteSigaction(SIGURG, &g_app_urg);
}

}  // namespace

void SetDumpAnswerer(DumpAnswerer answer) { g_answer.store(answer, std::memory_order_release); }

void SetSigurgClaim(SigurgClaim claim) { g_claim.store(claim, std::memory_order_release); }

void SendGonetSigurg(int tid, uint64_t magic, uint32_t id) {
  siginfo_t si{};
  si.si_signo = SIGURG;
  si.si_code = SI_QUEUE;
  si.si_pid = static_cast<pid_t>(sys::Call(SYS_getpid));
  si.si_uid = static_cast<uid_t>(sys::Call(SYS_getuid));
  si.si_value.sival_ptr = reinterpret_cast<void*>((magic << 32) | id);
  sys::Call(SYS_rt_tgsigqueueinfo, si.si_pid, tid, SIGURG, &si);
}

bool IsGonetSigurg(const siginfo_t* si, uint64_t magic, uint32_t* id) {
  if (si == nullptr || si->si_code != SI_QUEUE) return false;
  auto v = reinterpret_cast<uint64_t>(si->si_value.sival_ptr);
  if ((v >> 32) != magic) return false;
  if (id != nullptr) *id = static_cast<uint32_t>(v);
  return true;
}

void EndRewoundSyscallWithEintr(void* ucontext) {
#if defined(__x86_64__)
  if (ucontext == nullptr) return;
  greg_t* regs = static_cast<ucontext_t*>(ucontext)->uc_mcontext.gregs;
  const auto* ip = reinterpret_cast<const unsigned char*>(regs[REG_RIP]);
  if (ip[0] == 0x0f && ip[1] == 0x05) {  // syscall
    regs[REG_RAX] = -EINTR;
    regs[REG_RIP] += 2;
  }
#else
  (void)ucontext;
#endif
}

void InstallKernelWaitHandler() {
  g_kernel_wait_handler.store(true, std::memory_order_relaxed);
  InstallHandler(0);  // no SA_RESTART: the blocked call must return EINTR
}

bool EnsureDumpHandler() {
  if (GONET_LIKELY(g_sigurg_handler_installed.load(std::memory_order_acquire))) return true;
  if (mode() != RunMode::kThreads && mode() != RunMode::kFibers) return false;
  // Once: the first parkers to sleep may race here.
  static std::atomic<bool> claimed{false};
  if (claimed.exchange(true, std::memory_order_acq_rel)) {
    return g_sigurg_handler_installed.load(std::memory_order_acquire);
  }
  InstallHandler(SA_RESTART);
  return g_sigurg_handler_installed.load(std::memory_order_acquire);
}

int SigurgPid() { return g_pid.load(std::memory_order_relaxed); }

void SigurgAfterForkChild() {
  g_pid.store(static_cast<int>(sys::Call(SYS_getpid)), std::memory_order_relaxed);
}

bool VirtualSigaction(int sig, const struct sigaction* act, struct sigaction* old, int* result) {
  if (sig != SIGURG || !g_sigurg_handler_installed.load(std::memory_order_acquire)) return false;
  SpinGuard g(g_virtual_mu);
  if (old != nullptr) *old = g_app_urg;
  if (act != nullptr) g_app_urg = *act;
  *result = 0;
  return true;
}

}  // namespace gonet::core
