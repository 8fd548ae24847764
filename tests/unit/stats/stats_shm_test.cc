// The live-stats segment (core/stats/stats_shm.h): what `gonet stats` relies on, checked in-process.
#include "core/stats/stats_shm.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/stats/stats.h"

namespace gonet::core {
namespace {

std::string PathOf(int pid) {
  char path[64];
  FormatShmPath(pid, path, sizeof path);
  return path;
}

// Maps pid's segment read-only, as the CLI does.
class Reader {
 public:
  explicit Reader(int pid) {
    int fd = open(PathOf(pid).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    fstat(fd, &st);
    size_ = static_cast<size_t>(st.st_size);
    void* mem = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (mem != MAP_FAILED) mem_ = mem;
  }
  ~Reader() {
    if (mem_ != nullptr) munmap(mem_, size_);
  }
  bool ok() const { return mem_ != nullptr; }
  const ShmHeader& header() const { return *static_cast<const ShmHeader*>(mem_); }
  const char* name(uint32_t i) const {
    return static_cast<const char*>(mem_) + header().names_offset + i * kShmCounterNameSize;
  }
  int64_t counter(uint32_t i) const {
    auto* c = reinterpret_cast<const std::atomic<int64_t>*>(static_cast<const char*>(mem_) +
                                                            header().counters_offset);
    return c[i].load();
  }

 private:
  void* mem_ = nullptr;
  size_t size_ = 0;
};

class StatsShm : public ::testing::Test {
 protected:
  void TearDown() override {
    RemoveStatsSegment();
    SetStatsBlock(nullptr);
  }
};

TEST(StatsShmPath, IsPerPidUnderDevShm) {
  EXPECT_EQ(PathOf(4242), "/dev/shm/gonet.4242");
  EXPECT_EQ(PathOf(1), "/dev/shm/gonet.1");
}

TEST_F(StatsShm, SegmentPublishesHeaderNamesAndLiveCounters) {
  int64_t base = Stats().parks.load();
  Count(Stats().parks, 5);  // counted before the segment existed: carried over
  ASSERT_TRUE(CreateStatsSegment(1, kShmFlagKernelWait));
  Reader r(getpid());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.header().magic.load(), kShmMagic);
  EXPECT_EQ(r.header().version, kShmVersion);
  EXPECT_EQ(r.header().pid, getpid());
  EXPECT_EQ(r.header().mode, 1);
  EXPECT_EQ(r.header().flags, uint32_t{kShmFlagKernelWait});
  ASSERT_EQ(r.header().counter_count, sizeof(Counters) / sizeof(int64_t));
  // The names, in the layout's order: what lets an older `gonet` read a newer runtime.
  const char* const expected[] = {
#define GONET_NAME(name, help) #name,
      GONET_STATS_COUNTERS(GONET_NAME)
#undef GONET_NAME
  };
  for (uint32_t i = 0; i < r.header().counter_count; ++i) EXPECT_STREQ(r.name(i), expected[i]);
  EXPECT_STREQ(r.name(0), "parks");
  EXPECT_EQ(r.counter(0), base + 5);
  Count(Stats().parks);
  EXPECT_EQ(r.counter(0), base + 6) << "the segment is the live block";
}

TEST_F(StatsShm, SegmentIsReadableByItsOwnerOnly) {
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  struct stat st;
  ASSERT_EQ(stat(PathOf(getpid()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_uid, geteuid());
}

TEST_F(StatsShm, LeftoverOfSamePidIsReplaced) {
  // A file under our pid can only be a dead process's: creation must not fail on it.
  std::string path = PathOf(getpid());
  int fd = open(path.c_str(), O_CREAT | O_WRONLY | O_TRUNC, 0600);
  ASSERT_GE(fd, 0);
  close(fd);
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  Reader r(getpid());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.header().magic.load(), kShmMagic);
}

TEST_F(StatsShm, RemoveUnlinksButCountingGoesOn) {
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  RemoveStatsSegment();
  EXPECT_NE(access(PathOf(getpid()).c_str(), F_OK), 0);
  int64_t before = Stats().parks.load();
  Count(Stats().parks);  // the mapping stays: threads still counting at exit must not crash
  EXPECT_EQ(Stats().parks.load(), before + 1);
}

TEST_F(StatsShm, ForkChildGetsItsOwnSegmentStartingFromParentsCounts) {
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  Stats().wakes_io.store(3);
  int to_parent[2], to_child[2];
  ASSERT_EQ(pipe(to_parent), 0);
  ASSERT_EQ(pipe(to_child), 0);
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // What runtime.cc's AtForkChild does.
    StatsSegmentAfterForkChild();
    Count(Stats().wakes_io, 10);
    char ok = 1;
    if (write(to_parent[1], &ok, 1) != 1) _exit(2);
    char go;
    if (read(to_child[0], &go, 1) != 1) _exit(2);  // wait until the parent has looked
    RemoveStatsSegment();
    _exit(0);
  }
  char ready;
  ASSERT_EQ(read(to_parent[0], &ready, 1), 1);
  {
    Reader mine(getpid());
    Reader theirs(child);
    ASSERT_TRUE(mine.ok());
    ASSERT_TRUE(theirs.ok()) << "the child has " << PathOf(child);
    EXPECT_EQ(theirs.header().pid, child);
    EXPECT_EQ(theirs.counter(1), 13) << "the child starts from a copy and counts on its own";
    EXPECT_EQ(mine.counter(1), 3) << "the child never counts into the parent's segment";
  }
  char go = 1;
  ASSERT_EQ(write(to_child[1], &go, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_NE(access(PathOf(child).c_str(), F_OK), 0) << "the child removed its own";
  EXPECT_EQ(access(PathOf(getpid()).c_str(), F_OK), 0) << "and not the parent's";
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) close(fd);
}

}  // namespace
}  // namespace gonet::core
