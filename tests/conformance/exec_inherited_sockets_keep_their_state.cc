// Sockets inherited across fork+exec (inetd style: the socket is the new program's stdin) keep
// the state their open file carries: a SO_RCVTIMEO set before exec bounds recv in the new
// program, an O_NONBLOCK set before exec makes recv fail with EAGAIN at once, a plain blocking
// socket waits for data, and a listener accepts. The new program never made these sockets, so
// whatever tracks them must learn their state from the kernel.
#include <sys/wait.h>

#include "loopback.h"

using namespace conf;

namespace {

constexpr int kTimeoutMs = 150;
// The fds the child finds its sockets on.
constexpr int kTimedFd = 0, kNonblockFd = 3, kBlockingFd = 4, kListenerFd = 5;

int Child() {
  char buf[16];
  Say("child: stdin F_GETFL O_NONBLOCK %s", YesNo(HasNonblock(kTimedFd)));
  timeval tv{};
  socklen_t len = sizeof tv;
  Show(getsockopt(kTimedFd, SOL_SOCKET, SO_RCVTIMEO, &tv, &len), "child: getsockopt(stdin)");
  Say("child: stdin SO_RCVTIMEO = {%ld s, %ld us}", static_cast<long>(tv.tv_sec),
      static_cast<long>(tv.tv_usec));
  Stopwatch sw;
  Show(recv(kTimedFd, buf, sizeof buf, 0), "child: recv on stdin");
  Say("child: recv on stdin %s", sw.Waited(kTimeoutMs));
  sw = Stopwatch();
  Show(read(kTimedFd, buf, sizeof buf), "child: read on stdin");
  Say("child: read on stdin %s", sw.Waited(kTimeoutMs));

  Say("child: fd 3 F_GETFL O_NONBLOCK %s", YesNo(HasNonblock(kNonblockFd)));
  sw = Stopwatch();
  Show(recv(kNonblockFd, buf, sizeof buf, 0), "child: recv on fd 3");
  Say("child: recv on fd 3 returned %s of 1000 ms", sw.Before(1000));

  long n = Show(recv(kBlockingFd, buf, sizeof buf, 0), "child: blocking recv on fd 4");
  Say("child: got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  Show(send(kBlockingFd, "ack", 3, 0), "child: send on fd 4");

  int fd = ShowOk(accept(kListenerFd, nullptr, nullptr), "child: blocking accept on fd 5");
  n = Show(recv(fd, buf, sizeof buf, 0), "child: recv on the accepted socket");
  Say("child: got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  close(fd);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "child") == 0) return Child();

  Pair timed = TcpPair(), nonblock = TcpPair(), blocking = TcpPair();
  uint16_t port;
  int listener = TcpListener(4, &port);
  SetTimeout(timed.server, SO_RCVTIMEO, kTimeoutMs);
  Must(fcntl(nonblock.server, F_SETFL, fcntl(nonblock.server, F_GETFL) | O_NONBLOCK), "F_SETFL");
  {
    // The parent's own blocking calls wait once on each, before the child inherits them.
    char c;
    Show(recv(timed.server, &c, 1, 0), "parent: recv with SO_RCVTIMEO");
    Show(recv(nonblock.server, &c, 1, 0), "parent: recv on the O_NONBLOCK socket");
  }
  pid_t child = fork();
  if (child == 0) {
    // dup2 clears FD_CLOEXEC; targets are free since stdin is /dev/null and fds 3.. are ours.
    int fds[4] = {dup(timed.server), dup(nonblock.server), dup(blocking.server), dup(listener)};
    int targets[4] = {kTimedFd, kNonblockFd, kBlockingFd, kListenerFd};
    for (int i = 0; i < 4; ++i) {
      if (dup2(fds[i], targets[i]) < 0) _exit(20);
    }
    for (int i = 0; i < 4; ++i) {
      if (fds[i] > kListenerFd) close(fds[i]);
    }
    char self[] = "/proc/self/exe";
    char arg[] = "child";
    char* args[] = {self, arg, nullptr};
    execv(self, args);
    _exit(21);
  }
  // Data for the child's blocking recv; if the child is not waiting yet, it finds it queued.
  SleepMs(100);
  SendStr(blocking.client, "hello");
  char buf[8];
  RecvExactly(blocking.client, buf, 3);
  int c = TcpConnect(port);
  SendStr(c, "world");
  int status = 0;
  Must(waitpid(child, &status, 0), "waitpid");
  Say("parent: child exited %s", WIFEXITED(status) && WEXITSTATUS(status) == 0 ? "0" : "BADLY");
  Say("parent: the O_NONBLOCK socket still non-blocking, the timed one still blocking: %s",
      YesNo(HasNonblock(nonblock.server) && !HasNonblock(timed.server)));
  close(c);
  close(listener);
  CloseBoth(timed);
  CloseBoth(nonblock);
  CloseBoth(blocking);
  return 0;
}
