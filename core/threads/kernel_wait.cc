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

namespace internal {
__thread KernelWaitRecord* t_kernel_wait_record __attribute__((tls_model("initial-exec"))) =
    nullptr;
__thread volatile sig_atomic_t t_kernel_woken __attribute__((tls_model("initial-exec"))) = 0;
}  // namespace internal
using internal::t_kernel_wait_record;
using internal::t_kernel_woken;

namespace {

constinit TypeStableArena<KernelWaitRecord> g_records;

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

}  // namespace

KernelWaitRecord* internal::NewKernelWaitRecord() {
  KernelWaitRecord* r = g_records.Alloc();
  if (r == nullptr) return nullptr;
  r->tid.store(static_cast<int>(sys::Call(SYS_gettid)), std::memory_order_relaxed);
  t_kernel_wait_record = r;
  t_owner.r = r;
  return r;
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
  KernelWaitRecord* mine = t_kernel_wait_record;
  uint32_t n = g_records.allocated();
  for (uint32_t i = 0; i < n; ++i) {
    KernelWaitRecord* r = g_records.Get(i);
    if (r != nullptr && r != mine) r->fd.store(-1, std::memory_order_relaxed);
  }
  if (mine != nullptr) mine->tid.store(static_cast<int>(sys::Call(SYS_gettid)));
}

void NoteKernelWake() { t_kernel_woken = 1; }
KernelWaitRecord* CurrentKernelWaitRecord() { return t_kernel_wait_record; }

uint32_t KernelWaitRecordCount() { return g_records.allocated(); }
KernelWaitRecord* KernelWaitRecordAt(uint32_t i) { return g_records.Get(i); }

}  // namespace gonet::core
