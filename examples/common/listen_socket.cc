#include "common/listen_socket.h"

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "common/errno_name.h"

namespace examples {

int OpenBoundSocket(const std::string& host, int port, int type, int backlog) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = type;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  if (int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &found); rc != 0) {
    std::fprintf(stderr, "bad --host %s: %s\n", host.c_str(), gai_strerror(rc));
    std::exit(2);
  }
  int fd = socket(found->ai_family, found->ai_socktype, found->ai_protocol);
  if (fd < 0) {
    std::fprintf(stderr, "socket: %s\n", ErrnoName(errno).c_str());
    std::exit(1);
  }
  // Restarting a daemon must not wait for TIME_WAIT sockets of its previous run to expire.
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
    std::fprintf(stderr, "bind %s:%d: %s\n", host.c_str(), port, ErrnoName(errno).c_str());
    std::exit(1);
  }
  freeaddrinfo(found);
  if (type == SOCK_STREAM && listen(fd, backlog) != 0) {
    std::fprintf(stderr, "listen: %s\n", ErrnoName(errno).c_str());
    std::exit(1);
  }
  return fd;
}

void AnnounceListening(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    std::fprintf(stderr, "getsockname: %s\n", ErrnoName(errno).c_str());
    std::exit(1);
  }
  const int port = addr.ss_family == AF_INET6
                       ? ntohs(reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port)
                       : ntohs(reinterpret_cast<const sockaddr_in*>(&addr)->sin_port);
  std::printf("listening on %d\n", port);
  std::fflush(stdout);
}

}  // namespace examples
