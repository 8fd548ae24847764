// dup, dup2, dup3 and fcntl(F_DUPFD/F_DUPFD_CLOEXEC) make fds that share one open file: its
// O_NONBLOCK and the socket's timeouts, set through one fd, show through every other, and the
// socket lives until the last fd is closed. FD_CLOEXEC belongs to each fd alone.
#include "loopback.h"

using namespace conf;

namespace {

void Flags(const char* name, int fd) {
  int fl = fcntl(fd, F_GETFL);
  int fdfl = fcntl(fd, F_GETFD);
  Say("%s: O_NONBLOCK %s, FD_CLOEXEC %s", name, YesNo(fl & O_NONBLOCK), YesNo(fdfl & FD_CLOEXEC));
}

void Timeout(const char* name, int fd, int optname) {
  timeval tv{};
  socklen_t len = sizeof tv;
  getsockopt(fd, SOL_SOCKET, optname, &tv, &len);
  Say("%s: %s = {%ld s, %ld us}", name, optname == SO_RCVTIMEO ? "SO_RCVTIMEO" : "SO_SNDTIMEO",
      static_cast<long>(tv.tv_sec), static_cast<long>(tv.tv_usec));
}

}  // namespace

int main() {
  Pair p = TcpPair();
  int a = p.server;
  int b = ShowOk(dup(a), "dup");
  int c = ShowOk(fcntl(a, F_DUPFD_CLOEXEC, 100), "fcntl(F_DUPFD_CLOEXEC, 100)");
  Say("F_DUPFD_CLOEXEC fd >= 100: %s", YesNo(c >= 100));
  int d = ShowOk(fcntl(a, F_DUPFD, 0), "fcntl(F_DUPFD, 0)");
  int e_target = ShowOk(socket(AF_INET, SOCK_DGRAM, 0), "socket (a dup3 target)");
  int e = ShowOk(dup3(a, e_target, O_CLOEXEC), "dup3(O_CLOEXEC) over an open fd");
  int f_target = 200;
  int f = ShowOk(dup2(a, f_target), "dup2 to 200");
  Say("dup2 returned its target: %s", YesNo(f == f_target));
  Show(dup2(a, a) == a ? 0 : -1, "dup2(fd, fd)");
  Show(dup3(a, a, 0), "dup3(fd, fd)");

  Say("== O_NONBLOCK set through one fd shows through all");
  Flags("a", a);
  Show(fcntl(a, F_SETFL, fcntl(a, F_GETFL) | O_NONBLOCK), "F_SETFL |O_NONBLOCK on a");
  Flags("b (dup)", b);
  Flags("c (F_DUPFD_CLOEXEC)", c);
  Flags("d (F_DUPFD)", d);
  Flags("e (dup3 O_CLOEXEC)", e);
  Flags("f (dup2)", f);
  char buf[16];
  {
    Stopwatch sw;
    Show(recv(c, buf, sizeof buf, 0), "recv on c");
    Say("returned %s of 1000 ms", sw.Before(1000));
  }
  int off = 0;
  Show(ioctl(b, FIONBIO, &off), "FIONBIO 0 on b");
  Flags("a", a);
  Flags("f (dup2)", f);

  Say("== timeouts set through one fd apply through all");
  constexpr int kTimeoutMs = 150;
  SetTimeout(d, SO_RCVTIMEO, kTimeoutMs);
  SetTimeout(e, SO_SNDTIMEO, kTimeoutMs + 50);
  Timeout("a", a, SO_RCVTIMEO);
  Timeout("b", b, SO_RCVTIMEO);
  Timeout("f", f, SO_SNDTIMEO);
  {
    Stopwatch sw;
    Show(recv(b, buf, sizeof buf, 0), "recv on b");
    Say("recv on b %s", sw.Waited(kTimeoutMs));
    sw = Stopwatch();
    Show(read(f, buf, sizeof buf), "read on f");
    Say("read on f %s", sw.Waited(kTimeoutMs));
  }
  Say("== a timeout set before dup applies to the new fd");
  int g = ShowOk(dup(a), "dup after the timeout was set");
  {
    Stopwatch sw;
    Show(recv(g, buf, sizeof buf, 0), "recv on it");
    Say("recv %s", sw.Waited(kTimeoutMs));
  }
  Say("== the socket lives until the last fd closes");
  Show(close(a), "close a");
  Show(close(b), "close b");
  Show(close(c), "close c");
  Show(send(p.client, "alive", 5, 0), "peer send");
  long n = Show(recv(d, buf, sizeof buf, 0), "recv on d");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  Show(recv(a, buf, sizeof buf, 0), "recv on closed a");
  Show(close(d), "close d");
  Show(close(e), "close e");
  Show(close(f), "close f");
  Show(send(p.client, "x", 1, MSG_NOSIGNAL), "peer send while g is open");
  Show(close(g), "close g");
  Show(recv(p.client, buf, sizeof buf, 0), "peer recv once all fds closed (x was unread: RST)");

  Say("== listener dups share O_NONBLOCK");
  uint16_t port;
  int l1 = TcpListener(4, &port);
  int l2 = ShowOk(dup(l1), "dup listener");
  Show(fcntl(l2, F_SETFL, fcntl(l2, F_GETFL) | O_NONBLOCK), "F_SETFL |O_NONBLOCK on the dup");
  Flags("original listener", l1);
  Show(accept(l1, nullptr, nullptr), "accept on the original, nothing pending");
  Show(fcntl(l1, F_SETFL, fcntl(l1, F_GETFL) & ~O_NONBLOCK), "clear O_NONBLOCK on the original");
  SetTimeout(l2, SO_RCVTIMEO, kTimeoutMs);
  Flags("dup listener", l2);
  {
    Stopwatch sw;
    Show(accept(l1, nullptr, nullptr), "accept on the original, timeout set on the dup");
    Say("accept %s", sw.Waited(kTimeoutMs));
  }
  close(l1);
  close(l2);
  close(p.client);
  return 0;
}
