// RenderMarkdown and RenderHtml: both lay out the same sections (BuildSections), so
// they show the same numbers; only the markup differs, and HTML adds SVG charts.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <variant>

#include "cli/report.h"
#include "core/time_format.h"

namespace resonance::cli {
namespace {

constexpr const char* kNone = "none in this window";

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
};
struct Series {
  std::string name;
  std::vector<std::optional<double>> values;
};
// A chart for the HTML report: bars (one series) or lines, over labelled x points.
struct Chart {
  std::string title;
  std::string y_label;
  std::vector<std::string> x_labels;
  std::vector<Series> series;
  bool bars = false;
  double y_max = 0;  // 0: the largest value
};
using Block = std::variant<std::string, Table, Chart>;  // a paragraph, a table, a chart
struct Section {
  std::string title;
  std::vector<Block> blocks;
};

std::string Printf(const char* fmt, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, v);
  return buf;
}
std::string Pct(std::optional<double> r) { return r ? Printf("%.1f%%", *r * 100) : "-"; }
std::string Secs(std::optional<double> s) { return s ? Printf("%.3f s", *s) : "-"; }
std::string Int(int64_t n) { return std::to_string(n); }
// "2026-11-22 19:17:48Z"
std::string Time(Micros t) {
  std::string s = FormatRfc3339(t);
  return s.substr(0, 10) + " " + s.substr(11, 8) + "Z";
}
std::string HourLabel(Micros t) { return FormatRfc3339(t).substr(11, 5); }
std::string Span(Micros d) { return Printf("%.1f s", static_cast<double>(d) / kMicrosPerSecond); }

std::optional<double> Rank(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return std::nullopt;
  size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  return sorted[std::max<size_t>(i, 1) - 1];
}

Table ErrorTable(const std::vector<ErrorCount>& errors) {
  Table t{{"Class", "Message", "Count"}, {}};
  for (const auto& e : errors) t.rows.push_back({e.error_class, e.message, Int(e.count)});
  return t;
}

std::vector<Section> BuildSections(const Report& r) {
  std::vector<Section> out;
  const MinuteStats& s = r.total;
  auto hour_start = [&](size_t i) { return r.from + static_cast<Micros>(i) * kMicrosPerHour; };
  std::vector<std::string> hour_labels;
  for (size_t i = 0; i < r.hourly.size(); ++i) hour_labels.push_back(HourLabel(hour_start(i)));

  // 1. Summary
  Section sum{"1. Summary", {"Window: " + Time(r.from) + " to " + Time(r.to) + " (" +
                             Int(r.hours) + " h)"}};
  if (s.empty()) {
    sum.blocks.push_back(std::string("Task history: ") + kNone);
  } else {
    auto q3 = [](const DurationHistogram& h) {
      return Secs(h.Quantile(0.5)) + " / " + Secs(h.Quantile(0.95)) + " / " + Secs(h.Quantile(0.99));
    };
    sum.blocks.push_back(Table{{"Metric", "Value"},
                               {{"Success rate", Pct(s.success_rate())},
                                {"Finished", Int(s.finished())},
                                {"Succeeded", Int(s.succeeded)},
                                {"Dead", Int(s.dead)},
                                {"Retried", Int(s.retried)},
                                {"Cancelled", Int(s.cancelled)},
                                {"Throughput", Printf("%.2f", static_cast<double>(s.finished()) / r.hours) +
                                                   " finished per hour"},
                                {"Duration p50 / p95 / p99", q3(s.duration)},
                                {"Wait p50 / p95 / p99", q3(s.wait)}}});
  }
  out.push_back(std::move(sum));

  // 2. Per action
  Section act{"2. Per action", {}};
  Table at{{"Queue", "Action", "Finished", "Succeeded", "Retried", "Dead", "Cancelled",
            "Success rate", "p95 duration"}, {}};
  for (const auto& a : r.actions) {
    const MinuteStats& m = a.stats;
    at.rows.push_back({a.queue, a.action, Int(m.finished()), Int(m.succeeded), Int(m.retried),
                       Int(m.dead), Int(m.cancelled), Pct(m.success_rate()),
                       Secs(m.duration.Quantile(0.95))});
  }
  if (at.rows.empty()) act.blocks.push_back(std::string(kNone)); else act.blocks.push_back(at);
  out.push_back(std::move(act));

  // 3. Hourly and 4. Latency
  Section hourly{"3. Hourly", {}};
  Section latency{"4. Latency", {}};
  if (s.empty()) {
    hourly.blocks.push_back(std::string(kNone));
    latency.blocks.push_back(std::string(kNone));
  } else {
    Table ht{{"Hour (UTC)", "Finished", "Succeeded", "Dead", "Success rate"}, {}};
    Table lt{{"Hour (UTC)", "p50 duration", "p95 duration", "p99 duration"}, {}};
    Series finished{"finished", {}}, rate{"success rate %", {}};
    Series p50{"p50", {}}, p95{"p95", {}}, p99{"p99", {}};
    for (size_t i = 0; i < r.hourly.size(); ++i) {
      const MinuteStats& m = r.hourly[i];
      std::string label = Time(hour_start(i)).substr(0, 16);
      ht.rows.push_back({label, Int(m.finished()), Int(m.succeeded), Int(m.dead), Pct(m.success_rate())});
      lt.rows.push_back({label, Secs(m.duration.Quantile(0.5)), Secs(m.duration.Quantile(0.95)),
                         Secs(m.duration.Quantile(0.99))});
      finished.values.push_back(static_cast<double>(m.finished()));
      auto sr = m.success_rate();
      rate.values.push_back(sr ? std::optional<double>(*sr * 100) : std::nullopt);
      p50.values.push_back(m.duration.Quantile(0.5));
      p95.values.push_back(m.duration.Quantile(0.95));
      p99.values.push_back(m.duration.Quantile(0.99));
    }
    hourly.blocks.push_back(Chart{"Finished tasks per hour", "tasks", hour_labels, {finished}, true});
    hourly.blocks.push_back(Chart{"Success rate per hour", "%", hour_labels, {rate}, false, 100});
    hourly.blocks.push_back(ht);
    latency.blocks.push_back(Chart{"Attempt duration per hour", "seconds", hour_labels, {p50, p95, p99}, false});
    latency.blocks.push_back(lt);
  }
  out.push_back(std::move(hourly));
  out.push_back(std::move(latency));

  // 5. Queue depth
  Section depth{"5. Queue depth", {}};
  if (r.depth_queues.empty()) {
    depth.blocks.push_back(std::string(kNone));
  } else {
    Table dt{{"Time (UTC)"}, {}};
    for (const auto& q : r.depth_queues) dt.header.push_back(q);
    std::vector<std::string> labels;
    for (size_t t = 0; t < r.depth[0].size(); ++t) {
      std::vector<std::string> row{Time(hour_start(t)).substr(0, 16)};
      for (const auto& series : r.depth) row.push_back(Int(series[t]));
      dt.rows.push_back(std::move(row));
      labels.push_back(HourLabel(hour_start(t)));
    }
    Chart c{"Open tasks per queue", "tasks", labels, {}, false};
    for (size_t q = 0; q < r.depth_queues.size(); ++q) {
      Series se{r.depth_queues[q], {}};
      for (int64_t v : r.depth[q]) se.values.push_back(static_cast<double>(v));
      c.series.push_back(std::move(se));
    }
    depth.blocks.push_back(c);
    depth.blocks.push_back(dt);
  }
  out.push_back(std::move(depth));

  // 6. Retries and failures by class
  Section cls{"6. Retries and failures by error class", {}};
  Table ct{{"Class", "Failed attempts", "Retried"}, {}};
  for (int i = 0; i < kErrorClassCount; ++i) {
    if (s.failures[i] == 0 && s.retries[i] == 0) continue;
    ct.rows.push_back({ErrorClassName(static_cast<ErrorClass>(i)), Int(s.failures[i]), Int(s.retries[i])});
  }
  if (ct.rows.empty()) cls.blocks.push_back(std::string(kNone)); else cls.blocks.push_back(ct);
  out.push_back(std::move(cls));

  // 7. Dead letters
  Section dead{"7. Dead letters", {}};
  if (r.dead_letters == 0) {
    dead.blocks.push_back(std::string(kNone));
  } else {
    dead.blocks.push_back("Dead letters: " + Int(r.dead_letters));
    dead.blocks.push_back(ErrorTable(r.dead_errors));
  }
  out.push_back(std::move(dead));

  // 8. Workers
  Section wk{"8. Workers", {}};
  const WorkerSummary& w = r.workers;
  if (w.registrations + w.losses + w.deregistrations == 0) {
    wk.blocks.push_back(std::string(kNone));
  } else {
    std::vector<double> heal;
    Table ht{{"Worker", "Cause", "Since", "Back at", "Time to heal"}, {}};
    for (const auto& h : w.heals) {
      std::string t = "not back";
      if (h.back_at) {
        heal.push_back(static_cast<double>(*h.back_at - h.since) / kMicrosPerSecond);
        t = Span(*h.back_at - h.since);
      }
      ht.rows.push_back({h.worker, h.cause, Time(h.since), h.back_at ? Time(*h.back_at) : "-", t});
    }
    std::optional<double> mean, max;
    if (!heal.empty()) {
      double sum_s = 0;
      for (double x : heal) sum_s += x;
      mean = sum_s / static_cast<double>(heal.size());
      max = *std::max_element(heal.begin(), heal.end());
    }
    auto one = [](std::optional<double> v) { return v ? Printf("%.1f s", *v) : "-"; };
    wk.blocks.push_back(Table{{"Metric", "Value"},
                              {{"Registrations", Int(w.registrations)},
                               {"Restarts", Int(w.restarts)},
                               {"Losses", Int(w.losses)},
                               {"Deregistrations", Int(w.deregistrations)},
                               {"Time to heal mean", one(mean)},
                               {"Time to heal max", one(max)}}});
    if (!ht.rows.empty()) wk.blocks.push_back(ht);
  }
  out.push_back(std::move(wk));

  // 9. Alerts
  Section al{"9. Alerts", {}};
  Table alt{{"Alert", "Labels", "Severity", "Fired at", "Resolved at", "Duration"}, {}};
  for (const auto& a : r.alerts) {
    alt.rows.push_back({a.name, a.labels, a.severity, Time(a.fired_at),
                        a.resolved_at ? Time(*a.resolved_at) : "-",
                        a.resolved_at ? Span(*a.resolved_at - a.fired_at) : "firing"});
  }
  if (alt.rows.empty()) al.blocks.push_back(std::string(kNone)); else al.blocks.push_back(alt);
  out.push_back(std::move(al));

  // 10. Canary
  Section can{"10. Canary", {}};
  Table cat{{"Queue", "Runs", "OK", "Failed", "Missing", "Last outcome", "Latency p50", "Latency max"}, {}};
  for (const auto& c : r.canary) {
    cat.rows.push_back({c.queue, Int(c.ok + c.failed + c.missing), Int(c.ok), Int(c.failed),
                        Int(c.missing), c.last_outcome, Secs(Rank(c.latencies_s, 0.5)),
                        Secs(Rank(c.latencies_s, 1.0))});
  }
  if (cat.rows.empty()) can.blocks.push_back(std::string(kNone)); else can.blocks.push_back(cat);
  out.push_back(std::move(can));

  // 11. Top errors
  Section top{"11. Top errors", {}};
  if (r.top_errors.empty()) top.blocks.push_back(std::string(kNone));
  else top.blocks.push_back(ErrorTable(r.top_errors));
  out.push_back(std::move(top));
  return out;
}

// ---------------------------------------------------------------- Markdown

std::string MdCell(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

// ---------------------------------------------------------------- HTML

std::string Esc(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

constexpr const char* kColors[] = {"#2b6cb0", "#c05621", "#2f855a", "#9b2c2c", "#6b46c1", "#b7791f"};

std::string Num(double v) { return Printf("%.1f", v); }

// An inline SVG chart: title, y axis with 5 ticks, x labels (at most ~12), legend.
std::string Svg(const Chart& c) {
  const double w = 760, h = 260, l = 60, rt = 16, t = 36, b = 44;
  const double pw = w - l - rt, ph = h - t - b;
  double ymax = 0;
  for (const auto& s : c.series)
    for (const auto& v : s.values)
      if (v) ymax = std::max(ymax, *v);
  if (c.y_max > 0) ymax = c.y_max;
  if (ymax <= 0) ymax = 1;
  const size_t n = c.x_labels.size();
  auto x_at = [&](size_t i) {
    return c.bars ? l + pw * (static_cast<double>(i) + 0.5) / static_cast<double>(n)
                  : l + (n > 1 ? pw * static_cast<double>(i) / static_cast<double>(n - 1) : pw / 2);
  };
  auto y_at = [&](double v) { return t + ph - ph * v / ymax; };
  std::string o = "<svg class=\"chart\" viewBox=\"0 0 " + Num(w) +
                  " " + Num(h) + "\" width=\"" + Num(w) + "\" height=\"" + Num(h) + "\" role=\"img\">";
  o += "<title>" + Esc(c.title) + "</title>";
  o += "<text x=\"" + Num(w / 2) + "\" y=\"20\" text-anchor=\"middle\" class=\"ct\">" + Esc(c.title) + "</text>";
  for (int k = 0; k <= 4; ++k) {
    double v = ymax * k / 4, y = y_at(v);
    o += "<line x1=\"" + Num(l) + "\" x2=\"" + Num(l + pw) + "\" y1=\"" + Num(y) + "\" y2=\"" + Num(y) +
         "\" class=\"grid\"/>";
    o += "<text x=\"" + Num(l - 6) + "\" y=\"" + Num(y + 4) + "\" text-anchor=\"end\">" +
         Printf(ymax >= 10 ? "%.0f" : "%.2f", v) + "</text>";
  }
  o += "<line x1=\"" + Num(l) + "\" x2=\"" + Num(l) + "\" y1=\"" + Num(t) + "\" y2=\"" + Num(t + ph) + "\" class=\"axis\"/>";
  o += "<line x1=\"" + Num(l) + "\" x2=\"" + Num(l + pw) + "\" y1=\"" + Num(t + ph) + "\" y2=\"" +
       Num(t + ph) + "\" class=\"axis\"/>";
  o += "<text transform=\"translate(14 " + Num(t + ph / 2) + ") rotate(-90)\" text-anchor=\"middle\">" +
       Esc(c.y_label) + "</text>";
  size_t step = std::max<size_t>(1, (n + 11) / 12);
  for (size_t i = 0; i < n; i += step) {
    o += "<text x=\"" + Num(x_at(i)) + "\" y=\"" + Num(t + ph + 16) + "\" text-anchor=\"middle\">" +
         Esc(c.x_labels[i]) + "</text>";
  }
  o += "<text x=\"" + Num(l + pw / 2) + "\" y=\"" + Num(h - 6) + "\" text-anchor=\"middle\">hour (UTC)</text>";
  for (size_t si = 0; si < c.series.size(); ++si) {
    const Series& s = c.series[si];
    const std::string color = kColors[si % 6];
    if (c.bars) {
      double bw = std::max(1.0, pw / static_cast<double>(n) * 0.7);
      for (size_t i = 0; i < s.values.size(); ++i) {
        if (!s.values[i]) continue;
        double y = y_at(*s.values[i]);
        o += "<rect x=\"" + Num(x_at(i) - bw / 2) + "\" y=\"" + Num(y) + "\" width=\"" + Num(bw) +
             "\" height=\"" + Num(t + ph - y) + "\" fill=\"" + color + "\"/>";
      }
    } else {
      std::string pts;
      auto flush = [&] {
        if (!pts.empty()) o += "<polyline fill=\"none\" stroke=\"" + color + "\" stroke-width=\"2\" points=\"" + pts + "\"/>";
        pts.clear();
      };
      for (size_t i = 0; i < s.values.size(); ++i) {
        if (!s.values[i]) { flush(); continue; }
        std::string p = Num(x_at(i)) + "," + Num(y_at(*s.values[i]));
        pts += (pts.empty() ? "" : " ") + p;
        o += "<circle cx=\"" + Num(x_at(i)) + "\" cy=\"" + Num(y_at(*s.values[i])) + "\" r=\"2.5\" fill=\"" + color + "\"/>";
      }
      flush();
    }
    double lx = l + pw - 130.0 * static_cast<double>(c.series.size() - si);
    o += "<rect x=\"" + Num(lx) + "\" y=\"" + Num(t - 12) + "\" width=\"10\" height=\"10\" fill=\"" + color + "\"/>";
    o += "<text x=\"" + Num(lx + 14) + "\" y=\"" + Num(t - 3) + "\">" + Esc(s.name) + "</text>";
  }
  o += "</svg>\n";
  return o;
}

constexpr const char* kCss =
    "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1000px;"
    "color:#1a202c;padding:0 1em}h1{font-size:1.6em}h2{font-size:1.2em;border-bottom:1px solid #cbd5e0;"
    "padding-bottom:.2em;margin-top:1.6em}table{border-collapse:collapse;margin:.6em 0}"
    "th,td{border:1px solid #cbd5e0;padding:.25em .6em;text-align:left;font-size:.9em}"
    "th{background:#edf2f7}td.n{text-align:right}svg.chart{display:block;margin:.8em 0;max-width:100%;height:auto}"
    "svg text{font-size:11px;fill:#2d3748}svg text.ct{font-size:13px;font-weight:600}"
    "svg .grid{stroke:#e2e8f0}svg .axis{stroke:#4a5568}p.none{color:#718096;font-style:italic}";

}  // namespace

std::string RenderMarkdown(const Report& report) {
  std::string o = "# Resonance report\n";
  for (const auto& sec : BuildSections(report)) {
    o += "\n## " + sec.title + "\n";
    for (const auto& b : sec.blocks) {
      if (const auto* p = std::get_if<std::string>(&b)) {
        o += "\n" + MdCell(*p) + "\n";
      } else if (const auto* t = std::get_if<Table>(&b)) {
        o += "\n|";
        for (const auto& hd : t->header) o += " " + MdCell(hd) + " |";
        o += "\n|";
        for (size_t i = 0; i < t->header.size(); ++i) o += " --- |";
        o += "\n";
        for (const auto& row : t->rows) {
          o += "|";
          for (const auto& cell : row) o += " " + MdCell(cell) + " |";
          o += "\n";
        }
      }
    }
  }
  return o;
}

std::string RenderHtml(const Report& report) {
  std::string o =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<title>Resonance report</title>\n<style>";
  o += kCss;
  o += "</style>\n</head>\n<body>\n<h1>Resonance report</h1>\n";
  for (const auto& sec : BuildSections(report)) {
    o += "<section>\n<h2>" + Esc(sec.title) + "</h2>\n";
    for (const auto& b : sec.blocks) {
      if (const auto* p = std::get_if<std::string>(&b)) {
        o += std::string("<p") + (*p == kNone ? " class=\"none\"" : "") + ">" + Esc(*p) + "</p>\n";
      } else if (const auto* t = std::get_if<Table>(&b)) {
        o += "<table>\n<thead><tr>";
        for (const auto& hd : t->header) o += "<th>" + Esc(hd) + "</th>";
        o += "</tr></thead>\n<tbody>\n";
        for (const auto& row : t->rows) {
          o += "<tr>";
          for (const auto& cell : row) o += "<td>" + Esc(cell) + "</td>";
          o += "</tr>\n";
        }
        o += "</tbody>\n</table>\n";
      } else {
        o += Svg(std::get<Chart>(b));
      }
    }
    o += "</section>\n";
  }
  o += "</body>\n</html>\n";
  return o;
}

}  // namespace resonance::cli
