#include "worker/handler_config.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <toml.hpp>

namespace resonance::worker {
namespace {

struct TypeName {
  HandlerType type;
  const char* name;
};
constexpr TypeName kTypes[] = {
    {HandlerType::kExec, "exec"}, {HandlerType::kPersistent, "persistent"},
    {HandlerType::kNoop, "noop"}, {HandlerType::kSleep, "sleep"},
    {HandlerType::kFail, "fail"}, {HandlerType::kHttp, "http"},
};

bool RunsProcess(HandlerType t) { return t == HandlerType::kExec || t == HandlerType::kPersistent; }

Status Bad(const std::string& where, const std::string& msg) {
  return Status(Code::kInvalidArgument, where + ": " + msg);
}

Status Number(const toml::value& v, const std::string& where, double min, double max, double& out) {
  if (v.is_floating()) {
    out = v.as_floating();
  } else if (v.is_integer()) {
    out = static_cast<double>(v.as_integer());
  } else {
    return Bad(where, "must be a number");
  }
  if (!(out >= min && out <= max)) {
    std::ostringstream m;
    m << "must be a number from " << min << " to " << max;
    return Bad(where, m.str());
  }
  return Status::Ok();
}

Status StringArray(const toml::value& v, const std::string& where, std::vector<std::string>& out) {
  if (!v.is_array()) return Bad(where, "must be an array of strings");
  out.clear();
  for (const auto& item : v.as_array()) {
    if (!item.is_string()) return Bad(where, "must be an array of strings");
    out.push_back(item.as_string().str);
  }
  return Status::Ok();
}

Status ReadHandler(const std::string& action, const toml::value& table, HandlerConfig& h) {
  const std::string where = "handlers.\"" + action + "\"";
  if (!table.is_table()) return Bad(where, "must be a table");
  h.action = action;
  const auto& t = table.as_table();
  if (auto it = t.find("type"); it != t.end()) {
    if (!it->second.is_string()) return Bad(where + ".type", "must be a string");
    const std::string name = it->second.as_string().str;
    bool found = false;
    for (const auto& tn : kTypes) {
      if (name == tn.name) {
        h.type = tn.type;
        found = true;
      }
    }
    if (!found)
      return Bad(where + ".type", "must be one of exec, persistent, noop, sleep, fail, http");
  }
  for (const auto& [key, v] : t) {
    const std::string name = where + "." + key;
    if (key == "type") continue;
    if ((key == "argv" || key == "env" || key == "dir" || key == "max_output_bytes" ||
         key == "kill_grace_s") &&
        !RunsProcess(h.type)) {
      return Bad(name, std::string("only for exec and persistent handlers, not ") +
                           HandlerTypeName(h.type));
    }
    Status s;
    if (key == "argv") {
      s = StringArray(v, name, h.argv);
      if (s.ok() && (h.argv.empty() || h.argv[0].empty())) s = Bad(name, "must name a program");
    } else if (key == "env") {
      if (!v.is_table()) return Bad(name, "must be a table of strings");
      for (const auto& [ek, ev] : v.as_table()) {
        if (!ev.is_string()) return Bad(name + "." + ek, "must be a string");
        if (ek.empty() || ek.find('=') != std::string::npos)
          return Bad(name + "." + ek, "is not a variable name");
        h.env.emplace_back(ek, ev.as_string().str);
      }
    } else if (key == "dir") {
      if (!v.is_string()) return Bad(name, "must be a string");
      h.dir = v.as_string().str;
    } else if (key == "timeout_s") {
      s = Number(v, name, 0.001, 7 * 86400, h.timeout_s);
    } else if (key == "kill_grace_s") {
      s = Number(v, name, 0, 3600, h.kill_grace_s);
    } else if (key == "max_output_bytes") {
      if (!v.is_integer() || v.as_integer() < 1024 || v.as_integer() > (64 << 20)) {
        return Bad(name, "must be an integer from 1024 to 67108864");
      }
      h.max_output_bytes = static_cast<size_t>(v.as_integer());
    } else {
      return Bad(name, "unknown key");
    }
    if (!s.ok()) return s;
  }
  if (RunsProcess(h.type) && h.argv.empty()) {
    return Bad(where + ".argv",
               std::string("is required for ") + HandlerTypeName(h.type) + " handlers");
  }
  return Status::Ok();
}

Status ReadPools(const toml::value& pools, std::vector<PoolConfig>& out) {
  if (!pools.is_array()) return Bad("pools", "must be an array of tables ([[pools]])");
  size_t i = 0;
  for (const auto& p : pools.as_array()) {
    const std::string where = "pools[" + std::to_string(i++) + "]";
    if (!p.is_table()) return Bad(where, "must be a table");
    PoolConfig pc;
    for (const auto& [key, v] : p.as_table()) {
      if (key == "name") {
        if (!v.is_string()) return Bad(where + ".name", "must be a string");
        pc.name = v.as_string().str;
      } else if (key == "queues") {
        if (Status s = StringArray(v, where + ".queues", pc.queues); !s.ok()) return s;
      } else if (key == "concurrency") {
        if (!v.is_integer() || v.as_integer() < 1 || v.as_integer() > 1000) {
          return Bad(where + ".concurrency", "must be an integer from 1 to 1000");
        }
        pc.concurrency = static_cast<int>(v.as_integer());
      }
    }
    out.push_back(std::move(pc));
  }
  return Status::Ok();
}

Result<WorkerConfig> FromToml(const toml::value& root) {
  WorkerConfig c;
  if (root.contains("handlers")) {
    const auto& handlers = root.at("handlers");
    if (!handlers.is_table())
      return Bad("handlers", "must be a table of [handlers.\"ACTION\"] tables");
    for (const auto& [action, table] : handlers.as_table()) {
      HandlerConfig h;
      if (Status s = ReadHandler(action, table, h); !s.ok()) return s;
      c.handlers.emplace(action, std::move(h));
    }
  }
  if (root.contains("pools")) {
    if (Status s = ReadPools(root.at("pools"), c.pools); !s.ok()) return s;
  }
  return c;
}

Result<WorkerConfig> Parse(std::istream& in, const std::string& name) {
  Result<WorkerConfig> r = Status(Code::kInternal, "unparsed");
  try {
    r = FromToml(toml::parse(in, name));
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, name + ": " + e.what());
  }
  if (!r.ok()) return Status(r.status().code(), name + ": " + r.status().message());
  return r;
}

}  // namespace

const char* HandlerTypeName(HandlerType t) {
  for (const auto& tn : kTypes) {
    if (tn.type == t) return tn.name;
  }
  return "?";
}

const HandlerConfig* WorkerConfig::Find(std::string_view action) const {
  auto it = handlers.find(action);
  return it == handlers.end() ? nullptr : &it->second;
}

const PoolConfig* WorkerConfig::FindPool(std::string_view name) const {
  for (const auto& p : pools) {
    if (p.name == name) return &p;
  }
  return nullptr;
}

Result<WorkerConfig> LoadWorkerConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return Status(Code::kNotFound, path + ": no such file");
    return Status(Code::kInvalidArgument, path + ": cannot read");
  }
  return Parse(in, path);
}

Result<WorkerConfig> ParseWorkerConfig(const std::string& text, const std::string& name) {
  std::istringstream in(text);
  return Parse(in, name);
}

}  // namespace resonance::worker
