#include "supervise/up_config.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <toml.hpp>

namespace resonance::supervise {
namespace {

Status Bad(const std::string& where, const std::string& msg) {
  return Status(Code::kInvalidArgument, where + ": " + msg);
}

Status Number(const toml::value& v, const std::string& where, double min, double max, double& out) {
  if (v.is_integer()) {
    out = static_cast<double>(v.as_integer());
  } else if (v.is_floating()) {
    out = v.as_floating();
  } else {
    return Bad(where, "must be a number");
  }
  if (!(out >= min && out <= max)) {
    std::ostringstream msg;
    msg << "must be a number from " << min << " to " << max;
    return Bad(where, msg.str());
  }
  return Status::Ok();
}

Status ReadSupervisor(const toml::value& table, SupervisorOptions& o) {
  if (!table.is_table()) return Bad("supervisor", "must be a table");
  for (const auto& [key, v] : table.as_table()) {
    const std::string where = "supervisor." + key;
    Status s;
    if (key == "backoff_base_s") {
      s = Number(v, where, 0.001, 86400, o.backoff_base_s);
    } else if (key == "backoff_max_s") {
      s = Number(v, where, 0.001, 86400, o.backoff_max_s);
    } else if (key == "stable_after_s") {
      s = Number(v, where, 0.001, 86400, o.stable_after_s);
    } else if (key == "restart_window_s") {
      s = Number(v, where, 0.001, 86400 * 7, o.restart_window_s);
    } else if (key == "stop_grace_s") {
      s = Number(v, where, 0, 3600, o.stop_grace_s);
    } else if (key == "ready_timeout_s") {
      s = Number(v, where, 0.1, 3600, o.ready_timeout_s);
    } else if (key == "restart_limit") {
      if (!v.is_integer() || v.as_integer() < 0 || v.as_integer() > 100000) {
        return Bad(where, "must be an integer from 0 to 100000");
      }
      o.restart_limit = static_cast<int>(v.as_integer());
    } else {
      return Bad(where, "unknown key");
    }
    if (!s.ok()) return s;
  }
  if (o.backoff_max_s < o.backoff_base_s) {
    return Bad("supervisor.backoff_max_s", "must be >= backoff_base_s");
  }
  return Status::Ok();
}

bool GoodPoolName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    if (!isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-' && c != '.') return false;
  }
  return true;
}

Status ReadPools(const toml::value& pools, std::vector<PoolSpec>& out) {
  if (!pools.is_array()) return Bad("pools", "must be an array of tables ([[pools]])");
  std::set<std::string> names;
  size_t i = 0;
  for (const auto& p : pools.as_array()) {
    const std::string where = "pools[" + std::to_string(i++) + "]";
    if (!p.is_table()) return Bad(where, "must be a table");
    PoolSpec spec;
    for (const auto& [key, v] : p.as_table()) {
      if (key == "name") {
        if (!v.is_string() || !GoodPoolName(v.as_string().str)) {
          return Bad(where + ".name", "must be a string of letters, digits, '_', '-', '.'");
        }
        spec.name = v.as_string().str;
      } else if (key == "workers") {
        if (!v.is_integer() || v.as_integer() < 0 || v.as_integer() > 1000) {
          return Bad(where + ".workers", "must be an integer from 0 to 1000");
        }
        spec.workers = static_cast<int>(v.as_integer());
      } else if (key != "queues" && key != "concurrency") {  // the worker checks those
        return Bad(where + "." + key, "unknown key");
      }
    }
    if (spec.name.empty()) return Bad(where + ".name", "is required");
    if (spec.name == "server") return Bad(where + ".name", "'server' is reserved");
    if (!names.insert(spec.name).second)
      return Bad(where + ".name", "duplicate pool '" + spec.name + "'");
    out.push_back(spec);
  }
  return Status::Ok();
}

Result<UpConfig> FromToml(const toml::value& root) {
  UpConfig c;
  if (root.contains("data_dir")) {
    const auto& v = root.at("data_dir");
    if (!v.is_string() || v.as_string().str.empty())
      return Bad("data_dir", "must be a non-empty string");
    c.data_dir = v.as_string().str;
  }
  if (root.contains("supervisor")) {
    if (Status s = ReadSupervisor(root.at("supervisor"), c.options); !s.ok()) return s;
  }
  if (root.contains("pools")) {
    if (Status s = ReadPools(root.at("pools"), c.pools); !s.ok()) return s;
  }
  return c;
}

}  // namespace

Result<UpConfig> ParseUpConfig(const std::string& text, const std::string& name) {
  Result<UpConfig> r = Status(Code::kInternal, "unparsed");
  try {
    std::istringstream in(text);
    r = FromToml(toml::parse(in, name));
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, name + ": " + e.what());
  }
  if (!r.ok()) return Status(r.status().code(), name + ": " + r.status().message());
  r->path = name;
  return r;
}

Result<UpConfig> LoadUpConfig(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) return Status(Code::kNotFound, path + ": no such file");
    return Status(Code::kInvalidArgument, path + ": cannot read");
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParseUpConfig(text.str(), path);
}

}  // namespace resonance::supervise
