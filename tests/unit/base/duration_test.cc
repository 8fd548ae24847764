// ParseDuration / FormatDuration: the duration syntax of GONET_*_TIMEOUT and fault delays.
#include "core/base/duration.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace gonet::core {
namespace {

int64_t Ns(std::string_view text) {
  DurationResult r = ParseDuration(text);
  EXPECT_TRUE(r.ok()) << text << ": " << r.error.message();
  return r.ns;
}

std::string Refusal(std::string_view text) {
  DurationResult r = ParseDuration(text);
  EXPECT_FALSE(r.ok()) << text << " parsed as " << r.ns << "ns";
  return r.error.message();
}

TEST(ParseDuration, BareZeroNeedsNoUnit) { EXPECT_EQ(Ns("0"), 0); }

TEST(ParseDuration, EachUnitScalesToNanoseconds) {
  EXPECT_EQ(Ns("500ns"), 500);
  EXPECT_EQ(Ns("100us"), 100'000);
  EXPECT_EQ(Ns("100\xc2\xb5s"), 100'000);  // U+00B5 micro sign
  EXPECT_EQ(Ns("100\xce\xbcs"), 100'000);  // U+03BC Greek mu
  EXPECT_EQ(Ns("250ms"), 250'000'000);
  EXPECT_EQ(Ns("30s"), 30'000'000'000);
  EXPECT_EQ(Ns("2m"), 120'000'000'000);
  EXPECT_EQ(Ns("1h"), 3'600'000'000'000);
}

TEST(ParseDuration, FractionIsExactInNanoseconds) {
  EXPECT_EQ(Ns("1.5s"), 1'500'000'000);
  EXPECT_EQ(Ns(".5s"), 500'000'000);
  EXPECT_EQ(Ns("1.s"), 1'000'000'000);
  EXPECT_EQ(Ns("0.001ms"), 1'000);
  EXPECT_EQ(Ns("1.000000001s"), 1'000'000'001);
  // Below a nanosecond the fraction is truncated, as Go does.
  EXPECT_EQ(Ns("1.9ns"), 1);
}

TEST(ParseDuration, TermsAddUpLikeGo) {
  EXPECT_EQ(Ns("1h30m"), 5'400'000'000'000);
  EXPECT_EQ(Ns("1m30.5s"), 90'500'000'000);
  EXPECT_EQ(Ns("1s500ms"), 1'500'000'000);
}

TEST(ParseDuration, LeadingPlusIsAccepted) { EXPECT_EQ(Ns("+5s"), 5'000'000'000); }

TEST(ParseDuration, ZeroWithUnitIsZero) { EXPECT_EQ(Ns("0s"), 0); }

TEST(ParseDuration, EmptyIsRefused) {
  EXPECT_NE(Refusal("").find("empty duration"), std::string::npos);
}

TEST(ParseDuration, NegativeIsRefusedQuotingTheInput) {
  std::string msg = Refusal("-5s");
  EXPECT_NE(msg.find("negative"), std::string::npos) << msg;
  EXPECT_NE(msg.find("\"-5s\""), std::string::npos) << msg;
}

TEST(ParseDuration, MissingUnitNamesTheNumber) {
  std::string msg = Refusal("30");
  EXPECT_NE(msg.find("missing unit after \"30\""), std::string::npos) << msg;
  msg = Refusal("1h30");
  EXPECT_NE(msg.find("missing unit after \"30\""), std::string::npos) << msg;
}

TEST(ParseDuration, UnknownUnitNamesTheUnit) {
  std::string msg = Refusal("5x");
  EXPECT_NE(msg.find("unknown unit \"x\""), std::string::npos) << msg;
  msg = Refusal("3sec");
  EXPECT_NE(msg.find("unknown unit \"sec\""), std::string::npos) << msg;
  msg = Refusal("1d");
  EXPECT_NE(msg.find("unknown unit \"d\""), std::string::npos) << msg;
  // Units are case-sensitive, as in Go: "S" is not seconds and "MS" is not milliseconds.
  EXPECT_NE(Refusal("5S").find("unknown unit \"S\""), std::string::npos);
}

TEST(ParseDuration, GarbageNamesWhereANumberShouldStart) {
  std::string msg = Refusal("abc");
  EXPECT_NE(msg.find("unexpected \"a\""), std::string::npos) << msg;
  msg = Refusal(" 5s");
  EXPECT_NE(msg.find("unexpected \" \""), std::string::npos) << msg;
  EXPECT_NE(Refusal(".s").find("\".\" without digits"), std::string::npos);
  Refusal("+");
  Refusal("5s ");
}

TEST(ParseDuration, OverflowIsRefused) {
  // int64 nanoseconds hold 2562047h47m16.854775807s.
  EXPECT_EQ(Ns("2562047h47m16.854775807s"), std::numeric_limits<int64_t>::max());
  EXPECT_NE(Refusal("2562047h47m16.854775808s").find("too long"), std::string::npos);
  EXPECT_NE(Refusal("9223372036854775808ns").find("too long"), std::string::npos);
  EXPECT_NE(Refusal("99999999999999999999999999h").find("too long"), std::string::npos);
  EXPECT_NE(Refusal("2562048h").find("too long"), std::string::npos);
}

TEST(ParseDuration, LongGarbageIsQuotedOnOneLine) {
  std::string input(500, 'z');
  input[3] = '\n';
  std::string msg = Refusal("5" + input);
  EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  EXPECT_LT(msg.size(), ParseError::kCapacity);
  EXPECT_NE(msg.find("..."), std::string::npos) << msg;
}

std::string Format(int64_t ns) {
  char buf[kFormattedDurationSize];
  return FormatDuration(ns, buf, sizeof buf);
}

TEST(FormatDuration, WritesGoStyleText) {
  EXPECT_EQ(Format(0), "0s");
  EXPECT_EQ(Format(1), "1ns");
  EXPECT_EQ(Format(1'100), "1.1us");
  EXPECT_EQ(Format(2'200'000), "2.2ms");
  EXPECT_EQ(Format(1'500'000'000), "1.5s");
  EXPECT_EQ(Format(60'000'000'000), "1m0s");
  EXPECT_EQ(Format(5'400'000'000'000), "1h30m0s");
  EXPECT_EQ(Format(-1'500'000'000), "-1.5s");
  EXPECT_EQ(Format(std::numeric_limits<int64_t>::max()), "2562047h47m16.854775807s");
  EXPECT_EQ(Format(std::numeric_limits<int64_t>::min()), "-2562047h47m16.854775808s");
}

TEST(FormatDuration, OutputParsesBackToTheSameValue) {
  for (int64_t ns : {int64_t{1}, int64_t{999}, int64_t{1'234'567}, int64_t{90'500'000'000},
                     int64_t{7'384'000'000'001}}) {
    EXPECT_EQ(Ns(Format(ns)), ns) << Format(ns);
  }
}

}  // namespace
}  // namespace gonet::core
