"""Digest subscriptions (maintainers), the next digest's preview, and the
signed unsubscribe link anyone holding it may use."""
from django import forms
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from ..models import Subscription
from ..permissions import maintainer_required
from ..services import digests


class ListField(forms.CharField):
    """A JSON list edited as text, one value per line (commas work too)."""
    widget = forms.Textarea(attrs={"rows": 3, "cols": 50})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        text = super().to_python(value) or ""
        return [v.strip() for v in text.replace(",", "\n").splitlines() if v.strip()]


class SubscriptionForm(forms.ModelForm):
    period = forms.ChoiceField(choices=[(p, p) for p in digests.PERIODS])
    lists = ListField(required=False, help_text="list names, e.g. linux-mm")
    trees = ListField(required=False, help_text="tree names: series applied on them")
    paths = ListField(required=False, help_text="path prefixes, e.g. mm/ or virt/kvm/")
    watched = ListField(required=False, help_text="message-ids of watched series")

    class Meta:
        model = Subscription
        fields = ["address", "name", "period", "lists", "trees", "paths", "watched", "active"]

    def clean_address(self):
        address = self.cleaned_data["address"].strip()
        forms.EmailField().clean(address)
        return address


@maintainer_required("view digest subscriptions")
def subscription_list(request):
    subs = Subscription.objects.order_by("-active", "address")
    return render(request, "digests/list.html", {"subscriptions": subs})


@maintainer_required("edit digest subscription")
def subscription_edit(request, sub_id=None):
    sub = get_object_or_404(Subscription, pk=sub_id) if sub_id else None
    form = SubscriptionForm(request.POST or None, instance=sub)
    if request.method == "POST" and form.is_valid():
        sub = form.save()
        messages.info(request, f"Subscription {sub.pk} for {sub.address} saved.")
        return redirect("digest-list")
    return render(request, "digests/form.html", {"form": form, "sub": sub})


@maintainer_required("preview digest")
def preview(request, sub_id):
    sub = get_object_or_404(Subscription, pk=sub_id)
    return render(request, "digests/preview.html", {"sub": sub, "digest": digests.preview(sub),
                                                    "recent": sub.digests.order_by("-period_start")[:10]})


@csrf_exempt  # the signed token is the credential; mail clients POST it (RFC 8058)
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token):
    sub = digests.subscription_from_token(token)
    if sub is None:
        return render(request, "digests/unsubscribe.html", {"invalid": True}, status=404)
    if request.method == "POST":
        Subscription.objects.filter(pk=sub.pk).update(active=False)
        sub.active = False
        return render(request, "digests/unsubscribe.html", {"sub": sub, "done": True})
    return render(request, "digests/unsubscribe.html", {"sub": sub})


urlpatterns = [
    path("digests/", subscription_list, name="digest-list"),
    path("digests/new/", subscription_edit, name="digest-new"),
    path("digests/<int:sub_id>/edit/", subscription_edit, name="digest-edit"),
    path("digests/<int:sub_id>/preview", preview, name="digest-preview"),
    path("digests/unsubscribe/<str:token>/", unsubscribe, name="digest-unsubscribe"),
]


def series_panel(request, revision) -> dict:
    """Digests add nothing to the series page."""
    return {}
