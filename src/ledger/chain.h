#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/clock.h"
#include "core/ledger_record.h"

namespace resonance {

// ---------------------------------------------------------------------------
// On-disk contract (DESIGN.md §6). Every stored ledger hash depends on the text
// below, byte for byte. Changing anything here (key order, escaping, number
// format, the empty-data rule, the checkpoint data layout, the digest) breaks
// every existing ledger: it needs a new kLedgerHashVersion and a verifier that
// knows both versions. ledger_test.cc pins one known hash so it cannot change
// silently.
// ---------------------------------------------------------------------------

// Version of the hash rule below. Not stored per record yet: there is only one.
constexpr int kLedgerHashVersion = 1;

// The hash the first record (seq 1) chains from: 64 '0' characters.
constexpr std::string_view kGenesisHash =
    "0000000000000000000000000000000000000000000000000000000000000000";

// Kind of the record LedgerChain::AppendCheckpoint writes.
constexpr std::string_view kCheckpointKind = "ledger.checkpoint";

// The canonical text of an event, the part of a record the hash covers:
//   {"seq":N,"ts":N,"kind":"...","task_id":"...","data":<data>}
// written with JsonWriter in exactly that key order, no whitespace, strings
// escaped by AppendJsonString, seq and ts as plain decimal integers. `data` is
// inserted raw, as stored (never re-serialised); empty data is written as {}.
// The record's own `hash` field is not part of it.
std::string CanonicalEventText(const LedgerRecord& r);

// Lowercase hex SHA-256 of prev_hash_hex followed by CanonicalEventText(r), i.e.
// hash(n) = hex(SHA-256(hash(n-1) || canonical(n))), hash(0) = kGenesisHash.
// Aborts the process if OpenSSL fails to digest (out of memory / broken library):
// a ledger cannot be written without its hashes.
std::string LedgerHash(std::string_view prev_hash_hex, const LedgerRecord& r);

// What a checkpoint record names: the record immediately before it.
struct CheckpointAnchor {
  int64_t prev_seq = 0;
  std::string prev_hash;
};

// The data of a checkpoint record, exactly {"prev_seq":N,"prev_hash":"<hex>"}.
std::string CheckpointData(int64_t prev_seq, std::string_view prev_hash);

// Reads data written by CheckpointData. Strict: returns nullopt unless `data` is
// byte for byte what CheckpointData would write for some prev_seq >= 0 and a
// 64-character lowercase hex prev_hash (no extra keys, spaces or reordering).
std::optional<CheckpointAnchor> ParseCheckpointData(std::string_view data);

// The head of the hash chain: the last seq and hash written. Append builds the
// next record (seq, hash) and advances the head; the caller persists it.
// Not thread-safe: the engine calls it under its own mutex. If persisting a
// returned record fails, the head is already past it; the caller must rebuild
// the chain from what is stored (LedgerChain(last_seq, last_hash)).
class LedgerChain {
 public:
  // An empty ledger: last_seq 0, last_hash kGenesisHash.
  LedgerChain();
  // Resumes after recovery from the last stored record. Not validated here;
  // LedgerVerifier checks the stored chain.
  LedgerChain(int64_t last_seq, std::string last_hash);

  // Returns the next record: seq = last_seq() + 1, hash chained from last_hash().
  // Empty data is stored as-is and hashed as {}.
  LedgerRecord Append(Micros ts, std::string kind, std::string task_id, std::string data);

  // Appends a "ledger.checkpoint" record with empty task_id whose data names the
  // record before it: CheckpointData(last_seq(), last_hash()). Segments before a
  // checkpoint may then be archived; verification can start at the checkpoint.
  LedgerRecord AppendCheckpoint(Micros ts);

  int64_t last_seq() const { return last_seq_; }
  const std::string& last_hash() const { return last_hash_; }

 private:
  int64_t last_seq_ = 0;
  std::string last_hash_;
};

}  // namespace resonance
