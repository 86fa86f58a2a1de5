import json

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tokens import crypto, services
from tokens.models import Project, SigningKey
from tokens.selectors import DEMO_PROJECT_NAME
from tokens.signals import demo_seeded

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = (
        "Create (once) the demo project, its signing key and a development-only staff user; "
        "issue a fresh demo API key and a fresh staff password on every run."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="Print one JSON object only.")
        parser.add_argument(
            "--base-url", default="http://127.0.0.1:8000", help="Where the server listens."
        )

    def handle(self, *args, **options):
        if not settings.DEBUG:
            raise CommandError(
                "seed_demo makes a staff user with a printed password: development only "
                "(DJANGO_DEBUG is false)."
            )
        with transaction.atomic():
            project, _ = Project.objects.get_or_create(name=DEMO_PROJECT_NAME)
            if not SigningKey.objects.filter(
                project=project, active=True, retired_at__isnull=True
            ).exists():
                services.signing_key_create(project=project)
            api_key = services.api_key_create(project=project, name="demo")
            password = crypto.new_password()
            user, _ = get_user_model().objects.get_or_create(username=ADMIN_USERNAME)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
            result = {
                "project_id": str(project.pk),
                "api_key": api_key.raw,
                "admin_username": ADMIN_USERNAME,
                "admin_password": password,
            }
            # Other apps' demo data (agents, …), without tokens knowing those apps.
            for _receiver, extra in demo_seeded.send(sender=self.__class__, project=project):
                result.update(extra or {})
        if options["json"]:
            self.stdout.write(json.dumps(result))
            return
        base = options["base_url"].rstrip("/")
        body = '{"ttl": 60, "channels": {"general": {"read": true, "write": true}}}'
        self.stdout.write(self.style.SUCCESS("Roomkey demo data is ready."))
        self.stdout.write(
            f"""
  Landing page   {base}/
  Admin          {base}/admin/   user {ADMIN_USERNAME}   password {password}
  Project id     {project.pk}
  API key        {api_key.raw}   (a new one on every run; shown once)

  Mint a chat token:
    curl -u '{project.pk}:{api_key.raw}' -H 'Content-Type: application/json' \\
      -d '{body}' {base}/api/chat/tokens
"""
        )
        base_keys = {"project_id", "api_key", "admin_username", "admin_password"}
        for name, value in result.items():
            if name not in base_keys:
                self.stdout.write(f"  {name:<20} {value}")
