from django.db import migrations, models


class Migration(migrations.Migration):
    """The page generation's tables; their triggers are (re)installed after every migrate
    (reviewapp.apps -> reviewapp.pagecache.install_triggers), so new tables are covered too."""

    dependencies = [("reviewapp", "0006_merge_cleanup_leases")]

    operations = [
        migrations.CreateModel(
            name="PageGeneration",
            fields=[
                ("id", models.PositiveSmallIntegerField(primary_key=True, serialize=False)),
                ("epoch", models.BigIntegerField()),
                ("value", models.BigIntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name="PageDirty",
            fields=[("txid", models.BigIntegerField(primary_key=True, serialize=False))],
        ),
    ]
