// SO_RCVTIMEO bounds a blocking receive: recv, read, recvmsg and readv with nothing to read fail
// with EAGAIN once the timeout has passed (not before, not much after); data arriving before the
// timeout is returned at once. getsockopt reports the timeout as the kernel stored it (rounded
// to its clock tick), edge values included.
#include <sys/uio.h>

#include <thread>

#include "loopback.h"

using namespace conf;

namespace {

constexpr int kTimeoutMs = 200;

void ShowTimeout(int fd, int optname, const char* name) {
  timeval tv{-7, -7};
  socklen_t len = sizeof tv;
  Show(getsockopt(fd, SOL_SOCKET, optname, &tv, &len), "getsockopt(%s)", name);
  Say("%s = {%ld s, %ld us}, optlen %u", name, static_cast<long>(tv.tv_sec),
      static_cast<long>(tv.tv_usec), static_cast<unsigned>(len));
}

void SetAndShow(int fd, long sec, long usec) {
  timeval tv{sec, usec};
  Show(setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv),
       "setsockopt(SO_RCVTIMEO, {%ld, %ld})", sec, usec);
  ShowTimeout(fd, SO_RCVTIMEO, "SO_RCVTIMEO");
}

}  // namespace

int main() {
  Pair p = TcpPair();
  char buf[64];

  Say("== getsockopt reports what was set");
  ShowTimeout(p.server, SO_RCVTIMEO, "SO_RCVTIMEO");
  ShowTimeout(p.server, SO_SNDTIMEO, "SO_SNDTIMEO");
  SetAndShow(p.server, 0, kTimeoutMs * 1000);
  SetAndShow(p.server, 1, 500000);
  SetAndShow(p.server, 0, 123457);  // not a whole number of ticks
  SetAndShow(p.server, 0, 1);
  SetAndShow(p.server, 0, 1000000);  // usec out of range
  SetAndShow(p.server, 0, -1);
  SetAndShow(p.server, 3000000, 0);
  SetAndShow(p.server, 0, 0);  // no timeout
  {
    timeval tv{0, kTimeoutMs * 1000};
    Show(setsockopt(p.server, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv), "setsockopt(SO_SNDTIMEO)");
    ShowTimeout(p.server, SO_SNDTIMEO, "SO_SNDTIMEO");
    ShowTimeout(p.server, SO_RCVTIMEO, "SO_RCVTIMEO");
    Show(setsockopt(p.server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv - 1),
         "setsockopt(SO_RCVTIMEO, optlen too small)");
    Show(setsockopt(p.server, SOL_SOCKET, SO_RCVTIMEO, &tv, 4),
         "setsockopt(SO_RCVTIMEO, optlen 4)");
    ShowTimeout(p.server, SO_RCVTIMEO, "SO_RCVTIMEO");
    timeval out{-7, -7};
    socklen_t len = 8;
    Show(getsockopt(p.server, SOL_SOCKET, SO_SNDTIMEO, &out, &len),
         "getsockopt(SO_SNDTIMEO, optlen 8)");
    Say("optlen now %u", static_cast<unsigned>(len));
    len = 64;
    char wide[64];
    Show(getsockopt(p.server, SOL_SOCKET, SO_SNDTIMEO, wide, &len),
         "getsockopt(SO_SNDTIMEO, optlen 64)");
    Say("optlen now %u", static_cast<unsigned>(len));
  }

  Say("== a receive with nothing to read fails after the timeout");
  SetTimeout(p.server, SO_RCVTIMEO, kTimeoutMs);
  {
    Stopwatch sw;
    Show(recv(p.server, buf, sizeof buf, 0), "recv");
    Say("recv %s", sw.Waited(kTimeoutMs));
  }
  {
    Stopwatch sw;
    Show(read(p.server, buf, sizeof buf), "read");
    Say("read %s", sw.Waited(kTimeoutMs));
  }
  {
    iovec iov{buf, sizeof buf};
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    Stopwatch sw;
    Show(recvmsg(p.server, &mh, 0), "recvmsg");
    Say("recvmsg %s", sw.Waited(kTimeoutMs));
    sw = Stopwatch();
    Show(readv(p.server, &iov, 1), "readv");
    Say("readv %s", sw.Waited(kTimeoutMs));
  }
  {
    Stopwatch sw;
    Show(recv(p.server, buf, sizeof buf, MSG_PEEK), "recv MSG_PEEK");
    Say("recv MSG_PEEK %s", sw.Waited(kTimeoutMs));
  }
  Say("the timeout does not make the socket non-blocking: %s", YesNo(!HasNonblock(p.server)));

  Say("== data arriving before the timeout is returned at once");
  SetTimeout(p.server, SO_RCVTIMEO, 5000);
  {
    std::thread sender([&] {
      SleepMs(50);
      SendStr(p.client, "in time");
    });
    Stopwatch sw;
    ssize_t n = Show(recv(p.server, buf, sizeof buf, 0), "recv with a 5 s timeout");
    Say("got '%.*s' %s", static_cast<int>(n > 0 ? n : 0), buf, sw.Before(5000));
    sender.join();
  }

  Say("== a tiny timeout still times out");
  SetTimeout(p.server, SO_RCVTIMEO, 1);
  Show(recv(p.server, buf, sizeof buf, 0), "recv with a 1 ms timeout");

  Say("== a negative timeout means: do not wait");
  {
    timeval tv{-1, 0};
    Show(setsockopt(p.server, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv),
         "setsockopt(SO_RCVTIMEO, {-1, 0})");
    ShowTimeout(p.server, SO_RCVTIMEO, "SO_RCVTIMEO");
    Stopwatch sw;
    Show(recv(p.server, buf, sizeof buf, 0), "recv");
    Say("recv returned %s of 1000 ms", sw.Before(1000));
  }

  Say("== EOF beats the timeout");
  SetTimeout(p.server, SO_RCVTIMEO, kTimeoutMs);
  shutdown(p.client, SHUT_WR);
  Show(recv(p.server, buf, sizeof buf, 0), "recv after peer shutdown");
  CloseBoth(p);

  Say("== UDP recvfrom times out too");
  int udp = UdpSocket();
  SetTimeout(udp, SO_RCVTIMEO, kTimeoutMs);
  {
    Stopwatch sw;
    Show(recvfrom(udp, buf, sizeof buf, 0, nullptr, nullptr), "recvfrom");
    Say("recvfrom %s", sw.Waited(kTimeoutMs));
  }
  close(udp);
  return 0;
}
