// accept and accept4 fill the peer address exactly as the kernel does, also after waiting:
// addrlen in/out (a short buffer is truncated while addrlen reports the full size), a NULL
// address, and getpeername/getsockname agreeing with it.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void Describe(const char* what, const sockaddr_in& sa, socklen_t len, uint16_t expected_port) {
  Say("%s: addrlen %u, family %s, address %s, port is the client's: %s", what,
      static_cast<unsigned>(len), sa.sin_family == AF_INET ? "AF_INET" : "other",
      sa.sin_addr.s_addr == htonl(INADDR_LOOPBACK) ? "127.0.0.1" : "other",
      YesNo(ntohs(sa.sin_port) == expected_port));
}

}  // namespace

int main() {
  uint16_t port;
  int listener = TcpListener(8, &port);

  Say("== accept after waiting, full-size buffer");
  {
    Announcer parked;
    int client = -1;
    std::thread connector([&] {
      parked.WaitParked(30);
      client = TcpConnect(port);
    });
    sockaddr_in sa{};
    socklen_t len = sizeof sa;
    parked.Announce();
    int fd = ShowOk(accept(listener, reinterpret_cast<sockaddr*>(&sa), &len), "blocking accept");
    connector.join();
    Describe("accept", sa, len, LocalPort(client));
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    Show(getpeername(fd, reinterpret_cast<sockaddr*>(&peer), &plen), "getpeername");
    Say("getpeername agrees: %s", YesNo(plen == len && memcmp(&peer, &sa, len) == 0));
    close(fd);
    close(client);
  }

  Say("== accept4 with a short buffer");
  {
    int client = TcpConnect(port);
    unsigned char raw[32];
    memset(raw, 0xAB, sizeof raw);
    socklen_t len = 6;
    int fd =
        ShowOk(accept4(listener, reinterpret_cast<sockaddr*>(raw), &len, SOCK_CLOEXEC), "accept4");
    Say("addrlen reports %u; bytes past the 6 given untouched: %s", static_cast<unsigned>(len),
        YesNo(raw[6] == 0xAB && raw[15] == 0xAB));
    Say("flags: FD_CLOEXEC %s", YesNo(fcntl(fd, F_GETFD) & FD_CLOEXEC));
    close(fd);
    close(client);
  }

  Say("== accept with addrlen but a NULL address, and with addrlen 0");
  {
    int client = TcpConnect(port);
    socklen_t len = 16;
    int fd = ShowOk(accept(listener, nullptr, &len), "accept(NULL, &16)");
    Say("addrlen now %u", static_cast<unsigned>(len));
    close(fd);
    close(client);
    client = TcpConnect(port);
    sockaddr_in sa{};
    len = 0;
    fd = ShowOk(accept(listener, reinterpret_cast<sockaddr*>(&sa), &len), "accept(&sa, &0)");
    Say("addrlen now %u, family untouched: %s", static_cast<unsigned>(len),
        YesNo(sa.sin_family == 0));
    close(fd);
    close(client);
  }

  // The kernel writes the address after taking the connection off the queue: a bad addrlen
  // fails the call and the connection taken is closed (its peer reads EOF).
  Say("== accept with a bad addrlen");
  {
    char c;
    int client = TcpConnect(port);
    sockaddr_in sa{};
    socklen_t len = static_cast<socklen_t>(-1);
    Show(accept(listener, reinterpret_cast<sockaddr*>(&sa), &len), "accept(&sa, &-1)");
    Show(recv(client, &c, 1, 0), "its peer recv");
    close(client);
    client = TcpConnect(port);
    Show(accept(listener, reinterpret_cast<sockaddr*>(&sa), reinterpret_cast<socklen_t*>(8)),
         "accept(&sa, bad pointer)");
    Show(recv(client, &c, 1, 0), "its peer recv");
    close(client);
    client = TcpConnect(port);
    int fd = ShowOk(accept(listener, nullptr, nullptr), "accept after the failures");
    close(fd);
    close(client);
  }
  close(listener);
  return 0;
}
