#pragma once

#include <cstdint>
#include <string>

#include "core/ledger_record.h"
#include "core/status.h"

namespace resonance {

// Proves a stored ledger unbroken and gap-free (DESIGN.md §6, `resonance ledger
// verify`). Fed records one at a time in ascending seq order, so a ledger of any
// size streams through in constant memory. Not thread-safe; one per pass.
//
// Rules:
//  - The first record either has seq 1 and chains from kGenesisHash, or is a
//    "ledger.checkpoint" whose data (CheckpointData) names prev_seq == seq - 1;
//    its prev_hash then anchors the chain. This is what lets the segments before
//    a checkpoint be archived or deleted. A checkpoint at seq 1 must name
//    (0, kGenesisHash).
//  - Every later record has seq == previous seq + 1, and
//  - every record's stored hash == LedgerHash(previous hash, record), and
//  - every checkpoint names the true previous seq and hash.
// Trust: a ledger verified from a checkpoint is only proven back to that
// checkpoint. Whoever can rewrite the whole tail can also forge its first
// checkpoint; anchoring heads outside the ledger is a separate concern.
//
// Errors: every violation is Code::kConflict (the stored chain contradicts
// itself; it is not bad input to an API call). The message names the first bad
// seq, e.g. "gap: expected seq 4, found 5" or "hash mismatch at seq 7". The
// first error is sticky: later Add calls and Finish return it again.
class LedgerVerifier {
 public:
  struct Summary {
    int64_t records = 0;      // records accepted
    int64_t first_seq = 0;    // 0 while no record was accepted
    int64_t last_seq = 0;     // 0 while no record was accepted
    int64_t checkpoints = 0;  // "ledger.checkpoint" records accepted, first included
  };

  // Checks r against the records before it. Returns kConflict naming r.seq (or
  // the seq that was expected) if r breaks a rule above.
  Status Add(const LedgerRecord& r);

  // Ends the pass. Returns the first error seen, or Ok; zero records is a valid,
  // empty ledger.
  Status Finish() const { return error_; }

  // What was accepted so far (up to, not including, the first bad record).
  const Summary& summary() const { return summary_; }

 private:
  Status Fail(std::string message);
  // Checks a checkpoint's data names expected_prev_seq and, unless it is empty,
  // expected_prev_hash.
  Status CheckCheckpoint(const LedgerRecord& r, int64_t expected_prev_seq,
                         const std::string& expected_prev_hash);

  Summary summary_;
  std::string last_hash_;  // hash of the last accepted record
  Status error_;           // first error; sticky
};

}  // namespace resonance
