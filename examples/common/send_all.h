// The loop every blocking-socket program writes around send(): a blocking send may still
// return a short count (a signal, SO_SNDTIMEO), and the rest must follow.
#pragma once

#include <cstddef>

namespace examples {

// Sends all `len` bytes. Returns true, or false with errno set by the send that failed.
// EINTR is retried, as legacy code does.
bool SendAll(int fd, const void* buf, std::size_t len);

}  // namespace examples
