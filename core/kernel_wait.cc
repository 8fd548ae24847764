#include "core/kernel_wait.h"

#include <signal.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/base.h"
#include "core/dump.h"
#include "core/runtime.h"
#include "core/signal_policy.h"
#include "core/spinlock.h"
#include "core/stats.h"
#include "core/sys.h"
#include "core/syscall_offload.h"
#include "core/thread_parker.h"

namespace gonet::core {
namespace {

constinit TypeStableArena<KernelWaitRecord> g_records;
std::atomic<bool> g_handler_installed{false};
std::atomic<bool> g_kernel_wait_handler{false};  // installed for the kernel wait (its SI_TKILL)
std::atomic<int> g_pid{0};

// Set by the handler when gonet's own SIGURG arrives; read and cleared by the interrupted call.
__thread volatile sig_atomic_t t_woken __attribute__((tls_model("initial-exec"))) = 0;
__thread KernelWaitRecord* t_record __attribute__((tls_model("initial-exec"))) = nullptr;

// The program's own SIGURG disposition (what sigaction shows it). Guarded by g_virtual_mu for
// writers; the handler reads it without the lock (a torn read is impossible for the pointer-size
// fields it uses, and sigaction races are the program's own).
Spinlock g_virtual_mu;
struct sigaction g_app_urg;  // zero = SIG_DFL

struct RecordOwner {
  KernelWaitRecord* r = nullptr;
  ~RecordOwner() {
    if (r != nullptr) {
      r->fd.store(-1, std::memory_order_relaxed);
      r->tid.store(0, std::memory_order_relaxed);
      g_records.Free(r);
    }
  }
};
thread_local RecordOwner t_owner;

KernelWaitRecord* MyRecord() {
  KernelWaitRecord* r = t_record;
  if (GONET_LIKELY(r != nullptr)) return r;
  r = g_records.Alloc();
  if (r == nullptr) return nullptr;
  r->tid.store(static_cast<int>(sys::Call(SYS_gettid)), std::memory_order_relaxed);
  t_record = r;
  t_owner.r = r;
  return r;
}

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
    t_woken = 1;
    return;
  }
  // A fiber's signal interrupts the call an offload helper makes for it (syscall_offload.h).
  if (IsOffloadInterrupt(si)) {
    NoteOffloadInterrupt(si);
    return;
  }
  // ops (issue 6): `gonet dump`'s request (dump.h), sent by another process with SI_QUEUE. A
  // thread inside a DirectCall or parked on its ThreadParker answers and marks the interruption
  // as gonet's, so the call or the park resumes; any other thread only helps copy the records.
  if (IsDumpRequest(si)) {
    KernelWaitRecord* r = t_record;
    bool in_call = r != nullptr && r->fd.load(std::memory_order_relaxed) >= 0;
    if (in_call) t_woken = 1;
    ThreadParker* p = ThreadParker::OfCurrentThreadIfAny();
    if (p != nullptr && InterruptedWithEintr(uc)) ThreadParker::NoteDumpInterrupt();
    bool parked = p != nullptr && p->wait_note().what.load(std::memory_order_relaxed) != kWaitNone;
    AnswerDumpRequest(si, uc, in_call ? r : nullptr, parked ? p : nullptr);
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

// The kernel's rt_sigaction layout.
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};

}  // namespace

bool KernelWaitEnabled() {
  return mode() == RunMode::kThreads && config().threads_wait_kernel &&
         g_handler_installed.load(std::memory_order_relaxed);
}

KernelWait::KernelWait(int fd, char op) : rec_(MyRecord()) {
  t_woken = 0;
  // Gauge apart from threads_parked, so that parks == wakes + threads_parked keeps holding for
  // the pollDesc path: a blocking call made in the kernel is not a park.
  Count(Stats().threads_in_kernel);
  Count(Stats().kernel_waits);
  if (rec_ == nullptr) return;
  rec_->op.store(op, std::memory_order_relaxed);
  rec_->since_ns.store(Nanotime(), std::memory_order_relaxed);
  // seq_cst pairs with the closer's store of closing before it scans the records: either the
  // closer sees this fd, or this thread sees closing in FdRef::Acquire... which it already passed,
  // so the caller re-checks closing after registering (see io_ops.cc DirectCall).
  rec_->fd.store(fd, std::memory_order_seq_cst);
}

KernelWait::~KernelWait() {
  Count(Stats().threads_in_kernel, -1);
  if (rec_ != nullptr) rec_->fd.store(-1, std::memory_order_release);
}

bool KernelWait::ConsumeWake() {
  if (!t_woken) return false;
  t_woken = 0;
  return true;
}

int WakeKernelWaiters(int fd) {
  int pid = g_pid.load(std::memory_order_relaxed);
  int woken = 0;
  uint32_t n = g_records.allocated();
  for (uint32_t i = 0; i < n; ++i) {
    KernelWaitRecord* r = g_records.Get(i);
    if (r == nullptr || r->fd.load(std::memory_order_seq_cst) != fd) continue;
    int tid = r->tid.load(std::memory_order_relaxed);
    if (tid != 0 && sys::Call(SYS_tgkill, pid, tid, SIGURG) == 0) ++woken;
  }
  return woken;
}

namespace {

void InstallHandler(int flags) {
  g_pid.store(static_cast<int>(sys::Call(SYS_getpid)), std::memory_order_relaxed);
  // Keep whatever the program (or its parent, for an inherited SIG_IGN) had as its own view.
  struct sigaction old {};
  if (sigaction(SIGURG, nullptr, &old) == 0) g_app_urg = old;
  struct sigaction sa {};
  sa.sa_sigaction = WakeHandler;
  sa.sa_flags = SA_SIGINFO | flags;
  sigemptyset(&sa.sa_mask);
  if (sigaction(SIGURG, &sa, nullptr) == 0) g_handler_installed.store(true);
  // The program's restart policy for SIGURG is its own handler's, not gonet's.
  NoteSigaction(SIGURG, &g_app_urg);
}

}  // namespace

void InstallKernelWaitHandler() {
  g_kernel_wait_handler.store(true, std::memory_order_relaxed);
  InstallHandler(0);  // no SA_RESTART: the blocked call must return EINTR
}

bool EnsureDumpHandler() {
  if (GONET_LIKELY(g_handler_installed.load(std::memory_order_acquire))) return true;
  if (mode() != RunMode::kThreads && mode() != RunMode::kFibers) return false;
  // Once: the first parkers to sleep may race here.
  static std::atomic<bool> claimed{false};
  if (claimed.exchange(true, std::memory_order_acq_rel)) {
    return g_handler_installed.load(std::memory_order_acquire);
  }
  InstallHandler(SA_RESTART);
  return g_handler_installed.load(std::memory_order_acquire);
}

void KernelWaitAfterForkChild() {
  g_pid.store(static_cast<int>(sys::Call(SYS_getpid)), std::memory_order_relaxed);
  g_records.ResetLockAfterFork();
  KernelWaitRecord* mine = t_record;
  uint32_t n = g_records.allocated();
  for (uint32_t i = 0; i < n; ++i) {
    KernelWaitRecord* r = g_records.Get(i);
    if (r != nullptr && r != mine) r->fd.store(-1, std::memory_order_relaxed);
  }
  if (mine != nullptr) mine->tid.store(static_cast<int>(sys::Call(SYS_gettid)));
  ThreadParkersAfterForkChild();
}

bool VirtualSigaction(int sig, const struct sigaction* act, struct sigaction* old, int* result) {
  if (sig != SIGURG || !g_handler_installed.load(std::memory_order_acquire)) return false;
  SpinGuard g(g_virtual_mu);
  if (old != nullptr) *old = g_app_urg;
  if (act != nullptr) g_app_urg = *act;
  *result = 0;
  return true;
}

uint32_t KernelWaitRecordCount() { return g_records.allocated(); }
KernelWaitRecord* KernelWaitRecordAt(uint32_t i) { return g_records.Get(i); }

}  // namespace gonet::core
