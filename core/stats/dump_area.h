// The dump area's format: the part of the live-stats segment (stats_shm.h) through which
// `gonet dump` talks to a running process. The protocol that fills it is observe/dump.h's; this
// header is only the layout, shared by the process (stats/, threads/, observe/) and the reader
// (preload/). The area is all-zero bytes until used.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "core/stats/stats_shm.h"

namespace gonet::core {

inline constexpr uint64_t kDumpSignalMagic = 0x676e6474;  // "gndt": high half of sival_ptr
inline constexpr int kDumpFrames = 32;
inline constexpr int kDumpNameSize = 96;
inline constexpr uint32_t kDumpSlots = 256;       // waiters with a backtrace and addresses
inline constexpr uint32_t kDumpFiberSlots = 192;  // of which fibers may take (threads answer later)
inline constexpr uint32_t kDumpWaits = 4096;      // waiters listed at all
inline constexpr uint32_t kDumpParkers = 4096;    // ThreadParkers the dumper can see from outside

// One waiter with its backtrace. Written only by the handler that claimed it.
struct DumpSlot {
  std::atomic<uint64_t> seq;  // the request answered; stored last (release)
  int32_t tid;                // the thread, or 0 for a fiber
  uint32_t fiber;             // the fiber's number (FiberTask::number), or 0 for a thread
  int32_t fd;                 // -1: not a socket wait
  int32_t op;                 // parker.h WaitWhat ('r' 'w' 'a' 'c', or a reason)
  int32_t nframes;
  int32_t flags;     // DumpWaitFlags
  int64_t since_ns;  // CLOCK_MONOTONIC when the wait started (0: unknown)
  int64_t now_ns;    // CLOCK_MONOTONIC when the answer was written
  uint32_t peer_len;
  uint32_t local_len;
  unsigned char peer[128];  // sockaddr_storage
  unsigned char local[128];
  uint64_t pc[kDumpFrames];
  uint64_t offset[kDumpFrames];  // pc minus the start of name[i]
  char name[kDumpFrames][kDumpNameSize];
};

enum DumpWaitFlags : int32_t {
  // The socket has a kernel receive timeout (SO_RCVTIMEO): DirectCall would restart the
  // interrupted call with the whole timeout again, so the dumper does not interrupt it.
  kDumpWaitHasTimeout = 1 << 0,
  kDumpWaitKernel = 1 << 1,    // a kernel-wait record: the thread is inside the syscall
  kDumpWaitParker = 1 << 2,    // a ThreadParker's note: the thread parks on its futex (addr)
  kDumpWaitFiber = 1 << 3,     // a suspended fiber
  kDumpWaitRunnable = 1 << 4,  // fiber: suspended but queued to run, not parked
};

// One waiter, as the first answer copied it.
struct DumpWait {
  int32_t tid;     // 0 for a fiber
  uint32_t fiber;  // 0 for a thread
  int32_t fd;
  int32_t op;     // WaitWhat; 0 for a parked fiber that noted nothing
  int32_t flags;  // DumpWaitFlags
  int32_t slot;   // the fiber's slot (its backtrace), or -1; threads answer round two
  int64_t since_ns;
  uint64_t addr;  // kDumpWaitParker: the futex word the thread sleeps on
};

// A ThreadParker as seen from outside (see the top). tid 0: free entry.
struct DumpParker {
  std::atomic<int32_t> tid;
  std::atomic<uint64_t> addr;
};

// The dump area is all-zero bytes until used (stats_shm.cc leaves it as ftruncate made it).
struct DumpArea {
  std::atomic<uint32_t> answering;  // set by the process: SIGURG requests are gonet's
  std::atomic<uint64_t> seq;        // the request in progress (dumper writes)
  std::atomic<uint32_t> used;       // slots claimed for seq (handlers fetch_add; dumper resets)
  std::atomic<uint32_t> waits_count;
  std::atomic<uint32_t> waits_more;   // waiters that did not fit in waits
  std::atomic<uint32_t> fibers_skip;  // 1: fibers not walked (asked thread was a worker)
  std::atomic<uint64_t> waits_seq;    // request the waits copy answers; CAS claims the copy
  std::atomic<uint64_t> waits_done;   // stored after the copy (release)
  int64_t waits_now_ns;
  DumpParker parkers[kDumpParkers];
  DumpWait waits[kDumpWaits];
  DumpSlot slots[kDumpSlots];
  // A gonet thread that answers round one whatever the program's threads do (fibers mode: the
  // sysmon, observe/dump.h PublishDumpAnswerer); 0: none. Last, so the older fields keep their
  // offsets.
  std::atomic<int32_t> answerer_tid;
};

inline uint64_t DumpSignalValue(uint64_t seq) {
  return (kDumpSignalMagic << 32) | (seq & 0xffffffffu);
}

inline bool IsDumpRequest(const siginfo_t* si) {
  return si != nullptr && si->si_code == SI_QUEUE &&
         (reinterpret_cast<uint64_t>(si->si_value.sival_ptr) >> 32) == kDumpSignalMagic;
}

inline DumpArea* DumpAreaOf(ShmHeader* h) {
  return reinterpret_cast<DumpArea*>(reinterpret_cast<char*>(h) + h->dump_offset);
}

}  // namespace gonet::core
