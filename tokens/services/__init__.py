"""Writes and token checks: the one place where credentials and tokens are made and judged.

The admin, the API views and the management commands all call these functions, through this
package (`from tokens import services`; `services.token_issue(...)`):

- `keys`: projects, API keys, signing keys;
- `registry`: minting a token and its registry row, verifying and introspecting a token;
- `revocation`: revoking tokens and purging expired rows.
"""

from .keys import (
    NewApiKey,
    api_key_authenticate,
    api_key_create,
    api_key_revoke,
    project_create,
    signing_key_create,
    signing_key_retire,
    signing_key_rotate,
    signing_keys_forget,
)
from .registry import (
    InvalidToken,
    Issued,
    Verification,
    record_issued,
    token_decode,
    token_introspect,
    token_issue,
    token_verify,
)
from .revocation import token_revoke, token_revoke_many, token_revoke_raw, tokens_clear_expired

__all__ = [
    "InvalidToken",
    "Issued",
    "NewApiKey",
    "Verification",
    "api_key_authenticate",
    "api_key_create",
    "api_key_revoke",
    "project_create",
    "record_issued",
    "signing_key_create",
    "signing_key_retire",
    "signing_key_rotate",
    "signing_keys_forget",
    "token_decode",
    "token_introspect",
    "token_issue",
    "token_revoke",
    "token_revoke_many",
    "token_revoke_raw",
    "token_verify",
    "tokens_clear_expired",
]
