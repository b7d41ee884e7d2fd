"""Eight candidate prompts of the kinds an OPRO search produces, shared by the prompt benchmarks.

Six ask the question after the clip (their decoder work up to the question is shared), two
before it, and three have answers of several tokens with the lab's tokenizer (scored by their
log-likelihood).
"""

from core.detectors.llm.prompt import DEFAULT_PROMPT, QUESTION_FIRST_PROMPT, Prompt

CANDIDATES = [
    Prompt(DEFAULT_PROMPT),
    Prompt("Based on the audio file, is it SPEECH or NON-SPEECH?", "SPEECH", "NON-SPEECH"),
    Prompt("Is there speech in this clip? Answer A for yes or B for no.", "A", "B"),
    Prompt("Does this recording contain a human voice?", "Yes", "No"),
    Prompt("Listen to the clip: is anyone speaking?\nA. Yes\nB. No\nAnswer with the letter A or B.", "A", "B"),
    Prompt(QUESTION_FIRST_PROMPT),
    Prompt("Is this speech?\n<audio>", "yes", "no"),
    Prompt("Can you hear spoken words in this audio?", "speech", "non-speech"),
]

# The same kinds of question, each with the clip first: one shared text before the clip.
CLIP_FIRST = [p for p in CANDIDATES if "<audio>" not in p.text] + [
    Prompt("Is this speech? Answer yes or no.", "yes", "no"),
    Prompt("Is someone talking in this recording? Answer A for yes or B for no.", "A", "B"),
]
