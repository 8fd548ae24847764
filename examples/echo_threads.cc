// echo_threads: the textbook thread-per-connection echo server.
//
// One blocking accept loop; each accepted connection gets its own OS thread that echoes with
// blocking recv/send until the peer closes. Nothing is non-blocking and nothing polls: this is
// the kind of program gonet has to run unmodified.
#include <errno.h>
#include <semaphore.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cxxopts.hpp>
#include <thread>

#include "common/errno_name.h"
#include "common/listen_socket.h"
#include "common/send_all.h"
#include "common/stop_signal.h"

namespace {

// Free connection slots when --max-conns is set: the accept loop takes one before accepting
// and the connection thread returns it, so excess clients wait in the listen backlog.
sem_t g_slots;
bool g_limited = false;

// Wakes an accept loop waiting for a slot when a stop signal arrives (sem_post is
// async-signal-safe).
void WakeSlotWaiter() {
  if (g_limited) sem_post(&g_slots);
}

void ServeEcho(int fd) {
  char buf[16384];
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "recv: %s\n", examples::ErrnoName(errno).c_str());
      break;
    }
    if (!examples::SendAll(fd, buf, static_cast<std::size_t>(n))) {
      std::fprintf(stderr, "send: %s\n", examples::ErrnoName(errno).c_str());
      break;
    }
  }
  close(fd);
  if (g_limited) sem_post(&g_slots);
}

// Blocks until a connection slot is free. Returns false when a stop was requested instead.
bool TakeSlot() {
  if (!g_limited) return true;
  while (sem_wait(&g_slots) != 0) {
    if (examples::StopRequested()) return false;
  }
  return !examples::StopRequested();
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("echo_threads", "Thread-per-connection blocking echo server");
  options.add_options()("host", "address to listen on",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to listen on (0 = pick a free port)",
      cxxopts::value<int>()->default_value("0"))("backlog", "listen backlog",
                                                 cxxopts::value<int>()->default_value("128"))(
      "max-conns", "concurrent connections served (0 = no limit); others wait in the backlog",
      cxxopts::value<int>()->default_value("0"))("h,help", "print usage");
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
  const int max_conns = args["max-conns"].as<int>();
  if (max_conns > 0) {
    g_limited = true;
    sem_init(&g_slots, 0, static_cast<unsigned>(max_conns));
  }
  signal(SIGPIPE, SIG_IGN);  // a peer that resets must cost one connection, not the server

  const int listen_fd =
      examples::OpenBoundSocket(args["host"].as<std::string>(), args["port"].as<int>(), SOCK_STREAM,
                                args["backlog"].as<int>());
  examples::StopOnSignal(listen_fd, WakeSlotWaiter);
  examples::AnnounceListening(listen_fd);

  while (TakeSlot()) {
    const int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) {
      if (examples::StopRequested()) break;
      if (errno == EINTR || errno == ECONNABORTED) {
        if (g_limited) sem_post(&g_slots);
        continue;
      }
      std::fprintf(stderr, "accept: %s\n", examples::ErrnoName(errno).c_str());
      return 1;
    }
    examples::ScopedStopSignalsBlocked blocked;
    std::thread(ServeEcho, fd).detach();
  }
  // Connection threads still blocked in recv end with the process; their peers see the close.
  close(listen_fd);
  return 0;
}
