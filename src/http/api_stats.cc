// Api: task history (GET /api/stats) and learned baselines (GET /api/baselines), both
// read from the store's per-minute history (docs/stats.md), and the alerts they feed
// (GET /api/alerts, docs/alerts.md).
#include <charconv>
#include <map>

#include "core/json_writer.h"
#include "engine/alert_rules.h"
#include "http/api.h"

namespace resonance::http {
namespace {

constexpr int64_t kMaxWindowMinutes = 7 * 24 * 60;

// "90s"? no: whole minutes. "5m", "1h", "6h", "24h", "7d"; 1 minute to 7 days.
Result<int64_t> ParseWindowMinutes(const std::string& text) {
  const Status bad(Code::kInvalidArgument,
                   "window: must be a duration like 5m, 1h, 6h or 24h (1m to 7d), got '" + text +
                       "'");
  if (text.size() < 2) return bad;
  int64_t n = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size() - 1, n);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size() - 1 || n <= 0) return bad;
  int64_t minutes = 0;
  switch (text.back()) {
    case 'm': minutes = n; break;
    case 'h': minutes = n * 60; break;
    case 'd': minutes = n * 24 * 60; break;
    default: return bad;
  }
  if (minutes > kMaxWindowMinutes || n > kMaxWindowMinutes) return bad;
  return minutes;
}

void WriteRate(JsonWriter& w, std::string_view key, std::optional<double> v) {
  w.Key(key);
  if (v) {
    w.Double(*v);
  } else {
    w.Null();
  }
}

void WriteHistogram(JsonWriter& w, std::string_view key, const DurationHistogram& h) {
  w.Key(key).BeginObject().Key("count").Int(h.count);
  WriteRate(w, "mean", h.Mean());
  WriteRate(w, "p50", h.Quantile(0.50));
  WriteRate(w, "p95", h.Quantile(0.95));
  WriteRate(w, "p99", h.Quantile(0.99));
  WriteRate(w, "max", h.count ? std::optional<double>(static_cast<double>(h.max_us) / kMicrosPerSecond)
                              : std::nullopt);
  w.EndObject();
}

void WriteByClass(JsonWriter& w, std::string_view key,
                  const std::array<int64_t, kErrorClassCount>& counts) {
  w.Key(key).BeginObject();
  for (int c = 0; c < kErrorClassCount; ++c) {
    w.Key(ErrorClassName(static_cast<ErrorClass>(c))).Int(counts[static_cast<size_t>(c)]);
  }
  w.EndObject();
}

// The figures of one MinuteStats sum over window_s seconds.
void WriteFigures(JsonWriter& w, const MinuteStats& s, double window_s) {
  w.Key("succeeded").Int(s.succeeded).Key("retried").Int(s.retried).Key("dead").Int(s.dead);
  w.Key("cancelled").Int(s.cancelled).Key("finished").Int(s.finished());
  w.Key("attempts").Int(s.succeeded + s.retried + s.dead);
  WriteRate(w, "success_rate", s.success_rate());
  WriteRate(w, "failure_rate", s.failure_rate());
  w.Key("throughput_per_s").Double(static_cast<double>(s.finished()) / window_s);
  WriteHistogram(w, "duration_s", s.duration);
  WriteHistogram(w, "wait_s", s.wait);
  WriteByClass(w, "failures_by_class", s.failures);
  WriteByClass(w, "retries_by_class", s.retries);
}

}  // namespace

void Api::Stats(Request& req, Respond respond) {
  const std::string* window_text = req.Query("window");
  const std::string window = window_text && !window_text->empty() ? *window_text : "1h";
  auto minutes = ParseWindowMinutes(window);
  if (!minutes.ok()) return respond(ErrorReply(minutes.status()));
  const std::string queue = req.Query("queue") ? *req.Query("queue") : "";
  const std::string action = req.Query("action") ? *req.Query("action") : "";
  engine_.Barrier([this, window, minutes = *minutes, queue, action, respond](const Status&) {
    OnIo([this, window, minutes, queue, action, respond] {
      const Micros now = clock_.Now();
      const int64_t last = MinuteOf(now);
      const int64_t first = last - minutes + 1;
      auto rows = store_.ReadStats(first, last, queue, action);
      if (!rows.ok()) return respond(ErrorReply(rows.status()));
      MinuteStats total;
      std::map<std::pair<std::string, std::string>, MinuteStats> by_action;
      for (const StatsRow& r : *rows) {
        total.Merge(r.stats);
        by_action[{r.queue, r.action}].Merge(r.stats);
      }
      const double window_s = static_cast<double>(minutes) * 60;
      std::string body;
      JsonWriter w(body);
      w.BeginObject().Key("window").String(window).Key("window_s").Int(minutes * 60);
      w.Key("from").Time(first * 60 * kMicrosPerSecond).Key("to").Time(now);
      w.Key("queue").StringOrNull(queue).Key("action").StringOrNull(action);
      WriteFigures(w, total, window_s);
      w.Key("by_action").BeginArray();
      for (const auto& [key, s] : by_action) {
        w.BeginObject().Key("queue").String(key.first).Key("action").String(key.second);
        WriteFigures(w, s, window_s);
        w.EndObject();
      }
      w.EndArray().EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::Baselines(Request& req, Respond respond) {
  const std::string queue = req.Query("queue") ? *req.Query("queue") : "";
  const std::string action = req.Query("action") ? *req.Query("action") : "";
  engine_.Barrier([this, queue, action, respond](const Status&) {
    OnIo([this, queue, action, respond] {
      const BaselineOptions& o = options_.baselines;
      auto learned = LearnBaselines(store_, clock_.Now(), o, queue, action);
      if (!learned.ok()) return respond(ErrorReply(learned.status()));
      std::string body;
      JsonWriter w(body);
      w.BeginObject().Key("lookback_hours").Int(o.lookback_hours).Key("min_hours").Int(o.min_hours);
      w.Key("min_samples").Int(o.min_samples).Key("success_floor").Double(o.success_floor);
      w.Key("baselines").BeginArray();
      for (const auto& [key, b] : *learned) {
        w.BeginObject().Key("queue").String(key.first).Key("action").String(key.second);
        w.Key("success_rate").BeginObject().Key("hours").Int(b.success_hours);
        WriteRate(w, "mean", b.success_mean);
        WriteRate(w, "stddev", b.success_stddev);
        w.Key("threshold").Double(b.success_threshold).Key("learned").Bool(b.success_learned);
        w.EndObject();
        w.Key("duration_p95_s").BeginObject().Key("hours").Int(b.duration_hours);
        WriteRate(w, "mean", b.p95_mean);
        WriteRate(w, "stddev", b.p95_stddev);
        WriteRate(w, "threshold", b.p95_threshold);
        w.Key("learned").Bool(b.duration_learned).EndObject();
        w.EndObject();
      }
      w.EndArray().EndObject();
      respond(JsonReply(200, std::move(body)));
    });
  });
}

void Api::Alerts(Request& req, Respond respond) {
  auto limit = QueryInt(req, "history", 100, 0, 500);
  if (!limit.ok()) return respond(ErrorReply(limit.status()));
  std::vector<alerts::Alert> active, history;
  if (options_.alerts) {
    active = options_.alerts->Active();
    history = options_.alerts->History();
  }
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("enabled").Bool(options_.alerts != nullptr);
  for (auto state : {alerts::AlertState::kFiring, alerts::AlertState::kPending}) {
    w.Key(state == alerts::AlertState::kFiring ? "firing" : "pending").BeginArray();
    for (const auto& a : active) {
      if (a.state == state) w.Raw(alerts::AlertJson(a));
    }
    w.EndArray();
  }
  w.Key("history").BeginArray();
  for (size_t i = 0; i < history.size() && i < static_cast<size_t>(*limit); ++i) {
    w.Raw(alerts::AlertJson(history[i]));
  }
  w.EndArray().EndObject();
  respond(JsonReply(200, std::move(body)));
}

}  // namespace resonance::http
