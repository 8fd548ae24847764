// The app's O_NONBLOCK is the app's: fcntl F_GETFL/F_SETFL and ioctl FIONBIO round-trip it,
// SOCK_NONBLOCK in socket()/accept4() sets it, and a non-blocking socket fails with EAGAIN (or
// EINPROGRESS for connect) instead of waiting. A blocking listener reads back as blocking even
// after blocking accepts ran on it; plain accept never inherits O_NONBLOCK from the listener.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void ShowFlags(int fd, const char* what) {
  int fl = fcntl(fd, F_GETFL);
  if (fl < 0) {
    Say("F_GETFL %s -> -1 %s", what, ErrnoName(errno));
    return;
  }
  Say("F_GETFL %s -> %#x (O_NONBLOCK %s)", what, static_cast<unsigned>(fl), YesNo(fl & O_NONBLOCK));
}

void RecvNow(int fd, const char* what) {
  char buf[8];
  Stopwatch sw;
  Show(recv(fd, buf, sizeof buf, 0), "recv on %s", what);
  Say("  returned %s of 1000 ms", sw.Before(1000));
}

}  // namespace

int main() {
  Say("== fcntl F_SETFL O_NONBLOCK round-trips");
  Pair p = TcpPair();
  ShowFlags(p.server, "fresh socket");
  int fl = fcntl(p.server, F_GETFL);
  Show(fcntl(p.server, F_SETFL, fl | O_NONBLOCK), "F_SETFL |O_NONBLOCK");
  ShowFlags(p.server, "after setting");
  RecvNow(p.server, "the non-blocking socket");
  Show(fcntl(p.server, F_SETFL, fl), "F_SETFL without O_NONBLOCK");
  ShowFlags(p.server, "after clearing");
  SetTimeout(p.server, SO_RCVTIMEO, 150);
  {
    char buf[8];
    Stopwatch sw;
    Show(recv(p.server, buf, sizeof buf, 0), "recv, blocking again with SO_RCVTIMEO 150 ms");
    Say("  %s", sw.Waited(150));
  }
  Show(fcntl(p.server, F_SETFL, fl | O_NONBLOCK | O_APPEND), "F_SETFL |O_NONBLOCK|O_APPEND");
  ShowFlags(p.server, "after setting both");
  Show(fcntl(p.server, F_SETFL, O_RDONLY), "F_SETFL 0");
  ShowFlags(p.server, "after F_SETFL 0");

  Say("== ioctl FIONBIO");
  int on = 1, off = 0;
  Show(ioctl(p.server, FIONBIO, &on), "FIONBIO 1");
  ShowFlags(p.server, "after FIONBIO 1");
  RecvNow(p.server, "the non-blocking socket");
  Show(ioctl(p.server, FIONBIO, &off), "FIONBIO 0");
  ShowFlags(p.server, "after FIONBIO 0");
  Show(ioctl(p.server, FIONBIO, &on), "FIONBIO 1");
  Show(send(p.client, "abc", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  Show(recv(p.server, reinterpret_cast<char*>(&on), 3, 0),
       "recv 3 queued on the non-blocking socket");
  CloseBoth(p);

  Say("== SOCK_NONBLOCK in socket(): connect says EINPROGRESS, recv EAGAIN");
  uint16_t port;
  int listener = TcpListener(8, &port);
  int nb = Must(socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), "socket");
  ShowFlags(nb, "SOCK_NONBLOCK socket");
  sockaddr_in sa = Loopback(port);
  Show(connect(nb, reinterpret_cast<sockaddr*>(&sa), sizeof sa), "connect");
  pollfd pfd{nb, POLLOUT, 0};
  Show(poll(&pfd, 1, 5000), "poll POLLOUT");
  int err = -1;
  socklen_t len = sizeof err;
  Show(getsockopt(nb, SOL_SOCKET, SO_ERROR, &err, &len), "getsockopt(SO_ERROR)");
  Say("SO_ERROR = %d", err);
  RecvNow(nb, "the SOCK_NONBLOCK socket");

  Say("== accept4 SOCK_NONBLOCK vs plain accept");
  int a4 = ShowOk(accept4(listener, nullptr, nullptr, SOCK_NONBLOCK), "accept4 SOCK_NONBLOCK");
  ShowFlags(a4, "accept4 SOCK_NONBLOCK socket");
  RecvNow(a4, "it");
  int c2 = TcpConnect(port);
  Show(fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK), "listener |O_NONBLOCK");
  int a = ShowOk(accept(listener, nullptr, nullptr), "plain accept on the non-blocking listener");
  ShowFlags(a, "plain accepted socket");
  {
    Stopwatch sw;
    Show(accept(listener, nullptr, nullptr), "accept with nothing pending");
    Say("  returned %s of 1000 ms", sw.Before(1000));
  }
  close(a);
  close(c2);
  close(a4);
  close(nb);
  Show(fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) & ~O_NONBLOCK),
       "listener back to blocking");

  Say("== a blocking listener stays blocking after blocking accepts");
  ShowFlags(listener, "listener");
  for (int i = 0; i < 2; ++i) {
    Announcer parked;
    std::thread connector([&] {
      parked.WaitParked(50);
      close(TcpConnect(port));
    });
    parked.Announce();
    int fd = ShowOk(accept(listener, nullptr, nullptr), "blocking accept %d", i);
    connector.join();
    ShowFlags(fd, "accepted socket");
    close(fd);
    ShowFlags(listener, "listener after the blocking accept");
  }
  int v = 0;
  Show(ioctl(listener, FIONBIO, &v), "FIONBIO 0 on the listener");
  ShowFlags(listener, "listener");
  close(listener);

  Say("== unix socketpair SOCK_NONBLOCK");
  int sv[2];
  Must(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), "socketpair");
  ShowFlags(sv[0], "socketpair end");
  RecvNow(sv[0], "it");
  close(sv[0]);
  close(sv[1]);
  return 0;
}
