// Live events over Server-Sent Events: GET /api/events and GET /api/tasks/{id}/events
// (docs/api.md §11).
//
// A stream subscribes to the engine's event hub first and learns the ledger's last seq
// S at that moment: every record after S reaches the subscription, every record up to
// S is durable once a Barrier submitted afterwards is done. A resume (Last-Event-ID or
// ?after=A) then replays the store's records after A page by page, one page per pull
// so other connections are served in between, and switches to the subscription's
// buffered events, skipping those at or below the last seq replayed: no gap, no
// duplicate.
#include <charconv>
#include <mutex>

#include "core/json_writer.h"
#include "core/task_id.h"
#include "http/api.h"
#include "http/task_json.h"
#include "observe/log.h"

namespace resonance::http {
namespace {

constexpr int64_t kMaxReplay = 100000;  // ledger records a resume may replay
constexpr int kPage = 1000;             // records per store read
constexpr int kPagesPerPull = 4;
constexpr size_t kPullBytes = 64 * 1024;

bool IsTerminalKind(std::string_view kind) {
  return kind == "task.succeeded" || kind == "task.dead" || kind == "task.cancelled";
}

// One SSE event. Line breaks can only be whitespace in valid JSON, so the ones in
// stored JSON (payloads, results, progress are kept byte for byte) become spaces and
// the data stays on one line.
void AppendSse(std::string& out, int64_t id, std::string_view event, std::string_view data) {
  if (id > 0) {
    out += "id: ";
    out += std::to_string(id);
    out += '\n';
  }
  out += "event: ";
  out += event;
  out += "\ndata: ";
  const size_t start = out.size();
  out += data;
  for (size_t i = start; i < out.size(); ++i) {
    if (out[i] == '\n' || out[i] == '\r') out[i] = ' ';
  }
  out += "\n\n";
}

void AppendStreamEvent(std::string& out, const StreamEvent& e) {
  std::string data;
  JsonWriter w(data);
  w.BeginObject();
  if (e.seq > 0) w.Key("seq").Int(e.seq);
  w.Key("ts").Time(e.ts).Key("kind").String(e.kind).Key("task_id").StringOrNull(e.task_id);
  if (e.seq > 0) {
    w.Key("data").Raw(e.data.empty() ? "{}" : e.data);
  } else {
    w.Key("progress").Raw(e.data.empty() ? "null" : e.data);
  }
  w.EndObject();
  AppendSse(out, e.seq, e.kind, data);
}

// One SSE response: the preamble (retry, reset, snapshot), the replayed backlog, then
// live events. Set up by the handler, then driven by the session on its strand; only
// Notify comes from other threads.
class EventStream final : public StreamSource {
 public:
  EventStream(Store& store, EventFilter filter, bool per_task, int keepalive_ms)
      : store_(store),
        filter_(std::move(filter)),
        per_task_(per_task),
        keepalive_ms_(keepalive_ms) {}

  // Setup, before the reply is handed to the session.
  void Attach(std::unique_ptr<EventSubscription> sub, int64_t last_seq) {
    sub_ = std::move(sub);
    last_seq_ = covered_ = last_seq;
  }
  // after < 0: no resume. Past the cap, or past the ledger's end: reset and go live.
  void ResumeAfter(int64_t after) {
    if (after < 0) return;
    resume_after_ = after;
    if (after > last_seq_ || last_seq_ - after > kMaxReplay) {
      reset_ = true;
      return;
    }
    backlog_ = true;
    covered_ = after;
  }
  bool resuming() const { return backlog_; }
  // Per-task streams: the task as read after the subscription started. The snapshot is
  // sent unless the stream resumes; a terminal task ends the stream after it (or, when
  // resuming, after the backlog: its terminal event is then in the backlog or was seen).
  void SetTask(std::string snapshot, bool terminal) {
    snapshot_ = std::move(snapshot);
    task_terminal_ = terminal;
  }

  // The subscription's wake: from a publishing thread.
  void Notify() {
    std::lock_guard lock(mu_);
    if (wake_) wake_();
  }

  void Start(std::function<void()> wake) override {
    std::lock_guard lock(mu_);
    wake_ = std::move(wake);
  }

  // Fell behind: the stream ends, and the client resumes with Last-Event-ID.
  bool Abandoned() const override { return sub_ && sub_->dropped(); }

  State Pull(std::string* out) override {
    if (!started_) {
      started_ = true;
      *out += "retry: 2000\n\n";
      if (reset_) {
        std::string data;
        JsonWriter w(data);
        w.BeginObject().Key("reason").String(resume_after_ > last_seq_ ? "ahead_of_ledger"
                                                                       : "too_far_behind");
        w.Key("after").Int(resume_after_).Key("last_seq").Int(last_seq_);
        w.Key("max_replay").Int(kMaxReplay).EndObject();
        AppendSse(*out, 0, "reset", data);
      }
      if (per_task_ && !backlog_) {
        AppendSse(*out, 0, "snapshot", snapshot_);
        if (task_terminal_) return State::kEnd;
      }
      return State::kMore;
    }
    return backlog_ ? Backlog(out) : Live(out);
  }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      wake_ = nullptr;
    }
    sub_.reset();
  }

  int keepalive_ms() const override { return keepalive_ms_; }
  std::string KeepAlive() override { return ": keep-alive\n\n"; }

 private:
  State Backlog(std::string* out) {
    for (int i = 0; i < kPagesPerPull && out->size() < kPullBytes; ++i) {
      auto page = store_.ReadLedger(covered_, kPage);
      if (!page.ok()) {
        log::Warn("http", "event stream ends: ledger read failed: " + page.status().ToString());
        return State::kEnd;
      }
      for (LedgerRecord& r : *page) {
        covered_ = r.seq;
        StreamEvent e{r.seq, r.ts, std::move(r.kind), std::move(r.task_id), std::move(r.data)};
        if (!filter_.Matches(e)) continue;
        AppendStreamEvent(*out, e);
        if (per_task_ && IsTerminalKind(e.kind)) return State::kEnd;
      }
      // Past S the subscription has the rest. A finished task reads on to the end: its
      // terminal event committed before the task was read, so it is in the store.
      if (static_cast<int>(page->size()) < kPage || (covered_ >= last_seq_ && !task_terminal_)) {
        backlog_ = false;
        return task_terminal_ ? State::kEnd : State::kMore;
      }
    }
    return State::kMore;
  }

  State Live(std::string* out) {
    for (const auto& e : sub_->Take()) {
      if (e->seq > 0) {
        if (e->seq <= covered_) continue;  // replayed already, or older than the stream
        covered_ = e->seq;
      }
      AppendStreamEvent(*out, *e);
      if (per_task_ && IsTerminalKind(e->kind)) return State::kEnd;
    }
    return out->empty() ? State::kIdle : State::kMore;
  }

  Store& store_;
  const EventFilter filter_;
  const bool per_task_;
  const int keepalive_ms_;
  std::unique_ptr<EventSubscription> sub_;
  int64_t last_seq_ = 0;  // S: the ledger's last seq when the subscription started
  int64_t covered_ = 0;   // every record up to here was sent or filtered out
  int64_t resume_after_ = -1;
  bool reset_ = false;
  bool backlog_ = false;
  bool started_ = false;
  std::string snapshot_;
  bool task_terminal_ = false;
  std::mutex mu_;
  std::function<void()> wake_;  // guarded by mu_
};

// The seq to resume after: the Last-Event-ID header, else ?after=; -1 when neither.
Result<int64_t> ResumeAfter(const Request& req) {
  if (!req.last_event_id.empty()) {
    const std::string& v = req.last_event_id;
    int64_t out = 0;
    auto r = std::from_chars(v.data(), v.data() + v.size(), out);
    if (r.ec != std::errc() || r.ptr != v.data() + v.size() || out < 0) {
      return Status(Code::kInvalidArgument, "Last-Event-ID: must be an event id (a ledger seq)");
    }
    return out;
  }
  return QueryInt(req, "after", -1, 0, INT64_MAX);
}

Reply StreamReply(std::shared_ptr<StreamSource> stream) {
  Reply r;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("X-Accel-Buffering", "no");  // nginx: pass events on at once
  r.stream = std::move(stream);
  return r;
}

std::function<void()> NotifyOf(const std::shared_ptr<EventStream>& stream) {
  return [weak = std::weak_ptr<EventStream>(stream)] {
    if (auto s = weak.lock()) s->Notify();
  };
}

}  // namespace

void Api::Events(Request& req, Respond respond) {
  EventFilter filter;
  if (const std::string* kinds = req.Query("kind")) {
    std::string_view rest = *kinds;
    while (!rest.empty()) {
      const size_t comma = rest.find(',');
      std::string_view prefix = rest.substr(0, comma);
      if (!prefix.empty()) filter.kind_prefixes.emplace_back(prefix);
      rest = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
    }
  }
  auto after = ResumeAfter(req);
  if (!after.ok()) return respond(ErrorReply(after.status()));
  auto stream = std::make_shared<EventStream>(store_, filter, false, options_.sse_keepalive_ms);
  int64_t last_seq = 0;
  auto sub = engine_.Subscribe(std::move(filter), NotifyOf(stream), &last_seq);
  if (!sub) return respond(ErrorReply(Status(Code::kUnavailable, "live events are off")));
  stream->Attach(std::move(sub), last_seq);
  stream->ResumeAfter(*after);
  if (!stream->resuming()) return respond(StreamReply(std::move(stream)));
  // The backlog up to S must be durable before it is read.
  engine_.Barrier([stream, respond](const Status& s) {
    if (!s.ok()) return respond(ErrorReply(s));
    respond(StreamReply(stream));
  });
}

void Api::TaskEvents(Request& req, Respond respond) {
  std::string id = req.params[0];
  if (!ParseTaskId(id)) return respond(ErrorReply(Status(Code::kNotFound, "no task " + id)));
  auto after = ResumeAfter(req);
  if (!after.ok()) return respond(ErrorReply(after.status()));
  EventFilter filter;
  filter.task_id = id;
  auto stream = std::make_shared<EventStream>(store_, filter, true, options_.sse_keepalive_ms);
  int64_t last_seq = 0;
  auto sub = engine_.Subscribe(std::move(filter), NotifyOf(stream), &last_seq);
  if (!sub) return respond(ErrorReply(Status(Code::kUnavailable, "live events are off")));
  stream->Attach(std::move(sub), last_seq);
  stream->ResumeAfter(*after);
  // After the barrier the task read reflects at least every record up to S.
  engine_.Barrier([this, id, stream, respond](const Status& s) {
    if (!s.ok()) return respond(ErrorReply(s));
    OnIo([this, id, stream, respond] {
      auto t = store_.GetTask(id);
      if (!t.ok()) return respond(ErrorReply(t.status()));
      stream->SetTask(TaskJson(*t), IsTerminal(t->state));
      respond(StreamReply(stream));
    });
  });
}

}  // namespace resonance::http
