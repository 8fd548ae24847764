// SO_SNDTIMEO bounds a blocking connect: when the handshake cannot complete (a listener whose
// accept queue is full drops the SYN), connect fails with EINPROGRESS once the timeout has
// passed, the connection attempt goes on in the background (EALREADY), and it completes later
// when the listener accepts.
#include <thread>
#include <vector>

#include "loopback.h"

using namespace conf;

namespace {
constexpr int kTimeoutMs = 200;
constexpr int kClients = 4;
}  // namespace

int main() {
  uint16_t port;
  // backlog 0: the kernel queues one completed connection, then drops further SYNs.
  int listener = TcpListener(0, &port);
  sockaddr_in sa = Loopback(port);
  std::vector<int> clients;
  int blocked = -1;

  Say("== connect until the backlog is full");
  for (int i = 0; i < kClients; ++i) {
    int fd = Must(socket(AF_INET, SOCK_STREAM, 0), "socket");
    SetTimeout(fd, SO_SNDTIMEO, kTimeoutMs);
    Stopwatch sw;
    long r = Show(connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "client %d connect", i);
    clients.push_back(fd);
    if (r < 0) {
      Say("client %d connect %s", i, sw.Waited(kTimeoutMs));
      blocked = fd;
      break;
    }
    Say("client %d connect returned %s", i, sw.Before(kTimeoutMs));
  }
  if (blocked < 0) {
    Say("no connect blocked");
    return 1;
  }

  Say("== the attempt goes on in the background");
  int err = -1;
  socklen_t len = sizeof err;
  Show(getsockopt(blocked, SOL_SOCKET, SO_ERROR, &err, &len), "getsockopt(SO_ERROR)");
  Say("SO_ERROR = %s", err == 0 ? "0" : ErrnoName(err));
  Say("socket still blocking: %s", YesNo(!HasNonblock(blocked)));
  {
    Stopwatch sw;
    Show(connect(blocked, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect again");
    // The kernel waits for the handshake again, up to the timeout, before saying EALREADY.
    Say("connect again %s", sw.Waited(kTimeoutMs));
  }
  char buf[8];
  Show(send(blocked, "x", 1, MSG_NOSIGNAL), "send before the handshake completed");
  Show(recv(blocked, buf, sizeof buf, MSG_DONTWAIT), "recv MSG_DONTWAIT before it completed");

  Say("== accepting makes room; the pending attempt completes");
  int first = ShowOk(accept(listener, nullptr, nullptr), "accept the queued connection");
  // The kernel retransmits the dropped SYN after about a second; poll for the handshake.
  pollfd pfd{blocked, POLLOUT, 0};
  Show(poll(&pfd, 1, 10000), "poll POLLOUT on the pending socket");
  Say("revents POLLOUT: %s", YesNo(pfd.revents & POLLOUT));
  err = -1;
  len = sizeof err;
  Show(getsockopt(blocked, SOL_SOCKET, SO_ERROR, &err, &len), "getsockopt(SO_ERROR)");
  Say("SO_ERROR = %s", err == 0 ? "0" : ErrnoName(err));
  Show(connect(blocked, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect after completion");
  int second = ShowOk(accept(listener, nullptr, nullptr), "accept the completed connection");
  Show(send(blocked, "hi", 2, 0), "send on it");
  Show(recv(second, buf, sizeof buf, 0), "peer recv");
  close(first);
  close(second);
  for (int fd : clients) close(fd);
  close(listener);
  return 0;
}
