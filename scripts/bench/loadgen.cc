// loadgen: a closed-loop load generator for echo and HTTP servers, the load side of gonet's
// benchmarks.
//
// It opens --conns connections and keeps each one in ping-pong: send a message, wait for the
// whole answer, check every byte, repeat. One thread drives all of them with an edge-triggered
// epoll loop over non-blocking sockets, so 10,000 connections cost it 10,000 fds and no threads,
// and the server, not the client, is what a benchmark cell measures. It must never use gonet:
// the harness runs it natively beside the server it measures.
//
// Phases:
//   connect  every connection, with at most --connect-burst handshakes in flight so that a
//            server's listen backlog does not overflow into one-second SYN retransmits;
//   warmup   unrecorded ping-pong for --warmup seconds and until every connection has had an
//            answer (bounded by --connect-timeout): a thread-per-connection server on a busy
//            core can take seconds to accept 10,000 connections, and measuring before then
//            would measure fewer connections than asked for;
//   measure  --duration seconds (or --max-requests answers), each answer's latency recorded;
//   drain    up to kDrainNs for answers still in flight (verified, not recorded), so that
//            closing does not reset connections holding unread data: servers see a clean EOF.
// With --one-request, each connection makes exactly one request (its latency is recorded); once
// every connection has its answer (or --connect-timeout passed) loadgen prints
// "answered N" on stdout and holds the connections open, idle, for --duration seconds (a drop
// still counts), so that a benchmark can look at a server whose connections all sit idle.
//
// Exit status: 0 iff every connection connected, none was closed by the server, every byte
// matched, and at least one request completed; 1 otherwise; 2 on a usage error.
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>
#include <string>
#include <vector>

#include "http_response_reader.h"
#include "latency_histogram.h"

namespace {

enum class Mode { kEcho, kHttp };

struct Options {
  std::string host;
  std::string port;
  int conns = 1;
  std::size_t size = 64;
  double duration_s = 5;
  double warmup_s = 0;
  double connect_timeout_s = 10;
  int connect_burst = 100;
  Mode mode = Mode::kEcho;
  std::uint64_t max_requests = 0;  // 0: no cap
  bool json = false;
  bool one_request = false;  // one request per connection, then hold them idle (header)
};

std::int64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return std::int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

std::int64_t SecondsToNs(double s) { return static_cast<std::int64_t>(s * 1e9); }

// One client connection. Long-lived: it carries one request at a time from Start to Complete.
struct Conn {
  enum class State { kUnused, kConnecting, kIdle, kBusy, kFailed, kDropped, kCorrupt };
  int fd = -1;
  State state = State::kUnused;
  std::int64_t deadline_ns = 0;       // connect timeout while kConnecting
  std::int64_t request_start_ns = 0;  // when the current request's first byte was offered
  std::uint64_t seq = 0;              // requests started on this connection
  const char* out = nullptr;          // current request bytes
  std::size_t out_len = 0;
  std::size_t sent = 0;          // bytes of out written so far
  const char* expect = nullptr;  // echo mode: the bytes the answer must equal
  std::size_t received = 0;      // bytes of the current answer consumed
  bench::HttpResponseReader http;
  bool answered = false;       // completed at least one request
  std::uint64_t measured = 0;  // requests completed inside the measurement window
};

enum class Phase { kConnect, kWarmup, kMeasure, kDrain, kDone };

class LoadGenerator {
 public:
  explicit LoadGenerator(const Options& opt) : opt_(opt), conns_(opt.conns) {}

  bool Init() {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (const int rc = getaddrinfo(opt_.host.c_str(), opt_.port.c_str(), &hints, &res); rc != 0) {
      std::fprintf(stderr, "loadgen: %s:%s: %s\n", opt_.host.c_str(), opt_.port.c_str(),
                   gai_strerror(rc));
      return false;
    }
    std::memcpy(&addr_, res->ai_addr, res->ai_addrlen);
    addr_len_ = res->ai_addrlen;
    family_ = res->ai_family;
    freeaddrinfo(res);

    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) {
      std::perror("loadgen: epoll_create1");
      return false;
    }
    if (opt_.mode == Mode::kEcho) {
      // Each request sends a window of this buffer at an offset that depends on the connection
      // and the request number, so an answer that belongs to another request or connection, or
      // is shifted by a byte, does not compare equal.
      pattern_.resize(opt_.size + kPatternOffsets);
      std::uint64_t x = 0x9e3779b97f4a7c15u;
      for (char& c : pattern_) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        c = static_cast<char>(x >> 56);
      }
    } else {
      http_request_ = "GET / HTTP/1.1\r\nHost: " + opt_.host + ":" + opt_.port +
                      "\r\nUser-Agent: gonet-loadgen\r\n\r\n";
    }
    scratch_.resize(64 * 1024);
    return true;
  }

  void Run() {
    ConnectMore();
    std::vector<epoll_event> events(1024);
    while (phase_ != Phase::kDone) {
      const int n = epoll_wait(epfd_, events.data(), static_cast<int>(events.size()), 5);
      if (n < 0 && errno != EINTR) {
        std::perror("loadgen: epoll_wait");
        break;
      }
      for (int i = 0; i < n; ++i) {
        Conn& c = conns_[events[i].data.u64];
        if (c.state == Conn::State::kConnecting) {
          FinishConnect(c);
        } else {
          Progress(c);
        }
      }
      Tick(NowNs());
    }
    for (Conn& c : conns_) {
      if (c.fd >= 0) close(c.fd);
      c.fd = -1;
    }
  }

  int Report() const {
    int connected = 0, connect_failed = 0, dropped = 0, stalled = 0;
    for (const Conn& c : conns_) {
      switch (c.state) {
        case Conn::State::kUnused:
        case Conn::State::kConnecting:
        case Conn::State::kFailed:
          ++connect_failed;
          continue;
        case Conn::State::kDropped:
          ++dropped;
          break;
        default:
          break;
      }
      ++connected;
      if (c.measured == 0) ++stalled;
    }
    const double seconds = static_cast<double>(measure_elapsed_ns_) / 1e9;
    const double rps = seconds > 0 ? static_cast<double>(hist_.count()) / seconds : 0;
    const auto us = [this](double q) { return static_cast<double>(hist_.Quantile(q)) / 1e3; };
    const bool ok = connect_failed == 0 && dropped == 0 && verify_errors_ == 0 && hist_.count() > 0;
    if (opt_.json) {
      std::printf(
          "{\"mode\":\"%s\",\"conns\":%d,\"size\":%zu,\"connected\":%d,\"connect_failed\":%d,"
          "\"dropped\":%d,\"stalled\":%d,\"requests\":%" PRIu64
          ",\"seconds\":%.3f,\"rps\":%.1f,"
          "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
          "\"bytes_verified\":%" PRIu64 ",\"verify_errors\":%" PRIu64 ",\"ok\":%s}\n",
          opt_.mode == Mode::kEcho ? "echo" : "http", opt_.conns, opt_.size, connected,
          connect_failed, dropped, stalled, hist_.count(), seconds, rps, us(0.50), us(0.99),
          us(0.999), static_cast<double>(hist_.max_ns()) / 1e3, bytes_verified_, verify_errors_,
          ok ? "true" : "false");
    } else {
      std::printf("loadgen: %s %s:%s, %d connections, %.2f s measured\n",
                  opt_.mode == Mode::kEcho ? "echo" : "http", opt_.host.c_str(), opt_.port.c_str(),
                  opt_.conns, seconds);
      std::printf("  requests/s     %.1f  (%" PRIu64 " requests)\n", rps, hist_.count());
      std::printf("  latency us     p50 %.1f  p99 %.1f  p999 %.1f  max %.1f\n", us(0.50), us(0.99),
                  us(0.999), static_cast<double>(hist_.max_ns()) / 1e3);
      std::printf(
          "  connections    %d connected, %d failed to connect, %d closed by server, "
          "%d without an answer in the window\n",
          connected, connect_failed, dropped, stalled);
      std::printf("  verification   %" PRIu64 " bytes verified, %" PRIu64 " errors\n",
                  bytes_verified_, verify_errors_);
      std::printf("  result         %s\n", ok ? "OK" : "FAILED");
    }
    return ok ? 0 : 1;
  }

 private:
  static constexpr std::size_t kPatternOffsets = 251;  // prime, so offsets cycle slowly
  static constexpr std::int64_t kDrainNs = 2'000'000'000;

  void ConnectMore() {
    while (next_to_connect_ < conns_.size() && connecting_ < opt_.connect_burst) StartConnect();
  }

  void StartConnect() {
    const std::size_t id = next_to_connect_++;
    Conn& c = conns_[id];
    c.fd = socket(family_, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
      ConnectFailed(c, "socket", errno);
      return;
    }
    // Ping-pong sends one small message per round trip; Nagle would hold back the tail of a
    // partially written message until the peer's delayed ACK.
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c.fd, reinterpret_cast<const sockaddr*>(&addr_), addr_len_) != 0 &&
        errno != EINPROGRESS) {
      ConnectFailed(c, "connect", errno);
      return;
    }
    // Registered only after connect(): an unconnected socket polls as writable, and that
    // readiness would be mistaken for a finished handshake. A handshake that completes before
    // the ADD is still reported, because ADD checks current readiness.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = id;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
      ConnectFailed(c, "epoll_ctl", errno);
      return;
    }
    c.state = Conn::State::kConnecting;
    c.deadline_ns = NowNs() + SecondsToNs(opt_.connect_timeout_s);
    ++connecting_;
  }

  void FinishConnect(Conn& c) {
    int err = 0;
    socklen_t len = sizeof(err);
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    --connecting_;
    if (err != 0) {
      ConnectFailed(c, "connect", err);
    } else {
      c.state = Conn::State::kIdle;
      ++connected_;
    }
    ConnectMore();
  }

  void ConnectFailed(Conn& c, const char* what, int err) {
    if (connect_errors_reported_++ < 5) {
      std::fprintf(stderr, "loadgen: %s: %s\n", what, std::strerror(err));
    }
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
    c.state = Conn::State::kFailed;
  }

  // Called after every epoll batch: times out handshakes, moves between phases.
  void Tick(std::int64_t now) {
    if (phase_ == Phase::kConnect) {
      for (std::size_t i = 0; i < next_to_connect_; ++i) {
        Conn& c = conns_[i];
        if (c.state == Conn::State::kConnecting && now > c.deadline_ns) {
          --connecting_;
          ConnectFailed(c, "connect", ETIMEDOUT);
        }
      }
      ConnectMore();
      if (next_to_connect_ < conns_.size() || connecting_ > 0) return;
      if (connected_ == 0) {
        phase_ = Phase::kDone;
        return;
      }
      phase_ = Phase::kWarmup;
      warmup_end_ns_ = now + SecondsToNs(opt_.warmup_s);
      for (Conn& c : conns_) {
        if (c.state != Conn::State::kIdle) continue;
        ++unanswered_;
        StartRequest(c, now);
        Progress(c);
      }
      now = NowNs();
    }
    if (phase_ == Phase::kWarmup && now >= warmup_end_ns_ &&
        (unanswered_ == 0 || now >= warmup_end_ns_ + SecondsToNs(opt_.connect_timeout_s))) {
      phase_ = Phase::kMeasure;
      measure_start_ns_ = now;
      measure_end_ns_ = now + SecondsToNs(opt_.duration_s);
      if (opt_.one_request) {
        std::printf("answered %d\n", connected_ - unanswered_);
        std::fflush(stdout);
      }
    }
    if (phase_ == Phase::kMeasure) {
      measure_elapsed_ns_ = std::min(now, measure_end_ns_) - measure_start_ns_;
      if (now >= measure_end_ns_ || Capped() || (busy_ == 0 && !opt_.one_request)) {
        phase_ = Phase::kDrain;
        drain_end_ns_ = now + kDrainNs;
      }
    }
    if (phase_ == Phase::kDrain && (busy_ == 0 || now >= drain_end_ns_)) phase_ = Phase::kDone;
  }

  void StartRequest(Conn& c, std::int64_t now) {
    c.state = Conn::State::kBusy;
    ++busy_;
    c.request_start_ns = now;
    c.sent = 0;
    c.received = 0;
    if (opt_.mode == Mode::kEcho) {
      const std::size_t offset = static_cast<std::size_t>(
          (static_cast<std::uint64_t>(&c - conns_.data()) * 31 + c.seq * 7) % kPatternOffsets);
      c.out = pattern_.data() + offset;
      c.out_len = opt_.size;
      c.expect = c.out;
    } else {
      c.out = http_request_.data();
      c.out_len = http_request_.size();
      c.http.Reset();
    }
    ++c.seq;
  }

  // Moves one connection as far as the socket allows. Edge-triggered epoll only reports new
  // readiness, so this stops only where a later event is sure to come: the kernel refused bytes
  // (EPOLLOUT follows), a read came back short of what was asked (the queue was empty; the next
  // arrival is an edge), or a request was just sent (its answer's arrival is an edge). Skipping
  // the read that would only say EAGAIN saves the load side a syscall per request. Bytes a
  // server sends unasked are still caught: they sit in front of the next answer and fail its
  // comparison.
  void Progress(Conn& c) {
    while (c.state == Conn::State::kBusy || c.state == Conn::State::kIdle) {
      if (c.state == Conn::State::kBusy && c.sent < c.out_len && !Send(c)) return;
      // An idle connection reads too: anything arriving then is unsolicited, and EOF is a drop.
      std::size_t want = scratch_.size();
      if (c.state == Conn::State::kBusy && opt_.mode == Mode::kEcho) {
        want = std::min(want, opt_.size - c.received);
      }
      const ssize_t n = recv(c.fd, scratch_.data(), want, 0);
      if (n == 0) return Drop(c, "recv", 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        return Drop(c, "recv", errno);
      }
      if (c.state == Conn::State::kIdle) {
        return Corrupt(c, "bytes arrived with no request outstanding");
      }
      const std::size_t got = static_cast<std::size_t>(n);
      switch (opt_.mode == Mode::kEcho ? ConsumeEcho(c, got) : ConsumeHttp(c, got)) {
        case Answer::kCorrupt:
          return;
        case Answer::kComplete:
          // Complete() started the next request unless the run is over.
          if (c.state == Conn::State::kBusy) Send(c);
          return;
        case Answer::kPartial:
          if (got < want) return;
          break;
      }
    }
  }

  // Writes what the kernel takes of the current request. False when the caller must stop: the
  // kernel is full (EPOLLOUT will follow) or the connection is gone.
  bool Send(Conn& c) {
    const ssize_t n = send(c.fd, c.out + c.sent, c.out_len - c.sent, MSG_NOSIGNAL);
    if (n > 0) {
      c.sent += static_cast<std::size_t>(n);
      return true;
    }
    if (errno != EAGAIN && errno != EINTR) Drop(c, "send", errno);
    return false;
  }

  enum class Answer { kPartial, kComplete, kCorrupt };

  Answer ConsumeEcho(Conn& c, std::size_t got) {
    if (std::memcmp(scratch_.data(), c.expect + c.received, got) != 0) {
      std::size_t at = 0;
      while (scratch_[at] == c.expect[c.received + at]) ++at;
      char why[160];
      std::snprintf(why, sizeof(why), "request %" PRIu64 " byte %zu: expected 0x%02x, got 0x%02x",
                    c.seq, c.received + at, static_cast<unsigned char>(c.expect[c.received + at]),
                    static_cast<unsigned char>(scratch_[at]));
      Corrupt(c, why);
      return Answer::kCorrupt;
    }
    c.received += got;
    bytes_verified_ += got;
    if (c.received < opt_.size) return Answer::kPartial;
    Complete(c);
    return Answer::kComplete;
  }

  Answer ConsumeHttp(Conn& c, std::size_t got) {
    std::size_t used = 0;
    const auto status = c.http.Feed(scratch_.data(), got, &used);
    if (status == bench::HttpResponseReader::Status::kError) {
      Corrupt(c, c.http.error());
      return Answer::kCorrupt;
    }
    if (status == bench::HttpResponseReader::Status::kComplete && used != got) {
      Corrupt(c, "bytes after a complete response");
      return Answer::kCorrupt;
    }
    c.received += used;
    if (status == bench::HttpResponseReader::Status::kNeedMore) return Answer::kPartial;
    bytes_verified_ += c.received;
    // A server that announces the end of keep-alive is about to close; the next read's EOF
    // counts as a drop, which is what a keep-alive benchmark should report.
    Complete(c);
    return Answer::kComplete;
  }

  void Complete(Conn& c) {
    const std::int64_t now = NowNs();
    --busy_;
    c.state = Conn::State::kIdle;
    if (!c.answered) {
      c.answered = true;
      --unanswered_;
    }
    if (opt_.one_request || (phase_ == Phase::kMeasure && now <= measure_end_ns_ && !Capped())) {
      hist_.Record(static_cast<std::uint64_t>(now - c.request_start_ns));
      ++c.measured;
      if (opt_.one_request) return;  // and stays idle
    }
    if ((phase_ == Phase::kWarmup || phase_ == Phase::kMeasure) && now < measure_end_ns_ &&
        !Capped()) {
      StartRequest(c, now);
    }
  }

  bool Capped() const { return opt_.max_requests > 0 && hist_.count() >= opt_.max_requests; }

  void Drop(Conn& c, const char* what, int err) {
    if (drops_reported_++ < 5) {
      std::fprintf(stderr, "loadgen: connection %zu: %s: %s\n",
                   static_cast<std::size_t>(&c - conns_.data()), what,
                   err == 0 ? "closed by server" : std::strerror(err));
    }
    Retire(c, Conn::State::kDropped);
  }

  void Corrupt(Conn& c, const std::string& why) {
    ++verify_errors_;
    if (verify_errors_ <= 5) {
      std::fprintf(stderr, "loadgen: connection %zu: verification failed: %s\n",
                   static_cast<std::size_t>(&c - conns_.data()), why.c_str());
    }
    // The stream is out of step now; nothing more on it can be verified.
    Retire(c, Conn::State::kCorrupt);
  }

  void Retire(Conn& c, Conn::State state) {
    if (c.state == Conn::State::kBusy) --busy_;
    if (!c.answered && phase_ != Phase::kConnect) --unanswered_;  // counted from kWarmup on
    c.state = state;
    close(c.fd);
    c.fd = -1;
  }

  const Options opt_;
  std::vector<Conn> conns_;
  sockaddr_storage addr_{};
  socklen_t addr_len_ = 0;
  int family_ = AF_INET;
  int epfd_ = -1;
  std::string pattern_;        // echo mode: request bytes, see Init
  std::string http_request_;   // http mode: the one request every connection repeats
  std::vector<char> scratch_;  // receive buffer shared by all connections (one thread)

  Phase phase_ = Phase::kConnect;
  std::size_t next_to_connect_ = 0;
  int connecting_ = 0;  // handshakes in flight
  int connected_ = 0;
  int busy_ = 0;        // connections with a request outstanding
  int unanswered_ = 0;  // connections yet to complete their first request
  std::int64_t warmup_end_ns_ = 0;
  std::int64_t measure_start_ns_ = 0;
  std::int64_t measure_end_ns_ = INT64_MAX;
  std::int64_t measure_elapsed_ns_ = 0;
  std::int64_t drain_end_ns_ = 0;

  bench::LatencyHistogram hist_;
  std::uint64_t bytes_verified_ = 0;
  std::uint64_t verify_errors_ = 0;
  int connect_errors_reported_ = 0;
  int drops_reported_ = 0;
};

// Thousands of connections need thousands of fds; the soft limit is often 1024.
void RaiseFdLimit(int conns) {
  rlimit lim;
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur != RLIM_INFINITY && static_cast<rlim_t>(conns) + 16 > lim.rlim_cur) {
    std::fprintf(stderr, "loadgen: warning: %d connections but RLIMIT_NOFILE is %llu\n", conns,
                 static_cast<unsigned long long>(lim.rlim_cur));
  }
}

}  // namespace

int main(int argc, char** argv) {
  cxxopts::Options options("loadgen", "Closed-loop ping-pong load generator (echo or HTTP)");
  auto add = options.add_options();
  add("host", "server address", cxxopts::value<std::string>()->default_value("127.0.0.1"));
  add("port", "server port", cxxopts::value<int>());
  add("conns", "connections to open", cxxopts::value<int>()->default_value("1"));
  add("size", "echo message size in bytes", cxxopts::value<std::size_t>()->default_value("64"));
  add("duration", "seconds to measure", cxxopts::value<double>()->default_value("5"));
  add("warmup", "seconds of unrecorded load before measuring",
      cxxopts::value<double>()->default_value("0"));
  add("mode", "echo or http (GET / with keep-alive)",
      cxxopts::value<std::string>()->default_value("echo"));
  add("max-requests", "stop measuring after this many answers (0 = no cap)",
      cxxopts::value<std::uint64_t>()->default_value("0"));
  add("connect-timeout", "seconds a handshake may take",
      cxxopts::value<double>()->default_value("10"));
  add("connect-burst", "handshakes in flight at once", cxxopts::value<int>()->default_value("100"));
  add("one-request",
      "one request per connection, then print \"answered N\" and hold them idle for --duration");
  add("json", "print one JSON object instead of text");
  add("h,help", "print usage");
  Options opt;
  try {
    const auto args = options.parse(argc, argv);
    if (args.count("help")) {
      std::printf("%s", options.help().c_str());
      return 0;
    }
    if (!args.count("port")) throw std::invalid_argument("--port is required");
    opt.host = args["host"].as<std::string>();
    opt.port = std::to_string(args["port"].as<int>());
    opt.conns = args["conns"].as<int>();
    opt.size = args["size"].as<std::size_t>();
    opt.duration_s = args["duration"].as<double>();
    opt.warmup_s = args["warmup"].as<double>();
    opt.max_requests = args["max-requests"].as<std::uint64_t>();
    opt.connect_timeout_s = args["connect-timeout"].as<double>();
    opt.connect_burst = args["connect-burst"].as<int>();
    opt.json = args.count("json") > 0;
    opt.one_request = args.count("one-request") > 0;
    const std::string mode = args["mode"].as<std::string>();
    if (mode == "echo") {
      opt.mode = Mode::kEcho;
    } else if (mode == "http") {
      opt.mode = Mode::kHttp;
    } else {
      throw std::invalid_argument("--mode must be echo or http");
    }
    if (opt.conns < 1 || opt.size < 1 || opt.duration_s <= 0 || opt.warmup_s < 0 ||
        opt.connect_burst < 1) {
      throw std::invalid_argument("--conns, --size, --duration, --connect-burst must be positive");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "loadgen: %s\n%s", e.what(), options.help().c_str());
    return 2;
  }
  RaiseFdLimit(opt.conns);
  LoadGenerator gen(opt);
  if (!gen.Init()) return 1;
  gen.Run();
  return gen.Report();
}
