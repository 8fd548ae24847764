// Launch checks: `gonet run` refuses programs that LD_PRELOAD cannot reach, and finds programs
// the way execvp does.
#include "core/launch/launch_check.h"

#include <elf.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>

namespace gonet::core {
namespace {

class LaunchCheckTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gonet-launch-check-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::string cmd = "rm -rf '" + dir_ + "'";
    ASSERT_EQ(system(cmd.c_str()), 0);
  }

  std::string Write(const std::string& name, const void* data, size_t size, mode_t mode = 0755) {
    std::string path = dir_ + "/" + name;
    FILE* f = fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    fwrite(data, 1, size, f);
    fclose(f);
    chmod(path.c_str(), mode);
    return path;
  }
  std::string WriteText(const std::string& name, const std::string& text, mode_t mode = 0755) {
    return Write(name, text.data(), text.size(), mode);
  }

  // A native-class ELF executable whose program headers are a PT_LOAD and, optionally, a
  // PT_INTERP: all the check reads.
  std::string WriteElf(const std::string& name, bool with_interp, int machine = -1) {
    struct {
      Elf64_Ehdr eh;
      Elf64_Phdr ph[2];
    } image;
    memset(&image, 0, sizeof image);
    memcpy(image.eh.e_ident, ELFMAG, SELFMAG);
    image.eh.e_ident[EI_CLASS] = ELFCLASS64;
    image.eh.e_ident[EI_DATA] = ELFDATA2LSB;
    image.eh.e_ident[EI_VERSION] = EV_CURRENT;
    image.eh.e_type = ET_DYN;
    image.eh.e_machine = machine >= 0 ? machine : NativeMachine();
    image.eh.e_phoff = sizeof(Elf64_Ehdr);
    image.eh.e_phentsize = sizeof(Elf64_Phdr);
    image.eh.e_phnum = with_interp ? 2 : 1;
    image.ph[0].p_type = PT_LOAD;
    image.ph[1].p_type = PT_INTERP;
    return Write(name, &image, sizeof image);
  }

  // The machine of this test binary, which is what the launcher compares against.
  static int NativeMachine() {
    Elf64_Ehdr eh;
    FILE* f = fopen("/proc/self/exe", "rb");
    EXPECT_EQ(fread(&eh, sizeof eh, 1, f), 1u);
    fclose(f);
    return eh.e_machine;
  }

  std::string dir_;
};

#define EXPECT_REFUSED_WITH(path, needle)                                                 \
  do {                                                                                    \
    ParseError e_ = CheckPreloadable((path).c_str());                                     \
    EXPECT_TRUE(e_.failed()) << (path);                                                   \
    EXPECT_NE(std::string(e_.message()).find(needle), std::string::npos) << e_.message(); \
  } while (0)

TEST_F(LaunchCheckTest, DynamicExecutableIsAccepted) {
  EXPECT_FALSE(CheckPreloadable(WriteElf("dynamic", true).c_str()).failed());
  EXPECT_FALSE(CheckPreloadable("/proc/self/exe").failed());
}

TEST_F(LaunchCheckTest, ExecutableWithoutInterpreterIsRefusedAsStatic) {
  EXPECT_REFUSED_WITH(WriteElf("static", false), "statically linked");
}

TEST_F(LaunchCheckTest, ExecutableForAnotherMachineIsRefused) {
  EXPECT_REFUSED_WITH(WriteElf("foreign", true, NativeMachine() == EM_ARM ? EM_MIPS : EM_ARM),
                      "another machine");
}

TEST_F(LaunchCheckTest, ThirtyTwoBitExecutableIsRefused) {
  struct {
    Elf32_Ehdr eh;
    Elf32_Phdr ph;
  } image;
  memset(&image, 0, sizeof image);
  memcpy(image.eh.e_ident, ELFMAG, SELFMAG);
  image.eh.e_ident[EI_CLASS] = ELFCLASS32;
  image.eh.e_ident[EI_DATA] = ELFDATA2LSB;
  image.eh.e_machine = EM_386;
  image.eh.e_phoff = sizeof(Elf32_Ehdr);
  image.eh.e_phentsize = sizeof(Elf32_Phdr);
  image.eh.e_phnum = 1;
  image.ph.p_type = PT_INTERP;
  EXPECT_REFUSED_WITH(Write("i386", &image, sizeof image), "32-bit program");
}

TEST_F(LaunchCheckTest, TruncatedElfIsRefused) {
  std::string text = std::string(ELFMAG) + std::string(20, '\2');
  EXPECT_REFUSED_WITH(WriteText("truncated", text), "truncated");
}

TEST_F(LaunchCheckTest, SetuidAndSetgidProgramsAreRefused) {
  std::string path = WriteElf("suid", true);
  ASSERT_EQ(chmod(path.c_str(), 04755), 0);
  EXPECT_REFUSED_WITH(path, "setuid");
  ASSERT_EQ(chmod(path.c_str(), 02755), 0);
  EXPECT_REFUSED_WITH(path, "setgid");
}

TEST_F(LaunchCheckTest, SetgidWithoutGroupExecuteIsNotSecureExecution) {
  // S_ISGID without S_IXGRP marks mandatory locking, not a setgid program.
  std::string path = WriteElf("sgid-noexec", true);
  ASSERT_EQ(chmod(path.c_str(), 02745), 0);
  EXPECT_FALSE(CheckPreloadable(path.c_str()).failed());
}

TEST_F(LaunchCheckTest, ScriptIsJudgedByItsInterpreter) {
  std::string dynamic = WriteElf("dyn-interp", true);
  std::string stat = WriteElf("static-interp", false);
  EXPECT_FALSE(
      CheckPreloadable(WriteText("ok.sh", "#!" + dynamic + " -e\necho\n").c_str()).failed());
  EXPECT_FALSE(CheckPreloadable(WriteText("sh.sh", "#! /bin/sh\necho\n").c_str()).failed());
  std::string script = WriteText("bad.sh", "#!" + stat + "\n");
  EXPECT_REFUSED_WITH(script, "#! interpreter of " + script);
  EXPECT_REFUSED_WITH(script, "statically linked");
}

TEST_F(LaunchCheckTest, ScriptWithMissingInterpreterIsLeftToExecToReport) {
  EXPECT_FALSE(CheckPreloadable(WriteText("x.sh", "#!/nonexistent/sh\n").c_str()).failed());
}

TEST_F(LaunchCheckTest, FileWithoutMagicIsJudgedAsAShellScript) {
  EXPECT_FALSE(CheckPreloadable(WriteText("plain", "echo hi\n").c_str()).failed());
}

TEST_F(LaunchCheckTest, ResolveSearchesPathInOrderAndSkipsNonExecutables) {
  ASSERT_EQ(mkdir((dir_ + "/a").c_str(), 0755), 0);
  ASSERT_EQ(mkdir((dir_ + "/b").c_str(), 0755), 0);
  WriteText("a/tool", "#!/bin/sh\n", 0644);
  std::string b = WriteText("b/tool", "#!/bin/sh\n", 0755);
  std::string path = dir_ + "/missing:" + dir_ + "/a:" + dir_ + "/b";
  ResolvedProgram r = ResolveProgram("tool", path.c_str());
  ASSERT_TRUE(r.ok()) << r.error.message();
  EXPECT_EQ(std::string(r.path), b);
}

TEST_F(LaunchCheckTest, ResolveReportsNotFoundAs127AndNotExecutableAs126) {
  // Root may execute a file without x bits only if some x bit is set; 0644 is refused for all.
  WriteText("noexec", "#!/bin/sh\n", 0644);
  ResolvedProgram missing = ResolveProgram("gonet-no-such-program", dir_.c_str());
  EXPECT_EQ(missing.exit_code, kExitNotFound);
  EXPECT_NE(std::string(missing.error.message()).find("command not found"), std::string::npos);
  EXPECT_EQ(ResolveProgram("noexec", dir_.c_str()).exit_code, kExitNotExecutable);
  EXPECT_EQ(ResolveProgram(dir_ + "/noexec", nullptr).exit_code, kExitNotExecutable);
  EXPECT_EQ(ResolveProgram(dir_ + "/nothing", nullptr).exit_code, kExitNotFound);
  EXPECT_EQ(ResolveProgram(dir_, nullptr).exit_code, kExitNotExecutable) << "a directory";
}

TEST_F(LaunchCheckTest, ResolveUsesANameWithASlashAsGiven) {
  std::string b = WriteText("prog", "#!/bin/sh\n");
  ASSERT_EQ(chdir(dir_.c_str()), 0);
  ResolvedProgram r = ResolveProgram("./prog", "/nonexistent");
  ASSERT_TRUE(r.ok()) << r.error.message();
  EXPECT_STREQ(r.path, "./prog");
  ASSERT_EQ(chdir("/"), 0);
}

}  // namespace
}  // namespace gonet::core
