// shutdown() of our own socket wakes a thread blocked on it, the kernel's way to stop a blocked
// reader or acceptor without closing the fd: SHUT_RD makes a blocked recv return 0, SHUT_WR
// makes a blocked send fail with EPIPE, and SHUT_RDWR on a listener makes a blocked accept fail
// with EINVAL. Afterwards the calls return the same at once.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

// queued_at: if >= 0, also wait until bytes are queued there (a send under way cannot finish
// before the shutdown, whatever the scheduling).
template <typename Call>
void WakeBy(const char* what, Call blocked_call, int fd, int how, int queued_at = -1) {
  Say("== %s", what);
  Announcer parked;
  long r = 0;
  int err = 0;
  std::thread t([&] {
    parked.Announce();
    r = blocked_call();
    err = errno;
  });
  if (queued_at >= 0) WaitQueued(queued_at, 1);
  parked.WaitParked();
  Show(shutdown(fd, how), "shutdown(%s)",
       how == SHUT_RD   ? "SHUT_RD"
       : how == SHUT_WR ? "SHUT_WR"
                        : "SHUT_RDWR");
  t.join();
  if (r < 0) {
    Say("blocked call -> -1 %s", ErrnoName(err));
  } else {
    Say("blocked call -> %s", r == 0 ? "0" : "a positive count");
  }
  r = blocked_call();
  err = errno;
  if (r < 0) {
    Say("the call again -> -1 %s", ErrnoName(err));
  } else {
    Say("the call again -> %s", r == 0 ? "0" : "a positive count");
  }
}

}  // namespace

int main() {
  char buf[64];
  Pair p = TcpPair();
  WakeBy(
      "SHUT_RD wakes a blocked recv",
      [&] { return static_cast<long>(recv(p.server, buf, sizeof buf, 0)); }, p.server, SHUT_RD);
  Show(send(p.server, "still writable", 14, 0), "send after SHUT_RD");
  CloseBoth(p);

  p = TcpPair();
  int small = 16 * 1024;
  setsockopt(p.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  setsockopt(p.server, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  static char big[4 << 20];
  WakeBy(
      "SHUT_WR wakes a blocked send",
      [&] { return static_cast<long>(send(p.client, big, sizeof big, MSG_NOSIGNAL)); }, p.client,
      SHUT_WR, p.server);
  CloseBoth(p);

  p = TcpPair();
  WakeBy(
      "SHUT_RDWR wakes a blocked recv",
      [&] { return static_cast<long>(recv(p.server, buf, sizeof buf, 0)); }, p.server, SHUT_RDWR);
  Show(recv(p.client, buf, sizeof buf, 0), "peer recv: EOF");
  CloseBoth(p);

  uint16_t port;
  int listener = TcpListener(4, &port);
  WakeBy(
      "SHUT_RDWR on a listener wakes a blocked accept",
      [&] { return static_cast<long>(accept(listener, nullptr, nullptr)); }, listener, SHUT_RDWR);
  int fd = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
  sockaddr_in sa = Loopback(port);
  Show(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect to the shut listener");
  close(fd);
  close(listener);

  listener = TcpListener(4, &port);
  WakeBy(
      "SHUT_RD on a listener wakes a blocked accept",
      [&] { return static_cast<long>(accept(listener, nullptr, nullptr)); }, listener, SHUT_RD);
  close(listener);

  int sv[2];
  Must(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair");
  WakeBy(
      "SHUT_RD wakes a blocked recv on a unix socketpair",
      [&] { return static_cast<long>(recv(sv[0], buf, sizeof buf, 0)); }, sv[0], SHUT_RD);
  close(sv[0]);
  close(sv[1]);

  Must(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), "socketpair");
  WakeBy(
      "SHUT_RD wakes a blocked recv on a unix datagram socket",
      [&] { return static_cast<long>(recv(sv[0], buf, sizeof buf, 0)); }, sv[0], SHUT_RD);
  close(sv[0]);
  close(sv[1]);

  int udp = UdpSocket();
  WakeBy(
      "SHUT_RD wakes a blocked recvfrom on UDP",
      [&] { return static_cast<long>(recvfrom(udp, buf, sizeof buf, 0, nullptr, nullptr)); }, udp,
      SHUT_RD);
  close(udp);
  return 0;
}
