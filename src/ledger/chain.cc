#include "ledger/chain.h"

#include <openssl/evp.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <utility>

#include "core/json_writer.h"

namespace resonance {
namespace {

struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* ctx) const { EVP_MD_CTX_free(ctx); }
};

[[noreturn]] void DigestFailed() {
  std::fputs("resonance: SHA-256 digest failed in ledger/chain.cc\n", stderr);
  std::abort();
}

bool IsLowerHex(std::string_view s) {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool ConsumePrefix(std::string_view& s, std::string_view prefix) {
  if (s.substr(0, prefix.size()) != prefix) return false;
  s.remove_prefix(prefix.size());
  return true;
}

}  // namespace

std::string CanonicalEventText(const LedgerRecord& r) {
  std::string out;
  JsonWriter w(out);
  // Key order is part of the on-disk contract (chain.h).
  w.BeginObject();
  w.Key("seq").Int(r.seq);
  w.Key("ts").Int(r.ts);
  w.Key("kind").String(r.kind);
  w.Key("task_id").String(r.task_id);
  w.Key("data").Raw(r.data.empty() ? std::string_view("{}") : std::string_view(r.data));
  w.EndObject();
  return out;
}

std::string LedgerHash(std::string_view prev_hash_hex, const LedgerRecord& r) {
  const std::string canonical = CanonicalEventText(r);
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), prev_hash_hex.data(), prev_hash_hex.size()) != 1 ||
      EVP_DigestUpdate(ctx.get(), canonical.data(), canonical.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) {
    DigestFailed();
  }
  static const char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(2 * len);
  for (unsigned int i = 0; i < len; ++i) {
    hex.push_back(kHex[digest[i] >> 4]);
    hex.push_back(kHex[digest[i] & 15]);
  }
  return hex;
}

std::string CheckpointData(int64_t prev_seq, std::string_view prev_hash) {
  std::string out;
  JsonWriter w(out);
  w.BeginObject();
  w.Key("prev_seq").Int(prev_seq);
  w.Key("prev_hash").String(prev_hash);
  w.EndObject();
  return out;
}

std::optional<CheckpointAnchor> ParseCheckpointData(std::string_view data) {
  std::string_view s = data;
  if (!ConsumePrefix(s, R"({"prev_seq":)")) return std::nullopt;
  CheckpointAnchor a;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), a.prev_seq);
  if (ec != std::errc() || a.prev_seq < 0) return std::nullopt;
  s.remove_prefix(static_cast<size_t>(end - s.data()));
  if (!ConsumePrefix(s, R"(,"prev_hash":")")) return std::nullopt;
  if (s.size() != kGenesisHash.size() + 2) return std::nullopt;
  a.prev_hash = std::string(s.substr(0, kGenesisHash.size()));
  if (!IsLowerHex(a.prev_hash)) return std::nullopt;
  // Round trip: rejects leading zeros and anything else CheckpointData would not write.
  if (CheckpointData(a.prev_seq, a.prev_hash) != data) return std::nullopt;
  return a;
}

LedgerChain::LedgerChain() : last_hash_(kGenesisHash) {}

LedgerChain::LedgerChain(int64_t last_seq, std::string last_hash)
    : last_seq_(last_seq), last_hash_(std::move(last_hash)) {}

LedgerRecord LedgerChain::Append(Micros ts, std::string kind, std::string task_id,
                                 std::string data) {
  LedgerRecord r;
  r.seq = last_seq_ + 1;
  r.ts = ts;
  r.kind = std::move(kind);
  r.task_id = std::move(task_id);
  r.data = std::move(data);
  r.hash = LedgerHash(last_hash_, r);
  last_seq_ = r.seq;
  last_hash_ = r.hash;
  return r;
}

LedgerRecord LedgerChain::AppendCheckpoint(Micros ts) {
  return Append(ts, std::string(kCheckpointKind), "", CheckpointData(last_seq_, last_hash_));
}

}  // namespace resonance
