#include "core/template.h"

#include <gtest/gtest.h>

#include <string>

namespace resonance::tmpl {
namespace {

class TemplateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(scope_.Set("result", R"({"x":42,"name":"ann","items":["a",{"k":true}],)"
                                     R"("obj":{"n":1.5,"s":"q\"t"},"nil":null})")
                    .ok());
    ASSERT_TRUE(scope_.Set("payload", R"({"url":"https://e.x/v?id=7","n":3})").ok());
    ASSERT_TRUE(scope_.Set("task", R"({"id":"T1","action":"learn","depth":2})").ok());
  }
  std::string Render(const std::string& json) {
    auto r = RenderJson(json, scope_, "payload");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : "";
  }
  Scope scope_;
};

TEST_F(TemplateTest, LonePlaceholderKeepsItsType) {
  // Given strings that are exactly one placeholder, then the value comes in with its type.
  EXPECT_EQ(Render(R"({"a":"{{result.x}}"})"), R"({"a":42})");
  EXPECT_EQ(Render(R"({"a":"{{ result.obj }}"})"), R"({"a":{"n":1.5,"s":"q\"t"}})");
  EXPECT_EQ(Render(R"({"a":"{{result.items.1}}","b":"{{result.nil}}"})"),
            R"({"a":{"k":true},"b":null})");
  EXPECT_EQ(Render(R"({"a":"{{result.name}}"})"), R"({"a":"ann"})");
  EXPECT_EQ(Render(R"({"a":"{{result}}"})").substr(0, 12), R"({"a":{"x":42)");
}

TEST_F(TemplateTest, PlaceholderInTextGivesText) {
  // Given placeholders inside longer strings, then strings go in unquoted, the rest as JSON.
  EXPECT_EQ(Render(R"({"a":"n={{result.x}} by {{result.name}} at {{payload.url}}"})"),
            R"({"a":"n=42 by ann at https://e.x/v?id=7"})");
  EXPECT_EQ(Render(R"({"a":"o={{result.obj}}"})"), R"({"a":"o={\"n\":1.5,\"s\":\"q\\\"t\"}"})");
  EXPECT_EQ(Render(R"({"a":["{{task.id}}/{{task.action}}", "{{task.depth}}"]})"),
            R"({"a":["T1/learn",2]})");
}

TEST_F(TemplateTest, OtherTextIsLeftAlone) {
  // Given Mustache text with other names, keys with braces and no placeholders, then as is.
  EXPECT_EQ(Render(R"({"{{result.x}}":"Hi {{name}} {{ results.x }} {"})"),
            R"({"{{result.x}}":"Hi {{name}} {{ results.x }} {"})");
  const std::string plain = R"({"a": 1, "b": [true, null]})";
  EXPECT_EQ(Render(plain), plain);  // unchanged text, spaces kept: nothing to fill in
  EXPECT_EQ(Render(R"({"a":"{{{result.x}}}"})"), R"({"a":"{42}"})");
}

TEST_F(TemplateTest, MissingPathsAreNotFound) {
  // Given references to nothing, then kNotFound naming the string's place and the part.
  auto r = RenderJson(R"({"a":{"b":"{{result.nope}}"}})", scope_, "payload");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("payload.a.b"), std::string::npos) << r.status().message();
  EXPECT_NE(r.status().message().find("result has no field nope"), std::string::npos);
  for (const char* bad : {R"({"a":"{{result.items.2}}"})", R"({"a":"{{result.items.x}}"})",
                          R"({"a":"{{result.x.y}}"})", R"({"a":"{{payload.url.0}}"})"}) {
    auto e = RenderJson(bad, scope_, "payload");
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), Code::kNotFound) << bad;
  }
  Scope empty;
  auto none = RenderJson(R"({"a":"{{result.x}}"})", empty, "payload");
  ASSERT_FALSE(none.ok());
  EXPECT_NE(none.status().message().find("has no result"), std::string::npos);
}

TEST_F(TemplateTest, MalformedPlaceholdersAreRefused) {
  // Given a known root followed by a broken path, then kInvalidArgument, also from CheckJson.
  for (const char* bad : {R"({"a":"{{result.}}"})", R"({"a":"{{result.a b}}"})",
                          R"({"a":"x {{payload.a"})", R"({"a":"{{task.nope}}"})",
                          R"({"a":"{{task}}"})"}) {
    auto e = RenderJson(bad, scope_, "payload");
    ASSERT_FALSE(e.ok()) << bad;
    EXPECT_EQ(e.status().code(), Code::kInvalidArgument) << bad;
    Status c = CheckJson(bad, "on_success[0].payload");
    EXPECT_EQ(c.code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(c.message().find("on_success[0].payload.a"), std::string::npos) << c.message();
  }
  EXPECT_TRUE(CheckJson(R"({"a":["{{result.any.thing.0}}","{{task.trace_id}}"]})", "p").ok());
}

TEST_F(TemplateTest, TextRendering) {
  // Given a key template, then text; a lone non-string placeholder gives its JSON text.
  auto k = RenderText("learn:{{result.name}}:{{payload.n}}", scope_, "idempotency_key");
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(*k, "learn:ann:3");
  auto n = RenderText("{{result.x}}", scope_, "idempotency_key");
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, "42");
  auto missing = RenderText("k:{{result.zz}}", scope_, "idempotency_key");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("idempotency_key: "), std::string::npos);
  EXPECT_TRUE(CheckText("k:{{result.a}}", "k").ok());
  EXPECT_FALSE(CheckText("k:{{result..a}}", "k").ok());
}

TEST_F(TemplateTest, ScopeRefusesBadInput) {
  // Given bad JSON or an unknown root, then kInvalidArgument.
  Scope s;
  EXPECT_EQ(s.Set("result", "{nope").code(), Code::kInvalidArgument);
  EXPECT_EQ(s.Set("other", "{}").code(), Code::kInvalidArgument);
  EXPECT_TRUE(s.Set("result", "[1,2]").ok());
  auto r = RenderJson(R"({"a":"{{result.1}}"})", s, "payload");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, R"({"a":2})");
}

}  // namespace
}  // namespace resonance::tmpl
