#include "core/fd/blocking_call.h"

#include <poll.h>

#include "core/base/mode.h"
#include "core/base/sys.h"
#include "core/poll/netpoller.h"
#include "core/stats/stats.h"

namespace gonet::core {

CallTimeout TimeoutFor(const SocketState& s, Mode mode) {
  int64_t app = mode == Mode::kRead ? s.rcvtimeo_ns.load(std::memory_order_relaxed)
                                    : s.sndtimeo_ns.load(std::memory_order_relaxed);
  if (app != 0) return {app, true};
  const Config& c = config();
  return {mode == Mode::kRead ? c.read_timeout_ns : c.write_timeout_ns, false};
}

CallTimeout ConnectTimeoutFor(const SocketState& s) {
  // The kernel bounds a blocking connect by SO_SNDTIMEO.
  int64_t app = s.sndtimeo_ns.load(std::memory_order_relaxed);
  if (app != 0) return {app, true};
  return {config().connect_timeout_ns, false};
}

BlockingCall::BlockingCall(FdRef& ref, Mode mode, int64_t timeout_ns, bool app_timeout)
    : ref_(ref),
      mode_(mode),
      kind_(app_timeout ? WaitKind::kAlwaysEintr : WaitKind::kRestartable),
      deadline_ns_(DeadlineAfter(timeout_ns)) {
  // Uncontended: hold the lock across the first attempt, which saves the attempt a queued
  // waiter must repeat (one recv that says EAGAIN per park).
  if (PollDesc* pd = ref_.ArmedPollDesc(); pd != nullptr && pd->Lock(mode_).TryLock()) {
    pd_ = pd;
    locked_ = true;
  }
}

BlockingCall::~BlockingCall() {
  if (noted_ != nullptr) noted_->ClearWait();
  if (locked_) {
    if (deadline_set_ && deadline_ns_ != 0) pd_->SetDeadline(mode_, 0);
    pd_->Lock(mode_).Unlock();
  }
}

void BlockingCall::NoteWait(int timeout_errno) {
  WaitWhat what;
  if (mode_ == Mode::kRead) {
    what = ref_.sock()->forced_nonblock.load(std::memory_order_relaxed) ? kWaitAccept : kWaitRecv;
  } else {
    what = timeout_errno != EAGAIN ? kWaitConnect : kWaitSend;
  }
  noted_ = CurrentParker();
  noted_->NoteWait(what, ref_.fd());
}

int BlockingCall::WaitReady(int timeout_errno) {
  Count(Stats().eagain_retries);
  return Wait(timeout_errno);
}

int BlockingCall::WaitDrained() {
  Count(Stats().drained_parks);
  return Wait(EAGAIN);
}

int BlockingCall::Wait(int timeout_errno) {
  if (noted_ == nullptr) NoteWait(timeout_errno);
  if (pd_ == nullptr) {
    pd_ = ref_.ArmedPollDesc();
    if (pd_ == nullptr) return FallbackWait(timeout_errno);
  }
  if (!locked_) {
    WaitResult w = pd_->Lock(mode_).Lock(pd_->closing_flag(), deadline_ns_, kind_);
    if (w == WaitResult::kOk) {
      locked_ = true;
      PublishDeadline();
      // Others may have consumed the readiness we were waiting for while we queued: try again.
      return 0;
    }
    if (w == WaitResult::kClosing) return EBADF;
    if (w == WaitResult::kTimeout) return timeout_errno;
    return EINTR;
  }
  if (!deadline_set_) PublishDeadline();  // locked when the call started: the first wait
  switch (pd_->Wait(mode_, kind_)) {
    case WaitResult::kOk:
      return 0;
    case WaitResult::kClosing:
      return EBADF;
    case WaitResult::kTimeout:
      return timeout_errno;
    case WaitResult::kInterrupted:
      return EINTR;
  }
  return EINTR;
}

// Every holder of a direction lock leaves the direction's deadline at 0 when it unlocks, so a
// call without a deadline has nothing to publish (two seq_cst stores fewer per blocked call).
void BlockingCall::PublishDeadline() {
  deadline_set_ = true;
  if (deadline_ns_ != 0) pd_->SetDeadline(mode_, deadline_ns_);
}

// When the fd cannot join the netpoller (no memory for a pollDesc, epoll refused it), wait in the
// kernel with ppoll: correct, just not observable, and not woken by close.
int BlockingCall::FallbackWait(int timeout_errno) {
  pollfd p{ref_.fd(), static_cast<short>(mode_ == Mode::kRead ? POLLIN : POLLOUT), 0};
  timespec ts{};
  timespec* tsp = nullptr;
  if (deadline_ns_ != 0) {
    int64_t left = deadline_ns_ - Nanotime();
    if (left <= 0) return timeout_errno;
    ts.tv_sec = static_cast<time_t>(left / 1000000000);
    ts.tv_nsec = static_cast<long>(left % 1000000000);
    tsp = &ts;
  }
  long r = sys::Call(SYS_ppoll, &p, 1, tsp, nullptr, 8);
  if (r == 0) return timeout_errno;
  if (r < 0) return static_cast<int>(-r);
  return 0;
}

}  // namespace gonet::core
