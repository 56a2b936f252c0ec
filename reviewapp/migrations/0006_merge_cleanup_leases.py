from django.db import migrations


class Migration(migrations.Migration):
    """Joins the cleanup branch (indexes, TextChoices) and the sync/digest leases branch."""

    dependencies = [
        ("reviewapp", "0005_cleanup"),
        ("reviewapp", "0005_sync_digest_leases"),
    ]

    operations = []
