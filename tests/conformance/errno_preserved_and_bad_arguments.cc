// errno is only written on failure: a successful call (also one that had to wait first, whose
// first non-blocking attempt saw EAGAIN) leaves errno as the app set it. Bad arguments fail with
// the kernel's errno: EBADF, ENOTSOCK, EFAULT, EINVAL, EOPNOTSUPP, EISCONN, ENOTCONN, ...
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

constexpr int kMarker = 12345;

// Runs a call that must succeed with errno preset to kMarker and prints errno afterwards.
#define KEEPS_ERRNO(what, call)                                \
  do {                                                         \
    errno = kMarker;                                           \
    long r_ = (call);                                          \
    int e_ = errno;                                            \
    Say("%s -> %s, errno %s", what, r_ >= 0 ? "ok" : "FAILED", \
        e_ == kMarker ? "untouched" : ErrnoName(e_));          \
  } while (0)

}  // namespace

int main() {
  Say("== errno survives successful calls");
  uint16_t port;
  int listener;
  KEEPS_ERRNO("socket+bind+listen", listener = TcpListener(4, &port));
  int client = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
  sockaddr_in sa = Loopback(port);
  KEEPS_ERRNO("blocking connect", connect(client, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
  int server = -1;
  KEEPS_ERRNO("accept of a pending connection", server = accept(listener, nullptr, nullptr));
  char buf[64];
  KEEPS_ERRNO("send", send(client, "abc", 3, 0));
  WaitQueued(server, 3);
  KEEPS_ERRNO("recv of queued bytes", recv(server, buf, sizeof buf, 0));
  KEEPS_ERRNO("write", write(client, "abc", 3));
  WaitQueued(server, 3);
  KEEPS_ERRNO("read of queued bytes", read(server, buf, sizeof buf));
  int one = 1;
  KEEPS_ERRNO("setsockopt", setsockopt(server, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one));
  KEEPS_ERRNO("setsockopt SO_RCVTIMEO", (SetTimeout(server, SO_RCVTIMEO, 5000), 0));
  socklen_t len = sizeof one;
  KEEPS_ERRNO("getsockopt", getsockopt(server, SOL_SOCKET, SO_TYPE, &one, &len));
  KEEPS_ERRNO("fcntl F_GETFL", fcntl(server, F_GETFL));
  KEEPS_ERRNO("fcntl F_SETFL", fcntl(server, F_SETFL, fcntl(server, F_GETFL)));
  KEEPS_ERRNO("dup", one = dup(server));
  KEEPS_ERRNO("close", close(one));
  {
    Announcer parked;
    std::thread sender([&] {
      parked.WaitParked(50);
      SendStr(client, "late");
    });
    parked.Announce();
    KEEPS_ERRNO("recv that had to wait", recv(server, buf, sizeof buf, 0));
    sender.join();
  }
  {
    Announcer parked;
    std::thread connector([&] {
      parked.WaitParked(50);
      close(TcpConnect(port));
    });
    parked.Announce();
    int fd = -1;
    KEEPS_ERRNO("accept that had to wait", fd = accept(listener, nullptr, nullptr));
    connector.join();
    close(fd);
  }
  {
    int small = 16 * 1024;
    setsockopt(client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    static char big[2 << 20];
    std::thread reader([&] {
      SleepMs(50);
      RecvExactly(server, big, sizeof big);
    });
    KEEPS_ERRNO("send that had to wait", send(client, big, sizeof big, 0));
    reader.join();
  }
  {
    int fresh = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
    SetTimeout(fresh, SO_SNDTIMEO, 5000);
    KEEPS_ERRNO("connect with SO_SNDTIMEO",
                connect(fresh, reinterpret_cast<sockaddr*>(&sa), sizeof sa));
    int fd = accept(listener, nullptr, nullptr);
    close(fd);
    close(fresh);
  }
  {
    int u1 = UdpSocket(), u2 = UdpSocket();
    sockaddr_in to = Loopback(LocalPort(u2));
    KEEPS_ERRNO("sendto", sendto(u1, "d", 1, 0, reinterpret_cast<sockaddr*>(&to), sizeof to));
    KEEPS_ERRNO("recvfrom", recvfrom(u2, buf, sizeof buf, 0, nullptr, nullptr));
    close(u1);
    close(u2);
  }
  KEEPS_ERRNO("shutdown", shutdown(client, SHUT_WR));
  KEEPS_ERRNO("recv at EOF", recv(server, buf, sizeof buf, 0));

  Say("== bad arguments");
  Show(recv(-1, buf, sizeof buf, 0), "recv on fd -1");
  Show(recv(9999, buf, sizeof buf, 0), "recv on an unopened fd");
  Show(send(9999, buf, 1, 0), "send on an unopened fd");
  Show(read(9999, buf, 1), "read on an unopened fd");
  Show(accept(9999, nullptr, nullptr), "accept on an unopened fd");
  Show(connect(9999, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect on an unopened fd");
  Show(getsockopt(9999, SOL_SOCKET, SO_TYPE, &one, &len), "getsockopt on an unopened fd");
  Show(fcntl(9999, F_GETFL), "fcntl on an unopened fd");
  Show(close(9999), "close of an unopened fd");
  int pipefd[2];
  Must(pipe(pipefd), "pipe");
  Show(write(pipefd[1], "pipe", 4), "write on a pipe");
  Show(recv(pipefd[0], buf, sizeof buf, 0), "recv on a pipe");
  Show(read(pipefd[0], buf, sizeof buf), "read on a pipe");
  Show(send(pipefd[1], "x", 1, 0), "send on a pipe");
  Show(accept(pipefd[0], nullptr, nullptr), "accept on a pipe");
  Show(setsockopt(pipefd[0], SOL_SOCKET, SO_RCVTIMEO, buf, 16), "setsockopt on a pipe");
  close(pipefd[0]);
  close(pipefd[1]);

  Pair p = TcpPair();
  Show(send(p.client, "abc", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  Show(recv(p.server, nullptr, 10, 0), "recv into NULL, len 10, data queued");
  Show(send(p.client, nullptr, 10, 0), "send from NULL, len 10");
  Show(recv(p.server, reinterpret_cast<void*>(16), 10, 0), "recv into a bad pointer");
  Show(recv(p.server, buf, sizeof buf, 0), "recv: the bytes are still there");
  Show(setsockopt(p.server, SOL_SOCKET, SO_REUSEADDR, &one, 2), "setsockopt SO_REUSEADDR optlen 2");
  Show(setsockopt(p.server, SOL_SOCKET, SO_RCVTIMEO, buf, 3), "setsockopt SO_RCVTIMEO optlen 3");
  Show(setsockopt(p.server, SOL_SOCKET, SO_RCVTIMEO, nullptr, sizeof(timeval)),
       "setsockopt SO_RCVTIMEO NULL");
  Show(getsockopt(p.server, SOL_SOCKET, SO_RCVTIMEO, nullptr, &len), "getsockopt SO_RCVTIMEO NULL");
  Show(setsockopt(p.server, SOL_SOCKET, 9999, &one, sizeof one), "setsockopt unknown option");
  Show(accept(p.server, nullptr, nullptr), "accept on a connected socket");
  int fresh = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
  Show(accept(fresh, nullptr, nullptr), "accept on a socket that is not listening");
  Show(recv(fresh, buf, sizeof buf, 0), "recv on an unconnected TCP socket");
  Show(send(fresh, "x", 1, MSG_NOSIGNAL), "send on an unconnected TCP socket");
  Show(connect(fresh, reinterpret_cast<sockaddr*>(&sa), 3), "connect with addrlen 3");
  Show(connect(fresh, nullptr, sizeof sa), "connect with a NULL address");
  sockaddr_in6 six{};
  six.sin6_family = AF_INET6;
  Show(connect(fresh, reinterpret_cast<sockaddr*>(&six), sizeof six),
       "connect an AF_INET socket to an AF_INET6 address");
  Show(connect(p.client, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect when connected");
  int udp = UdpSocket();
  Show(accept(udp, nullptr, nullptr), "accept on UDP");
  Show(listen(udp, 1), "listen on UDP");
  // The kernel ignores flag bits a protocol does not use: this recv waits like a plain one.
  SetTimeout(p.server, SO_RCVTIMEO, 150);
  Show(recv(p.server, buf, sizeof buf, MSG_CMSG_CLOEXEC),
       "recv with MSG_CMSG_CLOEXEC (unused by TCP), SO_RCVTIMEO 150 ms");
  Show(recv(p.server, buf, sizeof buf, MSG_OOB), "recv MSG_OOB with none pending");
  Show(shutdown(fresh, SHUT_RDWR), "shutdown of an unconnected socket");
  Show(shutdown(p.client, 7), "shutdown with a bad how");
  close(udp);
  close(fresh);
  CloseBoth(p);
  close(client);
  close(server);
  close(listener);
  return 0;
}
