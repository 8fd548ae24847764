// A prefork server: the parent listens, forks 3 children that each block in accept on the
// inherited listener, then connects 6 times. Every connection is answered exactly once and by
// exactly one child; which child serves which connection is the kernel's choice, so only the
// sorted results are printed.
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <string>
#include <vector>

#include "loopback.h"

using namespace conf;

namespace {
constexpr int kChildren = 3;
constexpr int kConnections = 6;
}  // namespace

int main() {
  uint16_t port;
  int listener = TcpListener(16, &port);
  int served[2];  // children write one byte per served connection id
  Must(pipe(served), "pipe");
  std::vector<pid_t> children;
  for (int k = 0; k < kChildren; ++k) {
    pid_t pid = fork();
    if (pid == 0) {
      close(served[0]);
      for (;;) {
        int fd = accept(listener, nullptr, nullptr);
        if (fd < 0) {
          if (errno == EINTR) continue;
          _exit(10);
        }
        unsigned char id;
        if (recv(fd, &id, 1, MSG_WAITALL) != 1) _exit(11);
        char reply[2] = {static_cast<char>('a' + id), static_cast<char>('0' + k)};
        // Recorded before answering: once the parent has every answer it may SIGTERM us.
        if (write(served[1], &id, 1) != 1) _exit(13);
        if (send(fd, reply, 2, 0) != 2) _exit(12);
        close(fd);
      }
    }
    children.push_back(pid);
  }
  close(served[1]);

  std::vector<int> conns;
  for (int i = 0; i < kConnections; ++i) conns.push_back(TcpConnect(port));
  for (int i = 0; i < kConnections; ++i) {
    unsigned char id = static_cast<unsigned char>(i);
    SendAll(conns[i], &id, 1);
  }
  std::vector<std::string> results;
  for (int i = 0; i < kConnections; ++i) {
    char reply[8];
    ssize_t n = recv(conns[i], reply, sizeof reply, MSG_WAITALL);
    bool from_a_child = n == 2 && reply[1] >= '0' && reply[1] < '0' + kChildren;
    char line[128];
    snprintf(line, sizeof line, "connection %d: answer %s, from a child %s", i,
             n == 2 && reply[0] == 'a' + i ? "matches" : "WRONG", YesNo(from_a_child));
    results.push_back(line);
    close(conns[i]);
  }
  std::sort(results.begin(), results.end());
  for (const auto& r : results) Say("%s", r.c_str());

  for (pid_t pid : children) kill(pid, SIGTERM);
  int terminated = 0;
  for (pid_t pid : children) {
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM) ++terminated;
  }
  Say("children still serving until SIGTERM: %d of %d", terminated, kChildren);
  std::vector<int> count(kConnections, 0);
  unsigned char id;
  while (read(served[0], &id, 1) == 1) {
    if (id < kConnections) ++count[id];
  }
  for (int i = 0; i < kConnections; ++i) Say("connection %d served %d time(s)", i, count[i]);
  close(listener);
  return 0;
}
