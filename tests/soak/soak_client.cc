// soak_client: the load side of `make soak`.
//
// Threads that connect, exchange checksummed messages with an echo or HTTP daemon, and end each
// connection in one of several ways chosen at random (clean close, close halfway through a
// message, abortive close with RST, close without reading the reply), until --seconds have
// passed. Every exchange that completes is compared byte for byte with what was sent (echo) or
// with examples/common/byte_pattern.h (HTTP /bytes/N), and its checksum is checked too, so a
// reply that is wrong in a way that happens to keep its length still shows.
//
// A connection cut by the server (injected ECONNRESET on its side, or a fault that makes it
// close) is not a failure: the client counts it and moves on. What is a failure: a byte that
// differs, a reply that never comes (SO_RCVTIMEO expires: the daemon hung), or an errno the
// load cannot explain. The summary is one JSON line on stdout; the exit status is 0 iff there
// was no failure.
//
// --probe makes one clean exchange and exits 0 iff it was byte-exact: "does the daemon still
// answer?" after the load stops.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

struct Options {
  int port = 0;
  bool http = false;
  int seconds = 10;
  int conns = 64;  // concurrent client threads
  uint64_t seed = 1;
  int timeout_s = 30;  // SO_RCVTIMEO / SO_SNDTIMEO: a reply slower than this is a hang
  bool probe = false;
};

// Tallies shared by every client thread.
struct Tally {
  std::atomic<int64_t> connects{0}, refused{0}, exchanges{0}, bytes{0};
  std::atomic<int64_t> cut_eof{0}, cut_reset{0}, cut_pipe{0};    // the server ended it early
  std::atomic<int64_t> aborted_by_client{0};                     // RST / mid-message close
  std::atomic<int64_t> mismatches{0}, stalls{0}, unexpected{0};  // failures
  std::mutex mu;
  std::map<std::string, int64_t> unexpected_by_what;  // "recv:EINVAL" -> count

  void Unexpected(const char* what, int err) {
    unexpected.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu);
    ++unexpected_by_what[std::string(what) + ":" + strerrorname_np(err)];
  }
};

// Fletcher-style checksum over the payload; carried in the message header so the echo must
// bring it back intact as well as the bytes it covers.
uint32_t Checksum(const uint8_t* p, size_t n) {
  uint32_t a = 1, b = 0;
  for (size_t i = 0; i < n; ++i) {
    a = (a + p[i]) % 65521;
    b = (b + a) % 65521;
  }
  return (b << 16) | a;
}

enum class Outcome { kOk, kCut, kFailed };

// Classifies a failed or short socket call. EOF, ECONNRESET and EPIPE mean the server ended
// the connection (injected faults do that); EAGAIN means our timeout expired: a hang.
Outcome Classify(Tally* t, const char* what, ssize_t n, int err) {
  if (n == 0) {
    t->cut_eof.fetch_add(1);
    return Outcome::kCut;
  }
  if (err == ECONNRESET) {
    t->cut_reset.fetch_add(1);
    return Outcome::kCut;
  }
  if (err == EPIPE) {
    t->cut_pipe.fetch_add(1);
    return Outcome::kCut;
  }
  if (err == EAGAIN) {
    t->stalls.fetch_add(1);
    return Outcome::kFailed;
  }
  t->Unexpected(what, err);
  return Outcome::kFailed;
}

Outcome SendAll(Tally* t, int fd, const uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return Classify(t, "send", w < 0 ? -1 : 1, errno);
    p += w;
    n -= static_cast<size_t>(w);
  }
  return Outcome::kOk;
}

Outcome RecvAll(Tally* t, int fd, uint8_t* p, size_t n) {
  while (n > 0) {
    const ssize_t r = recv(fd, p, n, 0);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return Classify(t, "recv", r, errno);
    p += r;
    n -= static_cast<size_t>(r);
  }
  return Outcome::kOk;
}

int Connect(const Options& o, Tally* t) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) {
    t->Unexpected("socket", errno);
    return -1;
  }
  timeval tv{o.timeout_s, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(static_cast<uint16_t>(o.port));
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) {
    const int err = errno;
    close(fd);
    // ECONNREFUSED is injected on purpose (client-side GONET_FAULT). EINPROGRESS means our
    // SO_SNDTIMEO expired on connect: the listener stopped accepting.
    if (err == ECONNREFUSED) {
      t->refused.fetch_add(1);
    } else if (err == EINPROGRESS || err == EAGAIN) {
      t->stalls.fetch_add(1);
    } else {
      t->Unexpected("connect", err);
    }
    return -1;
  }
  t->connects.fetch_add(1);
  return fd;
}

void AbortWithReset(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

// How a connection ends, chosen per connection.
enum class Ending { kClean, kResetMidMessage, kCloseMidMessage, kCloseWithoutReading };

Ending PickEnding(std::mt19937_64& rng) {
  const unsigned r = static_cast<unsigned>(rng() % 100);
  if (r < 70) return Ending::kClean;
  if (r < 80) return Ending::kResetMidMessage;
  if (r < 90) return Ending::kCloseMidMessage;
  return Ending::kCloseWithoutReading;
}

// One echo exchange: header {len, checksum} then payload; the echo must return all of it.
// `last` with a non-clean ending cuts the exchange short the way `ending` says.
Outcome EchoExchange(Tally* t, int fd, std::mt19937_64& rng, bool last, Ending ending) {
  const size_t len = 1 + rng() % (32 * 1024 - 8);
  std::vector<uint8_t> msg(8 + len);
  for (size_t i = 8; i < msg.size(); ++i) msg[i] = static_cast<uint8_t>(rng());
  const uint32_t n32 = static_cast<uint32_t>(len), sum = Checksum(msg.data() + 8, len);
  memcpy(msg.data(), &n32, 4);
  memcpy(msg.data() + 4, &sum, 4);
  if (last && (ending == Ending::kResetMidMessage || ending == Ending::kCloseMidMessage)) {
    const Outcome o = SendAll(t, fd, msg.data(), msg.size() / 2);
    return o == Outcome::kOk ? Outcome::kCut : o;
  }
  Outcome o = SendAll(t, fd, msg.data(), msg.size());
  if (o != Outcome::kOk) return o;
  if (last && ending == Ending::kCloseWithoutReading) return Outcome::kCut;
  std::vector<uint8_t> back(msg.size());
  o = RecvAll(t, fd, back.data(), back.size());
  if (o != Outcome::kOk) return o;
  uint32_t back_len, back_sum;
  memcpy(&back_len, back.data(), 4);
  memcpy(&back_sum, back.data() + 4, 4);
  if (back != msg || back_len != n32 || Checksum(back.data() + 8, len) != back_sum) {
    t->mismatches.fetch_add(1);
    return Outcome::kFailed;
  }
  t->exchanges.fetch_add(1);
  t->bytes.fetch_add(static_cast<int64_t>(msg.size()));
  return Outcome::kOk;
}

// One HTTP exchange: GET /bytes/N on a keep-alive connection; the body must be byte_pattern's
// seed-0 stream and Content-Length must say N.
Outcome HttpExchange(Tally* t, int fd, std::mt19937_64& rng, bool last, Ending ending) {
  const size_t n = rng() % (64 * 1024);
  const std::string req =
      "GET /bytes/" + std::to_string(n) + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  const auto* rp = reinterpret_cast<const uint8_t*>(req.data());
  if (last && (ending == Ending::kResetMidMessage || ending == Ending::kCloseMidMessage)) {
    const Outcome o = SendAll(t, fd, rp, req.size() / 2);
    return o == Outcome::kOk ? Outcome::kCut : o;
  }
  Outcome o = SendAll(t, fd, rp, req.size());
  if (o != Outcome::kOk) return o;
  if (last && ending == Ending::kCloseWithoutReading) return Outcome::kCut;
  std::string head;
  uint8_t c;
  while (head.size() < 4 || head.compare(head.size() - 4, 4, "\r\n\r\n") != 0) {
    o = RecvAll(t, fd, &c, 1);
    if (o != Outcome::kOk) return o;
    head.push_back(static_cast<char>(c));
    if (head.size() > 4096) break;
  }
  const std::string want_len = "Content-Length: " + std::to_string(n) + "\r\n";
  if (head.rfind("HTTP/1.1 200 OK\r\n", 0) != 0 || head.find(want_len) == std::string::npos) {
    t->mismatches.fetch_add(1);
    return Outcome::kFailed;
  }
  std::vector<uint8_t> body(n);
  o = RecvAll(t, fd, body.data(), n);
  if (o != Outcome::kOk) return o;
  for (size_t i = 0; i < n; ++i) {
    if (body[i] != static_cast<uint8_t>(i % 251)) {
      t->mismatches.fetch_add(1);
      return Outcome::kFailed;
    }
  }
  t->exchanges.fetch_add(1);
  t->bytes.fetch_add(static_cast<int64_t>(n));
  return Outcome::kOk;
}

void ClientLoop(const Options& o, Tally* t, uint64_t seed,
                std::chrono::steady_clock::time_point deadline) {
  std::mt19937_64 rng(seed);
  while (std::chrono::steady_clock::now() < deadline) {
    const int fd = Connect(o, t);
    if (fd < 0) continue;
    const Ending ending = PickEnding(rng);
    const int exchanges = 1 + static_cast<int>(rng() % 8);
    Outcome out = Outcome::kOk;
    for (int i = 0; i < exchanges && out == Outcome::kOk; ++i) {
      const bool last = i == exchanges - 1;
      out =
          o.http ? HttpExchange(t, fd, rng, last, ending) : EchoExchange(t, fd, rng, last, ending);
    }
    if (ending == Ending::kResetMidMessage && out == Outcome::kCut) {
      t->aborted_by_client.fetch_add(1);
      AbortWithReset(fd);
    } else {
      if (ending != Ending::kClean && out == Outcome::kCut) t->aborted_by_client.fetch_add(1);
      close(fd);
    }
  }
}

bool ParseArgs(int argc, char** argv, Options* o) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--port")
      o->port = atoi(next());
    else if (a == "--proto")
      o->http = std::string(next()) == "http";
    else if (a == "--seconds")
      o->seconds = atoi(next());
    else if (a == "--conns")
      o->conns = atoi(next());
    else if (a == "--seed")
      o->seed = strtoull(next(), nullptr, 10);
    else if (a == "--timeout")
      o->timeout_s = atoi(next());
    else if (a == "--probe")
      o->probe = true;
    else
      return false;
  }
  return o->port > 0 && o->conns > 0 && o->seconds >= 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  if (!ParseArgs(argc, argv, &o)) {
    std::fprintf(stderr,
                 "usage: soak_client --port P [--proto echo|http] [--seconds S] [--conns N] "
                 "[--seed N] [--timeout S] [--probe]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  Tally t;
  if (o.probe) {
    std::mt19937_64 rng(o.seed);
    const int fd = Connect(o, &t);
    if (fd < 0) return 1;
    const Outcome out = o.http ? HttpExchange(&t, fd, rng, false, Ending::kClean)
                               : EchoExchange(&t, fd, rng, false, Ending::kClean);
    close(fd);
    return out == Outcome::kOk ? 0 : 1;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(o.seconds);
  std::vector<std::thread> threads;
  for (int i = 0; i < o.conns; ++i) {
    threads.emplace_back(ClientLoop, std::cref(o), &t, o.seed * 1000003 + static_cast<uint64_t>(i),
                         deadline);
  }
  for (auto& th : threads) th.join();
  std::string unexpected = "{";
  for (const auto& [what, n] : t.unexpected_by_what) {
    if (unexpected.size() > 1) unexpected += ",";
    unexpected += "\"" + what + "\":" + std::to_string(n);
  }
  unexpected += "}";
  std::printf(
      "{\"connects\":%lld,\"refused\":%lld,\"exchanges\":%lld,\"bytes\":%lld,\"cut_eof\":%lld,"
      "\"cut_reset\":%lld,\"cut_pipe\":%lld,\"aborted_by_client\":%lld,\"mismatches\":%lld,"
      "\"stalls\":%lld,\"unexpected\":%lld,\"unexpected_by_what\":%s}\n",
      (long long)t.connects, (long long)t.refused, (long long)t.exchanges, (long long)t.bytes,
      (long long)t.cut_eof, (long long)t.cut_reset, (long long)t.cut_pipe,
      (long long)t.aborted_by_client, (long long)t.mismatches, (long long)t.stalls,
      (long long)t.unexpected, unexpected.c_str());
  return t.mismatches == 0 && t.stalls == 0 && t.unexpected == 0 ? 0 : 1;
}
