"""Readable, unique-enough VM hostnames in the original's ``adjective-noun`` style (≤ 15 characters)."""

from __future__ import annotations

import random

ADJECTIVES = (
    "able amber ample azure balmy bold brave brisk calm civic clear comic cosmic crisp cyan dapper deft "
    "eager early easy epic fair fancy fast fine fleet fond frank fresh frosty glad grand green happy "
    "hardy hazel jolly keen kind lucid lunar mellow merry mild misty modal noble novel olive opal plush "
    "polar prime proud quick quiet rapid rare ready regal rosy royal rustic sandy sharp shiny silky smart "
    "snowy solar spicy steady sunny swift tidal tidy topaz urban vast vivid warm wavy wise witty young "
    "zesty"
).split()

NOUNS = (
    "acorn anchor apex arbor aspen atlas badge beacon birch bison blaze brook cairn canyon cedar cobalt "
    "comet coral crane crest delta dune eagle ember falcon fern fjord flint forge fox galaxy garnet "
    "geyser glade granite grove harbor hawk heron island jasper kayak kestrel lagoon lark lotus maple "
    "marble mesa meteor nebula nova oasis orbit otter palm pebble pine pixel prairie proton quartz quasar "
    "raven reef ridge river robin saber sequoia shore sierra spruce summit swan thistle tiger trail "
    "tundra valley vortex walnut willow zenith"
).split()

MAX_LENGTH = 15


def vm_name(prefix: str = "", attempt: int = 0, rng: random.Random | None = None) -> str:
    """A fresh name; the store rejects one already in use, and the caller draws again with
    ``attempt + 1``. After a few taken words (a busy site can use up ~7,000 pairs within data_ttl)
    it switches to random characters."""
    pick = rng or random.SystemRandom()
    room = MAX_LENGTH - len(prefix)
    for _ in range(20 if attempt < 4 else 0):
        name = f"{pick.choice(ADJECTIVES)}-{pick.choice(NOUNS)}"
        if len(name) <= room:
            return f"{prefix}{name}"
    # a long prefix leaves no room for words: fall back to random characters, like vmpooler < 0.8
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return prefix + "".join(pick.choice(alphabet) for _ in range(max(room, 6)))
