// Netpoller: edge-triggered epoll delivering readiness to pollDescs, and the fdseq tag that drops
// events naming a recycled pollDesc (core/poll/netpoller.h).
//
// Delivery is done by the runtime's netpoller driver thread (StartNetpollerDriver), as in
// production; tests wait for its effects (a waiter waking, a counter moving).
#include "core/poll/netpoller.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/base/base.h"
#include "core/poll/poll_desc.h"
#include "core/runtime/runtime.h"
#include "core/stats/stats.h"
#include "tests/unit/wait_util.h"

namespace gonet::core {
namespace {

using namespace testing_util;  // wait_util.h: WaitUntil, InSyscall, kMs

// Blocked on either path: parked on a pollDesc, or in a blocking call made in the kernel.
int64_t Parked() { return Stats().threads_parked.load() + Stats().threads_in_kernel.load(); }

// Whether the runtime's driver thread exists in this process (when the whole binary runs in one
// process, an earlier test may have started it).
bool DriverRunning() {
  DIR* d = opendir("/proc/self/task");
  if (d == nullptr) return false;
  bool found = false;
  while (dirent* ent = readdir(d)) {
    if (ent->d_name[0] == '.') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/self/task/%s/comm", ent->d_name);
    FILE* f = fopen(path, "r");
    if (f == nullptr) continue;
    char comm[32] = {};
    if (fgets(comm, sizeof comm, f) != nullptr && strncmp(comm, "gonet-netpoll", 13) == 0) {
      found = true;
    }
    fclose(f);
  }
  closedir(d);
  return found;
}

class NetpollerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv_), 0);
    invariants_ = Stats().invariant_failures.load();
  }
  void TearDown() override {
    close(sv_[0]);
    close(sv_[1]);
    EXPECT_EQ(Stats().invariant_failures.load(), invariants_);
  }
  int sv_[2] = {-1, -1};
  int64_t invariants_ = 0;
};

TEST_F(NetpollerTest, EpollReadinessWakesParkedReader) {
  PollDesc* pd = PollDesc::Alloc(sv_[0]);
  ASSERT_NE(pd, nullptr);
  Netpoller& np = Netpoller::Get();
  ASSERT_EQ(np.Arm(pd), 0);
  EXPECT_TRUE(np.IsArmed(pd));
  StartNetpollerDriver();
  const int64_t base = Parked();
  WaitResult r = WaitResult::kClosing;
  std::thread reader([&] { r = pd->Wait(Mode::kRead, WaitKind::kRestartable); });
  ASSERT_TRUE(WaitUntil([&] { return Parked() == base + 1; }));
  ASSERT_EQ(write(sv_[1], "x", 1), 1);
  reader.join();
  EXPECT_EQ(r, WaitResult::kOk);
  EXPECT_EQ(np.Disarm(pd), 0);
  EXPECT_FALSE(np.IsArmed(pd));
  pd->Free();
}

TEST_F(NetpollerTest, ArmingReportsTheInitialWritability) {
  // Edge-triggered registration still reports the state at registration time: a fresh socket is
  // writable, and a writer must not wait for an edge that already happened.
  PollDesc* pd = PollDesc::Alloc(sv_[0]);
  ASSERT_NE(pd, nullptr);
  ASSERT_EQ(Netpoller::Get().Arm(pd), 0);
  StartNetpollerDriver();
  EXPECT_EQ(pd->Wait(Mode::kWrite, WaitKind::kRestartable), WaitResult::kOk);
  Netpoller::Get().Disarm(pd);
  pd->Free();
}

// Go's fdseq: an event queued under an old incarnation's tag must not make the recycled pollDesc
// ready; re-arming refreshes the tag, and then events flow again.
TEST_F(NetpollerTest, EventWithAStaleTagIsDroppedAfterThePollDescIsRecycled) {
  Netpoller& np = Netpoller::Get();
  PollDesc* pd = PollDesc::Alloc(sv_[0]);
  ASSERT_NE(pd, nullptr);
  ASSERT_EQ(np.Arm(pd), 0);
  StartNetpollerDriver();
  // Consume the initial writability event so that nothing is in flight under the old tag.
  ASSERT_EQ(pd->Wait(Mode::kWrite, WaitKind::kRestartable), WaitResult::kOk);
  const uint64_t old_tag = pd->EpollTag();
  // The fd stays registered under old_tag (as if it had been closed and reused behind gonet's
  // back): free the pollDesc and take it again.
  pd->Free();
  PollDesc* again = PollDesc::Alloc(sv_[0]);
  ASSERT_EQ(again, pd);
  ASSERT_FALSE(again->MatchesTag(old_tag));
  EXPECT_FALSE(np.IsArmed(again));

  const int64_t stale = Stats().stale_events.load();
  const int64_t wakes = Stats().wakes_io.load();
  ASSERT_EQ(write(sv_[1], "x", 1), 1);
  ASSERT_TRUE(WaitUntil([&] { return Stats().stale_events.load() > stale; }));
  EXPECT_EQ(Stats().wakes_io.load(), wakes);
  // Not ready: the stale event was dropped, so this wait runs into its deadline.
  again->SetDeadline(Mode::kRead, Nanotime() + 20 * kMs);
  EXPECT_EQ(again->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kTimeout);
  again->SetDeadline(Mode::kRead, 0);

  // Re-arming replaces the registration's tag (EEXIST -> MOD), which also re-reports the
  // pending byte under the new tag.
  ASSERT_EQ(np.Arm(again), 0);
  EXPECT_EQ(again->Wait(Mode::kRead, WaitKind::kRestartable), WaitResult::kOk);
  np.Disarm(again);
  again->Free();
}

TEST_F(NetpollerTest, ArmRefusesAnFdEpollCannotPoll) {
  char path[] = "/tmp/gonet-netpoller-XXXXXX";
  int file = mkstemp(path);
  ASSERT_GE(file, 0);
  unlink(path);
  PollDesc* pd = PollDesc::Alloc(file);
  ASSERT_NE(pd, nullptr);
  EXPECT_EQ(Netpoller::Get().Arm(pd), -EPERM);
  EXPECT_FALSE(Netpoller::Get().IsArmed(pd));
  EXPECT_EQ(Netpoller::Get().Disarm(pd), 0);  // not armed: nothing to do
  pd->Free();
  close(file);
}

TEST_F(NetpollerTest, ArmRefusesABadFd) {
  for (int fd : {-1, 1 << 30}) {
    PollDesc* pd = PollDesc::Alloc(fd);
    ASSERT_NE(pd, nullptr);
    EXPECT_EQ(Netpoller::Get().Arm(pd), -EBADF) << fd;
    EXPECT_FALSE(Netpoller::Get().IsArmed(pd));
    pd->Free();
  }
}

TEST_F(NetpollerTest, ArmedFdsGaugeFollowsArmAndDisarm) {
  Netpoller& np = Netpoller::Get();
  const int64_t armed = Stats().fds_armed.load();
  PollDesc* pd = PollDesc::Alloc(sv_[0]);
  ASSERT_NE(pd, nullptr);
  ASSERT_EQ(np.Arm(pd), 0);
  EXPECT_EQ(Stats().fds_armed.load(), armed + 1);
  EXPECT_EQ(np.Disarm(pd), 0);
  EXPECT_EQ(Stats().fds_armed.load(), armed);
  EXPECT_EQ(np.Disarm(pd), 0);  // twice: still counted once
  EXPECT_EQ(Stats().fds_armed.load(), armed);
  pd->Free();
}

// netpoller.h: "Arm(pd) registers pd's fd once". FdRef::ArmedPollDesc checks IsArmed and then
// arms without a lock, so two threads blocking on a fresh fd at the same time both call Arm; the
// registration is refreshed (EEXIST -> MOD), and the armed-fds gauge must still count one fd.
TEST_F(NetpollerTest, ArmingAnArmedPollDescAgainCountsOneArmedFd) {
  Netpoller& np = Netpoller::Get();
  const int64_t armed = Stats().fds_armed.load();
  PollDesc* pd = PollDesc::Alloc(sv_[0]);
  ASSERT_NE(pd, nullptr);
  ASSERT_EQ(np.Arm(pd), 0);
  ASSERT_EQ(np.Arm(pd), 0);
  EXPECT_EQ(Stats().fds_armed.load(), armed + 1);
  np.Disarm(pd);
  EXPECT_EQ(Stats().fds_armed.load(), armed) << "the gauge drifted: one Disarm for two counts";
  pd->Free();
}

TEST_F(NetpollerTest, PollWithZeroDelayReturnsAtOnce) {
  if (DriverRunning()) GTEST_SKIP() << "the driver thread owns Poll in this process";
  // Nothing armed under a live tag is ready: 0 pollDescs made ready, no blocking.
  EXPECT_GE(Netpoller::Get().Poll(0), 0);
}

TEST_F(NetpollerTest, BreakWakesABlockedPoll) {
  if (DriverRunning()) GTEST_SKIP() << "the driver thread owns Poll in this process";
  Netpoller& np = Netpoller::Get();
  np.Poll(0);  // opens the epoll instance and drains anything pending
  std::atomic<pid_t> tid{0};
  std::atomic<bool> returned{false};
  std::thread poller([&] {
    tid.store(static_cast<pid_t>(syscall(SYS_gettid)));
    np.Poll(-1);
    returned.store(true);
  });
  ASSERT_TRUE(WaitUntil([&] {
    pid_t t = tid.load();
    return t != 0 && (InSyscall(t, SYS_epoll_wait) || InSyscall(t, SYS_epoll_pwait));
  }));
  np.Break();
  np.Break();  // de-duplicated: costs nothing, wakes nothing extra
  poller.join();
  EXPECT_TRUE(returned.load());
}

// gonet's epoll instance and break eventfd sit out of the program's way (core/base/own_fd.h):
// opening them at the first park must not take the lowest free numbers, which natively the
// program's next fds get (libdbus's tests list /proc/self/fd around each case and failed on the
// two that appeared). A forked child starts with no instance, as a process that never parked.
TEST_F(NetpollerTest, OpeningTheNetpollerTakesNoNumberTheProgramWouldGet) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    Netpoller::Get().AfterForkChild();  // no instance (the atfork handler may have done it too)
    int lowest = fcntl(sv_[0], F_DUPFD_CLOEXEC, 0);
    close(lowest);
    Netpoller::Get().Poll(0);  // opens the instance and its eventfd
    int next = fcntl(sv_[0], F_DUPFD_CLOEXEC, 0);
    _exit(next == lowest ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "the netpoller took the program's next fd number";
}

}  // namespace
}  // namespace gonet::core
