"""Edit a piece of text in a modal (titles, system prompts); dismisses with it or None."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Label, TextArea


class EditTextScreen(ModalScreen[str | None]):
    """A labelled text box; Ctrl+S saves, Esc cancels."""

    DEFAULT_CSS = """
    EditTextScreen { align: center middle; }
    EditTextScreen > Vertical {
        width: 80; height: auto; padding: 1 2; border: thick $accent; background: $surface;
    }
    EditTextScreen TextArea { height: 8; }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, text: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(f"{self.title_text}  (Ctrl+S saves, Esc cancels)")
            yield TextArea(self.text, id="edit", soft_wrap=True)

    def on_mount(self) -> None:
        self.query_one("#edit", TextArea).focus()

    def action_save(self) -> None:
        """Dismiss with the edited text."""
        self.dismiss(self.query_one("#edit", TextArea).text.strip())

    def action_cancel(self) -> None:
        """Dismiss without a change."""
        self.dismiss(None)
