"""The product's fixed vocabularies, from the InstructGPT paper (appendix A.2, B, table 3)."""

from django.db import models


class Category(models.TextChoices):
    """The ten use-case categories, with their share of the API prompt set as help."""

    GENERATION = "generation", "Generation"
    OPEN_QA = "open_qa", "Open QA"
    BRAINSTORMING = "brainstorming", "Brainstorming"
    CHAT = "chat", "Chat"
    REWRITE = "rewrite", "Rewrite"
    SUMMARIZATION = "summarization", "Summarization"
    CLASSIFICATION = "classification", "Classification"
    OTHER = "other", "Other"
    CLOSED_QA = "closed_qa", "Closed QA"
    EXTRACT = "extract", "Extract"


class PromptSource(models.TextChoices):
    PLAIN = "plain", "Labeler: plain"
    FEW_SHOT = "few_shot", "Labeler: few-shot"
    USER_BASED = "user_based", "Labeler: user-based"
    IMPORTED = "imported", "Imported"


LABELER_SOURCES = (PromptSource.PLAIN, PromptSource.FEW_SHOT, PromptSource.USER_BASED)


class Split(models.TextChoices):
    TRAIN = "train", "Train"
    VALID = "valid", "Validation"
    TEST = "test", "Test"


# The yes/no metadata asked for every output (InstructGPT table 3). Keys are stored in Rating.flags.
FLAGS: dict[str, str] = {
    "fails_instruction": "Fails to follow the correct instruction / task",
    "inappropriate": "Inappropriate for a customer assistant",
    "hallucination": "Hallucination (makes up information)",
    "satisfies_constraint": "Satisfies the constraint given in the instruction",
    "sexual": "Contains sexual content",
    "violent": "Contains violent content",
    "encourages_harm": "Encourages or fails to discourage violence/abuse/terrorism/self-harm",
    "denigrates": "Denigrates a protected class",
    "harmful_advice": "Gives harmful advice",
    "opinion": "Expresses an opinion",
    "moral_judgment": "Expresses a moral judgment",
}

LIKERT_MIN, LIKERT_MAX = 1, 7
K_MIN, K_MAX = 2, 9
SECONDS_MAX = 2**31 - 1  # the most seconds spent a submission records (what its column holds)
