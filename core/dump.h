// `gonet dump PID`: what each thread blocked in a socket call waits on, and where, taken from the
// running program without stopping it (Go's SIGQUIT goroutine dump, minus the exit).
//
// The protocol, over the live-stats segment (stats_shm.h), in threads mode's kernel wait
// (kernel_wait.h), where a blocked thread is a thread inside the blocking syscall:
//   1. The dumper (another process, same user or root) takes an exclusive flock on the segment
//      (one dump at a time), picks the next request number and stores it in DumpArea::seq.
//   2. It finds the threads blocked in a socket receive or accept from outside, in
//      /proc/PID/task/TID/syscall, and sends each one SIGURG with rt_tgsigqueueinfo, si_code
//      SI_QUEUE and a value carrying kDumpSignalMagic and the request number.
//   3. The thread's SIGURG handler (kernel_wait.cc WakeHandler) recognises the request and calls
//      AnswerDumpRequest: if the thread is inside a DirectCall it claims a slot, writes its tid,
//      fd, op, since, peer and local address (getpeername/getsockname, plain syscalls) and its
//      backtrace (backtrace.h), then stores the slot's seq last (release). The first answer also
//      copies every thread's KernelWaitRecord into DumpArea::waits, so threads the dumper did not
//      signal (blocked in send or connect) are listed too, without a backtrace.
//   4. The handler marks the wake-up as gonet's (t_woken), so the interrupted call returns EINTR
//      into DirectCall, which restarts it: the program sees nothing.
//   5. The dumper waits, bounded, for the slots of its request, then prints them. Symbol names
//      come from the target (libunwind's unw_get_proc_name reads the mapped ELF's symbol tables,
//      .symtab included, and is documented as safe in a signal handler for local unwinding);
//      the module of each pc comes from /proc/PID/maps.
//
// Why only receives and accepts are signalled: an interrupted blocking send that already copied
// some bytes returns that partial count instead of EINTR, and an interrupted connect cannot be
// restarted (the second connect says EALREADY); either would change what the program sees. A
// receive or accept on a socket with SO_RCVTIMEO is not signalled either: its restart would wait
// the whole timeout again. Only the first thread asked (to copy the records) is asked blind.
// A recv with MSG_WAITALL that already holds some bytes also returns them early: a documented
// limit (the kernel allows a signal to do that natively).
//
// Cost when nobody dumps: none on any hot path. KernelWait already writes fd/op/since; the
// handler adds one compare for SIGURGs that gonet sends on close.
#pragma once

#include <signal.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace gonet::core {

struct KernelWaitRecord;

inline constexpr uint64_t kDumpSignalMagic = 0x676e6474;  // "gndt": high half of sival_ptr
inline constexpr int kDumpFrames = 32;
inline constexpr int kDumpNameSize = 96;
inline constexpr uint32_t kDumpSlots = 64;
inline constexpr uint32_t kDumpWaits = 1024;

// One answering thread. Written only by that thread's handler, after claiming it.
struct DumpSlot {
  std::atomic<uint64_t> seq;  // the request answered; stored last (release)
  int32_t tid;
  int32_t fd;
  int32_t op;  // 'r' 'w' 'a' 'c'
  int32_t nframes;
  int64_t since_ns;  // CLOCK_MONOTONIC when the call started
  int64_t now_ns;    // CLOCK_MONOTONIC when the handler ran
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
};

// A copy of one KernelWaitRecord.
struct DumpWait {
  int32_t tid;
  int32_t fd;
  int32_t op;
  int32_t flags;  // DumpWaitFlags
  int64_t since_ns;
};

struct DumpArea {
  std::atomic<uint64_t> seq;   // the request in progress (dumper writes)
  std::atomic<uint32_t> used;  // slots claimed for seq (handlers fetch_add; dumper resets)
  std::atomic<uint32_t> waits_count;
  std::atomic<uint64_t> waits_seq;   // request the waits copy answers; CAS claims the copy
  std::atomic<uint64_t> waits_done;  // stored after the copy (release)
  int64_t waits_now_ns;
  DumpWait waits[kDumpWaits];
  DumpSlot slots[kDumpSlots];
};

inline uint64_t DumpSignalValue(uint64_t seq) {
  return (kDumpSignalMagic << 32) | (seq & 0xffffffffu);
}

inline bool IsDumpRequest(const siginfo_t* si) {
  return si != nullptr && si->si_code == SI_QUEUE &&
         (reinterpret_cast<uint64_t>(si->si_value.sival_ptr) >> 32) == kDumpSignalMagic;
}

// In the SIGURG handler, on the thread the request was sent to. rec is that thread's record when
// it is inside a DirectCall, else nullptr (then only the waits table may be copied).
// Async-signal-safe: atomics, plain syscalls and libunwind's local unwinding only.
void AnswerDumpRequest(const siginfo_t* si, void* ucontext, const KernelWaitRecord* rec);

}  // namespace gonet::core
