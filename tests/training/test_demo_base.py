"""Without BASE_MODEL the first round starts from the local demo's base model: whole words of the demo's
texts, briefly pre-trained on them, so the round's new batch shows readable text."""

import re

import pytest
from transformers import AutoTokenizer

from labeling.demo import demo_texts
from training.services.registry import base_model_get_or_create

pytestmark = pytest.mark.django_db


def test_without_base_model_the_demo_model_is_built_from_the_demo_texts(settings, tmp_path):
    settings.BASE_MODEL = ""
    settings.MEDIA_ROOT = str(tmp_path)
    base = base_model_get_or_create()

    tokenizer = AutoTokenizer.from_pretrained(base.checkpoint)
    words = set(re.findall(r"\w+", " ".join(demo_texts())))
    vocabulary = {tokenizer.decode([i]).strip() for i in range(len(tokenizer))} - {""}
    assert {w for w in vocabulary if re.fullmatch(r"\w+", w)} <= words  # whole words, never byte pieces
    assert {"Sunlight", "lighthouse", "council"} <= vocabulary
    assert base_model_get_or_create() == base  # built once
