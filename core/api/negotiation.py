"""DRF's content negotiation with a shortcut for what API clients send."""

from rest_framework.negotiation import DefaultContentNegotiation


class ContentNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, answered at once when the client asks for no particular format (no format
    suffix or ?format=, and an Accept header that is absent, */* or the first renderer's media type): the
    first renderer (JSON), as DRF would choose. DRF parses and orders the Accept header on every call (0.1
    ms of CPU); browsers, which send text/html first, still get the browsable API through DRF's way."""

    def select_renderer(self, request, renderers, format_suffix=None):
        if format_suffix is None and self.settings.URL_FORMAT_OVERRIDE not in request.query_params:
            accept, first = request.META.get("HTTP_ACCEPT", "*/*"), renderers[0]
            if accept == "*/*" or accept == first.media_type:
                return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
