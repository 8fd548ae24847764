// `gonet check`'s pure parts (issue 15): reading an ELF file's imports and TLS from disk,
// finding libraries as the loader does, sorting imports into families, and judging a program.
#include "core/launch/program_check.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <string>

namespace gonet::core {
namespace {

bool Has(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

class ProgramCheckFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gonet-program-check-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }
  std::string Write(const std::string& name, const std::string& text, mode_t mode = 0644) {
    std::string path = dir_ + "/" + name;
    FILE* f = fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    fwrite(text.data(), 1, text.size(), f);
    fclose(f);
    chmod(path.c_str(), mode);
    return path;
  }
  std::string dir_;
};

TEST(ProgramCheck, FamilyOfSortsInterposedAndInvisibleCalls) {
  ImportFamily f;
  ASSERT_TRUE(FamilyOf("accept4", &f));
  EXPECT_EQ(f, ImportFamily::kSockets);
  ASSERT_TRUE(FamilyOf("__recv_chk", &f));
  EXPECT_EQ(f, ImportFamily::kSockets);
  ASSERT_TRUE(FamilyOf("epoll_pwait2", &f));
  EXPECT_EQ(f, ImportFamily::kPoll);
  ASSERT_TRUE(FamilyOf("pthread_create", &f));
  EXPECT_EQ(f, ImportFamily::kThreads);
  // std::thread's constructor calls this libstdc++ function, not pthread_create itself.
  ASSERT_TRUE(
      FamilyOf("_ZNSt6thread15_M_start_threadESt10unique_ptrINS_6_StateESt14default_deleteIS1_"
               "EEPFvvE",
               &f));
  EXPECT_EQ(f, ImportFamily::kThreads);
  ASSERT_TRUE(FamilyOf("io_uring_queue_init", &f));
  EXPECT_EQ(f, ImportFamily::kIoUring);
  ASSERT_TRUE(FamilyOf("signalfd", &f));
  EXPECT_EQ(f, ImportFamily::kSignalfd);
  // read and write are interposed, but every program imports them: they say nothing.
  EXPECT_FALSE(FamilyOf("read", &f));
  EXPECT_FALSE(FamilyOf("socketx", &f));
}

TEST(ProgramCheck, ExpandOriginUsesTheObjectsDirectory) {
  EXPECT_EQ(ExpandOrigin("$ORIGIN/../lib", "/opt/app/bin/app"), "/opt/app/bin/../lib");
  EXPECT_EQ(ExpandOrigin("${ORIGIN}/x:y", "/opt/app/bin/app"), "/opt/app/bin/x:y");
  EXPECT_EQ(ExpandOrigin("/usr/lib", "/opt/app/bin/app"), "/usr/lib");
}

TEST_F(ProgramCheckFiles, ReadLdSoConfFollowsIncludeGlobsAndSkipsComments) {
  Write("a.conf", "/opt/a/lib  # comment\n\n/opt/shared\n");
  Write("b.conf", "/opt/b/lib\n/opt/shared\n");
  std::string main = Write("ld.so.conf", "# top\n/opt/first\ninclude " + dir_ + "/*.conf\n");
  std::vector<std::string> dirs = ReadLdSoConf(main);
  std::vector<std::string> want = {"/opt/first", "/opt/a/lib", "/opt/shared", "/opt/b/lib"};
  EXPECT_EQ(dirs, want);
}

TEST_F(ProgramCheckFiles, ReadElfFileOfTextIsNotElfAndNoError) {
  ElfFile elf = ReadElfFile(Write("notes.txt", "hello\n"));
  EXPECT_FALSE(elf.is_elf);
  EXPECT_TRUE(elf.error.empty());
}

TEST(ProgramCheck, ReadElfFileReadsInterpreterNeededAndImportsOfThisTest) {
  ElfFile elf = ReadElfFile("/proc/self/exe");
  ASSERT_TRUE(elf.is_elf);
  ASSERT_TRUE(elf.error.empty()) << elf.error;
  EXPECT_TRUE(elf.native);
  EXPECT_FALSE(elf.interpreter.empty());
  EXPECT_TRUE(Has(elf.needed, "libc.so.6"));
  EXPECT_TRUE(Has(elf.imports, "fopen"));  // this file calls it
}

TEST(ProgramCheck, ScanProgramFindsLibrariesAsTheLoaderDoes) {
  ProgramScan scan =
      ScanProgram("/proc/self/exe", SystemLibrarySearch(nullptr, "/etc/ld.so.conf"), nullptr);
  EXPECT_TRUE(scan.missing.empty());
  bool libc = false;
  for (const LoadedObject& o : scan.objects) {
    if (o.name != "libc.so.6") continue;
    libc = true;
    EXPECT_TRUE(o.runtime);
    EXPECT_TRUE(o.elf.error.empty());
    EXPECT_NE(o.elf.path.find("libc.so.6"), std::string::npos);
  }
  EXPECT_TRUE(libc);
}

TEST_F(ProgramCheckFiles, ScanProgramFollowsScriptToItsInterpreter) {
  std::string script = Write("tool", "#!/bin/sh\necho hi\n", 0755);
  ProgramScan scan = ScanProgram(script, SystemLibrarySearch(nullptr, nullptr), nullptr);
  EXPECT_EQ(scan.image, "/bin/sh");
  EXPECT_NE(scan.via.find("#! interpreter"), std::string::npos);
  EXPECT_TRUE(scan.objects[0].elf.is_elf);
}

// A scan built by hand: the program imports `imports`, libstdc++ imports pthread_create.
ProgramScan FakeScan(std::vector<std::string> imports, uint64_t tls_bytes = 0) {
  ProgramScan scan;
  scan.program = scan.image = "/srv/daemon";
  LoadedObject main;
  main.name = main.elf.path = "/srv/daemon";
  main.elf.is_elf = main.elf.native = true;
  main.elf.interpreter = "/lib64/ld-linux-x86-64.so.2";
  main.elf.imports = std::move(imports);
  main.elf.tls_bytes = tls_bytes;
  scan.objects.push_back(main);
  LoadedObject cxx;
  cxx.name = "libstdc++.so.6";
  cxx.elf.path = "/usr/lib/x86_64-linux-gnu/libstdc++.so.6";
  cxx.elf.is_elf = cxx.elf.native = true;
  cxx.elf.imports = {"pthread_create", "epoll_wait"};
  cxx.elf.tls_bytes = 32;
  cxx.runtime = true;
  scan.objects.push_back(cxx);
  return scan;
}

TEST(ProgramCheck, ThreadPerConnectionServerGetsFibers) {
  Assessment a = Assess(FakeScan({"socket", "accept", "recv", "send", "pthread_create"}), "");
  EXPECT_EQ(a.verdict, Verdict::kFine);
  EXPECT_EQ(a.mode, "fibers");
  EXPECT_TRUE(a.families[static_cast<int>(ImportFamily::kThreads)].used());
  EXPECT_TRUE(a.caveats.empty());
  EXPECT_TRUE(a.tls.empty());  // libstdc++'s TLS is swapped per fiber (tls_scan.h)
}

TEST(ProgramCheck, RuntimeLibraryImportsDoNotMakeAProgramThreaded) {
  Assessment a = Assess(FakeScan({"socket", "accept", "recv"}), "");
  EXPECT_EQ(a.mode, "threads");
  EXPECT_FALSE(a.families[static_cast<int>(ImportFamily::kThreads)].used());
  EXPECT_FALSE(a.families[static_cast<int>(ImportFamily::kPoll)].used());
}

TEST(ProgramCheck, ThreadsStartedByALibraryDoNotMakeAThreadPerConnectionServer) {
  // ssh and socat accept, and libkrb5support imports pthread_create: neither is a
  // thread-per-connection server.
  ProgramScan scan = FakeScan({"socket", "accept", "recv", "fork"});
  LoadedObject krb;
  krb.name = "libkrb5support.so.0";
  krb.elf.path = "/usr/lib/x86_64-linux-gnu/libkrb5support.so.0";
  krb.elf.is_elf = krb.elf.native = true;
  krb.elf.imports = {"pthread_create"};
  scan.objects.push_back(krb);
  Assessment a = Assess(scan, "");
  EXPECT_EQ(a.mode, "threads");
  // Still reported, with the library that imports it.
  const FamilyUse& threads = a.families[static_cast<int>(ImportFamily::kThreads)];
  ASSERT_TRUE(threads.used());
  EXPECT_EQ(threads.objects, std::vector<std::string>{"libkrb5support.so.0"});
}

TEST(ProgramCheck, EpollServerAndClientGetThreads) {
  EXPECT_EQ(Assess(FakeScan({"accept4", "epoll_wait", "pthread_create"}), "").mode, "threads");
  Assessment client = Assess(FakeScan({"socket", "connect", "poll"}), "");
  EXPECT_EQ(client.mode, "threads");
  EXPECT_EQ(client.verdict, Verdict::kFine);
}

// Issue 14: fibers mode copies the program's TLS per fiber, so it is a note in every mode, never
// a caveat.
TEST(ProgramCheck, ApplicationTlsIsANoteSinceFibersCopyItPerFiber) {
  Assessment fibers = Assess(FakeScan({"accept", "recv", "pthread_create"}, 24), "");
  EXPECT_EQ(fibers.mode, "fibers");
  EXPECT_EQ(fibers.verdict, Verdict::kFine);
  ASSERT_EQ(fibers.tls.size(), 1u);
  EXPECT_EQ(fibers.tls[0].bytes, 24u);
  ASSERT_EQ(fibers.notes.size(), 1u);
  EXPECT_NE(fibers.notes[0].find("per fiber"), std::string::npos) << fibers.notes[0];
  Assessment threads = Assess(FakeScan({"connect", "recv"}, 24), "");
  EXPECT_EQ(threads.verdict, Verdict::kFine);
  EXPECT_EQ(threads.notes.size(), 1u);
}

TEST(ProgramCheck, IoUringAndNoSocketsAreCaveats) {
  Assessment uring = Assess(FakeScan({"accept", "io_uring_submit"}), "");
  EXPECT_EQ(uring.verdict, Verdict::kCaveats);
  Assessment none = Assess(FakeScan({"dlopen", "printf"}), "");
  EXPECT_EQ(none.verdict, Verdict::kCaveats);
  ASSERT_EQ(none.caveats.size(), 1u);
  EXPECT_NE(none.caveats[0].find("dlopen"), std::string::npos);
}

TEST(ProgramCheck, MissingLibraryIsACaveatAndRefusalCannotRun) {
  ProgramScan scan = FakeScan({"accept"});
  scan.missing.push_back("libgone.so.1");
  EXPECT_EQ(Assess(scan, "").verdict, Verdict::kCaveats);
  Assessment refused = Assess(scan, "it is setuid");
  EXPECT_EQ(refused.verdict, Verdict::kCannotRun);
  EXPECT_EQ(refused.refusal, "it is setuid");
  EXPECT_TRUE(refused.mode.empty());
}

}  // namespace
}  // namespace gonet::core
