// SO_RCVLOWAT on a TCP socket: a blocking recv waits until that many bytes are queued (or the
// request is smaller), a SO_RCVTIMEO expiring first returns the bytes that are there, poll does
// not report POLLIN below the mark, and MSG_DONTWAIT returns what is there at once.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

int main() {
  Pair p = TcpPair();
  int lowat = 10;
  Show(setsockopt(p.server, SOL_SOCKET, SO_RCVLOWAT, &lowat, sizeof lowat),
       "setsockopt(SO_RCVLOWAT, 10)");
  int got = 0;
  socklen_t len = sizeof got;
  Show(getsockopt(p.server, SOL_SOCKET, SO_RCVLOWAT, &got, &len), "getsockopt(SO_RCVLOWAT)");
  Say("SO_RCVLOWAT = %d", got);
  char buf[64];

  // The receive queue is empty when recv starts: the kernel only re-checks a sleeping reader's
  // condition when a new skb is queued, and bytes coalesced into an skb that was already there
  // when the call started would not wake it (a kernel quirk the scenario must not depend on).
  Say("== 3 bytes, then 7 more: a blocking recv waits for 10");
  {
    Announcer parked;
    std::thread sender([&] {
      parked.WaitParked(50);
      SendStr(p.client, "abc");
      WaitQueued(p.server, 3);
      pollfd pfd{p.server, POLLIN, 0};
      Show(poll(&pfd, 1, 0), "poll POLLIN below the mark");
      SleepMs(50);
      SendStr(p.client, "defghij");
    });
    parked.Announce();
    long n = Show(recv(p.server, buf, sizeof buf, 0), "blocking recv 64");
    Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
    sender.join();
  }

  Say("== a request smaller than the mark returns at once");
  Show(send(p.client, "xyz", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  Show(recv(p.server, buf, 2, 0), "recv 2");

  Say("== MSG_DONTWAIT returns what is there");
  Show(recv(p.server, buf, sizeof buf, MSG_DONTWAIT), "recv 64 MSG_DONTWAIT");

  Say("== SO_RCVTIMEO expiring below the mark returns the bytes that are there");
  SetTimeout(p.server, SO_RCVTIMEO, 150);
  Show(send(p.client, "12345", 5, 0), "send 5");
  WaitQueued(p.server, 5);
  Stopwatch sw;
  long n = Show(recv(p.server, buf, sizeof buf, 0), "recv 64");
  Say("got '%.*s', %s", static_cast<int>(n > 0 ? n : 0), buf, sw.Waited(150));

  Say("== EOF below the mark");
  SetTimeout(p.server, SO_RCVTIMEO, 0);
  Show(send(p.client, "end", 3, 0), "send 3");
  {
    std::thread closer([&] {
      SleepMs(50);
      shutdown(p.client, SHUT_WR);
    });
    n = Show(recv(p.server, buf, sizeof buf, 0), "blocking recv 64");
    Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
    closer.join();
  }
  Show(recv(p.server, buf, sizeof buf, 0), "recv at EOF");
  CloseBoth(p);
  return 0;
}
