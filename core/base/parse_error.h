// ParseError: why a piece of configuration text was refused.
//
// gonet parses its configuration (durations, fault specs) in two places: the `gonet` launcher,
// before it starts the program, and the preloaded library's constructor, which runs inside the
// dynamic loader's start-up of the host program. There, throwing is not allowed and allocating
// is unwelcome, so a parse failure is a fixed-size message in the result value, in the spirit of
// Abseil's status.h ("return the most specific error that applies"): it names the bad part of
// the input, e.g. `unknown unit "x" in duration "5x"`.
#pragma once

#include <cstddef>
#include <string_view>

namespace gonet::core {

class ParseError {
 public:
  // Room for a sentence of explanation around two quoted inputs or a long file path.
  static constexpr size_t kCapacity = 512;
  // Quoted inputs are cut to this many characters (then "...") so the message stays one line.
  static constexpr size_t kMaxQuoted = 64;

  bool failed() const noexcept { return message_[0] != '\0'; }
  // The message, without a trailing newline; "" when nothing failed.
  const char* message() const noexcept { return message_; }

  // Sets the message from a printf format. Truncates instead of overflowing.
  void Set(const char* format, ...) noexcept __attribute__((format(printf, 2, 3)));
  // Puts context in front of an existing message: "fault spec 2: " + message.
  void Prefix(const char* format, ...) noexcept __attribute__((format(printf, 2, 3)));

 private:
  char message_[kCapacity] = {};
};

// Quote writes `text` to `out` (of `size` bytes, NUL-terminated) as it should appear inside a
// message's double quotes: at most ParseError::kMaxQuoted characters, control and non-ASCII
// bytes as '?', so a message about garbage input is itself printable on one line.
// Returns `out`, so it can be passed straight to Set("... \"%s\"", Quote(...)).
const char* Quote(std::string_view text, char* out, size_t size) noexcept;

// A buffer for Quote, sized for the longest quoted text.
struct QuoteBuffer {
  char text[ParseError::kMaxQuoted + 4];
  const char* operator()(std::string_view s) noexcept { return Quote(s, text, sizeof text); }
};

}  // namespace gonet::core
