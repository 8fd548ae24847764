// BlockingCall: one blocking-mode socket call in progress, after Go's FD.Read loop
// (internal/poll/fd_unix.go): the caller tries the operation without blocking; on EAGAIN it calls
// WaitReady, which parks on the fd's pollDesc and says whether to try again.
//
// The deadline is fixed when the call starts, as the kernel computes its timeo once per call:
// the app's SO_RCVTIMEO/SO_SNDTIMEO, else gonet's deadline policy (--read-timeout, ...). The
// direction lock (DirLock: other threads waiting on the same fd and direction queue behind it)
// is taken when the call starts if nobody holds it (one CAS, as Go's FD.Read takes its fdMutex
// before the first attempt): then no other blocking caller can consume the readiness between
// our failed attempt and our wait, and the first WaitReady parks at once. Otherwise the first
// WaitReady queues for it and, once granted, asks for one more attempt, since the holder may
// have consumed the edge we would wait for. The first WaitReady publishes the deadline on the
// pollDesc; the destructor releases the lock. Destructors, not explicit calls, release everything,
// because pthread_cancel unwinds out of a parked call (thread_parker.h).
//
// gonet dump (dump.h): the first WaitReady of a call notes the fd and operation on the waiter's
// Parker (parker.h WaitNote) and the destructor clears it, so a dump can say what every parked
// thread or fiber waits on and since when. The operation is the direction, told apart from accept
// (a read on a listener gonet switched to O_NONBLOCK) and connect (a write whose timeout errno is
// connect's).
#pragma once

#include <cstdint>

#include "core/fd/fd_table.h"
#include "core/poll/parker.h"
#include "core/poll/poll_desc.h"

namespace gonet::core {

class BlockingCall {
 public:
  // timeout_ns: 0 = none. app_timeout: the timeout is the app's own socket option (signal(7):
  // such a call fails with EINTR whatever SA_RESTART says).
  BlockingCall(FdRef& ref, Mode mode, int64_t timeout_ns, bool app_timeout);
  ~BlockingCall();
  BlockingCall(const BlockingCall&) = delete;
  BlockingCall& operator=(const BlockingCall&) = delete;

  // 0: ready, try again. Otherwise the errno to fail with: EBADF (closed while waiting), EAGAIN
  // (deadline), EINTR (signal). timeout_errno replaces EAGAIN (EINPROGRESS for connect).
  int WaitReady(int timeout_errno = EAGAIN);
  // WaitReady for a receive that parks before its first attempt (the drained hint, below).
  int WaitDrained();

  int64_t deadline_ns() const { return deadline_ns_; }

  // The drained hint of a receive (poll_desc.h). It needs the read lock from the start of the
  // call, so that no other receive on this fd runs between the attempt and its record.
  // True: the last short receive emptied the queue and nothing arrived since; park first.
  bool ReadDrained() const { return locked_ && pd_->ReadDrained(); }
  // Before each attempt; after a short one, NoteShortRead records the queue as drained.
  void MarkReadEdges() {
    edges_marked_ = locked_;
    if (locked_) edges_ = pd_->read_edges();
  }
  void NoteShortRead() {
    if (edges_marked_) pd_->NoteReadDrained(edges_);
  }

  // Once a call has moved some bytes, the kernel returns that partial count when a signal
  // handler runs, SA_RESTART or not (there is nothing left to restart): later waits of this call
  // report every signal.
  void InterruptibleFromNowOn() { kind_ = WaitKind::kAlwaysEintr; }

 private:
  int Wait(int timeout_errno);
  int FallbackWait(int timeout_errno);
  void PublishDeadline();
  void NoteWait(int timeout_errno);

  FdRef& ref_;
  Mode mode_;
  WaitKind kind_;
  int64_t deadline_ns_;
  PollDesc* pd_ = nullptr;
  Parker* noted_ = nullptr;  // whose wait note this call set (cleared by the destructor)
  bool locked_ = false;
  bool deadline_set_ = false;  // published on the pollDesc if nonzero (only while locked_)
  bool edges_marked_ = false;  // edges_ was read under the lock, before the last attempt
  uint32_t edges_ = 0;
};

// The app's timeout for a direction, or gonet's policy if the app set none.
struct CallTimeout {
  int64_t ns;
  bool app;
};
CallTimeout TimeoutFor(const SocketState& s, Mode mode);
CallTimeout ConnectTimeoutFor(const SocketState& s);

}  // namespace gonet::core
