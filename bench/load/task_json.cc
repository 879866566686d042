#include "task_json.h"

#include "core/json_writer.h"

namespace resonance::load {
namespace {

// Size of {"seq":N,"sent_us":T,"pad":""} with typical N and T; the pad fills the rest.
constexpr int kPayloadSkeletonBytes = 46;

bool Fail(std::string& error, std::string_view what, const HttpResponse& resp) {
  error.assign(what);
  error.append(": ");
  error.append(resp.body.substr(0, 300));
  return false;
}

// Parses in place: HttpClient keeps kBodyPadding spare bytes after every body.
simdjson::error_code Parse(simdjson::dom::parser& parser, const HttpResponse& resp,
                           simdjson::dom::element& doc, std::string& error) {
  auto code = parser.parse(resp.body.data(), resp.body.size(), false).get(doc);
  if (code != simdjson::SUCCESS) Fail(error, simdjson::error_message(code), resp);
  return code;
}

}  // namespace

TaskBodyBuilder::TaskBodyBuilder(std::string queue, int payload_bytes)
    : queue_(std::move(queue)),
      pad_(static_cast<size_t>(std::max(0, payload_bytes - kPayloadSkeletonBytes)), 'x') {}

void TaskBodyBuilder::AppendTask(std::string& out, int64_t seq, int64_t sent_us) const {
  JsonWriter w(out);
  w.BeginObject().Key("action").String("bench.noop").Key("queue").String(queue_);
  w.Key("payload").BeginObject().Key("seq").Int(seq).Key("sent_us").Int(sent_us);
  w.Key("pad").String(pad_).EndObject().EndObject();
}

void TaskBodyBuilder::Single(std::string& out, int64_t seq, int64_t sent_us) const {
  out.clear();
  AppendTask(out, seq, sent_us);
}

void TaskBodyBuilder::Batch(std::string& out, int64_t first_seq, int n, int64_t sent_us) const {
  out.clear();
  out.append("{\"tasks\":[");
  for (int i = 0; i < n; ++i) {
    if (i > 0) out.push_back(',');
    AppendTask(out, first_seq + i, sent_us);
  }
  out.append("]}");
}

void BuildLeaseBody(std::string& out, std::string_view worker, std::string_view queue, int max,
                    int wait_ms) {
  out.clear();
  JsonWriter w(out);
  w.BeginObject().Key("worker").String(worker);
  w.Key("queues").BeginArray().String(queue).EndArray();
  w.Key("max").Int(max).Key("wait_ms").Int(wait_ms).EndObject();
}

bool ReadCreatedTask(simdjson::dom::parser& parser, HttpResponse& resp, std::string& error) {
  simdjson::dom::element doc;
  std::string_view id;
  if (Parse(parser, resp, doc, error) != simdjson::SUCCESS) return false;
  if (doc["id"].get_string().get(id) != simdjson::SUCCESS || id.empty()) {
    return Fail(error, "created task without id", resp);
  }
  return true;
}

bool ReadCreatedBatch(simdjson::dom::parser& parser, HttpResponse& resp, int64_t& count,
                      std::string& error) {
  simdjson::dom::element doc;
  simdjson::dom::array tasks;
  if (Parse(parser, resp, doc, error) != simdjson::SUCCESS) return false;
  if (doc["tasks"].get_array().get(tasks) != simdjson::SUCCESS) {
    return Fail(error, "batch answer without tasks array", resp);
  }
  count = static_cast<int64_t>(tasks.size());
  return true;
}

bool ReadLease(simdjson::dom::parser& parser, HttpResponse& resp, std::vector<LeasedTask>& tasks,
               std::string& complete_body, std::string& error) {
  tasks.clear();
  complete_body.clear();
  simdjson::dom::element doc;
  simdjson::dom::array items;
  if (Parse(parser, resp, doc, error) != simdjson::SUCCESS) return false;
  if (doc["tasks"].get_array().get(items) != simdjson::SUCCESS) {
    return Fail(error, "lease answer without tasks array", resp);
  }
  JsonWriter w(complete_body);
  w.BeginObject().Key("tasks").BeginArray();
  for (simdjson::dom::element item : items) {
    std::string_view id, lease;
    if (item["id"].get_string().get(id) != simdjson::SUCCESS ||
        item["lease"].get_string().get(lease) != simdjson::SUCCESS) {
      return Fail(error, "leased task without id/lease", resp);
    }
    LeasedTask t;
    simdjson::dom::object payload;
    if (item["payload"].get_object().get(payload) == simdjson::SUCCESS) {
      if (payload["seq"].get_int64().get(t.seq) != simdjson::SUCCESS) t.seq = -1;
      if (payload["sent_us"].get_int64().get(t.sent_us) != simdjson::SUCCESS) t.sent_us = 0;
    }
    w.BeginObject().Key("id").String(id).Key("lease").String(lease).EndObject();
    tasks.push_back(t);
  }
  w.EndArray().EndObject();
  return true;
}

bool ReadCompleted(simdjson::dom::parser& parser, HttpResponse& resp, int64_t& succeeded,
                   int64_t& failed, std::string& error) {
  succeeded = failed = 0;
  simdjson::dom::element doc;
  simdjson::dom::array items;
  if (Parse(parser, resp, doc, error) != simdjson::SUCCESS) return false;
  if (doc["tasks"].get_array().get(items) != simdjson::SUCCESS) {
    return Fail(error, "complete answer without tasks array", resp);
  }
  for (simdjson::dom::element item : items) {
    std::string_view state;
    if (item["state"].get_string().get(state) == simdjson::SUCCESS && state == "succeeded") {
      ++succeeded;
    } else {
      ++failed;
      if (error.empty()) Fail(error, "complete item not succeeded", resp);
    }
  }
  return true;
}

}  // namespace resonance::load
