// deep_idle_echo: a thread-per-connection echo server whose first request on each connection
// runs a deep call, as a TLS handshake or a request parser would, before the connection settles
// into echoing (and, in the benchmark, into sitting idle in a blocking recv).
//
// The deep call is --depth levels of a recursive function with a 1 KiB local array that every
// level writes and reads back (64 levels: 64 KiB of stack). Natively those pages stay resident in
// the connection thread's stack for as long as the thread lives; the benchmark's "idle
// connections after a deep first request" section measures what each connection then costs
// (scripts/bench/deep_idle.sh). Otherwise the same server as echo_threads: blocking accept, one
// thread per connection, blocking recv/send.
#include <errno.h>
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

int g_depth = 64;

// One level of the deep call: its 1 KiB frame is written and read back, so every page of the
// call's stack is really touched (volatile: the compiler may not drop or shrink the array).
__attribute__((noinline)) unsigned DeepCall(int level) {
  volatile unsigned char frame[1024];
  for (unsigned i = 0; i < sizeof frame; ++i) frame[i] = static_cast<unsigned char>(level ^ i);
  unsigned sum = level > 1 ? DeepCall(level - 1) : 0;
  for (unsigned i = 0; i < sizeof frame; ++i) sum += frame[i];
  return sum;
}

void ServeEcho(int fd) {
  char buf[16384];
  bool first = true;
  for (;;) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "recv: %s\n", examples::ErrnoName(errno).c_str());
      break;
    }
    if (first) {
      first = false;
      // The result only has to be used: the call is there for the stack it touches.
      if (DeepCall(g_depth) == 1) std::fprintf(stderr, "deep call: unlikely sum\n");
    }
    if (!examples::SendAll(fd, buf, static_cast<std::size_t>(n))) {
      std::fprintf(stderr, "send: %s\n", examples::ErrnoName(errno).c_str());
      break;
    }
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options(
      "deep_idle_echo", "Thread-per-connection echo server whose first request runs a deep call");
  options.add_options()("host", "address to listen on",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to listen on (0 = pick a free port)",
      cxxopts::value<int>()->default_value("0"))("backlog", "listen backlog",
                                                 cxxopts::value<int>()->default_value("128"))(
      "depth", "levels of the first request's deep call, 1 KiB of stack each",
      cxxopts::value<int>()->default_value("64"))("h,help", "print usage");
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
  g_depth = args["depth"].as<int>();
  signal(SIGPIPE, SIG_IGN);  // a peer that resets must cost one connection, not the server

  const int listen_fd =
      examples::OpenBoundSocket(args["host"].as<std::string>(), args["port"].as<int>(), SOCK_STREAM,
                                args["backlog"].as<int>());
  examples::StopOnSignal(listen_fd, nullptr);
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
  // Connection threads still blocked in recv end with the process; their peers see the close.
  close(listen_fd);
  return 0;
}
