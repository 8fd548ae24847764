// The drained hint on the netpoller path (core/poll/poll_desc.h, io_ops.cc ReceiveLoop): after a
// short receive on a TCP socket made here, the next blocking receive parks before asking the
// kernel (drained_parks counts it) and still gets the next bytes; where a short receive does not
// mean an empty queue (a peek, a unix stream socket, urgent data inline, a ULP) it never does.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>

#include "core/fd/ops.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"
#include "tests/unit/ops_test_util.h"

namespace gonet::core {
namespace {

using namespace testing_util;  // ops_test_util.h: WaitUntil, Blocked, Self, ThreadsConfig, ...

int64_t DrainedParks() { return Stats().drained_parks.load(); }

class DrainedHintTest : public ::testing::Test {
 protected:
  void SetUp() override {
    InitForTest(ThreadsConfig(WaitPath::kNetpoller));
    invariants_ = Stats().invariant_failures.load();
  }
  void TearDown() override {
    for (int fd : fds_) CloseSocket(fd);
    EXPECT_EQ(Stats().invariant_failures.load(), invariants_);
  }

  // A connected TCP pair whose server end core knows as made by socket()/accept() (the only
  // sockets the hint applies to); the client end is plain, for the test to write with.
  void TcpPair(int* server, int* client) {
    sockaddr_in addr;
    int lfd = LoopbackListener(1, &addr);
    ASSERT_GE(lfd, 0);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_EQ(connect(*client, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    *server = accept(lfd, nullptr, nullptr);
    ASSERT_GE(*server, 0);
    close(lfd);
    NoteSocket(*server, AF_INET, SOCK_STREAM, IPPROTO_TCP);
    fds_.push_back(*server);
    fds_.push_back(*client);
  }

  // A short receive of what `peer` sent, then a blocking receive on another thread that must
  // get the next bytes; returns how many receives parked on the hint meanwhile. The first round
  // on a socket can count 0 either way: arming it with epoll delivers a readiness event that
  // may land after the short receive took its count. Tests compare later rounds.
  int64_t ShortThenBlocking(int fd, int peer) {
    char buf[64];
    EXPECT_EQ(send(peer, "hello", 5, 0), 5);
    IoResult r = RecvFrom(fd, buf, sizeof buf, 0, nullptr, nullptr);
    EXPECT_TRUE(r.ok());
    EXPECT_EQ(r.n, 5);
    const int64_t before = DrainedParks();
    std::atomic<pid_t> tid{0};
    std::string got;
    std::thread reader([&] {
      tid.store(Self());
      char b[64];
      IoResult n = RecvFrom(fd, b, sizeof b, 0, nullptr, nullptr);
      if (n.ok()) got.assign(b, static_cast<size_t>(n.n));
    });
    EXPECT_TRUE(WaitUntil([&] { return tid.load() != 0 && Blocked(tid.load()); }));
    EXPECT_EQ(send(peer, "late", 4, 0), 4);
    reader.join();
    EXPECT_EQ(got, "late");
    return DrainedParks() - before;
  }

  std::vector<int> fds_;
  int64_t invariants_ = 0;
};

TEST_F(DrainedHintTest, ReceiveAfterAShortOneParksWithoutAskingTheKernel) {
  int server, client;
  TcpPair(&server, &client);
  ShortThenBlocking(server, client);
  EXPECT_EQ(ShortThenBlocking(server, client), 1);
  EXPECT_EQ(ShortThenBlocking(server, client), 1);
}

TEST_F(DrainedHintTest, ShortPeekLeavesTheBytesSoTheNextReceiveAsksTheKernel) {
  int server, client;
  TcpPair(&server, &client);
  char buf[64];
  ASSERT_EQ(send(client, "abc", 3, 0), 3);
  ASSERT_TRUE(WaitUntil([&] {
    IoResult p = RecvFrom(server, buf, sizeof buf, MSG_PEEK, nullptr, nullptr);
    return p.ok() && p.n == 3;
  }));
  const int64_t before = DrainedParks();
  IoResult r = RecvFrom(server, buf, sizeof buf, 0, nullptr, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(std::string(buf, static_cast<size_t>(r.n)), "abc");
  EXPECT_EQ(DrainedParks(), before);
}

TEST_F(DrainedHintTest, UnixStreamSocketsNeverUseIt) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_STREAM);
  fds_.push_back(sv[0]);
  fds_.push_back(sv[1]);
  // A unix stream receive also stops where the sender changes or passes fds: a short one does
  // not mean an empty queue.
  ShortThenBlocking(sv[0], sv[1]);
  EXPECT_EQ(ShortThenBlocking(sv[0], sv[1]), 0);
}

TEST_F(DrainedHintTest, InlineUrgentDataEndsItForTheSocket) {
  int server, client;
  TcpPair(&server, &client);
  int one = 1;
  IoResult r = SetSockOpt(server, SOL_SOCKET, SO_OOBINLINE, &one, sizeof one);
  if (r.passthrough()) r = IoResult::Ok(setsockopt(server, SOL_SOCKET, SO_OOBINLINE, &one, 4));
  ASSERT_TRUE(r.ok());
  ShortThenBlocking(server, client);
  EXPECT_EQ(ShortThenBlocking(server, client), 0);
}

TEST_F(DrainedHintTest, AnUlpOptionEndsItEvenIfTheKernelRefusesIt) {
  int server, client;
  TcpPair(&server, &client);
  // Whether the kernel has the tls module or not, gonet stops trusting short receives.
  const char ulp[] = "tls";
  IoResult r = SetSockOpt(server, IPPROTO_TCP, TCP_ULP, ulp, sizeof ulp);
  EXPECT_TRUE(r.passthrough());
  ShortThenBlocking(server, client);
  EXPECT_EQ(ShortThenBlocking(server, client), 0);
}

TEST_F(DrainedHintTest, AnEofDeliveredWithTheLastBytesEndsIt) {
  int server, client;
  TcpPair(&server, &client);
  ShortThenBlocking(server, client);
  EXPECT_EQ(ShortThenBlocking(server, client), 1);
  char buf[64];
  ASSERT_EQ(send(client, "bye", 3, 0), 3);
  ASSERT_EQ(shutdown(client, SHUT_WR), 0);
  IoResult r = RecvFrom(server, buf, sizeof buf, 0, nullptr, nullptr);
  ASSERT_TRUE(r.ok());
  // "bye" alone, or "bye" after a park on the hint that the FIN's delivery ended.
  EXPECT_EQ(std::string(buf, static_cast<size_t>(r.n)), "bye");
  r = RecvFrom(server, buf, sizeof buf, 0, nullptr, nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.n, 0) << "EOF after a short receive";
}

}  // namespace
}  // namespace gonet::core
