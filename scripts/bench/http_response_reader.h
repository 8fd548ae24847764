// HttpResponseReader: finds where one HTTP/1.1 response ends in a byte stream.
//
// The load generator keeps every connection in ping-pong, so it only needs framing, not a full
// parser: a status line, headers up to the blank line, then exactly Content-Length body bytes.
// Anything it cannot frame that way (no Content-Length, chunked encoding, a non-200 status, a
// head larger than kMaxHeadBytes) is a verification error, because the benchmark asked for a
// fixed keep-alive resource and anything else means the server misbehaved. A server that ends
// keep-alive (Connection: close) needs no parsing here: its EOF shows up as a dropped connection.
#ifndef GONET_SCRIPTS_BENCH_HTTP_RESPONSE_READER_H_
#define GONET_SCRIPTS_BENCH_HTTP_RESPONSE_READER_H_

#include <strings.h>

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

namespace bench {

class HttpResponseReader {
 public:
  enum class Status { kNeedMore, kComplete, kError };

  // Consumes up to len bytes of the current response and says how far it got. *used is the
  // number of bytes that belong to this response; bytes after a complete response are the
  // caller's (in ping-pong they are unsolicited). On kError, error() says why.
  Status Feed(const char* data, std::size_t len, std::size_t* used) {
    *used = 0;
    if (in_head_) {
      const std::size_t scan_from = head_.size() >= 3 ? head_.size() - 3 : 0;
      const std::size_t room = kMaxHeadBytes - head_.size();
      const std::size_t take = len < room ? len : room;
      head_.append(data, take);
      const std::size_t end = head_.find("\r\n\r\n", scan_from);
      if (end == std::string::npos) {
        *used = take;
        if (head_.size() >= kMaxHeadBytes) return Fail("response head too large");
        return Status::kNeedMore;
      }
      // Only the bytes up to the blank line belong to the head; the rest start the body.
      *used = take - (head_.size() - (end + 4));
      head_.resize(end + 4);
      if (!ParseHead()) return Status::kError;
      in_head_ = false;
      data += *used;
      len -= *used;
    }
    const std::uint64_t take = len < body_left_ ? len : body_left_;
    body_left_ -= take;
    *used += static_cast<std::size_t>(take);
    return body_left_ == 0 ? Status::kComplete : Status::kNeedMore;
  }

  // Prepares for the next response on the same connection.
  void Reset() {
    head_.clear();
    in_head_ = true;
    body_left_ = 0;
  }

  const std::string& error() const { return error_; }

 private:
  static constexpr std::size_t kMaxHeadBytes = 16384;

  Status Fail(std::string why) {
    error_ = std::move(why);
    return Status::kError;
  }

  bool ParseHead() {
    std::string_view head(head_);
    const std::size_t line_end = head.find("\r\n");
    const std::string_view status_line = head.substr(0, line_end);
    if (!(status_line.starts_with("HTTP/1.1 ") || status_line.starts_with("HTTP/1.0 ")) ||
        status_line.substr(9, 3) != "200") {
      Fail("unexpected status line: " + std::string(status_line));
      return false;
    }
    bool have_length = false;
    for (std::size_t pos = line_end + 2; pos < head.size();) {
      const std::size_t end = head.find("\r\n", pos);
      const std::string_view line = head.substr(pos, end - pos);
      pos = end + 2;
      const std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) continue;
      const std::string_view name = line.substr(0, colon);
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      if (NameIs(name, "Content-Length")) {
        const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), body_left_);
        if (ec != std::errc() || p != value.data() + value.size()) {
          Fail("bad Content-Length: " + std::string(value));
          return false;
        }
        have_length = true;
      } else if (NameIs(name, "Transfer-Encoding")) {
        Fail("Transfer-Encoding is not supported: " + std::string(value));
        return false;
      }
    }
    if (!have_length) {
      Fail("response without Content-Length");
      return false;
    }
    return true;
  }

  static bool NameIs(std::string_view s, std::string_view want) {
    return s.size() == want.size() && strncasecmp(s.data(), want.data(), s.size()) == 0;
  }

  std::string head_;     // response head so far, at most kMaxHeadBytes
  bool in_head_ = true;  // still looking for the blank line
  std::uint64_t body_left_ = 0;
  std::string error_;
};

}  // namespace bench

#endif  // GONET_SCRIPTS_BENCH_HTTP_RESPONSE_READER_H_
