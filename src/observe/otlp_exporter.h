#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "core/status.h"
#include "observe/http_post.h"
#include "observe/trace.h"

namespace resonance::trace {

// Where an OTLP/HTTP collector listens, taken apart from its URL. path starts with
// '/': "/v1/traces" when the URL has none.
using OtlpEndpoint = HttpUrl;

// ParseHttpUrl (observe/http_post.h) with OTLP's default path: reads
// "http://host[:port][/path]"; port defaults to 80 (URL rules, not OTLP's 4318); an
// empty path becomes "/v1/traces", any other path is kept as written (query
// included). kInvalidArgument, saying what is wrong ("OTLP endpoint \"<url>\": ..."),
// for whatever ParseHttpUrl refuses.
Result<OtlpEndpoint> ParseOtlpEndpoint(std::string_view url);

struct ExporterOptions {
  std::string endpoint;  // see ParseOtlpEndpoint
  std::string service_name = "resonance";
  std::vector<Attribute> resource_attributes;  // e.g. service.instance.id, service.version
  size_t queue_size = 8192;                    // spans waiting; beyond this Push drops. >= 1
  size_t batch_size = 512;                     // spans per POST. >= 1
  int flush_ms = 1000;    // a partial batch is sent once its oldest span waited this long
  int timeout_ms = 2000;  // connect + send + receive, per POST. >= 1
};

// Sends spans to an OTLP/HTTP (JSON) collector from one background thread it owns.
// Thread-safe: Push, Shutdown and the counters may be called from any thread.
//
// Push never waits on the network: it takes a mutex held only for queue operations,
// and drops the span (dropped_queue_full) when queue_size spans are already waiting.
// The thread POSTs a batch as soon as batch_size spans wait, or when the oldest has
// waited flush_ms. A batch that fails (no connection, timeout, non-2xx answer, broken
// answer) is dropped and counted in dropped_export_failed: spans are never re-sent.
// After a failure the thread waits a backoff (1 s, doubling to 30 s, plus up to 10 %
// jitter; back to none on the next success) before the next POST; meanwhile Push keeps
// queueing, and dropping on overflow.
//
// HTTP/1.1 over plain TCP, one connection kept alive between batches when the
// collector allows it; a connection found closed while idle is replaced before use,
// and a POST whose reused connection dies before any answer byte is tried once more
// on a new one. Names are resolved with getaddrinfo on the thread, at each connect.
// BUG: getaddrinfo has no timeout, so a stuck resolver can hold the thread (never
// Push) longer than timeout_ms, and delay Shutdown by as much.
//
// Every span handed to Push ends up counted exactly once: exported,
// dropped_queue_full (including Pushes after Shutdown began) or dropped_export_failed
// (including spans still queued when Shutdown's grace runs out).
class Exporter {
 public:
  // Parses the endpoint and starts the thread; connects only when there is something
  // to send. kInvalidArgument for a bad endpoint (see ParseOtlpEndpoint) or option;
  // kInternal if the thread or its wake-up pipe cannot be made.
  static Result<std::unique_ptr<Exporter>> Start(ExporterOptions options);

  // Shutdown(0): stops the thread promptly, aborting a POST in flight.
  ~Exporter();

  Exporter(const Exporter&) = delete;
  Exporter& operator=(const Exporter&) = delete;

  // Queues a finished span, or drops it (dropped_queue_full) if the queue is full or
  // Shutdown has begun.
  void Push(Span span);

  // Stops accepting spans, sends what is queued (batch by batch, stopping at the
  // first failure) for up to grace_ms, counts what is left as dropped_export_failed,
  // and joins the thread. A POST in flight when the grace runs out is aborted. Calling
  // it again, or from several threads, is safe; a later call with a shorter grace
  // cuts a running one short.
  void Shutdown(int grace_ms);

  uint64_t exported() const;  // spans in batches the endpoint answered 2xx
  uint64_t dropped_queue_full() const;
  uint64_t dropped_export_failed() const;
  // Why the last failed POST failed ("" if none has): for status pages and logs.
  std::string last_error() const;

 private:
  struct Queued {
    int64_t pushed_ns;  // steady clock
    Span span;
  };

  Exporter(ExporterOptions options, std::unique_ptr<HttpPoster> poster);
  void Run();
  // Moves up to batch_size spans from the front of queue_ into *batch.
  void TakeBatchLocked(std::vector<Span>* batch);
  // POSTs one batch before `deadline_ns` and counts the outcome; true on 2xx.
  bool ExportBatch(const std::vector<Span>& batch, int64_t deadline_ns);

  const ExporterOptions options_;
  // The endpoint and its one keep-alive connection. Post only from the thread;
  // Shutdown calls AbortAt to cut a POST short.
  const std::unique_ptr<HttpPoster> poster_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Queued> queue_;  // guarded by mu_
  bool stopping_ = false;     // guarded by mu_
  std::string last_error_;    // guarded by mu_

  // Steady-clock ns after which the thread gives up on all I/O; INT64_MAX until
  // Shutdown sets it to now + grace.
  std::atomic<int64_t> stop_deadline_ns_;
  std::atomic<uint64_t> exported_{0};
  std::atomic<uint64_t> dropped_queue_full_{0};
  std::atomic<uint64_t> dropped_export_failed_{0};

  std::mutex join_mu_;  // serialises joining thread_
  std::thread thread_;  // guarded by join_mu_ after Start
};

}  // namespace resonance::trace
