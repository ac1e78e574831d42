"""The imports page: batch admins only; a bad file shows every error with its line and field."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from labeling.models import Batch, Prompt

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("who, status", [("labeler", 403), ("researcher", 403), ("batch_admin", 200)])
def test_only_batch_admins_import(client, request, who, status):
    client.force_login(request.getfixturevalue(who))
    assert client.get(reverse("manage:imports")).status_code == status


def test_import_prompts_and_make_a_demonstration_batch(client, batch_admin, labeler):
    client.force_login(batch_admin)
    data = b"text,category,origin_user\nWhat is a fjord?,open_qa,u1\nWrite a riddle,generation,u2\n"
    response = client.post(
        reverse("manage:imports"),
        {
            "which": "prompts",
            "prompts-file": SimpleUploadedFile("new.csv", data),
            "prompts-pii": "flag",
            "prompts-batch_name": "fjords",
            "prompts-overlap": 1,
            "prompts-labelers": [labeler.pk],
        },
    )
    batch = Batch.objects.get(name="fjords")
    assert response.status_code == 302 and response["Location"] == reverse("manage:batch", args=[batch.pk])
    assert Prompt.objects.count() == 2 and batch.tasks.count() == 2


def test_a_bad_file_lists_its_errors_and_imports_nothing(client, batch_admin):
    client.force_login(batch_admin)
    data = b'{"text": "ok", "category": "chat"}\n{"text": "<i>x</i>", "category": "nope"}\n'
    response = client.post(
        reverse("manage:imports"),
        {
            "which": "prompts",
            "prompts-file": SimpleUploadedFile("bad.jsonl", data),
            "prompts-pii": "flag",
            "prompts-overlap": 1,
        },
    )
    html = response.content.decode()
    assert response.status_code == 400 and "nothing was imported" in html
    assert "<td>2</td><td>category</td>" in html and "unknown category &#x27;nope&#x27;" in html
    assert Prompt.objects.count() == 0


def test_import_completions_into_a_ranking_batch(client, batch_admin):
    client.force_login(batch_admin)
    data = b'{"prompt": "Pick a fruit", "completions": ["apple", "pear"], "model": "m1"}\n'
    response = client.post(
        reverse("manage:imports"),
        {
            "which": "completions",
            "completions-file": SimpleUploadedFile("c.jsonl", data),
            "completions-batch_name": "fruit",
            "completions-kind": "ranking",
            "completions-overlap": 3,
            "completions-pii": "flag",
        },
    )
    batch = Batch.objects.get(name="fruit")
    assert response.status_code == 302 and batch.overlap == 3 and batch.tasks.get().k == 2
