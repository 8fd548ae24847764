// Stack release: a parked fiber's stack pages below its stack pointer go back to the kernel once
// it has been parked for a while, as Go shrinks the stacks of idle goroutines at GC time. A
// thread-per-connection server whose connections once ran a deep call (a TLS handshake, a
// parser) and now sit idle in a blocking receive then keeps only the pages its idle frames use,
// where native threads keep every page they ever touched (issue 16).
//
// The rule:
//   When  a task that is parked with the same park word (state_, seq included: fiber_scheduler.h)
//         at two consecutive scans has been parked at least kStackScanNs (1 s) without running
//         in between. One second is Go's scale (a GC cycle on an idle heap, and sysmon's forced
//         GC is rarer still): a fiber that parks and wakes many times a second keeps its pages,
//         so a busy connection never pays a fault per page to touch its deep frames again.
//         Nothing on the park/resume path is added for this: the park word already changes at
//         every park, so "the same word at two scans" needs no timestamp.
//   Who   the sysmon (sysmon.cc), once per kStackScanNs while fibers run, and once more after
//         they all stopped (it sleeps until then instead of for good, so an idle server is
//         released once and then makes no more wake-ups); or a test, through
//         FiberScheduler::ScanParkedStacks. One scan at a time (g_scan_busy): the scan fields of
//         the tasks are the scanner's alone.
//   Which [the lowest usable page, the page boundary at or below saved SP - kRedZone): only
//         whole pages below the stack pointer at which the fiber's switch saved its registers
//         (Fiber::SavedContext). Never the guard page (below the range), never a byte at or
//         above SP (the fiber's live frames, the switch's saved registers, Boost's control
//         record at the top). The red-zone margin is belt and braces: the frame that switched
//         made a call, so it holds nothing in its red zone.
//   How   mincore first (a fiber that never went deeper than where it parks, the usual case,
//         costs one syscall and no madvise), then madvise(MADV_DONTNEED): private anonymous
//         pages read back as zeros at the next touch, which is all a stack below SP may hold.
//         Pages released are counted (stats: stack_pages_released).
//
// Why it is safe against a resume: the task is pinned while its range is released, with the
// Dekker pair gonet dump uses to unwind a suspended stack (FiberTask::on_cpu_/pinned_): the
// worker stores on_cpu_ then looks at pinned_; the scanner adds to pinned_ then looks at on_cpu_.
// Either the worker sees the pin and waits for it to drop (microseconds: one madvise), or the
// scanner sees the task on a CPU and leaves it. pinned_ is a count, so a dump and a scan may pin
// the same task at once (the sysmon answers gonet dump too, from a signal handler that may
// interrupt a scan).
// Why it is safe against signals: nothing runs on a parked fiber's stack. The kernel delivers a
// signal on the stack of what the OS thread is running (a worker's own stack, or the running
// fiber's) or on the machine's alternate stack, which is the running fiber's own sigaltstack or
// the worker's (FiberWorker::Run installs it at each switch); gonet runs a fiber's
// pthread_kill handlers on that fiber, after it resumed, on its stack or (SA_ONSTACK) its
// sigaltstack, where a handler may park: its saved SP is then outside its stack, which is left
// alone (fiber_signals.h). A fiber whose
// sigaltstack lies inside its own stack would find the area zeroed at its next signal, which is
// how the kernel hands any alternate stack to a handler anyway (no contents are promised).
//
// Free stacks are released too, when they go back to the pool (fiber_stack.cc), as glibc does
// for a cached thread stack.
//
// Cost: one pass over the task records per second (two loads per task; ~1 ms at 10,000 fibers
// on this machine's class of CPU), on the sysmon thread.
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>

#include "core/base/base.h"
#include "core/fibers/worker.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

// x86-64's red zone (the SysV ABI's 128 bytes); aarch64 has none, so this is a margin there.
constexpr uintptr_t kRedZone = 128;

std::atomic<bool> g_scan_busy{false};

size_t PageSize() {
  static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  return page;
}

// Resident pages of [lo, hi) (page-aligned), by mincore in chunks: a pthread_attr stack of
// megabytes needs more than one small vector.
size_t ResidentPages(uintptr_t lo, uintptr_t hi) {
  const size_t page = PageSize();
  unsigned char vec[256];
  size_t resident = 0;
  for (uintptr_t a = lo; a < hi;) {
    size_t pages = (hi - a) / page;
    if (pages > sizeof vec) pages = sizeof vec;
    if (mincore(reinterpret_cast<void*>(a), pages * page, vec) != 0) return pages;  // assume some
    for (size_t i = 0; i < pages; ++i) resident += vec[i] & 1;
    a += pages * page;
  }
  return resident;
}

// The release of one pinned, suspended task's pages below its saved SP. Returns pages released.
size_t ReleaseBelowSp(const FiberStack& stack, const void* saved_sp) {
  const size_t page = PageSize();
  auto sp = reinterpret_cast<uintptr_t>(saved_sp);
  auto lo = reinterpret_cast<uintptr_t>(stack.base) + page;  // above the guard page
  auto top = reinterpret_cast<uintptr_t>(stack.top());
  // Outside its stack: parked inside a handler that runs on its sigaltstack (fiber_signals.cc).
  // Its own stack is in use up to where the handler was called: leave it alone.
  if (sp < lo + kRedZone || sp > top) return 0;
  uintptr_t hi = (sp - kRedZone) & ~(uintptr_t{page} - 1);
  if (hi <= lo) return 0;
  size_t resident = ResidentPages(lo, hi);
  if (resident == 0) return 0;
  if (madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED) != 0) return 0;
  return resident;
}

}  // namespace

void FiberScheduler::ForgetPinsAfterFork() {
  g_scan_busy.store(false, std::memory_order_relaxed);
  size_t n = g_task_count.load(std::memory_order_relaxed);
  for (size_t i = 0; g_task_base != nullptr && i < n; ++i) {
    g_task_base[i].pinned_.store(0, std::memory_order_relaxed);
  }
}

size_t FiberScheduler::ScanParkedStacks(size_t* pending) {
  if (pending != nullptr) *pending = 0;
  if (g_task_base == nullptr) return 0;
  if (g_scan_busy.exchange(true, std::memory_order_acquire)) return 0;  // another scan runs
  size_t released = 0, waiting = 0;
  size_t n = g_task_count.load(std::memory_order_acquire);
  for (size_t i = 0; i < n; ++i) {
    FiberTask& t = g_task_base[i];
    uint64_t s = t.state_.load(std::memory_order_acquire);
    if (!t.alive_.load(std::memory_order_acquire) ||
        (s & FiberTask::kStMask) != FiberTask::kParked) {
      t.stack_scan_word_ = 0;  // a park word always has kParked set: never equal to 0
      continue;
    }
    if (s != t.stack_scan_word_) {  // parked since the last scan: look again at the next one
      t.stack_scan_word_ = s;
      t.stack_released_ = false;
      ++waiting;
      continue;
    }
    if (t.stack_released_) continue;
    t.stack_released_ = true;
    t.pinned_.fetch_add(1, std::memory_order_seq_cst);
    // Still parked in the same park and off every CPU, with our pin up: no worker resumes it
    // until the pin drops. (Woken meanwhile: it will run soon, leave its pages be.)
    if (t.on_cpu_.load(std::memory_order_seq_cst) == 0 &&
        t.alive_.load(std::memory_order_acquire) && t.started_ &&
        t.state_.load(std::memory_order_acquire) == s) {
      released += ReleaseBelowSp(t.fiber_.stack(), t.fiber_.SavedContext());
    }
    t.pinned_.fetch_sub(1, std::memory_order_release);
  }
  g_scan_busy.store(false, std::memory_order_release);
  if (released != 0) Count(Stats().stack_pages_released, static_cast<int64_t>(released));
  if (pending != nullptr) *pending = waiting;
  return released;
}

}  // namespace gonet::core
