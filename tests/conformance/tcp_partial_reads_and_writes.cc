// TCP is a byte stream: recv returns what is queued (up to the buffer), a short buffer leaves the
// rest for the next recv, and a blocking send or write of a buffer far larger than the socket
// buffers returns only when every byte went out (it never returns a short count by itself).
#include <pthread.h>

#include <thread>
#include <vector>

#include "loopback.h"

using namespace conf;

namespace {

// A reader that starts late and drains in small chunks, so the sender must block many times.
struct SlowReader {
  int fd;
  size_t total = 0;
  uint32_t sum = 2166136261u;

  void Run() {
    SleepMs(50);
    std::vector<char> buf(16 * 1024);
    for (int chunk = 0;; ++chunk) {
      ssize_t n = recv(fd, buf.data(), buf.size(), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      sum = Checksum(buf.data(), n, sum);
      total += n;
      if (chunk % 64 == 0) SleepMs(1);
    }
  }
};

void BigBlockingWrite(const char* how, bool use_write) {
  Pair p = TcpPair();
  constexpr size_t kBig = 8 << 20;
  std::vector<char> data(kBig);
  Pattern(data.data(), data.size());
  SlowReader reader{p.server};
  std::thread t([&] { reader.Run(); });
  ssize_t n = use_write ? write(p.client, data.data(), data.size())
                        : send(p.client, data.data(), data.size(), 0);
  Show(n, "%s of %zu bytes to a slow reader", how, kBig);
  shutdown(p.client, SHUT_WR);
  t.join();
  Say("slow reader got %zu bytes, same bytes: %s", reader.total,
      YesNo(reader.sum == Checksum(data.data(), data.size())));
  CloseBoth(p);
}

}  // namespace

int main() {
  Pair p = TcpPair();
  char buf[4096];

  Say("== a big buffer gets what is queued");
  Show(send(p.client, "0123456789", 10, 0), "send 10 bytes");
  WaitQueued(p.server, 10);
  ssize_t n = Show(recv(p.server, buf, sizeof buf, 0), "recv into 4096");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);

  Say("== a short buffer leaves the rest queued");
  char msg[100];
  Pattern(msg, sizeof msg);
  Show(send(p.client, msg, sizeof msg, 0), "send 100 bytes");
  WaitQueued(p.server, 100);
  uint32_t sum = 2166136261u;
  n = Show(recv(p.server, buf, 30, 0), "recv 30");
  sum = Checksum(buf, n, sum);
  n = Show(read(p.server, buf, 30), "read 30");
  sum = Checksum(buf, n, sum);
  n = Show(recv(p.server, buf, sizeof buf, 0), "recv into 4096");
  sum = Checksum(buf, n, sum);
  Say("the three reads are the message: %s", YesNo(sum == Checksum(msg, sizeof msg)));

  Say("== two sends coalesce in the stream");
  Show(send(p.client, "abc", 3, 0), "send 3");
  Show(send(p.client, "defg", 4, 0), "send 4");
  WaitQueued(p.server, 7);
  n = Show(recv(p.server, buf, sizeof buf, 0), "recv into 4096");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);

  Say("== a blocking recv returns as soon as some bytes arrive");
  std::thread sender([&] {
    SleepMs(50);
    SendStr(p.client, "late");
  });
  n = Show(recv(p.server, buf, sizeof buf, 0), "blocking recv into 4096");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  sender.join();
  CloseBoth(p);

  Say("== big blocking writes complete fully");
  BigBlockingWrite("send", false);
  BigBlockingWrite("write", true);
  return 0;
}
