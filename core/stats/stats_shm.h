// The live-stats segment: each gonet process publishes its counters (stats.h) in a segment of its
// own, which `gonet stats PID` maps read-only and `gonet dump PID` uses to talk to the process
// (observe/dump.h). Nothing opens a network port, and nothing is left behind (issue 17).
//
// Where it lives, and why there. The segment is a memfd ("gonet-stats", memfd_create(2)):
// anonymous shared memory with no name in any file system. The kernel frees it when its last
// reference goes, and its only references are this process's mapping and one fd of this process,
// so it disappears with the process by construction: exit, SIGTERM, SIGKILL, a crash or exec
// (the fd is close-on-exec and exec replaces the mappings), with no clean-up code to run. The old
// /dev/shm/gonet.<pid> file outlived every program that died of a signal.
// A reader reaches it through the process's fd: it lists /proc/PID/fd, picks the link that reads
// "/memfd:gonet-stats (deleted)" and whose inode the process maps (/proc/PID/maps: an fd alone
// could be inherited by a program without gonet), and opens /proc/PID/fd/N. The kernel's ptrace
// access check on /proc/PID/fd then decides who may: the process's own user and root, nobody
// else (EACCES). Why an fd, and not the mapping alone: /proc/PID/map_files/ would find the
// mapping without any fd, but opening it needs CAP_SYS_ADMIN (CAP_CHECKPOINT_RESTORE) even for
// the owner, on this kernel (6.x) as on every one since 4.3; only root's `gonet` uses it, as the
// fallback for a program that closed gonet's fd behind its back (a raw close syscall).
//
// The fd, as the program sees it. It must be invisible and must survive what programs do to
// their fds, so it sits where the program does not allocate: at the soft RLIMIT_NOFILE itself
// (the soft limit is raised by one for the placing F_DUPFD and put back: the program keeps every
// number it could have, and hits EMFILE exactly where it would natively), or, when the soft limit
// equals the hard one, at the highest free number below it (the program then gets EMFILE one fd
// earlier); with a soft limit above kSegmentFdCap, at the lowest free number from kSegmentFdCap
// (a number that high stays clear of select's FD_SETSIZE, the kernel's fd table stays small, and
// the program again gets one fd fewer before EMFILE). The code is core/base/own_fd.h's, which
// also places the netpoller's two fds (without ever raising the limit: other threads run then).
// The program never opened that number, so the shim answers for it as the kernel would for a
// free number (shim/close_dup.cc): close(fd) and dup/dup2/dup3 of it fail with EBADF, leaving it
// open; close_range and closefrom close everything else in their range; dup2/dup3 onto it first
// move the segment to another number (MoveStatsSegmentFd), then the program's call proceeds.
// What stays visible: the fd in /proc/self/fd and to fcntl/fstat on that exact number, and the
// number's being skipped by a program that raises its limit and allocates past it.
//
// Lifecycle, per process:
//   Init (every mode, passthrough too): create, size, seal (F_SEAL_SHRINK|GROW: a reader cannot
//     truncate it under the program and make its counters SIGBUS), map shared, place the fd.
//   Live: the Counters block inside the segment is the live block (SetStatsBlock).
//   fork: the child creates its own segment in place of the parent's fd (same number), starts
//     from a copy of the parent's counters (as it starts from a copy of the parent's memory: the
//     gauges, such as fds_armed, stay consistent with the state the child inherited), unmaps the
//     parent's, and counts on its own from then on.
//   exec: the fd closes (close-on-exec) and the mapping goes; the new image's constructor makes
//     its own segment if it runs under gonet.
//   Any failure (no memfd, a seccomp filter): the static block stays, silently; a segment whose fd
//     cannot be placed out of the program's way stays mapped without an fd (root can still read
//     it).
//
// Layout (version 2: the dump area grew a parker table and fiber waiters): ShmHeader, then counter
// names (kShmCounterNameSize bytes each), then the counters (one int64 each, in the names' order),
// then the dump area (dump_area.h). The reader takes every offset and count from the header and the
// names from the segment, so a newer runtime with more counters is still readable by an older
// `gonet`.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/base/own_fd.h"

namespace gonet::core {

inline constexpr uint64_t kShmMagic = 0x314d5354454e4f47ULL;  // "GONETSM1", little-endian
inline constexpr uint32_t kShmVersion = 2;
inline constexpr size_t kShmCounterNameSize = 32;
// memfd_create's name; /proc shows the fd's link and the mapping as "/memfd:NAME (deleted)".
inline constexpr char kSegmentName[] = "gonet-stats";
inline constexpr char kSegmentLink[] = "/memfd:gonet-stats (deleted)";
// The segment's fd goes no higher than this (see the top).
inline constexpr int kSegmentFdCap = kOwnFdFloor;  // core/base/own_fd.h

enum ShmFlags : uint32_t {
  // Threads mode's kernel wait is on: SIGURG is gonet's from the start, and a thread blocked in a
  // socket call answers gonet dump's request (observe/dump.h). Other modes say so in
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
  uint32_t dump_offset;  // DumpArea (dump_area.h)
  uint32_t total_size;
};

// Creates this process's segment and moves the live counters into it (Init). Records the run mode
// and flags given. Returns false (and leaves the static block live) on any failure.
bool CreateStatsSegment(int mode, uint32_t flags);

// In the fork child: a segment of its own, or the static block (never the parent's).
// Async-signal-safe (raw syscalls only).
void StatsSegmentAfterForkChild();

// For tests: closes the segment's fd and unmaps it; the static block is live again.
void DropStatsSegmentForTest();

// This process's segment header, or nullptr.
ShmHeader* StatsSegment();

namespace internal {
extern std::atomic<int> g_segment_fd;
}

// The fd number that holds the segment, or -1. Read by the close/dup hooks on every call: one
// relaxed load (the number changes only in Init, the fork child and MoveStatsSegmentFd).
inline int StatsSegmentFd() { return internal::g_segment_fd.load(std::memory_order_relaxed); }
inline bool IsStatsSegmentFd(int fd) { return fd >= 0 && fd == StatsSegmentFd(); }

// The program is about to make `fd`, the segment's number, its own (dup2/dup3 onto it): moves the
// segment to another number first. If no number can be had, the fd is closed: the segment stays
// mapped and counting, and only root's `gonet` can still reach it (map_files). Two threads racing
// here are serialised; errno is preserved.
void MoveStatsSegmentFd(int fd);

}  // namespace gonet::core
