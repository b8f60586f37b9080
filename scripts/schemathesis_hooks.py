"""Schemathesis hooks for `make schemathesis` (loaded by scripts/schemathesis.sh).

Every request is authenticated as the bootstrap admin, in the workspace of an organization it
owns, so the org-scoped operations (members, invitations, audit, offerings, shares) run their
real logic instead of answering 403 `organization_required` from the personal workspace.

Nothing is excluded from the run. The fuzzer itself calls /auth/logout, /auth/refresh,
DELETE /auth/sessions/{id}, workspace switches and DELETE /organizations/current, which end or
move the session in use: a 401 makes Schemathesis fetch a new session here and replay the
request, and the short refresh interval brings a deleted organization back within seconds.
"""

import os
import re
import secrets

import requests
import schemathesis

BASE_URL = os.environ["SCHEMATHESIS_BASE_URL"]
EMAIL = os.environ["SCHEMATHESIS_ADMIN_EMAIL"]
PASSWORD = os.environ["SCHEMATHESIS_ADMIN_PASSWORD"]
TIMEOUT = 10


def _json(response: requests.Response, status: int) -> dict:
    if response.status_code != status:
        raise RuntimeError(
            f"{response.request.method} {response.request.url}: expected {status}, "
            f"got {response.status_code}: {response.text[:500]}"
        )
    return response.json()


@schemathesis.auth(refresh_interval=10)
class AdminInOrgWorkspace:
    def get(self, case, context):
        with requests.Session() as http:
            login = _json(
                http.post(f"{BASE_URL}/auth/login", json={"email": EMAIL, "password": PASSWORD}, timeout=TIMEOUT),
                200,
            )
            http.headers["Authorization"] = f"Bearer {login['access_token']}"
            orgs = _json(http.get(f"{BASE_URL}/organizations?limit=200", timeout=TIMEOUT), 200)["items"]
            owned = [org["id"] for org in orgs if org["role"] == "owner"]
            if owned:
                org_id = owned[0]
            else:
                # The fuzzer deleted every organization the admin owned: make a new one.
                name = f"Schemathesis {secrets.token_hex(4)}"
                created = http.post(f"{BASE_URL}/organizations", json={"name": name}, timeout=TIMEOUT)
                org_id = _json(created, 201)["id"]
            switched = http.put(
                f"{BASE_URL}/organizations/current", json={"organization_id": org_id}, timeout=TIMEOUT
            )
            return _json(switched, 200)["access_token"]

    def set(self, case, data, context):
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


# Rules the server enforces that an OpenAPI schema cannot state. A request that satisfies the
# schema but breaks one of them is rightly refused, so Schemathesis' "schema-valid request
# rejected" (positive_data_acceptance) is dropped for exactly these answers and no others.
# Each entry: (status, error code, field or None, pattern of the reason or message).
INEXPRESSIBLE = [
    # Cursors are opaque: only one this server returned decodes.
    (400, "validation_failed", "cursor", r"^invalid cursor$"),
    # Relations between two fields.
    (400, "validation_failed", "to", r"^must be after from\b|^the range may cover at most 366 days\b"),
    (400, "validation_failed", "email", r"^give either email or username$"),
    # References to rows that must exist in the caller's workspace.
    (400, "validation_failed", None, r"^no (active )?\w+ with this id in this (workspace|organization)$"),
    # Dates are accepted from 1970 to 9999 as UTC instants (issue 16): a format can say neither.
    (400, "validation_failed", None, r"^must be an RFC 3339 date-time between 1970 and 9999 \(UTC\)$"),
    # Relative to the clock.
    (400, "validation_failed", None, r"^must be in the future$"),
    # Text rules beyond lengths: no control characters, not blank once trimmed (the server
    # trims), character sets, address syntax, a slug derivable from the name.
    (400, "validation_failed", None, r"control characters|printable characters|^(must be )?\d+ to \d+ characters( long)?$"),
    (400, "validation_failed", "username", r"^may only contain letters, digits|^must not contain '@'$"),
    (400, "validation_failed", None, r"visible (ASCII )?characters"),
    (400, "validation_failed", "endpoint_url", r"^required for the external provider$|^must be an http:// base URL"),
    # An external endpoint must resolve to allowed networks, and belongs to its first owner.
    (400, "endpoint_not_allowed", None, r"."),
    (409, "endpoint_taken", None, r"."),
    (400, "validation_failed", "email", r"."),
    (400, "validation_failed", "slug", r"^cannot derive a slug from this name; give one$"),
    # A reset token is a secret only the emailed link carries.
    (410, "reset_token_invalid", None, r"."),
    # JSON Schema calls 12.0 an integer; the server reads integers as JSON integers only.
    (400, "invalid_body", None, r"invalid type: floating point `-?\d+\.0`, expected i64"),
]


def _inexpressible(response) -> bool:
    try:
        body = response.json()
    except ValueError:
        return False
    if not isinstance(body, dict):
        return False
    if isinstance(body.get("error"), dict):
        # /v1/*: OpenAI's error shape; the field at fault is its `param`.
        error = body["error"]
        body = {"error": error.get("code"), "message": error.get("message", "")}
        if error.get("param"):
            body["fields"] = {error["param"]: error.get("message", "")}
    for status, code, field, pattern in INEXPRESSIBLE:
        if response.status_code != status or body.get("error") != code:
            continue
        if field is None:
            reasons = list((body.get("fields") or {}).values()) or [body.get("message", "")]
        else:
            fields = body.get("fields") or {}
            if set(fields) != {field}:
                continue
            reasons = [fields[field]]
        if all(re.search(pattern, reason) for reason in reasons):
            return True
    return False


@schemathesis.hook
def filter_failure(context, failure, case, response):
    if getattr(failure, "code", None) == "ST202" and _inexpressible(response):
        return False
    return True
