#pragma once

namespace resonance {

// In a freshly forked child, before exec: every signal back to its default action and
// none blocked, so the program exec'd does not inherit the parent's handlers or mask.
// Async-signal-safe (sigaction and sigprocmask only).
void ResetSignalsInChild();

}  // namespace resonance
