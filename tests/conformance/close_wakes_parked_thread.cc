// close() of an fd another thread is blocked on. This is where gonet deliberately differs from
// the kernel (DESIGN.md, after Go's evict): natively the blocked thread stays in recv/accept on
// the still-open file (until its SO_RCVTIMEO, here), under gonet it wakes at once with EBADF.
// The runner compares the preloaded transcript with close_wakes_parked_thread.gonet.expected.
//
// Either way the close happens after the thread announced the call; if it has not reached the
// call yet, the call sees a closed fd and fails with EBADF natively too. Nothing else is opened
// meanwhile, so the fd number cannot be reused under the blocked thread.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

// Bounds the native run: the kernel never wakes a thread blocked on a closed fd by itself. The
// stopwatch starts before the call, so natively the wake is always "by the bound".
constexpr int kNativeBoundMs = 500;

void ReportWake(const char* what, long r, int err, const Stopwatch& sw) {
  if (r < 0) {
    Say("%s after close -> -1 %s, %s", what, ErrnoName(err),
        sw.ElapsedMs() < kNativeBoundMs - kTickMs ? "woken before the native bound"
                                                  : "woken by the native bound (SO_RCVTIMEO)");
  } else {
    Say("%s after close -> %ld", what, r);
  }
}

void ParkedRecv() {
  Say("== close while another thread is blocked in recv");
  Pair p = TcpPair();
  SetTimeout(p.server, SO_RCVTIMEO, kNativeBoundMs);
  Announcer parked;
  long r = 0;
  int err = 0;
  Stopwatch sw;
  std::thread reader([&] {
    char buf[16];
    parked.Announce();
    r = recv(p.server, buf, sizeof buf, 0);
    err = errno;
  });
  parked.WaitParked();
  Show(close(p.server), "close");
  reader.join();
  ReportWake("parked recv", r, err, sw);
  char buf[16];
  Show(recv(p.server, buf, sizeof buf, 0), "recv on the closed fd");
  Show(send(p.client, "x", 1, MSG_NOSIGNAL), "peer send");
  close(p.client);
}

void ParkedAccept() {
  Say("== close while another thread is blocked in accept");
  uint16_t port;
  int listener = TcpListener(4, &port);
  SetTimeout(listener, SO_RCVTIMEO, kNativeBoundMs);
  Announcer parked;
  long r = 0;
  int err = 0;
  Stopwatch sw;
  std::thread acceptor([&] {
    parked.Announce();
    r = accept(listener, nullptr, nullptr);
    err = errno;
  });
  parked.WaitParked();
  Show(close(listener), "close");
  acceptor.join();
  ReportWake("parked accept", r, err, sw);
  Show(accept(listener, nullptr, nullptr), "accept on the closed fd");
}

void ParkedSend() {
  Say("== close while another thread is blocked in send");
  Pair p = TcpPair();
  int small = 16 * 1024;
  setsockopt(p.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(p.server, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  SetTimeout(p.client, SO_SNDTIMEO, kNativeBoundMs);
  Announcer parked;
  long r = 0;
  int err = 0;
  static char big[4 << 20];
  std::thread writer([&] {
    parked.Announce();
    r = send(p.client, big, sizeof big, MSG_NOSIGNAL);
    err = errno;
  });
  parked.WaitParked();
  Show(close(p.client), "close");
  writer.join();
  // Bytes went out before the close in both worlds, so a partial count is the kernel's answer
  // too; what differs is only when it comes back.
  if (r < 0) {
    Say("parked send after close -> -1 %s", ErrnoName(err));
  } else {
    Say("parked send after close -> %s",
        r > 0 && r < static_cast<long>(sizeof big) ? "a partial count" : "UNEXPECTED count");
  }
  close(p.server);
}

}  // namespace

int main() {
  ParkedRecv();
  ParkedAccept();
  ParkedSend();
  return 0;
}
