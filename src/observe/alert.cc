#include "observe/alert.h"

#include <algorithm>
#include <string_view>

#include "core/json_writer.h"

namespace resonance::alerts {

namespace {

constexpr uint64_t kFnvOffset = 14695981039346656037ULL;
constexpr uint64_t kFnvPrime = 1099511628211ULL;

void Mix(uint64_t& h, std::string_view bytes) {
  for (char c : bytes) {
    h ^= static_cast<unsigned char>(c);
    h *= kFnvPrime;
  }
}

void MixSeparator(uint64_t& h) {
  h ^= 0xff;
  h *= kFnvPrime;
}

bool KeyLess(const std::pair<std::string, std::string>& a,
             const std::pair<std::string, std::string>& b) {
  return a.first < b.first;
}

void WriteLabels(JsonWriter& w, const Labels& labels) {
  w.BeginObject();
  for (const auto& [key, value] : labels) w.Key(key).String(value);
  w.EndObject();
}

// Appends s with control characters turned into spaces, so the text stays one line.
void AppendOneLine(std::string& out, std::string_view s) {
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    out.push_back(u < 0x20 || u == 0x7f ? ' ' : c);
  }
}

}  // namespace

const char* AlertStateName(AlertState s) {
  switch (s) {
    case AlertState::kPending:
      return "pending";
    case AlertState::kFiring:
      return "firing";
    case AlertState::kResolved:
      return "resolved";
  }
  return "pending";
}

std::string Fingerprint(const std::string& name, const Labels& labels) {
  // Sorted by key by contract; sort a copy if a caller forgot, so the fingerprint never
  // depends on the order labels were built in.
  Labels sorted;
  const Labels* use = &labels;
  if (!std::is_sorted(labels.begin(), labels.end(), KeyLess)) {
    sorted = labels;
    std::stable_sort(sorted.begin(), sorted.end(), KeyLess);
    use = &sorted;
  }
  uint64_t h = kFnvOffset;
  Mix(h, name);
  for (const auto& [key, value] : *use) {
    MixSeparator(h);
    Mix(h, key);
    MixSeparator(h);
    Mix(h, value);
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out(16, '0');
  for (int i = 15; i >= 0; --i) {
    out[static_cast<size_t>(i)] = kHex[h & 15];
    h >>= 4;
  }
  return out;
}

std::string AlertJson(const Alert& a) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("name").String(a.name);
  w.Key("state").String(AlertStateName(a.state));
  w.Key("severity").String(a.severity);
  w.Key("labels");
  WriteLabels(w, a.labels);
  w.Key("annotations");
  WriteLabels(w, a.annotations);
  w.Key("value").Double(a.value);
  w.Key("threshold").Double(a.threshold);
  w.Key("active_since").TimeOrNull(a.active_since);
  w.Key("firing_since").TimeOrNull(a.firing_since);
  w.Key("resolved_at").TimeOrNull(a.resolved_at);
  w.Key("fingerprint")
      .String(a.fingerprint.empty() ? Fingerprint(a.name, a.labels) : a.fingerprint);
  w.EndObject();
  return out;
}

std::string AlertText(const Alert& a) {
  std::string out;
  switch (a.state) {
    case AlertState::kPending:
      out = "[PENDING] ";
      break;
    case AlertState::kFiring:
      out = "[FIRING] ";
      break;
    case AlertState::kResolved:
      out = "[RESOLVED] ";
      break;
  }
  AppendOneLine(out, a.name);
  out.append(" (");
  AppendOneLine(out, a.severity);
  out.push_back(')');
  for (const auto& [key, value] : a.labels) {
    if (key == "alertname" || key == "severity") continue;
    out.push_back(' ');
    AppendOneLine(out, key);
    out.push_back('=');
    AppendOneLine(out, value);
  }
  for (const auto& [key, value] : a.annotations) {
    if (key != "summary" || value.empty()) continue;
    out.append(": ");
    AppendOneLine(out, value);
    break;
  }
  return out;
}

}  // namespace resonance::alerts
