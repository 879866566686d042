#pragma once

#include "store/store.h"

namespace resonance {

// A Store that passes every call to another one. Tests derive from it to change one
// behaviour (fail or hold commits) and keep the rest real. The real store must
// outlive it.
class ForwardingStore : public Store {
 public:
  explicit ForwardingStore(Store& real) : real_(real) {}

  Result<RecoveredState> Recover(const std::function<void(Task&&)>& on_task) override {
    return real_.Recover(on_task);
  }
  void Submit(WriteBatch batch, Done done) override { real_.Submit(std::move(batch), std::move(done)); }
  void Close() override { real_.Close(); }
  bool healthy() const override { return real_.healthy(); }
  Result<Task> GetTask(const std::string& id) override { return real_.GetTask(id); }
  Result<std::vector<Task>> GetTasks(const std::vector<std::string>& ids) override {
    return real_.GetTasks(ids);
  }
  Result<std::vector<Task>> ListTasks(const TaskFilter& f) override { return real_.ListTasks(f); }
  Result<std::vector<Task>> RecentFinished(int count) override { return real_.RecentFinished(count); }
  Result<std::optional<std::string>> FindByIdempotencyKey(const std::string& key) override {
    return real_.FindByIdempotencyKey(key);
  }
  Result<std::vector<LedgerRecord>> ReadLedger(int64_t after_seq, int limit) override {
    return real_.ReadLedger(after_seq, limit);
  }
  Result<int64_t> CountTasks(TaskState state) override { return real_.CountTasks(state); }
  Result<std::vector<StatsRow>> ReadStats(int64_t from, int64_t to, const std::string& queue,
                                          const std::string& action) override {
    return real_.ReadStats(from, to, queue, action);
  }
  Result<std::vector<QueueDepthPoint>> OpenTasksAt(const std::vector<Micros>& times) override {
    return real_.OpenTasksAt(times);
  }
  Result<std::vector<Record>> ListRecords(const RecordFilter& f) override {
    return real_.ListRecords(f);
  }
  Result<std::vector<CredentialRecord>> ListCredentials() override {
    return real_.ListCredentials();
  }

 protected:
  Store& real_;
};

}  // namespace resonance
