// udp_echo: a blocking recvfrom/sendto echo loop on one UDP socket.
//
// Each datagram goes back to its sender unchanged, one datagram for one, so message boundaries
// are part of what a client can check.
#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cxxopts.hpp>

#include "common/errno_name.h"
#include "common/listen_socket.h"
#include "common/stop_signal.h"

int main(int argc, char** argv) {
  cxxopts::Options options("udp_echo", "Blocking UDP echo server");
  options.add_options()("host", "address to bind",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to bind (0 = pick a free port)", cxxopts::value<int>()->default_value("0"))(
      "h,help", "print usage");
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
  const int fd = examples::OpenBoundSocket(args["host"].as<std::string>(), args["port"].as<int>(),
                                           SOCK_DGRAM, 0);
  // The handler's shutdown makes a blocked recvfrom return 0 even on an unconnected socket.
  examples::StopOnSignal(fd);
  examples::AnnounceListening(fd);

  static char buf[65536];
  while (!examples::StopRequested()) {
    sockaddr_storage peer{};
    socklen_t peer_len = sizeof(peer);
    const ssize_t n =
        recvfrom(fd, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&peer), &peer_len);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::fprintf(stderr, "recvfrom: %s\n", examples::ErrnoName(errno).c_str());
      continue;  // e.g. ECONNREFUSED left by an ICMP error from a peer that went away
    }
    if (examples::StopRequested()) break;
    if (sendto(fd, buf, static_cast<std::size_t>(n), 0, reinterpret_cast<sockaddr*>(&peer),
               peer_len) < 0) {
      std::fprintf(stderr, "sendto: %s\n", examples::ErrnoName(errno).c_str());
    }
  }
  close(fd);
  return 0;
}
