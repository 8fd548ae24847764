// Signals interrupting a parked socket call, by signal(7)'s rule: a blocking recv without a
// timeout is restarted after an SA_RESTART handler and fails with EINTR otherwise; a recv with
// SO_RCVTIMEO fails with EINTR whatever the handler's flags (core/poll/parker.h WaitKind).
//
// Under ThreadSanitizer the program's handler runs late (TSan defers it to the thread's next
// intercepted call; the raw futex syscall is not one), so these tests observe delivery as the
// signal leaving the thread's pending set, not as the handler having run.
#include <gtest/gtest.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>

#include "core/base/base.h"
#include "core/fd/ops.h"
#include "core/poll/parker.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"
#include "core/threads/thread_parker.h"
#include "tests/unit/ops_test_util.h"

#if defined(__SANITIZE_THREAD__)
#define GONET_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define GONET_TSAN 1
#endif
#endif
#ifndef GONET_TSAN
#define GONET_TSAN 0
#endif

namespace gonet::core {
namespace {

using namespace testing_util;  // ops_test_util.h: WaitUntil, Blocked, WaitPath, ...

// Reads "Name:\t<hex>" from /proc/self/task/TID/status.
bool SignalPending(pid_t tid, int sig) {
  char path[64];
  snprintf(path, sizeof path, "/proc/self/task/%d/status", static_cast<int>(tid));
  FILE* f = fopen(path, "r");
  if (f == nullptr) return false;
  char line[256];
  unsigned long long mask = 0;
  while (fgets(line, sizeof line, f) != nullptr) {
    if (strncmp(line, "SigPnd:", 7) == 0) {
      mask = strtoull(line + 7, nullptr, 16);
      break;
    }
  }
  fclose(f);
  return (mask >> (sig - 1)) & 1;
}

std::atomic<int> g_handled{0};
void OnSignal(int) { g_handled.fetch_add(1, std::memory_order_relaxed); }

// The handler stays installed after the test: under TSan a deferred delivery may still run it,
// and SIGUSR1's default action would kill the process. Each TEST runs in its own process.
void InstallHandler(bool restart) {
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = restart ? SA_RESTART : 0;
  ASSERT_EQ(sigaction(SIGUSR1, &sa, nullptr), 0);
}

class SignalTest : public ::testing::TestWithParam<WaitPath> {
 protected:
  void SetUp() override {
    InitForTest(ThreadsConfig(GetParam()));
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, sv_), 0);
    NoteSocketPair(sv_, AF_UNIX, SOCK_STREAM);
    invariants_ = Stats().invariant_failures.load();
  }
  void TearDown() override {
    for (int fd : sv_) {
      if (Close(fd).passthrough()) close(fd);
    }
    EXPECT_EQ(Stats().invariant_failures.load(), invariants_);
  }

  // Starts a core::Read on sv_[0] in a thread and waits until it is parked.
  void StartParkedReader() {
    reader_ = std::thread([this] {
      tid_.store(Self());
      result_ = Read(sv_[0], buf_, sizeof buf_);
      done_.store(true);
    });
    // The thread must be asleep inside the syscall: a signal that lands before it gets there
    // runs its handler and then the wait starts, just as a signal that lands before a native
    // recv does not interrupt it.
    ASSERT_TRUE(WaitUntil([&] {
      pid_t t = tid_.load();
      return t != 0 && Blocked(t);
    }));
  }
  IoResult JoinReader() {
    reader_.join();
    return result_;
  }

  int sv_[2] = {-1, -1};
  int64_t invariants_ = 0;
  std::thread reader_;
  std::atomic<pid_t> tid_{0};
  std::atomic<bool> done_{false};
  IoResult result_;
  char buf_[16] = {};
};

TEST_P(SignalTest, HandlerWithoutSaRestartInterruptsParkedReadWithEintr) {
  InstallHandler(/*restart=*/false);
  const int64_t signals = SignalsCounted(GetParam());
  StartParkedReader();
  ASSERT_EQ(pthread_kill(reader_.native_handle(), SIGUSR1), 0);
  IoResult r = JoinReader();
  EXPECT_EQ(r.err, EINTR);
  EXPECT_EQ(SignalsCounted(GetParam()), signals + 1);
  // The socket is still usable: data sent now is read by the next call.
  ASSERT_EQ(write(sv_[1], "after", 5), 5);
  char buf[8];
  EXPECT_EQ(Read(sv_[0], buf, sizeof buf).n, 5);
}

TEST_P(SignalTest, SaRestartHandlerWithoutTimeoutLeavesReadParkedUntilData) {
  InstallHandler(/*restart=*/true);
  StartParkedReader();
  const pid_t tid = tid_.load();
  ASSERT_EQ(pthread_kill(reader_.native_handle(), SIGUSR1), 0);
  // Delivered (no longer pending), and the reader is back asleep in the futex.
  ASSERT_TRUE(WaitUntil([&] { return !SignalPending(tid, SIGUSR1) && Blocked(tid); }));
  if (!GONET_TSAN) {
    ASSERT_TRUE(WaitUntil([&] { return g_handled.load() == 1; }));
    ASSERT_TRUE(WaitUntil([&] { return Blocked(tid) || done_.load(); }));
  }
  EXPECT_FALSE(done_.load()) << "returned " << result_.n << " err " << result_.err;
  ASSERT_EQ(write(sv_[1], "data", 4), 4);
  IoResult r = JoinReader();
  EXPECT_EQ(r.n, 4);
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(memcmp(buf_, "data", 4), 0);
}

TEST_P(SignalTest, SaRestartHandlerWithSoRcvtimeoStillInterruptsWithEintr) {
  InstallHandler(/*restart=*/true);
  // Long enough that only the signal can end the read.
  timeval tv{60, 0};
  ASSERT_TRUE(SetSockOpt(sv_[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv).ok());
  StartParkedReader();
  ASSERT_EQ(pthread_kill(reader_.native_handle(), SIGUSR1), 0);
  IoResult r = JoinReader();
  EXPECT_EQ(r.err, EINTR);
}

TEST_P(SignalTest, SignalInterruptsAReadQueuedBehindAnotherReader) {
  InstallHandler(/*restart=*/false);
  StartParkedReader();  // first in line (netpoller path: holds the read direction)
  std::atomic<pid_t> queued_tid{0};
  IoResult queued_result;
  char buf[8];
  std::thread queued([&] {
    CurrentParker();  // no allocation (and no malloc lock futex) once the tid is published
    queued_tid.store(Self());
    queued_result = Read(sv_[0], buf, sizeof buf);
  });
  ASSERT_TRUE(WaitUntil([&] { return queued_tid.load() != 0 && Blocked(queued_tid.load()); }));
  ASSERT_EQ(pthread_kill(queued.native_handle(), SIGUSR1), 0);
  queued.join();
  EXPECT_EQ(queued_result.err, EINTR);
  // The first reader was not disturbed and still gets the data.
  EXPECT_FALSE(done_.load());
  ASSERT_EQ(write(sv_[1], "x", 1), 1);
  EXPECT_EQ(JoinReader().n, 1);
}

INSTANTIATE_TEST_SUITE_P(Wait, SignalTest,
                         ::testing::Values(WaitPath::kNetpoller, WaitPath::kKernel), PathName);

}  // namespace
}  // namespace gonet::core
