"""How a prompt and a completion become token ids: through the stage's prompt_template, or through the
tokenizer's chat template.

One Renderer serves every path that tokenizes by itself (reward model training and scoring, PPO
rollouts and ptx, sampling, SFT checkpoint selection), so the reward model reads exactly the ids the
policy produced. The Trainer-based stages (SFT, DPO) hand TRL the same prompt text or messages and let
TRL tokenize, as TRL's own examples do.

Rules, as TRL 1.16 applies them:
- prompt_template (plain text): the prompt is tokenized with the tokenizer's special tokens (its BOS,
  if it adds one); the completion follows without any.
- chat template: the template writes every special token itself (BOS included), so its text is
  tokenized with add_special_tokens=False: no double BOS.
- A reward model reads prompt ids + completion ids with no end-of-sequence token, which is what a PPO
  rollout has once its stop token is cut off; the score is read at the completion's last token.
- Truncation keeps the BOS, cuts the prompt from the left and never cuts the end of a completion.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from training.ml.errors import ConfigError, DatasetError

if TYPE_CHECKING:
    from typing_extensions import TypeIs

Message = dict[str, Any]
Text = str | list[Message]
CHAT_TEMPLATE_CHOICES = ("auto", "none")


def format_prompt(template: str, prompt: str) -> str:
    return template.replace("{prompt}", prompt)


def is_conversation(value: Any) -> TypeIs[list[Message]]:
    return isinstance(value, list) and bool(value) and isinstance(value[0], dict) and "role" in value[0]


def as_messages(value: Text, role: str) -> list[Message]:
    """A plain string becomes one turn of `role`; a message list stays as it is."""
    return list(value) if is_conversation(value) else [{"role": role, "content": value}]


def completion_content(completion: Text) -> str:
    """The text of a completion: the string itself, or the content of its one assistant message."""
    if not is_conversation(completion):
        return completion
    if len(completion) != 1 or completion[0].get("role") != "assistant":
        raise DatasetError(
            "a completion must be one assistant message on this stage, got "
            + ", ".join(str(m.get("role")) for m in completion)
        )
    return str(completion[0]["content"])


def uses_chat_template(choice: str, tokenizer: Any) -> bool:
    """'auto': the tokenizer's chat template when it has one; 'none': the prompt_template always."""
    if choice not in CHAT_TEMPLATE_CHOICES:
        raise ConfigError(f"chat_template must be auto or none, got {choice!r}")
    return choice == "auto" and bool(getattr(tokenizer, "chat_template", None))


@dataclass
class Renderer:
    tokenizer: Any
    prompt_template: str = "{prompt}\n"
    chat: bool = False

    @classmethod
    def for_tokenizer(cls, tokenizer: Any, prompt_template: str, chat_template: str) -> Renderer:
        return cls(tokenizer, prompt_template, uses_chat_template(chat_template, tokenizer))

    def describe(self) -> str:
        return "the tokenizer's chat template" if self.chat else f"prompt_template {self.prompt_template!r}"

    def same_as(self, other: Renderer) -> bool:
        """True when both turn every (prompt, completion) into the same ids."""
        if self.chat != other.chat or (not self.chat and self.prompt_template != other.prompt_template):
            return False
        if self.chat and self.tokenizer.chat_template != other.tokenizer.chat_template:
            return False
        return self.tokenizer.get_vocab() == other.tokenizer.get_vocab()

    # ---- text -------------------------------------------------------------------------------
    def prompt_text(self, prompt: Text) -> str:
        if self.chat:
            return self.tokenizer.apply_chat_template(
                as_messages(prompt, "user"), tokenize=False, add_generation_prompt=True
            )
        if is_conversation(prompt):
            raise DatasetError(
                "the rows are conversations (lists of messages) but the model's tokenizer has no chat "
                "template (or chat_template is 'none'): use a chat model, or plain-text rows"
            )
        return format_prompt(self.prompt_template, prompt)

    def sequence_text(self, prompt: Text, completion: Text) -> str:
        """A whole training sequence, ended as the model should end it (SFT and PPO-ptx text)."""
        if self.chat:
            return self.tokenizer.apply_chat_template(
                as_messages(prompt, "user") + as_messages(completion, "assistant"), tokenize=False
            )
        return self.prompt_text(prompt) + completion_content(completion) + (self.tokenizer.eos_token or "")

    # ---- ids --------------------------------------------------------------------------------
    def text_ids(self, text: str) -> list[int]:
        """Ids of a rendered text: chat text carries its own special tokens, plain text gets the tokenizer's."""
        return self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"]

    def prompt_ids(self, prompt: Text, max_length: int | None = None) -> list[int]:
        ids = self.text_ids(self.prompt_text(prompt))
        return ids if max_length is None else self.keep_end(ids, max_length)

    def completion_ids(self, completion: Text) -> list[int]:
        return self.tokenizer(completion_content(completion), add_special_tokens=False)["input_ids"]

    def scored_ids(self, prompt: Text, completion: Text, max_length: int) -> list[int]:
        """What a reward model reads: prompt ids then completion ids, no end token, at most max_length
        tokens; the prompt gives way first (from its left, after the BOS), then the completion's start."""
        return self.split_ids(prompt, completion, max_length)[0]

    def split_ids(self, prompt: Text, completion: Text, max_length: int) -> tuple[list[int], int]:
        """scored_ids, and where its completion starts."""
        head, tail = self.prompt_ids(prompt), self.completion_ids(completion)
        if len(head) + len(tail) <= max_length:
            return head + tail, len(head)
        bos = self._bos(head)
        room = max_length - len(bos) - len(tail)  # what is left for the prompt after its BOS
        if room > 0:
            return bos + head[len(bos) :][-room:] + tail, len(bos) + room
        return bos + tail[-(max_length - len(bos)) :], len(bos)  # the completion alone fills it: keep its end

    def keep_end(self, ids: list[int], max_length: int) -> list[int]:
        """The last tokens of a sequence, its BOS kept in front."""
        if len(ids) <= max_length:
            return ids
        bos = self._bos(ids)
        return bos + ids[len(ids) - (max_length - len(bos)) :]

    def _bos(self, ids: list[int]) -> list[int]:
        bos = self.tokenizer.bos_token_id
        return [bos] if bos is not None and ids and ids[0] == bos else []


def stop_token_ids(tokenizer: Any, generation_config: Any = None) -> list[int]:
    """Every token that ends a response: the tokenizer's eos and the model's generation_config eos ids
    (chat models list their end-of-turn token there, e.g. Llama 3's <|eot_id|>)."""
    ids: list[int] = []
    configured = getattr(generation_config, "eos_token_id", None) if generation_config is not None else None
    for value in [tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])]:
        if isinstance(value, int) and value not in ids:
            ids.append(value)
    if not ids:
        raise ConfigError(
            "the model has no end-of-sequence token: neither its tokenizer nor its generation_config"
        )
    return ids
