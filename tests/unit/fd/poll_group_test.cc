// poll over several fds from a fiber (core/fd/poll_group.h): one park on all of them (managed
// sockets on their pollDescs, anything else epoll accepts through a private copy), woken by the
// first readiness or a close, answered by the kernel's own zero-timeout poll; what it cannot arm
// is left to the caller.
#include "core/fd/poll_group.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
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
    IoResult r = WaitFds(call.fds.data(), call.fds.size(), 0, &Call::Probe, &call);
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
              IoResult r = WaitFds(call.fds.data(), call.fds.size(), DeadlineAfter(2 * kMs),
                                   &Call::Probe, &call);
              n = r.passthrough() ? -2 : r.n;
            })->Join(nullptr),
            0);
  EXPECT_EQ(n.load(), 0);
}

// Runs WaitFds over call.fds on a fiber with no deadline; returns it once the fiber parked.
FiberTask* WaitInFiber(Call& call, std::atomic<long>& n) {
  int probes = call.probes.load();
  FiberTask* t = Go([&] {
    IoResult r = WaitFds(call.fds.data(), call.fds.size(), 0, &Call::Probe, &call);
    n = r.passthrough() ? -2 : (r.ok() ? r.n : -r.err);
  });
  EXPECT_TRUE(WaitUntil([&] { return call.probes.load() > probes && t->parked(); }));
  return t;
}

// Issue 13: stunnel's signal pipe in every connection's poll set took a helper thread per wait.
TEST(PollGroup, PipeAndEventfdBesideASocketWakeTheOneWait) {
  StartFibersMode();
  Pair a;
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  int ev = eventfd(0, EFD_CLOEXEC);
  ASSERT_GE(ev, 0);
  for (int which = 0; which < 2; ++which) {
    Call call;
    call.fds = {{a.fd[0], POLLIN, 0}, {p[0], POLLIN, 0}, {ev, POLLIN, 0}};
    std::atomic<long> n{-1};
    FiberTask* t = WaitInFiber(call, n);
    uint64_t one = 1;
    if (which == 0) {
      ASSERT_EQ(write(p[1], "x", 1), 1);
    } else {
      ASSERT_EQ(write(ev, &one, sizeof one), 8);
    }
    ASSERT_EQ(t->Join(nullptr), 0);
    EXPECT_EQ(n.load(), 1);
    EXPECT_EQ(call.fds[1 + which].revents, POLLIN);
    char c;
    if (which == 0) {
      ASSERT_EQ(read(p[0], &c, 1), 1);
    }
  }
  close(p[0]);
  close(p[1]);
  close(ev);
}

// Each waiter registers a copy of its own: no EEXIST, and one write wakes every one of them.
TEST(PollGroup, SeveralGroupsOnOnePipeAreAllWoken) {
  StartFibersMode();
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  Pair shared;  // a socket that every group watches too (the pollDesc's watcher is the first)
  constexpr int kGroups = 4;
  std::vector<Call> calls(kGroups);
  std::vector<std::atomic<long>> ns(kGroups);
  std::vector<FiberTask*> ts;
  for (int i = 0; i < kGroups; ++i) {
    calls[i].fds = {{shared.fd[0], POLLIN, 0}, {p[0], POLLIN, 0}};
    ns[i] = -1;
    ts.push_back(WaitInFiber(calls[i], ns[i]));
  }
  ASSERT_EQ(write(p[1], "x", 1), 1);
  for (int i = 0; i < kGroups; ++i) {
    ASSERT_EQ(ts[i]->Join(nullptr), 0);
    EXPECT_EQ(ns[i].load(), 1);
    EXPECT_EQ(calls[i].fds[1].revents, POLLIN);
  }
  // And the shared socket wakes every group too (the later ones watch copies of it).
  for (int i = 0; i < kGroups; ++i) calls[i].fds.pop_back();
  ts.clear();
  for (int i = 0; i < kGroups; ++i) ts.push_back(WaitInFiber(calls[i], ns[i]));
  ASSERT_EQ(write(shared.fd[1], "y", 1), 1);
  for (int i = 0; i < kGroups; ++i) {
    ASSERT_EQ(ts[i]->Join(nullptr), 0);
    EXPECT_EQ(ns[i].load(), 1);
  }
  close(p[0]);
  close(p[1]);
}

// The program's epoll fd is readable while its ready list is not empty: epoll_wait parks on it.
TEST(PollGroup, TheProgramsEpollFdWakesWhenItsSocketDoes) {
  StartFibersMode();
  Pair a;
  int ep = epoll_create1(EPOLL_CLOEXEC);
  ASSERT_GE(ep, 0);
  epoll_event e{};
  e.events = EPOLLIN;
  e.data.fd = a.fd[0];
  ASSERT_EQ(epoll_ctl(ep, EPOLL_CTL_ADD, a.fd[0], &e), 0);
  Call call;
  call.fds = {{ep, POLLIN, 0}};
  std::atomic<long> n{-1};
  FiberTask* t = WaitInFiber(call, n);
  ASSERT_EQ(write(a.fd[1], "x", 1), 1);
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(n.load(), 1);
  close(ep);
}

// A regular file is refused by epoll (EPERM) and never changes readiness: no watch, and the wait
// still ends on the socket beside it.
TEST(PollGroup, AFileEpollRefusesIsLeftToTheProbe) {
  StartFibersMode();
  Pair a;
  FILE* f = tmpfile();
  ASSERT_NE(f, nullptr);
  Call call;
  call.fds = {{a.fd[0], POLLIN, 0}, {fileno(f), 0, 0}};
  std::atomic<long> n{-1};
  FiberTask* t = WaitInFiber(call, n);
  ASSERT_EQ(write(a.fd[1], "x", 1), 1);
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(n.load(), 1);
  fclose(f);
}

// Events with no edge gonet waits for (POLLPRI) are the caller's to offload; a pipe and a socket
// another group already watches are not.
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
      pass = WaitFds(call.fds.data(), call.fds.size(), DeadlineAfter(kMs), &Call::Probe, &call)
                 .passthrough();
    })->Join(nullptr);
    return pass.load() == 1;
  };
  EXPECT_FALSE(passes({{a.fd[0], POLLIN, 0}, {p[0], POLLIN, 0}}));
  EXPECT_TRUE(passes({{a.fd[0], POLLIN, 0}, {b.fd[0], POLLPRI, 0}}));
  EXPECT_FALSE(passes({{a.fd[0], POLLIN, 0}, {b.fd[0], POLLIN, 0}}));
  close(p[0]);
  close(p[1]);
}

}  // namespace
}  // namespace gonet::core
