#pragma once

#include <memory>
#include <string>

#include "cli/config.h"
#include "core/status.h"
#include "observe/otlp_exporter.h"

namespace resonance::cli {

// --log-level, --log-format, --log-file: empty means "as the config says".
struct LogFlags {
  std::string level;
  std::string format;
  std::string file;
};

// Configures the process logger from [logging] with the flags on top. The config's
// `file` applies only when use_config_file (the server); other verbs log to stderr
// unless --log-file says otherwise. kInvalidArgument naming the flag on a bad value.
Status ConfigureLogging(const LoggingConfig& config, const LogFlags& flags, bool use_config_file);

// Starts the OTLP exporter when [tracing] otlp_endpoint is set; nullptr when it is not.
// `role` ("server", "worker") becomes the resonance.role resource attribute.
Result<std::unique_ptr<trace::Exporter>> StartTracing(const TracingConfig& config,
                                                      const std::string& role);

}  // namespace resonance::cli
