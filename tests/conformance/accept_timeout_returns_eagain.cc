// SO_RCVTIMEO on a listening socket bounds accept: EAGAIN after the timeout, a pending
// connection is accepted at once, and the listener stays blocking in the app's view.
#include <thread>

#include "loopback.h"

using namespace conf;

namespace {
constexpr int kTimeoutMs = 200;
}

int main() {
  uint16_t port;
  int listener = TcpListener(8, &port);
  SetTimeout(listener, SO_RCVTIMEO, kTimeoutMs);

  Say("== accept with nothing pending");
  {
    Stopwatch sw;
    Show(accept(listener, nullptr, nullptr), "accept");
    Say("accept %s", sw.Waited(kTimeoutMs));
    sw = Stopwatch();
    Show(accept4(listener, nullptr, nullptr, SOCK_CLOEXEC), "accept4");
    Say("accept4 %s", sw.Waited(kTimeoutMs));
  }
  Say("listener blocking: %s", YesNo(!HasNonblock(listener)));

  Say("== accept with a connection pending");
  int client = TcpConnect(port);
  {
    Stopwatch sw;
    int fd = ShowOk(accept(listener, nullptr, nullptr), "accept");
    Say("accept returned %s", sw.Before(kTimeoutMs));
    Say("accepted socket blocking: %s", YesNo(!HasNonblock(fd)));
    timeval tv{-7, -7};
    socklen_t len = sizeof tv;
    getsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len);
    Say("accepted socket inherits SO_RCVTIMEO = {%ld s, %ld us}", static_cast<long>(tv.tv_sec),
        static_cast<long>(tv.tv_usec));
    char buf[16];
    sw = Stopwatch();
    Show(recv(fd, buf, sizeof buf, 0), "recv on the accepted socket");
    Say("recv %s (the inherited timeout applies)", sw.Waited(kTimeoutMs));
    close(fd);
  }
  close(client);

  Say("== a connection arriving while accept waits");
  SetTimeout(listener, SO_RCVTIMEO, 5000);
  {
    std::thread connector([&] {
      SleepMs(50);
      close(TcpConnect(port));
    });
    Stopwatch sw;
    int fd = ShowOk(accept(listener, nullptr, nullptr), "accept with a 5 s timeout");
    Say("accept returned %s", sw.Before(5000));
    connector.join();
    close(fd);
  }

  Say("== accept after the timeout elapsed once still works");
  SetTimeout(listener, SO_RCVTIMEO, kTimeoutMs);
  Show(accept(listener, nullptr, nullptr), "accept");
  client = TcpConnect(port);
  int fd = ShowOk(accept(listener, nullptr, nullptr), "accept");
  close(fd);
  close(client);
  close(listener);
  return 0;
}
