#include "core/threads/kernel_wait.h"

#include <signal.h>
#include <unistd.h>

#include "core/base/arena.h"
#include "core/base/base.h"
#include "core/base/mode.h"
#include "core/base/sys.h"
#include "core/stats/stats.h"
#include "core/threads/sigurg.h"

namespace gonet::core {
namespace {

constinit TypeStableArena<KernelWaitRecord> g_records;

// Set by the handler when gonet's own SIGURG arrives; read and cleared by the interrupted call.
__thread volatile sig_atomic_t t_woken __attribute__((tls_model("initial-exec"))) = 0;
__thread KernelWaitRecord* t_record __attribute__((tls_model("initial-exec"))) = nullptr;

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

}  // namespace

bool KernelWaitEnabled() {
  return mode() == RunMode::kThreads && config().threads_wait_kernel &&
         KernelWaitHandlerInstalled();
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
  int pid = SigurgPid();
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

void KernelWaitAfterForkChild() {
  g_records.ResetLockAfterFork();
  KernelWaitRecord* mine = t_record;
  uint32_t n = g_records.allocated();
  for (uint32_t i = 0; i < n; ++i) {
    KernelWaitRecord* r = g_records.Get(i);
    if (r != nullptr && r != mine) r->fd.store(-1, std::memory_order_relaxed);
  }
  if (mine != nullptr) mine->tid.store(static_cast<int>(sys::Call(SYS_gettid)));
}

void NoteKernelWake() { t_woken = 1; }
KernelWaitRecord* CurrentKernelWaitRecord() { return t_record; }

uint32_t KernelWaitRecordCount() { return g_records.allocated(); }
KernelWaitRecord* KernelWaitRecordAt(uint32_t i) { return g_records.Get(i); }

}  // namespace gonet::core
