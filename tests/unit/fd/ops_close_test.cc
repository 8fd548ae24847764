// close while operations are in flight: Go's evict + fdMutex (core/fd/ops.h Close, core/fd/fd_table.h
// FdRef). A parked operation wakes with EBADF, operations that start after close began fail with
// EBADF, and the fd number goes back to the kernel only when the last in-flight operation left.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "core/base/base.h"
#include "core/fd/blocking_call.h"
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

// Blocked on either path: parked on a pollDesc, or in a blocking call made in the kernel.
int64_t Parked() { return Stats().threads_parked.load() + Stats().threads_in_kernel.load(); }
bool OpenInKernel(int fd) { return fcntl(fd, F_GETFD) >= 0; }

// A core operation on its own thread: the test observes it parked, then acts.
class Op {
 public:
  template <typename F>
  explicit Op(F f)
      : thread_([this, f] {
          parker_.store(CurrentParker());
          tid_.store(Self());
          result_ = f();
          done_.store(true);
        }) {}
  ~Op() {
    if (thread_.joinable()) thread_.join();
  }
  bool done() const { return done_.load(); }
  bool Asleep() const {
    pid_t t = tid_.load();
    return t != 0 && !done_.load() && Blocked(t);
  }
  Parker* parker() const { return parker_.load(); }
  IoResult Join() {
    thread_.join();
    return result_;
  }

 private:
  std::atomic<Parker*> parker_{nullptr};
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> done_{false};
  IoResult result_;
  std::thread thread_;
};

class CloseTest : public ::testing::TestWithParam<WaitPath> {
 protected:
  void SetUp() override {
    InitForTest(ThreadsConfig(GetParam()));
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv_), 0);
    NoteSocketPair(sv_, AF_UNIX, SOCK_STREAM);
    invariants_ = Stats().invariant_failures.load();
  }
  void TearDown() override {
    for (int fd : sv_) {
      if (fd >= 0 && Close(fd).passthrough()) close(fd);
    }
    EXPECT_EQ(Stats().invariant_failures.load(), invariants_);
  }
  // Fills fd's send direction so that a blocking write must wait.
  void FillSendBuffer(int fd) {
    static char chunk[65536];
    while (send(fd, chunk, sizeof chunk, MSG_DONTWAIT) > 0) {
    }
    ASSERT_EQ(errno, EAGAIN);
  }
  int sv_[2] = {-1, -1};
  int64_t invariants_ = 0;
};

// Go's TestCloseUnblocksRead (issue 17695).
TEST_P(CloseTest, CloseWakesParkedReaderWithEbadf) {
  const int64_t base = Parked();
  const int64_t closes = ClosesCounted(GetParam());
  char buf[16];
  Op reader([&] { return Read(sv_[0], buf, sizeof buf); });
  ASSERT_TRUE(WaitUntil([&] { return reader.Asleep(); }));
  IoResult c = Close(sv_[0]);
  EXPECT_TRUE(c.ok()) << c.err;
  IoResult r = reader.Join();
  EXPECT_EQ(r.err, EBADF);
  EXPECT_EQ(ClosesCounted(GetParam()), closes + 1);
  EXPECT_EQ(Parked(), base);
  EXPECT_FALSE(OpenInKernel(sv_[0]));
  sv_[0] = -1;
}

TEST_P(CloseTest, CloseWakesParkedReaderAndWriterOfOneSocket) {
  FillSendBuffer(sv_[0]);
  char in[16];
  char out[16] = {};
  Op reader([&] { return Read(sv_[0], in, sizeof in); });
  Op writer([&] { return Write(sv_[0], out, sizeof out); });
  ASSERT_TRUE(WaitUntil([&] { return reader.Asleep() && writer.Asleep(); }));
  EXPECT_TRUE(Close(sv_[0]).ok());
  EXPECT_EQ(reader.Join().err, EBADF);
  EXPECT_EQ(writer.Join().err, EBADF) << "nothing was sent, so no partial count";
  sv_[0] = -1;
}

TEST_P(CloseTest, CloseWakesReadersQueuedBehindTheParkedOne) {
  char b1[4], b2[4], b3[4];
  Op first([&] { return Read(sv_[0], b1, sizeof b1); });
  ASSERT_TRUE(WaitUntil([&] { return first.Asleep(); }));
  Op second([&] { return Read(sv_[0], b2, sizeof b2); });
  Op third([&] { return Read(sv_[0], b3, sizeof b3); });
  ASSERT_TRUE(WaitUntil([&] { return second.Asleep() && third.Asleep(); }));
  EXPECT_TRUE(Close(sv_[0]).ok());
  EXPECT_EQ(first.Join().err, EBADF);
  EXPECT_EQ(second.Join().err, EBADF);
  EXPECT_EQ(third.Join().err, EBADF);
  sv_[0] = -1;
}

// Go's fdMutex: the number is not released while an operation holds a reference, so a socket()
// in another thread cannot get the number and be touched by the stale operation; operations that
// start after close began fail with EBADF.
TEST_P(CloseTest, FdNumberStaysOpenUntilTheInFlightOperationLeaves) {
  const int fd = sv_[0];
  FdRef in_flight;
  ASSERT_EQ(in_flight.Acquire(fd), 0);
  Op closer([&] { return Close(fd); });
  ASSERT_TRUE(WaitUntil([&] { return closer.Asleep(); }));
  EXPECT_TRUE(OpenInKernel(fd)) << "closed under an in-flight operation";
  // However long the operation stays in flight (a slow machine can deschedule it for a while).
  const int64_t later = Nanotime() + 1500 * kMs;
  ASSERT_TRUE(WaitUntil([&] { return Nanotime() > later; }));
  EXPECT_TRUE(OpenInKernel(fd)) << "closed under an in-flight operation after waiting a while";
  char buf[4];
  EXPECT_EQ(Read(fd, buf, sizeof buf).err, EBADF);
  EXPECT_EQ(Write(fd, "x", 1).err, EBADF);
  EXPECT_FALSE(closer.done());
  in_flight.Release();
  IoResult c = closer.Join();
  EXPECT_TRUE(c.ok()) << c.err;
  EXPECT_FALSE(OpenInKernel(fd));
  sv_[0] = -1;
}

TEST_P(CloseTest, SecondCloseReturnsEbadfOrPassesThroughAndNeverCrashes) {
  const int fd = sv_[0];
  EXPECT_TRUE(Close(fd).ok());
  IoResult again = Close(fd);
  // The slot forgot the socket, so core hands the call to the kernel, which says EBADF.
  EXPECT_TRUE(again.passthrough() || again.err == EBADF) << again.err;
  if (again.passthrough()) {
    EXPECT_EQ(close(fd), -1);
    EXPECT_EQ(errno, EBADF);
  }
  sv_[0] = -1;
}

// Two threads close one fd while an operation is in flight. The kernel gives the loser EBADF.
// The first closer waits for the in-flight operation to leave; the loser must not take that
// wake-up from it (BeginClose stores `closer` before it knows it won).
TEST_P(CloseTest, LosingConcurrentCloseDoesNotStealTheFirstClosersWakeUp) {
  const int fd = sv_[0];
  FdRef in_flight;
  ASSERT_EQ(in_flight.Acquire(fd), 0);
  Op first([&] { return Close(fd); });
  ASSERT_TRUE(WaitUntil([&] { return first.Asleep(); }));
  IoResult second = Close(fd);
  EXPECT_EQ(second.err, EBADF);
  in_flight.Release();
  bool finished = WaitUntil([&] { return first.done(); });
  if (!finished) {
    ADD_FAILURE() << "the first close never returned: the in-flight operation's wake-up went to "
                     "the losing closer's parker";
    first.parker()->Unpark();  // unstick it so the test can end
  }
  EXPECT_TRUE(first.Join().ok());
  sv_[0] = -1;
}

// The interleaving of a first blocking read with close: the read took its fd reference and got
// EAGAIN before the fd had a pollDesc; close began (nothing to evict) and waits for the read;
// the read then creates and arms a fresh pollDesc. It must see the close (EBADF) instead of
// parking on a pollDesc that nobody will ever evict, which would hang both threads.
TEST_P(CloseTest, CloseBeforeTheFirstWaitArmsThePollDescStillWakesTheReader) {
  const int fd = sv_[0];
  ASSERT_EQ(FdTable::Find(fd)->pd.load(), nullptr) << "precondition: no pollDesc yet";
  std::atomic<bool> closing_started{false};
  std::atomic<bool> ref_taken{false};
  const int64_t base = Parked();
  Op reader([&] {
    FdRef ref;
    if (ref.Acquire(fd) != 0) return IoResult::Err(EBADF);
    ref_taken.store(true);
    while (!closing_started.load()) usleep(100);  // the read's EAGAIN happened "here"
    BlockingCall call(ref, Mode::kRead, 0, false);
    for (;;) {
      int e = call.WaitReady();
      if (e != 0) return IoResult::Err(e);
      char b;
      long n = recv(fd, &b, 1, MSG_DONTWAIT);
      if (n >= 0) return IoResult::Ok(n);
    }
  });
  ASSERT_TRUE(WaitUntil([&] { return ref_taken.load(); }));
  Op closer([&] { return Close(fd); });
  ASSERT_TRUE(WaitUntil([&] { return closer.Asleep(); }));
  closing_started.store(true);
  bool parked = false;
  ASSERT_TRUE(WaitUntil([&] {
    parked = Parked() == base + 1;
    return reader.done() || parked;
  }));
  if (!reader.done()) {
    ADD_FAILURE() << "the reader parked on a pollDesc created after close began; close waits "
                     "for it forever";
    if (PollDesc* pd = FdTable::Find(fd)->pd.load()) pd->Evict();  // unstick both threads
  }
  EXPECT_EQ(reader.Join().err, EBADF);
  EXPECT_TRUE(closer.Join().ok());
  sv_[0] = -1;
}

// dup2 over a socket closes it: parked operations on the old file wake with EBADF, and the
// number now names the new file.
TEST_P(CloseTest, Dup2OverASocketWakesItsParkedReaderWithEbadf) {
  int other[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, other), 0);
  NoteSocketPair(other, AF_UNIX, SOCK_STREAM);
  char buf[8];
  Op reader([&] { return Read(sv_[0], buf, sizeof buf); });
  ASSERT_TRUE(WaitUntil([&] { return reader.Asleep(); }));
  IoResult d = Dup3(other[0], sv_[0], 0, true);
  ASSERT_TRUE(d.ok()) << d.err;
  EXPECT_EQ(d.n, sv_[0]);
  EXPECT_EQ(reader.Join().err, EBADF);
  // sv_[0] is now a second name for other[0]: what other[1] writes, it reads.
  ASSERT_EQ(write(other[1], "dup", 3), 3);
  IoResult r = Read(sv_[0], buf, sizeof buf);
  EXPECT_EQ(r.n, 3);
  EXPECT_TRUE(Close(other[0]).ok());
  EXPECT_TRUE(Close(other[1]).ok());
}

TEST_P(CloseTest, FailingDup2FromABadFdLeavesTheTargetUntouched) {
  char buf[8];
  Op reader([&] { return Read(sv_[0], buf, sizeof buf); });
  ASSERT_TRUE(WaitUntil([&] { return reader.Asleep(); }));
  EXPECT_EQ(Dup3(-1, sv_[0], 0, true).err, EBADF);
  EXPECT_EQ(Dup3(kMaxFds + 5, sv_[0], 0, true).err, EBADF);
  EXPECT_FALSE(reader.done());
  ASSERT_EQ(write(sv_[1], "ok", 2), 2);
  EXPECT_EQ(reader.Join().n, 2);
}

// Reuse: the number of a closed socket comes back from the kernel for a new socket. Nothing of
// the old incarnation (its parked reader's deadline, its pollDesc, its epoll registration) may
// act on the new one.
TEST_P(CloseTest, ReusedFdNumberIsUntouchedByTheOldIncarnation) {
  const int fd = sv_[0];
  timeval tv{0, 200000};  // the old incarnation's reader has a 200ms deadline
  ASSERT_TRUE(SetSockOpt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv).ok());
  char buf[8];
  const int64_t old_deadline = Nanotime() + 200 * kMs;
  Op old_reader([&] { return Read(fd, buf, sizeof buf); });
  ASSERT_TRUE(WaitUntil([&] { return old_reader.Asleep(); }));
  ASSERT_TRUE(Close(fd).ok());
  EXPECT_EQ(old_reader.Join().err, EBADF);
  close(sv_[1]);
  sv_[0] = sv_[1] = -1;

  int fresh[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fresh), 0);
  NoteSocketPair(fresh, AF_UNIX, SOCK_STREAM);
  sv_[0] = fresh[0];
  sv_[1] = fresh[1];
  if (fresh[0] != fd && fresh[1] != fd) GTEST_SKIP() << "the kernel did not reuse the number";
  const int reused = fresh[0] == fd ? fresh[0] : fresh[1];
  const int peer = reused == fresh[0] ? fresh[1] : fresh[0];
  char got[8];
  Op new_reader([&] { return Read(reused, got, sizeof got); });
  ASSERT_TRUE(WaitUntil([&] { return new_reader.Asleep(); }));
  ASSERT_TRUE(WaitUntil([&] { return Nanotime() > old_deadline + 300 * kMs; }));
  EXPECT_FALSE(new_reader.done()) << "the old incarnation's deadline reached the new socket";
  ASSERT_EQ(write(peer, "new", 3), 3);
  IoResult r = new_reader.Join();
  EXPECT_EQ(r.n, 3);
}

INSTANTIATE_TEST_SUITE_P(Wait, CloseTest,
                         ::testing::Values(WaitPath::kNetpoller, WaitPath::kKernel), PathName);

}  // namespace
}  // namespace gonet::core
