// LatencyHistogram: constant-memory latency record with bounded relative error.
//
// A benchmark cell at 10,000 connections can complete millions of requests; keeping each sample
// would make the load generator's memory (and its cache misses, on the core it shares with
// nothing else) grow with the server's speed. Like HdrHistogram, values below 128 ns get a bucket
// each, and every power of two above that is split into 128 linear buckets, so a percentile is
// within 1/128 (< 0.8%) of the true sample whatever its magnitude.
#ifndef GONET_SCRIPTS_BENCH_LATENCY_HISTOGRAM_H_
#define GONET_SCRIPTS_BENCH_LATENCY_HISTOGRAM_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace bench {

class LatencyHistogram {
 public:
  void Record(std::uint64_t value_ns) {
    ++buckets_[Index(value_ns)];
    ++count_;
    max_ns_ = std::max(max_ns_, value_ns);
  }

  std::uint64_t count() const { return count_; }
  std::uint64_t max_ns() const { return max_ns_; }

  // The value at quantile q (0 < q <= 1): the middle of the bucket holding the
  // ceil(q * count)-th smallest sample, capped at the largest sample seen. 0 when empty.
  std::uint64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    std::uint64_t rank = static_cast<std::uint64_t>(q * static_cast<double>(count_) + 0.999999);
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < buckets_.size(); ++i) {
      seen += buckets_[i];
      if (seen >= rank) return std::min(Middle(i), max_ns_);
    }
    return max_ns_;
  }

 private:
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSub = 1u << kSubBits;  // linear buckets per power of two
  // Exact buckets for [0, kSub), then kSub buckets for each shift 0..(64 - kSubBits - 1).
  static constexpr std::size_t kBuckets = kSub * (64 - kSubBits + 1);

  static std::size_t Index(std::uint64_t v) {
    if (v < kSub) return static_cast<std::size_t>(v);
    // Keep the top kSubBits+1 bits: v >> shift lies in [kSub, 2*kSub).
    const int shift = std::bit_width(v) - (kSubBits + 1);
    return static_cast<std::size_t>((shift + 1) * kSub + ((v >> shift) - kSub));
  }

  static std::uint64_t Middle(std::size_t index) {
    if (index < kSub) return index;
    const int shift = static_cast<int>(index / kSub) - 1;
    const std::uint64_t low = (kSub + index % kSub) << shift;
    return low + ((std::uint64_t{1} << shift) >> 1);
  }

  std::array<std::uint64_t, kBuckets> buckets_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ns_ = 0;
};

}  // namespace bench

#endif  // GONET_SCRIPTS_BENCH_LATENCY_HISTOGRAM_H_
