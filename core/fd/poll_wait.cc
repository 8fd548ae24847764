// poll of one socket gonet manages, from a fiber: wait on the socket's pollDesc, not on a thread.
//
// Thread-per-connection servers often poll their one socket before reading it (privoxy does, to
// apply its own timeout). syscall_offload.h would run each such poll on a helper OS thread, so
// 10,000 idle connections would cost 10,000 threads again. For the common shape (one fd, a
// socket gonet has armed with the netpoller, events of one direction) the fiber parks on the
// pollDesc exactly as a read or write on that socket would, after Go's FD.Read loop:
//   probe with a zero-timeout poll -> anything (or an error): return it as the kernel said it;
//   otherwise WaitReady (the direction lock, then the edge, the deadline or a close) -> probe
//   again. A deadline returns one last probe (0 if still nothing), so the answer is always the
//   kernel's own poll of the socket at that moment.
// Everything else is left to the caller (kPassthrough): several fds, both directions, POLLPRI
// (urgent data raises no edge gonet waits for), fds gonet does not manage.
//
// Semantics kept: revents are the kernel's; the timeout is the program's (a pollDesc deadline);
// a close of the fd while we wait ends the wait, and the probe then reports POLLNVAL as poll of a
// closed fd does (natively a poll keeps waiting on the file it already holds until its timeout:
// returning early is the more useful of the two and a program cannot rely on either). A reader of
// the same socket in another fiber takes turns with us on the direction lock, so the one that
// waits first is woken first; natively both would wake and the poller might then find the data
// already read, which a program already has to handle.
#include <poll.h>

#include "core/base/sys.h"
#include "core/fd/blocking_call.h"
#include "core/fd/fd_table.h"
#include "core/fd/ops.h"
#include "core/fibers/fiber_scheduler.h"

namespace gonet::core {
namespace {

constexpr short kReadEvents = POLLIN | POLLRDNORM | POLLRDHUP;
constexpr short kWriteEvents = POLLOUT | POLLWRNORM;

int ProbeOne(pollfd* p) {
  timespec zero{};
  return static_cast<int>(sys::Call(SYS_ppoll, p, 1, &zero, nullptr, 8));
}

}  // namespace

IoResult PollOneSocket(pollfd* p, int64_t timeout_ns) {
  if (FiberScheduler::Current() == nullptr) return IoResult::Passthrough();
  short ev = p->events;
  bool reads = (ev & kReadEvents) != 0, writes = (ev & kWriteEvents) != 0;
  if (reads == writes || (ev & ~(kReadEvents | kWriteEvents)) != 0) return IoResult::Passthrough();
  FdRef ref;
  if (ref.Acquire(p->fd) != 0 || ref.ArmedPollDesc() == nullptr) return IoResult::Passthrough();
  // poll is never restarted after a signal handler (signal(7)): the app-timeout kind.
  BlockingCall call(ref, reads ? Mode::kRead : Mode::kWrite, timeout_ns, /*app_timeout=*/true);
  for (;;) {
    int r = ProbeOne(p);
    if (r != 0) return r < 0 ? IoResult::Err(-r) : IoResult::Ok(r);
    int e = call.WaitReady();
    if (e == EINTR) return IoResult::Err(EINTR);
    if (e != 0) {  // the deadline, or the fd was closed: the kernel's answer now
      r = ProbeOne(p);
      return r < 0 ? IoResult::Err(-r) : IoResult::Ok(r);
    }
  }
}

}  // namespace gonet::core
