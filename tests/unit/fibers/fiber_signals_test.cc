// Waits for a signal in a fiber (core/fibers/fiber_signals.h, SignalWait): sigsuspend parks the
// fiber with the call's mask as its own until a handler has run on it, a signal the mask blocks
// stays pending through the wait, an ignored one ends nothing, and sigpending reports what is
// pending on the fiber. And the offloaded call that runs beside a park (StartOffload,
// FinishOffload), which the wait's watch is. Process-directed signals need every other thread of
// the process to block them, which a unit-test binary cannot promise: the conformance scenarios
// signal_waits_in_a_thread and readiness_waits_with_a_signal_mask prove those.
#include "core/fibers/fiber_signals.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "core/fibers/syscall_offload.h"
#include "tests/unit/fiber_test_util.h"

namespace gonet::core {
namespace {

using fibertest::Go;
using fibertest::StartFibersMode;
using fibertest::WaitUntil;

std::atomic<int> g_runs[65];
std::atomic<FiberTask*> g_ran_on{nullptr};

void OnSignal(int sig) {
  g_ran_on = FiberScheduler::Current();
  g_runs[sig].fetch_add(1);
}

// Installs OnSignal (or SIG_IGN) for sig for the test's length.
class Handler {
 public:
  explicit Handler(int sig, bool ignore = false) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = ignore ? SIG_IGN : OnSignal;
    sigemptyset(&sa.sa_mask);
    EXPECT_EQ(sigaction(sig, &sa, &old_), 0);
    g_runs[sig] = 0;
  }
  ~Handler() { sigaction(sig_, &old_, nullptr); }

 private:
  int sig_;
  struct sigaction old_ {};
};

sigset_t Set(std::initializer_list<int> sigs) {
  sigset_t s;
  sigemptyset(&s);
  for (int sig : sigs) sigaddset(&s, sig);
  return s;
}

// A fiber that blocks `blocked`, then waits in sigsuspend with `during` as its mask.
struct Suspender {
  std::atomic<bool> in{false};
  std::atomic<int> r{0};
  std::atomic<int> err{0};
  std::atomic<bool> restored{false};  // its mask afterwards is `blocked` again
  FiberTask* task = nullptr;

  Suspender(sigset_t blocked, sigset_t during) {
    task = Go([this, blocked, during] {
      FiberTask* me = FiberScheduler::Current();
      me->SigMask(SIG_SETMASK, &blocked, nullptr);
      in = true;
      r = FiberSigsuspend(&during);
      err = errno;
      sigset_t now;
      me->SigMask(SIG_SETMASK, nullptr, &now);
      restored = sigismember(&now, SIGUSR1) == sigismember(&blocked, SIGUSR1) &&
                 sigismember(&now, SIGUSR2) == sigismember(&blocked, SIGUSR2);
    });
  }
  bool Parked() {
    return WaitUntil([&] { return in.load() && task->parked(); });
  }
};

TEST(SignalWait, SigsuspendParksUntilAHandlerRanOnTheFiberThenRestoresItsMask) {
  StartFibersMode();
  Handler h(SIGUSR1);
  Suspender s(Set({SIGUSR1}), Set({}));
  ASSERT_TRUE(s.Parked());
  EXPECT_EQ(s.task->Kill(SIGUSR1, SI_TKILL, sigval{}), 0);
  ASSERT_EQ(s.task->Join(nullptr), 0);
  EXPECT_EQ(s.r.load(), -1);
  EXPECT_EQ(s.err.load(), EINTR);
  EXPECT_EQ(g_runs[SIGUSR1].load(), 1);
  EXPECT_EQ(g_ran_on.load(), s.task);
  EXPECT_TRUE(s.restored.load());
}

TEST(SignalWait, SignalTheWaitsMaskBlocksStaysPendingAndRunsOnceUnblocked) {
  StartFibersMode();
  Handler h1(SIGUSR1), h2(SIGUSR2);
  std::atomic<bool> in{false}, sent{false};
  std::atomic<int> r{0}, usr2_during{-1}, pending_after{0}, usr2_on_unblock{-1};
  FiberTask* t = Go([&] {
    FiberTask* me = FiberScheduler::Current();
    sigset_t both = Set({SIGUSR1, SIGUSR2});
    me->SigMask(SIG_SETMASK, &both, nullptr);
    sigset_t during = Set({SIGUSR2});
    in = true;
    while (!sent) usleep(1000);
    r = FiberSigsuspend(&during);  // SIGUSR2, already pending, stays blocked
    usr2_during = g_runs[SIGUSR2].load();
    sigset_t p;
    me->SigPending(&p);
    pending_after = sigismember(&p, SIGUSR2);
    sigset_t usr2 = Set({SIGUSR2});
    me->SigMask(SIG_UNBLOCK, &usr2, nullptr);
    usr2_on_unblock = g_runs[SIGUSR2].load();
  });
  ASSERT_TRUE(WaitUntil([&] { return in.load(); }));
  EXPECT_EQ(t->Kill(SIGUSR2, SI_TKILL, sigval{}), 0);
  sent = true;
  ASSERT_TRUE(WaitUntil([&] { return t->parked() && g_runs[SIGUSR1].load() == 0; }));
  EXPECT_EQ(t->Kill(SIGUSR1, SI_TKILL, sigval{}), 0);
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(r.load(), -1);
  EXPECT_EQ(g_runs[SIGUSR1].load(), 1);
  EXPECT_EQ(usr2_during.load(), 0);
  EXPECT_EQ(pending_after.load(), 1);
  EXPECT_EQ(usr2_on_unblock.load(), 1);
}

TEST(SignalWait, IgnoredSignalDoesNotEndTheWait) {
  StartFibersMode();
  Handler ignored(SIGUSR2, /*ignore=*/true);
  Handler h(SIGUSR1);
  Suspender s(Set({SIGUSR1, SIGUSR2}), Set({}));
  ASSERT_TRUE(s.Parked());
  EXPECT_EQ(s.task->Kill(SIGUSR2, SI_TKILL, sigval{}), 0);
  // Woken, the fiber discards it and parks again, still in the wait.
  ASSERT_TRUE(WaitUntil([&] { return !s.task->HasDeliverableSignal() && s.task->parked(); }));
  EXPECT_EQ(g_runs[SIGUSR2].load(), 0);
  EXPECT_EQ(s.r.load(), 0);
  EXPECT_EQ(s.task->Kill(SIGUSR1, SI_TKILL, sigval{}), 0);
  ASSERT_EQ(s.task->Join(nullptr), 0);
  EXPECT_EQ(s.r.load(), -1);
  EXPECT_EQ(g_runs[SIGUSR1].load(), 1);
}

TEST(SignalWait, SigpendingReportsTheFibersBlockedPendingSignals) {
  StartFibersMode();
  Handler h(SIGUSR2);
  std::atomic<bool> in{false}, sent{false};
  std::atomic<int> before{-1}, after{-1};
  FiberTask* t = Go([&] {
    FiberTask* me = FiberScheduler::Current();
    sigset_t usr2 = Set({SIGUSR2});
    me->SigMask(SIG_BLOCK, &usr2, nullptr);
    sigset_t p;
    me->SigPending(&p);
    before = sigismember(&p, SIGUSR2);
    in = true;
    while (!sent) usleep(1000);
    me->SigPending(&p);
    after = sigismember(&p, SIGUSR2);
    me->SigMask(SIG_UNBLOCK, &usr2, nullptr);
  });
  ASSERT_TRUE(WaitUntil([&] { return in.load(); }));
  EXPECT_EQ(t->Kill(SIGUSR2, SI_TKILL, sigval{}), 0);
  sent = true;
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_EQ(before.load(), 0);
  EXPECT_EQ(after.load(), 1);
  EXPECT_EQ(g_runs[SIGUSR2].load(), 1);
}

long PollForever(void* fd) {
  pollfd p{static_cast<int>(reinterpret_cast<intptr_t>(fd)), POLLIN, 0};
  return poll(&p, 1, -1);
}

TEST(SignalWait, StartedOffloadRunsBesideTheFiberAndFinishInterruptsIt) {
  StartFibersMode();
  int fds[2];
  ASSERT_EQ(pipe2(fds, O_CLOEXEC), 0);
  std::atomic<long> interrupted{0}, completed{0};
  std::atomic<int> err{0};
  std::atomic<bool> ran_beside{false};
  FiberTask* t = Go([&] {
    void* fd = reinterpret_cast<void*>(static_cast<intptr_t>(fds[0]));
    OffloadJob job;
    job.fn = PollForever;
    job.arg = fd;
    if (!StartOffload(&job)) return;
    ran_beside = job.done.load() == 0;  // the fiber goes on while the helper polls
    interrupted = FinishOffload(&job);  // nothing to read: poll fails with EINTR
    err = errno;
    OffloadJob job2;
    job2.fn = PollForever;
    job2.arg = fd;
    if (!StartOffload(&job2)) return;
    if (write(fds[1], "x", 1) != 1) return;
    while (job2.done.load() == 0) FiberScheduler::Current()->Park(0, WaitKind::kRestartable);
    completed = FinishOffload(&job2);  // done by itself: its own answer
  });
  ASSERT_EQ(t->Join(nullptr), 0);
  EXPECT_TRUE(ran_beside.load());
  EXPECT_EQ(interrupted.load(), -1);
  EXPECT_EQ(err.load(), EINTR);
  EXPECT_EQ(completed.load(), 1);
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace gonet::core
