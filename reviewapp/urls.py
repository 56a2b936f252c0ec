from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(template_name="login.html"), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("reviewapp.web.series")),
    path("", include("reviewapp.web.graph")),
    path("", include("reviewapp.web.apply")),
    path("", include("reviewapp.web.suites")),
    path("", include("reviewapp.web.browse")),
    path("", include("reviewapp.web.digests")),
    path("", include("reviewapp.web.review")),
    path("", include("reviewapp.web.inflight")),
    path("", include("reviewapp.api.urls")),
]

handler400 = "reviewapp.web.errors.bad_request"
