#!/usr/bin/python3
"""An exec handler for `resonance worker` (docs/workers.md): one process per task.

Reads the task's payload (a JSON object) on stdin and writes the result (JSON) on
stdout. Reports progress as JSON lines on fd 3. A payload with "invalid": true shows
the error object: the task fails as validation and goes straight to the dead letters.
"""
import json
import os
import sys


def progress(fraction, message):
    # fd 3 is open only under the worker; elsewhere progress is just dropped.
    try:
        os.write(3, (json.dumps({"progress": fraction, "message": message}) + "\n").encode())
    except OSError:
        pass


def main():
    payload = json.load(sys.stdin)
    progress(0.5, "read the payload")
    if payload.get("invalid"):
        json.dump({"error": {"class": "validation", "message": "payload says invalid"}}, sys.stdout)
        return 65
    print("echo: task %s attempt %s" % (os.environ.get("RESONANCE_TASK_ID"),
                                         os.environ.get("RESONANCE_ATTEMPT")), file=sys.stderr)
    json.dump({
        "echo": payload,
        "task_id": os.environ.get("RESONANCE_TASK_ID"),
        "attempt": int(os.environ.get("RESONANCE_ATTEMPT", "0")),
        "traceparent": os.environ.get("TRACEPARENT"),
    }, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
