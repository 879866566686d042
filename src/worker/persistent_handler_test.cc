#include "worker/persistent_handler.h"

#include <gtest/gtest.h>

#include <thread>

#include "worker/json_read.h"
#include "worker/test_support.h"

namespace resonance::worker {
namespace {

using testing::AllGone;
using testing::ScratchDir;

// A JSON-lines handler: answers {"pid","n"}; payload flags make it misbehave.
constexpr const char* kScript = R"(#!/usr/bin/python3
import json, os, sys, time
for line in sys.stdin:
    req = json.loads(line)
    p = req["payload"]
    if p.get("crash"):
        os._exit(3)
    if p.get("hang"):
        time.sleep(100)
    out = sys.stdout
    if p.get("noise"):
        out.write("not json\n")
        out.write(json.dumps({"id": "someone-else", "result": 1}) + "\n")
    if p.get("progress"):
        out.write(json.dumps({"id": req["id"], "progress": 0.5, "message": "half"}) + "\n")
    if p.get("fail"):
        out.write(json.dumps({"id": req["id"], "error": {"class": "validation", "message": "bad n"}}) + "\n")
    else:
        out.write(json.dumps({"id": req["id"], "result": {"pid": os.getpid(), "n": p.get("n"), "attempt": req["attempt"], "creds": req.get("credentials")}}) + "\n")
    out.flush()
)";

LeasedTask Task(int n, const std::string& extra = "") {
  LeasedTask t;
  t.id = "task" + std::to_string(n);
  t.queue = "default";
  t.action = "fast";
  t.payload = "{\"n\":" + std::to_string(n) + extra + "}";
  t.attempt = 1;
  t.timeout_s = 30;
  return t;
}

int64_t PidOf(const Outcome& o) {
  int64_t pid = -1;
  json::ForEachMember(o.result, [&](std::string_view key, json::Value v) {
    if (key == "pid") pid = json::Int(v).value_or(-1);
    return Status::Ok();
  });
  return pid;
}

class PersistentHandlerTest : public ::testing::Test {
 protected:
  HandlerConfig Config() {
    HandlerConfig c;
    c.action = "fast";
    c.type = HandlerType::kPersistent;
    c.argv = {scratch_.Script("handler.py", kScript)};
    c.kill_grace_s = 1;
    return c;
  }
  ScratchDir scratch_;
  PosixSpawner spawner_;
  SystemClock clock_;
};

TEST_F(PersistentHandlerTest, ServesManyTasksWithOneProcess) {
  // Given 50 tasks in a row, then every answer comes from the same process.
  PersistentHandler handler(Config(), spawner_, clock_, "w1", 0);
  int64_t first_pid = -1;
  for (int i = 0; i < 50; ++i) {
    TaskContext ctx(clock_, 10);
    Outcome o = handler.Run(Task(i), ctx);
    ASSERT_TRUE(o.ok) << o.message;
    if (i == 0) first_pid = PidOf(o);
    EXPECT_EQ(PidOf(o), first_pid);
    EXPECT_NE(o.result.find("\"n\": " + std::to_string(i)), std::string::npos) << o.result;
  }
  EXPECT_EQ(handler.pid(), first_pid);
}

TEST_F(PersistentHandlerTest, ErrorRepliesProgressAndNoiseAreRead) {
  PersistentHandler handler(Config(), spawner_, clock_, "w1", 0);
  TaskContext ctx(clock_, 10);
  Outcome o = handler.Run(Task(1, ",\"fail\":true,\"progress\":true,\"noise\":true"), ctx);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kValidation);
  EXPECT_EQ(o.message, "bad n");
  EXPECT_NE(ctx.TakeProgress().value_or("").find("\"progress\": 0.5"), std::string::npos);
}

TEST_F(PersistentHandlerTest, CredentialsTravelInTheRequestLineOfTheirTaskOnly) {
  // Given a task with credentials and one without, then the first request line carries
  // them as "credentials" and the second has none.
  PersistentHandler handler(Config(), spawner_, clock_, "w1", 0);
  TaskContext ctx(clock_, 10);
  LeasedTask with = Task(1);
  with.credentials = {{"api.token", "s3cret"}};
  Outcome o = handler.Run(with, ctx);
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_NE(o.result.find("\"creds\": {\"api.token\": \"s3cret\"}"), std::string::npos) << o.result;
  TaskContext ctx2(clock_, 10);
  o = handler.Run(Task(2), ctx2);
  ASSERT_TRUE(o.ok) << o.message;
  EXPECT_NE(o.result.find("\"creds\": null"), std::string::npos) << o.result;
}

TEST_F(PersistentHandlerTest, ACrashFailsTheTaskAndTheNextTaskGetsAFreshProcess) {
  PersistentHandler handler(Config(), spawner_, clock_, "w1", 0);
  TaskContext ctx1(clock_, 10);
  Outcome first = handler.Run(Task(1), ctx1);
  ASSERT_TRUE(first.ok);
  TaskContext ctx2(clock_, 10);
  Outcome crashed = handler.Run(Task(2, ",\"crash\":true"), ctx2);
  EXPECT_FALSE(crashed.ok);
  EXPECT_EQ(crashed.error_class, ErrorClass::kTemporary);
  EXPECT_NE(crashed.message.find("exited with status 3"), std::string::npos) << crashed.message;
  TaskContext ctx3(clock_, 10);
  Outcome again = handler.Run(Task(3), ctx3);  // waits out the first restart backoff
  ASSERT_TRUE(again.ok) << again.message;
  EXPECT_NE(PidOf(again), PidOf(first));
}

TEST_F(PersistentHandlerTest, TimeoutKillsTheProcessAndFailsAsTimeout) {
  PersistentHandler handler(Config(), spawner_, clock_, "w1", 0);
  TaskContext warm(clock_, 10);
  ASSERT_TRUE(handler.Run(Task(1), warm).ok);
  const pid_t pid = handler.pid();
  TaskContext ctx(clock_, 0.3);
  Outcome o = handler.Run(Task(2, ",\"hang\":true"), ctx);
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(o.error_class, ErrorClass::kTimeout);
  EXPECT_EQ(handler.pid(), -1);
  EXPECT_TRUE(AllGone({pid}));
  TaskContext next(clock_, 10);
  Outcome fresh = handler.Run(Task(3), next);
  ASSERT_TRUE(fresh.ok) << fresh.message;
  EXPECT_NE(PidOf(fresh), pid);
}

TEST_F(PersistentHandlerTest, StopRequestEndsTheRun) {
  PersistentHandler handler(Config(), spawner_, clock_, "w1", 0);
  TaskContext ctx(clock_, 30);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    ctx.RequestStop(StopReason::kCancelled);
  });
  Outcome o = handler.Run(Task(1, ",\"hang\":true"), ctx);
  stopper.join();
  EXPECT_FALSE(o.ok);
  EXPECT_EQ(ctx.stop_reason(), StopReason::kCancelled);
}

TEST_F(PersistentHandlerTest, TheProcessEndsWithTheHandler) {
  pid_t pid;
  {
    PersistentHandler handler(Config(), spawner_, clock_, "w1", 0);
    TaskContext ctx(clock_, 10);
    ASSERT_TRUE(handler.Run(Task(1), ctx).ok);
    pid = handler.pid();
  }
  EXPECT_TRUE(AllGone({pid}, 100));
}

}  // namespace
}  // namespace resonance::worker
