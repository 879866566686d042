#include "engine/followups.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

namespace resonance {
namespace {

using ::testing::HasSubstr;

Task Parent(std::string on_success, int32_t depth = 0) {
  Task t;
  t.id = "P1";
  t.action = "fetch";
  t.queue = "q";
  t.payload = R"({"url":"https://e.x/1","n":7})";
  t.on_success = std::move(on_success);
  t.depth = depth;
  t.trace_id = "0af7651916cd43dd8448eb211c80319c";
  return t;
}

TEST(ReadFollowupsTest, ReadsSpecsWithTheFieldsOfAnEnqueue) {
  // Given a list with every field, then each is read, the nested list kept as text.
  auto r = ReadFollowups(R"([{"action":"learn","queue":"ml","payload":{"v":"{{result.id}}"},
      "priority":5,"delay_s":1.5,"max_attempts":3,"timeout_s":60,"idempotency_key":"k:{{task.id}}",
      "requires_approval":null,"on_success":[{"action":"report"}]}])",
                         "on_success");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 1u);
  const FollowupSpec& s = (*r)[0];
  EXPECT_EQ(s.path, "on_success[0]");
  ASSERT_TRUE(s.task.ok()) << s.task.status().ToString();
  EXPECT_EQ(s.task->action, "learn");
  EXPECT_EQ(s.task->queue, "ml");
  EXPECT_EQ(s.task->payload, R"({"v":"{{result.id}}"})");
  EXPECT_EQ(s.task->priority, 5);
  EXPECT_EQ(*s.task->delay_s, 1.5);
  EXPECT_EQ(s.task->max_attempts, 3);
  EXPECT_EQ(s.task->timeout_s, 60);
  EXPECT_EQ(s.task->idempotency_key, "k:{{task.id}}");
  EXPECT_EQ(s.task->on_success, R"([{"action":"report"}])");
}

TEST(ReadFollowupsTest, BadSpecsNameTheirPath) {
  // Given bad specs, then each spec's own error names its path and field.
  auto r = ReadFollowups(R"([{"action":"a"},{"queue":"q"},{"action":1},{"action":"a","x":1},
      {"action":"a","payload":[1]},{"action":"a","payload":{"u":"{{result.}}"}},
      {"action":"a","on_success":[{"action":"b","priority":"high"}]},
      {"action":"a","max_attempts":0},{"action":"a","requires_approval":true}])",
                         "on_success");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  ASSERT_EQ(r->size(), 9u);
  EXPECT_TRUE((*r)[0].task.ok());
  const char* want[] = {nullptr,
                        "on_success[1].action: is required",
                        "on_success[2].action: must be a string",
                        "on_success[3].x: unknown field",
                        "on_success[4].payload: must be an object",
                        "on_success[5].payload.u: malformed placeholder",
                        "on_success[6].on_success[0].priority: must be an integer",
                        "on_success[7].max_attempts",
                        "on_success[8].requires_approval"};
  for (size_t i = 1; i < 9; ++i) {
    ASSERT_FALSE((*r)[i].task.ok()) << i;
    EXPECT_THAT((*r)[i].task.status().message(), HasSubstr(want[i])) << i;
  }
  EXPECT_EQ((*r)[8].task.status().code(), Code::kUnprocessable);
}

TEST(ReadFollowupsTest, ListLimits) {
  // Given a non-array, too many specs or too deep a nesting, then the list is refused.
  EXPECT_THAT(ReadFollowups(R"({"action":"a"})", "on_success").status().message(),
              HasSubstr("on_success: must be an array"));
  std::string many = "[";
  for (int i = 0; i <= kMaxFollowups; ++i) many += std::string(i ? "," : "") + R"({"action":"a"})";
  many += "]";
  EXPECT_THAT(ReadFollowups(many, "on_success").status().message(), HasSubstr("at most 100"));
  std::string deep = R"({"action":"a"})";
  for (int i = 0; i < kMaxFollowupNesting; ++i) deep = R"({"action":"a","on_success":[)" + deep + "]}";
  EXPECT_THAT(ReadFollowups("[" + deep + "]", "on_success").status().message(),
              HasSubstr("nest at most"));
  auto flat = ReadFollowups(R"([{"action":"a","on_success":[{"action":"b"},{"action":"c"}]}])",
                            "on_success", true);
  ASSERT_TRUE(flat.ok());
  ASSERT_EQ(flat->size(), 3u);
  EXPECT_EQ((*flat)[2].path, "on_success[0].on_success[1]");
  EXPECT_EQ((*flat)[2].task->action, "c");
}

TEST(PlanFollowupsTest, FillsInFromResultPayloadAndTask) {
  // Given an on_success list with placeholders, then the follow-up is filled in, typed,
  // and carries parent, depth and trace; the nested list stays unfilled.
  Task p = Parent(R"([{"action":"learn","payload":{"x":"{{result.x}}","tags":"{{result.tags}}",
      "note":"from {{task.action}} {{payload.url}}"},"idempotency_key":"learn:{{result.x}}",
      "on_success":[{"action":"c","payload":{"y":"{{result.y}}"}}]}])",
                  2);
  auto plan = PlanFollowups(p, R"({"x":42,"tags":["a","b"]})", {});
  ASSERT_EQ(plan.size(), 1u);
  ASSERT_EQ(plan[0].outcome, PlannedFollowup::kCreate) << plan[0].reason;
  const NewTask& t = plan[0].task;
  EXPECT_EQ(t.payload, R"({"x":42,"tags":["a","b"],"note":"from fetch https://e.x/1"})");
  EXPECT_EQ(t.idempotency_key, "learn:42");
  EXPECT_EQ(t.parent_id, "P1");
  EXPECT_EQ(t.depth, 3);
  EXPECT_EQ(t.trace_id, p.trace_id);
  EXPECT_EQ(t.on_success, R"([{"action":"c","payload":{"y":"{{result.y}}"}}])");
}

TEST(PlanFollowupsTest, ResultEnqueueListIsPlannedAfterOnSuccess) {
  // Given on_success and a result with "enqueue", then both, on_success first.
  auto plan = PlanFollowups(Parent(R"([{"action":"a"}])"),
                            R"({"enqueue":[{"action":"b","payload":{"n":"{{payload.n}}"}}]})", {});
  ASSERT_EQ(plan.size(), 2u);
  EXPECT_EQ(plan[0].task.action, "a");
  EXPECT_EQ(plan[1].path, "result.enqueue[0]");
  EXPECT_EQ(plan[1].task.payload, R"({"n":7})");
  // A result that is not an object, or whose enqueue is null, asks for nothing.
  EXPECT_TRUE(PlanFollowups(Parent(""), R"(["enqueue"])", {}).empty());
  EXPECT_TRUE(PlanFollowups(Parent(""), R"({"enqueue":null})", {}).empty());
  auto bad = PlanFollowups(Parent(""), R"({"enqueue":"soon"})", {});
  ASSERT_EQ(bad.size(), 1u);
  EXPECT_EQ(bad[0].outcome, PlannedFollowup::kFailed);
  EXPECT_THAT(bad[0].reason, HasSubstr("result.enqueue: must be an array"));
}

TEST(PlanFollowupsTest, MissingValuesDepthAndChecksAreNotCreated) {
  // Given a missing value, a depth past the limit and a failing check, then each is
  // planned as failed or refused with its reason, and the others still are created.
  FollowupOptions o;
  o.max_depth = 3;
  o.check = [](const NewTask& t, const std::string& prefix) {
    return t.action == "bad" ? Status(Code::kUnprocessable, prefix + "payload: no") : Status::Ok();
  };
  auto plan = PlanFollowups(Parent(R"([{"action":"a","payload":{"v":"{{result.missing}}"}},
      {"action":"bad"},{"action":"ok"}])"),
                            R"({"x":1})", o);
  ASSERT_EQ(plan.size(), 3u);
  EXPECT_EQ(plan[0].outcome, PlannedFollowup::kFailed);
  EXPECT_THAT(plan[0].reason, HasSubstr("on_success[0].payload.v: {{result.missing}}"));
  EXPECT_EQ(plan[1].outcome, PlannedFollowup::kFailed);
  EXPECT_EQ(plan[1].reason, "on_success[1].payload: no");
  EXPECT_EQ(plan[2].outcome, PlannedFollowup::kCreate);
  auto deep = PlanFollowups(Parent(R"([{"action":"a"}])", 3), "", o);
  ASSERT_EQ(deep.size(), 1u);
  EXPECT_EQ(deep[0].outcome, PlannedFollowup::kRefused);
  EXPECT_EQ(deep[0].depth, 4);
  EXPECT_EQ(deep[0].action, "a");
  EXPECT_THAT(deep[0].reason, HasSubstr("past max_depth 3"));
}

}  // namespace
}  // namespace resonance
