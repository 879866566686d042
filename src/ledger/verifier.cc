#include "ledger/verifier.h"

#include <optional>
#include <utility>

#include "ledger/chain.h"

namespace resonance {

Status LedgerVerifier::Fail(std::string message) {
  error_ = Status(Code::kConflict, std::move(message));
  return error_;
}

Status LedgerVerifier::CheckCheckpoint(const LedgerRecord& r, int64_t expected_prev_seq,
                                       const std::string& expected_prev_hash) {
  std::optional<CheckpointAnchor> anchor = ParseCheckpointData(r.data);
  const std::string at = " at seq " + std::to_string(r.seq);
  if (!anchor) return Fail("malformed checkpoint data" + at);
  if (anchor->prev_seq != expected_prev_seq) {
    return Fail("checkpoint" + at + " names prev_seq " + std::to_string(anchor->prev_seq) +
                ", expected " + std::to_string(expected_prev_seq));
  }
  if (!expected_prev_hash.empty() && anchor->prev_hash != expected_prev_hash) {
    return Fail("checkpoint" + at + " names a wrong prev_hash");
  }
  return Status::Ok();
}

Status LedgerVerifier::Add(const LedgerRecord& r) {
  if (!error_.ok()) return error_;
  const bool is_checkpoint = r.kind == kCheckpointKind;
  std::string prev_hash;

  if (summary_.records == 0) {
    if (is_checkpoint && r.seq >= 1) {
      // seq 1 has a known predecessor (genesis); later ones anchor themselves.
      const std::string genesis(kGenesisHash);
      Status s = CheckCheckpoint(r, r.seq - 1, r.seq == 1 ? genesis : std::string());
      if (!s.ok()) return s;
      prev_hash = ParseCheckpointData(r.data)->prev_hash;
    } else if (r.seq == 1) {
      prev_hash = std::string(kGenesisHash);
    } else {
      return Fail("gap: expected seq 1 or a checkpoint, found seq " + std::to_string(r.seq));
    }
  } else {
    const int64_t expected = summary_.last_seq + 1;
    if (r.seq != expected) {
      return Fail("gap: expected seq " + std::to_string(expected) + ", found " +
                  std::to_string(r.seq));
    }
    prev_hash = last_hash_;
  }

  if (r.hash != LedgerHash(prev_hash, r)) {
    return Fail("hash mismatch at seq " + std::to_string(r.seq));
  }
  if (is_checkpoint && summary_.records > 0) {
    Status s = CheckCheckpoint(r, summary_.last_seq, last_hash_);
    if (!s.ok()) return s;
  }

  if (summary_.records == 0) summary_.first_seq = r.seq;
  ++summary_.records;
  summary_.last_seq = r.seq;
  if (is_checkpoint) ++summary_.checkpoints;
  last_hash_ = r.hash;
  return Status::Ok();
}

}  // namespace resonance
