// core/fd/: the fd table and its whole close protocol (this file), the blocking-call loop, the
// direct kernel call, the socket operations (ops.h), the fault gate. May include: fibers/,
// threads/, faults/, poll/, stats/, base/ (core/README.md: Layers, LOCKING).
//
// The fd table: fd number -> what gonet knows about it.
//
// FdEntry is per fd number (like the kernel's fd table slot); SocketState is per open file
// description and shared by every fd that dup/dup2/dup3/F_DUPFD made from it, because O_NONBLOCK
// and SO_RCVTIMEO/SO_SNDTIMEO belong to the open file and the socket, not to one number.
//
// FdEntry::word, after Go's fdMutex: [generation:32][closing:1][refs:31].
//   refs     in-flight operations on this fd number (an FdRef each), plus the closer's own.
//   closing  set by Close/Dup2-over: new operations fail with EBADF; the closer evicts parked
//            waiters and waits for refs to drain before the number goes back to the kernel, so a
//            reused number is never touched by a stale operation.
//   generation bumped every time the slot is (re)installed, so an FdRef taken on an earlier
//            incarnation (an fd closed behind gonet's back, then reused) cannot decrement the
//            new one's count.
// kind: kUnknown until first use (inherited, received or created behind gonet's back: adopted
// with fstat/getsockopt), kNotSocket (passed through for good), kSocket (has a SocketState).
//
// Storage: a two-level array (chunks of 1024 entries made on demand by mmap) covering fds below
// kMaxFds; reads are lock-free (acquire loads of the chunk pointer). Fds at or above kMaxFds are
// passed through unmanaged.
#pragma once

#include <sys/time.h>

#include <atomic>
#include <cstdint>

#include "core/base/base.h"
#include "core/poll/parker.h"
#include "core/poll/poll_desc.h"

namespace gonet::core {

// A timeout the kernel keeps as "zero": the call fails with EAGAIN at once (SO_RCVTIMEO with a
// negative tv_sec). 1 ns after the call starts is already past when the call first waits.
inline constexpr int64_t kImmediateTimeoutNs = 1;

// A timeout longer than anyone waits: what a timeval beyond int64 nanoseconds saturates to.
// (The kernel itself turns such values into "wait forever"; gonet keeps them as a timeout, so
// the signal(7) rule for a socket with a timeout still applies.)
inline constexpr int64_t kMaxTimeoutNs = INT64_MAX / 4;

// A timeval as the kernel accepted it, in ns, saturated (never wraps to a short timeout).
inline int64_t TimevalToNs(const timeval& tv) {
  if (tv.tv_sec < 0 || tv.tv_usec < 0) return 0;
  if (tv.tv_sec >= kMaxTimeoutNs / 1000000000) return kMaxTimeoutNs;
  return static_cast<int64_t>(tv.tv_sec) * 1000000000 + static_cast<int64_t>(tv.tv_usec) * 1000;
}

struct SocketState {
  std::atomic<int> refs{0};                  // fds sharing this open file
  std::atomic<bool> app_nonblock{false};     // the app's view of O_NONBLOCK
  std::atomic<bool> forced_nonblock{false};  // gonet set O_NONBLOCK in the kernel (a listener)
  std::atomic<int64_t> rcvtimeo_ns{0};  // the app's SO_RCVTIMEO as the kernel keeps it (0=none)
  std::atomic<int64_t> sndtimeo_ns{0};  // the app's SO_SNDTIMEO
  std::atomic<int> rcvlowat{1};         // SO_RCVLOWAT as the kernel keeps it (>= 1)
  // A plain TCP socket made in this process, with no urgent-data or ULP option set: a short
  // receive means an empty queue (the drained hint, poll_desc.h).
  std::atomic<bool> short_read_drains{false};
  int type = 0;    // SOCK_STREAM, SOCK_DGRAM, SOCK_SEQPACKET, ...
  int family = 0;  // AF_INET, AF_INET6, AF_UNIX, ...
};

enum class FdKind : uint32_t { kUnknown = 0, kNotSocket = 1, kSocket = 2 };

// One cache line per entry: a call reads word, kind and sock, and with a thread per connection
// the entry is cold on every call (the other connections' threads ran since); at 40 bytes a
// quarter of the entries split those fields over two lines. 24 bytes more per fd number.
struct alignas(64) FdEntry {
  std::atomic<uint64_t> word{0};
  std::atomic<FdKind> kind{FdKind::kUnknown};
  std::atomic<SocketState*> sock{nullptr};
  std::atomic<PollDesc*> pd{nullptr};    // this fd number's pollDesc, made on first EAGAIN
  std::atomic<Parker*> closer{nullptr};  // unparked when the last in-flight op leaves
};

inline constexpr int kMaxFds = 1 << 24;

namespace internal {
inline constexpr int kFdChunkShift = 10;
inline constexpr int kFdChunkSize = 1 << kFdChunkShift;
// Top level of the table: 16K chunk pointers in .bss, zero pages until touched.
extern std::atomic<FdEntry*> g_fd_chunks[kMaxFds / kFdChunkSize];
FdEntry* GetSlow(int fd);  // Get when the chunk does not exist yet
}  // namespace internal

// FdEntry::word layout (see the top of this file).
inline constexpr uint64_t kFdRefMask = (uint64_t{1} << 31) - 1;
inline constexpr uint64_t kFdClosingBit = uint64_t{1} << 31;

class FdTable {
 public:
  // The entry for fd, creating its chunk if needed; nullptr for fd < 0, fd >= kMaxFds, or no
  // memory.
  // Inline (the chunk exists): every hooked call on an fd starts here.
  static FdEntry* Get(int fd) {
    if (fd < 0 || fd >= kMaxFds) return nullptr;
    FdEntry* chunk =
        internal::g_fd_chunks[fd >> internal::kFdChunkShift].load(std::memory_order_acquire);
    if (GONET_UNLIKELY(chunk == nullptr)) return internal::GetSlow(fd);
    return &chunk[fd & (internal::kFdChunkSize - 1)];
  }
  // Like Get, but never allocates: nullptr if the chunk does not exist yet.
  static FdEntry* Find(int fd);
  // The state of fd if gonet already knows it as a socket, else nullptr. Never allocates or
  // adopts.
  static SocketState* FindSocket(int fd);

  // Makes fd a known socket sharing `state` (taking a reference on it). Used when gonet sees a
  // socket being created (socket, accept, socketpair, dup). Returns false (fd passed through) for
  // a bad fd or no memory.
  static bool Install(int fd, SocketState* state);
  static bool InstallNew(int fd, int family, int type, bool app_nonblock);

  static SocketState* NewSocketState();
  static void Unref(SocketState* state);

  // After fork: only the forking thread survives; in-flight counts and closing marks of other
  // threads' operations are void in the child.
  static void ResetAfterFork();
};

// The close protocol, after Go's FD.Close (used by close and dup2, fd_ops.cc): mark closing (new
// operations fail with EBADF), evict parked waiters, wait until in-flight operations have left,
// disarm, and only then give the number back to the kernel, so a number reused by another
// thread's socket() is never touched by a stale operation.
//   BeginClose marks e closing, evicts its waiters and waits for in-flight operations to leave;
//     false if another close is already in progress (the kernel gives the loser EBADF).
//   RetireSlot empties the slot (disarms and frees the pollDesc, drops the socket state); the
//     number still belongs to the closer until the real close.
//   EndClose, after the real close, reopens the slot for a future incarnation. dup2 over a
//     socket notes the replacement (Install, a new generation) before EndClose, while no
//     operation can enter: a reader that found the slot open and unknown would adopt the new
//     file and arm a pollDesc that Install then frees under it.
bool BeginClose(int fd, FdEntry* e);
void RetireSlot(FdEntry* e);
void EndClose(FdEntry* e);

// Runs after an fd joins the netpoller: runtime/ sets it to start the netpoller driver (threads
// mode) or the fiber workers (fibers mode), which fd/ cannot name without including upward.
using ArmHook = void (*)();
void SetArmHook(ArmHook hook);

// Go's fdMutex incref/decref for one operation. Acquire classifies unknown fds (adoption), and
// fails with kPassthrough for anything that is not a socket gonet manages, or EBADF if the fd is
// being closed.
class FdRef {
 public:
  FdRef() = default;
  ~FdRef() { Release(); }
  FdRef(const FdRef&) = delete;
  FdRef& operator=(const FdRef&) = delete;

  // 0, kPassthrough or EBADF.
  int Acquire(int fd);
  void Release();

  int fd() const { return fd_; }
  FdEntry* entry() const { return entry_; }
  // The fd is being closed (or dup2'd over): the operation must end with EBADF.
  bool closing() const {
    return (entry_->word.load(std::memory_order_seq_cst) & kFdClosingBit) != 0;
  }
  SocketState* sock() const { return sock_; }
  // The fd's pollDesc, allocated and armed with the netpoller on first need. nullptr if the fd
  // cannot be polled or memory is exhausted: the caller falls back to a plain blocking call.
  PollDesc* ArmedPollDesc();

 private:
  int fd_ = -1;
  FdEntry* entry_ = nullptr;
  SocketState* sock_ = nullptr;
  uint32_t generation_ = 0;
};

}  // namespace gonet::core
