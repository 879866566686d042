#include "engine/followups.h"

#include <simdjson.h>

#include "core/json_writer.h"
#include "core/template.h"
#include "core/time_format.h"

namespace resonance {
namespace dom = simdjson::dom;
namespace {

Status Bad(const std::string& name, const std::string& msg) {
  return Status(Code::kInvalidArgument, name + ": " + msg);
}

struct Reader {
  int count = 0;      // specs seen in the whole tree
  bool stop = false;  // a limit of the whole tree was hit: the read ends
  bool flatten = false;
  std::vector<FollowupSpec>* flat = nullptr;

  // Reads the list `arr` at `where` (nesting level `level`, 0 = the outermost).
  Status List(dom::element arr, const std::string& where, int level,
              std::vector<FollowupSpec>& out) {
    dom::array items;
    if (arr.get_array().get(items)) return Bad(where, "must be an array of task specs");
    if (level >= kMaxFollowupNesting) {
      stop = true;
      return Bad(where, "follow-ups nest at most " + std::to_string(kMaxFollowupNesting) +
                            " levels deep");
    }
    size_t i = 0;
    for (dom::element item : items) {
      if (++count > kMaxFollowups) {
        stop = true;
        return Bad(where, "at most " + std::to_string(kMaxFollowups) +
                              " follow-ups in all (nested ones counted)");
      }
      FollowupSpec spec{where + "[" + std::to_string(i++) + "]", NewTask{}};
      const size_t at = flatten ? flat->size() : 0;
      if (flatten) flat->push_back({spec.path, NewTask{}});
      std::vector<FollowupSpec> nested;
      Status s = Spec(item, spec.path, level, spec.task.value(), nested);
      if (stop) return s;
      if (!s.ok()) spec.task = s;
      if (flatten) (*flat)[at].task = spec.task;
      out.push_back(std::move(spec));
    }
    return Status::Ok();
  }

  Status Spec(dom::element e, const std::string& path, int level, NewTask& t,
              std::vector<FollowupSpec>& nested) {
    dom::object obj;
    if (e.get_object().get(obj)) return Bad(path, "must be an object (a task spec)");
    bool has_action = false;
    for (auto field : obj) {
      const std::string_view key = field.key;
      const dom::element v = field.value;
      const std::string name = path + "." + std::string(key);
      if (v.is_null()) continue;  // null = the default
      auto str = [&](std::string& out) -> Status {
        std::string_view s;
        if (v.get_string().get(s)) return Bad(name, "must be a string");
        out.assign(s);
        return Status::Ok();
      };
      auto integer = [&](int64_t min, int64_t max, auto& out) -> Status {
        int64_t n = 0;
        if (v.get_int64().get(n) || n < min || n > max) {
          return Bad(name, "must be an integer from " + std::to_string(min) + " to " +
                               std::to_string(max));
        }
        out = static_cast<std::remove_reference_t<decltype(out)>>(n);
        return Status::Ok();
      };
      Status s;
      if (key == "action") {
        s = str(t.action);
        has_action = true;
      } else if (key == "queue") {
        s = str(t.queue);
      } else if (key == "payload") {
        if (!v.is_object()) {
          s = Bad(name, "must be an object");
        } else {
          t.payload = simdjson::minify(v);
          s = tmpl::CheckJson(t.payload, name);
        }
      } else if (key == "priority") {
        s = integer(-1000000, 1000000, t.priority);
      } else if (key == "delay_s") {
        double d = 0;
        if (v.get_double().get(d) || !(d >= 0 && d <= 1e9)) {
          s = Bad(name, "must be a number >= 0");
        } else {
          t.delay_s = d;
        }
      } else if (key == "run_at") {
        std::string text;
        s = str(text);
        if (s.ok()) {
          t.run_at = ParseRfc3339(text);
          if (!t.run_at) s = Bad(name, "must be an RFC 3339 time");
        }
      } else if (key == "max_attempts") {
        s = integer(1, 1000, t.max_attempts);
      } else if (key == "timeout_s") {
        s = integer(1, 86400, t.timeout_s);
      } else if (key == "idempotency_key") {
        s = str(t.idempotency_key);
        if (s.ok()) s = tmpl::CheckText(t.idempotency_key, name);
      } else if (key == "requires_approval") {
        if (v.get_bool().get(t.requires_approval)) s = Bad(name, "must be true or false");
      } else if (key == "limit_key") {
        s = str(t.limit_key);
      } else if (key == "cost") {
        if (v.get_double().get(t.cost)) s = Bad(name, "must be a number");
      } else if (key == "on_success") {
        s = List(v, name, level + 1, nested);
        if (s.ok()) {
          for (const auto& n : nested) {
            if (!n.task.ok()) return n.task.status();
          }
          if (!nested.empty()) t.on_success = simdjson::minify(v);
        }
      } else {
        s = Bad(name, "unknown field (a follow-up spec takes the fields of an enqueue)");
      }
      if (!s.ok()) return s;
    }
    if (!has_action) return Bad(path + ".action", "is required");
    Status s = ValidateNewTask(t);
    if (!s.ok()) return Status(s.code(), path + "." + s.message());
    return Status::Ok();
  }
};

std::string TaskRootJson(const Task& t) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject().Key("id").String(t.id).Key("action").String(t.action);
  w.Key("queue").String(t.queue).Key("depth").Int(t.depth);
  w.Key("trace_id").String(t.trace_id).Key("attempt").Int(t.attempt).EndObject();
  return out;
}

// Fills in one read spec and decides its outcome.
PlannedFollowup Plan(FollowupSpec& spec, const Task& parent, const tmpl::Scope& scope,
                     const FollowupOptions& options) {
  PlannedFollowup p;
  p.path = spec.path;
  p.depth = parent.depth + 1;
  if (!spec.task.ok()) {
    p.outcome = PlannedFollowup::kFailed;
    p.reason = spec.task.status().message();
    return p;
  }
  NewTask& t = spec.task.value();
  p.action = t.action;
  if (p.depth > options.max_depth) {
    p.outcome = PlannedFollowup::kRefused;
    p.reason = "depth " + std::to_string(p.depth) + " is past max_depth " +
               std::to_string(options.max_depth);
    return p;
  }
  auto fail = [&](std::string reason) {
    p.outcome = PlannedFollowup::kFailed;
    p.reason = std::move(reason);
    return p;
  };
  auto payload = tmpl::RenderJson(t.payload, scope, p.path + ".payload");
  if (!payload.ok()) return fail(payload.status().message());
  t.payload = std::move(*payload);
  auto key = tmpl::RenderText(t.idempotency_key, scope, p.path + ".idempotency_key");
  if (!key.ok()) return fail(key.status().message());
  t.idempotency_key = std::move(*key);
  if (Status s = ValidateNewTask(t); !s.ok()) return fail(p.path + "." + s.message());
  if (options.check) {
    if (Status s = options.check(t, p.path + "."); !s.ok()) return fail(s.message());
  }
  t.parent_id = parent.id;
  t.trace_id = parent.trace_id;
  t.depth = p.depth;
  p.task = std::move(t);
  return p;
}

}  // namespace

Result<std::vector<FollowupSpec>> ReadFollowups(std::string_view json, const std::string& where,
                                                bool flatten) {
  dom::parser parser;
  dom::element e;
  if (parser.parse(json.data(), json.size()).get(e)) return Bad(where, "not valid JSON");
  Reader r;
  std::vector<FollowupSpec> flat;
  r.flatten = flatten;
  r.flat = &flat;
  std::vector<FollowupSpec> out;
  if (Status s = r.List(e, where, 0, out); !s.ok()) return s;
  if (flatten) return flat;
  return out;
}

bool MayEnqueue(std::string_view result) {
  return result.find("\"enqueue\"") != std::string_view::npos;
}

std::vector<PlannedFollowup> PlanFollowups(const Task& parent, std::string_view result,
                                           const FollowupOptions& options) {
  std::vector<PlannedFollowup> out;
  std::vector<FollowupSpec> specs;
  auto list_failed = [&](const std::string& path, const Status& s) {
    PlannedFollowup p;
    p.outcome = PlannedFollowup::kFailed;
    p.path = path;
    p.depth = parent.depth + 1;
    p.reason = s.message();
    out.push_back(std::move(p));
  };
  if (!parent.on_success.empty()) {
    auto read = ReadFollowups(parent.on_success, "on_success");
    if (read.ok()) {
      specs = std::move(*read);
    } else {
      list_failed("on_success", read.status());
    }
  }
  if (!result.empty() && MayEnqueue(result)) {
    dom::parser parser;
    dom::element e, list;
    dom::object obj;
    if (!parser.parse(result.data(), result.size()).get(e) && !e.get_object().get(obj) &&
        !obj.at_key("enqueue").get(list) && !list.is_null()) {
      auto read = ReadFollowups(simdjson::minify(list), "result.enqueue");
      if (read.ok()) {
        for (auto& s : *read) specs.push_back(std::move(s));
      } else {
        list_failed("result.enqueue", read.status());
      }
    }
  }
  if (specs.empty()) return out;
  tmpl::Scope scope;
  // The stored parent and a result the API read are valid JSON; a failure here means
  // a reference into that root is missing, which Plan reports per follow-up.
  (void)scope.Set("result", result);
  (void)scope.Set("payload", parent.payload.empty() ? std::string_view("{}") : parent.payload);
  (void)scope.Set("task", TaskRootJson(parent));
  for (auto& spec : specs) out.push_back(Plan(spec, parent, scope, options));
  return out;
}

}  // namespace resonance
