// Built with _FORTIFY_SOURCE=2: calls into buffers of known size become __read_chk,
// __recv_chk, __recvfrom_chk, and must block, time out and return bytes exactly like the plain
// calls do.
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

// volatile: a length the compiler cannot see, so the _chk variant is called.
volatile size_t runtime_len = 32;

template <typename Call>
void Blocking(int tx, const char* text, Call call) {
  Announcer parked;
  std::thread sender([&] {
    parked.WaitParked(50);
    SendStr(tx, text);
  });
  parked.Announce();
  call();
  sender.join();
}

}  // namespace

int main() {
  Pair p = TcpPair();
  char buf[32];
  Say("== blocking fortified calls");
  Blocking(p.client, "read_chk", [&] {
    ssize_t n = Show(read(p.server, buf, runtime_len), "read");
    Say("  got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  });
  Blocking(p.client, "recv_chk", [&] {
    ssize_t n = Show(recv(p.server, buf, runtime_len, 0), "recv");
    Say("  got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  });
  Blocking(p.client, "recvfrom_chk", [&] {
    ssize_t n = Show(recvfrom(p.server, buf, runtime_len, 0, nullptr, nullptr), "recvfrom");
    Say("  got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  });
  Say("== fortified calls time out");
  constexpr int kTimeoutMs = 150;
  SetTimeout(p.server, SO_RCVTIMEO, kTimeoutMs);
  Stopwatch sw;
  Show(read(p.server, buf, runtime_len), "read");
  Say("read %s", sw.Waited(kTimeoutMs));
  sw = Stopwatch();
  Show(recv(p.server, buf, runtime_len, 0), "recv");
  Say("recv %s", sw.Waited(kTimeoutMs));
  sw = Stopwatch();
  Show(recvfrom(p.server, buf, runtime_len, 0, nullptr, nullptr), "recvfrom");
  Say("recvfrom %s", sw.Waited(kTimeoutMs));
  Say("== fortified calls at EOF");
  close(p.client);
  Show(read(p.server, buf, runtime_len), "read");
  Show(recv(p.server, buf, runtime_len, 0), "recv");
  close(p.server);
  return 0;
}
