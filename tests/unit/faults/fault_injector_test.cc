// FaultInjector: when configured faults fire, and that every injection is counted.
#include "core/faults/fault_injector.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

namespace gonet::core {
namespace {

std::unique_ptr<FaultInjector> Injector(std::string_view specs, uint64_t seed = 1) {
  auto f = std::make_unique<FaultInjector>();
  ParseError e = f->Configure(specs, seed);
  EXPECT_FALSE(e.failed()) << e.message();
  return f;
}

// The runtime's instance must be usable before any constructor runs (see the header).
constinit FaultInjector g_constant_initialized;

TEST(FaultInjector, GlobalInstanceIsOffBeforeAnyConstructorRuns) {
  EXPECT_FALSE(g_constant_initialized.enabled());
  EXPECT_TRUE(g_constant_initialized.Decide(FaultOp::kRead).none());
}

TEST(FaultInjector, NothingConfiguredDecidesNothing) {
  FaultInjector f;
  EXPECT_FALSE(f.enabled());
  for (size_t i = 0; i < kFaultOpCount; ++i) EXPECT_TRUE(f.Decide(static_cast<FaultOp>(i)).none());
}

TEST(FaultInjector, RuleFiresOnlyForItsOp) {
  auto f = Injector("connect:ECONNREFUSED");
  EXPECT_TRUE(f->enabled());
  EXPECT_EQ(f->Decide(FaultOp::kConnect).err, ECONNREFUSED);
  EXPECT_TRUE(f->Decide(FaultOp::kRead).none());
  EXPECT_TRUE(f->Decide(FaultOp::kAccept).none());
}

TEST(FaultInjector, CountOnlyFailsTheFirstNMatchingCalls) {
  auto f = Injector("accept:EMFILE:n=2");
  EXPECT_EQ(f->Decide(FaultOp::kAccept).err, EMFILE);
  EXPECT_EQ(f->Decide(FaultOp::kAccept).err, EMFILE);
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(f->Decide(FaultOp::kAccept).none());
  EXPECT_EQ(f->injected_errors(FaultOp::kAccept), 2u);
}

TEST(FaultInjector, AfterLetsTheFirstKThroughThenFailsEveryLaterCall) {
  auto f = Injector("read:ECONNRESET:after=3");
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(f->Decide(FaultOp::kRead).none());
  for (int i = 0; i < 5; ++i) EXPECT_EQ(f->Decide(FaultOp::kRead).err, ECONNRESET);
  EXPECT_EQ(f->injected_errors(FaultOp::kRead), 5u);
}

TEST(FaultInjector, DelayRuleDelaysWithoutFailing) {
  auto f = Injector("write:delay=50ms");
  FaultDecision d = f->Decide(FaultOp::kWrite);
  EXPECT_EQ(d.err, 0);
  EXPECT_EQ(d.delay_ns, 50'000'000);
  EXPECT_EQ(f->injected_delays(FaultOp::kWrite), 1u);
  EXPECT_EQ(f->injected_errors(FaultOp::kWrite), 0u);
}

TEST(FaultInjector, DelayAndErrnoRulesCombineOnOneCall) {
  auto f = Injector("write:delay=10ms;write:EPIPE;write:delay=5ms;write:ENOBUFS");
  FaultDecision d = f->Decide(FaultOp::kWrite);
  EXPECT_EQ(d.err, EPIPE) << "the first errno rule in spec order wins";
  EXPECT_EQ(d.delay_ns, 15'000'000) << "delays add up";
  EXPECT_EQ(f->injected_errors(FaultOp::kWrite), 1u);
  EXPECT_EQ(f->injected_delays(FaultOp::kWrite), 1u);
}

TEST(FaultInjector, EveryRuleCountsItsOwnMatchingCalls) {
  // The second rule sees both calls even though the first rule decided the first one.
  auto f = Injector("read:EIO:n=1;read:ECONNRESET:after=1");
  EXPECT_EQ(f->Decide(FaultOp::kRead).err, EIO);
  EXPECT_EQ(f->Decide(FaultOp::kRead).err, ECONNRESET);
}

TEST(FaultInjector, ConnectPortFilterMatchesThePeerPort) {
  auto f = Injector("connect:ECONNREFUSED:port=6379");
  EXPECT_EQ(f->Decide(FaultOp::kConnect, {.local = 40000, .peer = 6379}).err, ECONNREFUSED);
  EXPECT_TRUE(f->Decide(FaultOp::kConnect, {.local = 6379, .peer = 80}).none());
  EXPECT_TRUE(f->Decide(FaultOp::kConnect).none()) << "an unknown port never matches a filter";
}

TEST(FaultInjector, AcceptPortFilterMatchesTheLocalPort) {
  auto f = Injector("accept:EMFILE:port=8080");
  EXPECT_EQ(f->Decide(FaultOp::kAccept, {.local = 8080, .peer = 0}).err, EMFILE);
  EXPECT_TRUE(f->Decide(FaultOp::kAccept, {.local = 9090, .peer = 8080}).none());
}

TEST(FaultInjector, DataOpPortFilterMatchesEitherPort) {
  auto f = Injector("read:ECONNRESET:port=6379");
  EXPECT_EQ(f->Decide(FaultOp::kRead, {.local = 6379, .peer = 50000}).err, ECONNRESET);
  EXPECT_EQ(f->Decide(FaultOp::kRead, {.local = 50000, .peer = 6379}).err, ECONNRESET);
  EXPECT_TRUE(f->Decide(FaultOp::kRead, {.local = 1, .peer = 2}).none());
}

TEST(FaultInjector, CallsFilteredOutByPortDoNotAdvanceTheCount) {
  auto f = Injector("read:EIO:n=1:port=7");
  EXPECT_TRUE(f->Decide(FaultOp::kRead, {.local = 1, .peer = 2}).none());
  EXPECT_EQ(f->Decide(FaultOp::kRead, {.local = 7, .peer = 2}).err, EIO);
  EXPECT_TRUE(f->Decide(FaultOp::kRead, {.local = 7, .peer = 2}).none());
}

std::vector<bool> Draws(std::string_view specs, uint64_t seed, int calls) {
  auto f = Injector(specs, seed);
  std::vector<bool> fired;
  for (int i = 0; i < calls; ++i) fired.push_back(f->Decide(FaultOp::kConnect).err != 0);
  return fired;
}

TEST(FaultInjector, ProbabilityIsDeterministicGivenTheSeed) {
  EXPECT_EQ(Draws("connect:ECONNREFUSED:p=0.5", 42, 200),
            Draws("connect:ECONNREFUSED:p=0.5", 42, 200));
  EXPECT_NE(Draws("connect:ECONNREFUSED:p=0.5", 42, 200),
            Draws("connect:ECONNREFUSED:p=0.5", 43, 200));
}

TEST(FaultInjector, ProbabilityFiresAboutThatOftenAndNeverOrAlwaysAtTheEnds) {
  // Deterministic for the fixed seed, so the bounds cannot flake; they are wide so that any
  // reasonable mixer passes.
  int fired = 0;
  for (bool b : Draws("connect:ECONNREFUSED:p=0.1", 7, 10000)) fired += b;
  EXPECT_GT(fired, 800);
  EXPECT_LT(fired, 1200);
  for (bool b : Draws("connect:ECONNREFUSED:p=0", 7, 1000)) EXPECT_FALSE(b);
  for (bool b : Draws("connect:ECONNREFUSED:p=1", 7, 1000)) EXPECT_TRUE(b);
}

TEST(FaultInjector, OneRulesDrawsDoNotShiftWithAnotherRulesTraffic) {
  auto quiet = Injector("connect:ECONNREFUSED:p=0.5;read:EIO:p=0.5", 9);
  auto busy = Injector("connect:ECONNREFUSED:p=0.5;read:EIO:p=0.5", 9);
  for (int i = 0; i < 100; ++i) {
    for (int j = 0; j < i % 3; ++j) busy->Decide(FaultOp::kRead);
    EXPECT_EQ(quiet->Decide(FaultOp::kConnect).err, busy->Decide(FaultOp::kConnect).err) << i;
  }
}

TEST(FaultInjector, RefusedConfigurationChangesNothing) {
  auto f = Injector("connect:ECONNREFUSED");
  ParseError e = f->Configure("connect:EBOGUS", 1);
  EXPECT_TRUE(e.failed());
  EXPECT_EQ(f->Decide(FaultOp::kConnect).err, ECONNREFUSED);
}

TEST(FaultInjector, WantsPortsOnlyForOpsWithAPortFilter) {
  auto f = Injector("read:EIO:port=80;write:EPIPE;connect:delay=1ms");
  EXPECT_TRUE(f->WantsPorts(FaultOp::kRead));
  EXPECT_FALSE(f->WantsPorts(FaultOp::kWrite));
  EXPECT_FALSE(f->WantsPorts(FaultOp::kConnect));
  EXPECT_FALSE(FaultInjector().WantsPorts(FaultOp::kRead));
}

TEST(FaultInjector, FormatInjectionsListsOpsWithRules) {
  auto f = Injector("connect:ECONNREFUSED:n=2;write:delay=1ms");
  for (int i = 0; i < 3; ++i) f->Decide(FaultOp::kConnect);
  f->Decide(FaultOp::kWrite);
  char buf[256];
  size_t len = f->FormatInjections(buf, sizeof buf);
  EXPECT_EQ(len, strlen(buf));
  EXPECT_STREQ(buf,
               "  fault connect  2 failed, 0 delayed\n"
               "  fault write    0 failed, 1 delayed\n");
  char tiny[20];
  EXPECT_EQ(f->FormatInjections(tiny, sizeof tiny), 0u) << "a line that does not fit is dropped";
  EXPECT_STREQ(tiny, "");
}

TEST(FaultInjector, CountTriggerIsExactAcrossThreads) {
  // n=100 must fail exactly 100 calls however the threads interleave.
  auto f = Injector("write:EPIPE:n=100");
  std::atomic<int> failed{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) failed += f->Decide(FaultOp::kWrite).err == EPIPE;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 100);
  EXPECT_EQ(f->injected_errors(FaultOp::kWrite), 100u);
}

}  // namespace
}  // namespace gonet::core
