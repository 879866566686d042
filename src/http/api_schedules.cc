// Schedules, target sets and gaps (docs/schedules.md): thin handlers over the Scheduler,
// which renders the JSON.
#include "core/json_writer.h"
#include "engine/scheduler.h"
#include "http/api.h"
#include "http/json_body.h"

namespace resonance::http {
namespace od = simdjson::ondemand;

namespace {

Status CheckName(const std::string& name, const char* what) {
  if (ValidScheduleName(name)) return Status::Ok();
  return Status(Code::kInvalidArgument,
                std::string(what) + " name: must be 1 to 100 of A-Z a-z 0-9 _ . -");
}

}  // namespace

void Api::CreateSchedule(Request& req, Respond respond) {
  auto spec = ParseScheduleSpec(req.body);
  if (!spec.ok()) return respond(ErrorReply(spec.status()));
  options_.scheduler->Create(std::move(*spec), [this, respond](const Status& s, std::string json) {
    OnIo([respond, s, json = std::move(json)]() mutable {
      if (!s.ok()) return respond(ErrorReply(s));
      respond(JsonReply(201, std::move(json)));
    });
  });
}

void Api::ListSchedules(Request&, Respond respond) {
  respond(JsonReply(200, options_.scheduler->List()));
}

void Api::GetSchedule(Request& req, Respond respond) {
  auto json = options_.scheduler->Get(req.params[0]);
  if (!json.ok()) return respond(ErrorReply(json.status()));
  respond(JsonReply(200, std::move(*json)));
}

void Api::PauseSchedule(Request& req, Respond respond, bool paused) {
  options_.scheduler->SetPaused(req.params[0], paused,
                                [this, respond](const Status& s, std::string json) {
                                  OnIo([respond, s, json = std::move(json)]() mutable {
                                    if (!s.ok()) return respond(ErrorReply(s));
                                    respond(JsonReply(200, std::move(json)));
                                  });
                                });
}

void Api::DeleteSchedule(Request& req, Respond respond) {
  std::string name = req.params[0];
  options_.scheduler->Delete(name, [this, name, respond](const Status& s) {
    OnIo([name, respond, s] {
      if (!s.ok()) return respond(ErrorReply(s));
      std::string body;
      JsonWriter(body).BeginObject().Key("name").String(name).Key("deleted").Bool(true).EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::ListTargetSets(Request&, Respond respond) {
  respond(JsonReply(200, options_.scheduler->ListTargetSets()));
}

void Api::GetTargetSet(Request& req, Respond respond) {
  auto json = options_.scheduler->GetTargetSet(req.params[0]);
  if (!json.ok()) return respond(ErrorReply(json.status()));
  respond(JsonReply(200, std::move(*json)));
}

void Api::PutTargetSet(Request& req, Respond respond) {
  std::string name = req.params[0];
  if (Status s = CheckName(name, "target set"); !s.ok()) return respond(ErrorReply(s));
  thread_local od::parser parser;
  od::document doc;
  auto obj = ParseObject(req.body, parser, doc);
  if (!obj.ok()) return respond(ErrorReply(obj.status()));
  std::vector<std::string> items;
  bool has_items = false;
  Status read = ForEachField(*obj, false, [&](std::string_view key, od::value v) -> Status {
    if (key != "items") return Status(Code::kInvalidArgument, std::string(key) + ": unknown field");
    has_items = true;
    od::array arr;
    if (v.get_array().get(arr))
      return Status(Code::kInvalidArgument, "items: must be an array of strings");
    size_t i = 0;
    for (auto element : arr) {
      std::string_view s;
      if (element.get_string().get(s)) {
        return Status(Code::kInvalidArgument, "items[" + std::to_string(i) + "]: must be a string");
      }
      items.emplace_back(s);
      ++i;
    }
    return Status::Ok();
  });
  if (!read.ok()) return respond(ErrorReply(read));
  if (!has_items) return respond(ErrorReply(Status(Code::kInvalidArgument, "items: is required")));
  options_.scheduler->PutTargetSet(name, std::move(items),
                                   [this, respond](const Status& s, std::string json) {
                                     OnIo([respond, s, json = std::move(json)]() mutable {
                                       if (!s.ok()) return respond(ErrorReply(s));
                                       respond(JsonReply(200, std::move(json)));
                                     });
                                   });
}

void Api::DeleteTargetSet(Request& req, Respond respond) {
  std::string name = req.params[0];
  options_.scheduler->DeleteTargetSet(name, [this, name, respond](const Status& s) {
    OnIo([name, respond, s] {
      if (!s.ok()) return respond(ErrorReply(s));
      std::string body;
      JsonWriter(body).BeginObject().Key("name").String(name).Key("deleted").Bool(true).EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::ListGaps(Request& req, Respond respond) {
  std::string schedule;
  if (const std::string* s = req.Query("schedule")) schedule = *s;
  auto limit = QueryInt(req, "limit", 100, 1, 1000);
  if (!limit.ok()) return respond(ErrorReply(limit.status()));
  // Read once the scheduler's earlier writes are durable.
  engine_.Barrier([this, schedule, limit = static_cast<int>(*limit), respond](const Status&) {
    OnIo([this, schedule, limit, respond] {
      auto gaps = options_.scheduler->Gaps(schedule, limit);
      if (!gaps.ok()) return respond(ErrorReply(gaps.status()));
      std::string body = "{\"gaps\":[";
      for (size_t i = 0; i < gaps->size(); ++i) {
        if (i) body += ',';
        body += Scheduler::GapJson((*gaps)[i]);
      }
      body += "]}";
      respond(JsonReply(200, std::move(body)));
    });
  });
}

}  // namespace resonance::http
