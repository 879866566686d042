#include "core/json_writer.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

namespace resonance {
namespace {

std::string Quoted(std::string_view s) {
  std::string out;
  AppendJsonString(out, s);
  return out;
}

TEST(JsonWriterTest, EscapesQuotesAndBackslashes) {
  // Given quotes and backslashes, then each is escaped with a backslash.
  EXPECT_EQ(Quoted(R"(say "hi")"), R"("say \"hi\"")");
  EXPECT_EQ(Quoted(R"(C:\dir\)"), R"("C:\\dir\\")");
  EXPECT_EQ(Quoted(R"(\")"), R"("\\\"")");
}

TEST(JsonWriterTest, EscapesControlCharacters) {
  // Given \n \r \t and other bytes below 0x20, then short escapes or \u00XX.
  EXPECT_EQ(Quoted("a\nb\rc\td"), R"("a\nb\rc\td")");
  EXPECT_EQ(Quoted(std::string("\x01\x1f\b\f", 4)), R"("\u0001\u001f\u0008\u000c")");
  EXPECT_EQ(Quoted(std::string("x\0y", 3)), R"("x\u0000y")");
}

TEST(JsonWriterTest, LeavesOtherBytesAlone) {
  // Given plain ASCII, DEL and UTF-8, then they are copied unchanged.
  EXPECT_EQ(Quoted(""), R"("")");
  EXPECT_EQ(Quoted("plain text / ok"), R"("plain text / ok")");
  EXPECT_EQ(Quoted("\x7f"), "\"\x7f\"");
  EXPECT_EQ(Quoted("h\xc3\xa9llo \xe2\x9c\x93"), "\"h\xc3\xa9llo \xe2\x9c\x93\"");
}

TEST(JsonWriterTest, AppendsToExistingBuffer) {
  // Given a buffer with text, then the literal is appended after it.
  std::string out = "x=";
  AppendJsonString(out, "a\"b");
  EXPECT_EQ(out, R"(x="a\"b")");
}

TEST(JsonWriterTest, WritesCommasBetweenMembersAndElements) {
  // Given an object with nested array and object, then commas go exactly between items.
  std::string out;
  JsonWriter w(out);
  w.BeginObject()
      .Key("a").Int(1)
      .Key("b").BeginArray().Int(-2).Bool(true).Null().String("s").EndArray()
      .Key("c").BeginObject().EndObject()
      .Key("d").BeginArray().EndArray()
      .Key("e").Raw(R"({"x":[1,2]})")
      .Key("f").Bool(false)
      .EndObject();
  EXPECT_EQ(out, R"({"a":1,"b":[-2,true,null,"s"],"c":{},"d":[],"e":{"x":[1,2]},"f":false})");
}

TEST(JsonWriterTest, EscapesKeys) {
  // Given a key with a quote, then it is escaped like a value.
  std::string out;
  JsonWriter(out).BeginObject().Key("k\"ey").String("v").EndObject();
  EXPECT_EQ(out, R"({"k\"ey":"v"})");
}

TEST(JsonWriterTest, WritesNumbers) {
  // Given int64 extremes and doubles, then shortest round-trip text; non-finite is null.
  std::string out;
  JsonWriter(out)
      .BeginArray()
      .Int(std::numeric_limits<int64_t>::min())
      .Int(std::numeric_limits<int64_t>::max())
      .Double(1.5)
      .Double(0.1)
      .Double(std::numeric_limits<double>::infinity())
      .Double(std::numeric_limits<double>::quiet_NaN())
      .EndArray();
  EXPECT_EQ(out, "[-9223372036854775808,9223372036854775807,1.5,0.1,null,null]");
}

TEST(JsonWriterTest, WritesTimesAndNullables) {
  // Given a time and empty/zero optional fields, then an RFC 3339 string and nulls.
  std::string out;
  JsonWriter(out)
      .BeginArray()
      .Time(1'700'000'000LL * kMicrosPerSecond)
      .TimeOrNull(0)
      .StringOrNull("")
      .StringOrNull("x")
      .RawOrNull("")
      .RawOrNull("[1]")
      .EndArray();
  EXPECT_EQ(out, R"(["2023-11-14T22:13:20.000000Z",null,null,"x",null,[1]])");
}

}  // namespace
}  // namespace resonance
