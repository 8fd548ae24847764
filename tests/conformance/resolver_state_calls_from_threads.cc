// The res_* calls from many threads at once give glibc's own answers and h_errno: res_nquery,
// res_nsearch, res_nquerydomain and res_nsend on each thread's own res_state, and res_query,
// res_search, res_querydomain and res_send on a thread's _res (res_init, then the program's own
// server and options in it, which the calls keep). The DNS server is a child process on loopback
// UDP that answers each query after ~200 ms: A 192.0.2.7 for slow.gonet.test, NXDOMAIN for any
// other name; every state is pointed at it with no search list, so neither /etc/resolv.conf nor
// any outside network matters.
// Issue 13: in fibers mode (one worker here) a res_* call held its worker's OS thread in the
// kernel for the whole lookup, until the sysmon handed the worker's other fibers to another OS
// thread, so a thread that slept in 10 ms steps beside the lookups (the ticker), and each lookup
// thread once its call returned, found itself on a different OS thread, which natively never
// happens: "stayed on one OS thread" says no. Now the calls run on offload helpers; the fiber
// parks, sees the h_errno the helper's call set, and its worker runs the others.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <resolv.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "transcript.h"

using namespace conf;

namespace {

constexpr int kDelayMs = 200;  // the server's delay before each answer
constexpr const char* kSlowName = "slow.gonet.test";
constexpr const char* kMissingName = "missing.gonet.test";
constexpr int kLookupThreads = 4;

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

const char* HErrnoName(int h) {
  switch (h) {
    case NETDB_INTERNAL:
      return "NETDB_INTERNAL";
    case NETDB_SUCCESS:
      return "NETDB_SUCCESS";
    case HOST_NOT_FOUND:
      return "HOST_NOT_FOUND";
    case TRY_AGAIN:
      return "TRY_AGAIN";
    case NO_RECOVERY:
      return "NO_RECOVERY";
    case NO_DATA:
      return "NO_DATA";
    default:
      return "h_errno?";
  }
}

// ---- the server (a child process) ----

// Skips a (possibly compressed) name at p; returns the offset after it, or -1.
int SkipName(const unsigned char* m, int len, int p) {
  while (p < len) {
    if ((m[p] & 0xc0) == 0xc0) return p + 2 <= len ? p + 2 : -1;
    if (m[p] == 0) return p + 1;
    p += m[p] + 1;
  }
  return -1;
}

// The question's name, dotted, lower case as sent.
std::string QuestionName(const unsigned char* m, int len) {
  std::string name;
  for (int p = 12; p < len && m[p] != 0 && (m[p] & 0xc0) == 0;) {
    if (!name.empty()) name += '.';
    name.append(reinterpret_cast<const char*>(m + p + 1), m[p]);
    p += m[p] + 1;
  }
  return name;
}

// The answer to one query: the header and question echoed with QR, AA and RA set, and one A
// record for kSlowName (type A), no record and NXDOMAIN for any other name.
int Answer(const unsigned char* q, int qlen, unsigned char* out) {
  int qend = SkipName(q, qlen, 12);
  if (qlen < 12 || qend < 0 || qend + 4 > qlen) return -1;
  qend += 4;
  memcpy(out, q, qend);
  const bool known = QuestionName(q, qlen) == kSlowName;
  const bool type_a = q[qend - 4] == 0 && q[qend - 3] == 1;
  out[2] = static_cast<unsigned char>(0x80 | (q[2] & 0x79) | 0x04);  // QR, opcode, AA, RD
  out[3] = static_cast<unsigned char>(0x80 | (known ? 0 : 3));       // RA, NOERROR / NXDOMAIN
  out[4] = 0;
  out[5] = 1;
  out[6] = 0;
  out[7] = known && type_a ? 1 : 0;
  memset(out + 8, 0, 4);
  int n = qend;
  if (known && type_a) {
    const unsigned char rr[] = {0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7};
    memcpy(out + n, rr, sizeof rr);
    n += sizeof rr;
  }
  return n;
}

// Answers every query kDelayMs after it came, many in flight at once, until a "quit" datagram.
[[noreturn]] void Serve(int fd) {
  alarm(60);
  struct Pending {
    int64_t due;
    sockaddr_in to;
    unsigned char msg[512];
    int len;
  };
  std::vector<Pending> pending;
  for (;;) {
    int64_t now = NowNs();
    int timeout = -1;
    for (const Pending& p : pending) {
      int ms = p.due <= now ? 0 : static_cast<int>((p.due - now) / 1000000 + 1);
      if (timeout < 0 || ms < timeout) timeout = ms;
    }
    pollfd pfd = {fd, POLLIN, 0};
    poll(&pfd, 1, timeout);
    unsigned char q[512];
    sockaddr_in from;
    socklen_t fromlen = sizeof from;
    ssize_t n;
    while ((n = recvfrom(fd, q, sizeof q, MSG_DONTWAIT, reinterpret_cast<sockaddr*>(&from),
                         &fromlen)) >= 0) {
      if (n == 4 && memcmp(q, "quit", 4) == 0) _exit(0);
      Pending p;
      p.due = NowNs() + int64_t{kDelayMs} * 1000000;
      p.to = from;
      p.len = Answer(q, static_cast<int>(n), p.msg);
      if (p.len > 0) pending.push_back(p);
      fromlen = sizeof from;
    }
    now = NowNs();
    for (size_t i = 0; i < pending.size();) {
      if (pending[i].due > now) {
        ++i;
        continue;
      }
      sendto(fd, pending[i].msg, pending[i].len, 0, reinterpret_cast<sockaddr*>(&pending[i].to),
             sizeof pending[i].to);
      pending.erase(pending.begin() + static_cast<long>(i));
    }
  }
}

// ---- the clients ----

sockaddr_in g_server;

// A query for name, type A, class IN, recursion desired, with the given id.
int MakeQuery(const char* name, uint16_t id, unsigned char* out) {
  const unsigned char header[12] = {static_cast<unsigned char>(id >> 8),
                                    static_cast<unsigned char>(id),
                                    0x01,
                                    0,
                                    0,
                                    1,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0};
  memcpy(out, header, sizeof header);
  int n = 12;
  for (const char* label = name; *label != '\0';) {
    const char* dot = strchr(label, '.');
    size_t len = dot != nullptr ? static_cast<size_t>(dot - label) : strlen(label);
    out[n++] = static_cast<unsigned char>(len);
    memcpy(out + n, label, len);
    n += static_cast<int>(len);
    label += len + (dot != nullptr ? 1 : 0);
  }
  out[n++] = 0;
  const unsigned char tail[4] = {0, 1, 0, 1};
  memcpy(out + n, tail, 4);
  return n + 4;
}

// "rcode R, N answers, A a.b.c.d" for an answer of len bytes (or what is wrong with it).
std::string Describe(const unsigned char* m, int len) {
  if (len < 12) return "short answer";
  char s[128];
  const int rcode = m[3] & 0x0f;
  const int ancount = (m[6] << 8) | m[7];
  int p = SkipName(m, len, 12);
  std::string addr = "no address";
  if (p >= 0 && ancount > 0) {
    p = SkipName(m, len, p + 4);
    if (p >= 0 && p + 14 <= len && m[p] == 0 && m[p + 1] == 1) {
      char a[INET_ADDRSTRLEN];
      inet_ntop(AF_INET, m + p + 10, a, sizeof a);
      addr = std::string("A ") + a;
    }
  }
  snprintf(s, sizeof s, "rcode %d, %d answers, %s", rcode, ancount, addr.c_str());
  return s;
}

// Points a state at the server alone: one try, no search list, no options from resolv.conf.
void UseServer(res_state st) {
  st->nscount = 1;
  st->nsaddr_list[0] = g_server;
  st->retry = 1;
  st->retrans = 10;  // seconds: far above the server's delay
  st->ndots = 1;
  st->options = RES_INIT | RES_RECURSE;
  st->dnsrch[0] = nullptr;
  st->defdname[0] = '\0';
}

struct Log {
  std::vector<std::string> lines;
  void Add(const char* fmt, ...) __attribute__((format(printf, 2, 3))) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    lines.emplace_back(line);
  }
};

// One call's outcome: its return (the answer's length is the server's, so only its sign), the
// answer, and h_errno, which the caller cleared before the call.
void Note(Log& log, const char* what, int r, const unsigned char* answer) {
  int h = h_errno;
  log.Add("%s -> %s, %s, h_errno %s", what,
          r > 0    ? "length"
          : r == 0 ? "0"
                   : "-1",
          r > 0 ? Describe(answer, r).c_str() : "no answer", HErrnoName(h));
}

// The reentrant calls on this thread's own state.
void StateLookups(Log& log) {
  struct __res_state st;
  memset(&st, 0, sizeof st);
  log.Add("res_ninit -> %d", res_ninit(&st));
  UseServer(&st);
  unsigned char answer[512];
  h_errno = NETDB_SUCCESS;
  int r = res_nquery(&st, kSlowName, C_IN, T_A, answer, sizeof answer);
  Note(log, "res_nquery(slow.gonet.test)", r, answer);
  h_errno = NETDB_SUCCESS;
  r = res_nquery(&st, kMissingName, C_IN, T_A, answer, sizeof answer);
  Note(log, "res_nquery(missing.gonet.test)", r, answer);
  h_errno = NETDB_SUCCESS;
  r = res_nsearch(&st, kSlowName, C_IN, T_A, answer, sizeof answer);
  Note(log, "res_nsearch(slow.gonet.test)", r, answer);
  h_errno = NETDB_SUCCESS;
  r = res_nsearch(&st, kMissingName, C_IN, T_A, answer, sizeof answer);
  Note(log, "res_nsearch(missing.gonet.test)", r, answer);
  h_errno = NETDB_SUCCESS;
  r = res_nquerydomain(&st, "slow", "gonet.test", C_IN, T_A, answer, sizeof answer);
  Note(log, "res_nquerydomain(slow, gonet.test)", r, answer);
  unsigned char query[512];
  int qlen = MakeQuery(kSlowName, 0x4242, query);
  h_errno = NETDB_SUCCESS;
  r = res_nsend(&st, query, qlen, answer, sizeof answer);
  Note(log, "res_nsend(slow.gonet.test)", r, answer);
  log.Add("state's h_errno field %s, server kept %s", HErrnoName(st.res_h_errno),
          YesNo(st.nscount == 1 && st.nsaddr_list[0].sin_port == g_server.sin_port));
  res_nclose(&st);
}

// The non-reentrant calls on this thread's _res.
void ThreadStateLookups(Log& log) {
  log.Add("res_init -> %d", res_init());
  UseServer(&_res);
  unsigned char answer[512];
  h_errno = NETDB_SUCCESS;
  int r = res_query(kSlowName, C_IN, T_A, answer, sizeof answer);
  Note(log, "res_query(slow.gonet.test)", r, answer);
  h_errno = NETDB_SUCCESS;
  r = res_search(kMissingName, C_IN, T_A, answer, sizeof answer);
  Note(log, "res_search(missing.gonet.test)", r, answer);
  log.Add("_res.res_h_errno %s", HErrnoName(_res.res_h_errno));
  h_errno = NETDB_SUCCESS;
  r = res_querydomain("slow", "gonet.test", C_IN, T_A, answer, sizeof answer);
  Note(log, "res_querydomain(slow, gonet.test)", r, answer);
  h_errno = NETDB_SUCCESS;
  r = res_query(kSlowName, C_IN, T_MX, answer, sizeof answer);
  Note(log, "res_query(slow.gonet.test, MX)", r, answer);
  unsigned char query[512];
  int qlen = MakeQuery(kSlowName, 0x4343, query);
  h_errno = NETDB_SUCCESS;
  r = res_send(query, qlen, answer, sizeof answer);
  Note(log, "res_send(slow.gonet.test)", r, answer);
  log.Add("_res kept the program's server %s, options %s, retry %d",
          YesNo(_res.nscount == 1 && _res.nsaddr_list[0].sin_port == g_server.sin_port),
          YesNo(_res.options == (RES_INIT | RES_RECURSE)), _res.retry);
}

}  // namespace

int main() {
  alarm(120);
  int sfd = Must(socket(AF_INET, SOCK_DGRAM, 0), "socket");
  g_server = {};
  g_server.sin_family = AF_INET;
  g_server.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  Must(bind(sfd, reinterpret_cast<sockaddr*>(&g_server), sizeof g_server), "bind");
  socklen_t len = sizeof g_server;
  Must(getsockname(sfd, reinterpret_cast<sockaddr*>(&g_server), &len), "getsockname");
  pid_t server = Must(fork(), "fork");
  if (server == 0) Serve(sfd);

  // A thread whose _res nobody set up: its first res_send initialises it, as glibc does on
  // first use (the answer buffer is too small for a header, so no server is asked).
  std::thread fresh([] {
    const bool before = (_res.options & RES_INIT) != 0;
    unsigned char answer[512] = {};
    h_errno = NETDB_SUCCESS;
    errno = 0;
    int r = res_send(answer, sizeof answer, answer, 4);
    int err = errno;
    Say("fresh thread: RES_INIT before %s; res_send(4-byte answer buffer) -> %d %s, "
        "h_errno %s; RES_INIT after %s",
        YesNo(before), r, ErrnoName(err), HErrnoName(h_errno),
        YesNo((_res.options & RES_INIT) != 0));
  });
  fresh.join();

  std::atomic<bool> lookups_done{false};
  std::atomic<int> ticks{0};
  bool ticker_one_thread = true;
  std::thread ticker([&] {
    const pid_t tid = Tid();
    while (!lookups_done.load()) {
      SleepMs(10);
      ticks.fetch_add(1);
      if (Tid() != tid) ticker_one_thread = false;
    }
  });

  std::vector<Log> logs(kLookupThreads + 1);
  std::vector<char> one_thread(kLookupThreads + 1, 1);  // char: each thread writes its own
  std::vector<std::thread> threads;
  const int ticks_before = ticks.load();
  for (int i = 0; i <= kLookupThreads; ++i) {
    threads.emplace_back([&, i] {
      const pid_t tid = Tid();
      if (i < kLookupThreads) {
        StateLookups(logs[i]);
      } else {
        ThreadStateLookups(logs[i]);
      }
      one_thread[i] = Tid() == tid ? 1 : 0;
    });
  }
  for (std::thread& t : threads) t.join();
  const int ticks_during = ticks.load() - ticks_before;
  lookups_done.store(true);
  ticker.join();

  for (int i = 0; i <= kLookupThreads; ++i) {
    const char* who = i < kLookupThreads ? "own state" : "_res";
    for (const std::string& line : logs[i].lines) Say("thread %d (%s): %s", i, who, line.c_str());
    Say("thread %d (%s): stayed on one OS thread %s", i, who, YesNo(one_thread[i] != 0));
  }
  Say("ticker advanced while the lookups waited %s, stayed on one OS thread %s",
      YesNo(ticks_during >= 2), YesNo(ticker_one_thread));

  Must(sendto(sfd, "quit", 4, 0, reinterpret_cast<sockaddr*>(&g_server), sizeof g_server),
       "sendto quit");
  int status = 0;
  Must(waitpid(server, &status, 0), "waitpid");
  Say("server exited %s", YesNo(WIFEXITED(status) && WEXITSTATUS(status) == 0));
  return 0;
}
