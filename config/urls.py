from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.utils.functional import lazy
from django.views.generic import RedirectView

from labeling.views import account

urlpatterns = [
    path("admin/", admin.site.urls),
    # Browsers and tools ask /favicon.ico whatever the page links; the icon itself is a static file.
    path(
        "favicon.ico",
        RedirectView.as_view(url=lazy(static, str)("favicon.svg"), permanent=True),
        name="favicon",
    ),
    path("accounts/login/", account.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/", account.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/password_changed.html"),
        name="password_change_done",
    ),
    path("accounts/tokens/", account.tokens, name="tokens"),
    path("accounts/tokens/<str:prefix>/revoke/", account.token_revoke_view, name="token_revoke"),
    path("accounts/team-tokens/", account.team_tokens_view, name="team_tokens"),
    path("accounts/logout-everywhere/", account.logout_everywhere, name="logout_everywhere"),
    path("api/v1/", include("config.api_urls")),  # the one REST API, its schema and Swagger UI
    path("manage/", include("labeling.manage_urls")),  # issue 4: batch management, imports, datasets pages
    path("training/", include("training.urls")),  # issue 6: runs, model registry, rounds
    path("quality/", include("labeling.quality_urls")),  # issue 7: agreement, gold, screening, evaluation
    path("explore/", include("labeling.explorer_urls")),  # the data explorer: what was labeled
    path("", include("labeling.urls")),  # issue 3: the labeler workspace
]

handler404 = "core.api.exceptions.page_not_found"  # JSON under the API's prefix
# Static files: WhiteNoise serves them in every mode (config/settings.py), so no static() route here.
