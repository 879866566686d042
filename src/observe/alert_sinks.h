#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "observe/alert.h"
#include "observe/http_post.h"

namespace resonance::alerts {

// Writes each delivered alert as one log line (observe/log.h, module "alerts"):
// warn when it fires (error when its severity is "critical"), info when it resolves
// (and for a pending one). msg is AlertText; fields alert, state, severity,
// fingerprint, value. Thread-safe; holds no state. name() is "log".
class LogSink final : public Sink {
 public:
  void Deliver(const Alert& alert) override;
  std::string name() const override { return "log"; }
};

// Keeps one file per alert in a directory: DIR/<name>-<fingerprint>.json holds
// AlertJson and a newline, rewritten on every delivery (so a resolved alert's file
// stays, with "state":"resolved"; nothing is ever deleted). Each write goes to
// <file>.tmp and is renamed over the file, so a reader sees the old or the new
// content, never a mix; nothing is fsync'ed. DIR is created (with parents) when
// missing. The names cannot clash with the supervisor's <pool>_alert.json files in
// the same alerts/ directory: ours hold a '-' and 16 hex digits before ".json".
//
// Deliver never throws and never fails: a write error (directory not creatable, disk
// full, permissions) is logged once per file at error level; after a later
// successful write to that file, the next error is logged again. Refresh does
// nothing. Thread-safe (one mutex around the write). name() is "file:<dir>".
class FileSink final : public Sink {
 public:
  explicit FileSink(std::string dir);

  void Deliver(const Alert& alert) override;
  std::string name() const override { return "file:" + dir_; }

  // "<name>-<fingerprint>.json", with the name's bytes other than [A-Za-z0-9_.-] as
  // '_' (and an empty name as "alert"), so the file stays inside DIR.
  static std::string FileName(const Alert& alert);

 private:
  const std::string dir_;
  std::mutex mu_;
  std::set<std::string> failing_;  // guarded by mu_: files whose last write failed
};

struct WebhookOptions {
  enum class Format {
    // POST <url>/api/v2/alerts (Alertmanager v2 postableAlerts). Refresh re-sends.
    kAlertmanager,
    // POST <url> as given, {"text":AlertText,"alert":AlertJson} (Slack-style incoming
    // webhooks read "text"). Refresh sends nothing.
    kJson,
  };
  std::string url;  // http://host[:port][/path], see ParseHttpUrl
  Format format = Format::kAlertmanager;
  size_t queue_size = 1024;   // POSTs waiting; when full the oldest is dropped. >= 1
  int timeout_ms = 2000;      // connect + send + answer, per attempt. >= 1
  int max_attempts = 5;       // attempts per POST before giving up. >= 1
  int backoff_ms = 1000;      // wait after the first failed attempt, doubling, <= 30 s. >= 0
  std::string generator_url;  // Alertmanager's generatorURL; left out when empty
};

// The body of a POST /api/v2/alerts: a JSON array with one postable alert for each
// alert, in order:
// [{"labels":{"alertname":NAME,"severity":SEV,<the other labels>},
//   "annotations":{...},"startsAt":<firing_since>,"endsAt":<resolved_at>,
//   "generatorURL":<generator_url>}]
// alertname and severity come from the alert's name and severity (labels of those
// names are left out); severity is left out when empty. startsAt is firing_since
// (active_since while 0; left out when both are 0), endsAt only for a resolved alert
// with resolved_at set, generatorURL only when not empty.
std::string AlertmanagerJson(const std::vector<Alert>& alerts, std::string_view generator_url);

// The body of a kJson POST: {"text":AlertText(alert),"alert":AlertJson(alert)}.
std::string WebhookJson(const Alert& alert);

// Sends alerts over HTTP from one background thread it owns (named "resonance-alert",
// started with every signal blocked, so a process that waits for signals with sigwait
// never loses one to it). Thread-safe: Deliver, Refresh and the counters may be
// called from any thread.
//
// Deliver and Refresh only queue a POST, under a mutex held for queue operations:
// they never wait on the network. Deliver queues one POST for a firing or resolved
// alert (a pending one is ignored). Refresh, in kAlertmanager format, queues one POST
// of all the firing alerts it is given (none when there are none), and first removes
// a Refresh POST still waiting, which counts as dropped; in kJson format it does
// nothing. When queue_size POSTs are already waiting, the oldest is dropped and
// counted in dropped().
//
// The thread sends the POSTs one at a time, in order. A 2xx answer counts the POST
// in delivered(); anything else (another status, no connection, a timeout, a broken
// answer) is tried again after backoff_ms, then twice that, and so on up to 30 s,
// up to max_attempts attempts in all; then the POST counts in failed() and one
// warning is logged for it. Meanwhile later POSTs wait in the queue. The HTTP client
// is HttpPoster: plain TCP, one connection kept alive.
//
// Every POST queued ends up counted once in delivered, failed or dropped, except those
// still queued or in flight when the sink is destroyed.
class WebhookSink final : public Sink {
 public:
  // Parses the URL and starts the thread; connects only when there is something to
  // send. kInvalidArgument for a bad URL (see ParseHttpUrl; the message starts with
  // "webhook URL") or option; kInternal if the thread or its wake-up pipe cannot be
  // made.
  static Result<std::unique_ptr<WebhookSink>> Start(WebhookOptions options);

  // Stops the thread promptly: aborts a POST in flight, cuts a backoff short, and
  // drops what is queued (counted nowhere).
  ~WebhookSink() override;

  WebhookSink(const WebhookSink&) = delete;
  WebhookSink& operator=(const WebhookSink&) = delete;

  void Deliver(const Alert& alert) override;
  void Refresh(const std::vector<Alert>& firing) override;
  // "alertmanager:<url>" or "webhook:<url>", the URL as given.
  std::string name() const override;

  uint64_t delivered() const;  // POSTs answered 2xx
  uint64_t failed() const;     // POSTs given up after max_attempts
  uint64_t dropped() const;    // POSTs dropped from a full queue or replaced by a Refresh

  // The path POSTs go to: for kAlertmanager the URL's path with "/api/v2/alerts"
  // appended (unless it already ends so; a trailing '/' is not doubled, a query is
  // kept after it), for kJson the URL's path as given ("/" when empty).
  const std::string& path() const { return path_; }

 private:
  struct Item {
    bool refresh = false;       // a Refresh (all firing alerts) rather than a Deliver
    std::vector<Alert> alerts;  // one for a Deliver
  };

  WebhookSink(WebhookOptions options, std::string path, std::unique_ptr<HttpPoster> poster);
  void Run();
  void PushLocked(Item item);
  // Sends one item with retries; returns early when stopping.
  void Send(const Item& item);

  const WebhookOptions options_;
  const std::string path_;
  const std::unique_ptr<HttpPoster> poster_;  // Post only from the thread

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // guarded by mu_
  bool stopping_ = false;   // guarded by mu_

  std::atomic<uint64_t> delivered_{0};
  std::atomic<uint64_t> failed_{0};
  std::atomic<uint64_t> dropped_{0};

  std::thread thread_;  // set once in Start, joined by the destructor
};

}  // namespace resonance::alerts
