"""The project's URLs with /quality/ mounted, for as long as config/urls.py does not mount it itself."""

from django.urls import include, path

from config.urls import urlpatterns as project

mounted = any(getattr(p, "namespace", None) == "quality" for p in project)
urlpatterns = list(project) + ([] if mounted else [path("quality/", include("labeling.quality_urls"))])
