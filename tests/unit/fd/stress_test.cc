// Everything at once, from many threads, for a bounded time: ping-pong over blocking sockets,
// reads timing out, several readers sharing one datagram socket, closes (by dup2) racing reads,
// signals interrupting parked reads, and raw pollDesc readiness racing deadline changes.
// Each part checks its own results; at the end no thread may be left parked and no invariant
// may have been broken.
//
// Fds are retired with dup2 of an at-EOF socket over them, never closed while another thread
// may still name them: a late call then reads EOF from the replacement instead of touching a
// socket that another part of the test got from the kernel under the same number.
#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/base/base.h"
#include "core/base/spinlock.h"
#include "core/fd/fd_table.h"
#include "core/fd/ops.h"
#include "core/poll/poll_desc.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"

namespace gonet::core {
namespace {

constexpr int64_t kMs = 1000000;
constexpr int64_t kBudgetNs = 2000 * kMs;  // how long the parts keep going
constexpr int64_t kHangNs = 30000 * kMs;   // after the budget: hang detector only

template <typename Pred>
bool WaitUntil(Pred pred, int64_t hang_ns) {
  const int64_t give_up = Nanotime() + hang_ns;
  while (!pred()) {
    if (Nanotime() > give_up) return false;
    usleep(200);
  }
  return true;
}

void OnSignal(int) {}

// core's Read, then what the shim does with its answer: "pass through" means the kernel's own
// call. A read racing Retire needs it: between dup2's kernel call and the fd table noting the
// replacement, core may not know the number as its socket (seen about 1 run in 100 under TSan),
// and the kernel's read then sees the replacement's EOF.
IoResult ReadAsTheShimWould(int fd, void* buf, size_t len) {
  IoResult r = Read(fd, buf, len);
  if (!r.passthrough()) return r;
  ssize_t n = read(fd, buf, len);
  return n < 0 ? IoResult::Err(errno) : IoResult::Ok(n);
}

struct Failures {
  std::atomic<int> count{0};
  char first[256] = {};
  std::atomic<bool> has_first{false};
  void Add(const char* what, long a, long b) {
    if (count.fetch_add(1) == 0) {
      snprintf(first, sizeof first, "%s (%ld, %ld)", what, a, b);
      has_first.store(true);
    }
  }
};

class Stress {
 public:
  Stress() : stop_at_(Nanotime() + kBudgetNs) {
    int d[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, d) == 0) {
      NoteSocketPair(d, AF_UNIX, SOCK_STREAM);
      Close(d[1]);
      eof_ = d[0];
    }
  }
  ~Stress() { Close(eof_); }
  bool stop() const { return Nanotime() > stop_at_ || failures_.count.load() > 0; }
  // Replaces fd's open file with the at-EOF socket: parked operations on fd wake with EBADF,
  // later ones read EOF; the number stays ours until the caller closes it.
  void Retire(int fd) {
    IoResult r = Dup3(eof_, fd, 0, true);
    if (!r.ok()) failures_.Add("dup2 retire failed", fd, r.err);
  }
  Failures& failures() { return failures_; }

 private:
  int64_t stop_at_;
  int eof_ = -1;
  Failures failures_;
};

// Two threads bounce a counter over a stream socketpair; every value must come back + 1.
void PingPong(Stress& s, std::atomic<int64_t>& rounds) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return s.failures().Add("socketpair", errno, 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_STREAM);
  std::thread echo([&] {
    for (;;) {
      int64_t v = 0;
      IoResult r = RecvFrom(sv[1], &v, sizeof v, MSG_WAITALL, nullptr, nullptr);
      if (r.n != sizeof v) return s.failures().Add("echo read", r.n, r.err);
      if (v < 0) return;
      ++v;
      IoResult w = Write(sv[1], &v, sizeof v);
      if (w.n != sizeof v) return s.failures().Add("echo write", w.n, w.err);
    }
  });
  for (int64_t i = 0; !s.stop(); ++i) {
    IoResult w = Write(sv[0], &i, sizeof i);
    if (w.n != sizeof i) {
      s.failures().Add("ping write", w.n, w.err);
      break;
    }
    int64_t v = -1;
    IoResult r = RecvFrom(sv[0], &v, sizeof v, MSG_WAITALL, nullptr, nullptr);
    if (r.n != sizeof v || v != i + 1) {
      s.failures().Add("pong", r.n, v);
      break;
    }
    rounds.fetch_add(1);
  }
  int64_t end = -1;
  Write(sv[0], &end, sizeof end);
  echo.join();
  Close(sv[0]);
  Close(sv[1]);
}

// Reads with SO_RCVTIMEO on a socket nobody writes to: every one fails with EAGAIN.
void TimingOut(Stress& s, std::atomic<int64_t>& timeouts) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return s.failures().Add("socketpair", errno, 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_STREAM);
  timeval tv{0, 1000};
  SetSockOpt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  while (!s.stop()) {
    char b;
    IoResult r = Read(sv[0], &b, 1);
    if (r.err != EAGAIN) {
      s.failures().Add("timed read", r.n, r.err);
      break;
    }
    timeouts.fetch_add(1);
  }
  Close(sv[0]);
  Close(sv[1]);
}

// Several readers share one datagram socket; every message is received exactly once.
void SharedReaders(Stress& s, std::atomic<int64_t>& messages) {
  constexpr int kReaders = 4;
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) != 0) return s.failures().Add("socketpair", errno, 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_DGRAM);
  std::vector<std::vector<int>> got(kReaders);
  std::vector<std::thread> readers;
  for (int i = 0; i < kReaders; ++i) {
    readers.emplace_back([&, i] {
      for (;;) {
        int v = -1;
        IoResult r = ReadAsTheShimWould(sv[0], &v, sizeof v);
        if (r.err == EBADF || r.n == 0) return;  // retired
        if (r.n != sizeof v) return s.failures().Add("shared read", r.n, r.err);
        got[i].push_back(v);
      }
    });
  }
  int sent = 0;
  for (; !s.stop(); ++sent) {
    IoResult w = Write(sv[1], &sent, sizeof sent);
    if (w.n != sizeof sent) {
      s.failures().Add("shared write", w.n, w.err);
      break;
    }
    if (sent % 64 == 63) sched_yield();
  }
  // Let the readers drain what was sent, then retire the socket under them.
  WaitUntil(
      [&] {
        char probe;
        return recv(sv[0], &probe, 1, MSG_PEEK | MSG_DONTWAIT) < 0 && errno == EAGAIN;
      },
      kHangNs);
  s.Retire(sv[0]);
  for (auto& t : readers) t.join();
  std::set<int> all;
  size_t n = 0;
  for (auto& g : got) {
    n += g.size();
    all.insert(g.begin(), g.end());
  }
  if (all.size() != n) s.failures().Add("a message was received twice", n, all.size());
  if (static_cast<int>(n) != sent) s.failures().Add("messages lost", sent, n);
  messages.fetch_add(static_cast<int64_t>(n));
  Close(sv[0]);
  Close(sv[1]);
}

// A read on a fresh socket races its retirement by dup2: it ends with EBADF (evicted or refused)
// or EOF (it started after the replacement), never hangs, never sees anything else.
void CloseRacingRead(Stress& s, std::atomic<int64_t>& closes) {
  std::atomic<int> fd_slot{-1};
  std::atomic<int> round{0};
  std::atomic<int> finished{0};
  std::thread reader([&] {
    for (int i = 1;; ++i) {
      while (round.load() != i) {
        if (round.load() < 0) return;
      }
      char b;
      IoResult r = ReadAsTheShimWould(fd_slot.load(), &b, 1);
      if (!(r.err == EBADF || (r.ok() && r.n == 0))) s.failures().Add("racing read", r.n, r.err);
      finished.store(i);
    }
  });
  for (int i = 1; !s.stop(); ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
      s.failures().Add("socketpair", errno, 0);
      break;
    }
    NoteSocketPair(sv, AF_UNIX, SOCK_STREAM);
    fd_slot.store(sv[0]);
    round.store(i);
    for (int spin = rand() % 2000; spin > 0; --spin) CpuRelax();
    s.Retire(sv[0]);
    if (!WaitUntil([&] { return finished.load() == i; }, kHangNs)) {
      s.failures().Add("read not ended by dup2-close", i, sv[0]);
      if (PollDesc* pd = FdTable::Find(sv[0])->pd.load()) pd->Evict();
      WaitUntil([&] { return finished.load() == i; }, kHangNs);
      break;
    }
    Close(sv[0]);
    Close(sv[1]);
    closes.fetch_add(1);
  }
  round.store(-1);
  reader.join();
}

// pthread_kill interrupts a parked read (handler without SA_RESTART): EINTR, again and again.
void Interrupted(Stress& s, std::atomic<int64_t>& eintrs) {
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) return s.failures().Add("socketpair", errno, 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_STREAM);
  std::atomic<bool> done{false};
  std::thread reader([&] {
    for (;;) {
      char b;
      IoResult r = ReadAsTheShimWould(sv[0], &b, 1);
      if (r.err == EINTR) {
        eintrs.fetch_add(1);
        continue;
      }
      if (!(r.err == EBADF || (r.ok() && r.n == 0)))
        s.failures().Add("interrupted read", r.n, r.err);
      break;
    }
    done.store(true);
  });
  while (!s.stop()) {
    pthread_kill(reader.native_handle(), SIGUSR1);
    usleep(200);
  }
  s.Retire(sv[0]);
  if (!WaitUntil([&] { return done.load(); }, kHangNs)) {
    s.failures().Add("interrupted reader never left", 0, 0);
  }
  reader.join();
  Close(sv[0]);
  Close(sv[1]);
}

// Raw pollDesc: one waiter, one thread making it ready and moving its deadline.
void Semaphore(Stress& s, std::atomic<int64_t>& waits) {
  PollDesc* pd = PollDesc::Alloc(-1);
  std::atomic<bool> done{false};
  std::thread waiter([&] {
    while (!done.load()) {
      WaitResult r = pd->Wait(Mode::kRead, WaitKind::kRestartable);
      if (r == WaitResult::kClosing) break;
      if (r != WaitResult::kOk && r != WaitResult::kTimeout) {
        s.failures().Add("pollDesc wait", static_cast<long>(r), 0);
      }
      waits.fetch_add(1);
      if (r == WaitResult::kTimeout) sched_yield();  // a past deadline fails at once: don't spin
    }
  });
  for (int i = 0; !s.stop(); ++i) {
    switch (i % 4) {
      case 0:
        pd->Ready(Mode::kRead);
        break;
      case 1:
        pd->SetDeadline(Mode::kRead, Nanotime() + (i % 7) * 20000);
        break;
      case 2:
        pd->SetDeadline(Mode::kRead, 0);
        pd->Ready(Mode::kRead);
        break;
      default:
        pd->SetDeadline(Mode::kRead, Nanotime() + 3600 * 1000 * kMs);
        break;
    }
    if (i % 16 == 0) usleep(50);
  }
  done.store(true);
  pd->Evict();
  waiter.join();
  pd->Free();
}

// Threads mode waits either on the pollDesc (netpoller path) or in the kernel's own call
// (kernel-wait path, woken by SIGURG on close): both must hold up.
enum class WaitPath { kNetpoller, kKernel };
void PrintTo(WaitPath path, std::ostream* os) {
  *os << (path == WaitPath::kKernel ? "Kernel" : "Netpoller");
}
class StressTest : public ::testing::TestWithParam<WaitPath> {};

TEST_P(StressTest, EverythingAtOnceFromManyThreadsStaysCorrect) {
  Config c;
  c.mode = RunMode::kThreads;
  c.threads_wait_kernel = GetParam() == WaitPath::kKernel;
  InitForTest(c);
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);  // no SA_RESTART; stays installed (see signals)
  const int64_t parked = Stats().threads_parked.load();
  const int64_t invariants = Stats().invariant_failures.load();

  std::atomic<int64_t> rounds{0}, timeouts{0}, messages{0}, closes{0}, eintrs{0}, waits{0};
  std::atomic<int> finished{0};
  {
    Stress s;
    std::vector<std::thread> parts;
    auto part = [&](auto fn, std::atomic<int64_t>& counter) {
      std::atomic<int64_t>* out = &counter;
      parts.emplace_back([&s, &finished, fn, out] {
        fn(s, *out);
        finished.fetch_add(1);
      });
    };
    part(PingPong, rounds);
    part(PingPong, rounds);
    part(TimingOut, timeouts);
    part(SharedReaders, messages);
    part(CloseRacingRead, closes);
    part(Interrupted, eintrs);
    part(Semaphore, waits);
    const int n = static_cast<int>(parts.size());
    if (!WaitUntil([&] { return finished.load() == n; }, kBudgetNs + kHangNs)) {
      fprintf(stderr, "stress: %d of %d parts never finished (hang); first failure: %s\n",
              n - finished.load(), n, s.failures().has_first.load() ? s.failures().first : "none");
      fflush(stderr);
      _exit(1);
    }
    for (auto& t : parts) t.join();
    EXPECT_EQ(s.failures().count.load(), 0) << s.failures().first;
  }
  printf(
      "stress: %lld ping-pongs, %lld timeouts, %lld shared messages, %lld racing closes, "
      "%lld EINTRs, %lld pollDesc waits\n",
      static_cast<long long>(rounds.load()), static_cast<long long>(timeouts.load()),
      static_cast<long long>(messages.load()), static_cast<long long>(closes.load()),
      static_cast<long long>(eintrs.load()), static_cast<long long>(waits.load()));
  EXPECT_GT(rounds.load(), 0);
  EXPECT_GT(timeouts.load(), 0);
  EXPECT_GT(closes.load(), 0);
  EXPECT_EQ(Stats().threads_parked.load(), parked) << "a thread is still counted as parked";
  EXPECT_EQ(Stats().invariant_failures.load(), invariants);
}

INSTANTIATE_TEST_SUITE_P(Wait, StressTest,
                         ::testing::Values(WaitPath::kNetpoller, WaitPath::kKernel),
                         [](const ::testing::TestParamInfo<WaitPath>& info) {
                           return std::string(info.param == WaitPath::kKernel ? "Kernel"
                                                                              : "Netpoller");
                         });

}  // namespace
}  // namespace gonet::core
