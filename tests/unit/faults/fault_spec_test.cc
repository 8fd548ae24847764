// ParseFaultSpecs: the GONET_FAULT syntax (see core/faults/fault_spec.h).
#include "core/faults/fault_spec.h"

#include <gtest/gtest.h>

#include <cerrno>
#include <string>

namespace gonet::core {
namespace {

FaultRule Rule(std::string_view text) {
  FaultRule rule;
  ParseError e = ParseFaultRule(text, &rule);
  EXPECT_FALSE(e.failed()) << text << ": " << e.message();
  return rule;
}

std::string Refusal(std::string_view specs) {
  FaultSpecResult r = ParseFaultSpecs(specs);
  EXPECT_FALSE(r.ok()) << specs << " was accepted";
  EXPECT_EQ(r.specs.size, 0u) << "a refused list must install nothing";
  return r.error.message();
}

#define EXPECT_HAS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << (haystack)

TEST(ParseFaultRule, ErrnoRuleWithoutTriggerFiresOnEveryCall) {
  FaultRule r = Rule("connect:ECONNREFUSED");
  EXPECT_EQ(r.op, FaultOp::kConnect);
  EXPECT_EQ(r.err, ECONNREFUSED);
  EXPECT_EQ(r.delay_ns, 0);
  EXPECT_EQ(r.trigger, FaultTrigger::kEveryCall);
  EXPECT_EQ(r.port, 0);
}

TEST(ParseFaultRule, EveryOpIsKnownByName) {
  EXPECT_EQ(Rule("socket:EMFILE").op, FaultOp::kSocket);
  EXPECT_EQ(Rule("connect:ETIMEDOUT").op, FaultOp::kConnect);
  EXPECT_EQ(Rule("accept:EMFILE").op, FaultOp::kAccept);
  EXPECT_EQ(Rule("read:ECONNRESET").op, FaultOp::kRead);
  EXPECT_EQ(Rule("write:EPIPE").op, FaultOp::kWrite);
  EXPECT_EQ(Rule("close:EINTR").op, FaultOp::kClose);
  for (size_t i = 0; i < kFaultOpCount; ++i) {
    std::string spec = std::string(FaultOpName(static_cast<FaultOp>(i))) + ":EIO";
    EXPECT_EQ(static_cast<size_t>(Rule(spec).op), i);
  }
}

TEST(ParseFaultRule, AnyErrnoGlibcKnowsIsAcceptedByNameAnyCaseOrNumber) {
  EXPECT_EQ(Rule("write:ENOBUFS").err, ENOBUFS);
  EXPECT_EQ(Rule("read:EAGAIN").err, EAGAIN);
  EXPECT_EQ(Rule("read:EWOULDBLOCK").err, EAGAIN);  // an alias
  EXPECT_EQ(Rule("connect:EHOSTUNREACH").err, EHOSTUNREACH);
  EXPECT_EQ(Rule("connect:ENETUNREACH").err, ENETUNREACH);
  EXPECT_EQ(Rule("socket:EACCES").err, EACCES);
  EXPECT_EQ(Rule("connect:EADDRINUSE").err, EADDRINUSE);
  EXPECT_EQ(Rule("connect:EADDRNOTAVAIL").err, EADDRNOTAVAIL);
  EXPECT_EQ(Rule("write:ENOTSUP").err, EOPNOTSUPP);
  EXPECT_EQ(Rule("connect:econnrefused").err, ECONNREFUSED);
  EXPECT_EQ(Rule("connect:111").err, 111);
  EXPECT_STREQ(ErrnoName(ECONNRESET), "ECONNRESET");
}

TEST(ParseFaultRule, DelayRuleCarriesItsDuration) {
  FaultRule r = Rule("write:delay=50ms");
  EXPECT_EQ(r.err, 0);
  EXPECT_EQ(r.delay_ns, 50'000'000);
  EXPECT_EQ(Rule("read:delay=1.5s:p=0.5").delay_ns, 1'500'000'000);
}

TEST(ParseFaultRule, EachTriggerIsParsed) {
  FaultRule p = Rule("connect:ECONNREFUSED:p=0.25");
  EXPECT_EQ(p.trigger, FaultTrigger::kProbability);
  EXPECT_DOUBLE_EQ(p.probability, 0.25);
  EXPECT_DOUBLE_EQ(Rule("read:EIO:p=.5").probability, 0.5);
  EXPECT_DOUBLE_EQ(Rule("read:EIO:p=1").probability, 1.0);
  EXPECT_DOUBLE_EQ(Rule("read:EIO:p=0").probability, 0.0);
  FaultRule n = Rule("accept:EMFILE:n=3");
  EXPECT_EQ(n.trigger, FaultTrigger::kFirstN);
  EXPECT_EQ(n.count, 3u);
  FaultRule after = Rule("read:ECONNRESET:after=10");
  EXPECT_EQ(after.trigger, FaultTrigger::kAfterK);
  EXPECT_EQ(after.count, 10u);
  EXPECT_EQ(Rule("read:ECONNRESET:after=0").count, 0u);
}

TEST(ParseFaultRule, PortFilterMayComeBeforeOrAfterTheTrigger) {
  FaultRule a = Rule("read:ECONNRESET:after=3:port=6379");
  EXPECT_EQ(a.port, 6379);
  EXPECT_EQ(a.count, 3u);
  FaultRule b = Rule("connect:ETIMEDOUT:port=80:n=1");
  EXPECT_EQ(b.port, 80);
  EXPECT_EQ(b.trigger, FaultTrigger::kFirstN);
}

TEST(ParseFaultSpecs, SemicolonSeparatesSpecsAndEmptySpecsAreIgnored) {
  FaultSpecResult r = ParseFaultSpecs(";accept:EMFILE:n=2;;write:delay=50ms:p=0.5;");
  ASSERT_TRUE(r.ok()) << r.error.message();
  ASSERT_EQ(r.specs.size, 2u);
  EXPECT_EQ(r.specs.rules[0].op, FaultOp::kAccept);
  EXPECT_EQ(r.specs.rules[1].op, FaultOp::kWrite);
  EXPECT_TRUE(ParseFaultSpecs("").ok());
  EXPECT_EQ(ParseFaultSpecs("").specs.size, 0u);
}

TEST(ParseFaultSpecs, UnknownOpIsNamedWithTheValidOps) {
  std::string msg = Refusal("recv:ECONNRESET");
  EXPECT_HAS(msg, "unknown op \"recv\"");
  EXPECT_HAS(msg, "read covers the recv family");
  EXPECT_HAS(Refusal(":EIO"), "missing op");
}

TEST(ParseFaultSpecs, UnknownErrnoIsNamed) {
  EXPECT_HAS(Refusal("connect:ECONNREFUSD"), "unknown errno \"ECONNREFUSD\"");
  EXPECT_HAS(Refusal("connect:0"), "unknown errno \"0\"");
  EXPECT_HAS(Refusal("connect:99999"), "unknown errno \"99999\"");
  EXPECT_HAS(Refusal("connect"), "needs an action");
}

TEST(ParseFaultSpecs, RefusalNamesWhichSpecFailed) {
  std::string msg = Refusal("connect:ECONNREFUSED;read:EBOGUS:p=0.1");
  EXPECT_HAS(msg, "fault spec 2 \"read:EBOGUS:p=0.1\"");
  EXPECT_HAS(msg, "unknown errno \"EBOGUS\"");
}

TEST(ParseFaultSpecs, BadDelayNamesTheDurationProblem) {
  EXPECT_HAS(Refusal("write:delay=50"), "missing unit after \"50\"");
  EXPECT_HAS(Refusal("write:delay=-1s"), "negative");
  EXPECT_HAS(Refusal("write:delay="), "empty duration");
  EXPECT_HAS(Refusal("write:ECONNRESET:delay=1s"), "delay= must come right after the op");
}

TEST(ParseFaultSpecs, BadTriggerValuesAreNamed) {
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:p=1.5"), "bad probability \"1.5\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:p=-0.1"), "bad probability \"-0.1\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:p=abc"), "bad probability \"abc\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:p=1e-3"), "bad probability \"1e-3\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:p="), "bad probability \"\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:p"), "\"p\" needs a value");
  EXPECT_HAS(Refusal("accept:EMFILE:n=0"), "bad count \"0\" in \"n=0\"");
  EXPECT_HAS(Refusal("accept:EMFILE:n=x"), "bad count \"x\"");
  EXPECT_HAS(Refusal("accept:EMFILE:after=-1"), "bad count \"-1\"");
  EXPECT_HAS(Refusal("accept:EMFILE:n=99999999999999999999"), "bad count");
}

TEST(ParseFaultSpecs, TwoTriggersConflict) {
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:p=0.5:n=3"), "\"n=3\" conflicts with \"p=0.5\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:n=1:n=2"), "conflicts");
}

TEST(ParseFaultSpecs, BadPortIsNamed) {
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:port=0"), "bad port \"0\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:port=65536"), "bad port \"65536\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:port=http"), "bad port \"http\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:port=1:port=2"), "port= given twice");
  EXPECT_HAS(Refusal("socket:EMFILE:port=80"), "does not apply to socket");
}

TEST(ParseFaultSpecs, UnknownOrEmptyFieldIsNamed) {
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:prob=0.5"), "unknown field \"prob=0.5\"");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED::p=0.5"), "empty field after");
  EXPECT_HAS(Refusal("connect:ECONNREFUSED:"), "empty field after \"connect:ECONNREFUSED\"");
}

TEST(ParseFaultSpecs, TooManySpecsAreRefused) {
  std::string text;
  for (size_t i = 0; i <= kMaxFaultRules; ++i) text += "read:EIO;";
  EXPECT_HAS(Refusal(text), "more than");
}

TEST(ParseFaultSeed, AcceptsAnyUint64AndNamesGarbage) {
  uint64_t seed = 0;
  EXPECT_FALSE(ParseFaultSeed("18446744073709551615", &seed).failed());
  EXPECT_EQ(seed, UINT64_MAX);
  EXPECT_HAS(ParseFaultSeed("18446744073709551616", &seed).message(), "bad fault seed");
  EXPECT_HAS(ParseFaultSeed("-1", &seed).message(), "\"-1\"");
  EXPECT_TRUE(ParseFaultSeed("", &seed).failed());
}

}  // namespace
}  // namespace gonet::core
