#include "core/stats/stats_shm.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <time.h>

#include <cstring>
#include <new>

#include "core/base/sys.h"
#include "core/stats/dump_area.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

// Written by Init and by the fork child, each while only one thread can see them (the constructor
// runs before main; the fork child has one thread), read by the atexit handler and the dump
// handler. Plain globals are enough for that.
ShmHeader* g_header = nullptr;
size_t g_size = 0;
char g_path[64] = {};
int g_owner_pid = 0;  // the pid whose file g_path is: a forked child must not unlink it
bool g_atexit_registered = false;

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

// Opens a new segment file at path. A file already there belongs to a dead process with this pid
// (pids are unique among live processes), so it is replaced, once.
int CreateFile(const char* path) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    long fd = sys::Call(SYS_openat, AT_FDCWD, path,
                        O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0) return static_cast<int>(fd);
    if (fd != -EEXIST) return -1;
    sys::Call(SYS_unlink, path);
  }
  return -1;
}

// Builds a segment for this process holding a copy of `from`. Async-signal-safe (fork child).
ShmHeader* Build(const char* path, int pid, int mode, uint32_t flags, const Counters& from) {
  int fd = CreateFile(path);
  if (fd < 0) return nullptr;
  void* mem = MAP_FAILED;
  if (sys::Call(SYS_ftruncate, fd, kTotalSize) == 0) {
    mem = mmap(nullptr, kTotalSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  sys::Call(SYS_close, fd);
  if (mem == MAP_FAILED) {
    sys::Call(SYS_unlink, path);
    return nullptr;
  }
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

void RemoveAtExit() { RemoveStatsSegment(); }

}  // namespace

void FormatShmPath(int pid, char* out, size_t cap) {
  // No snprintf: the fork child may only use async-signal-safe functions.
  char digits[16];
  int n = 0;
  unsigned v = static_cast<unsigned>(pid);
  do {
    digits[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v != 0 && n < 16);
  size_t len = 0;
  auto put = [&](char c) {
    if (len + 1 < cap) out[len++] = c;
  };
  for (const char* p = kShmDir; *p; ++p) put(*p);
  for (const char* p = kShmPrefix; *p; ++p) put(*p);
  while (n > 0) put(digits[--n]);
  if (cap > 0) out[len] = '\0';
}

bool CreateStatsSegment(int mode, uint32_t flags) {
  int pid = static_cast<int>(sys::Call(SYS_getpid));
  char path[sizeof g_path];
  FormatShmPath(pid, path, sizeof path);
  ShmHeader* h = Build(path, pid, mode, flags, Stats());
  if (h == nullptr) return false;
  memcpy(g_path, path, sizeof path);
  g_owner_pid = pid;
  g_header = h;
  g_size = kTotalSize;
  SetStatsBlock(CountersOf(h));
  if (!g_atexit_registered) {
    g_atexit_registered = true;
    atexit(RemoveAtExit);
  }
  return true;
}

void StatsSegmentAfterForkChild() {
  ShmHeader* parent = g_header;
  if (parent == nullptr) return;  // never had one: the static block was copied by fork itself
  int pid = static_cast<int>(sys::Call(SYS_getpid));
  char path[sizeof g_path];
  FormatShmPath(pid, path, sizeof path);
  const Counters& inherited = *CountersOf(parent);
  ShmHeader* h = Build(path, pid, parent->mode, parent->flags, inherited);
  if (h != nullptr) {
    memcpy(g_path, path, sizeof path);
    g_owner_pid = pid;
    g_header = h;
    SetStatsBlock(CountersOf(h));
  } else {
    // Never keep counting into the parent's segment: back to the static block, with the counts.
    SetStatsBlock(nullptr);
    CopyCounters(inherited, &Stats());
    g_header = nullptr;
    g_path[0] = '\0';
    g_owner_pid = 0;
  }
  munmap(parent, g_size);
}

void RemoveStatsSegment() {
  if (g_path[0] == '\0' || g_owner_pid != static_cast<int>(sys::Call(SYS_getpid))) return;
  sys::Call(SYS_unlink, g_path);
  g_path[0] = '\0';
}

ShmHeader* StatsSegment() { return g_header; }

}  // namespace gonet::core
