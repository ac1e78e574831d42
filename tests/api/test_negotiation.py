"""The content negotiation's shortcut answers as DRF's negotiation does."""

import pytest
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from core.api.negotiation import ContentNegotiation

RENDERERS = [JSONRenderer(), BrowsableAPIRenderer()]


@pytest.mark.parametrize(
    "accept, query",
    [
        (None, ""),
        ("*/*", ""),
        ("application/json", ""),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", ""),
        ("*/*", "format=api"),
        ("application/json; indent=4", ""),
    ],
)
def test_the_shortcut_chooses_what_drf_chooses(accept, query):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get(f"/api/v1/tasks/?{query}", **headers))
    ours = ContentNegotiation().select_renderer(request, RENDERERS)
    drf = DefaultContentNegotiation().select_renderer(request, RENDERERS)
    assert (type(ours[0]), ours[1]) == (type(drf[0]), drf[1])


def test_a_browser_gets_the_browsable_api():
    request = Request(APIRequestFactory().get("/api/v1/tasks/", HTTP_ACCEPT="text/html"))
    assert isinstance(ContentNegotiation().select_renderer(request, RENDERERS)[0], BrowsableAPIRenderer)
