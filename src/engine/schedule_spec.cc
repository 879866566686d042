#include "engine/schedule_spec.h"

#include <simdjson.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/json_writer.h"

namespace resonance {
namespace {

Status Bad(const std::string& field, const std::string& msg) {
  return Status(Code::kInvalidArgument, field + ": " + msg);
}

Status ReadText(simdjson::dom::element v, const char* field, std::string& out, size_t max) {
  std::string_view s;
  if (v.get_string().get(s)) return Bad(field, "must be a string");
  if (s.size() > max) return Bad(field, "at most " + std::to_string(max) + " characters");
  out = std::string(s);
  return Status::Ok();
}

Status ReadInt(simdjson::dom::element v, const char* field, int64_t min, int64_t max,
               int32_t& out) {
  int64_t i = 0;
  if (v.get_int64().get(i) || i < min || i > max) {
    return Bad(field,
               "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
  }
  out = static_cast<int32_t>(i);
  return Status::Ok();
}

Status ReadBool(simdjson::dom::element v, const char* field, bool& out) {
  if (v.get_bool().get(out)) return Bad(field, "must be true or false");
  return Status::Ok();
}

}  // namespace

const char* CatchUpName(CatchUp c) {
  switch (c) {
    case CatchUp::kSkip:
      return "skip";
    case CatchUp::kLatest:
      return "latest";
    case CatchUp::kAll:
      return "all";
  }
  return "latest";
}

bool ValidScheduleName(std::string_view name) {
  if (name.empty() || name.size() > 100) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
  });
}

std::optional<Micros> ParseDurationText(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t n = 0;
  auto r = std::from_chars(s.data(), s.data() + s.size(), n);
  if (r.ec != std::errc() || n < 0 || n > 10LL * 365 * 86400) return std::nullopt;
  std::string_view unit(r.ptr, static_cast<size_t>(s.data() + s.size() - r.ptr));
  int64_t mult = 1;
  if (unit.empty() || unit == "s") {
    mult = 1;
  } else if (unit == "m") {
    mult = 60;
  } else if (unit == "h") {
    mult = 3600;
  } else if (unit == "d") {
    mult = 86400;
  } else {
    return std::nullopt;
  }
  return n * mult * kMicrosPerSecond;
}

Result<ScheduleSpec> ParseScheduleSpec(std::string_view json, std::string name,
                                       const std::vector<std::string>& also_allowed) {
  simdjson::dom::parser parser;
  simdjson::dom::parser payload_parser;  // a string payload's own document
  simdjson::dom::element root;
  if (parser.parse(json.data(), json.size()).get(root)) {
    return Status(Code::kInvalidJson, "the schedule is not well-formed JSON");
  }
  simdjson::dom::object obj;
  if (root.get_object().get(obj))
    return Status(Code::kInvalidArgument, "a schedule must be a JSON object");
  ScheduleSpec s;
  s.name = std::move(name);
  bool has_cron = false, has_action = false;
  for (auto field : obj) {
    const std::string_view key = field.key;
    simdjson::dom::element v = field.value;
    if (v.is_null()) continue;  // null: the default
    Status st;
    if (key == "name") {
      std::string n;
      st = ReadText(v, "name", n, 100);
      if (st.ok() && !s.name.empty() && n != s.name) {
        st = Bad("name", "'" + n + "' differs from the schedule's name '" + s.name + "'");
      }
      if (st.ok()) s.name = n;
    } else if (key == "cron") {
      st = ReadText(v, "cron", s.cron, 200);
      has_cron = true;
    } else if (key == "time_zone") {
      st = ReadText(v, "time_zone", s.time_zone, 100);
    } else if (key == "action") {
      st = ReadText(v, "action", s.action, 200);
      has_action = true;
    } else if (key == "queue") {
      st = ReadText(v, "queue", s.queue, 200);
    } else if (key == "payload") {
      // An object, or a string holding one (the config's JSON form).
      simdjson::dom::element p = v;
      simdjson::dom::element inner;
      std::string_view text;
      if (v.get_string().get(text) == simdjson::SUCCESS) {
        if (payload_parser.parse(text.data(), text.size()).get(inner)) {
          return Bad("payload", "must be a JSON object (or a string holding one)");
        }
        p = inner;
      }
      if (!p.is_object()) {
        st = Bad("payload", "must be a JSON object (or a string holding one)");
      } else {
        s.payload = simdjson::minify(p);
      }
    } else if (key == "priority") {
      st = ReadInt(v, "priority", -1000000, 1000000, s.priority);
    } else if (key == "max_attempts") {
      st = ReadInt(v, "max_attempts", 1, 1000, s.max_attempts);
    } else if (key == "timeout_s") {
      st = ReadInt(v, "timeout_s", 1, 86400, s.timeout_s);
    } else if (key == "catch_up") {
      std::string c;
      st = ReadText(v, "catch_up", c, 20);
      if (c == "skip") {
        s.catch_up = CatchUp::kSkip;
      } else if (c == "latest") {
        s.catch_up = CatchUp::kLatest;
      } else if (c == "all") {
        s.catch_up = CatchUp::kAll;
      } else if (st.ok()) {
        st = Bad("catch_up", "must be \"skip\", \"latest\" or \"all\"");
      }
    } else if (key == "catch_up_max") {
      st = ReadInt(v, "catch_up_max", 1, 1000, s.catch_up_max);
    } else if (key == "paused") {
      st = ReadBool(v, "paused", s.paused);
    } else if (key == "target_set") {
      st = ReadText(v, "target_set", s.target_set, 100);
      if (st.ok() && !ValidScheduleName(s.target_set)) {
        st = Bad("target_set", "must be 1 to 100 of A-Z a-z 0-9 _ . -");
      }
    } else if (key == "item_field") {
      st = ReadText(v, "item_field", s.item_field, 200);
      if (st.ok() && s.item_field.empty()) st = Bad("item_field", "must not be empty");
    } else if (key == "gap_grace" || key == "gap_grace_s") {
      const char* f = key == "gap_grace" ? "gap_grace" : "gap_grace_s";
      double d = 0;
      std::string_view text;
      std::optional<Micros> g;
      if (v.get_double().get(d) == simdjson::SUCCESS) {
        if (std::isfinite(d) && d >= 0 && d <= 10.0 * 365 * 86400) g = SecondsToMicros(d);
      } else if (v.get_string().get(text) == simdjson::SUCCESS) {
        g = ParseDurationText(text);
      }
      if (!g) {
        st = Bad(f,
                 "must be a number of seconds >= 0 or a duration such as \"90s\", \"10m\", \"2h\"");
      } else {
        s.gap_grace = *g;
      }
    } else if (key == "backfill") {
      st = ReadBool(v, "backfill", s.backfill);
    } else if (std::find(also_allowed.begin(), also_allowed.end(), key) == also_allowed.end()) {
      st = Bad(std::string(key), "unknown field");
    }
    if (!st.ok()) return st;
  }
  if (!ValidScheduleName(s.name)) return Bad("name", "must be 1 to 100 of A-Z a-z 0-9 _ . -");
  if (!has_cron || s.cron.empty())
    return Bad("cron", "is required (e.g. \"*/5 * * * *\" or \"@every 30m\")");
  if (!has_action || s.action.empty()) return Bad("action", "is required");
  if (s.queue.empty()) return Bad("queue", "must be 1 to 200 characters");
  if (s.time_zone.empty()) return Bad("time_zone", "must not be empty");
  if (s.backfill && s.gap_grace == 0) {
    return Bad("backfill",
               "needs gap_grace (backfill tasks are made for gaps, and gaps are only "
               "looked for with a gap_grace)");
  }
  if (!s.target_set.empty()) {
    simdjson::dom::parser p2;
    simdjson::dom::object payload;
    if (!p2.parse(s.payload).get_object().get(payload) &&
        payload.at_key(s.item_field).error() == simdjson::SUCCESS) {
      return Bad("payload." + s.item_field,
                 "is set per item by the target set fan-out; leave it out of the payload");
    }
  }
  return s;
}

std::string ScheduleSpecFields(const ScheduleSpec& s) {
  std::string out;
  JsonWriter w(out);
  w.Key("name").String(s.name).Key("cron").String(s.cron).Key("time_zone").String(s.time_zone);
  w.Key("action").String(s.action).Key("queue").String(s.queue).Key("payload").Raw(s.payload);
  w.Key("priority").Int(s.priority).Key("max_attempts").Int(s.max_attempts);
  w.Key("timeout_s").Int(s.timeout_s).Key("catch_up").String(CatchUpName(s.catch_up));
  w.Key("catch_up_max").Int(s.catch_up_max).Key("paused").Bool(s.paused);
  w.Key("target_set").StringOrNull(s.target_set).Key("item_field").String(s.item_field);
  w.Key("gap_grace_s").Double(static_cast<double>(s.gap_grace) / kMicrosPerSecond);
  w.Key("backfill").Bool(s.backfill);
  return out;
}

std::string PayloadWithItem(const std::string& payload, const std::string& field,
                            const std::string& item) {
  std::string out = "{";
  AppendJsonString(out, field);
  out += ':';
  AppendJsonString(out, item);
  const size_t open = payload.find('{');
  if (open == std::string::npos) return out + "}";
  const size_t next = payload.find_first_not_of(" \t\r\n", open + 1);
  if (next == std::string::npos || payload[next] == '}') return out + "}";
  out += ',';
  out.append(payload, next, std::string::npos);
  return out;
}

}  // namespace resonance
