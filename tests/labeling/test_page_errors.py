"""What a page says when it refuses: a form error names the field in words, a 403 page says why."""

import pytest
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.urls import reverse

from labeling.models import Batch

pytestmark = pytest.mark.django_db


def test_a_prompt_writing_batch_without_a_count_names_the_field_in_words(client, batch_admin):
    client.force_login(batch_admin)
    response = client.post(
        reverse("manage:batch_new"),
        {"name": "w", "kind": "prompt_writing", "status": "active", "overlap": 1, "lease_minutes": 30},
    )
    html = response.content.decode()
    assert response.status_code == 200 and not Batch.objects.filter(name="w").exists()
    assert "“Number of prompts to write” must be a whole number" in html and "'task_count'" not in html


def test_the_403_page_shows_why_the_page_is_refused(client, labeler):
    client.force_login(labeler)
    response = client.get(reverse("manage:batch_new"))
    assert response.status_code == 403
    html = response.content.decode()
    assert "Only batch admins can do this." in html and 'class="topbar"' in html


def test_the_403_page_escapes_the_reason(labeler):
    request = RequestFactory().get("/")
    request.user = labeler
    html = render_to_string("403.html", {"exception": "<script>alert(1)</script>"}, request=request)
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
