"""A tiny MCP server for the tests, built with the mcp SDK's FastMCP.

``python tests/mcp_server_words.py`` serves over stdio; ``--http PORT`` serves streamable
HTTP on 127.0.0.1:PORT (path ``/mcp``). Tools: ``word_count``, ``reverse`` and ``wait``.
"""

from __future__ import annotations

import sys
import time

from mcp.server.fastmcp import FastMCP


def build(port: int = 8000) -> FastMCP:
    """The server and its tools."""
    server = FastMCP("words", host="127.0.0.1", port=port, log_level="WARNING")

    @server.tool()
    def word_count(text: str) -> int:
        """Count the words in a text."""
        return len(text.split())

    @server.tool()
    def reverse(text: str) -> str:
        """Reverse a text, character by character."""
        return text[::-1]

    @server.tool()
    def wait(seconds: float) -> str:
        """Sleep for some seconds, then say so (for timeout tests)."""
        time.sleep(seconds)
        return f"waited {seconds} s"

    return server


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        build(int(sys.argv[2])).run(transport="streamable-http")
    else:
        build().run(transport="stdio")
