#include "worker/http_connection.h"

#include <gtest/gtest.h>

namespace resonance::worker {
namespace {

TEST(ParseHttpUrlTest, SplitsHostPortAndTarget) {
  auto u = ParseHttpUrl("http://127.0.0.1:8091/api/health?x=1");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "127.0.0.1");
  EXPECT_EQ(u->port, "8091");
  EXPECT_EQ(u->target, "/api/health?x=1");
  u = ParseHttpUrl("example.test");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->port, "80");
  EXPECT_EQ(u->target, "/");
  u = ParseHttpUrl("http://[::1]:9000/");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->port, "9000");
}

TEST(ParseHttpUrlTest, RefusesWhatItCannotSpeak) {
  EXPECT_EQ(ParseHttpUrl("https://example.test/").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseHttpUrl("http:///path").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseHttpUrl("http://host:99999/").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseHttpUrl("http://host:port/").status().code(), Code::kInvalidArgument);
}

TEST(HttpConnectionTest, UnreachableHostIsUnavailableNotAnException) {
  HttpConnection conn("127.0.0.1", "1");  // nothing listens on port 1
  auto r = conn.Request("GET", "/", "", 2 * kMicrosPerSecond);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kUnavailable);
  EXPECT_NE(r.status().message().find("cannot connect to 127.0.0.1:1"), std::string::npos)
      << r.status().message();
}

}  // namespace
}  // namespace resonance::worker
