// A blocking receive that follows a short one (fewer bytes than the buffer: the queue was
// emptied) still sees everything that can happen to the socket next: bytes already queued, bytes
// arriving later, bytes behind an urgent mark (inline or not), EOF, a timeout, shutdown from
// another thread, bytes a poll saw first; through recv, read, readv and recvmsg. gonet parks such
// a receive before asking the kernel (poll_desc.h, the drained hint); every section here is an
// event that hint must not lose. The whole sequence runs on the main thread and on another one
// (a fiber in fibers mode). Helper threads print nothing: their lines would interleave.
#include <poll.h>
#include <sys/uio.h>

#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

constexpr int kTimeoutMs = 200;

// The short receive every section starts with: 5 bytes queued, 64 asked for.
void ShortReceive(Pair p) {
  char buf[64];
  SendStr(p.client, "hello");
  WaitQueued(p.server, 5);
  ssize_t n = Show(recv(p.server, buf, sizeof buf, 0), "short recv into 64");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
}

void ShowGot(ssize_t n, const char* buf) {
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
}

// Makes the blocking call `call` on this thread while another thread does `act` once the call is
// (likely) blocked (parked.h); returns what the call returned.
template <typename Act, typename Call>
long WhileBlocked(Act act, Call call) {
  Announcer a;
  std::thread other([&] {
    a.WaitParked(20);
    act();
  });
  a.Announce();
  long r = call();
  other.join();
  return r;
}

void QueuedBeforeTheCall() {
  Say("== bytes queued before the next receive starts");
  Pair p = TcpPair();
  char buf[64];
  ShortReceive(p);
  SendStr(p.client, "next");
  WaitQueued(p.server, 4);
  ShowGot(Show(recv(p.server, buf, sizeof buf, 0), "recv into 64"), buf);
  CloseBoth(p);
}

void ArrivingWhileBlocked() {
  Say("== bytes arriving while the next receive waits, four times");
  Pair p = TcpPair();
  char buf[64];
  ShortReceive(p);
  for (int i = 0; i < 4; ++i) {
    long n = WhileBlocked(
        [&] { SendStr(p.client, "late"); },
        [&] { return Show(recv(p.server, buf, sizeof buf, 0), "blocking recv into 64"); });
    ShowGot(n, buf);
  }
  CloseBoth(p);
}

// A receive stops at the urgent mark: the bytes behind it stay queued, and no new data arrives
// to announce them.
void UrgentMark(bool inline_oob) {
  Say("== bytes behind an urgent mark (%s)", inline_oob ? "SO_OOBINLINE" : "out of band");
  Pair p = TcpPair();
  if (inline_oob) {
    int one = 1;
    Show(setsockopt(p.server, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one),
         "setsockopt(SO_OOBINLINE)");
  }
  char buf[64];
  ShortReceive(p);
  SendStr(p.client, "abc");
  Show(send(p.client, "X", 1, MSG_OOB), "send 'X' with MSG_OOB");
  SendStr(p.client, "def");
  WaitAcked(p.client);
  ShowGot(Show(recv(p.server, buf, sizeof buf, 0), "recv into 64"), buf);
  ShowGot(Show(recv(p.server, buf, sizeof buf, 0), "recv into 64"), buf);
  if (!inline_oob) {
    ShowGot(Show(recv(p.server, buf, sizeof buf, MSG_OOB), "recv MSG_OOB"), buf);
  }

  Say("-- then a mark that arrives while the receive waits");
  ShortReceive(p);
  long n = WhileBlocked(
      [&] {
        SendStr(p.client, "ghi");
        Must(send(p.client, "Y", 1, MSG_OOB), "send 'Y' with MSG_OOB");
        SendStr(p.client, "jkl");
      },
      [&] { return Show(recv(p.server, buf, sizeof buf, 0), "blocking recv into 64"); });
  ShowGot(n, buf);
  WaitAcked(p.client);
  ShowGot(Show(recv(p.server, buf, sizeof buf, 0), "recv into 64"), buf);
  CloseBoth(p);
}

void EofWhileBlocked() {
  Say("== EOF while the next receive waits");
  Pair p = TcpPair();
  char buf[64];
  ShortReceive(p);
  WhileBlocked([&] { Must(shutdown(p.client, SHUT_WR), "peer shutdown(SHUT_WR)"); },
               [&] { return Show(recv(p.server, buf, sizeof buf, 0), "blocking recv into 64"); });
  Show(recv(p.server, buf, sizeof buf, 0), "recv after EOF");
  CloseBoth(p);
}

// The last bytes and the end of the stream (or a reset) arrive together: the receive that takes
// the bytes is short, and the next one must return at once, with no further event to come.
void LastBytesWithTheEnd(bool reset) {
  Say("== the last bytes and %s arrive together", reset ? "a reset" : "EOF");
  for (int i = 0; i < 3; ++i) {
    Pair p = TcpPair();
    char buf[64];
    ShortReceive(p);
    long n = WhileBlocked(
        [&] {
          SendStr(p.client, "bye");
          if (reset) {
            linger l{1, 0};
            Must(setsockopt(p.client, SOL_SOCKET, SO_LINGER, &l, sizeof l), "SO_LINGER");
            Must(close(p.client), "close");
          } else {
            Must(shutdown(p.client, SHUT_WR), "shutdown(SHUT_WR)");
          }
        },
        [&] { return Show(recv(p.server, buf, sizeof buf, 0), "blocking recv into 64"); });
    ShowGot(n, buf);
    Show(recv(p.server, buf, sizeof buf, 0), "recv into 64");
    close(p.server);
    if (!reset) close(p.client);
  }
}

void TimeoutThenData() {
  Say("== SO_RCVTIMEO after a short receive");
  Pair p = TcpPair();
  char buf[64];
  SetTimeout(p.server, SO_RCVTIMEO, kTimeoutMs);
  ShortReceive(p);
  Stopwatch sw;
  Show(recv(p.server, buf, sizeof buf, 0), "recv into 64");
  Say("%s", sw.Waited(kTimeoutMs));
  SendStr(p.client, "after");
  WaitQueued(p.server, 5);
  Stopwatch sw2;
  ShowGot(Show(recv(p.server, buf, sizeof buf, 0), "recv into 64"), buf);
  Say("%s", sw2.Before(kTimeoutMs));
  CloseBoth(p);
}

void ShutdownReadWhileBlocked() {
  Say("== shutdown(SHUT_RD) from another thread while the next receive waits");
  Pair p = TcpPair();
  char buf[64];
  ShortReceive(p);
  WhileBlocked([&] { Must(shutdown(p.server, SHUT_RD), "shutdown(SHUT_RD)"); },
               [&] { return Show(recv(p.server, buf, sizeof buf, 0), "blocking recv into 64"); });
  CloseBoth(p);
}

void PollSeesItFirst() {
  Say("== a poll sees the bytes first, then the receive takes them");
  Pair p = TcpPair();
  char buf[64];
  ShortReceive(p);
  pollfd pf{p.server, POLLIN, 0};
  WhileBlocked([&] { SendStr(p.client, "polled"); },
               [&] { return Show(poll(&pf, 1, 10000), "poll(POLLIN)"); });
  Say("revents POLLIN: %s", YesNo(pf.revents & POLLIN));
  ShowGot(Show(recv(p.server, buf, sizeof buf, 0), "recv into 64"), buf);
  CloseBoth(p);
}

void VectorCalls() {
  Say("== readv and recvmsg after short ones");
  Pair p = TcpPair();
  char a[32], b[32];
  iovec iov[2] = {{a, sizeof a}, {b, sizeof b}};
  SendStr(p.client, "vec1");
  WaitQueued(p.server, 4);
  ShowGot(Show(readv(p.server, iov, 2), "readv 2 x 32"), a);
  ShowGot(WhileBlocked([&] { SendStr(p.client, "vec2"); },
                       [&] { return Show(readv(p.server, iov, 2), "blocking readv 2 x 32"); }),
          a);
  msghdr m{};
  m.msg_iov = iov;
  m.msg_iovlen = 2;
  ShowGot(WhileBlocked([&] { SendStr(p.client, "msg3"); },
                       [&] { return Show(recvmsg(p.server, &m, 0), "blocking recvmsg 2 x 32"); }),
          a);
  Say("-- read after a short recvmsg");
  ShowGot(WhileBlocked([&] { SendStr(p.client, "read4"); },
                       [&] { return Show(read(p.server, a, sizeof a), "blocking read 32"); }),
          a);
  CloseBoth(p);
}

void Sequence() {
  QueuedBeforeTheCall();
  ArrivingWhileBlocked();
  UrgentMark(false);
  UrgentMark(true);
  EofWhileBlocked();
  LastBytesWithTheEnd(false);
  LastBytesWithTheEnd(true);
  TimeoutThenData();
  ShutdownReadWhileBlocked();
  PollSeesItFirst();
  VectorCalls();
}

}  // namespace

int main() {
  Say("==== on the main thread");
  Sequence();
  Say("==== on another thread");
  std::thread t(Sequence);
  t.join();
  return 0;
}
