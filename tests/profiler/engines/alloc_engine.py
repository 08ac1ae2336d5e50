"""A tiny engine for the hook's tests: a stdlib HTTP server that allocates when asked.

GET /alloc?n=K keeps K Planted objects of 1000 bytes each alive (the PLANTED line); GET /break?probe=NAME makes
that hook probe raise from now on; GET /fork starts a forked child that lives for 30 s; GET /exit?code=N
exits. Prints "ready PORT" when serving. The engine never imports the hook, except /break, which
reaches for the running hook the way a test would.
"""
import json
import os
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, HTTPServer

KEPT = []


class Planted:
    def __init__(self, payload):
        self.payload = payload


def plant(count):
    for _ in range(count):
        KEPT.append(Planted(bytearray(1000)))  # PLANTED


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(url.query))
        body = {"ok": True}
        if url.path == "/alloc":
            plant(int(query.get("n", "1000")))
            body["kept"] = len(KEPT)
        elif url.path == "/break":
            from memsoak import profiler

            def boom():
                raise RuntimeError("planted probe failure")
            profiler.current().sampler.probes[query["probe"]] = boom
        elif url.path == "/fork":
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            body["child"] = pid
        elif url.path == "/exit":
            self.send_response(200)
            self.end_headers()
            os._exit(int(query.get("code", "0")))
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    server = HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler)
    print(f"ready {server.server_address[1]}", flush=True)
    server.serve_forever()
