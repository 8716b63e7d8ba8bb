"""The chat screen's widgets, handed to the parts that show things in them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.widgets.context_bar import ContextBar
    from tui.widgets.conversation_list import ConversationList
    from tui.widgets.prompt_input import PromptInput
    from tui.widgets.sources_panel import SourcesPanel
    from tui.widgets.status_bar import StatusBar
    from tui.widgets.transcript import Transcript


@dataclass(frozen=True)
class ChatWidgets:
    """The widgets of one chat screen (made once, in its ``compose``)."""

    transcript: Transcript
    prompt: PromptInput
    status: StatusBar
    context: ContextBar
    sources: SourcesPanel
    sidebar: ConversationList
