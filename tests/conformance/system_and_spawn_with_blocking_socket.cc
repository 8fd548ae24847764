// system() and posix_spawn() while blocking sockets exist (and have waited): the children run
// and exit normally, a spawned shell can write to an inherited socket, and the parent's sockets
// keep blocking afterwards.
#include <spawn.h>
#include <sys/wait.h>

#include <thread>

#include "loopback.h"
#include "parked.h"

extern char** environ;

using namespace conf;

namespace {

void BlockingRecv(int fd, int peer, const char* what) {
  Announcer parked;
  std::thread sender([&] {
    parked.WaitParked(30);
    SendStr(peer, "ping");
  });
  char buf[16];
  parked.Announce();
  long n = Show(recv(fd, buf, sizeof buf, 0), "%s", what);
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  sender.join();
}

void ShowStatus(const char* what, int status) {
  if (WIFEXITED(status)) {
    Say("%s: exited %d", what, WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    Say("%s: terminated by %s", what, sigabbrev_np(WTERMSIG(status)));
  } else {
    Say("%s: status %#x", what, status);
  }
}

}  // namespace

int main() {
  Pair p = TcpPair();
  uint16_t port;
  int listener = TcpListener(4, &port);
  BlockingRecv(p.server, p.client, "blocking recv before the children");

  Say("== system()");
  ShowStatus("system(\"true\")", system("true"));
  ShowStatus("system(\"exit 3\")", system("exit 3"));
  BlockingRecv(p.server, p.client, "blocking recv after system()");

  Say("== posix_spawn");
  pid_t pid;
  char* true_argv[] = {const_cast<char*>("/bin/true"), nullptr};
  ShowRc(posix_spawn(&pid, "/bin/true", nullptr, nullptr, true_argv, environ),
         "posix_spawn /bin/true");
  int status = 0;
  waitpid(pid, &status, 0);
  ShowStatus("/bin/true", status);

  Say("== a spawned shell writes to an inherited socket");
  char cmd[128];
  snprintf(cmd, sizeof cmd, "printf 'from sh' >&%d", p.client);
  char* sh_argv[] = {const_cast<char*>("/bin/sh"), const_cast<char*>("-c"), cmd, nullptr};
  ShowRc(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, sh_argv, environ), "posix_spawn sh");
  char buf[32];
  long n = Show(recv(p.server, buf, 7, MSG_WAITALL), "blocking recv 7 MSG_WAITALL");
  Say("got '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  waitpid(pid, &status, 0);
  ShowStatus("sh", status);

  Say("== a spawned shell reads from an inherited socket (a blocking read in the child)");
  snprintf(cmd, sizeof cmd, "head -c 5 <&%d", p.server);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  int out[2];
  Must(pipe(out), "pipe");
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_addclose(&fa, out[0]);
  ShowRc(posix_spawn(&pid, "/bin/sh", &fa, nullptr, sh_argv, environ), "posix_spawn sh");
  close(out[1]);
  SleepMs(50);
  Show(send(p.client, "12345", 5, 0), "send 5");
  n = read(out[0], buf, sizeof buf);
  Say("child printed '%.*s'", static_cast<int>(n > 0 ? n : 0), buf);
  waitpid(pid, &status, 0);
  ShowStatus("sh", status);
  posix_spawn_file_actions_destroy(&fa);
  close(out[0]);

  Say("== the inherited listener still accepts in the parent; it stays blocking");
  snprintf(cmd, sizeof cmd, "true");
  ShowRc(posix_spawn(&pid, "/bin/sh", nullptr, nullptr, sh_argv, environ),
         "posix_spawn sh -c true");
  waitpid(pid, &status, 0);
  Say("listener blocking: %s", YesNo(!HasNonblock(listener)));
  int c = TcpConnect(port);
  int a = ShowOk(accept(listener, nullptr, nullptr), "accept");
  close(a);
  close(c);
  BlockingRecv(p.server, p.client, "blocking recv at the end");
  Say("socket blocking: %s", YesNo(!HasNonblock(p.server)));
  close(listener);
  CloseBoth(p);
  return 0;
}
