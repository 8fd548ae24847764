// loopback.h: the sockets a conformance scenario plays with, all on 127.0.0.1 or unix
// socketpairs. Set-up failures end the scenario through conf::Fail; calls under test are made by
// the scenario itself, wrapped in conf::Show.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>

#include "transcript.h"

namespace conf {

struct Pair {
  int client;  // the connecting side
  int server;  // the accepted side
};

inline sockaddr_in Loopback(uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return sa;
}

inline uint16_t LocalPort(int fd) {
  sockaddr_in sa{};
  socklen_t len = sizeof sa;
  Must(getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &len), "getsockname");
  return ntohs(sa.sin_port);
}

// TcpListener binds 127.0.0.1 on a kernel-chosen port, so parallel tests never collide.
inline int TcpListener(int backlog, uint16_t* port, int type_flags = 0) {
  int fd = Must(socket(AF_INET, SOCK_STREAM | type_flags, 0), "socket(listener)");
  sockaddr_in sa = Loopback(0);
  Must(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "bind(listener)");
  Must(listen(fd, backlog), "listen");
  *port = LocalPort(fd);
  return fd;
}

inline int TcpConnect(uint16_t port) {
  int fd = Must(socket(AF_INET, SOCK_STREAM, 0), "socket(client)");
  sockaddr_in sa = Loopback(port);
  Must(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect");
  return fd;
}

// TcpPair: a connected blocking TCP pair over loopback; the listener is closed again.
inline Pair TcpPair() {
  uint16_t port;
  int listener = TcpListener(1, &port);
  Pair p;
  p.client = TcpConnect(port);
  p.server = Must(accept(listener, nullptr, nullptr), "accept");
  close(listener);
  return p;
}

inline int UdpSocket() {
  int fd = Must(socket(AF_INET, SOCK_DGRAM, 0), "socket(udp)");
  sockaddr_in sa = Loopback(0);
  Must(bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "bind(udp)");
  return fd;
}

inline void CloseBoth(Pair p) {
  close(p.client);
  close(p.server);
}

// WaitQueued waits until at least `bytes` are queued for reading on fd (observable state, not
// time), so a following recv sees all of them at once.
inline void WaitQueued(int fd, int bytes) {
  for (int spins = 0;; ++spins) {
    int queued = 0;
    Must(ioctl(fd, FIONREAD, &queued), "ioctl(FIONREAD)");
    if (queued >= bytes) return;
    if (spins > 20000) Fail("WaitQueued: bytes never arrived");
    SleepMs(1);
  }
}

// WaitAcked waits until the peer acknowledged every byte sent on fd (SIOCOUTQ is 0): on loopback
// they are then queued at the peer. For bytes FIONREAD does not count (it stops at an urgent mark).
inline void WaitAcked(int fd) {
  for (int spins = 0;; ++spins) {
    int unacked = 0;
    Must(ioctl(fd, SIOCOUTQ, &unacked), "ioctl(SIOCOUTQ)");
    if (unacked == 0) return;
    if (spins > 20000) Fail("WaitAcked: bytes never acknowledged");
    SleepMs(1);
  }
}

// WaitTcpState waits until the kernel reports the given TCP state (e.g. TCP_CLOSE after a RST
// arrived), so the next call deterministically sees it.
inline void WaitTcpState(int fd, int state) {
  for (int spins = 0;; ++spins) {
    tcp_info info{};
    socklen_t len = sizeof info;
    Must(getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &len), "getsockopt(TCP_INFO)");
    if (info.tcpi_state == state) return;
    if (spins > 20000) Fail("WaitTcpState: state never reached");
    SleepMs(1);
  }
}

inline void SetTimeout(int fd, int optname, int timeout_ms) {
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  Must(setsockopt(fd, SOL_SOCKET, optname, &tv, sizeof tv), "setsockopt(timeout)");
}

// SendAll writes every byte with plain blocking sends (helper threads: not under test).
inline void SendAll(int fd, const void* data, size_t len) {
  const char* p = static_cast<const char*>(data);
  while (len > 0) {
    ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Fail("SendAll");
    p += n;
    len -= n;
  }
}

inline void SendStr(int fd, const char* s) { SendAll(fd, s, strlen(s)); }

// RecvExactly reads exactly len bytes or fails the set-up (helper threads: not under test).
inline void RecvExactly(int fd, void* data, size_t len) {
  char* p = static_cast<char*>(data);
  while (len > 0) {
    ssize_t n = recv(fd, p, len, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) Fail("RecvExactly");
    p += n;
    len -= n;
  }
}

inline bool HasNonblock(int fd) { return (fcntl(fd, F_GETFL) & O_NONBLOCK) != 0; }

}  // namespace conf
