// Bad and extreme input to core's operations and fd table: fds out of range, fds that are not
// sockets or not gonet's to handle, and timeouts at the edges of what the kernel accepts. Core
// either handles a call exactly as the kernel would, or passes it through (kPassthrough) so the
// kernel reports its own error; it never crashes and never invents a result.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "core/base/base.h"
#include "core/fd/fd_table.h"
#include "core/fd/ops.h"
#include "core/poll/parker.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"
#include "core/threads/thread_parker.h"
#include "tests/unit/ops_test_util.h"

namespace gonet::core {
namespace {

using namespace testing_util;  // ops_test_util.h: WaitUntil, Blocked, WaitPath, ...

class InputTest : public ::testing::TestWithParam<WaitPath> {
 protected:
  void SetUp() override {
    InitForTest(ThreadsConfig(GetParam()));
    invariants_ = Stats().invariant_failures.load();
  }
  void TearDown() override { EXPECT_EQ(Stats().invariant_failures.load(), invariants_); }
  void MakePair(int type = SOCK_STREAM, bool note = true) {
    ASSERT_EQ(socketpair(AF_UNIX, type, 0, sv_), 0);
    if (note) NoteSocketPair(sv_, AF_UNIX, type);
  }
  void ClosePair() {
    for (int& fd : sv_) {
      if (fd >= 0 && Close(fd).passthrough()) close(fd);
      fd = -1;
    }
  }
  int sv_[2] = {-1, -1};
  int64_t invariants_ = 0;
};

TEST_P(InputTest, FdTableHasNoEntryForNegativeOrTooLargeFds) {
  for (int fd : {-1, -2, INT_MIN, kMaxFds, kMaxFds + 1, INT_MAX}) {
    EXPECT_EQ(FdTable::Get(fd), nullptr) << fd;
    EXPECT_EQ(FdTable::Find(fd), nullptr) << fd;
    FdRef ref;
    EXPECT_EQ(ref.Acquire(fd), kPassthrough) << fd;
  }
  EXPECT_NE(FdTable::Get(kMaxFds - 1), nullptr);
  EXPECT_NE(FdTable::Find(kMaxFds - 1), nullptr);
  EXPECT_FALSE(FdTable::InstallNew(-1, AF_UNIX, SOCK_STREAM, false));
  EXPECT_FALSE(FdTable::InstallNew(kMaxFds, AF_UNIX, SOCK_STREAM, false));
}

// Out-of-range fds go to the kernel unchanged, which reports EBADF itself.
TEST_P(InputTest, EveryOperationPassesThroughNegativeAndTooLargeFds) {
  char buf[8] = {};
  iovec iov{buf, sizeof buf};
  msghdr msg{};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  sockaddr_storage ss{};
  socklen_t sl = sizeof ss;
  int one = 1;
  timeval tv{1, 0};
  for (int fd : {-1, kMaxFds, INT_MAX}) {
    SCOPED_TRACE(fd);
    EXPECT_TRUE(Read(fd, buf, sizeof buf).passthrough());
    EXPECT_TRUE(Readv(fd, &iov, 1).passthrough());
    EXPECT_TRUE(RecvFrom(fd, buf, sizeof buf, 0, nullptr, nullptr).passthrough());
    EXPECT_TRUE(RecvMsg(fd, &msg, 0).passthrough());
    EXPECT_TRUE(Write(fd, buf, sizeof buf).passthrough());
    EXPECT_TRUE(Writev(fd, &iov, 1).passthrough());
    EXPECT_TRUE(SendTo(fd, buf, sizeof buf, 0, nullptr, 0).passthrough());
    EXPECT_TRUE(SendMsg(fd, &msg, 0).passthrough());
    EXPECT_TRUE(Accept(fd, reinterpret_cast<sockaddr*>(&ss), &sl, 0).passthrough());
    EXPECT_TRUE(Connect(fd, reinterpret_cast<sockaddr*>(&ss), sizeof ss).passthrough());
    EXPECT_TRUE(Fcntl(fd, F_GETFL, 0).passthrough());
    EXPECT_TRUE(IoctlFionbio(fd, &one).passthrough());
    EXPECT_TRUE(SetSockOpt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv).passthrough());
    EXPECT_TRUE(Close(fd).passthrough());
  }
  NoteSocket(-1, AF_UNIX, SOCK_STREAM);  // ignored, no crash
  NoteSocket(kMaxFds, AF_UNIX, SOCK_STREAM);
  NoteDup(-1, -1);
  NoteDup(kMaxFds, kMaxFds + 1);
}

TEST_P(InputTest, ClosedFdPassesThroughSoTheKernelReportsEbadf) {
  MakePair();
  const int fd = sv_[0];
  ASSERT_TRUE(Close(fd).ok());
  sv_[0] = -1;
  char buf[4];
  IoResult r = Read(fd, buf, sizeof buf);
  // Unknown again after close: adoption finds no fd (fstat fails) and leaves it to the kernel.
  EXPECT_TRUE(r.passthrough() || r.err == EBADF) << r.err;
  ClosePair();
}

TEST_P(InputTest, NonSocketFdsArePassedThrough) {
  int p[2];
  ASSERT_EQ(pipe(p), 0);
  char buf[4];
  EXPECT_TRUE(Read(p[0], buf, sizeof buf).passthrough());
  EXPECT_TRUE(Write(p[1], "x", 1).passthrough());
  EXPECT_EQ(FdTable::Find(p[0])->kind.load(), FdKind::kNotSocket);
  EXPECT_TRUE(Close(p[0]).passthrough());
  EXPECT_TRUE(Close(p[1]).passthrough());
  close(p[0]);
  close(p[1]);
}

TEST_P(InputTest, SocketNotSeenBeingCreatedIsAdoptedOnFirstUse) {
  MakePair(SOCK_STREAM, /*note=*/false);
  const int64_t adopted = Stats().fds_adopted.load();
  ASSERT_EQ(write(sv_[1], "hi", 2), 2);
  char buf[4];
  IoResult r = Read(sv_[0], buf, sizeof buf);
  EXPECT_EQ(r.n, 2);
  EXPECT_EQ(Stats().fds_adopted.load(), adopted + 1);
  EXPECT_EQ(FdTable::Find(sv_[0])->kind.load(), FdKind::kSocket);
  ClosePair();
}

TEST_P(InputTest, AppNonblockingSocketsAndDontwaitCallsArePassedThrough) {
  int sv[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
  NoteSocketPair(sv, AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK);
  char buf[4];
  EXPECT_TRUE(Read(sv[0], buf, sizeof buf).passthrough());
  Close(sv[0]);
  Close(sv[1]);
  MakePair();
  EXPECT_TRUE(RecvFrom(sv_[0], buf, sizeof buf, MSG_DONTWAIT, nullptr, nullptr).passthrough());
  ClosePair();
}

TEST_P(InputTest, PassthroughModeHandlesNothing) {
  MakePair();
  Config c = ThreadsConfig(GetParam());
  c.mode = RunMode::kPassthrough;
  InitForTest(c);
  char buf[4];
  EXPECT_FALSE(Enabled());
  EXPECT_TRUE(Read(sv_[0], buf, sizeof buf).passthrough());
  EXPECT_TRUE(Write(sv_[0], "x", 1).passthrough());
  InitForTest(ThreadsConfig(GetParam()));
  ClosePair();
}

TEST_P(InputTest, SoRcvtimeoMakesReadFailWithEagainAfterTheTimeout) {
  MakePair();
  timeval tv{0, 50000};
  ASSERT_TRUE(SetSockOpt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv).ok());
  char buf[4];
  const int64_t start = Nanotime();
  IoResult r = Read(sv_[0], buf, sizeof buf);
  EXPECT_EQ(r.err, EAGAIN);
  EXPECT_GE(Nanotime() - start, 50 * kMs);
  ClosePair();
}

TEST_P(InputTest, InvalidSoRcvtimeoIsRejectedByTheKernelAndNotRecorded) {
  MakePair();
  timeval bad{1, 2000000};  // tv_usec out of range: EDOM
  IoResult r = SetSockOpt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &bad, sizeof bad);
  EXPECT_EQ(r.err, EDOM);
  int short_value = 1;
  r = SetSockOpt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &short_value, sizeof short_value);
  EXPECT_EQ(r.err, EINVAL);
  EXPECT_EQ(FdTable::Find(sv_[0])->sock.load()->rcvtimeo_ns.load(), 0);
  ClosePair();
}

// A read with a timeout must stay parked until data comes; returns the read's result.
IoResult ReadStaysParkedUntilData(int fd, int peer, int64_t at_least_ns) {
  std::atomic<bool> done{false};
  std::atomic<pid_t> tid{0};
  IoResult result;
  char buf[8];
  std::thread reader([&] {
    tid.store(Self());
    result = Read(fd, buf, sizeof buf);
    done.store(true);
  });
  EXPECT_TRUE(WaitUntil([&] { return (tid.load() != 0 && Blocked(tid.load())) || done.load(); }));
  const int64_t until = Nanotime() + at_least_ns;
  WaitUntil([&] { return Nanotime() > until || done.load(); });
  EXPECT_FALSE(done.load()) << "gave up early: err " << (done.load() ? result.err : 0);
  if (!done.load()) {
    EXPECT_EQ(write(peer, "late", 4), 4);
  }
  reader.join();
  return result;
}

// The kernel caps SO_RCVTIMEO at MAX_SCHEDULE_TIMEOUT ("forever") and shows it as {0, 0}.
TEST_P(InputTest, HugeSoRcvtimeoMeansNoTimeoutLikeTheKernel) {
  MakePair();
  timeval tv{LONG_MAX, 999999};
  ASSERT_TRUE(SetSockOpt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv).ok());
  EXPECT_EQ(FdTable::Find(sv_[0])->sock.load()->rcvtimeo_ns.load(), 0);
  IoResult r = ReadStaysParkedUntilData(sv_[0], sv_[1], 500 * kMs);
  EXPECT_EQ(r.n, 4);
  ClosePair();
}

// 18446744074s (584 years) is below the kernel's cap, so the kernel keeps it and getsockopt
// returns it. In nanoseconds it exceeds INT64_MAX: converting it must saturate, not wrap (2^64ns
// is 18446744073.7s, so a wrapping multiply leaves a 0.29s timeout).
TEST_P(InputTest, SoRcvtimeoBeyondInt64NanosecondsDoesNotWrapToAShortTimeout) {
  MakePair();
  timeval tv{18446744074, 0};
  ASSERT_TRUE(SetSockOpt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv).ok());
  timeval kept{};
  socklen_t len = sizeof kept;
  ASSERT_EQ(getsockopt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &kept, &len), 0);
  ASSERT_EQ(kept.tv_sec, 18446744074) << "this kernel does not keep the value";
  IoResult r = ReadStaysParkedUntilData(sv_[0], sv_[1], 1000 * kMs);
  EXPECT_EQ(r.n, 4);
  ClosePair();
}

// The same value set before gonet knew the socket (inherited, adopted on first use).
TEST_P(InputTest, AdoptedSocketWithAHugeSoRcvtimeoDoesNotWrapToAShortTimeout) {
  MakePair(SOCK_STREAM, /*note=*/false);
  timeval tv{18446744074, 0};
  ASSERT_EQ(setsockopt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv), 0);
  IoResult r = ReadStaysParkedUntilData(sv_[0], sv_[1], 1000 * kMs);
  EXPECT_EQ(r.n, 4);
  ClosePair();
}

// Linux stores a negative SO_RCVTIMEO as a zero timeout, which makes a blocking recv fail with
// EAGAIN at once (and getsockopt then shows {0, 0}, the same as "no timeout").
TEST_P(InputTest, NegativeSoRcvtimeoFailsReadAtOnceLikeTheKernel) {
  MakePair();
  timeval tv{-1, 0};
  ASSERT_TRUE(SetSockOpt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv).ok());
  char kbuf;
  ASSERT_EQ(recv(sv_[0], &kbuf, 1, 0), -1) << "kernel reference: expected EAGAIN";
  ASSERT_EQ(errno, EAGAIN);
  std::atomic<bool> done{false};
  std::atomic<pid_t> tid{0};
  IoResult result;
  char buf[4];
  std::thread reader([&] {
    tid.store(Self());
    result = Read(sv_[0], buf, sizeof buf);
    done.store(true);
  });
  ASSERT_TRUE(WaitUntil([&] { return done.load() || (tid.load() != 0 && Blocked(tid.load())); }));
  const bool stuck = !done.load();
  if (stuck) {
    ADD_FAILURE() << "core parked a read the kernel would fail at once with EAGAIN";
    ASSERT_EQ(write(sv_[1], "x", 1), 1);  // unstick it
  }
  reader.join();
  if (!stuck) {
    EXPECT_EQ(result.err, EAGAIN);
  }
  ClosePair();
}

// recvmmsg with a timeout the kernel accepts (it saturates now + timeout): every queued message
// is received, as the kernel does.
TEST_P(InputTest, RecvMmsgWithAHugeTimeoutReceivesEveryQueuedMessage) {
  MakePair(SOCK_DGRAM);
  ASSERT_EQ(send(sv_[1], "one", 3, 0), 3);
  ASSERT_EQ(send(sv_[1], "two", 3, 0), 3);
  char b0[8], b1[8];
  iovec iov[2] = {{b0, sizeof b0}, {b1, sizeof b1}};
  mmsghdr vec[2] = {};
  vec[0].msg_hdr.msg_iov = &iov[0];
  vec[0].msg_hdr.msg_iovlen = 1;
  vec[1].msg_hdr.msg_iov = &iov[1];
  vec[1].msg_hdr.msg_iovlen = 1;
  timespec timeout{LLONG_MAX / 2, 0};
  IoResult r = RecvMmsg(sv_[0], vec, 2, 0, &timeout);
  ASSERT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.n, 2);
  ClosePair();
}

// Zero-length calls: core either answers as the kernel would (0, consuming a 0-byte datagram for
// recv) or hands them to the kernel (read/write of 0 bytes return 0 at once on a socket).
TEST_P(InputTest, ZeroLengthAndNullIovecsDoNotCrash) {
  MakePair(SOCK_DGRAM);
  ASSERT_EQ(send(sv_[1], "", 0, 0), 0);
  IoResult r = RecvFrom(sv_[0], nullptr, 0, 0, nullptr, nullptr);
  EXPECT_TRUE(r.ok()) << r.err;
  EXPECT_EQ(r.n, 0);
  r = Read(sv_[0], nullptr, 0);
  EXPECT_TRUE(r.passthrough() || (r.ok() && r.n == 0)) << r.err;
  EXPECT_TRUE(Readv(sv_[0], nullptr, -1).passthrough());
  EXPECT_TRUE(Writev(sv_[0], nullptr, -1).passthrough());
  r = Writev(sv_[1], nullptr, 0);
  EXPECT_TRUE(r.passthrough() || (r.ok() && r.n == 0)) << r.err;
  ClosePair();
}

TEST_P(InputTest, FcntlKeepsTheAppsViewOfNonblocking) {
  MakePair();
  IoResult fl = Fcntl(sv_[0], F_GETFL, 0);
  ASSERT_TRUE(fl.ok());
  EXPECT_FALSE(fl.n & O_NONBLOCK);
  ASSERT_TRUE(Fcntl(sv_[0], F_SETFL, static_cast<unsigned long>(fl.n | O_NONBLOCK)).ok());
  char buf[4];
  EXPECT_TRUE(Read(sv_[0], buf, sizeof buf).passthrough()) << "the app chose non-blocking";
  EXPECT_TRUE(Fcntl(sv_[0], F_GETFL, 0).n & O_NONBLOCK);
  EXPECT_TRUE(Fcntl(sv_[0], 12345, 0).passthrough()) << "unknown commands go to the kernel";
  ClosePair();
}

INSTANTIATE_TEST_SUITE_P(Wait, InputTest,
                         ::testing::Values(WaitPath::kNetpoller, WaitPath::kKernel), PathName);

}  // namespace
}  // namespace gonet::core
