import json
from datetime import UTC, datetime

from django.core.management.base import BaseCommand

from tokens import crypto, kinds, services

# Labels end in one column: the longest ("expires_at:") and a space.
LABEL_WIDTH = len("expires_at:")

EXPLAIN = {
    "malformed": "not a token Roomkey can parse",
    "oversize": "longer than ROOMKEY['MAX_TOKEN_BYTES']",
    "bad_signature": "the signature does not check out with any key Roomkey holds for it",
    "wrong_kind": "not of a kind Roomkey issues",
    "expired": "past its expiry",
    "unknown": "not in Roomkey's registry (not issued by Roomkey, or purged)",
    "revoked": "revoked in the registry",
}


def _guess_kind(raw: str) -> kinds.TokenKind | None:
    """The kind a token that did not verify looks like, for the report only."""
    for spec in kinds.all_kinds():
        if spec.sniff is not None and spec.sniff(raw):
            return spec
    try:
        return kinds.by_typ(crypto.jwt_header(raw).get("typ"))
    except crypto.MalformedToken:
        return None


def _peek(raw: str, spec: kinds.TokenKind | None) -> dict | None:
    if spec is not None and spec.peek is not None:
        return spec.peek(raw)
    try:
        return {"header": crypto.jwt_header(raw), "claims": crypto.jwt_unverified_claims(raw)}
    except crypto.MalformedToken:
        return None


def _when(epoch) -> str:
    try:
        return datetime.fromtimestamp(epoch, tz=UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        return "?"


class Command(BaseCommand):
    help = (
        "Say what a token is: its kind, its claims, and whether it is valid now (and why not). "
        "Works for every kind registered in tokens.kinds."
    )

    def add_arguments(self, parser):
        parser.add_argument("token")
        parser.add_argument("--json", action="store_true", help="Print one JSON object only.")

    def handle(self, *args, token, **options):
        raw = token.strip()
        result = services.token_verify(raw)
        spec = kinds.get(result.kind) if result.kind else _guess_kind(raw)
        report = {
            "kind": spec.name if spec else None,
            "valid": result.valid,
            "reason": result.reason or None,
            "explanation": EXPLAIN.get(result.reason, result.reason) if result.reason else None,
        }
        if result.decoded is not None:
            decoded = result.decoded
            report.update(
                signature_checked=True,
                jti=decoded.jti,
                project_id=decoded.project_id,
                subject=decoded.subject,
                issued_at=_when(decoded.issued_at),
                expires_at=_when(decoded.expires_at),
                claims=decoded.claims,
            )
        else:
            report.update(signature_checked=False, unverified=_peek(raw, spec))
        row = result.row
        if row is not None:
            report["registry"] = {
                "jti": row.jti,
                "project": str(row.project),
                "subject": row.subject,
                "resource": row.resource,
                "grants": row.grants,
                "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
                "revoked_by": row.revoked_by or None,
                "revoke_reason": row.revoke_reason or None,
            }
        if options["json"]:
            self.stdout.write(json.dumps(report, default=str))
            return
        self._print(report)

    def _print(self, report: dict) -> None:
        def line(label, value, style=None):
            text = f"{label + ':':<{LABEL_WIDTH}} {value}"
            self.stdout.write(style(text) if style else text)

        line("kind", report["kind"] or "unknown")
        if report["valid"]:
            line("valid", "yes", self.style.SUCCESS)
        else:
            reason = f"{report['reason']} ({report['explanation']})"
            registry = report.get("registry") or {}
            if registry.get("revoke_reason"):
                reason += f": {registry['revoke_reason']}"
            line("valid", f"no — {reason}", self.style.ERROR)
        for name in ("jti", "project_id", "subject", "issued_at", "expires_at"):
            if name in report:
                line(name, report[name])
        if report["signature_checked"]:
            self.stdout.write("claims (signature checked):")
            self.stdout.write(json.dumps(report["claims"], indent=2, default=str))
        elif report.get("unverified") is not None:
            self.stdout.write("fields (NOT verified):")
            self.stdout.write(json.dumps(report["unverified"], indent=2, default=str))
        if report.get("registry"):
            self.stdout.write("registry row:")
            self.stdout.write(json.dumps(report["registry"], indent=2, default=str))
