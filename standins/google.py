"""Local stand-ins for Google's endpoints, so google-auth's real code runs in the tests and bench.

* `MetadataServer`: the GCE/Cloud Run metadata server that google-auth asks for the project id
  and the service account's access tokens (google-auth reads GCE_METADATA_HOST/IP); it remembers
  each token's scopes, so the API stand-ins (`standins.google_chat`) can check what they are sent.
* `CertsServer`: Google's ID-token signing certs (`APPROVALS_OIDC_CERTS_URL`), or a service
  account's x509 certs, with a test key whose private half `TokenMinter` signs tokens with,
  through google-auth's own JWT encoder.

The Workflows callback endpoint's stand-in is `standins.workflows`, shared with make run.
"""

import base64
import datetime
import json
import time
from urllib.parse import parse_qs, urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from google.auth.crypt import es256

from .http import QuietHandler, StandinServer, answer

SERVICE_ACCOUNT = "approver@demo-project.iam.gserviceaccount.com"


class _MetadataHandler(QuietHandler):
    server: "MetadataServer"

    def do_GET(self):
        path = self.path.split("?")[0]
        self.server.count(path)
        flavor = {"Metadata-Flavor": "Google"}
        if self.headers.get("Metadata-Flavor") != "Google":
            answer(self, 403, b"Missing Metadata-Flavor header", flavor)
        elif path == "/":
            answer(self, 200, b"ok", flavor)
        elif path == "/computeMetadata/v1/project/project-id":
            answer(self, 200, b"demo-project", flavor)
        elif path == "/computeMetadata/v1/universe/universe-domain":
            answer(self, 200, b"googleapis.com", flavor)
        elif path in self.server.account_paths(""):
            info = {"email": SERVICE_ACCOUNT, "aliases": ["default"], "scopes": self.server.scopes}
            answer(self, 200, info, {**flavor, "Content-Type": "application/json"})
        elif path in self.server.account_paths("token"):
            token = self.server.issue(parse_qs(urlsplit(self.path).query).get("scopes"))
            body = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
            answer(self, 200, body, {**flavor, "Content-Type": "application/json"})
        else:
            answer(self, 404, b"not found", flavor)


class MetadataServer(StandinServer):
    def __init__(self, port: int = 0):
        super().__init__(_MetadataHandler, port)
        self.issued = 0
        self.token_fetches = 0
        self.scopes = ["https://www.googleapis.com/auth/cloud-platform"]
        self.granted: dict[str, frozenset[str]] = {}

    @staticmethod
    def account_paths(leaf: str) -> set[str]:
        """google-auth asks for the account as "default" first, then by its e-mail."""
        return {
            f"/computeMetadata/v1/instance/service-accounts/{account}/{leaf}"
            for account in ("default", SERVICE_ACCOUNT)
        }

    def issue(self, requested: list[str] | None) -> str:
        """A new access token for the scopes asked for (google-auth sends `?scopes=a,b`), else
        the account's; Cloud Run's metadata server grants whatever scopes are asked for."""
        scopes = requested[0].split(",") if requested else self.scopes
        with self.lock:
            self.token_fetches += 1
            self.issued += 1
            token = f"test-access-token-{self.issued}"
            self.granted[token] = frozenset(scopes)
        return token

    def scopes_of(self, token: str) -> frozenset[str] | None:
        """The scopes `token` was issued with, or None when this server never issued it: how
        the other stand-ins (the Chat API's) check the access tokens they are sent."""
        with self.lock:
            return self.granted.get(token)

    def last_token(self) -> str:
        return f"test-access-token-{self.issued}"


class _CertsHandler(QuietHandler):
    server: "CertsServer"

    def do_GET(self):
        self.server.count(self.path)
        answer(
            self,
            200,
            self.server.certs,
            {"Content-Type": "application/json", "Cache-Control": self.server.cache_control},
        )


class SigningKey:
    """An RSA key with a self-signed X.509 cert, published the way Google publishes its certs."""

    def __init__(self, key_id: str):
        self.key_id = key_id
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "approver test signer")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256())
        )
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode()
        self.signer = crypt.RSASigner.from_string(self.private_pem, key_id=key_id)


class CertsServer(StandinServer):
    """Publishes `{key id: PEM}` as Google does, at `path`: Google's OIDC certs by default, or a
    service account's x509 certs (`/service_accounts/v1/metadata/x509/<e-mail>`, as Chat's)."""

    PATH = "/oauth2/v1/certs"

    def __init__(self, keys: list[SigningKey], path: str = PATH):
        super().__init__(_CertsHandler)
        self.certs_path = path
        self.certs = {key.key_id: key.cert_pem for key in keys}
        self.cache_control = "public, max-age=3600"

    @property
    def url(self) -> str:
        return self.base_url + self.certs_path

    @property
    def fetches(self) -> int:
        return self.hits.get(self.certs_path, 0)


class TokenMinter:
    """Signs Google-style ID tokens with a test key, through google-auth's JWT encoder."""

    def __init__(self, key: SigningKey, audience: str):
        self.key = key
        self.audience = audience

    def claims(self, **overrides) -> dict:
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": self.audience,
            "azp": "1234567890",
            "sub": "1234567890",
            "email": "workflow@demo-project.iam.gserviceaccount.com",
            "email_verified": True,
            "iat": now,
            "exp": now + 3600,
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def token(self, signer=None, **overrides) -> str:
        return jwt.encode(signer or self.key.signer, self.claims(**overrides)).decode()


def sign_jwt(signer, header: dict | bytes, payload: dict | bytes) -> str:
    """A JWT signed by `signer` over a header and payload as given: dicts are serialised as
    Python's json does (NaN and Infinity included), bytes are taken as they are, so a test can
    sign shapes no well-behaved encoder would write."""

    def segment(part: dict | bytes) -> bytes:
        data = part if isinstance(part, bytes) else json.dumps(part).encode()
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    signing_input = segment(header) + b"." + segment(payload)
    signature = base64.urlsafe_b64encode(signer.sign(signing_input)).rstrip(b"=")
    return (signing_input + b"." + signature).decode()


class EcSigningKey:
    """An EC P-256 key, published the way IAP publishes its keys (`{key id: public key PEM}` at
    https://www.gstatic.com/iap/verify/public_key); IAP signs its assertions with ES256.

    `cert_pem` holds the public key PEM, so `CertsServer` publishes it like the RSA certs.
    """

    def __init__(self, key_id: str):
        self.key_id = key_id
        key = ec.generate_private_key(ec.SECP256R1())
        self.private_pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        self.public_pem = (
            key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self.cert_pem = self.public_pem
        self.signer = es256.ES256Signer.from_string(self.private_pem, key_id)
