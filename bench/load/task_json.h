#pragma once

#include <simdjson.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "http_client.h"

// Request bodies and response readers for the part of the task API the benchmark
// uses (contract: notes/api-spec.md). Builders clear and refill a caller-owned string,
// so a connection reuses one buffer for its whole run. Readers parse a response body
// in place (HttpResponse keeps simdjson's padding) with a caller-owned simdjson DOM
// parser; both are per connection, not thread-safe. DOM, not On-Demand: the DOM parser
// picks the AVX2 kernel at run time, while On-Demand is compiled for the builtin
// kernel, which is the slow fallback without -march flags. Readers return false and set `error` to
// a short description when the answer does not have the documented shape.
namespace resonance::load {

// Every benchmark task: action "bench.noop" on one queue, with a payload of about
// `payload_bytes` bytes: {"seq":N,"sent_us":T,"pad":"xx…"}. `seq` numbers the tasks
// of a phase from 0 so consumers can detect duplicates and losses; `sent_us` is the
// client's steady-clock time (SteadyMicros) when the enqueue request was built.
class TaskBodyBuilder {
 public:
  TaskBodyBuilder(std::string queue, int payload_bytes);

  // Body for POST /api/tasks.
  void Single(std::string& out, int64_t seq, int64_t sent_us) const;
  // Body for POST /api/tasks/batch: tasks first_seq .. first_seq + n - 1.
  void Batch(std::string& out, int64_t first_seq, int n, int64_t sent_us) const;

  const std::string& queue() const { return queue_; }

 private:
  void AppendTask(std::string& out, int64_t seq, int64_t sent_us) const;
  std::string queue_;
  std::string pad_;
};

// Body for POST /api/lease on one queue.
void BuildLeaseBody(std::string& out, std::string_view worker, std::string_view queue, int max,
                    int wait_ms);

// 201 answer of POST /api/tasks: true when it is a task object with a string "id".
bool ReadCreatedTask(simdjson::dom::parser& parser, HttpResponse& resp, std::string& error);

// 201 answer of POST /api/tasks/batch: the number of tasks in {"tasks":[...]}.
bool ReadCreatedBatch(simdjson::dom::parser& parser, HttpResponse& resp, int64_t& count,
                      std::string& error);

// What a consumer needs from one leased task, read from its payload.
struct LeasedTask {
  int64_t seq = -1;  // -1 when the payload has no seq (not a benchmark task)
  int64_t sent_us = 0;
};

// 200 answer of POST /api/lease. Fills `tasks` (cleared first) and writes the body of
// the matching POST /api/complete ({"tasks":[{"id","lease"},...]}) into `complete_body`,
// so the caller can acknowledge everything it leased in one request. A task without
// "id" or "lease" is an error.
bool ReadLease(simdjson::dom::parser& parser, HttpResponse& resp, std::vector<LeasedTask>& tasks,
               std::string& complete_body, std::string& error);

// 200 answer of POST /api/complete (batch form): items whose state is "succeeded" are
// counted in `succeeded`, items with "error" or any other state in `failed`.
bool ReadCompleted(simdjson::dom::parser& parser, HttpResponse& resp, int64_t& succeeded,
                   int64_t& failed, std::string& error);

}  // namespace resonance::load
