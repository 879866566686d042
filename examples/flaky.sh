#!/bin/sh
# An exec handler that fails about 30% of the time with exit code 75 (EX_TEMPFAIL:
# "try again later"), so the server retries it as class temporary (docs/workers.md).
payload=$(cat)
roll=$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')
if [ $((roll % 100)) -lt 30 ]; then
  echo "flaky: simulated temporary failure on attempt $RESONANCE_ATTEMPT" >&2
  exit 75
fi
printf '{"ok":true,"attempt":%s,"payload":%s}\n' "$RESONANCE_ATTEMPT" "${payload:-null}"
