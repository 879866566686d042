#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/json_writer.h"
#include "core/task.h"

namespace resonance::http {

// The task object of the API (docs/api.md). The lease token is written only when
// with_lease is set (lease answers); elsewhere it stays secret to the worker.
// `credentials` (name, value) are written as "credentials": {...} when given: only
// lease answers carry them (docs/credentials.md).
void WriteTask(JsonWriter& w, const Task& t, bool with_lease = false,
               const std::vector<std::pair<std::string, std::string>>* credentials = nullptr);
std::string TaskJson(const Task& t, bool with_lease = false);

// The slim item of GET /api/results.
void WriteResultItem(JsonWriter& w, const Task& t);

}  // namespace resonance::http
