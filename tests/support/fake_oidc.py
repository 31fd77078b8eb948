"""A small OpenID Connect provider on loopback HTTP, playing Google for the staff single sign-on tests.

It serves what a relying party uses: the discovery document, an authorization
endpoint that answers at once with a redirect carrying a code (the "user" is
whoever the test puts in :attr:`FakeOpenIDProvider.user`), a token endpoint
that checks the client's credentials (client_secret_basic, as authlib sends
them) and the code, and returns an RS256 ID token, and the JWKS with the
public key. The ID tokens are signed with joserfc, the JOSE library authlib
itself validates them with (authlib.jose is deprecated in its favour).
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from typing import Any
from urllib.parse import urlencode

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class FakeOpenIDProvider:
    def __init__(self, *, client_id: str, client_secret: str) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.key = RSAKey.generate_key(2048, parameters={"kid": "fake-key-1", "use": "sig", "alg": "RS256"})
        # The identity the next authorization signs in; tests change it.
        self.user: dict[str, Any] = {"sub": "1001", "email": "reviewer@example.com", "email_verified": True,
                                     "hd": "example.com"}
        self.authorize_requests: list[dict[str, str]] = []
        self.token_requests = 0
        self._codes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self.issuer = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    # ------------------------------------------------------------ endpoints

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        routes = {"/.well-known/openid-configuration": self._discovery, "/authorize": self._authorize,
                  "/token": self._token, "/jwks": self._jwks}
        handler = routes.get(request.path)
        response = handler(request) if handler else Response("not found", status=404)
        return response(environ, start_response)

    def _discovery(self, _request: Request) -> Response:
        return _json({"issuer": self.issuer, "authorization_endpoint": f"{self.issuer}/authorize",
                      "token_endpoint": f"{self.issuer}/token", "jwks_uri": f"{self.issuer}/jwks",
                      "response_types_supported": ["code"], "subject_types_supported": ["public"],
                      "id_token_signing_alg_values_supported": ["RS256"],
                      "token_endpoint_auth_methods_supported": ["client_secret_basic"]})

    def _jwks(self, _request: Request) -> Response:
        return _json({"keys": [self.key.as_dict(private=False)]})

    def _authorize(self, request: Request) -> Response:
        params = request.args.to_dict()
        self.authorize_requests.append(params)
        if params.get("client_id") != self.client_id or params.get("response_type") != "code" \
                or "openid" not in params.get("scope", "").split():
            return _json({"error": "invalid_request"}, 400)
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {"nonce": params.get("nonce"), "redirect_uri": params.get("redirect_uri"),
                                 "user": dict(self.user)}
        query = urlencode({"code": code, "state": params.get("state", "")})
        return Response(status=302, headers={"Location": f"{params['redirect_uri']}?{query}"})

    def _token(self, request: Request) -> Response:
        self.token_requests += 1
        expected = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
        if request.headers.get("Authorization") != f"Basic {expected}":
            return _json({"error": "invalid_client"}, 401)
        with self._lock:
            grant = self._codes.pop(request.form.get("code", ""), None)  # a code works once
        if grant is None or request.form.get("grant_type") != "authorization_code" \
                or request.form.get("redirect_uri") != grant["redirect_uri"]:
            return _json({"error": "invalid_grant"}, 400)
        return _json({"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 3600,
                      "scope": "openid email profile", "id_token": self._id_token(grant)})

    def _id_token(self, grant: dict[str, Any]) -> str:
        # Real time, not the tests' FakeClock: the relying party checks exp/iat against the wall clock.
        now = int(time.time())
        claims = {"iss": self.issuer, "aud": self.client_id, "azp": self.client_id, "iat": now,
                  "exp": now + 3600, "nonce": grant["nonce"], **grant["user"]}
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, claims, self.key)


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, mimetype="application/json")
