"""Prompt hygiene (InstructGPT section 3.2): dedup by long common prefix, a cap per origin user,
train/valid/test split by origin user, PII flagged."""

import hashlib
import re
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import transaction

from core.errors import ServiceError

from ..models import Prompt
from ..pii import find_pii
from ..vocab import Category, PromptSource, Split

if TYPE_CHECKING:
    from django.contrib.auth.models import User

PROMPT_MAX_CHARS = 20_000  # the writing page's text box takes as many (labeling.forms.PromptForm)


class DuplicatePrompt(ServiceError):
    """A prompt with the same opening text exists. The message names neither its id nor its text: whoever
    can type an opening may learn that such a prompt exists, not which one it is or how it goes on.
    `existing` is that prompt, for code that decides what a user may see of it; no page or API shows it."""

    def __init__(self, existing: Prompt) -> None:
        super().__init__(
            "a similar prompt already exists (same opening text); write a different one.",
            field="text",
            code="duplicate",
        )
        self.existing = existing


def dedup_key(text: str, prefix_chars: int | None = None) -> str:
    """Prompts that share their first `prefix_chars` characters (case and spacing ignored) collide."""
    n = prefix_chars or settings.PROMPT_DEDUP_PREFIX_CHARS
    normalised = re.sub(r"\s+", " ", text).strip().lower()[:n]
    return hashlib.sha256(normalised.encode()).hexdigest()


def split_for(origin_user: str) -> str:
    """Deterministic split from a hash of the origin user, so no user is in two splits."""
    weights = settings.SPLIT_WEIGHTS
    bucket = int(hashlib.sha256(f"split:{origin_user}".encode()).hexdigest()[:8], 16) % sum(weights.values())
    for split in (Split.TRAIN, Split.VALID, Split.TEST):
        if bucket < weights[split]:
            return split
        bucket -= weights[split]
    return Split.TRAIN


def prompt_create(
    *,
    text: str,
    category: str,
    source: str,
    origin_user: str,
    author: "User | None" = None,
    metadata: dict | None = None,
) -> Prompt:
    """Store a new prompt or raise DuplicatePrompt / ServiceError naming the field at fault."""
    text = (text or "").strip()
    if not text:
        raise ServiceError("the prompt text is empty.", field="text")
    if len(text) > PROMPT_MAX_CHARS:
        raise ServiceError(
            f"the prompt must be at most {PROMPT_MAX_CHARS:,} characters, got {len(text):,}.", field="text"
        )
    if category not in Category.values:
        raise ServiceError(
            f"unknown category '{category}'; choose one of: {', '.join(Category.values)}.", field="category"
        )
    if source not in PromptSource.values:
        raise ServiceError(
            f"unknown source '{source}'; choose one of: {', '.join(PromptSource.values)}.", field="source"
        )
    if not origin_user:
        raise ServiceError("origin user is required (it decides the split).", field="origin_user")
    key = dedup_key(text)
    with transaction.atomic():
        existing = Prompt.objects.filter(dedup_key=key).first()
        if existing is not None:
            raise DuplicatePrompt(existing)
        cap = settings.PROMPTS_PER_ORIGIN_USER
        if Prompt.objects.filter(origin_user=origin_user).count() >= cap:
            raise ServiceError(
                f"origin user '{origin_user}' already has {cap} prompts (the cap).", field="origin_user"
            )
        return Prompt.objects.create(
            text=text,
            category=category,
            source=source,
            origin_user=origin_user,
            author=author,
            split=split_for(origin_user),
            dedup_key=key,
            pii_flag=bool(find_pii(text)),
            metadata=metadata or {},
        )
