// Sending on a connection the peer has closed fails with EPIPE and raises SIGPIPE, unless the
// call passes MSG_NOSIGNAL; write, writev and sendmsg behave like send. With the default
// disposition SIGPIPE terminates the process.
#include <signal.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <thread>

#include "loopback.h"

using namespace conf;

namespace {

volatile sig_atomic_t sigpipes = 0;

void OnSigpipe(int) { sigpipes = sigpipes + 1; }

// A connection whose peer has closed and answered our data with a RST (state CLOSE): every send
// from here on is EPIPE.
int BrokenConnection() {
  Pair p = TcpPair();
  close(p.server);
  // The first send after the peer's FIN still succeeds; the peer answers it with a RST.
  Show(send(p.client, "first", 5, MSG_NOSIGNAL), "send after peer close (FIN only so far)");
  WaitTcpState(p.client, TCP_CLOSE);
  return p.client;
}

void ReportSignals(int before) { Say("SIGPIPE raised: %d", static_cast<int>(sigpipes) - before); }

}  // namespace

int main() {
  struct sigaction sa {};
  sa.sa_handler = OnSigpipe;
  sigemptyset(&sa.sa_mask);
  Must(sigaction(SIGPIPE, &sa, nullptr), "sigaction");

  Say("== with a SIGPIPE handler");
  int fd = BrokenConnection();
  int before = sigpipes;
  Show(send(fd, "x", 1, 0), "send");
  ReportSignals(before);
  before = sigpipes;
  Show(send(fd, "x", 1, MSG_NOSIGNAL), "send MSG_NOSIGNAL");
  ReportSignals(before);
  before = sigpipes;
  Show(write(fd, "x", 1), "write");
  ReportSignals(before);
  before = sigpipes;
  iovec iov[2] = {{const_cast<char*>("ab"), 2}, {const_cast<char*>("cd"), 2}};
  Show(writev(fd, iov, 2), "writev");
  ReportSignals(before);
  before = sigpipes;
  msghdr mh{};
  mh.msg_iov = iov;
  mh.msg_iovlen = 2;
  Show(sendmsg(fd, &mh, 0), "sendmsg");
  ReportSignals(before);
  before = sigpipes;
  Show(sendmsg(fd, &mh, MSG_NOSIGNAL), "sendmsg MSG_NOSIGNAL");
  ReportSignals(before);
  before = sigpipes;
  Show(sendto(fd, "x", 1, 0, nullptr, 0), "sendto");
  ReportSignals(before);
  char buf[8];
  Show(recv(fd, buf, sizeof buf, 0), "recv on the broken connection");
  close(fd);

  Say("== blocked writer when the peer resets");
  {
    Pair p = TcpPair();
    int small = 4096;
    setsockopt(p.client, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    before = sigpipes;
    std::thread killer([&] {
      // Once bytes reach the peer, the 4 MiB send is under way and cannot finish (nobody
      // reads), so the reset always lands inside it, however late this thread runs.
      WaitQueued(p.server, 1);
      SleepMs(50);
      linger l{1, 0};
      setsockopt(p.server, SOL_SOCKET, SO_LINGER, &l, sizeof l);
      close(p.server);
    });
    static char big[4 << 20];
    ssize_t n = send(p.client, big, sizeof big, 0);
    int err = errno;
    // Either a partial count (some bytes went out before the reset) or an error; print which.
    if (n < 0) {
      Say("blocked send of 4 MiB -> -1 %s", ErrnoName(err));
    } else {
      Say("blocked send of 4 MiB -> %s", n > 0 && n < static_cast<ssize_t>(sizeof big)
                                             ? "a partial count"
                                             : "an unexpected count");
    }
    Show(send(p.client, "x", 1, 0), "next send");
    Say("SIGPIPE raised: %s", sigpipes - before > 0 ? "at least once" : "never");
    killer.join();
    close(p.client);
  }

  Say("== with SIGPIPE ignored");
  signal(SIGPIPE, SIG_IGN);
  fd = BrokenConnection();
  Show(send(fd, "x", 1, 0), "send");
  Show(write(fd, "x", 1), "write");
  close(fd);

  Say("== with the default disposition SIGPIPE terminates");
  fd = BrokenConnection();
  pid_t child = fork();
  if (child == 0) {
    signal(SIGPIPE, SIG_DFL);
    send(fd, "x", 1, 0);
    _exit(0);
  }
  int status = 0;
  Must(waitpid(child, &status, 0), "waitpid");
  if (WIFSIGNALED(status)) {
    Say("child send: terminated by %s", sigabbrev_np(WTERMSIG(status)));
  } else {
    Say("child send: exited %d", WEXITSTATUS(status));
  }
  child = fork();
  if (child == 0) {
    signal(SIGPIPE, SIG_DFL);
    ssize_t r = send(fd, "x", 1, MSG_NOSIGNAL);
    _exit(r < 0 && errno == EPIPE ? 42 : 1);
  }
  Must(waitpid(child, &status, 0), "waitpid");
  Say("child send MSG_NOSIGNAL: %s",
      WIFEXITED(status) && WEXITSTATUS(status) == 42 ? "EPIPE, survived" : "UNEXPECTED");
  close(fd);
  return 0;
}
