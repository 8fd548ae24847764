// fiber_tls: which static TLS blocks become one copy per switch (issue 14).
#include "core/fibers/fiber_tls.h"

#include <gtest/gtest.h>

namespace gonet::core::fiber_tls {
namespace {

TEST(FiberTls, NeighboursSeparatedOnlyByPaddingMergeIntoOneSpan) {
  // Offsets from the thread pointer, sorted: the program's block nearest the TCB (-64..-40),
  // a library's 8 bytes of padding below it (align 16).
  Range blocks[] = {{-96, 20, 16, true}, {-64, 24, 8, true}};
  Range spans[2];
  ASSERT_EQ(MergeSpans(blocks, 2, spans), 1u);
  EXPECT_EQ(spans[0].offset, -96);
  EXPECT_EQ(spans[0].bytes, 56u);
}

TEST(FiberTls, BlockThatStaysPerThreadSplitsTheSpan) {
  Range blocks[] = {{-200, 16, 8, true}, {-184, 144, 16, false}, {-40, 40, 8, true}};
  Range spans[3];
  ASSERT_EQ(MergeSpans(blocks, 3, spans), 2u);
  EXPECT_EQ(spans[0].offset, -200);
  EXPECT_EQ(spans[0].bytes, 16u);
  EXPECT_EQ(spans[1].offset, -40);
  EXPECT_EQ(spans[1].bytes, 40u);
}

TEST(FiberTls, GapWiderThanAlignmentIsNotCopied) {
  Range blocks[] = {{-512, 8, 8, true}, {-64, 8, 8, true}};
  Range spans[2];
  EXPECT_EQ(MergeSpans(blocks, 2, spans), 2u);
}

TEST(FiberTls, NothingToCopyWithoutApplicationBlocks) {
  Range blocks[] = {{-64, 64, 64, false}};
  Range spans[1];
  EXPECT_EQ(MergeSpans(blocks, 1, spans), 0u);
  EXPECT_FALSE(Active());  // the unit test binary never called Init
}

}  // namespace
}  // namespace gonet::core::fiber_tls
