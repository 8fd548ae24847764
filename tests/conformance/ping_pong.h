// ping_pong.h: proof that other threads run while one waits. Two pthreads (fibers in fibers mode;
// never the main thread, an OS thread there) bounce a byte through two pipes, each read blocking
// until the other pthread runs; returns a checksum of what came back.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <thread>

#include "transcript.h"

namespace conf {

inline uint32_t PingPong(int rounds) {
  int there[2], back[2];
  Must(pipe(there), "pipe");
  Must(pipe(back), "pipe");
  std::thread echo([&] {
    for (int i = 0; i < rounds; ++i) {
      char c = 0;
      if (read(there[0], &c, 1) != 1) Fail("read");
      ++c;
      if (write(back[1], &c, 1) != 1) Fail("write");
    }
  });
  uint32_t sum = 2166136261u;
  for (int i = 0; i < rounds; ++i) {
    char c = static_cast<char>(i);
    if (write(there[1], &c, 1) != 1) Fail("write");
    if (read(back[0], &c, 1) != 1) Fail("read");
    sum = Checksum(&c, 1, sum);
  }
  echo.join();
  for (int fd : {there[0], there[1], back[0], back[1]}) close(fd);
  return sum;
}

}  // namespace conf
