// epoll_echo: the hand-written event loop echo server, the ceiling gonet's fibers mode is
// measured against.
//
// One thread, one edge-triggered epoll set, non-blocking sockets, no per-connection thread or
// stack: what a careful C programmer writes when throughput per core is all that matters. Each
// readable connection is drained into one shared buffer and echoed at once; only bytes the
// kernel would not take are copied into the connection's own pending buffer, and reading that
// connection pauses until they are flushed, so a slow reader costs memory for one buffer, not
// for everything its peer sends.
//
// --corrupt-at N flips one bit of the N-th byte each connection echoes. It exists so a test can
// prove that loadgen checks every byte of every answer, not just the first request.
//
// Prints "listening on PORT" once ready; stops on SIGTERM/SIGINT or after --lifetime seconds.
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>
#include <string>
#include <vector>

namespace {

// One accepted connection, indexed by its fd.
struct Conn {
  bool open = false;
  std::string pending;       // echoed bytes the kernel has not taken yet
  std::uint64_t echoed = 0;  // bytes of this connection's stream seen so far (for --corrupt-at)
};

class EchoServer {
 public:
  EchoServer(int listen_fd, std::int64_t corrupt_at)
      : listen_fd_(listen_fd), corrupt_at_(corrupt_at), buf_(64 * 1024) {}

  // Serves until a stop signal or until deadline_ms (CLOCK_MONOTONIC, 0 = none) passes.
  int Run(int signal_fd, std::int64_t deadline_ms) {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0 || !Watch(listen_fd_, EPOLLIN | EPOLLET) || !Watch(signal_fd, EPOLLIN)) {
      std::perror("epoll_echo: epoll");
      return 1;
    }
    std::vector<epoll_event> events(1024);
    for (;;) {
      int timeout_ms = -1;
      if (deadline_ms > 0) {
        timeout_ms = static_cast<int>(std::max<std::int64_t>(0, deadline_ms - NowMs()));
        if (timeout_ms == 0) return 0;
      }
      const int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), timeout_ms);
      if (n < 0 && errno != EINTR) {
        std::perror("epoll_echo: epoll_wait");
        return 1;
      }
      for (int i = 0; i < n; ++i) {
        const int fd = events[i].data.fd;
        if (fd == signal_fd) return 0;
        if (fd == listen_fd_) {
          AcceptAll();
        } else {
          Serve(fd);
        }
      }
    }
  }

  static std::int64_t NowMs() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return std::int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1'000'000;
  }

 private:
  bool Watch(int fd, std::uint32_t events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.fd = fd;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }

  // Edge-triggered listener: one event may stand for many queued connections.
  void AcceptAll() {
    for (;;) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno != EAGAIN) std::perror("epoll_echo: accept4");
        return;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      if (static_cast<std::size_t>(fd) >= conns_.size()) conns_.resize(fd * 2 + 1);
      conns_[fd] = Conn{};
      conns_[fd].open = true;
      if (!Watch(fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET)) {
        std::perror("epoll_echo: epoll_ctl");
        Close(fd);
      }
    }
  }

  // Flushes what is pending, then echoes until the socket has nothing more to read or the
  // kernel stops taking bytes (then the EPOLLOUT edge brings us back here).
  void Serve(int fd) {
    Conn& c = conns_[fd];
    if (!c.open) return;
    if (!c.pending.empty()) {
      const ssize_t w = send(fd, c.pending.data(), c.pending.size(), MSG_NOSIGNAL);
      if (w < 0 && errno != EAGAIN && errno != EINTR) return Close(fd);
      if (w > 0) c.pending.erase(0, static_cast<std::size_t>(w));
      if (!c.pending.empty()) return;
    }
    for (;;) {
      const ssize_t n = recv(fd, buf_.data(), buf_.size(), 0);
      if (n == 0) return Close(fd);
      if (n < 0) {
        if (errno == EAGAIN) return;
        if (errno == EINTR) continue;
        return Close(fd);
      }
      const std::size_t len = static_cast<std::size_t>(n);
      MaybeCorrupt(c, len);
      ssize_t w = send(fd, buf_.data(), len, MSG_NOSIGNAL);
      if (w < 0) {
        if (errno != EAGAIN && errno != EINTR) return Close(fd);
        w = 0;
      }
      if (static_cast<std::size_t>(w) < len) {
        c.pending.assign(buf_.data() + w, len - static_cast<std::size_t>(w));
        return;
      }
    }
  }

  void MaybeCorrupt(Conn& c, std::size_t len) {
    const std::uint64_t first = c.echoed;
    c.echoed += len;
    if (corrupt_at_ < 0) return;
    const auto at = static_cast<std::uint64_t>(corrupt_at_);
    if (at >= first && at < c.echoed) buf_[at - first] ^= 0x01;
  }

  void Close(int fd) {
    conns_[fd] = Conn{};
    close(fd);  // also removes it from the epoll set: nothing else holds the open file
  }

  const int listen_fd_;
  const std::int64_t corrupt_at_;  // stream offset to corrupt, -1: never
  int epfd_ = -1;
  std::vector<char> buf_;    // receive buffer shared by all connections (one thread)
  std::vector<Conn> conns_;  // indexed by fd
};

int Listen(const std::string& host, int port, int backlog) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  const std::string service = std::to_string(port);
  if (const int rc = getaddrinfo(host.c_str(), service.c_str(), &hints, &res); rc != 0) {
    std::fprintf(stderr, "epoll_echo: %s: %s\n", host.c_str(), gai_strerror(rc));
    return -1;
  }
  const int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  const int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
      bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, backlog) != 0) {
    std::perror("epoll_echo: listen");
    freeaddrinfo(res);
    return -1;
  }
  freeaddrinfo(res);
  return fd;
}

int BoundPort(int fd) {
  sockaddr_storage addr{};
  socklen_t len = sizeof(addr);
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  if (addr.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port);
  return ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("epoll_echo", "Single-threaded edge-triggered epoll echo server");
  auto add = options.add_options();
  add("host", "address to listen on", cxxopts::value<std::string>()->default_value("127.0.0.1"));
  add("port", "port to listen on (0 = pick a free port)",
      cxxopts::value<int>()->default_value("0"));
  add("backlog", "listen backlog", cxxopts::value<int>()->default_value("4096"));
  add("corrupt-at", "flip a bit of this byte offset of every connection's echo (-1 = never)",
      cxxopts::value<std::int64_t>()->default_value("-1"));
  add("lifetime", "exit after this many seconds (0 = run until SIGTERM/SIGINT)",
      cxxopts::value<double>()->default_value("0"));
  add("h,help", "print usage");
  cxxopts::ParseResult args;
  try {
    args = options.parse(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "epoll_echo: %s\n%s", e.what(), options.help().c_str());
    return 2;
  }
  if (args.count("help")) {
    std::printf("%s", options.help().c_str());
    return 0;
  }

  // One fd per connection: thousands of connections need the hard limit, not the soft 1024.
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) == 0) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
  }
  // A signalfd in the same epoll set makes a stop signal just another event: no flag to race
  // with epoll_wait.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigprocmask(SIG_BLOCK, &stop, nullptr);
  const int signal_fd = signalfd(-1, &stop, SFD_CLOEXEC | SFD_NONBLOCK);

  const int listen_fd =
      Listen(args["host"].as<std::string>(), args["port"].as<int>(), args["backlog"].as<int>());
  if (listen_fd < 0 || signal_fd < 0) return 1;
  std::printf("listening on %d\n", BoundPort(listen_fd));
  std::fflush(stdout);

  const double lifetime_s = args["lifetime"].as<double>();
  const std::int64_t deadline_ms =
      lifetime_s > 0 ? EchoServer::NowMs() + static_cast<std::int64_t>(lifetime_s * 1000) : 0;
  EchoServer server(listen_fd, args["corrupt-at"].as<std::int64_t>());
  return server.Run(signal_fd, deadline_ms);
}
