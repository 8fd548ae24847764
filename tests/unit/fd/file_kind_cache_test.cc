// The file kind cache (core/fd/file_kind_cache.h): which passed-through reads and writes a fiber must
// offload because they could wait for another party, and which it can make inline.
#include "core/fd/file_kind_cache.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <vector>

namespace gonet::core {
namespace {

struct Pipe {
  int r = -1;
  int w = -1;
  explicit Pipe(int flags = 0) {
    int fds[2];
    EXPECT_EQ(pipe2(fds, O_CLOEXEC | flags), 0);
    r = fds[0];
    w = fds[1];
  }
  ~Pipe() {
    Close(r);
    Close(w);
  }
  // gonet's close hook forgets the number; these tests call core directly, so they do it too.
  static void Close(int fd) {
    ForgetFileKind(fd);
    close(fd);
  }
};

int TempFile() {
  char path[] = "/tmp/gonet_file_kind_XXXXXX";
  int fd = mkstemp(path);
  EXPECT_GE(fd, 0);
  unlink(path);
  return fd;
}

TEST(FileKindCache, ReadOfAnEmptyPipeMayWaitAndOfAFilledOneDoesNot) {
  Pipe p;
  EXPECT_TRUE(FileCallMayWait(p.r, POLLIN, 1));
  ASSERT_EQ(write(p.w, "x", 1), 1);
  EXPECT_FALSE(FileCallMayWait(p.r, POLLIN, 1));
}

TEST(FileKindCache, ZeroByteCallsNeverWait) {
  Pipe p;
  EXPECT_FALSE(FileCallMayWait(p.r, POLLIN, 0));
  EXPECT_FALSE(FileCallMayWait(p.r, POLLIN, nullptr, 0));
}

TEST(FileKindCache, SmallWriteToAPipeWithRoomDoesNotWaitButALongOneMay) {
  Pipe p;
  EXPECT_FALSE(FileCallMayWait(p.w, POLLOUT, PIPE_BUF));
  EXPECT_TRUE(FileCallMayWait(p.w, POLLOUT, PIPE_BUF + 1));
  std::vector<iovec> iov(2, iovec{nullptr, PIPE_BUF});
  EXPECT_TRUE(FileCallMayWait(p.w, POLLOUT, iov.data(), 2));
  EXPECT_FALSE(FileCallMayWait(p.w, POLLOUT, iov.data(), 1));
}

TEST(FileKindCache, NonBlockingPipeNeverWaits) {
  Pipe p(O_NONBLOCK);
  EXPECT_FALSE(FileCallMayWait(p.r, POLLIN, 1));
  EXPECT_FALSE(FileCallMayWait(p.w, POLLOUT, 1 << 20));
}

TEST(FileKindCache, RegularFileNeverWaits) {
  int fd = TempFile();
  EXPECT_FALSE(FileCallMayWait(fd, POLLIN, 1));
  EXPECT_FALSE(FileCallMayWait(fd, POLLOUT, 1 << 20));
  Pipe::Close(fd);
}

TEST(FileKindCache, BadFdDoesNotWaitSoTheKernelReportsIt) {
  EXPECT_FALSE(FileCallMayWait(-1, POLLIN, 1));
  Pipe p;
  int fd = dup(p.r);
  ASSERT_GE(fd, 0);
  Pipe::Close(fd);
  EXPECT_FALSE(FileCallMayWait(fd, POLLIN, 1));
}

// A number gonet saw closed and reused for another kind of file is looked up afresh.
TEST(FileKindCache, ForgottenNumberReusedByAPipeMayWaitAgain) {
  int fd = TempFile();
  EXPECT_FALSE(FileCallMayWait(fd, POLLIN, 1));  // cached: a regular file
  Pipe p;
  ASSERT_EQ(dup2(p.r, fd), fd);
  ForgetFileKind(fd);  // what core's dup2 path does
  EXPECT_TRUE(FileCallMayWait(fd, POLLIN, 1));
  Pipe::Close(fd);
}

}  // namespace
}  // namespace gonet::core
