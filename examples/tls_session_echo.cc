// tls_session_echo: a thread-per-connection echo server that keeps its connection's state in
// thread-local storage, as many legacy servers keep "the current session" (issue 14).
//
// Each connection thread puts its session (the socket, a request counter, a C++ object with a
// constructor and a destructor) in thread_local variables, and every step after a blocking recv
// reads the socket back from there. With one copy per thread that is correct; if two connections
// shared a copy (fibers on one worker without per-fiber TLS), a reply would go to whichever
// connection stored its socket last, and the client would see another connection's bytes.
// SIGTERM/SIGINT stop it; it then waits (up to 10 s) for the connection threads still running,
// whose peers have usually hung up by then, and prints how many sessions were opened and closed:
// every session constructed is destroyed exactly once, so the two numbers are equal unless a
// connection is still open (or a thread_local destructor was lost or ran twice).
#include <errno.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cxxopts.hpp>
#include <string>
#include <thread>

#include "common/errno_name.h"
#include "common/listen_socket.h"
#include "common/send_all.h"
#include "common/stop_signal.h"

namespace {

std::atomic<long> g_opened{0};
std::atomic<long> g_closed{0};

// The connection's session: constructed on the thread's first use, destroyed at its exit.
struct Session {
  Session() { g_opened.fetch_add(1, std::memory_order_relaxed); }
  ~Session() { g_closed.fetch_add(1, std::memory_order_relaxed); }
  int fd = -1;
  long requests = 0;
  // A heap-owning member: its destructor must run once, on its thread. Longer than libstdc++'s
  // 15-byte small-string buffer, so it owns heap memory: a short string points into itself, and
  // after a sysmon handoff that address would name the old OS thread's copy (README, limits).
  std::string peer_note;
};
thread_local Session t_session;
__thread char t_buffer[16384];  // the per-thread receive buffer

void ServeEcho(int fd) {
  t_session.fd = fd;
  t_session.peer_note = "the connection on fd " + std::to_string(fd);
  for (;;) {
    const ssize_t n = recv(t_session.fd, t_buffer, sizeof(t_buffer), 0);  // parks
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "recv: %s\n", examples::ErrnoName(errno).c_str());
      break;
    }
    ++t_session.requests;
    // Read back from the session after the park: the connection this thread serves.
    if (!examples::SendAll(t_session.fd, t_buffer, static_cast<std::size_t>(n))) {
      std::fprintf(stderr, "send: %s\n", examples::ErrnoName(errno).c_str());
      break;
    }
  }
  close(t_session.fd);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("tls_session_echo",
                           "Thread-per-connection echo server with its session in thread_local");
  options.add_options()("host", "address to listen on",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to listen on (0 = pick a free port)",
      cxxopts::value<int>()->default_value("0"))(
      "backlog", "listen backlog", cxxopts::value<int>()->default_value("1024"))("h,help",
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
  signal(SIGPIPE, SIG_IGN);
  const int listen_fd =
      examples::OpenBoundSocket(args["host"].as<std::string>(), args["port"].as<int>(), SOCK_STREAM,
                                args["backlog"].as<int>());
  examples::StopOnSignal(listen_fd);
  examples::AnnounceListening(listen_fd);
  for (;;) {
    const int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) {
      if (examples::StopRequested()) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::fprintf(stderr, "accept: %s\n", examples::ErrnoName(errno).c_str());
      return 1;
    }
    examples::ScopedStopSignalsBlocked blocked;
    std::thread(ServeEcho, fd).detach();
  }
  close(listen_fd);
  // Connection threads are detached: give those whose peer has closed time to see EOF and exit
  // (destroying their session) before counting.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g_closed.load() < g_opened.load() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  std::printf("sessions opened %ld closed %ld\n", g_opened.load(), g_closed.load());
  return 0;
}
