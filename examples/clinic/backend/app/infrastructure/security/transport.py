"""Transmission security (45 CFR 164.312(e)): the API answers only over
HTTPS, and tells browsers to keep to it (HSTS). A request that arrived over
plain HTTP is refused, not redirected: by then its headers, the API key
among them, have already crossed the network in the clear. Behind a proxy
that ends TLS, X-Forwarded-Proto says how the client connected, when the
proxy is trusted to set it."""

HSTS = b"max-age=63072000; includeSubDomains"
REFUSAL = b'{"detail":"HTTPS is required"}'


class RequireHTTPS:
    """ASGI middleware: plain HTTP gets 403; every HTTPS response carries
    Strict-Transport-Security."""

    def __init__(self, app, trust_forwarded_proto=False):
        self.app = app
        self.trust_forwarded_proto = trust_forwarded_proto

    def scheme(self, scope):
        if self.trust_forwarded_proto:
            for name, value in scope.get("headers", []):
                if name == b"x-forwarded-proto":
                    return value.decode("latin-1").split(",")[0].strip().lower()
        return scope.get("scheme", "http")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.scheme(scope) != "https":
            await send({"type": "http.response.start", "status": 403,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(REFUSAL)).encode())]})
            await send({"type": "http.response.body", "body": REFUSAL})
            return

        async def with_hsts(message):
            if message["type"] == "http.response.start":
                message = dict(message)
                message["headers"] = list(message.get("headers", [])) + [(b"strict-transport-security", HSTS)]
            await send(message)

        await self.app(scope, receive, with_hsts)
