"""Shapes of the API's JSON. Read-only except the small trigger inputs."""
from rest_framework import serializers

from ..models import (ApplyRun, Dependency, FetchRequest, MailingList, Patch, PatchFile, Revision,
                      Series, Subscription, SuiteRun, Trailer, Tree)


class ListSerializer(serializers.ModelSerializer):
    class Meta:
        model = MailingList
        fields = ["id", "name"]


class RevisionBriefSerializer(serializers.ModelSerializer):
    list = serializers.CharField(source="mailing_list.name", default=None, allow_null=True, read_only=True)

    class Meta:
        model = Revision
        fields = ["msgid", "title", "version", "rfc", "author_name", "author_email", "date", "list",
                  "expected", "received", "complete", "change_id", "base_commit"]


class SeriesSerializer(serializers.ModelSerializer):
    revisions = RevisionBriefSerializer(many=True, read_only=True)

    class Meta:
        model = Series
        fields = ["id", "title", "author_email", "change_id", "created", "revisions"]


class PatchFileSerializer(serializers.ModelSerializer):
    class Meta:
        model = PatchFile
        fields = ["path", "old_path", "status", "old_blob", "new_blob"]


class TrailerSerializer(serializers.ModelSerializer):
    msgid = serializers.CharField(source="message.msgid", read_only=True)

    class Meta:
        model = Trailer
        fields = ["kind", "name", "email", "value", "msgid"]


class PatchSerializer(serializers.ModelSerializer):
    msgid = serializers.CharField(source="message.msgid", read_only=True)
    files = PatchFileSerializer(many=True, read_only=True)
    trailers = TrailerSerializer(many=True, read_only=True)

    class Meta:
        model = Patch
        fields = ["msgid", "number", "subject", "author_name", "author_email", "date", "patch_id",
                  "commit_message", "diff", "files", "trailers"]


class DependencySerializer(serializers.ModelSerializer):
    target_msgid = serializers.CharField(source="target_revision.msgid", default=None, allow_null=True, read_only=True)

    class Meta:
        model = Dependency
        fields = ["kind", "target", "target_type", "target_msgid", "how", "evidence",
                  "evidence_msgid", "version", "error"]


class RevisionSerializer(RevisionBriefSerializer):
    series = serializers.IntegerField(source="series_id", read_only=True)
    previous = serializers.CharField(source="previous.msgid", default=None, allow_null=True, read_only=True)
    cover_trailers = serializers.SerializerMethodField()
    patches = PatchSerializer(many=True, read_only=True)
    dependencies = DependencySerializer(many=True, read_only=True)
    prerequisites = serializers.JSONField(read_only=True)
    missing = serializers.JSONField(read_only=True)

    class Meta(RevisionBriefSerializer.Meta):
        fields = RevisionBriefSerializer.Meta.fields + [
            "series", "previous", "missing", "prerequisites", "cover_trailers", "patches",
            "dependencies"]

    def get_cover_trailers(self, rev) -> list[dict]:
        rows = rev.trailers.filter(patch__isnull=True).select_related("message")
        return TrailerSerializer(rows, many=True).data


class TreeSerializer(serializers.ModelSerializer):
    branches = serializers.JSONField(read_only=True)

    class Meta:
        model = Tree
        fields = ["id", "name", "source", "branches", "state", "error", "fetched"]


class ApplyRunSerializer(serializers.ModelSerializer):
    tree = serializers.CharField(source="tree.name", read_only=True)
    root = serializers.CharField(source="root.msgid", read_only=True, allow_null=True)
    integration_of = serializers.CharField(source="integration_of.name", read_only=True, allow_null=True,
                                           help_text="the list whose integration branch this run is (root is null)")
    chain = serializers.JSONField(read_only=True)
    applied = serializers.JSONField(read_only=True)
    failed = serializers.JSONField(read_only=True)
    base_attempts = serializers.SerializerMethodField()

    class Meta:
        model = ApplyRun
        fields = ["id", "tree", "root", "integration_of", "newest", "given_base", "status", "chain", "base",
                  "base_rule", "base_attempts", "progress", "total", "head", "tree_sha", "ref",
                  "applied", "failed", "cached", "error", "created", "finished"]

    def get_base_attempts(self, run) -> list[dict]:
        return list(run.base_attempts[:200])  # a guess may record thousands


def _text(max_length: int, **kwargs) -> serializers.RegexField:
    """A string field whose schema says what it refuses (NUL, and blank unless allowed), so
    clients can know: the pattern carries the non-blank rule DRF applies anyway."""
    if kwargs.get("allow_blank"):
        return serializers.RegexField(r"^[^\x00]*$", max_length=max_length, **kwargs)
    return serializers.RegexField(r"^[^\x00]+$", max_length=max_length, min_length=1, **kwargs)


class ApplyRequestSerializer(serializers.Serializer):
    revision = _text(500, help_text="msgid of the series to apply")
    tree = _text(100)
    base = _text(200, required=False, allow_blank=True)
    newest = serializers.BooleanField(required=False, default=False)


class SuiteRunSerializer(serializers.ModelSerializer):
    suite = serializers.CharField(source="suite.name", read_only=True)
    tests = serializers.JSONField(read_only=True)

    class Meta:
        model = SuiteRun
        fields = ["id", "apply_run", "suite", "status", "step", "tests", "duration_s", "created",
                  "finished"]


class SuiteRequestSerializer(serializers.Serializer):
    apply_run = serializers.IntegerField(min_value=1)
    suite = _text(100, required=False)


class FetchSerializer(serializers.ModelSerializer):
    revisions = serializers.JSONField(read_only=True)

    class Meta:
        model = FetchRequest
        fields = ["id", "ref", "msgid", "state", "attempts", "error", "revisions", "created", "finished"]
        read_only_fields = ["id", "msgid", "state", "attempts", "error", "revisions", "created", "finished"]


class FetchRequestSerializer(serializers.Serializer):
    ref = _text(1000, help_text="a msgid or a lore URL")


class SubscriptionSerializer(serializers.ModelSerializer):
    lists = serializers.JSONField(read_only=True)
    trees = serializers.JSONField(read_only=True)
    paths = serializers.JSONField(read_only=True)
    watched = serializers.JSONField(read_only=True)

    class Meta:
        model = Subscription
        fields = ["id", "address", "name", "period", "lists", "trees", "paths", "watched", "active",
                  "created"]


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField()
