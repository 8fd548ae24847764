// inetd_echo_child: the service program inetd_child execs per connection.
//
// It knows nothing of sockets: it echoes stdin to stdout with blocking read/write until EOF,
// like any filter. Under gonet the socket it inherited on fds 0 and 1 is one the runtime has
// never seen, so this is the test of adopting inherited sockets after exec.
#include <errno.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <cxxopts.hpp>

#include "common/errno_name.h"

int main(int argc, char** argv) {
  cxxopts::Options options("inetd_echo_child",
                           "Echo stdin to stdout until EOF (run by inetd_child per connection)");
  options.add_options()("h,help", "print usage");
  try {
    if (options.parse(argc, argv).count("help")) {
      std::printf("%s", options.help().c_str());
      return 0;
    }
  } catch (const cxxopts::exceptions::exception& e) {
    std::fprintf(stderr, "%s\n", e.what());
    return 2;
  }
  char buf[16384];
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
    if (n == 0) return 0;
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == ECONNRESET) return 0;
      std::fprintf(stderr, "inetd_echo_child read: %s\n", examples::ErrnoName(errno).c_str());
      return 1;
    }
    for (ssize_t done = 0; done < n;) {
      const ssize_t w = write(STDOUT_FILENO, buf + done, static_cast<std::size_t>(n - done));
      if (w < 0) {
        if (errno == EINTR) continue;
        std::fprintf(stderr, "inetd_echo_child write: %s\n", examples::ErrnoName(errno).c_str());
        return 1;
      }
      done += w;
    }
  }
}
