#include "experiments/results/spread.h"

#include <gtest/gtest.h>

namespace trainlab::experiments {
namespace {

TEST(Spread, MedianOfOddAndEvenCounts) {
  EXPECT_DOUBLE_EQ(Spread::Of({3, 1, 2}).median, 2);
  EXPECT_DOUBLE_EQ(Spread::Of({4, 1, 2, 3}).median, 2.5);
  const Spread s = Spread::Of({12.9, 12.1, 12.4});
  EXPECT_DOUBLE_EQ(s.min, 12.1);
  EXPECT_DOUBLE_EQ(s.max, 12.9);
  EXPECT_EQ(s.n, 3);
}

TEST(Spread, SecondsShowTheRangeOnlyForSeveralRuns) {
  EXPECT_EQ(FormatSeconds(Spread::Of({1.5})), "1.5000s");
  EXPECT_EQ(FormatSeconds(Spread::Of({1.5, 1.0, 2.0})), "1.5000s (1.0000-2.0000)");
}

TEST(Spread, RatioDigitsFollowTheSpread) {
  const Spread one = Spread::Of({10});
  EXPECT_EQ(FormatRatio(one, Spread::Of({4})), "2.50x");             // single runs: two decimals
  EXPECT_EQ(FormatRatio(one, Spread::Of({3.6, 4.0, 4.4})), "2.5x");  // 20% spread: one decimal
  EXPECT_EQ(FormatRatio(one, Spread::Of({3.9, 4.001, 4.002})),
            "2.50x");                                        // 2.5% spread: two decimals
  EXPECT_EQ(FormatRatio(one, Spread::Of({2, 4, 8})), "2x");  // 150% spread: no decimal
  EXPECT_EQ(FormatRatio(one, Spread::Of({0})), "n/a");
}

}  // namespace
}  // namespace trainlab::experiments
