// recv flags on a blocking TCP socket: MSG_PEEK leaves the bytes for the next recv (and blocks
// like recv when nothing is queued); MSG_WAITALL waits for the full count across several sends,
// and returns a short count at EOF; MSG_DONTWAIT never blocks, even on a blocking socket, and
// leaves the socket blocking.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

void Peek() {
  Say("== MSG_PEEK");
  Pair p = TcpPair();
  char buf[64];
  Show(send(p.client, "hello world", 11, 0), "send 11");
  WaitQueued(p.server, 11);
  ssize_t n = Show(recv(p.server, buf, sizeof buf, MSG_PEEK), "recv MSG_PEEK");
  Say("peeked '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  n = Show(recv(p.server, buf, 5, MSG_PEEK), "recv 5 MSG_PEEK");
  Say("peeked '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  n = Show(recv(p.server, buf, sizeof buf, 0), "recv");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);

  Say("== MSG_PEEK blocks until data arrives");
  Announcer parked;
  std::thread sender([&] {
    parked.WaitParked();
    SendStr(p.client, "later");
  });
  parked.Announce();
  n = Show(recv(p.server, buf, sizeof buf, MSG_PEEK), "blocking recv MSG_PEEK");
  Say("peeked '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  sender.join();
  n = Show(recv(p.server, buf, sizeof buf, 0), "recv");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);

  Say("== MSG_PEEK at EOF");
  shutdown(p.client, SHUT_WR);
  Show(recv(p.server, buf, sizeof buf, MSG_PEEK), "recv MSG_PEEK");
  Show(recv(p.server, buf, sizeof buf, 0), "recv");
  CloseBoth(p);
}

void WaitAll() {
  Say("== MSG_WAITALL waits for all bytes across several sends");
  Pair p = TcpPair();
  char sent[500];
  Pattern(sent, sizeof sent);
  std::thread sender([&] {
    for (int i = 0; i < 5; ++i) {
      SleepMs(20);
      SendAll(p.client, sent + i * 100, 100);
    }
  });
  char buf[500];
  ssize_t n = Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 500 MSG_WAITALL");
  Say("same bytes: %s", YesNo(n == 500 && memcmp(buf, sent, 500) == 0));
  sender.join();

  Say("== MSG_WAITALL returns a short count at EOF");
  std::thread closer([&] {
    SendAll(p.client, sent, 100);
    SleepMs(50);
    shutdown(p.client, SHUT_WR);
  });
  n = Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 500 MSG_WAITALL");
  closer.join();
  Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 500 MSG_WAITALL at EOF");

  Say("== MSG_WAITALL|MSG_PEEK");
  CloseBoth(p);
  p = TcpPair();
  Show(send(p.client, sent, 100, 0), "send 100");
  WaitQueued(p.server, 100);
  std::thread more([&] {
    SleepMs(50);
    SendAll(p.client, sent + 100, 100);
  });
  // The kernel honours MSG_WAITALL while peeking: it waits until all 200 bytes are queued.
  Show(recv(p.server, buf, 200, MSG_WAITALL | MSG_PEEK), "recv 200 MSG_WAITALL|MSG_PEEK");
  more.join();
  Show(recv(p.server, buf, 200, MSG_WAITALL), "recv 200 MSG_WAITALL");
  CloseBoth(p);
}

void DontWait() {
  Say("== MSG_DONTWAIT on a blocking socket");
  Pair p = TcpPair();
  char buf[64];
  Stopwatch sw;
  Show(recv(p.server, buf, sizeof buf, MSG_DONTWAIT), "recv MSG_DONTWAIT, nothing queued");
  Say("returned %s of 1000 ms", sw.Before(1000));
  Show(recv(p.server, buf, sizeof buf, MSG_DONTWAIT | MSG_PEEK), "recv MSG_DONTWAIT|MSG_PEEK");
  Say("socket still blocking: %s", YesNo(!HasNonblock(p.server)));
  Show(send(p.client, "abc", 3, MSG_DONTWAIT), "send MSG_DONTWAIT");
  WaitQueued(p.server, 3);
  Show(recv(p.server, buf, sizeof buf, MSG_DONTWAIT), "recv MSG_DONTWAIT, 3 queued");
  // A send that cannot complete at once returns what fitted, then EAGAIN.
  static char big[8 << 20];
  ssize_t n = send(p.client, big, sizeof big, MSG_DONTWAIT);
  Say("send 8 MiB MSG_DONTWAIT to a peer that does not read -> %s",
      n > 0 && n < static_cast<ssize_t>(sizeof big) ? "a partial count" : "UNEXPECTED");
  Show(send(p.client, big, sizeof big, MSG_DONTWAIT), "send again MSG_DONTWAIT");
  Say("socket still blocking: %s", YesNo(!HasNonblock(p.client)));
  CloseBoth(p);
}

}  // namespace

int main() {
  Peek();
  WaitAll();
  DontWait();
  return 0;
}
