#pragma once

#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/status.h"
#include "engine/engine.h"
#include "observe/metrics.h"
#include "store/store.h"

namespace resonance {

// Ledger kinds written by Credentials. Their data names the credential, its version and
// expiry, never its value.
inline constexpr std::string_view kCredentialUpdated = "credential.updated";
inline constexpr std::string_view kCredentialDeleted = "credential.deleted";
inline constexpr std::string_view kCredentialRefreshScheduled = "credential.refresh_scheduled";

inline constexpr Micros kDefaultRefreshBefore = 300 * kMicrosPerSecond;
inline constexpr size_t kMaxCredentialValueBytes = 64 * 1024;
inline constexpr size_t kMaxCredentials = 1000;

// One [credentials.NAME] table of the config, with the value already read (from
// value, value_env or value_file). Value type.
// A table without a value declares the name (for [actions] and the refresh settings):
// its value comes from PUT /api/credentials/NAME.
struct CredentialSpec {
  std::string name;
  bool has_value = false;
  std::string value;
  Micros expires_at = 0;       // 0 = never expires
  std::string refresh_action;  // empty = the server never schedules a refresh
  std::string refresh_queue{kDefaultQueue};
  Micros refresh_before = kDefaultRefreshBefore;  // refresh at expires_at - refresh_before
};

enum class CredentialState { kValid, kExpiring, kExpired };
std::string_view CredentialStateName(CredentialState s);

// What may be shown of a credential: everything but its value. Value type.
struct CredentialInfo {
  std::string name;
  Micros expires_at = 0;  // 0 = never
  Micros updated_at = 0;
  int64_t version = 0;
  std::string refresh_action;  // empty = none
  std::string refresh_queue;
  Micros refresh_before = kDefaultRefreshBefore;
  Micros next_refresh_at = 0;  // 0 = none (no expiry, no refresh action, or already enqueued)
  bool refresh_scheduled = false;  // a refresh task was enqueued for this version
  CredentialState state = CredentialState::kValid;
};

// A new value (and expiry, 0 = never) set through the API.
struct CredentialUpdate {
  std::string value;
  Micros expires_at = 0;
};

// True for 1 to 128 characters of [A-Za-z0-9_.-].
bool ValidCredentialName(std::string_view name);

// Reads a duration: an integer or decimal number of seconds ("300", 300, "1.5") or a
// number with one unit suffix s, m, h or d ("90s", "5m", "2h", "1d"). nullopt when
// malformed or negative.
std::optional<Micros> ParseDuration(std::string_view text);

// When the refresh of a value that expires at `expires_at` and was set at `updated_at`
// is due: expires_at - refresh_before, but not before half of the value's lifetime, so a
// token that lives shorter than 2 * refresh_before cannot start a refresh loop (each
// renewal immediately due again).
Micros RefreshDueAt(Micros expires_at, Micros updated_at, Micros refresh_before);

// Hex SHA-256 of a config value and its expiry (CredentialRecord::config_hash).
std::string CredentialConfigHash(std::string_view value, Micros expires_at);

// The server's named secrets (docs/credentials.md): the config's specs merged with what
// the store holds, changes through the API, the values handed to leases, and the
// refresh tasks scheduled before expiry. Thread-safe (one mutex; lock order is
// Credentials before Engine, the engine never calls back in). Returns copies.
//
// Every change is applied in memory at once and written with its ledger record in one
// batch through Engine::RecordEvent; the callback runs once it is durable. Values never
// leave this class except through Values() (for lease answers).
class Credentials {
 public:
  template <typename T>
  using Callback = std::function<void(const Status&, T)>;

  // engine, store and clock must outlive this object.
  Credentials(Engine& engine, Store& store, const Clock& clock, std::vector<CredentialSpec> specs);

  // Reads the stored credentials and merges the config's specs: a name the store lacks is
  // written from the config (version 1); a stored name whose config value or expiry
  // changed since it was last taken over (config_hash differs) takes the config's value
  // with its version bumped; otherwise the stored value (set by a refresh) stays. Stored
  // names the config does not know stay as they are. The writes are submitted, not
  // awaited. Call once, after Engine::Recover and before anything else. Fails with the
  // store's error.
  Status Load();

  // Sets a value: kInvalidArgument for a bad name; kUnprocessable for an empty value,
  // one over 64 KiB or holding a NUL byte, an expiry not in the future, or a new name
  // past kMaxCredentials. Bumps the version; done gets the new metadata once durable.
  void Put(const std::string& name, CredentialUpdate update, Callback<CredentialInfo> done);
  // kNotFound when unknown. The store keeps the name's version (with an empty value), so
  // a credential created again under that name goes on from it. A name the config gives
  // a value comes back from the config at the next start.
  void Delete(const std::string& name, Callback<CredentialInfo> done);

  std::vector<CredentialInfo> List() const;
  // kNotFound when unknown (kInvalidArgument for a bad name).
  Result<CredentialInfo> Get(const std::string& name) const;
  // The current values of the known names among `names`, in their order (unknown names
  // are skipped: see Missing). The only way a value leaves this class.
  std::vector<std::pair<std::string, std::string>> Values(const std::vector<std::string>& names) const;

  // Enqueues one refresh task per credential that has a refresh action and reached
  // expires_at - refresh_before, at most one per version (idempotency key
  // credential:NAME:VERSION, which also holds across restarts), and logs a warning
  // (naming only the credential) once per version that expired. Call every second or so.
  void Tick();

  // resonance_credential_expiry_seconds{name}, set at scrape time.
  void RegisterMetrics(metrics::Registry& registry);

 private:
  struct Entry {
    CredentialRecord record;
    const CredentialSpec* spec = nullptr;  // into specs_; nullptr = not in the config
    int64_t refresh_version = 0;  // version whose refresh task was enqueued (or is being)
    int64_t warned_version = 0;   // version whose expiry was logged
  };
  CredentialInfo InfoOf(const Entry& e, Micros now) const;  // mu_ held
  const CredentialSpec* SpecOf(std::string_view name) const;
  // Submits the record and its ledger event; done gets status and info once durable.
  void SubmitLocked(const Entry& e, std::string_view source, Callback<CredentialInfo> done);
  void ScheduleRefresh(std::string name, int64_t version, NewTask task);
  // Called from engine callbacks, which may run under the engine's lock: never takes
  // mu_, only failed_mu_ (a leaf); Tick applies the list.
  void RefreshFailed(const std::string& name, int64_t version, const std::string& why);

  Engine& engine_;
  Store& store_;
  const Clock& clock_;
  const std::vector<CredentialSpec> specs_;

  mutable std::mutex mu_;
  std::map<std::string, Entry, std::less<>> entries_;  // guarded by mu_
  // Last version of each deleted name: a new credential of that name goes on from it.
  std::map<std::string, int64_t, std::less<>> retired_;  // guarded by mu_
  std::mutex failed_mu_;
  std::vector<std::pair<std::string, int64_t>> failed_refreshes_;  // guarded by failed_mu_
};

}  // namespace resonance
