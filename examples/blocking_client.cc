// blocking_client: a load and conformance client written the blocking way.
//
// Each connection is its own thread with a blocking socket: connect bounded by SO_SNDTIMEO
// (--connect-timeout; the kernel reports an expired connect as EINPROGRESS), then --requests
// round trips bounded by SO_RCVTIMEO (--recv-timeout). Every byte read back is verified.
// The output is deterministic for a given outcome, so that a native run and a run under gonet
// can be compared line by line:
//   conns=N connected=N ok=N errors=N bytes=N [eof=N]
//   <op>: <ERRNO NAME or condition> count=N      (one line per distinct error, sorted)
// The exit code is 0 iff there were no errors.
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>
#include <map>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "common/byte_pattern.h"
#include "common/errno_name.h"
#include "common/send_all.h"

namespace {

struct Config {
  std::string host;
  int port = 0;
  int conns = 1;
  int requests = 1;
  std::size_t size = 64;
  bool http = false;
  bool udp = false;
  bool udp_connect = false;
  bool await_close = false;
  bool serial = false;
  int connect_timeout_ms = 5000;
  int recv_timeout_ms = 10000;
};

// What one connection saw. Merged into the totals after its thread ends.
struct Outcome {
  bool connected = false;
  int ok = 0;
  std::uint64_t bytes = 0;
  int eof = 0;
  std::string error;  // the first failure ends the connection: "<op>: <what>"
};

std::string Fail(const char* op) { return std::string(op) + ": " + examples::ErrnoName(errno); }

void SetTimeout(int fd, int option, int timeout_ms) {
  if (timeout_ms <= 0) return;
  timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

// Reads until `want` bytes are buffered in `in`. Returns "" or the error.
std::string RecvAtLeast(int fd, std::string* in, std::size_t want) {
  char buf[16384];
  while (in->size() < want) {
    const ssize_t n = recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return "recv: EOF";
    if (n < 0) {
      if (errno == EINTR) continue;
      return Fail("recv");
    }
    in->append(buf, static_cast<std::size_t>(n));
  }
  return "";
}

bool MatchesPattern(std::uint64_t seed, std::string_view data) {
  for (std::size_t i = 0; i < data.size(); ++i) {
    if (static_cast<std::uint8_t>(data[i]) != examples::PatternByte(seed, i)) return false;
  }
  return true;
}

// One echo round trip: a pattern message unique to (conn, request), read back byte-exact.
std::string EchoRequest(const Config& cfg, int fd, int conn, int request, std::string* in) {
  const std::uint64_t seed = static_cast<std::uint64_t>(conn) * 131 + request * 31 + 1;
  std::string msg(cfg.size, '\0');
  examples::FillPattern(seed, 0, reinterpret_cast<std::uint8_t*>(msg.data()), msg.size());
  if (!examples::SendAll(fd, msg.data(), msg.size())) return Fail("send");
  if (std::string err = RecvAtLeast(fd, in, cfg.size); !err.empty()) return err;
  if (!MatchesPattern(seed, std::string_view(*in).substr(0, cfg.size))) return "echo: mismatch";
  in->erase(0, cfg.size);
  return "";
}

// One keep-alive GET /bytes/size, with status, Content-Length and every body byte checked.
std::string HttpRequest(const Config& cfg, int fd, std::string* in) {
  // An IPv6 literal needs brackets in a Host header.
  const std::string host =
      cfg.host.find(':') == std::string::npos ? cfg.host : "[" + cfg.host + "]";
  const std::string req = "GET /bytes/" + std::to_string(cfg.size) + " HTTP/1.1\r\nHost: " + host +
                          "\r\nUser-Agent: blocking_client\r\n\r\n";
  if (!examples::SendAll(fd, req.data(), req.size())) return Fail("send");
  std::size_t head_end;
  while ((head_end = in->find("\r\n\r\n")) == std::string::npos) {
    if (std::string err = RecvAtLeast(fd, in, in->size() + 1); !err.empty()) return err;
  }
  const std::string_view head = std::string_view(*in).substr(0, head_end);
  if (!head.starts_with("HTTP/1.1 ") || head.size() < 12) return "http: bad status line";
  if (head.substr(9, 3) != "200") return "http: status " + std::string(head.substr(9, 3));
  std::uint64_t length = 0;
  bool have_length = false;
  for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
    const std::size_t start = pos + 2;
    pos = head.find("\r\n", start);
    const std::string_view line =
        head.substr(start, pos == std::string_view::npos ? head.npos : pos - start);
    constexpr std::string_view kName = "content-length:";
    if (line.size() > kName.size() && strncasecmp(line.data(), kName.data(), kName.size()) == 0) {
      std::string_view v = line.substr(kName.size());
      while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      have_length = std::from_chars(v.data(), v.data() + v.size(), length).ec == std::errc();
    }
  }
  if (!have_length || length != cfg.size) return "http: bad Content-Length";
  in->erase(0, head_end + 4);
  if (std::string err = RecvAtLeast(fd, in, cfg.size); !err.empty()) return err;
  if (!MatchesPattern(0, std::string_view(*in).substr(0, cfg.size))) return "http: body mismatch";
  in->erase(0, cfg.size);
  return "";
}

// After the requests: wait for the server to close the connection (e.g. its idle timeout).
void AwaitClose(int fd, Outcome* out) {
  char c;
  ssize_t n;
  do {
    n = recv(fd, &c, 1, 0);
  } while (n < 0 && errno == EINTR);
  if (n == 0) {
    ++out->eof;
  } else if (n > 0) {
    out->error = "await-close: unexpected data";
  } else {
    out->error = Fail("await-close");
  }
}

bool ResolveServer(const Config& cfg, sockaddr_storage* addr, socklen_t* len) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = cfg.udp ? SOCK_DGRAM : SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (getaddrinfo(cfg.host.c_str(), std::to_string(cfg.port).c_str(), &hints, &found) != 0) {
    return false;
  }
  std::memcpy(addr, found->ai_addr, found->ai_addrlen);
  *len = found->ai_addrlen;
  freeaddrinfo(found);
  return true;
}

// One UDP "connection": a socket sending --requests datagrams and checking each echo.
void RunUdp(const Config& cfg, const sockaddr_storage& server, socklen_t server_len, int conn,
            Outcome* out) {
  const int fd = socket(server.ss_family, SOCK_DGRAM, 0);
  if (fd < 0) {
    out->error = Fail("socket");
    return;
  }
  SetTimeout(fd, SO_RCVTIMEO, cfg.recv_timeout_ms);
  const sockaddr* to = reinterpret_cast<const sockaddr*>(&server);
  if (cfg.udp_connect && connect(fd, to, server_len) != 0) {
    out->error = Fail("connect");
    close(fd);
    return;
  }
  out->connected = true;
  std::string msg(cfg.size, '\0');
  std::string reply(cfg.size + 1, '\0');  // one spare byte shows a datagram that is too long
  for (int r = 0; r < cfg.requests; ++r) {
    const std::uint64_t seed = static_cast<std::uint64_t>(conn) * 131 + r * 31 + 1;
    examples::FillPattern(seed, 0, reinterpret_cast<std::uint8_t*>(msg.data()), msg.size());
    const ssize_t sent = cfg.udp_connect ? send(fd, msg.data(), msg.size(), 0)
                                         : sendto(fd, msg.data(), msg.size(), 0, to, server_len);
    if (sent < 0) {
      out->error = Fail(cfg.udp_connect ? "send" : "sendto");
      break;
    }
    ssize_t n;
    do {
      n = cfg.udp_connect ? recv(fd, reply.data(), reply.size(), 0)
                          : recvfrom(fd, reply.data(), reply.size(), 0, nullptr, nullptr);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
      out->error = Fail(cfg.udp_connect ? "recv" : "recvfrom");
      break;
    }
    if (static_cast<std::size_t>(n) != cfg.size ||
        !MatchesPattern(seed, std::string_view(reply).substr(0, cfg.size))) {
      out->error = "udp: mismatch";
      break;
    }
    ++out->ok;
    out->bytes += cfg.size;
  }
  close(fd);
}

// One TCP connection. Returns its fd when the caller must keep it open (--serial), else -1.
int RunTcp(const Config& cfg, const sockaddr_storage& server, socklen_t server_len, int conn,
           Outcome* out) {
  const int fd = socket(server.ss_family, SOCK_STREAM, 0);
  if (fd < 0) {
    out->error = Fail("socket");
    return -1;
  }
  // The legacy connect timeout: SO_SNDTIMEO bounds a blocking connect too.
  SetTimeout(fd, SO_SNDTIMEO, cfg.connect_timeout_ms);
  SetTimeout(fd, SO_RCVTIMEO, cfg.recv_timeout_ms);
  int rc;
  do {
    rc = connect(fd, reinterpret_cast<const sockaddr*>(&server), server_len);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    out->error = Fail("connect");
    close(fd);
    return -1;
  }
  out->connected = true;
  std::string in;
  for (int r = 0; r < cfg.requests && out->error.empty(); ++r) {
    out->error = cfg.http ? HttpRequest(cfg, fd, &in) : EchoRequest(cfg, fd, conn, r, &in);
    if (out->error.empty()) {
      ++out->ok;
      out->bytes += cfg.size;
    }
  }
  if (out->error.empty() && cfg.await_close) AwaitClose(fd, out);
  if (cfg.serial) return fd;
  close(fd);
  return -1;
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("blocking_client",
                           "Blocking-socket client: echo or HTTP round trips, verified byte-exact");
  options.add_options()("host", "server address",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "server port", cxxopts::value<int>())("conns", "connections, one thread each",
                                                    cxxopts::value<int>()->default_value("1"))(
      "requests", "round trips per connection", cxxopts::value<int>()->default_value("1"))(
      "size", "bytes per message (echo, udp) or body (http)",
      cxxopts::value<std::size_t>()->default_value("64"))(
      "mode", "echo or http", cxxopts::value<std::string>()->default_value("echo"))(
      "udp", "send datagrams to a UDP echo server instead")(
      "udp-connect", "with --udp: connect() the socket, so ICMP errors are reported")(
      "connect-timeout", "SO_SNDTIMEO for connect (ms, 0 = kernel default)",
      cxxopts::value<int>()->default_value("5000"))("recv-timeout", "SO_RCVTIMEO (ms, 0 = none)",
                                                    cxxopts::value<int>()->default_value("10000"))(
      "await-close", "after the requests, wait until the server closes (counts eof)")(
      "serial", "open connections one after another in one thread, holding each open to the end")(
      "h,help", "print usage");
  Config cfg;
  try {
    const cxxopts::ParseResult args = options.parse(argc, argv);
    if (args.count("help")) {
      std::printf("%s", options.help().c_str());
      return 0;
    }
    if (!args.count("port")) throw cxxopts::exceptions::exception("--port is required");
    cfg.host = args["host"].as<std::string>();
    cfg.port = args["port"].as<int>();
    cfg.conns = args["conns"].as<int>();
    cfg.requests = args["requests"].as<int>();
    cfg.size = args["size"].as<std::size_t>();
    const std::string mode = args["mode"].as<std::string>();
    if (mode != "echo" && mode != "http") throw cxxopts::exceptions::exception("bad --mode");
    cfg.http = mode == "http";
    cfg.udp = args.count("udp") > 0;
    cfg.udp_connect = args.count("udp-connect") > 0;
    cfg.await_close = args.count("await-close") > 0;
    cfg.serial = args.count("serial") > 0;
    cfg.connect_timeout_ms = args["connect-timeout"].as<int>();
    cfg.recv_timeout_ms = args["recv-timeout"].as<int>();
  } catch (const cxxopts::exceptions::exception& e) {
    std::fprintf(stderr, "%s\n%s", e.what(), options.help().c_str());
    return 2;
  }
  if (cfg.udp && (cfg.http || cfg.await_close)) {
    std::fprintf(stderr, "--udp works only with --mode echo and without --await-close\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);  // a reset shows as EPIPE in the output, not as a dead client
  sockaddr_storage server{};
  socklen_t server_len = 0;
  if (!ResolveServer(cfg, &server, &server_len)) {
    std::fprintf(stderr, "bad --host %s\n", cfg.host.c_str());
    return 2;
  }

  std::vector<Outcome> outcomes(static_cast<std::size_t>(cfg.conns));
  auto run = [&](int conn) {
    Outcome* out = &outcomes[static_cast<std::size_t>(conn)];
    if (cfg.udp) {
      RunUdp(cfg, server, server_len, conn, out);
      return -1;
    }
    return RunTcp(cfg, server, server_len, conn, out);
  };
  if (cfg.serial) {
    std::vector<int> held;
    for (int c = 0; c < cfg.conns; ++c) {
      if (const int fd = run(c); fd >= 0) held.push_back(fd);
    }
    for (int fd : held) close(fd);
  } else {
    std::vector<std::thread> threads;
    for (int c = 0; c < cfg.conns; ++c) threads.emplace_back(run, c);
    for (std::thread& t : threads) t.join();
  }

  int connected = 0, ok = 0, eof = 0, errors = 0;
  std::uint64_t bytes = 0;
  std::map<std::string, int> error_counts;  // sorted, so the output does not depend on timing
  for (const Outcome& o : outcomes) {
    connected += o.connected;
    ok += o.ok;
    bytes += o.bytes;
    eof += o.eof;
    if (!o.error.empty()) {
      ++errors;
      ++error_counts[o.error];
    }
  }
  std::printf("conns=%d connected=%d ok=%d errors=%d bytes=%llu", cfg.conns, connected, ok, errors,
              static_cast<unsigned long long>(bytes));
  if (cfg.await_close) std::printf(" eof=%d", eof);
  std::printf("\n");
  for (const auto& [what, count] : error_counts) std::printf("%s count=%d\n", what.c_str(), count);
  return errors == 0 ? 0 : 1;
}
