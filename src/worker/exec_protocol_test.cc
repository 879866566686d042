#include "worker/exec_protocol.h"

#include <gtest/gtest.h>
#include <signal.h>

namespace resonance::worker {
namespace {

int Exited(int code) { return code << 8; }  // a waitpid status for exit(code)
int Killed(int sig) { return sig; }         // a waitpid status for death by signal
// Stdout as written in full (nothing cut off).
StdoutReading Whole(std::string_view out) { return ReadStdout(out, out.size()); }

TEST(ExecProtocolTest, ExitCodesMapToClasses) {
  // Given the sysexits codes the protocol names, then 65 is validation, 75 and every
  // other non-zero code temporary.
  EXPECT_EQ(ClassForExitCode(65), ErrorClass::kValidation);
  EXPECT_EQ(ClassForExitCode(75), ErrorClass::kTemporary);
  EXPECT_EQ(ClassForExitCode(1), ErrorClass::kTemporary);
  EXPECT_EQ(ClassForExitCode(2), ErrorClass::kTemporary);
  EXPECT_EQ(ClassForExitCode(127), ErrorClass::kTemporary);
  EXPECT_EQ(ClassForExitCode(255), ErrorClass::kTemporary);
}

TEST(ExecProtocolTest, ExitZeroCompletesWithStdoutJson) {
  StdoutReading out = Whole(" {\"a\": [1, 2.5, \"x\"]}\n");
  Outcome o = ExecOutcome(Exited(0), out, "");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.result, "{\"a\": [1, 2.5, \"x\"]}");  // raw text, trimmed, not re-serialised
}

TEST(ExecProtocolTest, JsonScalarsAndArraysAreResultsToo) {
  EXPECT_EQ(Whole("42\n").result, "42");
  EXPECT_EQ(Whole("[1,2]").result, "[1,2]");
  EXPECT_EQ(Whole("\"text\"").result, "\"text\"");
}

TEST(ExecProtocolTest, NonJsonStdoutIsWrappedAsOutput) {
  StdoutReading out = Whole("hello \"world\"\nline 2\n");
  EXPECT_EQ(out.result, R"({"output":"hello \"world\"\nline 2\n"})");
  EXPECT_FALSE(out.error);
}

TEST(ExecProtocolTest, EmptyStdoutMeansNoResult) {
  EXPECT_EQ(ReadStdout("", 0).result, "");
  EXPECT_EQ(ReadStdout(" \n", 2).result, "");
  EXPECT_TRUE(ExecOutcome(Exited(0), ReadStdout("", 0), "").ok);
}

TEST(ExecProtocolTest, InvalidUtf8IsReplacedSoTheServerAcceptsIt) {
  StdoutReading out = Whole("ok \xff\xfe end");
  EXPECT_EQ(out.result, "{\"output\":\"ok \xEF\xBF\xBD\xEF\xBF\xBD end\"}");
  EXPECT_TRUE(json::IsValid(out.result));
}

TEST(ExecProtocolTest, OversizedStdoutIsCutAndMarked) {
  // Given 10 bytes kept of 5000 written, then the result says it was truncated.
  StdoutReading out = ReadStdout("{\"a\":\"0123", 5000);
  EXPECT_EQ(out.result, R"({"output":"{\"a\":\"0123","truncated":true,"output_bytes":5000})");
  // And a kept part longer than the excerpt is cut to it.
  std::string big(kOutputExcerptBytes + 100, 'x');
  StdoutReading cut = ReadStdout(big, big.size() + 1);
  EXPECT_LT(cut.result.size(), kOutputExcerptBytes + 100);
  EXPECT_TRUE(json::IsValid(cut.result));
}

TEST(ExecProtocolTest, ErrorObjectSetsTheClassWhateverTheExitCode) {
  const std::string text =
      R"({"error":{"class":"rate_limited","message":"slow down","retry_after_s":12.5}})";
  StdoutReading out = ReadStdout(text, text.size());
  ASSERT_TRUE(out.error);
  for (int code : {0, 1, 65, 75}) {
    Outcome o = ExecOutcome(Exited(code), out, "ignored");
    EXPECT_FALSE(o.ok);
    EXPECT_EQ(o.error_class, ErrorClass::kRateLimited) << code;
    EXPECT_EQ(o.message, "slow down");
    ASSERT_TRUE(o.retry_after_s);
    EXPECT_DOUBLE_EQ(*o.retry_after_s, 12.5);
  }
}

TEST(ExecProtocolTest, ErrorObjectWithUnknownOrMissingClassIsTemporary) {
  std::string text = R"({"error":{"class":"weird","message":"m"}})";
  Outcome o = ExecOutcome(Exited(0), ReadStdout(text, text.size()), "");
  EXPECT_EQ(o.error_class, ErrorClass::kTemporary);
  EXPECT_NE(o.message.find("unknown class 'weird'"), std::string::npos);
  text = R"({"error":{"message":"no class"}})";
  o = ExecOutcome(Exited(0), ReadStdout(text, text.size()), "");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kTemporary);
  EXPECT_EQ(o.message, "no class");
}

TEST(ExecProtocolTest, AnErrorKeyThatIsNoObjectIsAPlainResult) {
  const std::string text = R"({"error":null,"value":1})";
  Outcome o = ExecOutcome(Exited(0), ReadStdout(text, text.size()), "");
  EXPECT_TRUE(o.ok);
  EXPECT_EQ(o.result, text);
}

TEST(ExecProtocolTest, NonZeroExitFailsWithItsClassAndTheLastStderrLine) {
  Outcome o = ExecOutcome(Exited(65), ReadStdout("{\"partial\":1}", 13), "bad input: field x");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kValidation);
  EXPECT_EQ(o.message, "handler exited with status 65: bad input: field x");
  o = ExecOutcome(Exited(75), ReadStdout("", 0), "");
  EXPECT_EQ(o.error_class, ErrorClass::kTemporary);
  EXPECT_EQ(o.message, "handler exited with status 75");
  o = ExecOutcome(Exited(3), ReadStdout("", 0), "");
  EXPECT_EQ(o.error_class, ErrorClass::kTemporary);
}

TEST(ExecProtocolTest, DeathBySignalIsTemporary) {
  Outcome o = ExecOutcome(Killed(SIGSEGV), ReadStdout("", 0), "");
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kTemporary);
  EXPECT_NE(o.message.find("signal 11"), std::string::npos);
}

TEST(ExecProtocolTest, ProgressLinesAreJsonObjects) {
  EXPECT_EQ(*ReadProgressLine(R"({"progress": 0.4, "message": "half"} )"),
            R"({"progress": 0.4, "message": "half"})");
  EXPECT_EQ(*ReadProgressLine(R"({"message":"only text"})"), R"({"message":"only text"})");
  EXPECT_FALSE(ReadProgressLine("0.4"));
  EXPECT_FALSE(ReadProgressLine("progress 40%"));
  EXPECT_FALSE(ReadProgressLine(R"({"progress": 0.4)"));
  EXPECT_FALSE(ReadProgressLine(""));
  EXPECT_FALSE(ReadProgressLine("{\"m\":\"" + std::string(kMaxProgressBytes, 'x') + "\"}"));
}

TEST(ExecProtocolTest, TraceparentKeepsTheTaskTraceWithANewSpan) {
  std::mt19937_64 rng(1);
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  std::string a = MakeTraceparent(trace, rng);
  std::string b = MakeTraceparent(trace, rng);
  ASSERT_EQ(a.size(), 55u);
  EXPECT_EQ(a.substr(0, 36), "00-" + trace + "-");
  EXPECT_EQ(a.substr(52), "-01");
  EXPECT_NE(a.substr(36, 16), b.substr(36, 16));
  EXPECT_EQ(a.substr(36, 16).find_first_not_of("0123456789abcdef"), std::string::npos);
}

TEST(ExecProtocolTest, TraceparentMakesUpATraceWhenTheTaskHasNone) {
  std::mt19937_64 rng(2);
  for (std::string_view bad :
       {"", "xyz", "00000000000000000000000000000000", "4BF92F3577B34DA6A3CE929D0E0E4736"}) {
    std::string tp = MakeTraceparent(bad, rng);
    ASSERT_EQ(tp.size(), 55u) << bad;
    EXPECT_NE(tp.substr(3, 32), "00000000000000000000000000000000");
    EXPECT_EQ(tp.substr(3, 32).find_first_not_of("0123456789abcdef"), std::string::npos);
  }
}

}  // namespace
}  // namespace resonance::worker
