// The kernel reads SO_RCVTIMEO when a call starts: changing it while another thread is blocked
// in recv or accept affects only later calls (unlike Go's SetReadDeadline, which also moves a
// pending read's deadline). A new timeout set mid-call neither cuts the blocked call short nor
// extends it.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

struct Outcome {
  long r = 0;
  int err = 0;
  int64_t elapsed_ms = 0;
};

void Report(const char* what, const Outcome& o) {
  if (o.r < 0) {
    Say("%s -> -1 %s", what, ErrnoName(o.err));
  } else {
    Say("%s -> %ld", what, o.r);
  }
}

}  // namespace

int main() {
  char buf[16];
  Say("== no timeout at the start; 100 ms set while blocked; data after 400 ms");
  {
    Pair p = TcpPair();
    Announcer parked;
    Outcome o;
    std::thread reader([&] {
      parked.Announce();
      o.r = recv(p.server, buf, sizeof buf, 0);
      o.err = errno;
    });
    parked.WaitParked();
    SetTimeout(p.server, SO_RCVTIMEO, 100);
    SleepMs(400);
    SendStr(p.client, "data");
    reader.join();
    Report("blocked recv", o);
    Stopwatch sw;
    Show(recv(p.server, buf, sizeof buf, 0), "next recv");
    Say("next recv %s (the new timeout applies)", sw.Waited(100));
    CloseBoth(p);
  }

  Say("== 5 s timeout at the start; 100 ms set while blocked; data after 400 ms");
  {
    Pair p = TcpPair();
    SetTimeout(p.server, SO_RCVTIMEO, 5000);
    Announcer parked;
    Outcome o;
    std::thread reader([&] {
      parked.Announce();
      o.r = recv(p.server, buf, sizeof buf, 0);
      o.err = errno;
    });
    parked.WaitParked();
    SetTimeout(p.server, SO_RCVTIMEO, 100);
    SleepMs(400);
    SendStr(p.client, "data");
    reader.join();
    Report("blocked recv", o);
    CloseBoth(p);
  }

  Say("== 400 ms timeout at the start; cleared while blocked");
  {
    Pair p = TcpPair();
    SetTimeout(p.server, SO_RCVTIMEO, 400);
    Announcer parked;
    Outcome o;
    Stopwatch sw;
    std::thread reader([&] {
      parked.Announce();
      o.r = recv(p.server, buf, sizeof buf, 0);
      o.err = errno;
    });
    parked.WaitParked();
    SetTimeout(p.server, SO_RCVTIMEO, 0);
    reader.join();
    Report("blocked recv", o);
    Say("blocked recv %s", sw.Waited(400));
    CloseBoth(p);
  }

  Say("== accept: no timeout at the start; 100 ms set while blocked; connect after 400 ms");
  {
    uint16_t port;
    int listener = TcpListener(4, &port);
    Announcer parked;
    Outcome o;
    std::thread acceptor([&] {
      parked.Announce();
      o.r = accept(listener, nullptr, nullptr);
      o.err = errno;
      if (o.r >= 0) {
        close(static_cast<int>(o.r));
        o.r = 0;
      }
    });
    parked.WaitParked();
    SetTimeout(listener, SO_RCVTIMEO, 100);
    SleepMs(400);
    int c = TcpConnect(port);
    acceptor.join();
    Report("blocked accept (0: a connection)", o);
    close(c);
    close(listener);
  }
  return 0;
}
