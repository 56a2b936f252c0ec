from django.shortcuts import render

from .selectors import revisions


def series_list(request):
    return render(request, "series_list.html", {"revisions": revisions()})
