// The blocking semantics hold beyond IPv4 TCP: on a unix stream listener (abstract address) and
// on IPv6 loopback, accept and recv wait, time out with SO_RCVTIMEO, big sends complete, and EOF
// and connection refusal read the same.
#include <thread>
#include <vector>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void Exercise(const char* kind, int listener, const sockaddr* addr, socklen_t addrlen, int family) {
  Say("== %s", kind);
  int client = -1;
  {
    Announcer parked;
    std::thread connector([&] {
      parked.WaitParked(30);
      client = Must(socket(family, SOCK_STREAM, 0), "socket");
      Must(connect(client, addr, addrlen), "connect");
    });
    parked.Announce();
    int fd = ShowOk(accept(listener, nullptr, nullptr), "blocking accept");
    connector.join();
    char buf[64];
    {
      Announcer p2;
      std::thread sender([&] {
        p2.WaitParked(30);
        SendStr(client, "hello");
      });
      p2.Announce();
      long n = Show(recv(fd, buf, sizeof buf, 0), "blocking recv");
      Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
      sender.join();
    }
    SetTimeout(fd, SO_RCVTIMEO, 150);
    Stopwatch sw;
    Show(recv(fd, buf, sizeof buf, 0), "recv, SO_RCVTIMEO 150 ms");
    Say("recv %s", sw.Waited(150));
    std::vector<char> data(4 << 20);
    Pattern(data.data(), data.size());
    bool same = false;
    std::thread reader([&] {
      SleepMs(30);
      std::vector<char> got(data.size());
      RecvExactly(fd, got.data(), got.size());
      same = got == data;
    });
    Show(send(client, data.data(), data.size(), 0), "blocking send 4 MiB");
    reader.join();
    Say("reader got the same bytes: %s", YesNo(same));
    close(client);
    Show(recv(fd, buf, sizeof buf, 0), "recv after the peer closed");
    close(fd);
  }
  SetTimeout(listener, SO_RCVTIMEO, 150);
  Stopwatch sw;
  Show(accept(listener, nullptr, nullptr), "accept, SO_RCVTIMEO 150 ms");
  Say("accept %s", sw.Waited(150));
}

}  // namespace

int main() {
  // Abstract unix address: nothing on disk; the name includes the pid so parallel runs differ.
  sockaddr_un un{};
  un.sun_family = AF_UNIX;
  int len = snprintf(un.sun_path + 1, sizeof un.sun_path - 1, "gonet-conformance-%d", getpid());
  socklen_t unlen = offsetof(sockaddr_un, sun_path) + 1 + len;
  int ul = Must(socket(AF_UNIX, SOCK_STREAM, 0), "socket(unix)");
  Must(bind(ul, reinterpret_cast<sockaddr*>(&un), unlen), "bind(unix)");
  Must(listen(ul, 4), "listen(unix)");
  Exercise("unix stream, abstract address", ul, reinterpret_cast<sockaddr*>(&un), unlen, AF_UNIX);
  close(ul);
  int refused = Must(socket(AF_UNIX, SOCK_STREAM, 0), "socket");
  Show(connect(refused, reinterpret_cast<sockaddr*>(&un), unlen),
       "connect after the listener closed");
  close(refused);

  int l6 = socket(AF_INET6, SOCK_STREAM, 0);
  sockaddr_in6 six{};
  six.sin6_family = AF_INET6;
  six.sin6_addr = in6addr_loopback;
  if (l6 < 0 || bind(l6, reinterpret_cast<sockaddr*>(&six), sizeof six) != 0) {
    Say("== IPv6 loopback unavailable here");  // same natively and preloaded
    return 0;
  }
  Must(listen(l6, 4), "listen(ipv6)");
  socklen_t sl = sizeof six;
  Must(getsockname(l6, reinterpret_cast<sockaddr*>(&six), &sl), "getsockname");
  Exercise("TCP over ::1", l6, reinterpret_cast<sockaddr*>(&six), sizeof six, AF_INET6);
  close(l6);
  return 0;
}
