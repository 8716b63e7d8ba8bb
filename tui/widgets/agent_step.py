"""One agent step under a reply: a collapsible block with the tool, its input and result."""

from __future__ import annotations

from textual.widgets import Collapsible, Static


class AgentStepView(Collapsible):
    """Thought, Action (tool and input) and Observation of one ReAct step."""

    DEFAULT_CSS = """
    AgentStepView { margin: 0 1 0 3; }
    AgentStepView.error CollapsibleTitle { color: $error; }
    """

    def __init__(self, index: int, tool: str, tool_input: str, thought: str = "") -> None:
        self.index = index
        self.tool = tool
        self.tool_input = tool_input
        self.thought = thought
        self.observation: str | None = None
        self.body = Static(self._body_text(), markup=False)
        super().__init__(self.body, title=self._heading(), collapsed=True)

    def _heading(self) -> str:
        return f"step {self.index}: {self.tool}({self.tool_input})"

    def _body_text(self) -> str:
        lines = []
        if self.thought:
            lines.append(f"Thought: {self.thought}")
        lines.append(f"Action: {self.tool}")
        lines.append(f"Action Input: {self.tool_input}")
        if self.observation is not None:
            lines.append(f"Observation: {self.observation}")
        return "\n".join(lines)

    def observe(self, text: str, error: bool = False) -> None:
        """Show what the tool returned."""
        self.observation = text
        self.set_class(error, "error")
        self.body.update(self._body_text())
