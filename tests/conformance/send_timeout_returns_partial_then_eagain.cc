// SO_SNDTIMEO bounds a blocking send to a peer that never reads: the first send returns the
// bytes that fitted into the socket buffers once the timeout has passed, the next one fails with
// EAGAIN after the timeout. The same holds for write, writev and sendmsg.
#include <sys/uio.h>

#include <vector>

#include "loopback.h"

using namespace conf;

namespace {

constexpr int kTimeoutMs = 200;
constexpr size_t kBig = 16 << 20;

void Partial(const char* what, ssize_t n, int err, const Stopwatch& sw) {
  if (n < 0) {
    Say("%s -> -1 %s, %s", what, ErrnoName(err), sw.Waited(kTimeoutMs));
  } else {
    Say("%s -> %s, %s", what,
        n > 0 && static_cast<size_t>(n) < kBig ? "a partial count" : "UNEXPECTED count",
        sw.Waited(kTimeoutMs));
  }
}

}  // namespace

int main() {
  std::vector<char> data(kBig);
  Pattern(data.data(), data.size());
  Pair p = TcpPair();
  // Fixed buffer sizes turn off autotuning, so once the buffers are full they stay full.
  int size = 64 * 1024;
  Must(setsockopt(p.client, SOL_SOCKET, SO_SNDBUF, &size, sizeof size), "SO_SNDBUF");
  Must(setsockopt(p.server, SOL_SOCKET, SO_RCVBUF, &size, sizeof size), "SO_RCVBUF");
  SetTimeout(p.client, SO_SNDTIMEO, kTimeoutMs);

  Say("== send to a peer that never reads");
  Stopwatch sw;
  ssize_t n = send(p.client, data.data(), data.size(), 0);
  Partial("send 16 MiB", n, errno, sw);
  size_t sent = n > 0 ? n : 0;
  sw = Stopwatch();
  n = send(p.client, data.data(), data.size(), 0);
  Partial("send again", n, errno, sw);
  if (n > 0) sent = 0;  // two partial sends: the stream check below would need both
  sw = Stopwatch();
  n = write(p.client, data.data(), data.size());
  Partial("write", n, errno, sw);
  iovec iov[2] = {{data.data(), kBig / 2}, {data.data() + kBig / 2, kBig / 2}};
  sw = Stopwatch();
  n = writev(p.client, iov, 2);
  Partial("writev", n, errno, sw);
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  sw = Stopwatch();
  n = sendmsg(p.client, &mh, 0);
  Partial("sendmsg", n, errno, sw);
  Say("socket still blocking: %s", YesNo(!HasNonblock(p.client)));

  Say("== the reader drains; every byte from the partial send arrives, in order");
  shutdown(p.client, SHUT_WR);
  std::vector<char> got(kBig);
  size_t total = 0;
  for (;;) {
    ssize_t r = recv(p.server, got.data() + total, got.size() - total, 0);
    if (r <= 0) break;
    total += r;
  }
  Say("reader got the bytes of the partial send: %s",
      YesNo(sent > 0 && total == sent && memcmp(got.data(), data.data(), total) == 0));
  CloseBoth(p);
  return 0;
}
