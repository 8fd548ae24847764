// The live-stats segment: each gonet process publishes its counters (stats.h) in a file of its
// own under /dev/shm, which `gonet stats PID` maps read-only and `gonet dump PID` uses to talk
// to the process (dump.h). Nothing opens a network port.
//
// Lifecycle, per process:
//   Init (every mode, passthrough too): create /dev/shm/gonet.<pid>, mode 0600, so only the
//     process's own user (and root) can open it. The name is per pid, so a file that already
//     exists under it belongs to a dead process whose pid was reused: it is replaced.
//   Live: the Counters block inside the segment is the live block (SetStatsBlock).
//   exit(): the file is unlinked (atexit). The mapping stays until the process is gone, so
//     threads still counting and the --stats summary printed at exit keep working.
//   fork: the child creates its own segment, starts from a copy of the parent's counters (as it
//     starts from a copy of the parent's memory: the gauges, such as fds_armed, stay consistent
//     with the state the child inherited), and counts on its own from then on.
//   Killed, or exec'd into a program without gonet: the file stays. It is stale when no process
//     with that pid maps it; `gonet stats` says so and removes it.
//   No /dev/shm, or any other failure: the static block stays, silently.
//
// Layout (version 2: the dump area grew a parker table and fiber waiters): ShmHeader, then counter
// names (kShmCounterNameSize bytes each), then the counters (one int64 each, in the names' order),
// then the dump area (dump.h). The reader takes every offset and count from the header and the
// names from the segment, so a newer runtime with more counters is still readable by an older
// `gonet`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gonet::core {

inline constexpr uint64_t kShmMagic = 0x314d5354454e4f47ULL;  // "GONETSM1", little-endian
inline constexpr uint32_t kShmVersion = 2;
inline constexpr size_t kShmCounterNameSize = 32;
inline constexpr char kShmDir[] = "/dev/shm/";
inline constexpr char kShmPrefix[] = "gonet.";

enum ShmFlags : uint32_t {
  // Threads mode's kernel wait is on: SIGURG is gonet's from the start, and a thread blocked in a
  // socket call answers gonet dump's request (dump.h). Other modes say so in
  // DumpArea::answering once they install the handler; with neither, the dumper sends no signal.
  kShmFlagKernelWait = 1u << 0,
};

struct ShmHeader {
  std::atomic<uint64_t> magic;  // stored last at creation (release): the rest is then complete
  uint32_t version;
  uint32_t header_size;
  int32_t pid;
  int32_t mode;    // RunMode
  uint32_t flags;  // ShmFlags
  uint32_t counter_count;
  int64_t start_mono_ns;  // CLOCK_MONOTONIC at creation: the clock is system-wide, so uptime
  int64_t start_real_ns;  // CLOCK_REALTIME at creation, for humans
  uint32_t names_offset;
  uint32_t counters_offset;
  uint32_t dump_offset;  // DumpArea (dump.h)
  uint32_t total_size;
};

// Writes "/dev/shm/gonet.<pid>" (NUL-terminated) into out; async-signal-safe (fork child).
void FormatShmPath(int pid, char* out, size_t cap);

// Creates this process's segment and moves the live counters into it (Init). Records the run mode
// and flags given. Returns false (and leaves the static block live) on any failure.
bool CreateStatsSegment(int mode, uint32_t flags);

// In the fork child: a segment of its own, or the static block (never the parent's).
void StatsSegmentAfterForkChild();

// Unlinks this process's segment file (atexit; also for tests). The mapping stays valid.
void RemoveStatsSegment();

// This process's segment header, or nullptr.
ShmHeader* StatsSegment();

}  // namespace gonet::core
