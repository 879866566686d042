// [credentials.NAME] and [actions."X"] credentials in LoadConfig (docs/credentials.md).
#include <gtest/gtest.h>

#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "cli/config.h"

namespace resonance {
namespace {

class ConfigCredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/resonance-config-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  Result<Config> Load(const std::string& text) { return LoadConfig(Write("c.toml", text)); }

  std::string dir_;
};

TEST_F(ConfigCredentialsTest, ReadsValueSourcesExpiryAndRefresh) {
  // Given each value source and both refresh_before forms, then every spec is read.
  ::setenv("RESONANCE_CONFIG_TEST_TOKEN", "from-env", 1);
  const std::string file = Write("token", "from-file\r\n");
  auto c = Load(R"(
[credentials.a]
value = "inline"
expires_at = "2030-01-02T03:04:05Z"
refresh_action = "renew"
refresh_queue = "auth"
refresh_before = "10m"
[credentials.b]
value_env = "RESONANCE_CONFIG_TEST_TOKEN"
refresh_before = 42
[credentials."c.d-e"]
value_file = ")" + file + R"("
[credentials.set_by_api]
refresh_action = "renew"
[actions."use"]
credentials = ["a", "c.d-e", "set_by_api"]
)");
  ::unsetenv("RESONANCE_CONFIG_TEST_TOKEN");
  ASSERT_TRUE(c.ok()) << c.status().message();
  ASSERT_EQ(c->credentials.size(), 4u);
  auto spec = [&](const std::string& name) -> const CredentialSpec& {
    for (const auto& s : c->credentials) {
      if (s.name == name) return s;
    }
    ADD_FAILURE() << "no spec " << name;
    return c->credentials[0];
  };
  const CredentialSpec& a = spec("a");
  EXPECT_EQ(a.name, "a");
  EXPECT_TRUE(a.has_value);
  EXPECT_EQ(a.value, "inline");
  EXPECT_EQ(a.expires_at, 1893553445LL * kMicrosPerSecond);
  EXPECT_EQ(a.refresh_action, "renew");
  EXPECT_EQ(a.refresh_queue, "auth");
  EXPECT_EQ(a.refresh_before, 600 * kMicrosPerSecond);
  const CredentialSpec& b = spec("b");
  EXPECT_EQ(b.value, "from-env");
  EXPECT_EQ(b.expires_at, 0);
  EXPECT_EQ(b.refresh_queue, "default");
  EXPECT_EQ(b.refresh_before, 42 * kMicrosPerSecond);
  EXPECT_EQ(spec("c.d-e").value, "from-file");
  EXPECT_EQ(spec("c.d-e").refresh_before, kDefaultRefreshBefore);
  EXPECT_FALSE(spec("set_by_api").has_value);
  EXPECT_EQ(c->actions.credentials.at("use"),
            (std::vector<std::string>{"a", "c.d-e", "set_by_api"}));
  EXPECT_TRUE(c->actions.known.count("use"));
}

TEST_F(ConfigCredentialsTest, RefusesBadTablesNamingTheKeyNotTheValue) {
  struct Case {
    std::string text;
    std::string mentions;
  };
  const Case cases[] = {
      {"[credentials.\"a b\"]\nvalue = \"SECRET1\"\n", "credentials.a b"},
      {"[credentials.a]\nvalue = \"SECRET1\"\nvalue_file = \"/x\"\n", "one of value"},
      {"[credentials.a]\nvalue = \"\"\n", "empty"},
      {"[credentials.a]\nvalue = 7\n", "credentials.a.value: must be a string"},
      {"[credentials.a]\nvalue_env = \"RESONANCE_CONFIG_TEST_UNSET\"\n", "not set"},
      {"[credentials.a]\nvalue_file = \"" + dir_ + "/none\"\n", "cannot read"},
      {"[credentials.a]\nvalue = \"SECRET1\"\nexpires_at = \"tomorrow\"\n", "expires_at"},
      {"[credentials.a]\nvalue = \"SECRET1\"\nrefresh_before = -1\n", "refresh_before"},
      {"[credentials.a]\nvalue = \"SECRET1\"\nrefresh_before = \"5 min\"\n", "refresh_before"},
      {"[credentials.a]\nvalue = \"SECRET1\"\nrefresh_action = \"\"\n", "refresh_action"},
      {"[credentials.a]\nvalue = \"SECRET1\"\nttl = 5\n", "credentials.a.ttl: unknown key"},
      {"[credentials.a]\nvalue = \"SECRET1\"\n[actions.\"x\"]\ncredentials = [\"b\"]\n",
       "[credentials.b]"},
      {"[credentials.a]\nvalue = \"SECRET1\"\n[actions.\"x\"]\ncredentials = [1]\n",
       "actions.x.credentials"},
      {"credentials = 5\n", "credentials: must be a table"},
  };
  for (const Case& k : cases) {
    auto c = Load(k.text);
    ASSERT_FALSE(c.ok()) << k.text;
    EXPECT_EQ(c.status().code(), Code::kInvalidArgument) << k.text;
    EXPECT_NE(c.status().message().find(k.mentions), std::string::npos)
        << k.text << " -> " << c.status().message();
    EXPECT_EQ(c.status().message().find("SECRET1"), std::string::npos) << c.status().message();
  }
}

}  // namespace
}  // namespace resonance
