"""A tiny upstream for the nginx forward-auth test: answers every GET/POST with the X-Auth-* and
Authorization and Cookie headers it received, as JSON."""

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        seen = {
            name: self.headers.get(name)
            for name in (
                "X-Auth-User-Id",
                "X-Auth-Username",
                "X-Auth-Role",
                "X-Auth-Session-Id",
                "Authorization",
                "Cookie",
            )
        }
        body = json.dumps({"method": self.command, "path": self.path, "headers": seen}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = answer
    do_POST = answer

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
print(server.server_address[1], flush=True)
server.serve_forever()
