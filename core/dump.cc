#include "core/dump.h"

#include <sys/socket.h>
#include <time.h>

#include "core/backtrace.h"
#include "core/kernel_wait.h"
#include "core/stats_shm.h"
#include "core/sys.h"

namespace gonet::core {
namespace {

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

DumpArea* Area() {
  ShmHeader* h = StatsSegment();
  if (h == nullptr) return nullptr;
  return reinterpret_cast<DumpArea*>(reinterpret_cast<char*>(h) + h->dump_offset);
}

// The first handler to answer a request copies every record, so that threads the dumper did not
// signal (send, connect) are listed too. Records are type-stable and their fields atomic: reading
// them from a handler is what WakeKernelWaiters does from any thread.
void CopyWaits(DumpArea* area, uint64_t seq) {
  uint64_t old = area->waits_seq.load(std::memory_order_relaxed);
  if (old == seq || !area->waits_seq.compare_exchange_strong(old, seq, std::memory_order_acq_rel)) {
    return;
  }
  uint32_t n = 0;
  ForEachKernelWait([&](const KernelWaitRecord& r) {
    int fd = r.fd.load(std::memory_order_relaxed);
    if (fd < 0 || n >= kDumpWaits) return;
    DumpWait& w = area->waits[n++];
    w.tid = r.tid.load(std::memory_order_relaxed);
    w.fd = fd;
    w.op = r.op.load(std::memory_order_relaxed);
    w.since_ns = r.since_ns.load(std::memory_order_relaxed);
    w.flags = 0;
    timeval tv{};
    socklen_t len = sizeof tv;
    if ((w.op == 'r' || w.op == 'a') &&
        sys::Call(SYS_getsockopt, fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len) == 0 &&
        (tv.tv_sec != 0 || tv.tv_usec != 0)) {
      w.flags |= kDumpWaitHasTimeout;
    }
  });
  area->waits_now_ns = MonoNs();
  area->waits_count.store(n, std::memory_order_relaxed);
  area->waits_done.store(seq, std::memory_order_release);
}

}  // namespace

void AnswerDumpRequest(const siginfo_t* si, void* ucontext, const KernelWaitRecord* rec) {
  DumpArea* area = Area();
  if (area == nullptr) return;
  uint64_t seq = area->seq.load(std::memory_order_acquire);
  // A request that is no longer the current one (the dumper gave up and a new one started).
  if ((seq & 0xffffffffu) != (reinterpret_cast<uint64_t>(si->si_value.sival_ptr) & 0xffffffffu)) {
    return;
  }
  CopyWaits(area, seq);
  if (rec == nullptr) return;
  uint32_t i = area->used.fetch_add(1, std::memory_order_relaxed);
  if (i >= kDumpSlots) return;
  DumpSlot& s = area->slots[i];
  s.tid = static_cast<int32_t>(sys::Call(SYS_gettid));
  s.fd = rec->fd.load(std::memory_order_relaxed);
  s.op = rec->op.load(std::memory_order_relaxed);
  s.since_ns = rec->since_ns.load(std::memory_order_relaxed);
  s.now_ns = MonoNs();
  socklen_t len = sizeof s.peer;
  s.peer_len = sys::Call(SYS_getpeername, s.fd, s.peer, &len) == 0 ? len : 0;
  len = sizeof s.local;
  s.local_len = sys::Call(SYS_getsockname, s.fd, s.local, &len) == 0 ? len : 0;
  s.nframes = SignalBacktrace(ucontext, s.pc, s.offset, &s.name[0][0], kDumpNameSize, kDumpFrames);
  s.seq.store(seq, std::memory_order_release);
}

}  // namespace gonet::core
