// With SO_RCVTIMEO, MSG_WAITALL returns the bytes that arrived before the timeout (not EAGAIN),
// and EAGAIN only when none did. Bytes that arrive while the receiver waits restart nothing: the
// timeout bounds the whole call.
#include <thread>

#include "loopback.h"

using namespace conf;

namespace {
constexpr int kTimeoutMs = 250;
}

int main() {
  Pair p = TcpPair();
  char buf[100];
  SetTimeout(p.server, SO_RCVTIMEO, kTimeoutMs);

  Say("== MSG_WAITALL with 10 of 100 bytes queued");
  Show(send(p.client, "0123456789", 10, 0), "send 10");
  WaitQueued(p.server, 10);
  {
    Stopwatch sw;
    ssize_t n = Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 100 MSG_WAITALL");
    Say("got '%.*s', %s", static_cast<int>(n > 0 ? n : 0), buf, sw.Waited(kTimeoutMs));
  }

  Say("== MSG_WAITALL with bytes trickling in before the timeout");
  {
    std::thread sender([&] {
      SleepMs(30);
      SendStr(p.client, "abc");
      SleepMs(30);
      SendStr(p.client, "def");
    });
    Stopwatch sw;
    ssize_t n = Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 100 MSG_WAITALL");
    sender.join();
    Say("got '%.*s', %s", static_cast<int>(n > 0 ? n : 0), buf, sw.Waited(kTimeoutMs));
  }

  Say("== MSG_WAITALL with nothing queued");
  {
    Stopwatch sw;
    Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 100 MSG_WAITALL");
    Say("recv %s", sw.Waited(kTimeoutMs));
  }

  Say("== MSG_WAITALL completing before the timeout");
  {
    std::thread sender([&] {
      char chunk[50];
      Pattern(chunk, sizeof chunk);
      SendAll(p.client, chunk, sizeof chunk);
      SleepMs(20);
      SendAll(p.client, chunk, sizeof chunk);
    });
    Show(recv(p.server, buf, sizeof buf, MSG_WAITALL), "recv 100 MSG_WAITALL");
    sender.join();
  }

  Say("== plain recv with bytes queued does not wait");
  Show(send(p.client, "xyz", 3, 0), "send 3");
  WaitQueued(p.server, 3);
  {
    Stopwatch sw;
    Show(recv(p.server, buf, sizeof buf, 0), "recv 100");
    Say("recv returned %s", sw.Before(kTimeoutMs));
  }
  CloseBoth(p);
  return 0;
}
