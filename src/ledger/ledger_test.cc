#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "ledger/chain.h"
#include "ledger/verifier.h"

namespace resonance {
namespace {

using ::testing::HasSubstr;

constexpr Micros kT0 = 1'700'000'000LL * kMicrosPerSecond;

// Seven records; seq 4 is a checkpoint. Kinds, task ids and data vary.
std::vector<LedgerRecord> MakeLedger() {
  LedgerChain chain;
  std::vector<LedgerRecord> out;
  out.push_back(chain.Append(kT0, "task.enqueued", "t-1", R"({"queue":"default"})"));
  out.push_back(chain.Append(kT0 + 1, "task.leased", "t-1", R"({"worker":"w-1"})"));
  out.push_back(chain.Append(kT0 + 2, "worker.started", "", ""));
  out.push_back(chain.AppendCheckpoint(kT0 + 3));
  out.push_back(chain.Append(kT0 + 4, "task.succeeded", "t-1", R"({"result":[1,2]})"));
  out.push_back(chain.Append(kT0 + 5, "task.enqueued", "t-2", R"({"note":"a\"b"})"));
  out.push_back(chain.Append(kT0 + 6, "alert.raised", "", R"({"action":"send"})"));
  return out;
}

Status Verify(const std::vector<LedgerRecord>& records,
              LedgerVerifier::Summary* summary = nullptr) {
  LedgerVerifier v;
  for (const LedgerRecord& r : records) v.Add(r);
  if (summary) *summary = v.summary();
  return v.Finish();
}

// Applies `tamper` to each record in turn and expects verification to fail there.
void ExpectEachTamperNamesItsSeq(const std::function<void(LedgerRecord&)>& tamper) {
  const std::vector<LedgerRecord> good = MakeLedger();
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<LedgerRecord> bad = good;
    tamper(bad[i]);
    Status s = Verify(bad);
    EXPECT_EQ(s.code(), Code::kConflict) << "tampered index " << i;
    EXPECT_EQ(s.message(), "hash mismatch at seq " + std::to_string(good[i].seq));
  }
}

TEST(LedgerChainTest, AppendAssignsSeqAndChainsHashes) {
  // Given a fresh chain, then seqs run 1.. and each hash chains from the one before.
  std::vector<LedgerRecord> l = MakeLedger();
  std::string prev(kGenesisHash);
  for (size_t i = 0; i < l.size(); ++i) {
    EXPECT_EQ(l[i].seq, static_cast<int64_t>(i + 1));
    EXPECT_EQ(l[i].hash, LedgerHash(prev, l[i]));
    EXPECT_EQ(l[i].hash.size(), 64u);
    prev = l[i].hash;
  }
}

TEST(LedgerChainTest, CheckpointNamesTheRecordBeforeIt) {
  // Given a checkpoint after three records, then it names seq 3 and its hash.
  std::vector<LedgerRecord> l = MakeLedger();
  EXPECT_EQ(l[3].kind, kCheckpointKind);
  EXPECT_EQ(l[3].task_id, "");
  EXPECT_EQ(l[3].data, R"({"prev_seq":3,"prev_hash":")" + l[2].hash + R"("})");
}

TEST(LedgerChainTest, ResumedChainContinuesTheSameChain) {
  // Given a chain rebuilt from its last stored record, then it appends what the
  // original would have.
  LedgerChain a;
  a.Append(kT0, "task.enqueued", "t-1", "{}");
  LedgerChain b(a.last_seq(), a.last_hash());
  LedgerRecord ra = a.Append(kT0 + 1, "task.leased", "t-1", "{}");
  LedgerRecord rb = b.Append(kT0 + 1, "task.leased", "t-1", "{}");
  EXPECT_EQ(ra.seq, 2);
  EXPECT_EQ(ra.hash, rb.hash);
  EXPECT_EQ(b.last_seq(), 2);
  EXPECT_EQ(b.last_hash(), rb.hash);
}

TEST(LedgerChainTest, HashIsPinnedToTheOnDiskFormat) {
  // Given one fixed record, then its hash is the value computed once with
  //   printf '%s' '<64 zeros>{"seq":1,"ts":1700000000000000,"kind":"task.enqueued",
  //   "task_id":"t-1","data":{"queue":"default"}}' | sha256sum
  // If this fails, the on-disk format changed: that needs a new kLedgerHashVersion.
  LedgerRecord r{1, kT0, "task.enqueued", "t-1", R"({"queue":"default"})", ""};
  EXPECT_EQ(CanonicalEventText(r),
            R"({"seq":1,"ts":1700000000000000,"kind":"task.enqueued","task_id":"t-1",)"
            R"("data":{"queue":"default"}})");
  EXPECT_EQ(LedgerHash(kGenesisHash, r),
            "c021215a385aa865e9d66f5b655088b07e9543ea28f565cea850a51a847d9938");
  EXPECT_EQ(LedgerHash(kGenesisHash, r), LedgerHash(kGenesisHash, r));
}

TEST(LedgerChainTest, EmptyDataHashesAsEmptyObject) {
  // Given a record with empty data, then it hashes like one with data {}.
  LedgerRecord empty{1, kT0, "worker.started", "", "", ""};
  LedgerRecord braces{1, kT0, "worker.started", "", "{}", ""};
  EXPECT_EQ(LedgerHash(kGenesisHash, empty), LedgerHash(kGenesisHash, braces));
}

TEST(LedgerChainTest, CheckpointDataParsesOnlyItsOwnFormat) {
  // Given checkpoint data, then only the exact text CheckpointData writes parses.
  const std::string h(64, 'a');
  auto a = ParseCheckpointData(CheckpointData(41, h));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->prev_seq, 41);
  EXPECT_EQ(a->prev_hash, h);
  EXPECT_FALSE(ParseCheckpointData(R"({"prev_seq":041,"prev_hash":")" + h + R"("})"));
  EXPECT_FALSE(ParseCheckpointData(R"({"prev_seq":-1,"prev_hash":")" + h + R"("})"));
  EXPECT_FALSE(ParseCheckpointData(R"({"prev_hash":")" + h + R"(","prev_seq":41})"));
  EXPECT_FALSE(
      ParseCheckpointData(R"({"prev_seq":41,"prev_hash":")" + std::string(64, 'A') + R"("})"));
  EXPECT_FALSE(ParseCheckpointData(R"({"prev_seq":41,"prev_hash":"abc"})"));
  EXPECT_FALSE(ParseCheckpointData(""));
}

TEST(LedgerVerifierTest, IntactChainVerifies) {
  // Given an untouched ledger, then it verifies and the summary counts it.
  LedgerVerifier::Summary sum;
  Status s = Verify(MakeLedger(), &sum);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(sum.records, 7);
  EXPECT_EQ(sum.first_seq, 1);
  EXPECT_EQ(sum.last_seq, 7);
  EXPECT_EQ(sum.checkpoints, 1);
}

TEST(LedgerVerifierTest, EmptyLedgerVerifies) {
  // Given no records, then Finish is ok and the summary is zero.
  LedgerVerifier::Summary sum;
  EXPECT_TRUE(Verify({}, &sum).ok());
  EXPECT_EQ(sum.records, 0);
  EXPECT_EQ(sum.last_seq, 0);
}

TEST(LedgerVerifierTest, TamperedDataNamesItsSeq) {
  // Given any one record's data changed, then verification fails at that seq.
  ExpectEachTamperNamesItsSeq([](LedgerRecord& r) { r.data += " "; });
}

TEST(LedgerVerifierTest, TamperedKindNamesItsSeq) {
  // Given any one record's kind changed, then verification fails at that seq.
  ExpectEachTamperNamesItsSeq([](LedgerRecord& r) { r.kind += "x"; });
}

TEST(LedgerVerifierTest, TamperedTsNamesItsSeq) {
  // Given any one record's ts moved by 1 µs, then verification fails at that seq.
  ExpectEachTamperNamesItsSeq([](LedgerRecord& r) { r.ts += 1; });
}

TEST(LedgerVerifierTest, TamperedTaskIdNamesItsSeq) {
  // Given any one record's task_id changed, then verification fails at that seq.
  ExpectEachTamperNamesItsSeq([](LedgerRecord& r) { r.task_id += "9"; });
}

TEST(LedgerVerifierTest, TamperedHashNamesItsSeq) {
  // Given any one record's stored hash changed, then verification fails at that seq.
  ExpectEachTamperNamesItsSeq([](LedgerRecord& r) { r.hash[10] = r.hash[10] == '0' ? '1' : '0'; });
}

TEST(LedgerVerifierTest, RemovedRecordIsAGap) {
  // Given seq 5 removed, then verification reports the gap at seq 5.
  std::vector<LedgerRecord> l = MakeLedger();
  l.erase(l.begin() + 4);
  Status s = Verify(l);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "gap: expected seq 5, found 6");
}

TEST(LedgerVerifierTest, ReorderedPairIsCaught) {
  // Given seq 5 and 6 swapped, then verification fails where seq 5 was expected.
  std::vector<LedgerRecord> l = MakeLedger();
  std::swap(l[4], l[5]);
  Status s = Verify(l);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "gap: expected seq 5, found 6");
}

TEST(LedgerVerifierTest, RenumberedRecordIsCaught) {
  // Given a record's seq rewritten to close a gap, then its hash no longer matches.
  std::vector<LedgerRecord> l = MakeLedger();
  l.erase(l.begin() + 4);
  l[4].seq = 5;
  EXPECT_EQ(Verify(l).message(), "hash mismatch at seq 5");
}

TEST(LedgerVerifierTest, TailFromCheckpointVerifies) {
  // Given the records before the checkpoint archived away, then the tail verifies.
  std::vector<LedgerRecord> l = MakeLedger();
  l.erase(l.begin(), l.begin() + 3);
  LedgerVerifier::Summary sum;
  Status s = Verify(l, &sum);
  EXPECT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(sum.records, 4);
  EXPECT_EQ(sum.first_seq, 4);
  EXPECT_EQ(sum.last_seq, 7);
  EXPECT_EQ(sum.checkpoints, 1);
}

TEST(LedgerVerifierTest, TailNotStartingAtCheckpointFails) {
  // Given records dropped so the first is seq 5, not a checkpoint, then it fails.
  std::vector<LedgerRecord> l = MakeLedger();
  l.erase(l.begin(), l.begin() + 4);
  Status s = Verify(l);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "gap: expected seq 1 or a checkpoint, found seq 5");
}

TEST(LedgerVerifierTest, FirstRecordMissingFails) {
  // Given seq 1 dropped from a ledger, then verification fails at seq 2.
  std::vector<LedgerRecord> l = MakeLedger();
  l.erase(l.begin());
  EXPECT_THAT(Verify(l).message(), HasSubstr("found seq 2"));
}

TEST(LedgerVerifierTest, ForgedCheckpointInTheMiddleFails) {
  // Given a checkpoint naming a wrong prev_hash, correctly hashed itself, then it fails.
  LedgerChain chain;
  std::vector<LedgerRecord> l;
  l.push_back(chain.Append(kT0, "task.enqueued", "t-1", "{}"));
  l.push_back(chain.Append(kT0 + 1, "task.leased", "t-1", "{}"));
  LedgerRecord forged{
      3, kT0 + 2, std::string(kCheckpointKind), "", CheckpointData(2, std::string(64, 'f')), ""};
  forged.hash = LedgerHash(l[1].hash, forged);
  l.push_back(forged);
  Status s = Verify(l);
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "checkpoint at seq 3 names a wrong prev_hash");
}

TEST(LedgerVerifierTest, CheckpointNamingWrongSeqFails) {
  // Given a first-record checkpoint naming prev_seq != seq-1, then it fails there.
  LedgerRecord cp{
      10, kT0, std::string(kCheckpointKind), "", CheckpointData(8, std::string(64, 'a')), ""};
  cp.hash = LedgerHash(std::string(64, 'a'), cp);
  Status s = Verify({cp});
  EXPECT_EQ(s.code(), Code::kConflict);
  EXPECT_EQ(s.message(), "checkpoint at seq 10 names prev_seq 8, expected 9");
}

TEST(LedgerVerifierTest, FirstErrorIsSticky) {
  // Given a bad record followed by good ones, then Add and Finish keep the first error.
  std::vector<LedgerRecord> l = MakeLedger();
  l[1].data = "{}";
  LedgerVerifier v;
  EXPECT_TRUE(v.Add(l[0]).ok());
  EXPECT_EQ(v.Add(l[1]).message(), "hash mismatch at seq 2");
  EXPECT_EQ(v.Add(l[2]).message(), "hash mismatch at seq 2");
  EXPECT_EQ(v.Finish().message(), "hash mismatch at seq 2");
  EXPECT_EQ(v.summary().last_seq, 1);
}

}  // namespace
}  // namespace resonance
