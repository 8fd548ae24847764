#include "core/observe/dump.h"

#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>

#include <cstring>

#include "core/base/base.h"
#include "core/base/mode.h"
#include "core/base/sys.h"
#include "core/fibers/fiber_scheduler.h"
#include "core/observe/backtrace.h"
#include "core/stats/stats_shm.h"
#include "core/threads/kernel_wait.h"
#include "core/threads/sigurg.h"
#include "core/threads/thread_parker.h"

namespace gonet::core {
namespace {

bool IsSocketWait(char what) {
  return what == kWaitRecv || what == kWaitSend || what == kWaitAccept || what == kWaitConnect;
}

// The fiber walker's symbol cache. One walk at a time: one dumper (flock), and one answer per
// request wins the waits_seq CAS.
SymbolCache g_symbols;

// Claims a slot of the current request, or nullptr once `limit` are taken.
DumpSlot* ClaimSlot(DumpArea* area, uint32_t limit, int32_t* index) {
  uint32_t i = area->used.load(std::memory_order_relaxed);
  do {
    if (i >= limit) return nullptr;
  } while (!area->used.compare_exchange_weak(i, i + 1, std::memory_order_relaxed));
  *index = static_cast<int32_t>(i);
  return &area->slots[i];
}

void FillAddresses(DumpSlot& s) {
  s.peer_len = s.local_len = 0;
  if (s.fd < 0) return;
  socklen_t len = sizeof s.peer;
  if (sys::Call(SYS_getpeername, s.fd, s.peer, &len) == 0) s.peer_len = len;
  len = sizeof s.local;
  if (sys::Call(SYS_getsockname, s.fd, s.local, &len) == 0) s.local_len = len;
}

// The waits table being copied by the first answer.
struct Copy {
  DumpArea* area;
  uint64_t seq;
  uint32_t n = 0;
  uint32_t more = 0;
  bool Add(const DumpWait& w) {
    if (n >= kDumpWaits) {
      ++more;
      return false;
    }
    area->waits[n++] = w;
    return true;
  }
};

// ForEachSuspendedTask's callback: the task is pinned (its stack holds still) while this runs.
void NoteFiber(void* ctx, const FiberTask& t, const void* saved_context) {
  Copy& c = *static_cast<Copy*>(ctx);
  const WaitNote& note = t.wait_note();
  char what = note.what.load(std::memory_order_relaxed);
  DumpWait w{};
  w.fiber = t.number();
  w.op = what;
  w.fd = IsSocketWait(what) ? note.fd.load(std::memory_order_relaxed) : -1;
  w.since_ns = what != kWaitNone ? note.since_ns.load(std::memory_order_relaxed) : 0;
  w.flags = kDumpWaitFiber | (t.parked() ? 0 : kDumpWaitRunnable);
  w.slot = -1;
  if (c.n >= kDumpWaits) {
    c.Add(w);  // counted only
    return;
  }
  int32_t index;
  if (DumpSlot* s = ClaimSlot(c.area, kDumpFiberSlots, &index)) {
    s->tid = 0;
    s->fiber = w.fiber;
    s->fd = w.fd;
    s->op = w.op;
    s->flags = w.flags;
    s->since_ns = w.since_ns;
    s->now_ns = Nanotime();
    FillAddresses(*s);
    s->nframes = FiberBacktrace(saved_context, s->pc, s->offset, &s->name[0][0], kDumpNameSize,
                                kDumpFrames, &g_symbols);
    s->seq.store(c.seq, std::memory_order_release);
    w.slot = index;
  }
  c.Add(w);
}

// Whether this thread may walk the fibers: not a worker (a pinned task's worker would wait for
// us), which the dumper already avoids; this is the belt to its braces. A worker between tasks
// has no current task, so its name tells it ("gonet-worker", spare machines included).
bool MayWalkFibers() {
  if (FiberScheduler::Current() != nullptr) return false;
  char name[17] = {};
  if (sys::Call(SYS_prctl, PR_GET_NAME, name, 0, 0, 0) != 0) return false;
  return strncmp(name, "gonet-worker", 12) != 0;  // the sysmon and helpers are no workers
}

// The first answer to a request copies every waiter it can see, so that threads the dumper does
// not signal (a kernel-wait send or connect) are listed too, and the dumper knows which parked
// threads it may ask next. Records, parkers and tasks are type-stable and their fields atomic:
// reading them from a handler is what WakeKernelWaiters does from any thread.
void CopyWaits(DumpArea* area, uint64_t seq) {
  uint64_t old = area->waits_seq.load(std::memory_order_relaxed);
  if (old == seq || !area->waits_seq.compare_exchange_strong(old, seq, std::memory_order_acq_rel)) {
    return;
  }
  Copy c{area, seq};
  ForEachKernelWait([&](const KernelWaitRecord& r) {
    int fd = r.fd.load(std::memory_order_relaxed);
    if (fd < 0) return;
    DumpWait w{};
    w.tid = r.tid.load(std::memory_order_relaxed);
    w.fd = fd;
    w.op = r.op.load(std::memory_order_relaxed);
    w.since_ns = r.since_ns.load(std::memory_order_relaxed);
    w.flags = kDumpWaitKernel;
    w.slot = -1;
    timeval tv{};
    socklen_t len = sizeof tv;
    if ((w.op == 'r' || w.op == 'a') &&
        sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 &&
        (tv.tv_sec != 0 || tv.tv_usec != 0)) {
      w.flags |= kDumpWaitHasTimeout;
    }
    c.Add(w);
  });
  ForEachThreadParker([&](const ThreadParker& p) {
    const WaitNote& note = p.wait_note();
    char what = note.what.load(std::memory_order_relaxed);
    int tid = p.tid();
    if (what == kWaitNone || tid == 0) return;
    DumpWait w{};
    w.tid = tid;
    w.fd = IsSocketWait(what) ? note.fd.load(std::memory_order_relaxed) : -1;
    w.op = what;
    w.since_ns = note.since_ns.load(std::memory_order_relaxed);
    w.flags = kDumpWaitParker;
    w.slot = -1;
    w.addr = reinterpret_cast<uint64_t>(p.futex_word());
    c.Add(w);
  });
  if (mode() == RunMode::kFibers) {
    if (MayWalkFibers()) {
      g_symbols.Reset();
      FiberScheduler::ForEachSuspendedTask(NoteFiber, &c);
    } else {
      area->fibers_skip.store(1, std::memory_order_relaxed);
    }
  }
  area->waits_now_ns = Nanotime();
  area->waits_count.store(c.n, std::memory_order_relaxed);
  area->waits_more.store(c.more, std::memory_order_relaxed);
  area->waits_done.store(seq, std::memory_order_release);
}

}  // namespace

void AnswerDumpRequest(const siginfo_t* si, void* ucontext, const KernelWaitRecord* rec,
                       const ThreadParker* parker) {
  ShmHeader* h = StatsSegment();
  if (h == nullptr) return;
  DumpArea* area = DumpAreaOf(h);
  uint64_t seq = area->seq.load(std::memory_order_acquire);
  // A request that is no longer the current one (the dumper gave up and a new one started).
  if ((seq & 0xffffffffu) != (reinterpret_cast<uint64_t>(si->si_value.sival_ptr) & 0xffffffffu)) {
    return;
  }
  CopyWaits(area, seq);
  int32_t fd;
  int32_t op;
  int64_t since_ns;
  int32_t flags;
  if (rec != nullptr) {
    fd = rec->fd.load(std::memory_order_relaxed);
    op = rec->op.load(std::memory_order_relaxed);
    since_ns = rec->since_ns.load(std::memory_order_relaxed);
    flags = kDumpWaitKernel;
  } else if (parker != nullptr) {
    const WaitNote& note = parker->wait_note();
    char what = note.what.load(std::memory_order_relaxed);
    if (what == kWaitNone) return;
    fd = IsSocketWait(what) ? note.fd.load(std::memory_order_relaxed) : -1;
    op = what;
    since_ns = note.since_ns.load(std::memory_order_relaxed);
    flags = kDumpWaitParker;
  } else {
    return;
  }
  int32_t index;
  DumpSlot* s = ClaimSlot(area, kDumpSlots, &index);
  if (s == nullptr) return;
  s->tid = static_cast<int32_t>(sys::Call(SYS_gettid));
  s->fiber = 0;
  s->fd = fd;
  s->op = op;
  s->flags = flags;
  s->since_ns = since_ns;
  s->now_ns = Nanotime();
  FillAddresses(*s);
  s->nframes =
      SignalBacktrace(ucontext, s->pc, s->offset, &s->name[0][0], kDumpNameSize, kDumpFrames);
  s->seq.store(seq, std::memory_order_release);
}

bool PublishDumpAnswerer() {
  ShmHeader* h = StatsSegment();
  if (h == nullptr || !EnsureDumpHandler()) return false;
  DumpArea* area = DumpAreaOf(h);
  area->answerer_tid.store(static_cast<int32_t>(sys::Call(SYS_gettid)), std::memory_order_release);
  area->answering.store(1, std::memory_order_release);
  return true;
}

}  // namespace gonet::core
