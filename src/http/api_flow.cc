// GET /api/flow and GET /api/breakers: limits, pauses and breakers as the engine holds
// them now (docs/flow-control.md).
#include "core/json_writer.h"
#include "http/api.h"

namespace resonance::http {
namespace {

void WriteBreakers(JsonWriter& w, const FlowSnapshot& f) {
  w.Key("breakers").BeginArray();
  for (const auto& b : f.breakers) {
    w.BeginObject().Key("action").String(b.action).Key("state").String(b.state);
    w.Key("attempts").Int(b.attempts).Key("failures").Int(b.failures);
    w.Key("opened_at").TimeOrNull(b.opened_at).Key("probe_at").TimeOrNull(b.probe_at);
    w.Key("opened_total").Int(static_cast<int64_t>(b.opened_total)).EndObject();
  }
  w.EndArray();
}

}  // namespace

void Api::Flow(Request&, Respond respond) {
  const FlowSnapshot f = engine_.Flow();
  std::string body;
  JsonWriter w(body);
  w.BeginObject().Key("limits").BeginArray();
  for (const auto& g : f.gates) {
    w.BeginObject().Key("scope").String(g.scope).Key("name").String(g.name);
    w.Key("key").StringOrNull(g.key);
    if (g.rate > 0) {
      w.Key("rate_per_s").Double(g.rate).Key("burst").Double(g.burst);
      w.Key("tokens").Double(g.tokens);
    } else {
      w.Key("rate_per_s").Null().Key("burst").Null().Key("tokens").Null();
    }
    w.Key("concurrency");
    if (g.concurrency > 0) {
      w.Int(g.concurrency);
    } else {
      w.Null();
    }
    w.Key("running").Int(g.running).Key("paused_until").TimeOrNull(g.paused_until).EndObject();
  }
  w.EndArray();
  WriteBreakers(w, f);
  w.Key("held").BeginObject();
  static const char* const kReasons[] = {"rate", "concurrency", "backpressure", "breaker"};
  for (int i = 0; i < 4; ++i) w.Key(kReasons[i]).Int(static_cast<int64_t>(f.held[i]));
  w.EndObject().Key("pauses").Int(static_cast<int64_t>(f.pauses)).EndObject();
  respond(JsonReply(200, std::move(body)));
}

void Api::Breakers(Request&, Respond respond) {
  const FlowSnapshot f = engine_.Flow();
  std::string body;
  JsonWriter w(body);
  w.BeginObject();
  WriteBreakers(w, f);
  w.EndObject();
  respond(JsonReply(200, std::move(body)));
}

}  // namespace resonance::http
