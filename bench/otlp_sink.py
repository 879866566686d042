#!/usr/bin/python3
"""A minimal OTLP/HTTP receiver for benchmarks: answers every POST with 200 and counts
requests, bytes and spans (occurrences of "spanId") without parsing the JSON, so it
costs the machine as little as a collector can. Standard library only.

    bench/otlp_sink.py PORT_FILE      listens on 127.0.0.1:0, writes the port to PORT_FILE,
                                      prints `otlp_sink requests=N spans=N bytes=N` on SIGTERM
"""
import http.server
import signal
import sys
import threading

counts = {"requests": 0, "spans": 0, "bytes": 0}
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        with lock:
            counts["requests"] += 1
            counts["bytes"] += len(body)
            counts["spans"] += body.count(b'"spanId"')
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def main():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(sys.argv[1], "w") as f:
        f.write(f"{server.server_address[1]}\n")

    def stop(*_):
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    server.serve_forever()
    print(f"otlp_sink requests={counts['requests']} spans={counts['spans']} bytes={counts['bytes']}",
          flush=True)


if __name__ == "__main__":
    main()
