#include "worker/child_io.h"

#include <gtest/gtest.h>

namespace resonance::worker {
namespace {

using Lines = std::vector<std::pair<std::string, bool>>;

Lines Split(LineSplitter& s, std::initializer_list<std::string_view> chunks, bool flush = false) {
  Lines out;
  auto fn = [&](std::string_view line, bool cut) { out.emplace_back(std::string(line), cut); };
  for (auto c : chunks) s.Feed(c, fn);
  if (flush) s.Flush(fn);
  return out;
}

TEST(LineSplitterTest, JoinsLinesAcrossChunks) {
  LineSplitter s(100);
  EXPECT_EQ(Split(s, {"ab", "c\nde", "f\n\ng"}),
            (Lines{{"abc", false}, {"def", false}, {"", false}}));
  EXPECT_EQ(Split(s, {}, true), (Lines{{"g", false}}));
}

TEST(LineSplitterTest, CutsLongLinesAndDropsTheirRest) {
  // Given lines of at most 4 bytes, then "abcdefgh" arrives cut to "abcd" and the rest
  // of it up to the newline is dropped, whatever the chunking.
  LineSplitter s(4);
  EXPECT_EQ(Split(s, {"abc", "defg", "h\nxy\n"}), (Lines{{"abcd", true}, {"xy", false}}));
  EXPECT_EQ(Split(s, {"1234\n"}), (Lines{{"1234", false}}));
  EXPECT_EQ(Split(s, {"12345"}, true), (Lines{{"1234", true}}));
}

TEST(FormatSecondsTest, ShortestForm) {
  EXPECT_EQ(FormatSeconds(2.5), "2.5");
  EXPECT_EQ(FormatSeconds(30), "30");
  EXPECT_EQ(FormatSeconds(0.25), "0.25");
}

}  // namespace
}  // namespace resonance::worker
