// poll of one socket from a fiber (core/fd/poll_wait.cc): the fiber parks on the socket's pollDesc,
// so a thousand idle connections polled by their threads cost no helper threads, and the answer
// is still the kernel's poll of the socket.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "core/fd/ops.h"
#include "core/stats/stats.h"
#include "tests/unit/fiber_test_util.h"

namespace gonet::core {
namespace {

using fibertest::Go;
using fibertest::kMs;
using fibertest::StartFibersMode;
using fibertest::WaitUntil;

struct Pair {
  int fd[2] = {-1, -1};
  Pair() {
    EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fd), 0);
    NoteSocket(fd[0], AF_UNIX, SOCK_STREAM);
    NoteSocket(fd[1], AF_UNIX, SOCK_STREAM);
  }
  ~Pair() {
    Close(fd[0]);
    Close(fd[1]);
    close(fd[0]);
    close(fd[1]);
  }
};

TEST(PollWait, FibersPollingIdleSocketsParkOnTheirPollDescs) {
  StartFibersMode();
  constexpr int kFibers = 20;
  std::vector<Pair> pairs(kFibers);
  std::atomic<int> ready{0};
  const int64_t offloaded = Stats().offloaded_calls.load();
  const int64_t parked_before = Stats().threads_parked.load();
  std::vector<FiberTask*> tasks;
  for (int i = 0; i < kFibers; ++i) {
    tasks.push_back(Go([&, i] {
      pollfd p{pairs[i].fd[0], POLLIN, 0};
      IoResult r = PollOneSocket(&p, 0);
      ASSERT_FALSE(r.passthrough());
      EXPECT_EQ(r.n, 1);
      EXPECT_EQ(p.revents, POLLIN);
      ready.fetch_add(1);
    }));
  }
  // Every poller is parked on a pollDesc (the gauge), none on a helper thread.
  ASSERT_TRUE(WaitUntil([&] { return Stats().threads_parked.load() >= parked_before + kFibers; }));
  EXPECT_EQ(ready.load(), 0);
  for (auto& p : pairs) ASSERT_EQ(write(p.fd[1], "x", 1), 1);
  for (FiberTask* t : tasks) ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(ready.load(), kFibers);
  EXPECT_EQ(Stats().offloaded_calls.load(), offloaded);
}

TEST(PollWait, TimeoutReturnsZeroAndHangupIsReported) {
  StartFibersMode();
  Pair pair;
  std::atomic<bool> timed_out{false};
  FiberTask* t = Go([&] {
    pollfd p{pair.fd[0], POLLIN, 0};
    IoResult r = PollOneSocket(&p, 20 * kMs);
    EXPECT_EQ(r.n, 0);  // nothing arrived before the program's timeout
    EXPECT_EQ(p.revents, 0);
    timed_out = true;
    // The peer hangs up while we wait: the kernel's answer (POLLIN|POLLHUP for a unix stream).
    IoResult r2 = PollOneSocket(&p, 0);
    EXPECT_EQ(r2.n, 1);
    EXPECT_NE(p.revents & POLLHUP, 0);
  });
  // The first wait times out by itself; the second is ended by the shutdown.
  ASSERT_TRUE(WaitUntil([&] { return timed_out.load(); }));
  ASSERT_EQ(shutdown(pair.fd[1], SHUT_RDWR), 0);
  ASSERT_EQ(t->Join(nullptr), 0);
}

TEST(PollWait, OtherShapesAreLeftToTheCaller) {
  StartFibersMode();
  Pair pair;
  int pipefd[2];
  ASSERT_EQ(pipe(pipefd), 0);
  FiberTask* t = Go([&] {
    pollfd both{pair.fd[0], POLLIN | POLLOUT, 0};
    EXPECT_TRUE(PollOneSocket(&both, 0).passthrough());
    pollfd pri{pair.fd[0], POLLPRI, 0};
    EXPECT_TRUE(PollOneSocket(&pri, 0).passthrough());
    pollfd notours{pipefd[0], POLLIN, 0};
    EXPECT_TRUE(PollOneSocket(&notours, 0).passthrough());
  });
  ASSERT_EQ(t->Join(nullptr), 0);
  // Outside a fiber: always the caller's.
  pollfd p{pair.fd[0], POLLIN, 0};
  EXPECT_TRUE(PollOneSocket(&p, 0).passthrough());
  close(pipefd[0]);
  close(pipefd[1]);
}

}  // namespace
}  // namespace gonet::core
