// Datagram sockets (UDP over loopback, unix SOCK_DGRAM) keep message boundaries: each recv
// returns exactly one message, a zero-length message reads as 0 (not EOF), a too-small buffer
// truncates the message and discards the rest (MSG_TRUNC returns the real length, recvmsg sets
// MSG_TRUNC in msg_flags), and a blocking send to a full unix datagram queue waits for room.
#include <sys/un.h>

#include <thread>
#include <vector>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

const size_t kSizes[] = {1, 100, 0, 1000, 7, 60000, 2};

void Boundaries(int tx, int rx, const sockaddr* to, socklen_t tolen, bool udp) {
  std::vector<char> out(65536), in(65536);
  for (size_t size : kSizes) {
    Pattern(out.data(), size, size);
    Show(sendto(tx, out.data(), size, 0, to, tolen), "sendto %zu", size);
  }
  for (size_t size : kSizes) {
    sockaddr_in from{};
    socklen_t fromlen = sizeof from;
    ssize_t n =
        Show(recvfrom(rx, in.data(), in.size(), 0, reinterpret_cast<sockaddr*>(&from), &fromlen),
             "recvfrom 65536");
    Pattern(out.data(), size, size);
    bool same = n == static_cast<ssize_t>(size) && memcmp(in.data(), out.data(), size) == 0;
    if (udp) {
      Say("  message %zu intact: %s, from the sender: %s", size, YesNo(same),
          YesNo(fromlen == sizeof from && from.sin_port == htons(LocalPort(tx))));
    } else {
      Say("  message %zu intact: %s", size, YesNo(same));
    }
  }
}

void Truncation(int tx, int rx, const sockaddr* to, socklen_t tolen) {
  char msg[100], buf[100];
  Pattern(msg, sizeof msg);
  for (int i = 0; i < 4; ++i) Show(sendto(tx, msg, sizeof msg, 0, to, tolen), "sendto 100");
  Show(recv(rx, buf, 10, 0), "recv 10 of a 100-byte message");
  Show(recv(rx, buf, 10, MSG_TRUNC), "recv 10 MSG_TRUNC");
  Show(recv(rx, buf, 10, MSG_PEEK | MSG_TRUNC), "recv 10 MSG_PEEK|MSG_TRUNC");
  iovec iov{buf, 10};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  Show(recvmsg(rx, &mh, 0), "recvmsg 10");
  Say("  msg_flags MSG_TRUNC: %s", YesNo(mh.msg_flags & MSG_TRUNC));
  Show(recv(rx, buf, 0, MSG_TRUNC | MSG_DONTWAIT), "recv 0 MSG_TRUNC|MSG_DONTWAIT, last message");
  Say("  first 10 bytes intact: %s", YesNo(memcmp(buf, msg, 10) == 0));
}

void BlockingRecvGetsOneMessage(int tx, int rx, const sockaddr* to, socklen_t tolen) {
  Announcer parked;
  std::thread sender([&] {
    parked.WaitParked();
    sendto(tx, "one", 3, 0, to, tolen);
    sendto(tx, "two", 3, 0, to, tolen);
  });
  char buf[64];
  parked.Announce();
  ssize_t n = Show(recv(rx, buf, sizeof buf, 0), "blocking recv");
  Say("  got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  sender.join();
  n = Show(recv(rx, buf, sizeof buf, 0), "recv");
  Say("  got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
}

}  // namespace

int main() {
  Say("== UDP");
  int a = UdpSocket(), b = UdpSocket();
  int rcvbuf = 1 << 20;
  setsockopt(b, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  sockaddr_in to = Loopback(LocalPort(b));
  const sockaddr* top = reinterpret_cast<const sockaddr*>(&to);
  Boundaries(a, b, top, sizeof to, true);
  Say("== UDP truncation");
  Truncation(a, b, top, sizeof to);
  Say("== UDP blocking recv");
  BlockingRecvGetsOneMessage(a, b, top, sizeof to);
  Say("== UDP connected: send/recv, and a zero-length message is not EOF");
  sockaddr_in back = Loopback(LocalPort(a));
  Show(connect(b, reinterpret_cast<sockaddr*>(&back), sizeof back), "connect");
  Show(connect(a, top, sizeof to), "connect");
  char buf[16];
  Show(send(a, "", 0, 0), "send 0");
  Show(send(a, "z", 1, 0), "send 1");
  Show(recv(b, buf, sizeof buf, 0), "recv");
  Show(recv(b, buf, sizeof buf, 0), "recv");
  close(a);
  close(b);

  Say("== unix datagram socketpair");
  int sv[2];
  Must(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), "socketpair");
  int big = 1 << 20;
  setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &big, sizeof big);
  Boundaries(sv[0], sv[1], nullptr, 0, false);
  Say("== unix datagram truncation");
  Truncation(sv[0], sv[1], nullptr, 0);
  Say("== unix datagram blocking recv");
  BlockingRecvGetsOneMessage(sv[0], sv[1], nullptr, 0);

  Say("== unix datagram: a blocking send to a full queue waits for the reader");
  {
    constexpr int kMessages = 300;
    std::thread reader([&] {
      SleepMs(100);
      char in[256];
      uint32_t sum = 2166136261u;
      int count = 0;
      for (int i = 0; i < kMessages; ++i) {
        ssize_t n = recv(sv[1], in, sizeof in, 0);
        if (n <= 0) break;
        sum = Checksum(in, n, sum);
        ++count;
        if (i % 50 == 0) SleepMs(5);
      }
      uint32_t want = 2166136261u;
      for (int i = 0; i < kMessages; ++i) {
        char msg[256];
        Pattern(msg, 1 + i % 200, i);
        want = Checksum(msg, 1 + i % 200, want);
      }
      Say("reader got %d messages, all intact and in order: %s", count, YesNo(sum == want));
    });
    int sent = 0;
    for (int i = 0; i < kMessages; ++i) {
      char msg[256];
      Pattern(msg, 1 + i % 200, i);
      if (send(sv[0], msg, 1 + i % 200, 0) != 1 + i % 200) break;
      ++sent;
    }
    Say("blocking sends completed: %d", sent);
    reader.join();
  }
  close(sv[0]);
  close(sv[1]);

  Say("== unix datagram: recv after the peer closed");
  Must(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), "socketpair");
  Show(send(sv[0], "last", 4, 0), "send 4");
  close(sv[0]);
  Show(recv(sv[1], buf, sizeof buf, 0), "recv");
  // A unix datagram socket is not shut down when its peer closes: recv keeps waiting.
  SetTimeout(sv[1], SO_RCVTIMEO, 150);
  Stopwatch sw;
  Show(recv(sv[1], buf, sizeof buf, 0), "recv after the peer closed, SO_RCVTIMEO 150 ms");
  Say("recv %s", sw.Waited(150));
  Show(send(sv[1], "x", 1, MSG_NOSIGNAL), "send to the closed peer");
  close(sv[1]);
  return 0;
}
