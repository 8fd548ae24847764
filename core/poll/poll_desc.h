// core/poll/: pollDesc (this file), the direction lock, the Parker contract, the netpoller contract
// (netpoller.h) and its epoll backend. May include: stats/, base/ (core/README.md: Layers,
// LOCKING).
//
// PollDesc: the readiness state of one armed fd, after Go's runtime/netpoll.go.
//
// A pollDesc holds two binary semaphores, rg_ and wg_, to park the reader and the writer. Each is
// one of:
//   kPdNil    no readiness and nobody waiting. A waiter moves it to kPdWait (netpollblock);
//             IO readiness moves it to kPdReady; a timeout or close leaves it kPdNil.
//   kPdReady  IO readiness was delivered and not consumed. A waiter consumes it (-> kPdNil) and
//             retries its operation without parking; further readiness leaves it kPdReady.
//   kPdWait   a waiter is preparing to park and has not committed yet. Readiness moves it to
//             kPdReady, a timeout or close to kPdNil; the waiter's commit CAS then fails and it
//             does not park (no lost wake-up).
//   Parker*   the waiter committed (kPdWait -> Parker*) and is parked or about to be. Whoever
//             swaps it out (readiness: -> kPdReady; timeout/close: -> kPdNil) owns the duty to
//             Unpark it, exactly once. A waiter that leaves on its own (its park timed out or a
//             signal interrupted it) must first CAS itself out; if the CAS fails, a notifier got
//             there first and the waiter takes that notifier's verdict instead.
// Only one waiter per direction: DirLock (dir_lock.h) queues the others in front of the
// semaphore. That is where gonet departs from Go, whose fdMutex serialises goroutines instead.
//
// Deadlines (rd_/wd_): absolute CLOCK_MONOTONIC ns, 0 = none. An operation sets its direction's
// deadline when it takes the direction lock (SO_RCVTIMEO/SO_SNDTIMEO are per call). A waiter
// sleeps in its parker with the deadline as the park timeout (nanosecond precision, no epoll
// rounding, no timer object to cancel). When it wakes by timeout it re-reads the deadline, so a
// deadline that was extended meanwhile (a stale timer) does nothing; SetDeadline unparks a
// parked waiter so that a shortened or past deadline takes effect at once.
//
// Close (Evict): closing_ is set, then both semaphores are forced to kPdNil with their waiters
// unparked, and DirLock waiters are woken; all of them see closing_ in CheckErr and return EBADF.
// Store-then-load pairs (closing_/deadline store, then rg_/wg_ load in the notifier; rg_ store,
// then closing_/deadline load in the waiter) are seq_cst on both sides: that is Go's "full memory
// barrier between store to closing and read of rg/wg".
//
// The drained hint (read direction only; io_ops.cc ReceiveLoop decides where it applies): a
// receive on a plain TCP socket that returns fewer bytes than it asked for has emptied the
// receive queue, and every byte that arrives later makes the socket readable again, which the
// edge-triggered epoll reports. So the next receive can park at once instead of first asking the
// kernel for an EAGAIN: Go and the hand-written epoll loop make that extra recv per request.
// read_edges_ counts the readiness deliveries for reading; the reader takes it before its
// attempt and, after a short receive, records it (NoteReadDrained). While the count is unchanged
// no byte that arrived after the queue was seen empty has been delivered, and any such byte's
// edge is still on its way, so parking cannot miss it: ReadDrained() is true. A delivery moves the
// count (before the semaphore, so whoever consumes the token also sees the count moved) and the
// hint lapses until the next short receive.
// Two states let a receive return with nothing new arriving, and end the hint for good
// (EndDrainedHint, before the delivery's count moves): urgent data (EPOLLPRI: a receive stops at
// the urgent mark with bytes behind it) and the end of the stream or an error (EPOLLRDHUP,
// EPOLLHUP, EPOLLERR: the last bytes and the FIN or reset often come in one delivery, and the
// receive after the short one that took the bytes returns 0 or the error at once).
// The recorded count is written and read only by the holder of the read DirLock.
//
// Lifetime: pollDescs are type-stable. They live in an arena, are recycled through a free list,
// and are never freed, because the netpoller may deliver an event naming a pollDesc after its fd
// was closed. Each carries fdseq_, bumped when it is freed; epoll data holds (index, fdseq) and
// the netpoller drops an event whose fdseq no longer matches (Go's fdseq tag).
#pragma once

#include <atomic>
#include <cstdint>

#include "core/poll/dir_lock.h"
#include "core/poll/parker.h"

namespace gonet::core {

enum class Mode { kRead = 'r', kWrite = 'w' };

inline constexpr uintptr_t kPdNil = 0;
inline constexpr uintptr_t kPdReady = 1;
inline constexpr uintptr_t kPdWait = 2;

class PollDesc {
 public:
  // From the arena's free list (or a new one). fd is informational (dump, stats).
  static PollDesc* Alloc(int fd);
  // Back to the free list once the fd is really closed and disarmed; bumps fdseq_.
  void Free();
  static PollDesc* FromIndex(uint32_t index);
  // After fork: the child owns no parked waiters; every pollDesc in use must be re-armed with
  // the child's own epoll instance.
  static void ResetAllAfterFork();

  // Go's netpollcheckerr: closing wins over timeout.
  WaitResult CheckErr(Mode mode) const;

  // Go's poll_runtime_pollWait: parks the caller until readiness, deadline, close or signal.
  // Only the holder of the direction's lock may call it.
  WaitResult Wait(Mode mode, WaitKind kind);

  // Go's netpollready for one direction: IO readiness from the netpoller.
  void Ready(Mode mode);

  // The drained hint (top of this file). EndDrainedHint comes from the netpoller; the other
  // three only from the holder of the read DirLock.
  uint32_t read_edges() const { return read_edges_.load(std::memory_order_acquire); }
  void NoteReadDrained(uint32_t edges_before_attempt) {
    drained_edges_ = edges_before_attempt;
    drained_ = true;
  }
  bool ReadDrained() const {
    return drained_ && drained_edges_ == read_edges() &&
           !hint_ended_.load(std::memory_order_acquire);
  }
  void EndDrainedHint() { hint_ended_.store(true, std::memory_order_release); }

  void SetDeadline(Mode mode, int64_t deadline_ns);
  int64_t deadline(Mode mode) const { return Deadline(mode).load(std::memory_order_seq_cst); }

  // Go's pollDesc.evict: marks closing and wakes everyone waiting in either direction.
  void Evict();
  bool closing() const { return closing_.load(std::memory_order_seq_cst); }
  const std::atomic<bool>& closing_flag() const { return closing_; }

  DirLock& Lock(Mode mode) { return mode == Mode::kRead ? rlock_ : wlock_; }

  // A poll or select over several fds (core/fd/poll_group.cc) waits on all of them at once,
  // beside the semaphores: it puts its parker in watcher_ (one at a time; a second one is told
  // no, and watches a private copy of the fd instead), and every readiness of either direction and
  // every Evict unparks it. It re-asks the kernel after each wake, so a late or extra Unpark is
  // only a spurious wake-up (parker.h), and parkers are type-stable, so a notifier racing with
  // RemoveWatcher is safe.
  bool AddWatcher(Parker* p) {
    Parker* none = nullptr;
    return watcher_.compare_exchange_strong(none, p, std::memory_order_seq_cst);
  }
  void RemoveWatcher(Parker* p) { watcher_.compare_exchange_strong(p, nullptr); }

  // Registration with the netpoller (netpoller.h). armed_epoch_ != the netpoller's epoch means
  // "not registered with the current epoll instance" (a new pollDesc, or the parent's after fork).
  std::atomic<uint32_t>& armed_epoch() { return armed_epoch_; }
  uint64_t EpollTag() const {
    return (uint64_t{index()} << 32) | fdseq_.load(std::memory_order_relaxed);
  }
  bool MatchesTag(uint64_t tag) const {
    return fdseq_.load(std::memory_order_acquire) == static_cast<uint32_t>(tag);
  }
  int fd() const { return fd_; }
  uint32_t index() const;  // position in the arena, fixed for life

 private:
  enum class BlockResult { kReady, kNotReady, kInterrupted };
  // *parked: the caller really slept (committed its parker), so its wake-up is counted once.
  BlockResult Block(Mode mode, WaitKind kind, bool* parked);
  // Go's netpollunblock: returns the parker to wake, if any.
  Parker* Unblock(Mode mode, bool ioready);
  std::atomic<uintptr_t>& Sema(Mode mode) { return mode == Mode::kRead ? rg_ : wg_; }
  std::atomic<int64_t>& Deadline(Mode mode) { return mode == Mode::kRead ? rd_ : wd_; }
  const std::atomic<int64_t>& Deadline(Mode mode) const { return mode == Mode::kRead ? rd_ : wd_; }

  std::atomic<uintptr_t> rg_{kPdNil};  // reader's semaphore: kPdNil, kPdReady, kPdWait, Parker*
  std::atomic<uintptr_t> wg_{kPdNil};  // writer's semaphore
  std::atomic<int64_t> rd_{0};         // read deadline (abs monotonic ns, 0 = none)
  std::atomic<int64_t> wd_{0};         // write deadline
  std::atomic<bool> closing_{false};   // set by Evict; cleared only by Alloc
  std::atomic<uint32_t> fdseq_{0};     // protects from stale epoll events (bumped by Free)
  std::atomic<uint32_t> armed_epoch_{0};
  std::atomic<uint32_t> read_edges_{0};    // readiness deliveries for reading (the drained hint)
  std::atomic<bool> hint_ended_{false};    // urgent data, EOF or an error seen: no drained hint
  uint32_t drained_edges_ = 0;             // read_edges_ before the last short receive
  bool drained_ = false;                   // a short receive recorded drained_edges_
  std::atomic<Parker*> watcher_{nullptr};  // a poll group waiting on this fd, or nullptr
  DirLock rlock_;  // queues readers in front of rg_ (several threads in accept/recv on one fd)
  DirLock wlock_;  // queues writers in front of wg_
  int fd_ = -1;
};

}  // namespace gonet::core
