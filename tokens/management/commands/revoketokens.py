from django.core.management.base import BaseCommand, CommandError

from tokens import kinds, services
from tokens.management.options import project_option
from tokens.models import IssuedToken


class Command(BaseCommand):
    help = (
        "Revoke issued tokens by jti, subject or project. Shows what would be revoked unless "
        "--yes is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("--jti", action="append", default=[], help="May be repeated.")
        parser.add_argument("--subject", help="Member id, identity or call id.")
        parser.add_argument("--project", help="Project id or name.")
        parser.add_argument("--kind", choices=[k.name for k in kinds.all_kinds()])
        parser.add_argument("--reason", default="revoked with manage.py revoketokens")
        parser.add_argument("--yes", action="store_true", help="Really revoke.")

    def handle(self, *args, **options):
        if not (options["jti"] or options["subject"] or options["project"]):
            raise CommandError("Say which tokens: --jti, --subject or --project.")
        qs = IssuedToken.objects.filter(revoked_at__isnull=True)
        if options["project"]:
            project = project_option(options["project"])
            qs = qs.filter(project=project)
        if options["jti"]:
            qs = qs.filter(jti__in=options["jti"])
        if options["subject"]:
            qs = qs.filter(subject=options["subject"])
        if options["kind"]:
            qs = qs.filter(kind=options["kind"])
        count = qs.count()
        if not options["yes"]:
            for row in qs.order_by("issued_at")[:20]:
                self.stdout.write(f"  {row.kind:8} {row.jti}  {row.subject}")
            self.stdout.write(
                self.style.WARNING(f"Would revoke {count} token(s). Run again with --yes.")
            )
            return
        revoked = services.token_revoke_many(queryset=qs, by="cli", reason=options["reason"])
        self.stdout.write(self.style.SUCCESS(f"Revoked {revoked} token(s)."))
