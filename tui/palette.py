"""The slash commands in Textual's command palette, each with its help text."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.message import Message

from tui.commands import COMMANDS, SlashCommand


@dataclass
class SlashPicked(Message):
    """A slash command was picked in the palette (posted to the screen it was opened on)."""

    command: SlashCommand


class SlashCommandProvider(Provider):
    """Offers every slash command; the screen runs it, or puts one needing an argument in
    the prompt."""

    def _run(self, command: SlashCommand) -> None:
        self.screen.post_message(SlashPicked(command))

    async def discover(self) -> Hits:
        for command in COMMANDS:
            yield DiscoveryHit(command.usage, partial(self._run, command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in COMMANDS:
            score = matcher.match(command.usage)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.usage),
                    partial(self._run, command),
                    help=command.help,
                )
