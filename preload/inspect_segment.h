// What `gonet stats` and `gonet dump` share: finding and mapping a running program's live-stats
// segment (core/stats/stats_shm.h; where it is and who may look: segment_lookup.h), and the
// small formatting helpers both print with.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <cxxopts.hpp>
#include <string>
#include <string_view>

#include "core/stats/dump_area.h"
#include "core/stats/stats_shm.h"

namespace gonet::cli {

inline constexpr int kExitUsage = 2;
inline constexpr int kExitFailed = 1;

// A positive decimal process id.
bool ParsePid(std::string_view s, long* pid);
int64_t MonoNs();
// The segment's mode field (core::RunMode as an int), by name.
const char* ModeName(int mode);
// Durations for people: 3 significant decimals are plenty for "how long has it waited".
std::string Seconds(int64_t ns);
std::string UserName(uid_t uid);

// Parses `gonet CMD PID [options]` with cxxopts: options (without help and the PID, which are
// added here), then exactly one PID. usage is the one-line form for error messages, help the
// --help text. Returns -1 with *pid and *parsed set to go on, or the exit status (0 after help).
int ParsePidCommand(const char* cmd, cxxopts::Options* options, int argc, char** argv,
                    const char* usage, const char* help, long* pid, cxxopts::ParseResult* parsed);

// A mapped, validated segment.
struct Segment {
  std::string path;  // the /proc path it was opened through
  uint64_t inode = 0;
  int fd = -1;
  void* mem = nullptr;
  size_t size = 0;
  const core::ShmHeader* header = nullptr;

  Segment() = default;
  Segment(const Segment&) = delete;
  Segment& operator=(const Segment&) = delete;
  ~Segment();
  const char* Name(uint32_t i) const;
  int64_t Counter(uint32_t i) const;
  core::DumpArea* Area() const;
};

// Opens pid's segment (segment_lookup.h), refusing another user's program with a message saying
// why. cmd names the subcommand in messages. Returns 0, or the exit status after printing why not.
int OpenSegment(const char* cmd, long pid, bool writable, Segment* seg);

}  // namespace gonet::cli
