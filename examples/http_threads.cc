// http_threads: an HTTP/1.1 keep-alive server, one blocking thread per connection.
//
// Idle connections are closed the legacy way: SO_RCVTIMEO on the accepted socket makes a recv
// that waited --idle-timeout for the next request fail with EAGAIN, and the thread closes.
// Routes: GET / (a short greeting) and GET /bytes/N (N bytes of examples::PatternByte(0, i)).
#include <errno.h>
#include <signal.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cxxopts.hpp>
#include <string>
#include <string_view>
#include <thread>

#include "common/byte_pattern.h"
#include "common/errno_name.h"
#include "common/listen_socket.h"
#include "common/send_all.h"
#include "common/stop_signal.h"

namespace {

// A request head larger than this is refused: a thread per connection must bound its memory.
constexpr std::size_t kMaxHeadBytes = 16384;
// The largest /bytes/N served, so a typo in a benchmark cannot fill the disk of the client.
constexpr std::uint64_t kMaxBodyBytes = std::uint64_t{1} << 30;

struct Request {
  std::string method;
  std::string target;
  bool keep_alive = true;
  std::uint64_t content_length = 0;
};

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && strncasecmp(a.data(), b.data(), a.size()) == 0;
}

// Case-insensitive "does header line `line` have name `name`", returning its trimmed value.
bool HeaderValue(std::string_view line, std::string_view name, std::string_view* value) {
  if (line.size() <= name.size() || line[name.size()] != ':') return false;
  if (strncasecmp(line.data(), name.data(), name.size()) != 0) return false;
  std::string_view v = line.substr(name.size() + 1);
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  *value = v;
  return true;
}

bool ParseHead(std::string_view head, Request* req) {
  const std::size_t eol = head.find("\r\n");
  const std::string_view request_line = head.substr(0, eol);
  const std::size_t sp1 = request_line.find(' ');
  const std::size_t sp2 = request_line.rfind(' ');
  if (sp1 == std::string_view::npos || sp2 == sp1) return false;
  req->method = request_line.substr(0, sp1);
  req->target = request_line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = request_line.substr(sp2 + 1);
  if (version != "HTTP/1.1" && version != "HTTP/1.0") return false;
  req->keep_alive = version == "HTTP/1.1";
  std::size_t pos = eol == std::string_view::npos ? head.size() : eol + 2;
  while (pos < head.size()) {
    std::size_t end = head.find("\r\n", pos);
    if (end == std::string_view::npos) end = head.size();
    const std::string_view line = head.substr(pos, end - pos);
    std::string_view value;
    if (HeaderValue(line, "Connection", &value)) {
      if (EqualsIgnoreCase(value, "close")) req->keep_alive = false;
      if (EqualsIgnoreCase(value, "keep-alive")) req->keep_alive = true;
    } else if (HeaderValue(line, "Content-Length", &value)) {
      std::from_chars(value.data(), value.data() + value.size(), req->content_length);
    }
    pos = end + 2;
  }
  return true;
}

bool SendResponse(int fd, int status, const char* reason, bool keep_alive, std::uint64_t length,
                  const std::string& small_body, bool pattern_body) {
  char head[256];
  const int n = std::snprintf(head, sizeof(head),
                              "HTTP/1.1 %d %s\r\nContent-Length: %llu\r\n"
                              "Content-Type: application/octet-stream\r\nConnection: %s\r\n\r\n",
                              status, reason, static_cast<unsigned long long>(length),
                              keep_alive ? "keep-alive" : "close");
  if (!pattern_body) {
    // Head and a small body in one send: two small sends would meet the client's delayed ACK
    // (Nagle) and stall every keep-alive response by ~40 ms.
    std::string response(head, static_cast<std::size_t>(n));
    response += small_body;
    return examples::SendAll(fd, response.data(), response.size());
  }
  if (!examples::SendAll(fd, head, static_cast<std::size_t>(n))) return false;
  std::uint8_t chunk[16384];
  for (std::uint64_t off = 0; off < length;) {
    const std::size_t len =
        static_cast<std::size_t>(std::min<std::uint64_t>(sizeof(chunk), length - off));
    examples::FillPattern(0, off, chunk, len);
    if (!examples::SendAll(fd, chunk, len)) return false;
    off += len;
  }
  return true;
}

// Answers one parsed request. Returns false when the connection must close.
bool Respond(int fd, const Request& req) {
  constexpr std::string_view kBytesPrefix = "/bytes/";
  if (req.method != "GET") {
    SendResponse(fd, 405, "Method Not Allowed", false, 19, "method not allowed\n", false);
    return false;
  }
  if (req.target == "/") {
    const std::string body = "hello from http_threads\n";
    return SendResponse(fd, 200, "OK", req.keep_alive, body.size(), body, false) && req.keep_alive;
  }
  if (req.target.starts_with(kBytesPrefix)) {
    std::uint64_t n = 0;
    const char* first = req.target.data() + kBytesPrefix.size();
    const char* last = req.target.data() + req.target.size();
    const auto [end, ec] = std::from_chars(first, last, n);
    if (ec == std::errc() && end == last && first != last && n <= kMaxBodyBytes) {
      return SendResponse(fd, 200, "OK", req.keep_alive, n, "", true) && req.keep_alive;
    }
  }
  const std::string body = "not found\n";
  return SendResponse(fd, 404, "Not Found", req.keep_alive, body.size(), body, false) &&
         req.keep_alive;
}

void ServeHttp(int fd) {
  std::string in;
  char buf[16384];
  for (;;) {
    std::size_t head_end;
    while ((head_end = in.find("\r\n\r\n")) == std::string::npos) {
      if (in.size() > kMaxHeadBytes) {
        SendResponse(fd, 431, "Request Header Fields Too Large", false, 0, "", false);
        close(fd);
        return;
      }
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n > 0) {
        in.append(buf, static_cast<std::size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      // EOF, the idle timeout (EAGAIN from SO_RCVTIMEO) or an error: the connection is done.
      // A timeout between requests is the expected way a keep-alive connection ends.
      if (n < 0 && errno != EAGAIN && errno != ECONNRESET) {
        std::fprintf(stderr, "recv: %s\n", examples::ErrnoName(errno).c_str());
      }
      close(fd);
      return;
    }
    Request req;
    if (!ParseHead(std::string_view(in).substr(0, head_end), &req)) {
      SendResponse(fd, 400, "Bad Request", false, 0, "", false);
      close(fd);
      return;
    }
    in.erase(0, head_end + 4);
    // A GET has no body in practice; skip one if a client sent it anyway.
    std::uint64_t skip = req.content_length;
    while (skip > 0) {
      if (!in.empty()) {
        const std::size_t take = static_cast<std::size_t>(std::min<std::uint64_t>(skip, in.size()));
        in.erase(0, take);
        skip -= take;
        continue;
      }
      const ssize_t n = recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) {
        close(fd);
        return;
      }
      in.append(buf, static_cast<std::size_t>(n));
    }
    if (!Respond(fd, req)) break;
  }
  close(fd);
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("http_threads", "Thread-per-connection blocking HTTP/1.1 server");
  options.add_options()("host", "address to listen on",
                        cxxopts::value<std::string>()->default_value("127.0.0.1"))(
      "port", "port to listen on (0 = pick a free port)",
      cxxopts::value<int>()->default_value("0"))("backlog", "listen backlog",
                                                 cxxopts::value<int>()->default_value("128"))(
      "idle-timeout", "close a connection idle this long between requests (ms, 0 = never)",
      cxxopts::value<int>()->default_value("5000"))("h,help", "print usage");
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
  const int idle_timeout_ms = args["idle-timeout"].as<int>();
  signal(SIGPIPE, SIG_IGN);

  const int listen_fd =
      examples::OpenBoundSocket(args["host"].as<std::string>(), args["port"].as<int>(), SOCK_STREAM,
                                args["backlog"].as<int>());
  examples::StopOnSignal(listen_fd);
  examples::AnnounceListening(listen_fd);

  while (!examples::StopRequested()) {
    const int fd = accept(listen_fd, nullptr, nullptr);
    if (fd < 0) {
      if (examples::StopRequested()) break;
      if (errno == EINTR || errno == ECONNABORTED) continue;
      std::fprintf(stderr, "accept: %s\n", examples::ErrnoName(errno).c_str());
      return 1;
    }
    if (idle_timeout_ms > 0) {
      timeval tv{idle_timeout_ms / 1000, (idle_timeout_ms % 1000) * 1000};
      setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    examples::ScopedStopSignalsBlocked blocked;
    std::thread(ServeHttp, fd).detach();
  }
  close(listen_fd);
  return 0;
}
