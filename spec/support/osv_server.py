"""A small HTTP server for the advisories specs, on 127.0.0.1 and a port the
system picks, serving the files of DIR by the last part of the request's
path (so it also answers as an HTTP proxy: GET http://any.host/all.zip).
It writes the port to DIR/port once it listens. /cut/NAME sends NAME's
headers and half its body, then closes the connection.

    python3 osv_server.py DIR
"""
import http.server
import os
import sys
import urllib.parse

ROOT = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        path = urllib.parse.urlsplit(self.path).path
        cut = path.startswith("/cut/")
        name = os.path.basename(path)
        full = os.path.join(ROOT, name)
        if not name or not os.path.isfile(full):
            self.send_error(404, "Not Found")
            return
        with open(full, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        self.wfile.flush()
        if cut:
            self.close_connection = True

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
tmp = os.path.join(ROOT, "port.tmp")
with open(tmp, "w") as f:
    f.write(str(server.server_address[1]))
os.replace(tmp, os.path.join(ROOT, "port"))
server.serve_forever()
