// prefork: the Apache-1.3-style pre-forked server.
//
// The parent listens, forks --workers children and then only waits for them. Each child runs
// a blocking accept loop on the inherited listening socket and serves one echo connection at
// a time; the kernel hands each connection to one of the children blocked in accept. On
// SIGTERM or SIGINT the parent forwards SIGTERM to every child, reaps them and exits 0. A
// child that dies on its own is replaced, as a prefork server does.
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cxxopts.hpp>
#include <vector>

#include "common/errno_name.h"
#include "common/listen_socket.h"
#include "common/send_all.h"

namespace {

// The children's pids, for the parent's signal handler. Sized once before any child exists and
// then only written with SIGTERM/SIGINT blocked, so the handler never sees a torn update.
std::vector<pid_t> g_children;
volatile sig_atomic_t g_stop = 0;

void ForwardStop(int) {
  const int saved_errno = errno;
  g_stop = 1;
  for (pid_t pid : g_children) {
    if (pid > 0) kill(pid, SIGTERM);
  }
  errno = saved_errno;
}

void ServeEcho(int fd) {
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != ECONNRESET)
        std::fprintf(stderr, "recv: %s\n", examples::ErrnoName(errno).c_str());
      break;
    }
    if (!examples::SendAll(fd, buf, static_cast<std::size_t>(n))) break;
  }
  close(fd);
}

[[noreturn]] void WorkerLoop(int listen_fd) {
  for (;;) {
    const int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::fprintf(stderr, "worker %d accept: %s\n", getpid(), examples::ErrnoName(errno).c_str());
      _exit(1);
    }
    ServeEcho(fd);
  }
}

sigset_t StopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  return set;
}

// Forks one worker into slot `i`. Called with the stop signals blocked.
void SpawnWorker(int listen_fd, std::size_t i, const sigset_t& unblocked) {
  const pid_t pid = fork();
  if (pid < 0) {
    std::fprintf(stderr, "fork: %s\n", examples::ErrnoName(errno).c_str());
    return;
  }
  if (pid == 0) {
    // A worker dies of SIGTERM by default: it has nothing to flush, and the parent knows.
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    sigprocmask(SIG_SETMASK, &unblocked, nullptr);
    WorkerLoop(listen_fd);
  }
  g_children[i] = pid;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("prefork", "Pre-forked blocking echo server");
  options.add_options()("host", "address to listen on",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to listen on (0 = pick a free port)",
      cxxopts::value<int>()->default_value("0"))("backlog", "listen backlog",
                                                 cxxopts::value<int>()->default_value("128"))(
      "workers", "worker processes", cxxopts::value<int>()->default_value("4"))("h,help",
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
  const int workers = args["workers"].as<int>();
  if (workers < 1) {
    std::fprintf(stderr, "--workers must be at least 1\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  const int listen_fd =
      examples::OpenBoundSocket(args["host"].as<std::string>(), args["port"].as<int>(), SOCK_STREAM,
                                args["backlog"].as<int>());

  g_children.assign(static_cast<std::size_t>(workers), 0);
  const sigset_t stop_signals = StopSignals();
  sigset_t unblocked;
  sigprocmask(SIG_BLOCK, &stop_signals, &unblocked);
  struct sigaction sa {};
  sa.sa_handler = ForwardStop;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGINT, &sa, nullptr);
  for (std::size_t i = 0; i < g_children.size(); ++i) SpawnWorker(listen_fd, i, unblocked);
  // Announce only once the workers exist: connections queue in the backlog until one accepts.
  examples::AnnounceListening(listen_fd);
  sigprocmask(SIG_SETMASK, &unblocked, nullptr);

  std::size_t live = g_children.size();
  while (live > 0) {
    int status = 0;
    const pid_t pid = waitpid(-1, &status, 0);
    if (pid < 0) {
      if (errno == EINTR) continue;  // the stop handler ran; keep reaping
      if (errno == ECHILD) break;
      std::fprintf(stderr, "waitpid: %s\n", examples::ErrnoName(errno).c_str());
      return 1;
    }
    sigprocmask(SIG_BLOCK, &stop_signals, nullptr);
    for (std::size_t i = 0; i < g_children.size(); ++i) {
      if (g_children[i] != pid) continue;
      g_children[i] = 0;
      --live;
      if (!g_stop) {
        std::fprintf(stderr, "worker %d exited (status %d), replacing it\n", pid, status);
        SpawnWorker(listen_fd, i, unblocked);
        if (g_children[i] != 0) ++live;
      }
    }
    sigprocmask(SIG_SETMASK, &unblocked, nullptr);
  }
  close(listen_fd);
  return 0;
}
