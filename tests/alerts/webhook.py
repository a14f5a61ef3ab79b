"""A chat webhook on loopback for the alert tests: a real HTTP server."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Webhook:
    """Keeps every JSON body it was sent, with the status it answered: the next of `statuses`,
    then 200."""

    def __init__(self) -> None:
        self.answered: list[tuple[str, int]] = []
        self.statuses: list[int] = []
        self.lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with hook.lock:
                    status = hook.statuses.pop(0) if hook.statuses else 200
                    hook.answered.append((body["text"], status))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"invalid_token")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T0/B0/secret-token"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def texts(self) -> list[str]:
        """Every text it was sent, taken or refused."""
        return [text for text, _ in self.answered]

    def taken(self) -> list[str]:
        """What the webhook accepted (answered 200)."""
        return [text for text, status in self.answered if status == 200]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
