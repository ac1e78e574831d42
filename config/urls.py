from django.conf import settings
from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # Own template names: registration/password_change_form.html is the admin's page.
    path(
        "accounts/password/",
        auth_views.PasswordChangeView.as_view(template_name="registration/password_change.html"),
        name="password_change",
    ),
    path(
        "accounts/password/done/",
        auth_views.PasswordChangeDoneView.as_view(template_name="registration/password_changed.html"),
        name="password_change_done",
    ),
    path("api/", include("labeling.api.urls")),  # issue 4: REST API, schema, Swagger UI
    path("manage/", include("labeling.manage_urls")),  # issue 4: batch management, imports, datasets pages
    path("training/", include("training.urls")),  # issue 6: runs, model registry, rounds
    path("quality/", include("labeling.quality_urls")),  # issue 7: agreement, gold, screening, evaluation
    path("", include("labeling.urls")),  # issue 3: the labeler workspace
]

handler404 = "labeling.api.exceptions.page_not_found"  # JSON under the API's prefixes

if settings.DEBUG:
    from django.conf.urls.static import static

    urlpatterns += static(settings.STATIC_URL, document_root=settings.STATIC_ROOT)
