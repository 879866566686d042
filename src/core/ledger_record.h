#pragma once

#include <cstdint>
#include <string>

#include "core/clock.h"

namespace resonance {

// One event of the hash-chained ledger (DESIGN.md §6).
// hash = hex(SHA-256(prev_hash_hex || canonical(event))), see ledger/chain.h.
// Persisted in `ledger`. Changing a field needs a new migration in
// store/sqlite/schema.cc and a bump of kSchemaVersion, and a new hash version.
struct LedgerRecord {
  int64_t seq = 0;       // 1, 2, 3 ... without gaps
  Micros ts = 0;
  std::string kind;      // e.g. "task.enqueued", "task.leased", "ledger.checkpoint"
  std::string task_id;   // empty when the event is not about one task
  std::string data;      // a JSON object, written by the engine
  std::string hash;      // 64 lowercase hex characters
};

}  // namespace resonance
