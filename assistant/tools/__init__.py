"""Built-in agent tools, each a LangChain tool (any other LangChain tool works beside them)."""

from assistant.tools.calculator import calculator, evaluate, make_calculator_tool
from assistant.tools.clock import make_clock_tool
from assistant.tools.files import make_read_file_tool
from assistant.tools.retrieval import make_doc_search_tool, make_memory_recall_tool
from assistant.tools.web_search import WebSearcher, make_web_search_tool

__all__ = [
    "WebSearcher",
    "calculator",
    "evaluate",
    "make_calculator_tool",
    "make_clock_tool",
    "make_doc_search_tool",
    "make_memory_recall_tool",
    "make_read_file_tool",
    "make_web_search_tool",
]
