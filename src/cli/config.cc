#include "cli/config.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <set>
#include <toml.hpp>

#include "core/json_writer.h"
#include "core/time_format.h"

namespace resonance {
namespace {

Status Bad(const std::string& path, const std::string& msg) {
  return Status(Code::kInvalidArgument, path + ": " + msg);
}

// Reads one [retry.CLASS] table into policy. Keys: base_s, factor, cap_s, max_retries.
Status ReadClassPolicies(const toml::value& table, const std::string& where, RetryPolicy& policy) {
  for (const auto& [cls_name, cls_table] : table.as_table()) {
    auto cls = ParseErrorClass(cls_name);
    if (!cls) return Status(Code::kInvalidArgument, where + "." + cls_name + ": unknown error class");
    if (!cls_table.is_table()) return Status(Code::kInvalidArgument, where + "." + cls_name + ": must be a table");
    ClassPolicy& cp = policy.For(*cls);
    for (const auto& [key, v] : cls_table.as_table()) {
      const std::string name = where + "." + cls_name + "." + key;
      auto number = [&](double& out) -> Status {
        if (v.is_floating()) {
          out = v.as_floating();
        } else if (v.is_integer()) {
          out = static_cast<double>(v.as_integer());
        } else {
          return Status(Code::kInvalidArgument, name + ": must be a number");
        }
        if (!(out >= 0)) return Status(Code::kInvalidArgument, name + ": must be >= 0");
        return Status::Ok();
      };
      Status s;
      if (key == "base_s") {
        s = number(cp.base_s);
      } else if (key == "factor") {
        s = number(cp.factor);
      } else if (key == "cap_s") {
        s = number(cp.cap_s);
      } else if (key == "max_retries") {
        if (!v.is_integer() || v.as_integer() < 0 || v.as_integer() > 1000) {
          return Status(Code::kInvalidArgument, name + ": must be an integer from 0 to 1000");
        }
        cp.max_retries = static_cast<int>(v.as_integer());
      } else {
        return Status(Code::kInvalidArgument, name + ": unknown key");
      }
      if (!s.ok()) return s;
    }
  }
  return Status::Ok();
}

// Checks a table's keys against `known` and offers typed readers for them.
class TableReader {
 public:
  TableReader(const toml::value& root, std::string name) : name_(std::move(name)) {
    if (root.contains(name_)) table_ = &root.at(name_);
  }
  // A nested table already found; `path` names it in messages ("alerts.rules.X").
  TableReader(const toml::value* table, std::string path) : name_(std::move(path)), table_(table) {}
  const toml::value* table() const { return table_; }
  const toml::value* Find(const char* key) const {
    if (!table_ || !table_->is_table() || !table_->contains(key)) return nullptr;
    return &table_->at(key);
  }
  // A table of strings, e.g. labels = { team = "rpa" }.
  Status StringMap(const char* key, std::vector<std::pair<std::string, std::string>>& out) const {
    const toml::value* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_table()) return Error(key, "must be a table of strings");
    out.clear();
    for (const auto& [k, item] : v->as_table()) {
      if (!item.is_string()) return Error(std::string(key) + "." + k, "must be a string");
      out.emplace_back(k, item.as_string().str);
    }
    return Status::Ok();
  }
  Status Number(const char* key, double& out) const {
    const toml::value* v = Find(key);
    if (!v) return Status::Ok();
    if (v->is_floating()) {
      out = v->as_floating();
    } else if (v->is_integer()) {
      out = static_cast<double>(v->as_integer());
    } else {
      return Error(key, "must be a number");
    }
    return Status::Ok();
  }
  Status Check(const std::set<std::string>& known) const {
    if (!table_) return Status::Ok();
    if (!table_->is_table()) return Error("", "must be a table");
    for (const auto& [key, v] : table_->as_table()) {
      if (!known.count(key)) return Error(key, "unknown key");
    }
    return Status::Ok();
  }
  Status Int(const char* key, int64_t min, int64_t max, auto& out) const {
    const toml::value* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_integer() || v->as_integer() < min || v->as_integer() > max) {
      return Error(key, "must be an integer from " + std::to_string(min) + " to " +
                            std::to_string(max));
    }
    out = static_cast<std::remove_reference_t<decltype(out)>>(v->as_integer());
    return Status::Ok();
  }
  Status Bool(const char* key, bool& out) const {
    const toml::value* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_boolean()) return Error(key, "must be true or false");
    out = v->as_boolean();
    return Status::Ok();
  }
  // A number from 0 to 1 (integer 0 or 1 accepted too).
  Status Fraction(const char* key, double& out) const {
    const toml::value* v = Find(key);
    if (!v) return Status::Ok();
    double d = v->is_floating() ? v->as_floating()
               : v->is_integer() ? static_cast<double>(v->as_integer())
                                 : -1;
    if (!(d >= 0 && d <= 1)) return Error(key, "must be a number from 0 to 1");
    out = d;
    return Status::Ok();
  }
  Status String(const char* key, std::string& out) const {
    const toml::value* v = Find(key);
    if (!v) return Status::Ok();
    if (!v->is_string()) return Error(key, "must be a string");
    out = v->as_string().str;
    return Status::Ok();
  }
  Status Error(std::string_view key, const std::string& msg) const {
    return Status(Code::kInvalidArgument,
                  name_ + (key.empty() ? "" : "." + std::string(key)) + ": " + msg);
  }

 private:
  std::string name_;
  const toml::value* table_ = nullptr;
};

// The flow-control keys of a [queues."X"] or [actions."X"] table.
const std::set<std::string> kLimitKeys = {"rate",     "burst",    "concurrency",    "key_field",
                                          "key_rate", "key_burst", "key_concurrency"};

Status ReadRate(const TableReader& t, const char* key, const char* burst_key, RateLimit& out) {
  if (const toml::value* v = t.Find(key)) {
    if (v->is_string()) {
      auto r = ParseRate(v->as_string().str);
      if (!r.ok()) return t.Error(key, r.status().message());
      out.per_second = *r;
    } else {
      double d = -1;
      if (Status s = t.Number(key, d); !s.ok() || !(d > 0 && d <= 1e9)) {
        return t.Error(key, "must be a rate such as \"20/s\" or \"1000/min\", or tasks per second > 0");
      }
      out.per_second = d;
    }
  }
  if (t.Find(burst_key)) {
    double b = -1;
    if (Status s = t.Number(burst_key, b); !s.ok() || !(b >= 1 && b <= 1e9)) {
      return t.Error(burst_key, "must be a number from 1 to 1e9");
    }
    if (out.per_second <= 0) return t.Error(burst_key, std::string("needs ") + key);
    out.burst = b;
  }
  return Status::Ok();
}

Status ReadLimits(const TableReader& t, FlowLimits& l) {
  for (Status s : {ReadRate(t, "rate", "burst", l.rate), ReadRate(t, "key_rate", "key_burst", l.key_rate),
                   t.Int("concurrency", 1, 1000000, l.concurrency),
                   t.Int("key_concurrency", 1, 1000000, l.key_concurrency),
                   t.String("key_field", l.key_field)}) {
    if (!s.ok()) return s;
  }
  if (l.key_field.size() > 200) return t.Error("key_field", "at most 200 characters");
  return Status::Ok();
}

// [breaker] or [actions."X".breaker] over `b` (which holds the defaults).
Status ReadBreaker(const TableReader& t, BreakerOptions& b) {
  double window_s = static_cast<double>(b.window) / kMicrosPerSecond;
  double cooldown_s = static_cast<double>(b.cooldown) / kMicrosPerSecond;
  for (Status s : {t.Check({"enabled", "window_s", "min_attempts", "failure_ratio", "cooldown_s"}),
                   t.Bool("enabled", b.enabled), t.Number("window_s", window_s),
                   t.Int("min_attempts", 1, 1000000, b.min_attempts),
                   t.Fraction("failure_ratio", b.failure_ratio), t.Number("cooldown_s", cooldown_s)}) {
    if (!s.ok()) return s;
  }
  if (!(window_s >= 1 && window_s <= 86400)) return t.Error("window_s", "must be from 1 to 86400");
  if (!(cooldown_s >= 0.1 && cooldown_s <= 86400)) {
    return t.Error("cooldown_s", "must be from 0.1 to 86400");
  }
  if (b.failure_ratio <= 0) return t.Error("failure_ratio", "must be above 0");
  b.window = SecondsToMicros(window_s);
  b.cooldown = SecondsToMicros(cooldown_s);
  return Status::Ok();
}

// [queues."X"], the limits in [actions."X"], [breaker] and [actions."X".breaker].
Status ReadFlow(const toml::value& root, FlowOptions& f) {
  TableReader breaker(root, "breaker");
  if (Status s = ReadBreaker(breaker, f.breaker); breaker.table() && !s.ok()) return s;
  if (root.contains("queues")) {
    const auto& queues = root.at("queues");
    if (!queues.is_table()) return Status(Code::kInvalidArgument, "queues: must be a table");
    for (const auto& [name, table] : queues.as_table()) {
      TableReader t(&table, "queues." + name);
      if (Status s = t.Check(kLimitKeys); !s.ok()) return s;
      if (Status s = ReadLimits(t, f.queues[name]); !s.ok()) return s;
    }
  }
  if (root.contains("actions") && root.at("actions").is_table()) {
    for (const auto& [name, table] : root.at("actions").as_table()) {
      if (!table.is_table()) continue;  // LoadConfig reports it
      TableReader t(&table, "actions." + name);
      FlowLimits l;
      if (Status s = ReadLimits(t, l); !s.ok()) return s;
      if (l.Limits() || l.KeyLimits() || !l.key_field.empty()) f.actions[name] = l;
      if (const toml::value* b = t.Find("breaker")) {
        TableReader bt(b, "actions." + name + ".breaker");
        BreakerOptions bo = f.breaker;
        bo.enabled = true;
        if (Status s = ReadBreaker(bt, bo); !s.ok()) return s;
        f.breakers[name] = bo;
      }
    }
  }
  return Status::Ok();
}

// [logging], [metrics] and [tracing].
Status ReadObservability(const toml::value& root, Config& c) {
  TableReader logging(root, "logging");
  std::string level, format;
  for (Status s : {logging.Check({"level", "format", "file", "max_bytes", "keep", "access_log"}),
                   logging.String("level", level), logging.String("format", format),
                   logging.String("file", c.logging.file),
                   logging.Int("max_bytes", 0, 1LL << 40, c.logging.max_bytes),
                   logging.Int("keep", 0, 1000, c.logging.keep),
                   logging.Bool("access_log", c.logging.access_log)}) {
    if (!s.ok()) return s;
  }
  if (!level.empty()) {
    auto l = log::ParseLevel(level);
    if (!l) return logging.Error("level", "must be debug, info, warn or error");
    c.logging.level = *l;
  }
  if (!format.empty()) {
    auto f = log::ParseFormat(format);
    if (!f) return logging.Error("format", "must be json or text");
    c.logging.format = *f;
  }
  TableReader metrics(root, "metrics");
  for (Status s : {metrics.Check({"enabled", "max_actions", "max_queues"}),
                   metrics.Bool("enabled", c.metrics.enabled),
                   metrics.Int("max_actions", 1, 100000, c.metrics.max_actions),
                   metrics.Int("max_queues", 1, 100000, c.metrics.max_queues)}) {
    if (!s.ok()) return s;
  }
  TableReader tracing(root, "tracing");
  for (Status s : {tracing.Check({"otlp_endpoint", "service_name", "queue_size", "batch_size",
                                  "flush_ms", "timeout_ms"}),
                   tracing.String("otlp_endpoint", c.tracing.otlp_endpoint),
                   tracing.String("service_name", c.tracing.service_name),
                   tracing.Int("queue_size", 1, 10000000, c.tracing.queue_size),
                   tracing.Int("batch_size", 1, 100000, c.tracing.batch_size),
                   tracing.Int("flush_ms", 10, 600000, c.tracing.flush_ms),
                   tracing.Int("timeout_ms", 100, 600000, c.tracing.timeout_ms)}) {
    if (!s.ok()) return s;
  }
  if (c.tracing.service_name.empty()) return tracing.Error("service_name", "must not be empty");
  TableReader baselines(root, "baselines");
  for (Status s : {baselines.Check({"lookback_hours", "min_hours", "min_samples", "success_floor"}),
                   baselines.Int("lookback_hours", 1, 24 * 366, c.baselines.lookback_hours),
                   baselines.Int("min_hours", 1, 24 * 366, c.baselines.min_hours),
                   baselines.Int("min_samples", 1, 1000000, c.baselines.min_samples),
                   baselines.Fraction("success_floor", c.baselines.success_floor)}) {
    if (!s.ok()) return s;
  }
  return Status::Ok();
}

// One [alerts.rules.NAME] table over `r` (a built-in's defaults, or a new rule).
Status ReadRule(const TableReader& t, RuleSpec& r) {
  int64_t for_s = r.for_ / kMicrosPerSecond, hold_s = -1;
  if (r.hold) hold_s = *r.hold / kMicrosPerSecond;
  bool baseline = r.use_baseline, target = r.use_target;
  for (Status s : {t.Check({"enabled", "signal", "op", "threshold", "baseline", "target",
                            "window_minutes", "min_samples", "warning_at", "critical_at", "for_s",
                            "hold_s", "severity", "labels", "annotations", "queues",
                            "per_action"}),
                   t.Bool("per_action", r.per_action),
                   t.Bool("enabled", r.enabled), t.String("signal", r.signal),
                   t.String("op", r.op), t.Number("threshold", r.threshold),
                   t.Bool("baseline", baseline), t.Bool("target", target),
                   t.Int("window_minutes", 1, 7 * 24 * 60, r.window_minutes),
                   t.Int("min_samples", 0, 1LL << 40, r.min_samples),
                   t.Int("warning_at", 0, 1LL << 40, r.warning_at),
                   t.Int("critical_at", 0, 1LL << 40, r.critical_at),
                   t.Int("for_s", 0, 30 * 24 * 3600, for_s), t.Int("hold_s", 0, 30 * 24 * 3600, hold_s),
                   t.String("severity", r.severity), t.StringMap("labels", r.labels)}) {
    if (!s.ok()) return s;
  }
  std::vector<std::pair<std::string, std::string>> annotations;
  if (Status s = t.StringMap("annotations", annotations); !s.ok()) return s;
  for (auto& [k, v] : annotations) {  // override or add, keep the rest
    bool found = false;
    for (auto& [ek, ev] : r.annotations) {
      if (ek == k) {
        ev = v;
        found = true;
      }
    }
    if (!found) r.annotations.emplace_back(k, v);
  }
  r.use_baseline = baseline;
  r.use_target = target;
  r.for_ = for_s * kMicrosPerSecond;
  if (hold_s >= 0) r.hold = hold_s * kMicrosPerSecond;
  if (const toml::value* queues = t.Find("queues")) {
    if (!queues->is_table()) return t.Error("queues", "must be a table of queue tables");
    for (const auto& [name, q] : queues->as_table()) {
      TableReader qt(&q, "alerts.rules." + r.name + ".queues." + name);
      if (!q.is_table()) return qt.Error("", "must be a table");
      auto band = std::make_pair(r.warning_at, r.critical_at);
      for (Status s : {qt.Check({"warning_at", "critical_at"}),
                       qt.Int("warning_at", 0, 1LL << 40, band.first),
                       qt.Int("critical_at", 0, 1LL << 40, band.second)}) {
        if (!s.ok()) return s;
      }
      r.queue_bands[name] = band;
    }
  }
  return ValidateRule(r);
}

Status ReadCanaries(const toml::value& root, std::vector<CanaryConfig>& out) {
  if (!root.contains("canaries")) return Status::Ok();
  const toml::value& list = root.at("canaries");
  if (!list.is_array()) {
    return Status(Code::kInvalidArgument, "canaries: must be an array of tables ([[canaries]])");
  }
  std::set<std::string> seen;
  int i = 0;
  for (const auto& item : list.as_array()) {
    TableReader t(&item, "canaries[" + std::to_string(i++) + "]");
    if (!item.is_table()) return t.Error("", "must be a table");
    CanaryConfig c;
    for (Status s : {t.Check({"queue", "interval_s", "timeout_s"}), t.String("queue", c.queue),
                     t.Int("interval_s", 1, 7 * 86400, c.interval_s),
                     t.Int("timeout_s", 1, 86400, c.timeout_s)}) {
      if (!s.ok()) return s;
    }
    if (c.queue.empty() || c.queue.size() > 200) return t.Error("queue", "must be 1 to 200 characters");
    if (!seen.insert(c.queue).second) return t.Error("queue", "a second canary for queue " + c.queue);
    out.push_back(std::move(c));
  }
  return Status::Ok();
}

// A TOML value as JSON text (for schedule tables: strings, numbers, booleans, inline
// tables and arrays; dates become RFC 3339-like strings as toml11 prints them).
void AppendJson(const toml::value& v, std::string& out) {
  if (v.is_string()) {
    AppendJsonString(out, v.as_string().str);
  } else if (v.is_integer()) {
    out += std::to_string(v.as_integer());
  } else if (v.is_floating()) {
    JsonWriter(out).Double(v.as_floating());
  } else if (v.is_boolean()) {
    out += v.as_boolean() ? "true" : "false";
  } else if (v.is_array()) {
    out += '[';
    bool first = true;
    for (const auto& item : v.as_array()) {
      if (!first) out += ',';
      first = false;
      AppendJson(item, out);
    }
    out += ']';
  } else if (v.is_table()) {
    out += '{';
    bool first = true;
    for (const auto& [k, item] : v.as_table()) {
      if (!first) out += ',';
      first = false;
      AppendJsonString(out, k);
      out += ':';
      AppendJson(item, out);
    }
    out += '}';
  } else {
    AppendJsonString(out, toml::format(v));
  }
}

// [schedules.NAME] tables and [target_sets] NAME = ["a", "b"].
Status ReadSchedules(const toml::value& root, Config& c) {
  if (root.contains("target_sets")) {
    const toml::value& sets = root.at("target_sets");
    if (!sets.is_table()) return Status(Code::kInvalidArgument, "target_sets: must be a table of string arrays");
    for (const auto& [name, list] : sets.as_table()) {
      const std::string where = "target_sets." + name;
      if (!ValidScheduleName(name)) {
        return Status(Code::kInvalidArgument, where + ": a name is 1 to 100 of A-Z a-z 0-9 _ . -");
      }
      if (!list.is_array()) return Status(Code::kInvalidArgument, where + ": must be an array of strings");
      std::vector<std::string> items;
      std::set<std::string> seen;
      for (const auto& item : list.as_array()) {
        if (!item.is_string() || item.as_string().str.empty() || item.as_string().str.size() > 500) {
          return Status(Code::kInvalidArgument, where + ": items must be strings of 1 to 500 characters");
        }
        if (!seen.insert(item.as_string().str).second) {
          return Status(Code::kInvalidArgument, where + ": '" + item.as_string().str + "' is listed twice");
        }
        items.push_back(item.as_string().str);
      }
      c.target_sets[name] = std::move(items);
    }
  }
  if (!root.contains("schedules")) return Status::Ok();
  const toml::value& schedules = root.at("schedules");
  if (!schedules.is_table()) return Status(Code::kInvalidArgument, "schedules: must be a table of schedule tables");
  for (const auto& [name, table] : schedules.as_table()) {
    const std::string where = "schedules." + name;
    if (!table.is_table()) return Status(Code::kInvalidArgument, where + ": must be a table");
    if (!ValidScheduleName(name)) {
      return Status(Code::kInvalidArgument, where + ": a name is 1 to 100 of A-Z a-z 0-9 _ . -");
    }
    std::string json;
    AppendJson(table, json);
    auto spec = ParseScheduleSpec(json, name);
    if (!spec.ok()) return Status(Code::kInvalidArgument, where + "." + spec.status().message());
    c.schedules.push_back(std::move(*spec));
  }
  return Status::Ok();
}

Status ReadAlerts(const toml::value& root, AlertsConfig& a) {
  TableReader t(root, "alerts");
  for (Status s : {t.Check({"enabled", "interval_ms", "hold_s", "resend_s", "rules", "sinks"}),
                   t.Bool("enabled", a.enabled), t.Int("interval_ms", 10, 3600000, a.interval_ms),
                   t.Int("hold_s", 0, 86400, a.hold_s), t.Int("resend_s", 1, 86400, a.resend_s)}) {
    if (!s.ok()) return s;
  }
  if (const toml::value* rules = t.Find("rules")) {
    if (!rules->is_table()) return t.Error("rules", "must be a table of rule tables");
    for (const auto& [name, table] : rules->as_table()) {
      TableReader rt(&table, "alerts.rules." + name);
      if (!table.is_table()) return rt.Error("", "must be a table");
      RuleSpec* r = nullptr;
      for (RuleSpec& b : a.rules) {
        if (b.name == name) r = &b;
      }
      if (!r) {
        a.rules.push_back(RuleSpec{});
        r = &a.rules.back();
        r->name = name;
        if (!rt.Find("signal")) return rt.Error("signal", "a new rule needs a signal");
        r->annotations = {{"summary", name + " {{value}} (threshold {{threshold}})"}};
      }
      if (Status s = ReadRule(rt, *r); !s.ok()) return s;
    }
  }
  if (const toml::value* sinks = t.Find("sinks")) {
    if (!sinks->is_array()) return t.Error("sinks", "must be an array of tables ([[alerts.sinks]])");
    a.sinks.clear();
    int i = 0;
    for (const auto& item : sinks->as_array()) {
      TableReader st(&item, "alerts.sinks[" + std::to_string(i++) + "]");
      if (!item.is_table()) return st.Error("", "must be a table");
      AlertSinkConfig sc;
      for (Status s : {st.Check({"type", "url"}), st.String("type", sc.type), st.String("url", sc.url)}) {
        if (!s.ok()) return s;
      }
      if (sc.type != "log" && sc.type != "file" && sc.type != "alertmanager" && sc.type != "webhook") {
        return st.Error("type", "must be log, file, alertmanager or webhook");
      }
      if ((sc.type == "alertmanager" || sc.type == "webhook") && sc.url.rfind("http://", 0) != 0) {
        return st.Error("url", "must be an http:// URL");
      }
      a.sinks.push_back(std::move(sc));
    }
  }
  return Status::Ok();
}

// [credentials.NAME]: value | value_env | value_file (or none: set by PUT), expires_at,
// refresh_action, refresh_queue, refresh_before. Messages name keys, files and variables,
// never a value.
Status ReadCredentials(const toml::value& root, std::vector<CredentialSpec>& out) {
  if (!root.contains("credentials")) return Status::Ok();
  const auto& all = root.at("credentials");
  if (!all.is_table()) return Status(Code::kInvalidArgument, "credentials: must be a table");
  for (const auto& [name, table] : all.as_table()) {
    const std::string where = "credentials." + name;
    auto bad = [&](const std::string& msg) { return Status(Code::kInvalidArgument, where + msg); };
    if (!ValidCredentialName(name)) {
      return bad(": the name must be 1 to 128 characters of A-Z a-z 0-9 _ . -");
    }
    if (!table.is_table()) return bad(": must be a table");
    CredentialSpec spec;
    spec.name = name;
    int sources = 0;
    for (const char* key : {"value", "value_env", "value_file"}) sources += table.contains(key) ? 1 : 0;
    if (sources > 1) return bad(": give one of value, value_env and value_file");
    for (const auto& [key, v] : table.as_table()) {
      const bool text_key = key == "value" || key == "value_env" || key == "value_file" ||
                            key == "expires_at" || key == "refresh_action" || key == "refresh_queue";
      if (text_key && !v.is_string()) return bad("." + key + ": must be a string");
      if (key == "value") {
        spec.value = v.as_string().str;
      } else if (key == "value_env") {
        const std::string var = v.as_string().str;
        const char* got = var.empty() ? nullptr : std::getenv(var.c_str());
        if (!got || !*got) {
          return bad(".value_env: the environment variable '" + var + "' is not set or empty");
        }
        spec.value = got;
      } else if (key == "value_file") {
        const std::string file = v.as_string().str;
        std::ifstream f(file, std::ios::binary);
        if (!f) return bad(".value_file: cannot read '" + file + "'");
        std::ostringstream text;
        text << f.rdbuf();
        spec.value = text.str();
        if (!spec.value.empty() && spec.value.back() == '\n') spec.value.pop_back();
        if (!spec.value.empty() && spec.value.back() == '\r') spec.value.pop_back();
      } else if (key == "expires_at") {
        auto at = ParseRfc3339(v.as_string().str);
        if (!at) return bad(".expires_at: must be an RFC 3339 time (a quoted string)");
        spec.expires_at = *at;
      } else if (key == "refresh_action") {
        spec.refresh_action = v.as_string().str;
        if (spec.refresh_action.empty() || spec.refresh_action.size() > 200) {
          return bad(".refresh_action: must be 1 to 200 characters");
        }
      } else if (key == "refresh_queue") {
        spec.refresh_queue = v.as_string().str;
        if (spec.refresh_queue.empty() || spec.refresh_queue.size() > 200) {
          return bad(".refresh_queue: must be 1 to 200 characters");
        }
      } else if (key == "refresh_before") {
        std::optional<Micros> d;
        if (v.is_integer() && v.as_integer() >= 0) {
          d = v.as_integer() * kMicrosPerSecond;
        } else if (v.is_string()) {
          d = ParseDuration(v.as_string().str);
        }
        if (!d) return bad(".refresh_before: must be seconds (300) or a duration (\"5m\")");
        spec.refresh_before = *d;
      } else {
        return bad("." + key + ": unknown key");
      }
    }
    if (!spec.refresh_action.empty()) {
      NewTask probe;
      probe.action = spec.refresh_action;
      probe.queue = spec.refresh_queue;
      if (Status s = ValidateNewTask(probe); !s.ok()) {
        return bad(": the refresh task would be refused: " + s.message());
      }
    }
    spec.has_value = sources == 1;
    if (spec.has_value && spec.value.empty()) return bad(": the value is empty");
    if (spec.value.size() > kMaxCredentialValueBytes) return bad(": the value is over 64 KiB");
    if (spec.value.find('\0') != std::string::npos) return bad(": the value holds a NUL byte");
    out.push_back(std::move(spec));
  }
  return Status::Ok();
}

}  // namespace

Status SplitHostPort(const std::string& listen, std::string& host, uint16_t& port) {
  auto colon = listen.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return Status(Code::kInvalidArgument, "listen: expected HOST:PORT, got '" + listen + "'");
  }
  host = listen.substr(0, colon);
  if (host.size() > 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  try {
    size_t used = 0;
    int p = std::stoi(listen.substr(colon + 1), &used);
    if (used != listen.size() - colon - 1 || p < 0 || p > 65535) throw std::out_of_range("port");
    port = static_cast<uint16_t>(p);
  } catch (const std::exception&) {
    return Status(Code::kInvalidArgument, "listen: bad port in '" + listen + "'");
  }
  return Status::Ok();
}

Result<Config> LoadConfig(const std::string& path) {
  if (!std::filesystem::exists(path)) return Status(Code::kNotFound, path + ": no such file");
  Config c;
  try {
    const toml::value root = toml::parse(path);
    // Tables read by later parts (workers, supervisor) are allowed here already.
    static const std::set<std::string> kKnown = {
        "listen", "data_dir", "durability", "max_body_bytes", "header_timeout_ms",
        "body_timeout_ms", "sweep_interval_ms", "io_threads", "shutdown_grace_ms",
        "ledger_checkpoint_every", "worker_heartbeat_ms", "worker_lost_after_ms",
        "history_keep_days", "sse_keepalive_ms", "sse_client_buffer_bytes", "retry", "actions", "handlers", "pools",
        "supervisor", "logging", "metrics", "tracing", "baselines", "alerts", "canaries",
        "registry", "queues", "breaker", "schedules", "target_sets", "followups",
        "credentials"};
    for (const auto& [key, v] : root.as_table()) {
      if (!kKnown.count(key)) return Bad(path, key + ": unknown key");
    }
    auto integer = [&](const char* key, int64_t min, int64_t max, auto& out) -> Status {
      if (!root.contains(key)) return Status::Ok();
      const auto& v = root.at(key);
      if (!v.is_integer() || v.as_integer() < min || v.as_integer() > max) {
        return Bad(path, std::string(key) + ": must be an integer from " + std::to_string(min) +
                             " to " + std::to_string(max));
      }
      out = static_cast<std::remove_reference_t<decltype(out)>>(v.as_integer());
      return Status::Ok();
    };
    auto text = [&](const char* key, std::string& out) -> Status {
      if (!root.contains(key)) return Status::Ok();
      const auto& v = root.at(key);
      if (!v.is_string()) return Bad(path, std::string(key) + ": must be a string");
      out = v.as_string().str;
      return Status::Ok();
    };
    std::string durability = "fsync";
    for (Status s : {text("listen", c.listen), text("data_dir", c.data_dir),
                     text("durability", durability)}) {
      if (!s.ok()) return s;
    }
    if (durability == "fsync") {
      c.durability = Durability::kFsync;
    } else if (durability == "os") {
      c.durability = Durability::kOs;
    } else {
      return Bad(path, "durability: must be \"fsync\" or \"os\"");
    }
    for (Status s : {integer("max_body_bytes", 1024, 1LL << 30, c.max_body_bytes),
                     integer("header_timeout_ms", 100, 3600000, c.header_timeout_ms),
                     integer("body_timeout_ms", 100, 3600000, c.body_timeout_ms),
                     integer("sweep_interval_ms", 1, 60000, c.sweep_interval_ms),
                     integer("io_threads", 1, 64, c.io_threads),
                     integer("shutdown_grace_ms", 0, 600000, c.shutdown_grace_ms),
                     integer("ledger_checkpoint_every", 0, 1LL << 40, c.ledger_checkpoint_every),
                     integer("worker_heartbeat_ms", 100, 600000, c.worker_heartbeat_ms),
                     integer("worker_lost_after_ms", 300, 3600000, c.worker_lost_after_ms),
                     integer("history_keep_days", 1, 3650, c.history_keep_days),
                     integer("sse_keepalive_ms", 100, 600000, c.sse_keepalive_ms),
                     integer("sse_client_buffer_bytes", 4096, 1LL << 30,
                             c.sse_client_buffer_bytes)}) {
      if (!s.ok()) return s;
    }
    if (root.contains("retry")) {
      const auto& r = root.at("retry");
      if (!r.is_table()) return Bad(path, "retry: must be a table");
      Status s = ReadClassPolicies(r, "retry", c.retry.Default());
      if (!s.ok()) return Bad(path, s.message());
    }
    if (root.contains("actions")) {
      const auto& actions = root.at("actions");
      if (!actions.is_table()) return Bad(path, "actions: must be a table");
      for (const auto& [name, table] : actions.as_table()) {
        if (!table.is_table()) return Bad(path, "actions." + name + ": must be a table");
        RetryPolicy policy = c.retry.Default();
        c.actions.known.insert(name);
        for (const auto& [key, v] : table.as_table()) {
          if (key == "schema") {
            if (!v.is_string()) {
              return Bad(path, "actions." + name + ".schema: must be a string holding a JSON Schema");
            }
            auto schema = http::JsonSchema::Parse(v.as_string().str);
            if (!schema.ok()) {
              return Bad(path, "actions." + name + "." + schema.status().message());
            }
            c.actions.schemas[name] = std::move(*schema);
            continue;
          }
          if (key == "credentials") {
            const std::string where = "actions." + name + ".credentials";
            if (!v.is_array()) return Bad(path, where + ": must be an array of credential names");
            auto& names = c.actions.credentials[name];
            for (const auto& item : v.as_array()) {
              if (!item.is_string() || !ValidCredentialName(item.as_string().str)) {
                return Bad(path, where + ": must be an array of credential names");
              }
              names.push_back(item.as_string().str);
            }
            continue;
          }
          if (kLimitKeys.count(key) || key == "breaker") continue;  // ReadFlow reads them
          if (key != "retry") return Bad(path, "actions." + name + "." + key + ": unknown key");
          if (!v.is_table()) return Bad(path, "actions." + name + ".retry: must be a table");
          Status s = ReadClassPolicies(v, "actions." + name + ".retry", policy);
          if (!s.ok()) return Bad(path, s.message());
        }
        c.retry.SetForAction(name, policy);
      }
    }
    if (Status s = ReadObservability(root, c); !s.ok()) return Bad(path, s.message());
    if (Status s = ReadAlerts(root, c.alerts); !s.ok()) return Bad(path, s.message());
    if (Status s = ReadCanaries(root, c.canaries); !s.ok()) return Bad(path, s.message());
    if (Status s = ReadCredentials(root, c.credentials); !s.ok()) return Bad(path, s.message());
    for (const auto& [action, names] : c.actions.credentials) {
      for (const auto& n : names) {
        bool declared = false;
        for (const auto& spec : c.credentials) declared = declared || spec.name == n;
        if (!declared) {
          return Bad(path, "actions." + action + ".credentials: '" + n +
                               "' is not a [credentials." + n + "] table");
        }
      }
    }
    if (Status s = ReadFlow(root, c.flow); !s.ok()) return Bad(path, s.message());
    if (Status s = ReadSchedules(root, c); !s.ok()) return Bad(path, s.message());
    TableReader registry(root, "registry");
    for (Status s : {registry.Check({"strict"}), registry.Bool("strict", c.actions.strict)}) {
      if (!s.ok()) return Bad(path, s.message());
    }
    TableReader followups(root, "followups");
    for (Status s : {followups.Check({"max_depth"}),
                     followups.Int("max_depth", 0, 1000, c.followups_max_depth)}) {
      if (!s.ok()) return Bad(path, s.message());
    }
  } catch (const std::exception& e) {
    return Bad(path, e.what());
  }
  if (c.worker_lost_after_ms <= c.worker_heartbeat_ms) {
    return Bad(path, "worker_lost_after_ms must be longer than worker_heartbeat_ms");
  }
  return c;
}

}  // namespace resonance
