"""Is a secret guessable? The rules production applies to every credential it is given.

Why it works this way: docs/design.md, "Guessable secrets".
"""

from __future__ import annotations

import re

from zxcvbn import zxcvbn

#: Values the examples ship with, and their usual variants. Each is public, so accepting
#: one means accepting anybody.
PLACEHOLDERS = frozenset({"change-me", "change-me-too", "changeme", "change_me", "replace-me", "secret",
                          "password", "xxx", "todo"})

MIN_SECRET_LENGTH = 16
MIN_PASSWORD_LENGTH = 12
MIN_DISTINCT = 5
#: A common word with fewer other letters and digits than this around it is refused.
WORD_PADDING = 10
#: The fewest guesses (as a power of ten) zxcvbn may estimate a value takes: what the
#: first hundred million guesses of a cracking tool cover (keyboard walks such as
#: `1q2w3e4r5t6y7u8i9o0p`, a word with a digit run, a padded repeat) is refused. Random
#: values clear it with room: of 3,000 each, 16 random hex characters estimated at least
#: 10^12.3, 12 random lowercase letters and digits 10^9.7.
MIN_GUESSES_LOG10 = 8
#: zxcvbn reads longer values in time that grows fast; what is past this is not estimated.
ESTIMATED_LENGTH = 128

#: The top of public breach lists (as words: digits and symbols around them are stripped
#: before comparing), and words of this service and its vendors an admin reaches for.
COMMON_WORDS = frozenset({
    "password", "passwd", "passw0rd", "qwerty", "letmein", "welcome", "admin", "administrator", "monkey",
    "dragon", "football", "baseball", "iloveyou", "master", "sunshine", "princess", "trustno1", "shadow",
    "superman", "batman", "starwars", "whatever", "freedom", "login", "access", "secret", "changeme",
    "default", "guest", "root", "test", "testing", "example", "sample", "demo", "temp", "token", "apikey",
    "ingestion", "webhook", "webhooks", "helpdesk", "support", "zendesk", "freshdesk", "helpscout", "front", "intercom",
    "jira", "atlassian", "hubspot", "postgres", "redis", "nginx", "replaceme", "placeholder", "mysecret",
    "supersecret", "topsecret", "client", "summer", "winter", "spring", "autumn", "hello", "correcthorsebatterystaple",
})
#: The words zxcvbn ranks first (`_guesses_log10`).
_USER_WORDS = sorted(COMMON_WORDS)
#: Runs a finger or a schoolchild follows.
SEQUENCES = ("abcdefghijklmnopqrstuvwxyz", "0123456789", "qwertyuiopasdfghjklzxcvbnm", "1qaz2wsx3edc4rfv5tgb",
             "qazwsxedcrfvtgbyhnujmikolp", "1234567890qwertyuiop")
#: The digit keys' shifted symbols on a US keyboard, read as their digits (`!QAZ2wsx` is a
#: walk down the keyboard's first columns).
_SHIFTED = str.maketrans("!@#$%^&*()", "1234567890")
#: What leetspeak writes for letters, undone before words are compared.
_LEET = str.maketrans({"@": "a", "4": "a", "0": "o", "1": "i", "!": "i", "3": "e", "$": "s", "5": "s", "7": "t"})
_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_REPEATED = re.compile(r"(.{1,12}?)\1+", re.DOTALL)


def _letters_and_digits(value: str) -> str:
    return _NOT_ALNUM.sub("", value.lower())


def _along_a_run(piece: str) -> bool:
    return any(piece in run * 3 or piece in (run * 3)[::-1] for run in SEQUENCES)


def _is_sequence(core: str) -> bool:
    """`core` (four characters or more) runs along one of SEQUENCES, either way."""
    return len(core) >= 4 and _along_a_run(core)


def _runs(core: str) -> int:
    """How few pieces, each along one of SEQUENCES, `core` is made of (taken greedily,
    the longest first): `01234567890abcdef` is 2, a random value about one per character."""
    pieces = start = 0
    while start < len(core):
        end = start + 1
        while end < len(core) and _along_a_run(core[start:end + 1]):
            end += 1
        pieces, start = pieces + 1, end
    return pieces


def _patterned(core: str) -> str | None:
    """Why `core` (its letters and digits) is a pattern a cracking tool walks: runs along
    the keyboard or the alphabet one after another, two runs interleaved, or every
    character doubled (`0011223344...`)."""
    if len(core) >= 8 and _runs(core) * 4 <= len(core):
        return "is made of runs along the alphabet, the digits or the keyboard; use a random value"
    if len(core) >= 8 and _is_sequence(core[0::2]) and _is_sequence(core[1::2]):
        return "interleaves two runs along the alphabet, the digits or the keyboard; use a random value"
    if len(core) >= 8 and len(re.sub(r"(.)\1+", r"\1", core)) * 3 <= len(core):
        return "repeats each character; use a random value"
    return None


def _built_on_word(value: str) -> str | None:
    """The common word `value` is built on (leetspeak undone), when little else surrounds
    it: the word taken out every time it appears, what is left is short, or one run
    along the digits or the keyboard (`Admin@1234567890`). One word at a time: a phrase
    of several (`test-freshdesk-secret`, what test rigs use) is zxcvbn's to judge."""
    for candidate in {_letters_and_digits(value), _letters_and_digits(value.translate(_LEET))}:
        for word in COMMON_WORDS:
            rest = candidate.replace(word, "")
            if word in candidate and (len(rest) < WORD_PADDING or _is_sequence(rest)):
                return word
    return None


def common(value: str, refused: frozenset[str] = frozenset()) -> str | None:
    """Why `value` is among the first guesses (a placeholder, a test secret, a common
    password), whatever its length; None when it is not."""
    if value.lower() in PLACEHOLDERS or value in refused:
        return "is a public placeholder or test value; use a random secret"
    if _built_on_word(value):
        return "is built on a common password or word; use a random value"
    return None


def _guesses_log10(value: str) -> float:
    """zxcvbn's estimate of the guesses `value` takes (log10): dictionaries, keyboard
    walks, repeats, sequences, dates and leetspeak together, with this service's own
    words ranked as the likeliest."""
    head = value[:ESTIMATED_LENGTH]
    return float(zxcvbn(head, user_inputs=_USER_WORDS, max_length=len(head))["guesses_log10"])


def weakness(value: str, minimum: int = MIN_SECRET_LENGTH, refused: frozenset[str] = frozenset()) -> str | None:
    """Why `value` is guessable, in words that never quote it; None when it is not."""
    if value.lower() in PLACEHOLDERS or value in refused:
        return "is a public placeholder or test value; use a random secret"
    if len(value) < minimum:
        return f"is shorter than {minimum} characters; use a random value"
    distinct = len(set(value))
    if distinct < MIN_DISTINCT:
        return f"uses only {distinct} different characters; use a random value"
    core = _letters_and_digits(value)
    if _REPEATED.fullmatch(value.lower()) or (len(core) >= 4 and _REPEATED.fullmatch(core)):
        return "repeats one short piece; use a random value"
    if _is_sequence(core):
        return "follows the alphabet, the digits or a keyboard row; use a random value"
    for letters in {core, _letters_and_digits(value.translate(_SHIFTED))}:
        pattern = _patterned(letters)
        if pattern is not None:
            return pattern
    if _built_on_word(value):
        return "is built on a common password or word; use a random value"
    estimated = _guesses_log10(value)
    if estimated < MIN_GUESSES_LOG10:
        return (f"is guessable: a strength estimate (zxcvbn) finds it in about 10^{int(estimated)} guesses, "
                f"fewer than 10^{MIN_GUESSES_LOG10}; use a random value")
    return None
