#include "http/json_schema.h"

#include <gtest/gtest.h>

namespace resonance::http {
namespace {

std::vector<std::string> Check(const std::string& schema, const std::string& doc) {
  auto s = JsonSchema::Parse(schema);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  std::vector<std::string> out;
  if (!s.ok()) return out;
  for (const auto& v : (*s)->Validate(doc, "payload")) out.push_back(v.path + ": " + v.message);
  return out;
}

TEST(JsonSchemaTest, EveryKeywordReportsItsViolationWithAPath) {
  const std::string schema = R"({"type":"object","required":["url","n"],
    "properties":{"url":{"type":"string","minLength":8,"pattern":"^https?://"},
                  "n":{"type":"integer","minimum":1,"maximum":10},
                  "mode":{"enum":["fast","slow"]},
                  "tags":{"type":"array","items":{"type":"string","maxLength":3}}}})";
  EXPECT_TRUE(Check(schema, R"({"url":"https://x.y","n":3,"mode":"fast","tags":["a"]})").empty());
  EXPECT_EQ(Check(schema, R"({"url":"ftp:/","n":11,"mode":"medium","tags":["ab","abcd",5]})"),
            (std::vector<std::string>{
                "payload.mode: must be one of \"fast\", \"slow\"",
                "payload.n: must be <= 10",
                "payload.tags[1]: must be at most 3 characters",
                "payload.tags[2]: must be string, is integer",
                "payload.url: must be at least 8 characters",
                "payload.url: must match ^https?://",
            }));
  EXPECT_EQ(Check(schema, R"({"n":0})"),
            (std::vector<std::string>{"payload.url: is required", "payload.n: must be >= 1"}));
  EXPECT_EQ(Check(schema, R"([1])"),
            (std::vector<std::string>{"payload: must be object, is array"}));
}

TEST(JsonSchemaTest, TypesListsIntegersAndCodePoints) {
  EXPECT_TRUE(Check(R"({"type":["string","null"]})", "null").empty());
  EXPECT_TRUE(Check(R"({"type":"number"})", "3").empty());     // an integer is a number
  EXPECT_TRUE(Check(R"({"type":"integer"})", "2.0").empty());  // and 2.0 an integer
  EXPECT_EQ(Check(R"({"type":"integer"})", "2.5").size(), 1u);
  EXPECT_TRUE(Check(R"({"type":"string","maxLength":2})", "\"\xc3\xa9\xc3\xa9\"").empty());
}

TEST(JsonSchemaTest, UnsupportedOrMalformedSchemasAreRefusedNamingThePlace) {
  auto msg = [](const std::string& s) { return JsonSchema::Parse(s).status().message(); };
  EXPECT_NE(msg(R"({"oneOf":[]})").find("oneOf: keyword not supported"), std::string::npos);
  EXPECT_NE(msg(R"({"properties":{"a":{"type":"text"}}})").find("properties.a.type: unknown type 'text'"),
            std::string::npos);
  EXPECT_NE(msg(R"({"pattern":"("})").find("pattern: not a valid regular expression"),
            std::string::npos);
  EXPECT_NE(msg(R"({"minLength":-1})").find("minLength: must be an integer >= 0"), std::string::npos);
  EXPECT_NE(msg("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(msg("[]").find("must be a JSON object"), std::string::npos);
  EXPECT_TRUE(JsonSchema::Parse(R"({"title":"t","description":"d"})").ok());
}

}  // namespace
}  // namespace resonance::http
