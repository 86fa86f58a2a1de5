import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone


class Project(models.Model):
    """A tenant (SignalWire's "project", Vatel's "organization").

    Everything Roomkey stores belongs to exactly one project; API consumers only ever see their
    own project's objects.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(max_length=200, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class ApiKeyQuerySet(models.QuerySet):
    def usable(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True).filter(
            Q(expires_at__isnull=True) | Q(expires_at__gt=now)
        )


class ApiKey(models.Model):
    """A project's credential for the server-side APIs.

    The row describes the key and never holds it: `prefix` is the public part used to find the
    row, `digest` the SHA-256 of the whole key. The key itself is shown once, when made
    (tokens.services.api_key_create). A key lives until it expires or is revoked; the row stays
    for the audit trail of the tokens it issued.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200, blank=True)
    prefix = models.CharField(max_length=16, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self):
        return f"{self.name or 'key'} (rk_{self.prefix}_…)"

    def is_usable_at(self, now) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)

    @property
    def is_usable(self) -> bool:
        return self.is_usable_at(timezone.now())


class SigningKey(models.Model):
    """A project's HMAC key for the JWTs Roomkey signs itself (chat, voice session).

    The newest active key signs; every key not yet retired verifies, so a key can be rotated
    (a new one made, the old one deactivated) without breaking tokens still in flight, and
    retired once those have expired. The secret is needed to sign, so it is stored; it is never
    shown in the admin or printed.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="signing_keys")
    kid = models.CharField(max_length=32, unique=True, editable=False)
    secret = models.BinaryField(max_length=64, editable=False)
    active = models.BooleanField(default=True, help_text="Active keys may sign new tokens.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    retired_at = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="Retired keys verify nothing."
    )

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return self.kid


class IssuedTokenQuerySet(models.QuerySet):
    def active(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)

    def expired(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__lte=now)

    def revoked(self):
        return self.filter(revoked_at__isnull=False)


class IssuedToken(models.Model):
    """One row per token Roomkey issued, of any kind; never the token string.

    The row is what makes a token revocable and inspectable: verification finds it by jti and
    refuses the token once `revoked_at` is set. Grants that do not travel in the token (a chat
    token's channels, for one) live here. Rows are purged by `cleartokens` some time after they
    expire.
    """

    jti = models.CharField("JTI", max_length=64, primary_key=True, editable=False)
    # Indexes are few on purpose: every issued token inserts into each of them. The
    # (project, kind, subject) index serves project lookups too.
    project = models.ForeignKey(
        Project, on_delete=models.CASCADE, related_name="issued_tokens", db_index=False
    )
    kind = models.CharField(max_length=32)
    subject = models.CharField(max_length=256)
    resource = models.CharField(
        max_length=256, blank=True, default="", help_text="Room, call id or other resource named."
    )
    grants = models.JSONField(default=dict, blank=True)
    issued_at = models.DateTimeField()
    expires_at = models.DateTimeField(db_index=True)
    api_key = models.ForeignKey(
        ApiKey,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="issued_tokens",
        verbose_name="issuing API key",
    )
    signing_kid = models.CharField("signing key id", max_length=64, blank=True, default="")
    client_ip = models.GenericIPAddressField("client IP", null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.CharField(max_length=200, blank=True, default="")
    revoke_reason = models.CharField(max_length=500, blank=True, default="")

    objects = IssuedTokenQuerySet.as_manager()

    class Meta:
        ordering = ["-issued_at"]
        indexes = [
            models.Index(fields=["project", "kind", "subject"]),
            models.Index(fields=["project", "-issued_at"]),
        ]
        permissions = [("revoke_issuedtoken", "Can revoke issued tokens")]

    def __str__(self):
        return f"{self.kind}:{self.jti}"

    def status(self, now=None):
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or timezone.now()):
            return "expired"
        return "active"
