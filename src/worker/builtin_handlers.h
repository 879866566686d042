#pragma once

#include <memory>

#include "worker/handler.h"
#include "worker/handler_config.h"

namespace resonance::worker {

// The built-in handlers, for canaries, tests and benchmarks (docs/workers.md):
//   noop   completes at once, no result.
//   sleep  payload {"seconds": S}: waits S seconds (stoppable), result {"slept_s": S}.
//   fail   payload {"class","message","retry_after_s"}: fails with them (default
//          temporary, "failed by the fail handler"); an unknown class is validation.
//   http   payload {"url","method","body"}: one request (plain http). 2xx/3xx: result
//          {"status","body"}; 429: rate_limited with Retry-After seconds; >= 500 and
//          connection failures: temporary; other 4xx: validation.
// A payload field of the wrong type fails the task as validation. Not thread-safe.
std::unique_ptr<Handler> MakeBuiltinHandler(const HandlerConfig& config);

// The canary's handler (kCanaryAction): succeeds at once with
// {"canary":"ok","worker":<worker id>}, so the server measures the path through a
// real worker (lease, run, report) and not a handler's work.
std::unique_ptr<Handler> MakeCanaryHandler(const std::string& worker_id);

}  // namespace resonance::worker
