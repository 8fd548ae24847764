#include "core/stats/stats_shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>

#include <cstring>
#include <new>

#include "core/base/own_fd.h"
#include "core/base/sys.h"
#include "core/stats/dump_area.h"
#include "core/stats/stats.h"

#ifndef MFD_CLOEXEC
#define MFD_CLOEXEC 0x0001U
#endif
#ifndef MFD_ALLOW_SEALING
#define MFD_ALLOW_SEALING 0x0002U
#endif
#ifndef MFD_NOEXEC_SEAL
#define MFD_NOEXEC_SEAL 0x0008U  // Linux 6.3: not executable, sealing allowed
#endif

namespace gonet::core {
namespace internal {
std::atomic<int> g_segment_fd{-1};
}  // namespace internal

namespace {

using internal::g_segment_fd;

// Written by Init and by the fork child, each while only one thread can see them (the constructor
// runs before main; the fork child has one thread), read by the dump handler. Plain globals are
// enough for that. g_segment_fd is atomic because every close/dup hook reads it.
ShmHeader* g_header = nullptr;
std::atomic<bool> g_moving{false};  // MoveStatsSegmentFd in progress

constexpr uint32_t kCounterCount = 0
#define GONET_COUNT_COUNTER(name, help) +1
    GONET_STATS_COUNTERS(GONET_COUNT_COUNTER)
#undef GONET_COUNT_COUNTER
    ;
static_assert(sizeof(Counters) == kCounterCount * sizeof(int64_t),
              "Counters must be a plain array of int64 counters: the segment's readers rely on it");

constexpr size_t Align(size_t n, size_t a) { return (n + a - 1) / a * a; }

constexpr uint32_t kNamesOffset = static_cast<uint32_t>(Align(sizeof(ShmHeader), 64));
constexpr uint32_t kCountersOffset =
    static_cast<uint32_t>(Align(kNamesOffset + kCounterCount * kShmCounterNameSize, 64));
constexpr uint32_t kDumpOffset =
    static_cast<uint32_t>(Align(kCountersOffset + sizeof(Counters), 4096));
constexpr uint32_t kTotalSize = static_cast<uint32_t>(Align(kDumpOffset + sizeof(DumpArea), 4096));

int64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

Counters* CountersOf(ShmHeader* h) {
  return reinterpret_cast<Counters*>(reinterpret_cast<char*>(h) + h->counters_offset);
}

void CopyCounters(const Counters& from, Counters* to) {
#define GONET_COPY_COUNTER(name, help) \
  to->name.store(from.name.load(std::memory_order_relaxed), std::memory_order_relaxed);
  GONET_STATS_COUNTERS(GONET_COPY_COUNTER)
#undef GONET_COPY_COUNTER
}

// A new memfd of kTotalSize bytes, sealed against resizing, or -1. Async-signal-safe.
int CreateMemfd() {
  long fd = sys::Call(SYS_memfd_create, kSegmentName, MFD_CLOEXEC | MFD_NOEXEC_SEAL);
  if (fd == -EINVAL) {  // before Linux 6.3
    fd = sys::Call(SYS_memfd_create, kSegmentName, MFD_CLOEXEC | MFD_ALLOW_SEALING);
  }
  if (fd < 0) return -1;
  if (sys::Call(SYS_ftruncate, fd, kTotalSize) != 0) {
    sys::Call(SYS_close, fd);
    return -1;
  }
  // A reader opens the segment read-write (gonet dump writes its requests): without the seals it
  // could also shrink it, and the program's next counter update would die of SIGBUS.
  sys::Call(SYS_fcntl, fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
  return static_cast<int>(fd);
}

// Builds a segment for this process holding a copy of `from`, its fd placed out of the program's
// way (*fd_out, or -1 if no number could be had). Async-signal-safe (fork child).
ShmHeader* Build(int pid, int mode, uint32_t flags, const Counters& from, int* fd_out) {
  int fd = CreateMemfd();
  if (fd < 0) return nullptr;
  void* mem = mmap(nullptr, kTotalSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (mem == MAP_FAILED) {
    sys::Call(SYS_close, fd);
    return nullptr;
  }
  // memfd_create gave the lowest free number, which is the program's: move off it at once.
  *fd_out = PlaceOutOfTheWay(fd, RaiseLimit::kAlone);  // Init and the fork child: one thread
  sys::Call(SYS_close, fd);
  // ftruncate gave zeroed pages: only the non-zero fields are written (and only the pages
  // written are allocated; the dump area stays unbacked until a dump).
  auto* h = new (mem) ShmHeader();
  h->version = kShmVersion;
  h->header_size = sizeof(ShmHeader);
  h->pid = pid;
  h->mode = mode;
  h->flags = flags;
  h->counter_count = kCounterCount;
  h->start_mono_ns = ClockNs(CLOCK_MONOTONIC);
  h->start_real_ns = ClockNs(CLOCK_REALTIME);
  h->names_offset = kNamesOffset;
  h->counters_offset = kCountersOffset;
  h->dump_offset = kDumpOffset;
  h->total_size = kTotalSize;
  char* names = static_cast<char*>(mem) + kNamesOffset;
  size_t i = 0;
#define GONET_NAME_COUNTER(name, help)                                                  \
  static_assert(sizeof(#name) <= kShmCounterNameSize, "counter name too long: " #name); \
  memcpy(names + i++ * kShmCounterNameSize, #name, sizeof(#name));
  GONET_STATS_COUNTERS(GONET_NAME_COUNTER)
#undef GONET_NAME_COUNTER
  Counters* counters = new (static_cast<char*>(mem) + kCountersOffset) Counters();
  CopyCounters(from, counters);
  // The dump area is left as ftruncate made it: all-zero bytes are its initial state (its atomics
  // included), and constructing it would touch, hence allocate, every one of its pages.
  h->magic.store(kShmMagic, std::memory_order_release);
  return h;
}

}  // namespace

bool CreateStatsSegment(int mode, uint32_t flags) {
  int pid = static_cast<int>(sys::Call(SYS_getpid));
  int fd = -1;
  ShmHeader* h = Build(pid, mode, flags, Stats(), &fd);
  if (h == nullptr) return false;
  g_header = h;
  g_segment_fd.store(fd, std::memory_order_relaxed);
  SetStatsBlock(CountersOf(h));
  return true;
}

void StatsSegmentAfterForkChild() {
  ShmHeader* parent = g_header;
  if (parent == nullptr) return;  // never had one: the static block was copied by fork itself
  // The inherited fd is the parent's segment: give its number back first, so that the child's
  // own segment takes the same one.
  int inherited_fd = g_segment_fd.load(std::memory_order_relaxed);
  if (inherited_fd >= 0) sys::Call(SYS_close, inherited_fd);
  g_segment_fd.store(-1, std::memory_order_relaxed);
  int pid = static_cast<int>(sys::Call(SYS_getpid));
  const Counters& inherited = *CountersOf(parent);
  int fd = -1;
  ShmHeader* h = Build(pid, parent->mode, parent->flags, inherited, &fd);
  if (h != nullptr) {
    g_header = h;
    g_segment_fd.store(fd, std::memory_order_relaxed);
    SetStatsBlock(CountersOf(h));
  } else {
    // Never keep counting into the parent's segment: back to the static block, with the counts.
    SetStatsBlock(nullptr);
    CopyCounters(inherited, &Stats());
    g_header = nullptr;
  }
  munmap(parent, kTotalSize);
}

void DropStatsSegmentForTest() {
  if (g_header == nullptr) return;
  SetStatsBlock(nullptr);
  int fd = g_segment_fd.exchange(-1, std::memory_order_relaxed);
  if (fd >= 0) sys::Call(SYS_close, fd);
  munmap(g_header, kTotalSize);
  g_header = nullptr;
}

ShmHeader* StatsSegment() { return g_header; }

void MoveStatsSegmentFd(int fd) {
  while (g_moving.exchange(true, std::memory_order_acquire)) sys::Call(SYS_sched_yield);
  if (g_segment_fd.load(std::memory_order_relaxed) == fd) {
    // Not alone: a program's dup2 onto our number, rare enough to accept the instant in which
    // another thread could see the soft limit raised by one.
    int moved = PlaceOutOfTheWay(fd, RaiseLimit::kAlone);
    if (moved == fd) moved = -1;  // cannot happen (fd is taken), but never close what we keep
    g_segment_fd.store(moved, std::memory_order_relaxed);
    sys::Call(SYS_close, fd);
  }
  g_moving.store(false, std::memory_order_release);
}

}  // namespace gonet::core
