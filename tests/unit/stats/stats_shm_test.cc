// The live-stats segment (core/stats/stats_shm.h): what `gonet stats` relies on, checked in-process.
// Issue 17: the segment is a memfd that disappears with the process, reached through /proc.
#include "core/stats/stats_shm.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <string>

#include "core/stats/stats.h"

namespace gonet::core {
namespace {

std::string FdPath(int pid, int fd) {
  return "/proc/" + std::to_string(pid) + "/fd/" + std::to_string(fd);
}

// pid's fd whose link is the segment's, as the CLI finds it, or -1.
int FindSegmentFd(int pid) {
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return -1;
  int found = -1;
  while (dirent* e = readdir(d)) {
    char link[256];
    ssize_t n = readlink((dir + "/" + e->d_name).c_str(), link, sizeof link - 1);
    if (n <= 0) continue;
    link[n] = '\0';
    if (strcmp(link, kSegmentLink) == 0) found = atoi(e->d_name);
  }
  closedir(d);
  return found;
}

// Maps pid's segment read-only, as the CLI does: through /proc/PID/fd/N.
class Reader {
 public:
  explicit Reader(int pid) {
    int n = FindSegmentFd(pid);
    if (n < 0) return;
    int fd = open(FdPath(pid, n).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    fstat(fd, &st);
    size_ = static_cast<size_t>(st.st_size);
    inode_ = st.st_ino;
    void* mem = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (mem != MAP_FAILED) mem_ = mem;
  }
  ~Reader() {
    if (mem_ != nullptr) munmap(mem_, size_);
  }
  bool ok() const { return mem_ != nullptr; }
  ino_t inode() const { return inode_; }
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
  ino_t inode_ = 0;
};

class StatsShm : public ::testing::Test {
 protected:
  void TearDown() override { DropStatsSegmentForTest(); }
};

// The number the program's next open would get.
int NextFreeFd() {
  int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  close(fd);
  return fd;
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

TEST_F(StatsShm, SegmentIsAnUnnamedMemfdTheProcessMaps) {
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  int fd = StatsSegmentFd();
  ASSERT_GE(fd, 0);
  EXPECT_EQ(FindSegmentFd(getpid()), fd) << "/proc/self/fd shows it as " << kSegmentLink;
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_EQ(st.st_nlink, 0u) << "no name in any file system: nothing can be left behind";
  // The mapping /proc/PID/maps shows names the same inode: what the CLI checks.
  FILE* f = fopen("/proc/self/maps", "r");
  ASSERT_NE(f, nullptr);
  char line[4096];
  bool mapped = false;
  while (fgets(line, sizeof line, f) != nullptr) {
    unsigned long long inode = 0;
    int at = 0;
    if (sscanf(line, "%*x-%*x %*s %*x %*s %llu %n", &inode, &at) >= 1 && at > 0 &&
        strncmp(line + at, kSegmentLink, strlen(kSegmentLink)) == 0) {
      mapped = mapped || inode == st.st_ino;
    }
  }
  fclose(f);
  EXPECT_TRUE(mapped);
}

TEST_F(StatsShm, SegmentFdIsOutOfTheProgramsWay) {
  int next = NextFreeFd();
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  int fd = StatsSegmentFd();
  EXPECT_EQ(NextFreeFd(), next) << "the program's next fd is the one it would get natively";
  rlimit lim;
  ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_cur > static_cast<rlim_t>(kSegmentFdCap)) {
    EXPECT_GE(fd, kSegmentFdCap);
  } else {
    EXPECT_GE(static_cast<rlim_t>(fd) + 64, lim.rlim_cur);
  }
  EXPECT_EQ(fcntl(fd, F_GETFD), FD_CLOEXEC) << "exec closes it: the new image makes its own";
}

TEST_F(StatsShm, SegmentFdSitsAtTheSoftLimitSoTheProgramKeepsEveryNumber) {
  // In a child: the limit is the child's to change.
  pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    rlimit lim{64, 128};
    if (setrlimit(RLIMIT_NOFILE, &lim) != 0) _exit(3);
    if (!CreateStatsSegment(1, 0)) _exit(4);
    if (StatsSegmentFd() != 64) _exit(5);
    rlimit after;
    if (getrlimit(RLIMIT_NOFILE, &after) != 0 || after.rlim_cur != 64) _exit(6);
    int last = -1;
    for (int fd; (fd = open("/dev/null", O_RDONLY)) >= 0;) last = fd;
    _exit(last == 63 && errno == EMFILE ? 0 : 7);  // every number below the limit, as natively
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "child status " << status;
}

TEST_F(StatsShm, SegmentCannotBeResizedByAReader) {
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  int fd = open(FdPath(getpid(), StatsSegmentFd()).c_str(), O_RDWR | O_CLOEXEC);
  ASSERT_GE(fd, 0);
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  EXPECT_NE(ftruncate(fd, 0), 0) << "a shrunk segment would SIGBUS the program's counters";
  EXPECT_EQ(errno, EPERM);
  EXPECT_NE(ftruncate(fd, st.st_size * 2), 0);
  close(fd);
}

TEST_F(StatsShm, MoveFreesTheNumberAndKeepsTheSegment) {
  ASSERT_TRUE(CreateStatsSegment(1, 0));
  int old_fd = StatsSegmentFd();
  ino_t before = Reader(getpid()).inode();
  MoveStatsSegmentFd(old_fd);
  int new_fd = StatsSegmentFd();
  EXPECT_NE(new_fd, old_fd);
  EXPECT_GE(new_fd, 0);
  EXPECT_EQ(fcntl(old_fd, F_GETFD), -1) << "the number is free for the program's dup2";
  EXPECT_FALSE(IsStatsSegmentFd(old_fd));
  Reader r(getpid());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r.inode(), before) << "the same segment, at its new number";
  int64_t was = r.counter(0);
  Count(Stats().parks);
  EXPECT_EQ(r.counter(0), was + 1);
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
    _exit(0);
  }
  char ready;
  ASSERT_EQ(read(to_parent[0], &ready, 1), 1);
  {
    Reader mine(getpid());
    Reader theirs(child);
    ASSERT_TRUE(mine.ok());
    ASSERT_TRUE(theirs.ok()) << "the child has its own " << kSegmentLink;
    EXPECT_NE(theirs.inode(), mine.inode());
    EXPECT_EQ(FindSegmentFd(child), StatsSegmentFd()) << "at the number the parent's had";
    EXPECT_EQ(theirs.header().pid, child);
    EXPECT_EQ(theirs.counter(1), 13) << "the child starts from a copy and counts on its own";
    EXPECT_EQ(mine.counter(1), 3) << "the child never counts into the parent's segment";
  }
  char go = 1;
  ASSERT_EQ(write(to_child[1], &go, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  for (int fd : {to_parent[0], to_parent[1], to_child[0], to_child[1]}) close(fd);
}

}  // namespace
}  // namespace gonet::core
