#include "http/router.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "http/error_mapping.h"
#include "http/json_body.h"

namespace resonance::http {
namespace {

using ::testing::ElementsAre;
using ::testing::Pair;

// A router whose handlers record their name into last_.
class RouterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Add("POST", "/api/tasks");
    Add("GET", "/api/tasks");
    Add("POST", "/api/tasks/batch");
    Add("GET", "/api/tasks/{}");
    Add("POST", "/api/tasks/{}/complete");
    Add("POST", "/api/queues/{}/pause");
    Add("DELETE", "/api/dlq/{}");
    Add("POST", "/api/workers/{id}/heartbeat");
  }
  void Add(const std::string& method, const std::string& pattern) {
    router_.Add(method, pattern, [this, name = method + " " + pattern](Request&, Respond) {
      last_ = name;
    });
  }
  // Finds and runs the handler; returns the match kind.
  Router::Match Run(const std::string& method, const std::string& path) {
    req_ = Request{};
    req_.method = method;
    req_.path = path;
    allow_.clear();
    last_.clear();
    const Handler* h = nullptr;
    Router::Match m = router_.Find(req_, &h, &allow_);
    if (m == Router::Match::kFound) {
      EXPECT_NE(h, nullptr);
      if (h) (*h)(req_, [](Reply) {});
    }
    return m;
  }

  Router router_;
  Request req_;
  std::string allow_;
  std::string last_;
};

TEST_F(RouterTest, FindsLiteralRoutesByMethod) {
  // Given GET and POST on /api/tasks, then each method reaches its own handler.
  EXPECT_EQ(Run("GET", "/api/tasks"), Router::Match::kFound);
  EXPECT_EQ(last_, "GET /api/tasks");
  EXPECT_EQ(Run("POST", "/api/tasks"), Router::Match::kFound);
  EXPECT_EQ(last_, "POST /api/tasks");
  EXPECT_TRUE(req_.params.empty());
}

TEST_F(RouterTest, NamedCapturesWorkAndTheRouteIsThePattern) {
  // Given a pattern with {id}, then the segment is captured and req.route names the
  // pattern (the label metrics and access logs use), not the path.
  EXPECT_EQ(Run("POST", "/api/workers/w%201/heartbeat"), Router::Match::kFound);
  EXPECT_EQ(last_, "POST /api/workers/{id}/heartbeat");
  EXPECT_THAT(req_.params, ElementsAre("w 1"));
  EXPECT_EQ(req_.route, "/api/workers/{id}/heartbeat");
  EXPECT_EQ(Run("GET", "/api/tasks"), Router::Match::kFound);
  EXPECT_EQ(req_.route, "/api/tasks");
  // No route: the route stays empty (the server labels it "unmatched").
  EXPECT_EQ(Run("GET", "/nothing/here"), Router::Match::kNoRoute);
  EXPECT_EQ(req_.route, "");
}

TEST_F(RouterTest, CapturesAndDecodesParams) {
  // Given a pattern with {}, then the segment is captured percent-decoded.
  EXPECT_EQ(Run("POST", "/api/tasks/0abc/complete"), Router::Match::kFound);
  EXPECT_EQ(last_, "POST /api/tasks/{}/complete");
  EXPECT_THAT(req_.params, ElementsAre("0abc"));
  EXPECT_EQ(Run("POST", "/api/queues/mail%20out/pause"), Router::Match::kFound);
  EXPECT_THAT(req_.params, ElementsAre("mail out"));
}

TEST_F(RouterTest, PlusInPathSegmentIsLiteral) {
  // Given a queue named "c++" in the path, then the param is "c++": '+' means a space
  // only in query strings (form encoding), not in paths (RFC 3986).
  EXPECT_EQ(Run("POST", "/api/queues/c++/pause"), Router::Match::kFound);
  EXPECT_THAT(req_.params, ElementsAre("c++"));
}

TEST_F(RouterTest, EarlierLiteralRouteWins) {
  // Given POST /api/tasks/batch and GET /api/tasks/{}, then POST batch is the batch
  // route and GET of an id is the task route.
  EXPECT_EQ(Run("POST", "/api/tasks/batch"), Router::Match::kFound);
  EXPECT_EQ(last_, "POST /api/tasks/batch");
  EXPECT_EQ(Run("GET", "/api/tasks/0abc"), Router::Match::kFound);
  EXPECT_EQ(last_, "GET /api/tasks/{}");
}

TEST_F(RouterTest, UnknownPathIsNoRoute) {
  // Given paths no pattern matches (other literal, more or fewer segments), then kNoRoute.
  EXPECT_EQ(Run("GET", "/api/nothing"), Router::Match::kNoRoute);
  EXPECT_EQ(Run("POST", "/api/tasks/x/complete/now"), Router::Match::kNoRoute);
  EXPECT_EQ(Run("GET", "/"), Router::Match::kNoRoute);
  EXPECT_EQ(last_, "");
}

TEST_F(RouterTest, WrongMethodListsAllowedMethods) {
  // Given a path that exists for GET and POST only, when PUT asks, then kWrongMethod
  // with "POST, GET" in registration order, each once.
  EXPECT_EQ(Run("PUT", "/api/tasks"), Router::Match::kWrongMethod);
  EXPECT_EQ(allow_, "POST, GET");
  EXPECT_EQ(Run("GET", "/api/dlq/0abc"), Router::Match::kWrongMethod);
  EXPECT_EQ(allow_, "DELETE");
  EXPECT_EQ(last_, "");
}

TEST_F(RouterTest, TrailingAndDoubleSlashesAreIgnored) {
  // Given extra slashes, then the path matches as if they were not there.
  EXPECT_EQ(Run("GET", "/api/tasks/"), Router::Match::kFound);
  EXPECT_EQ(last_, "GET /api/tasks");
  EXPECT_EQ(Run("GET", "//api//tasks"), Router::Match::kFound);
}

TEST(QueryTest, ParsesAndDecodesPairs) {
  // Given a query with encoded values, empty parts and a key without '=', then decoded
  // pairs in order.
  EXPECT_THAT(ParseQuery("a=1&b=x%20y&&c&d=e+f&e=%zz"),
              ElementsAre(Pair("a", "1"), Pair("b", "x y"), Pair("c", ""), Pair("d", "e f"),
                          Pair("e", "%zz")));
  EXPECT_TRUE(ParseQuery("").empty());
  EXPECT_THAT(ParseQuery("k=v="), ElementsAre(Pair("k", "v=")));
}

TEST(QueryTest, PercentDecodeLeavesBrokenEscapes) {
  // Given a truncated or non-hex escape, then it is copied as is.
  EXPECT_EQ(PercentDecode("%41%4a%4A"), "AJJ");
  EXPECT_EQ(PercentDecode("100%"), "100%");
  EXPECT_EQ(PercentDecode("%4"), "%4");
  EXPECT_EQ(PercentDecode("%g1"), "%g1");
}

TEST(QueryTest, RequestQueryReturnsFirstValue) {
  // Given a repeated parameter, then Query returns the first; absent gives nullptr.
  Request r;
  r.query = ParseQuery("state=dead&state=ready");
  ASSERT_NE(r.Query("state"), nullptr);
  EXPECT_EQ(*r.Query("state"), "dead");
  EXPECT_EQ(r.Query("queue"), nullptr);
}

TEST(ErrorMappingTest, EveryCodeHasItsStatus) {
  // Given each Code, then its HTTP status per the one mapping table.
  EXPECT_EQ(ToHttpStatus(Code::kOk), 200);
  EXPECT_EQ(ToHttpStatus(Code::kInvalidArgument), 400);
  EXPECT_EQ(ToHttpStatus(Code::kInvalidJson), 400);
  EXPECT_EQ(ToHttpStatus(Code::kNotFound), 404);
  EXPECT_EQ(ToHttpStatus(Code::kConflict), 409);
  EXPECT_EQ(ToHttpStatus(Code::kTooLarge), 413);
  EXPECT_EQ(ToHttpStatus(Code::kUnsupportedMedia), 415);
  EXPECT_EQ(ToHttpStatus(Code::kUnprocessable), 422);
  EXPECT_EQ(ToHttpStatus(Code::kUnavailable), 503);
  EXPECT_EQ(ToHttpStatus(Code::kInternal), 500);
}

TEST(ErrorMappingTest, ErrorBodyEscapesMessage) {
  // Given a message with a quote, then the error body is valid JSON with the code name.
  EXPECT_EQ(ErrorBody(Code::kConflict, R"(lease "x" is stale)"),
            R"({"error":{"code":"conflict","message":"lease \"x\" is stale"}})");
}

// Parses body and returns the status of ParseObject.
Status ParseStatus(std::string body) {
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  return ParseObject(body, parser, doc).status();
}

TEST(JsonBodyTest, RejectsEmptyMalformedAndNonObjectBodies) {
  // Given an empty, a malformed and an array body, then kInvalidJson, kInvalidJson and
  // kInvalidArgument; an object is ok.
  EXPECT_EQ(ParseStatus("  \n").code(), Code::kInvalidJson);
  EXPECT_EQ(ParseStatus(R"({"a":)").code(), Code::kInvalidJson);
  EXPECT_EQ(ParseStatus(R"({"a":1} x)").code(), Code::kInvalidJson);
  EXPECT_EQ(ParseStatus("[1,2]").code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseStatus("42").code(), Code::kInvalidArgument);
  EXPECT_TRUE(ParseStatus(R"({"a":1})").ok());
}

TEST(JsonBodyTest, ReadsTypedFieldsAndKeepsRawText) {
  // Given an object with each kind of field, then the readers return the values, raw
  // objects keep their exact text, and type mismatches name the field.
  std::string body =
      R"({"s":"hi","i":7,"big":5000,"d":1.5,"b":true,"p":{"x": [1, 2]} ,"r":[1,{"y":null}],"n":null})";
  simdjson::ondemand::parser parser;
  simdjson::ondemand::document doc;
  auto obj = ParseObject(body, parser, doc);
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  int visited = 0;
  for (auto field : *obj) {
    std::string_view key;
    ASSERT_FALSE(field.unescaped_key().get(key));
    ++visited;
    simdjson::ondemand::value v = field.value();
    if (key == "s") {
      std::string s;
      EXPECT_TRUE(ReadString(v, "s", s).ok());
      EXPECT_EQ(s, "hi");
    } else if (key == "i") {
      int64_t i = 0;
      EXPECT_TRUE(ReadInt(v, "i", 0, 10, i).ok());
      EXPECT_EQ(i, 7);
    } else if (key == "big") {
      int64_t i = 0;
      Status s = ReadInt(v, "tasks[0].priority", 0, 10, i);
      EXPECT_EQ(s.code(), Code::kInvalidArgument);
      EXPECT_THAT(s.message(), ::testing::StartsWith("tasks[0].priority: must be"));
    } else if (key == "d") {
      double d = 0;
      EXPECT_TRUE(ReadNumber(v, "d", d).ok());
      EXPECT_EQ(d, 1.5);
    } else if (key == "b") {
      std::string s;
      EXPECT_EQ(ReadString(v, "b", s).code(), Code::kInvalidArgument);
    } else if (key == "p") {
      std::string raw;
      EXPECT_TRUE(ReadRawObject(v, "p", raw).ok());
      EXPECT_EQ(raw, R"({"x": [1, 2]})");
    } else if (key == "r") {
      std::string raw;
      EXPECT_TRUE(ReadRawAny(v, "r", raw).ok());
      EXPECT_EQ(raw, R"([1,{"y":null}])");
    } else if (key == "n") {
      EXPECT_TRUE(IsNull(v));
    }
  }
  EXPECT_EQ(visited, 8);
}

}  // namespace
}  // namespace resonance::http
