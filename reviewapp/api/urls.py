from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from . import views

urlpatterns = [
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/auth/", include("rest_framework.urls")),
    path("api/lists/", views.ListList.as_view(), name="api-lists"),
    path("api/series/", views.SeriesList.as_view(), name="api-series"),
    path("api/revisions/", views.RevisionList.as_view(), name="api-revisions"),
    # msgids hold "/" and "@": the suffixed routes come first so <path:> does not swallow them.
    path("api/revisions/<path:msgid>/mbox", views.RevisionMbox.as_view(), name="api-revision-mbox"),
    path("api/revisions/<path:msgid>/graph", views.RevisionGraph.as_view(), name="api-revision-graph"),
    path("api/revisions/<path:msgid>/review", views.RevisionReview.as_view(), name="api-revision-review"),
    path("api/revisions/<path:msgid>/conflicts", views.RevisionConflicts.as_view(), name="api-revision-conflicts"),
    path("api/revisions/<path:msgid>/", views.RevisionDetail.as_view(), name="api-revision"),
    path("api/trees/", views.TreeList.as_view(), name="api-trees"),
    path("api/trees/<str:name>/fetch", views.TreeFetch.as_view(), name="api-tree-fetch"),
    path("api/apply-runs/", views.ApplyRuns.as_view(), name="api-apply-runs"),
    path("api/apply-runs/<int:run_id>/", views.ApplyRunDetail.as_view(), name="api-apply-run"),
    path("api/suite-runs/", views.SuiteRuns.as_view(), name="api-suite-runs"),
    path("api/suite-runs/<int:run_id>/", views.SuiteRunDetail.as_view(), name="api-suite-run"),
    path("api/fetches/", views.Fetches.as_view(), name="api-fetches"),
    path("api/fetches/<int:request_id>/", views.FetchDetail.as_view(), name="api-fetch"),
    path("api/chains/<int:run_id>/mbox", views.ChainMbox.as_view(), name="api-chain-mbox"),
    path("api/subscriptions/", views.Subscriptions.as_view(), name="api-subscriptions"),
    path("api/lists/<str:name>/sync", views.ListSync.as_view(), name="api-list-sync"),
    path("api/lists/<str:name>/inflight", views.ListInflight.as_view(), name="api-list-inflight"),
]
