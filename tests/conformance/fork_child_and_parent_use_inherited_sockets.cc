// After fork, parent and child each do blocking IO on sockets both inherited (including ones
// whose blocking calls had already waited before the fork), and each wakes on its own
// connection: the child's waits do not depend on the parent's poller, nor the other way round.
// The child reports through a pipe; the parent prints its lines after its own.
#include <sys/wait.h>

#include <string>
#include <thread>

#include "loopback.h"
#include "parked.h"

using namespace conf;

namespace {

// Makes fd's first blocking recv really wait, so whatever gonet arms for it exists before fork.
void WaitOnceBeforeFork(int fd, int peer) {
  Announcer parked;
  std::thread sender([&] {
    parked.WaitParked(30);
    SendStr(peer, "w");
  });
  char c;
  parked.Announce();
  Show(recv(fd, &c, 1, 0), "blocking recv before fork");
  sender.join();
}

// Child-side transcript: collected in a string, written to the pipe at the end.
std::string child_lines;
void Note(const char* line, long r, int err) {
  char buf[256];
  if (r < 0) {
    snprintf(buf, sizeof buf, "child: %s -> -1 %s\n", line, ErrnoName(err));
  } else {
    snprintf(buf, sizeof buf, "child: %s -> %ld\n", line, r);
  }
  child_lines += buf;
}

}  // namespace

int main() {
  Pair one = TcpPair();  // the parent's connection after fork
  Pair two = TcpPair();  // the child's connection after fork
  WaitOnceBeforeFork(one.server, one.client);
  WaitOnceBeforeFork(two.server, two.client);
  uint16_t port;
  int listener = TcpListener(4, &port);
  int report[2];
  Must(pipe(report), "pipe");

  pid_t child = fork();
  if (child == 0) {
    close(report[0]);
    char buf[64];
    // Blocks until the parent, after its own exchange, sends on two.client.
    long r = recv(two.server, buf, sizeof buf, 0);
    Note("blocking recv on its connection", r, errno);
    r = send(two.server, buf, r > 0 ? r : 0, 0);
    Note("echo back", r, errno);
    // A blocking accept on the inherited listener; the parent connects.
    int fd = accept(listener, nullptr, nullptr);
    Note("blocking accept on the inherited listener", fd < 0 ? -1 : 0, errno);
    r = recv(fd, buf, 6, MSG_WAITALL);
    Note("recv 6 MSG_WAITALL, sent in two pieces", r, errno);
    SetTimeout(two.server, SO_RCVTIMEO, 150);
    Stopwatch sw;
    r = recv(two.server, buf, sizeof buf, 0);
    Note("recv with SO_RCVTIMEO 150 ms", r, errno);
    child_lines += std::string("child: ") + sw.Waited(150) + "\n";
    if (write(report[1], child_lines.data(), child_lines.size()) < 0) _exit(2);
    _exit(0);
  }
  close(report[1]);

  Say("== the parent does blocking IO on its connection while the child waits on its own");
  std::thread late([&] {
    SleepMs(50);
    SendStr(one.client, "for the parent");
  });
  char buf[64];
  Show(recv(one.server, buf, sizeof buf, 0), "parent blocking recv");
  late.join();
  Show(send(two.client, "to child", 8, 0), "parent sends to the child's connection");
  Show(recv(two.client, buf, 8, MSG_WAITALL), "parent blocking recv of the echo (8)");
  int c = TcpConnect(port);
  Show(send(c, "abc", 3, 0), "parent sends 3 to the child's accepted connection");
  SleepMs(30);
  Show(send(c, "def", 3, 0), "parent sends 3 more");

  int status = 0;
  Must(waitpid(child, &status, 0), "waitpid");
  std::string lines;
  for (;;) {
    ssize_t n = read(report[0], buf, sizeof buf);
    if (n <= 0) break;
    lines.append(buf, n);
  }
  if (!lines.empty() && lines.back() == '\n') lines.pop_back();
  Say("%s", lines.c_str());
  Say("child exited %s",
      WIFEXITED(status) ? (WEXITSTATUS(status) == 0 ? "0" : "non-zero") : "by a signal");

  Say("== the parent's sockets still work after the child exited");
  Show(send(one.client, "after", 5, 0), "send");
  Show(recv(one.server, buf, sizeof buf, 0), "parent blocking recv");
  close(c);
  close(listener);
  CloseBoth(one);
  CloseBoth(two);
  return 0;
}
