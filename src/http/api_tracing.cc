// Api: spans about tasks (docs/observability.md, "Traces") and the /metrics text.
#include "core/task_id.h"
#include "http/api.h"
#include "observe/otlp_exporter.h"
#include "observe/trace.h"

namespace resonance::http {

void Api::TraceEnqueued(const SpanOrigin& origin, const std::vector<EnqueueOutcome>& out) {
  if (!options_.tracer) return;
  const int64_t end = trace::NowUnixNano();
  for (const EnqueueOutcome& o : out) {
    if (!o.created) continue;
    auto id = ParseTaskId(o.id);
    if (!id) continue;
    trace::Span span;
    span.trace_id = origin.trace_id;
    span.span_id = trace::SpanIdForTask(*id);
    span.parent_span_id = origin.parent_span_id;
    span.name = "task.enqueue";
    span.kind = trace::SpanKind::kProducer;
    span.start_unix_nano = origin.start_unix_nano;
    span.end_unix_nano = end;
    span.attributes = {{"task.id", o.id},
                       {"task.queue", o.task->queue},
                       {"task.action", o.task->action},
                       {"task.state", std::string(TaskStateName(o.task->state))}};
    options_.tracer->Push(std::move(span));
  }
}

void Api::TraceFinished(const SpanOrigin& origin, const std::string& id, bool success,
                        const Result<TaskState>& outcome) {
  if (!options_.tracer || origin.trace_id.empty() || !outcome.ok()) return;
  trace::Span span;
  span.trace_id = origin.trace_id;
  span.span_id = trace::NewSpanId();
  span.parent_span_id = origin.parent_span_id;
  span.name = "task.finish";
  span.kind = trace::SpanKind::kInternal;
  span.start_unix_nano = origin.start_unix_nano;
  span.end_unix_nano = trace::NowUnixNano();
  span.attributes = {{"task.id", id},
                     {"task.outcome", std::string(success ? "complete" : "fail")},
                     {"task.state", std::string(TaskStateName(*outcome))}};
  span.error = *outcome == TaskState::kDead;
  options_.tracer->Push(std::move(span));
}

void Api::MetricsText(Request&, Respond respond) {
  Reply r{200, options_.metrics->Render()};
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  respond(std::move(r));
}

}  // namespace resonance::http
