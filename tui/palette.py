"""The slash commands in Textual's command palette, each with its help text."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.commands import COMMANDS, SlashCommand

if TYPE_CHECKING:
    from tui.app import ChatApp


class SlashCommandProvider(Provider):
    """Offers every slash command; one that needs an argument is put in the prompt."""

    def _run(self, command: SlashCommand) -> None:
        app: ChatApp = self.app  # type: ignore[assignment]
        app.palette_command(command)

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
