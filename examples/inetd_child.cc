// inetd_child: an inetd-style super-server for one service.
//
// A blocking accept loop forks a child per connection; the child dup2()s the connection onto
// its stdin and stdout and execs --exec (by default inetd_echo_child next to this binary, or
// e.g. /bin/cat), which talks to the client without knowing it holds a socket. The parent
// closes its copy and reaps children from a SIGCHLD handler installed with SA_RESTART, the
// way inetd does, so accept is restarted rather than failing with EINTR.
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cxxopts.hpp>
#include <string>
#include <vector>

#include "common/errno_name.h"
#include "common/listen_socket.h"
#include "common/stop_signal.h"

namespace {

void ReapChildren(int) {
  const int saved_errno = errno;
  while (waitpid(-1, nullptr, WNOHANG) > 0) {
  }
  errno = saved_errno;
}

// The directory this executable lives in, to find the default child program beside it.
std::string SelfDir() {
  char path[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 1);
  if (n <= 0) return ".";
  std::string s(path, static_cast<std::size_t>(n));
  return s.substr(0, s.rfind('/'));
}

[[noreturn]] void ExecChild(int conn_fd, int listen_fd, const std::vector<std::string>& argv) {
  // The child must not hold the listener: a stuck child would keep the port open after the
  // server exits.
  close(listen_fd);
  if (dup2(conn_fd, STDIN_FILENO) < 0 || dup2(conn_fd, STDOUT_FILENO) < 0) _exit(126);
  if (conn_fd > STDOUT_FILENO) close(conn_fd);
  signal(SIGPIPE, SIG_DFL);  // exec keeps ignored signals ignored; give the child the default
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  execv(args[0], args.data());
  std::fprintf(stderr, "exec %s: %s\n", args[0], examples::ErrnoName(errno).c_str());
  _exit(127);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("inetd_child",
                           "inetd-style server: fork and exec a child per connection");
  options.add_options()("host", "address to listen on",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to listen on (0 = pick a free port)",
      cxxopts::value<int>()->default_value("0"))("backlog", "listen backlog",
                                                 cxxopts::value<int>()->default_value("128"))(
      "exec",
      "program run per connection with the socket as stdin/stdout "
      "(default: inetd_echo_child beside this binary)",
      cxxopts::value<std::string>())("arg", "argument passed to the program (repeatable)",
                                     cxxopts::value<std::vector<std::string>>())("h,help",
                                                                                 "print usage");
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    std::fprintf(stderr, "%s\n%s", e.what(), options.help().c_str());
    return 2;
  }
  if (args.count("help")) {
    std::printf("%s", options.help().c_str());
    return 0;
  }
  std::vector<std::string> child_argv{args.count("exec") ? args["exec"].as<std::string>()
                                                         : SelfDir() + "/inetd_echo_child"};
  if (args.count("arg")) {
    for (const std::string& a : args["arg"].as<std::vector<std::string>>()) child_argv.push_back(a);
  }
  if (access(child_argv[0].c_str(), X_OK) != 0) {
    std::fprintf(stderr, "cannot execute %s: %s\n", child_argv[0].c_str(),
                 examples::ErrnoName(errno).c_str());
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = ReapChildren;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, nullptr);

  const int listen_fd =
      examples::OpenBoundSocket(args["host"].as<std::string>(), args["port"].as<int>(), SOCK_STREAM,
                                args["backlog"].as<int>());
  examples::StopOnSignal(listen_fd);
  examples::AnnounceListening(listen_fd);

  while (!examples::StopRequested()) {
    const int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) {
      if (examples::StopRequested()) break;
      if (errno == EINTR) {
        // SIGCHLD is SA_RESTART, so the kernel restarts accept after it; saying so on stderr
        // lets the regression suite notice a runtime that does not.
        std::fprintf(stderr, "accept: EINTR without a stop request\n");
        continue;
      }
      if (errno == ECONNABORTED) continue;
      std::fprintf(stderr, "accept: %s\n", examples::ErrnoName(errno).c_str());
      return 1;
    }
    const pid_t pid = fork();
    if (pid == 0) {
      signal(SIGTERM, SIG_DFL);
      signal(SIGINT, SIG_DFL);
      signal(SIGCHLD, SIG_DFL);
      ExecChild(fd, listen_fd, child_argv);
    }
    if (pid < 0) std::fprintf(stderr, "fork: %s\n", examples::ErrnoName(errno).c_str());
    close(fd);
  }
  close(listen_fd);
  return 0;
}
