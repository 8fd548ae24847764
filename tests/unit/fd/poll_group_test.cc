// poll over several sockets from a fiber (core/fd/poll_group.h): one park on all of them, woken
// by the first readiness or a close, answered by the kernel's own zero-timeout poll; what it
// cannot arm is left to the caller.
#include "core/fd/poll_group.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <vector>

#include "core/fd/ops.h"
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

struct Call {
  std::vector<pollfd> fds;
  std::atomic<int> probes{0};
  static int Probe(void* self) {
    auto* c = static_cast<Call*>(self);
    c->probes.fetch_add(1);
    int r = poll(c->fds.data(), c->fds.size(), 0);
    return r < 0 ? -errno : r;
  }
};

TEST(PollGroup, FirstReadinessOfAnySocketEndsTheOneWait) {
  StartFibersMode();
  std::vector<Pair> pairs(8);
  Call call;
  for (Pair& p : pairs) call.fds.push_back(pollfd{p.fd[0], POLLIN, 0});
  std::atomic<long> n{-1};
  FiberTask* t = Go([&] {
    IoResult r = WaitSockets(call.fds.data(), call.fds.size(), 0, &Call::Probe, &call);
    ASSERT_FALSE(r.passthrough());
    n = r.n;
  });
  ASSERT_TRUE(WaitUntil([&] { return call.probes.load() >= 1 && t->parked(); }));
  ASSERT_EQ(write(pairs[5].fd[1], "x", 1), 1);
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(n.load(), 1);
  EXPECT_EQ(call.fds[5].revents, POLLIN);
  EXPECT_EQ(call.fds[0].revents, 0);
}

TEST(PollGroup, DeadlineReturnsTheKernelsLastAnswer) {
  StartFibersMode();
  std::vector<Pair> pairs(2);
  Call call;
  for (Pair& p : pairs) call.fds.push_back(pollfd{p.fd[0], POLLIN, 0});
  std::atomic<long> n{-1};
  ASSERT_EQ(Go([&] {
              IoResult r = WaitSockets(call.fds.data(), call.fds.size(), DeadlineAfter(2 * kMs),
                                       &Call::Probe, &call);
              n = r.passthrough() ? -2 : r.n;
            })->Join(nullptr),
            0);
  EXPECT_EQ(n.load(), 0);
}

// A pipe, POLLPRI, and a socket another group already watches are the caller's to offload.
TEST(PollGroup, WhatItCannotArmIsPassedThrough) {
  StartFibersMode();
  Pair a, b;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  auto passes = [](std::vector<pollfd> fds) {
    Call call;
    call.fds = std::move(fds);
    std::atomic<int> pass{-1};
    Go([&] {
      pass = WaitSockets(call.fds.data(), call.fds.size(), DeadlineAfter(kMs), &Call::Probe, &call)
                 .passthrough();
    })->Join(nullptr);
    return pass.load() == 1;
  };
  EXPECT_TRUE(passes({{a.fd[0], POLLIN, 0}, {p[0], POLLIN, 0}}));
  EXPECT_TRUE(passes({{a.fd[0], POLLIN, 0}, {b.fd[0], POLLPRI, 0}}));
  EXPECT_FALSE(passes({{a.fd[0], POLLIN, 0}, {b.fd[0], POLLIN, 0}}));
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace gonet::core
