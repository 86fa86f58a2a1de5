"""Registry rows for the tokens agents mints itself: LiveKit and tool tokens are not signed
with the project's key, so tokens.services.token_issue does not mint them; their rows are
recorded here, in the issuing transaction."""

from tokens import services as token_services
from tokens.kinds import Decoded
from tokens.models import ApiKey, IssuedToken, Project


def record_minted(
    *,
    project: Project,
    kind: str,
    jti: str,
    subject: str,
    issued_at: int,
    expires_at: int,
    grants: dict,
    resource: str,
    api_key: ApiKey | None,
    client_ip: str | None,
) -> IssuedToken:
    return token_services.record_issued(
        project=project,
        decoded=Decoded(
            kind=kind,
            jti=jti,
            project_id=str(project.pk),
            subject=subject,
            issued_at=issued_at,
            expires_at=expires_at,
        ),
        grants=grants,
        resource=resource,
        api_key=api_key,
        client_ip=client_ip,
    )
