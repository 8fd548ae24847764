// Opening the one socket a sample daemon serves on, and telling the test harness where it is.
#pragma once

#include <string>

namespace examples {

// Returns a socket of `type` (SOCK_STREAM or SOCK_DGRAM) bound to host:port, already listening
// with `backlog` when it is a stream socket. Port 0 lets the kernel pick a free port. The socket
// is blocking, as a legacy daemon's is. Exits the process with a message on failure: a daemon
// that cannot bind has nothing to do.
int OpenBoundSocket(const std::string& host, int port, int type, int backlog);

// Prints exactly one line, "listening on PORT", to stdout and flushes it: the harness waits for
// this line to learn the port picked for --port 0, and knows the socket is ready once it appears.
void AnnounceListening(int fd);

}  // namespace examples
