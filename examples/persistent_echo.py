#!/usr/bin/python3
"""A persistent handler for `resonance worker` (docs/workers.md): one long-lived process
per worker slot, so fast tasks pay no process start.

Protocol: one JSON object per line. The worker writes a request per task on stdin,
  {"id": "...", "action": "...", "queue": "...", "payload": {...}, "attempt": 1, "traceparent": "..."}
and this process answers with one line carrying the same id:
  {"id": "...", "result": ...}   or   {"id": "...", "error": {"class": "...", "message": "..."}}
It may send {"id": "...", "progress": 0.5, "message": "..."} lines before the answer.
Flush after every line: the worker waits for it. Exit when stdin closes.
"""
import json
import os
import sys

served = 0
for line in sys.stdin:
    if not line.strip():
        continue
    request = json.loads(line)
    served += 1
    payload = request.get("payload") or {}
    if payload.get("invalid"):
        reply = {"id": request["id"],
                 "error": {"class": "validation", "message": "payload says invalid"}}
    else:
        reply = {"id": request["id"],
                 "result": {"echo": payload, "pid": os.getpid(), "served": served}}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
