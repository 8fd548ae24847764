// Many threads blocked on one fd, as unmodified programs do (a pool of threads in accept on one
// listener, several readers of one datagram socket): DirLock queues them in front of the
// pollDesc, and every connection or message goes to exactly one of them, none is lost, none is
// woken twice.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <ostream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/base/base.h"
#include "core/fd/ops.h"
#include "core/poll/parker.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"
#include "core/threads/thread_parker.h"
#include "tests/unit/ops_test_util.h"

namespace gonet::core {
namespace {

using namespace testing_util;  // ops_test_util.h: WaitUntil, Blocked, WaitPath, ...

// N threads each running one blocking core call; the test waits until all sleep.
class Crowd {
 public:
  template <typename F>
  Crowd(int n, F call) : results_(n), tids_(n), calls_(n) {
    for (int i = 0; i < n; ++i) {
      threads_.emplace_back([this, i, call] {
        CurrentParker();
        tids_[i].store(Self());
        results_[i] = call(i);
        calls_[i].fetch_add(1);
      });
    }
  }
  ~Crowd() { Join(); }
  bool AllAsleep() const {
    for (const auto& t : tids_) {
      if (t.load() == 0 || !Blocked(t.load())) return false;
    }
    return true;
  }
  void Join() {
    for (auto& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  const std::vector<IoResult>& results() const { return results_; }
  int calls(int i) const { return calls_[i].load(); }

 private:
  std::vector<IoResult> results_;
  std::vector<std::atomic<pid_t>> tids_;
  std::vector<std::atomic<int>> calls_;
  std::vector<std::thread> threads_;
};

class WaitersTest : public ::testing::TestWithParam<WaitPath> {
 protected:
  void SetUp() override {
    InitForTest(ThreadsConfig(GetParam()));
    invariants_ = Stats().invariant_failures.load();
  }
  void TearDown() override { EXPECT_EQ(Stats().invariant_failures.load(), invariants_); }
  int64_t invariants_ = 0;
};

TEST_P(WaitersTest, EachAcceptingThreadGetsExactlyOneConnection) {
  constexpr int kThreads = 6;
  sockaddr_in addr;
  int lfd = LoopbackListener(64, &addr);
  ASSERT_GE(lfd, 0);
  NoteSocket(lfd, AF_INET, SOCK_STREAM);

  std::vector<int> accepted_ports(kThreads, -1);
  Crowd crowd(kThreads, [&](int i) {
    sockaddr_in peer{};
    socklen_t plen = sizeof peer;
    IoResult r = Accept(lfd, reinterpret_cast<sockaddr*>(&peer), &plen, 0);
    if (r.ok()) accepted_ports[i] = ntohs(peer.sin_port);
    return r;
  });
  ASSERT_TRUE(WaitUntil([&] { return crowd.AllAsleep(); }));

  std::set<int> client_ports;
  std::vector<int> clients;
  for (int i = 0; i < kThreads; ++i) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(c, 0);
    ASSERT_EQ(connect(c, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    sockaddr_in local{};
    socklen_t llen = sizeof local;
    getsockname(c, reinterpret_cast<sockaddr*>(&local), &llen);
    client_ports.insert(ntohs(local.sin_port));
    clients.push_back(c);
  }
  crowd.Join();
  std::set<int> fds;
  std::set<int> got_ports;
  for (int i = 0; i < kThreads; ++i) {
    const IoResult& r = crowd.results()[i];
    ASSERT_TRUE(r.ok()) << "thread " << i << " err " << r.err;
    EXPECT_EQ(crowd.calls(i), 1);
    fds.insert(static_cast<int>(r.n));
    got_ports.insert(accepted_ports[i]);
  }
  EXPECT_EQ(fds.size(), static_cast<size_t>(kThreads)) << "an fd was handed out twice";
  EXPECT_EQ(got_ports, client_ports) << "a connection was lost or accepted twice";
  for (int fd : fds) Close(fd);
  for (int c : clients) close(c);
  Close(lfd);
}

TEST_P(WaitersTest, EachReaderOfADatagramSocketGetsExactlyOneMessage) {
  constexpr int kThreads = 6;
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_DGRAM);
  std::vector<std::string> got(kThreads);
  Crowd crowd(kThreads, [&](int i) {
    char buf[32];
    IoResult r = Read(sv[0], buf, sizeof buf);
    if (r.ok()) got[i].assign(buf, static_cast<size_t>(r.n));
    return r;
  });
  ASSERT_TRUE(WaitUntil([&] { return crowd.AllAsleep(); }));
  std::set<std::string> sent;
  for (int i = 0; i < kThreads; ++i) {
    std::string m = "message-" + std::to_string(i);
    ASSERT_EQ(send(sv[1], m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
    sent.insert(m);
  }
  crowd.Join();
  std::set<std::string> received;
  for (int i = 0; i < kThreads; ++i) {
    EXPECT_TRUE(crowd.results()[i].ok()) << "reader " << i << " err " << crowd.results()[i].err;
    EXPECT_EQ(crowd.calls(i), 1);
    received.insert(got[i]);
  }
  EXPECT_EQ(received, sent);
  Close(sv[0]);
  Close(sv[1]);
}

// Messages sent one at a time, each only after the previous one was taken: readers are served
// in the order they queued (DirLock FIFO), each exactly once.
TEST_P(WaitersTest, QueuedReadersAreServedInArrivalOrder) {
  constexpr int kThreads = 4;
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_DGRAM, 0, sv), 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_DGRAM);
  std::vector<std::atomic<pid_t>> tids(kThreads);
  std::vector<std::string> got(kThreads);
  std::vector<std::atomic<bool>> done(kThreads);
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&, i] {
      CurrentParker();
      tids[i].store(Self());
      char buf[32];
      IoResult r = Read(sv[0], buf, sizeof buf);
      if (r.ok()) got[i].assign(buf, static_cast<size_t>(r.n));
      done[i].store(true);
    });
    ASSERT_TRUE(WaitUntil([&] { return tids[i].load() != 0 && Blocked(tids[i].load()); }));
  }
  for (int i = 0; i < kThreads; ++i) {
    std::string m = "m" + std::to_string(i);
    ASSERT_EQ(send(sv[1], m.data(), m.size(), 0), static_cast<ssize_t>(m.size()));
    ASSERT_TRUE(WaitUntil([&] { return done[i].load(); })) << "reader " << i << " not served";
    for (int j = i + 1; j < kThreads; ++j) EXPECT_FALSE(done[j].load()) << j << " overtook";
  }
  for (auto& t : threads) t.join();
  for (int i = 0; i < kThreads; ++i) EXPECT_EQ(got[i], "m" + std::to_string(i));
  Close(sv[0]);
  Close(sv[1]);
}

INSTANTIATE_TEST_SUITE_P(Wait, WaitersTest,
                         ::testing::Values(WaitPath::kNetpoller, WaitPath::kKernel), PathName);

}  // namespace
}  // namespace gonet::core
