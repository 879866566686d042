#include "engine/credentials.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <cmath>

#include "core/json_writer.h"
#include "core/time_format.h"
#include "observe/log.h"

namespace resonance {
namespace {

std::string EventData(const CredentialRecord& r, std::string_view source) {
  std::string data;
  JsonWriter w(data);
  w.BeginObject().Key("credential").String(r.name).Key("version").Int(r.version);
  w.Key("expires_at").TimeOrNull(r.expires_at);
  if (!source.empty()) w.Key("source").String(source);
  w.EndObject();
  return data;
}

}  // namespace

std::string_view CredentialStateName(CredentialState s) {
  switch (s) {
    case CredentialState::kValid: return "valid";
    case CredentialState::kExpiring: return "expiring";
    case CredentialState::kExpired: return "expired";
  }
  return "valid";
}

bool ValidCredentialName(std::string_view name) {
  if (name.empty() || name.size() > 128) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::optional<Micros> ParseDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  double unit = 1;
  switch (text.back()) {
    case 's': unit = 1; text.remove_suffix(1); break;
    case 'm': unit = 60; text.remove_suffix(1); break;
    case 'h': unit = 3600; text.remove_suffix(1); break;
    case 'd': unit = 86400; text.remove_suffix(1); break;
    default: break;
  }
  if (text.empty()) return std::nullopt;
  double n = 0;
  auto r = std::from_chars(text.data(), text.data() + text.size(), n);
  if (r.ec != std::errc() || r.ptr != text.data() + text.size()) return std::nullopt;
  const double seconds = n * unit;
  if (!std::isfinite(seconds) || seconds < 0 || seconds > 100.0 * 365 * 86400) return std::nullopt;
  return static_cast<Micros>(std::llround(seconds * kMicrosPerSecond));
}

Micros RefreshDueAt(Micros expires_at, Micros updated_at, Micros refresh_before) {
  return std::max(expires_at - refresh_before, updated_at + (expires_at - updated_at) / 2);
}

std::string CredentialConfigHash(std::string_view value, Micros expires_at) {
  std::string input(value);
  input.push_back('\0');
  input += std::to_string(expires_at);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr) != 1) {
    std::fputs("resonance: SHA-256 digest failed in engine/credentials.cc\n", stderr);
    std::abort();
  }
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < len; ++i) {
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

Credentials::Credentials(Engine& engine, Store& store, const Clock& clock,
                         std::vector<CredentialSpec> specs)
    : engine_(engine), store_(store), clock_(clock), specs_(std::move(specs)) {}

Status Credentials::Load() {
  auto stored = store_.ListCredentials();
  if (!stored.ok()) return stored.status();
  std::lock_guard lock(mu_);
  for (auto& r : *stored) {
    std::string name = r.name;
    if (r.value.empty()) {
      retired_[name] = r.version;
    } else {
      entries_[name].record = std::move(r);
    }
  }
  const Micros now = clock_.Now();
  for (const CredentialSpec& spec : specs_) {
    if (!spec.has_value) {
      if (auto it = entries_.find(spec.name); it != entries_.end()) it->second.spec = &spec;
      continue;
    }
    const std::string hash = CredentialConfigHash(spec.value, spec.expires_at);
    auto it = entries_.find(spec.name);
    if (it != entries_.end() && it->second.record.config_hash == hash) {
      it->second.spec = &spec;
      continue;  // the config did not change: the stored (maybe refreshed) value stays
    }
    Entry& e = entries_[spec.name];
    if (auto r = retired_.find(spec.name); r != retired_.end()) {
      e.record.version = r->second;
      retired_.erase(r);
    }
    e.spec = &spec;
    e.record.name = spec.name;
    e.record.value = spec.value;
    e.record.expires_at = spec.expires_at;
    e.record.version += 1;
    e.record.updated_at = now;
    e.record.config_hash = hash;
    const std::string name = spec.name;
    SubmitLocked(e, "config", [name](const Status& s, CredentialInfo) {
      if (!s.ok()) log::Error("credentials", "cannot store credential " + name + ": " + s.message());
    });
  }
  return Status::Ok();
}

const CredentialSpec* Credentials::SpecOf(std::string_view name) const {
  for (const auto& spec : specs_) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

CredentialInfo Credentials::InfoOf(const Entry& e, Micros now) const {
  CredentialInfo info;
  const CredentialRecord& r = e.record;
  info.name = r.name;
  info.expires_at = r.expires_at;
  info.updated_at = r.updated_at;
  info.version = r.version;
  if (e.spec) {
    info.refresh_action = e.spec->refresh_action;
    info.refresh_queue = e.spec->refresh_queue;
    info.refresh_before = e.spec->refresh_before;
  }
  info.refresh_scheduled = e.refresh_version == r.version;
  const Micros due = RefreshDueAt(r.expires_at, r.updated_at, info.refresh_before);
  if (r.expires_at != 0 && !info.refresh_action.empty() && !info.refresh_scheduled) {
    info.next_refresh_at = due;
  }
  if (r.expires_at != 0 && now >= r.expires_at) {
    info.state = CredentialState::kExpired;
  } else if (r.expires_at != 0 && now >= due) {
    info.state = CredentialState::kExpiring;
  }
  return info;
}

void Credentials::SubmitLocked(const Entry& e, std::string_view source,
                               Callback<CredentialInfo> done) {
  CredentialInfo info = InfoOf(e, clock_.Now());
  engine_.RecordEvent(
      std::string(kCredentialUpdated), EventData(e.record, source),
      [info = std::move(info), done = std::move(done)](const Status& s) { done(s, info); },
      {PutCredential{e.record}});
}

void Credentials::Put(const std::string& name, CredentialUpdate update,
                      Callback<CredentialInfo> done) {
  if (!ValidCredentialName(name)) {
    return done(Status(Code::kInvalidArgument,
                       "credential name: must be 1 to 128 characters of A-Z a-z 0-9 _ . -"),
                {});
  }
  if (update.value.empty()) return done(Status(Code::kUnprocessable, "value: must not be empty"), {});
  if (update.value.size() > kMaxCredentialValueBytes) {
    return done(Status(Code::kUnprocessable, "value: at most 64 KiB"), {});
  }
  if (update.value.find('\0') != std::string::npos) {
    return done(Status(Code::kUnprocessable, "value: must not contain a NUL character"), {});
  }
  const Micros now = clock_.Now();
  if (update.expires_at != 0 && update.expires_at <= now) {
    return done(Status(Code::kUnprocessable, "expires_at: must be in the future"), {});
  }
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end() && entries_.size() >= kMaxCredentials) {
    return done(Status(Code::kUnprocessable,
                       "at most " + std::to_string(kMaxCredentials) + " credentials"),
                {});
  }
  Entry& e = entries_[name];
  if (it == entries_.end()) {
    e.spec = SpecOf(name);
    if (auto r = retired_.find(name); r != retired_.end()) {
      e.record.version = r->second;
      retired_.erase(r);
    }
  }
  e.record.name = name;
  e.record.value = std::move(update.value);
  e.record.expires_at = update.expires_at;
  e.record.version += 1;
  e.record.updated_at = now;
  SubmitLocked(e, "api", std::move(done));
}

void Credentials::Delete(const std::string& name, Callback<CredentialInfo> done) {
  std::unique_lock lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    return done(Status(Code::kNotFound, "no credential named " +
                                            std::string(ValidCredentialName(name) ? name : "that")),
                {});
  }
  const Micros now = clock_.Now();
  CredentialInfo info = InfoOf(it->second, now);
  CredentialRecord tombstone = it->second.record;
  const std::string data = EventData(tombstone, "");
  tombstone.value.clear();
  tombstone.expires_at = 0;
  tombstone.updated_at = now;
  tombstone.config_hash.clear();
  retired_[name] = tombstone.version;
  entries_.erase(it);
  engine_.RecordEvent(
      std::string(kCredentialDeleted), data,
      [info = std::move(info), done = std::move(done)](const Status& s) { done(s, info); },
      {PutCredential{std::move(tombstone)}});
}

std::vector<CredentialInfo> Credentials::List() const {
  std::lock_guard lock(mu_);
  const Micros now = clock_.Now();
  std::vector<CredentialInfo> out;
  out.reserve(entries_.size());
  for (const auto& [name, e] : entries_) out.push_back(InfoOf(e, now));
  return out;
}

Result<CredentialInfo> Credentials::Get(const std::string& name) const {
  if (!ValidCredentialName(name)) {
    return Status(Code::kInvalidArgument,
                  "credential name: must be 1 to 128 characters of A-Z a-z 0-9 _ . -");
  }
  std::lock_guard lock(mu_);
  auto it = entries_.find(name);
  if (it == entries_.end()) return Status(Code::kNotFound, "no credential named " + name);
  return InfoOf(it->second, clock_.Now());
}

std::vector<std::pair<std::string, std::string>> Credentials::Values(
    const std::vector<std::string>& names) const {
  std::vector<std::pair<std::string, std::string>> out;
  std::lock_guard lock(mu_);
  for (const auto& n : names) {
    auto it = entries_.find(n);
    if (it != entries_.end()) out.emplace_back(n, it->second.record.value);
  }
  return out;
}

void Credentials::Tick() {
  std::vector<std::tuple<std::string, int64_t, NewTask>> due;
  std::vector<std::pair<std::string, int64_t>> failed;
  {
    std::lock_guard lock(failed_mu_);
    failed.swap(failed_refreshes_);
  }
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, version] : failed) {
      auto it = entries_.find(name);
      if (it != entries_.end() && it->second.refresh_version == version) it->second.refresh_version = 0;
    }
    const Micros now = clock_.Now();
    for (auto& [name, e] : entries_) {
      const CredentialRecord& r = e.record;
      if (r.expires_at == 0) continue;
      if (now >= r.expires_at && e.warned_version != r.version) {
        e.warned_version = r.version;
        log::Warn("credentials", "credential " + name + " expired at " +
                                     FormatRfc3339(r.expires_at) +
                                     "; handlers still receive it until it is renewed");
      }
      if (!e.spec || e.spec->refresh_action.empty() || e.refresh_version == r.version) continue;
      if (now < RefreshDueAt(r.expires_at, r.updated_at, e.spec->refresh_before)) continue;
      e.refresh_version = r.version;
      NewTask t;
      t.queue = e.spec->refresh_queue;
      t.action = e.spec->refresh_action;
      std::string payload;
      JsonWriter(payload)
          .BeginObject()
          .Key("credential")
          .String(name)
          .Key("expires_at")
          .Time(r.expires_at)
          .EndObject();
      t.payload = std::move(payload);
      t.idempotency_key = "credential:" + name + ":" + std::to_string(r.version);
      due.emplace_back(name, r.version, std::move(t));
    }
  }
  // Enqueued without mu_ held: a failed store may answer on this thread.
  for (auto& [name, version, task] : due) ScheduleRefresh(name, version, std::move(task));
}

void Credentials::RefreshFailed(const std::string& name, int64_t version, const std::string& why) {
  log::Warn("credentials", "cannot enqueue the refresh of credential " + name + ": " + why);
  std::lock_guard lock(failed_mu_);
  failed_refreshes_.emplace_back(name, version);
}

void Credentials::ScheduleRefresh(std::string name, int64_t version, NewTask task) {
  auto retry_later = [this, name, version](const std::string& why) {
    RefreshFailed(name, version, why);
  };
  if (Status s = ValidateNewTask(task); !s.ok()) return retry_later(s.message());
  const Micros expires_at = [&] {
    std::lock_guard lock(mu_);
    auto it = entries_.find(name);
    return it == entries_.end() ? Micros{0} : it->second.record.expires_at;
  }();
  std::vector<NewTask> one;
  one.push_back(std::move(task));
  engine_.Enqueue(std::move(one), [this, name, version, expires_at, retry_later](
                                      const Status& s, std::vector<EnqueueOutcome> out) {
    if (!s.ok() || out.empty()) return retry_later(s.ok() ? "no task" : s.message());
    if (!out[0].created) return;  // enqueued before (e.g. before a restart)
    std::string data;
    JsonWriter(data)
        .BeginObject()
        .Key("credential")
        .String(name)
        .Key("version")
        .Int(version)
        .Key("expires_at")
        .TimeOrNull(expires_at)
        .Key("task_id")
        .String(out[0].id)
        .EndObject();
    log::Info("credentials", "refresh of credential " + name + " enqueued as task " + out[0].id);
    engine_.RecordEvent(std::string(kCredentialRefreshScheduled), std::move(data),
                        [name](const Status& st) {
                          if (!st.ok()) {
                            log::Warn("credentials", "ledger: refresh of " + name + ": " + st.message());
                          }
                        });
  });
}

void Credentials::RegisterMetrics(metrics::Registry& registry) {
  auto& expiry = registry.AddGauge(
      "resonance_credential_expiry_seconds",
      "When a credential expires (Unix time); credentials without expiry are left out.", {"name"});
  auto& version = registry.AddGauge("resonance_credential_version",
                                    "Version of a credential (bumped by every renewal).", {"name"});
  registry.OnScrape([this, &expiry, &version] {
    std::vector<std::tuple<std::string, Micros, int64_t>> rows;
    {
      std::lock_guard lock(mu_);
      for (const auto& [name, e] : entries_) {
        rows.emplace_back(name, e.record.expires_at, e.record.version);
      }
    }
    expiry.Clear();
    version.Clear();
    for (const auto& [name, at, v] : rows) {
      if (at != 0) expiry.With({name}).Set(static_cast<double>(at) / kMicrosPerSecond);
      version.With({name}).Set(static_cast<double>(v));
    }
  });
}

}  // namespace resonance
