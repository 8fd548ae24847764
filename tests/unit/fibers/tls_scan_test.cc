// TLS scan (issue 5): in fibers mode gonet names, at start-up, the objects whose __thread /
// thread_local variables the fibers of one worker share, and stays silent about itself and the
// runtimes whose TLS is swapped or harmless per worker.
#include "core/fibers/tls_scan.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace gonet::core {
namespace {

TlsOwner OwnerOf(const char* path, bool contains_gonet = false) {
  TlsObject object;
  object.path = path;
  object.tls_bytes = 24;
  object.contains_gonet = contains_gonet;
  return ClassifyTlsObject(object);
}

TEST(TlsScan, MainProgramAndApplicationLibrariesWarn) {
  EXPECT_EQ(OwnerOf("./server"), TlsOwner::kApplication);
  EXPECT_EQ(OwnerOf("/opt/app/lib/libsession.so.1"), TlsOwner::kApplication);
  // A library from the distribution is still an application library: gonet cannot know whether
  // it keeps per-thread state across a socket call.
  EXPECT_EQ(OwnerOf("/lib/x86_64-linux-gnu/libgnutls.so.30"), TlsOwner::kApplication);
}

TEST(TlsScan, SystemRuntimesAreSilent) {
  for (const char* path : {
           "/lib/x86_64-linux-gnu/libc.so.6", "/lib64/ld-linux-x86-64.so.2",
           "/lib/x86_64-linux-gnu/libm.so.6", "/lib/x86_64-linux-gnu/libpthread.so.0",
           "/lib/x86_64-linux-gnu/libdl.so.2", "/lib/x86_64-linux-gnu/librt.so.1",
           "/lib/x86_64-linux-gnu/libstdc++.so.6", "/lib/x86_64-linux-gnu/libgcc_s.so.1",
           "/lib/x86_64-linux-gnu/libunwind.so.8", "/lib/x86_64-linux-gnu/libunwind-x86_64.so.8",
           "/lib/x86_64-linux-gnu/libjemalloc.so.2",
           "/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4",
           "/usr/lib/gcc/x86_64-linux-gnu/12/libasan.so", "/lib/x86_64-linux-gnu/libtsan.so.2",
           "/lib/x86_64-linux-gnu/libubsan.so.1",
           "libc-2.31.so",  // older glibc file names
       }) {
    EXPECT_EQ(OwnerOf(path), TlsOwner::kRuntime) << path;
  }
}

TEST(TlsScan, LookalikesOfRuntimeNamesWarn) {
  // Only the whole stem counts: these are not libc, libm or libdl.
  EXPECT_EQ(OwnerOf("/lib/x86_64-linux-gnu/libcom_err.so.2"), TlsOwner::kApplication);
  EXPECT_EQ(OwnerOf("/lib/x86_64-linux-gnu/libcrypto.so.3"), TlsOwner::kApplication);
  EXPECT_EQ(OwnerOf("/lib/x86_64-linux-gnu/libmagic.so.1"), TlsOwner::kApplication);
  EXPECT_EQ(OwnerOf("/lib/x86_64-linux-gnu/libdlt.so.2"), TlsOwner::kApplication);
  EXPECT_EQ(OwnerOf("/srv/libc/server"), TlsOwner::kApplication);  // a directory is not a file
}

TEST(TlsScan, GonetItselfIsSilentWhateverItsFileIsCalled) {
  EXPECT_EQ(OwnerOf("/work/build-asan/shim.so", /*contains_gonet=*/true), TlsOwner::kGonet);
  EXPECT_EQ(OwnerOf("./server", /*contains_gonet=*/true), TlsOwner::kGonet);
  EXPECT_EQ(OwnerOf("/usr/local/lib/libgonet.so"), TlsOwner::kGonet);
}

struct Seen {
  std::string path;
  uint64_t tls_bytes;
  bool contains_gonet;
  TlsOwner owner;
};

std::vector<Seen> ScanThisProcess() {
  std::vector<Seen> seen;
  int visited = ForEachTlsObject(
      [](const TlsObject& object, void* context) {
        static_cast<std::vector<Seen>*>(context)->push_back(
            {object.path, object.tls_bytes, object.contains_gonet, ClassifyTlsObject(object)});
      },
      &seen);
  EXPECT_EQ(static_cast<size_t>(visited), seen.size());
  return seen;
}

TEST(TlsScan, FindsLibcTlsAndClassifiesItAsRuntime) {
  // glibc always has TLS (errno, at least), so the walk must find it.
  bool found = false;
  for (const Seen& s : ScanThisProcess()) {
    if (strstr(s.path.c_str(), "/libc.so") == nullptr) continue;
    found = true;
    EXPECT_GT(s.tls_bytes, 0u);
    EXPECT_FALSE(s.contains_gonet);
    EXPECT_EQ(s.owner, TlsOwner::kRuntime);
  }
  EXPECT_TRUE(found);
}

TEST(TlsScan, RecognisesTheObjectHoldingGonetByAddressAndNamesTheMainProgramByArgv0) {
  // This test binary links core, whose TLS (the re-entry depth) makes it a PT_TLS object, and is
  // the main program, which the loader leaves unnamed.
  std::vector<Seen> seen = ScanThisProcess();
  ASSERT_FALSE(seen.empty());
  EXPECT_EQ(seen.front().path, program_invocation_name);  // the main program comes first
  EXPECT_TRUE(seen.front().contains_gonet);
  EXPECT_EQ(seen.front().owner, TlsOwner::kGonet);
  int holding_gonet = 0;
  for (const Seen& s : seen) holding_gonet += s.contains_gonet;
  EXPECT_EQ(holding_gonet, 1);
}

constexpr const char* kWhy = "fibers share one copy per worker thread";

TEST(TlsScan, WarningIsOneLineNamingObjectSizeReadmeAndHowToSilence) {
  TlsObject object;
  object.path = "./server";
  object.tls_bytes = 24;
  char buf[1024];
  size_t len = FormatTlsWarning(object, kWhy, buf, sizeof buf);
  std::string line(buf, len);
  EXPECT_EQ(line.rfind("gonet: fibers mode: ./server declares 24 bytes of thread-local storage", 0),
            0u)
      << line;
  EXPECT_NE(line.find("share one copy per worker thread"), std::string::npos) << line;
  EXPECT_NE(line.find("\"Thread-local storage in fibers mode\""), std::string::npos) << line;
  EXPECT_NE(line.find("GONET_QUIET_TLS=1"), std::string::npos) << line;
  EXPECT_EQ(line.find('\n'), len - 1) << line;
  EXPECT_EQ(strlen(buf), len);

  object.tls_bytes = 1;
  line.assign(buf, FormatTlsWarning(object, kWhy, buf, sizeof buf));
  EXPECT_NE(line.find("declares 1 byte of"), std::string::npos) << line;
}

TEST(TlsScan, TruncatedWarningIsStillOneWholeLine) {
  std::string long_path(5000, 'x');
  TlsObject object;
  object.path = long_path.c_str();
  object.tls_bytes = 8;
  char buf[64];
  size_t len = FormatTlsWarning(object, kWhy, buf, sizeof buf);
  EXPECT_EQ(len, sizeof buf - 1);
  EXPECT_EQ(buf[len - 1], '\n');
  EXPECT_EQ(buf[len], '\0');
  EXPECT_EQ(FormatTlsWarning(object, kWhy, buf, 0), 0u);
}

TEST(TlsScan, QuietVariableSilencesUnlessEmptyOrZero) {
  const char* saved = getenv("GONET_QUIET_TLS");
  std::string keep = saved != nullptr ? saved : "";
  unsetenv("GONET_QUIET_TLS");
  EXPECT_FALSE(TlsWarningSilenced());
  setenv("GONET_QUIET_TLS", "", 1);
  EXPECT_FALSE(TlsWarningSilenced());
  setenv("GONET_QUIET_TLS", "0", 1);
  EXPECT_FALSE(TlsWarningSilenced());
  setenv("GONET_QUIET_TLS", "1", 1);
  EXPECT_TRUE(TlsWarningSilenced());
  if (saved != nullptr) {
    setenv("GONET_QUIET_TLS", keep.c_str(), 1);
  } else {
    unsetenv("GONET_QUIET_TLS");
  }
}

}  // namespace
}  // namespace gonet::core
