"""{{ msgid|lore }}: the message's page on the archive LORE_URL names (one helper: untangle.msgid)."""
from django import template
from django.conf import settings

from untangle import msgid as msgids

register = template.Library()


@register.filter(name="lore")
def lore(msgid: str) -> str:
    return msgids.lore_url(msgid or "", settings.LORE_URL)
