"""MCP servers as agent tools, against real server processes started by the tests.

``tests/mcp_server_words.py`` (the mcp SDK's FastMCP) serves ``word_count``, ``reverse`` and
``wait`` over stdio, or over streamable HTTP on loopback. The tests pin what the tools return,
that an untrusted server's tools ask first, and that a server that fails or hangs is one
clear error while the other tools work; never the model's words.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from assistant.agent import ReActAgent
from assistant.agent.events import Observed, ToolCalled
from assistant.agent.native import make_agent
from assistant.backends.llama_local import LlamaCppBackend, SamplingDefaults
from assistant.backends.scripted import ScriptedBackend
from assistant.cli import cli
from assistant.config import McpServerConfig, load_config
from assistant.errors import ConfigError
from assistant.services import Services
from assistant.tools.calculator import make_calculator_tool
from assistant.tools.clock import make_clock_tool
from assistant.tools.mcp import McpError, McpToolset, tool_info
from tests.conftest import TEST_THREADS
from tests.zoo import build_zoo
from tui.tool_commands import ToolCommands, tools_markdown

SERVER = str(Path(__file__).parent / "mcp_server_words.py")


def words(name: str = "words", **changes: Any) -> McpServerConfig:
    """The stdio test server's configuration."""
    return McpServerConfig(name, command=sys.executable, args=(SERVER,), **changes)


@pytest.fixture(scope="module")
def stdio_tools() -> Iterator[McpToolset]:
    toolset = McpToolset.start([words()])
    yield toolset
    toolset.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, SERVER, "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise AssertionError("the HTTP MCP server did not start")
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


# -- configuration ----------------------------------------------------------------------


def test_mcp_servers_are_read_from_config_toml(home: Path) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(
        'model = "smollm2-135m"\n'
        "[mcp_servers.files]\n"
        'command = "npx"\nargs = ["-y", "server-files", "/tmp"]\nenv = {TOKEN = "x"}\n'
        "[mcp_servers.remote]\n"
        'url = "http://127.0.0.1:9000/mcp"\ntrusted = true\ntimeout_s = 5\n'
    )
    files, remote = load_config().mcp_servers
    assert files == McpServerConfig(
        "files", command="npx", args=("-y", "server-files", "/tmp"), env=(("TOKEN", "x"),)
    )
    assert remote == McpServerConfig(
        "remote", url="http://127.0.0.1:9000/mcp", trusted=True, timeout_s=5.0
    )


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ('command = "a"\nurl = "http://x"', "either command"),
        ("trusted = true", "either command"),
        ('command = "a"\nargs = "b"', "args in \\[mcp_servers.bad\\]"),
        ('command = "a"\nport = 3', "unknown key 'port'"),
        ('command = "a"\ntimeout_s = 0', "timeout_s"),
        ('command = "a"\ncall_timeout_s = "1"', "call_timeout_s"),
        ('command = "a"\ntrusted = "yes"', "trusted"),
    ],
)
def test_bad_mcp_server_tables_are_one_clear_error(home: Path, table: str, message: str) -> None:
    home.mkdir(parents=True)
    (home / "config.toml").write_text(f"[mcp_servers.bad]\n{table}\n")
    with pytest.raises(ConfigError, match=message):
        load_config()


# -- real servers -----------------------------------------------------------------------


@pytest.mark.slow
def test_stdio_server_tools_run_and_are_risky(stdio_tools: McpToolset) -> None:
    by_name = {t.name: t for t in stdio_tools.tools}
    assert set(by_name) == {"word_count", "reverse", "wait"} and not stdio_tools.errors
    assert by_name["word_count"].invoke({"text": "the quick brown fox"}) == "4"
    assert by_name["reverse"].invoke({"text": "abc"}) == "cba"
    info = tool_info(by_name["reverse"])
    assert (info.source, info.risky) == ("mcp:words", True)
    assert info.description == "Reverse a text, character by character."


@pytest.mark.slow
def test_http_server_tools_run(http_url: str) -> None:
    toolset = McpToolset.start([McpServerConfig("web", url=http_url, trusted=True)])
    try:
        reverse = {t.name: t for t in toolset.tools}["reverse"]
        assert reverse.invoke({"text": "loopback"}) == "kcabpool"
        assert tool_info(reverse) == tool_info(reverse).__class__(
            "reverse", "mcp:web", False, "Reverse a text, character by character."
        )
    finally:
        toolset.close()


@pytest.mark.slow
def test_failing_and_hanging_servers_are_clear_errors_and_the_others_work(tmp_path: Path) -> None:
    hang = McpServerConfig(
        "hang", command=sys.executable, args=("-c", "import time; time.sleep(60)"), timeout_s=2
    )
    started = time.monotonic()
    toolset = McpToolset.start(
        [McpServerConfig("gone", command="/nonexistent/mcp-server"), hang, words()],
        taken=["reverse"],
        log_dir=tmp_path,
    )
    try:
        gone, hung = toolset.errors
        assert gone.startswith("MCP server 'gone' (/nonexistent/mcp-server) failed to start:")
        assert "FileNotFoundError" in gone
        assert hung.startswith("MCP server 'hang' (") and "did not answer within 2 s" in hung
        assert time.monotonic() - started < 30
        # The working server's tools are there; one clashing with a built-in is renamed.
        names = {t.name for t in toolset.tools}
        assert names == {"word_count", "words_reverse", "wait"}
    finally:
        toolset.close()


@pytest.mark.slow
def test_a_call_that_times_out_is_an_error() -> None:
    toolset = McpToolset.start([words("slow", call_timeout_s=1.5)])
    try:
        wait = {t.name: t for t in toolset.tools}["wait"]
        with pytest.raises(McpError, match=r"did not answer wait within 1\.5 s"):
            wait.invoke({"seconds": 5})
    finally:
        toolset.close()


# -- through the agent ------------------------------------------------------------------


@pytest.mark.slow
def test_react_agent_calls_an_mcp_tool_after_approval(
    smol: LlamaCppBackend, stdio_tools: McpToolset
) -> None:
    asked: list[tuple[str, str]] = []

    def approve(tool: str, tool_input: str) -> bool:
        asked.append((tool, tool_input))
        return True

    tools = [make_calculator_tool(), make_clock_tool(), *stdio_tools.tools]
    agent = make_agent(smol, tools, approve=approve, max_steps=1, max_tokens=48)
    assert isinstance(agent, ReActAgent)
    events = list(
        agent.run("How many words are in 'the quick brown fox'?", tool_choice="word_count")
    )
    called = next(e for e in events if isinstance(e, ToolCalled))
    observed = next(e for e in events if isinstance(e, Observed))
    assert called.tool == "word_count" and asked == [("word_count", called.tool_input)]
    # The observation is the server's own count of the words the model passed.
    assert observed.text == str(len(called.tool_input.split())) and not observed.error


@pytest.mark.slow
def test_untrusted_mcp_tool_refused_does_not_run(stdio_tools: McpToolset) -> None:
    backend = ScriptedBackend(["Action: reverse\nAction Input: abc", "Final Answer: no"])
    agent = ReActAgent(backend, stdio_tools.tools, approve=lambda t, i: False, route=False)
    result = agent.ask("Reverse abc")
    assert result.steps[0].observation == "the user did not allow running reverse"
    assert "cba" not in json.dumps(result.as_dict())


@pytest.mark.slow
def test_trusted_mcp_tool_runs_without_asking(http_url: str) -> None:
    toolset = McpToolset.start([McpServerConfig("web", url=http_url, trusted=True)])
    try:
        backend = ScriptedBackend(["Action: reverse\nAction Input: abc", "Final Answer: cba"])

        def never(tool: str, tool_input: str) -> bool:
            raise AssertionError("a trusted server's tool asked for approval")

        result = ReActAgent(backend, toolset.tools, approve=never, route=False).ask("?")
        assert result.steps[0].observation == "cba"
    finally:
        toolset.close()


@pytest.mark.slow
def test_native_agent_calls_an_mcp_tool_by_its_schema(
    tmp_path: Path, stdio_tools: McpToolset
) -> None:
    qwen = build_zoo(tmp_path, families=("qwen2",))["qwen2"]
    backend = LlamaCppBackend(
        qwen.path, n_ctx=2048, n_threads=TEST_THREADS, defaults=SamplingDefaults(temperature=0)
    )
    try:
        agent = make_agent(
            backend, stdio_tools.tools, approve=lambda t, i: True, max_steps=1, max_tokens=120
        )
        events = list(agent.run("Count the words in 'a b c'", tool_choice="word_count"))
        called = next(e for e in events if isinstance(e, ToolCalled))
        observed = next(e for e in events if isinstance(e, Observed))
        arguments = json.loads(called.tool_input)
        assert called.tool == "word_count" and set(arguments) == {"text"}
        assert observed.text == str(len(arguments["text"].split()))
    finally:
        backend.close()


# -- listing: services, CLI and /tools --------------------------------------------------


def _write_config(home: Path) -> None:
    home.mkdir(parents=True, exist_ok=True)
    (home / "config.toml").write_text(
        f"[mcp_servers.words]\ncommand = {json.dumps(sys.executable)}\n"
        f"args = [{json.dumps(SERVER)}]\n"
        '[mcp_servers.broken]\ncommand = "/nonexistent/mcp-server"\n'
    )


@pytest.mark.slow
def test_services_give_the_agent_the_mcp_tools(home: Path) -> None:
    _write_config(home)
    services = Services(load_config(), backend=ScriptedBackend())
    try:
        names = [t.name for t in services.tools(with_memory=False)]
        assert names[:2] == ["calculator", "clock"]
        assert set(names[2:]) == {"word_count", "reverse", "wait"}
        assert len(services.mcp().errors) == 1 and "'broken'" in services.mcp().errors[0]
        again = [t.name for t in services.tools(with_memory=False)]
        assert again == names  # the servers were started once
    finally:
        services.mcp().close()


@pytest.mark.slow
def test_cli_tools_list_shows_source_and_approval(home: Path) -> None:
    _write_config(home)
    result = CliRunner().invoke(cli, ["tools", "list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    rows = {row["name"]: (row["source"], row["approval"]) for row in listed["tools"]}
    assert rows["calculator"] == ("built-in", "safe")
    assert rows["word_count"] == ("mcp:words", "risky, asks first")
    assert len(listed["errors"]) == 1 and "failed to start" in listed["errors"][0]
    plain = CliRunner().invoke(cli, ["tools", "list"])
    assert plain.exit_code == 0
    assert any(line.split()[:2] == ["reverse", "mcp:words"] for line in plain.stdout.splitlines())
    assert "error: MCP server 'broken'" in plain.stderr


def test_tools_note_lists_name_source_and_approval() -> None:
    from assistant.tools.mcp import McpToolInfo

    text = tools_markdown(
        [
            McpToolInfo("calculator", "built-in", False, "Evaluate"),
            McpToolInfo("reverse", "mcp:words", True, "Reverse"),
            McpToolInfo("lookup", "mcp:wiki", False, "Look up"),
        ],
        ["MCP server 'x' failed to start: boom"],
    )
    assert "| calculator | built-in | safe |" in text
    assert "| reverse | mcp:words | risky, asks first |" in text
    assert "| lookup | mcp:wiki | trusted |" in text
    assert "**error:** MCP server 'x' failed to start: boom" in text


@pytest.mark.slow
def test_slash_tools_list_adds_the_note_from_a_worker(home: Path) -> None:
    _write_config(home)

    class Host:
        def __init__(self) -> None:
            self.services = Services(load_config(), backend=ScriptedBackend())
            self.notes: list[str] = []
            self.ui = lambda fn, *args, **kwargs: fn(*args, **kwargs)

        def notify(self, message: str, **kwargs: Any) -> None:
            self.notes.append(f"notify: {message}")

        def add_note(self, markdown: str) -> None:
            self.notes.append(markdown)

        def start(self, group: str, work: Any, *args: Any, exclusive: bool = True) -> None:
            work(*args)

    host = Host()
    try:
        assert ToolCommands(host).list()  # type: ignore[arg-type]
        (note,) = host.notes
        assert "| word_count | mcp:words | risky, asks first |" in note
        assert "**error:** MCP server 'broken'" in note
    finally:
        host.services.mcp().close()


# -- the app ----------------------------------------------------------------------------


@pytest.mark.slow
async def test_app_asks_before_an_untrusted_mcp_tool_runs(stdio_tools: McpToolset) -> None:
    from assistant.memory.store import MemoryStore
    from tests.test_tui_app import settle, type_and_send, wait_until
    from tui.app import ChatApp
    from tui.screens.confirm import ConfirmScreen
    from tui.widgets.agent_step import AgentStepView

    # Routing lets the model choose between the tied MCP tools first, then the loop runs.
    script = ["reverse", "Action: reverse\nAction Input: stressed", "Final Answer: done"]
    backend = ScriptedBackend(script)
    app = ChatApp(
        load_config(), backend=backend, store=MemoryStore.in_memory(), tools=stdio_tools.tools
    )
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await type_and_send(pilot, "/tools")
        await type_and_send(pilot, "Reverse the word stressed")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert "reverse" in app.screen.question  # type: ignore[attr-defined]
        await pilot.press("y")
        await settle(app, pilot)
        [step] = list(app.query(AgentStepView))
        assert (step.tool, step.observation) == ("reverse", "desserts")  # the server ran it


@pytest.mark.slow
async def test_app_slash_tools_list_shows_mcp_tools_and_errors(home: Path) -> None:
    from assistant.memory.store import MemoryStore
    from tests.test_tui_app import settle, shown, type_and_send, wait_until
    from tui.app import ChatApp

    _write_config(home)
    app = ChatApp(load_config(), backend=ScriptedBackend(), store=MemoryStore.in_memory())
    try:
        async with app.run_test(size=(160, 40)) as pilot:
            await settle(app, pilot)
            await type_and_send(pilot, "/tools list")

            def note() -> str:
                notes = [text for role, text in shown(app) if role == "note"]
                return notes[-1] if notes else ""

            await wait_until(pilot, lambda: "mcp:words" in note(), timeout=60)
            assert "| reverse | mcp:words | risky, asks first |" in note()
            assert "| calculator | built-in | safe |" in note()
            assert "**error:** MCP server 'broken'" in note()
    finally:
        app.chat.services.mcp().close()


def test_tool_names_stay_unique_across_servers_and_built_ins() -> None:
    from types import SimpleNamespace

    from assistant.tools.mcp import _wrap

    taken = {"calculator"}
    names = []
    for server_name in ("a", "a", "b"):
        server: Any = SimpleNamespace(config=SimpleNamespace(name=server_name, trusted=False))
        for tool in ("calculator", "reverse"):
            listed = SimpleNamespace(name=tool, description="", inputSchema=None)
            wrapped = _wrap(server, listed, taken)
            taken.add(wrapped.name)
            names.append(wrapped.name)
    assert len(set(names)) == len(names) == 6
    assert "calculator" not in names and names[:2] == ["a_calculator", "reverse"]


def test_a_servers_descriptions_are_bounded_and_stripped_of_terminal_escapes() -> None:
    from langchain_core.tools import StructuredTool

    from assistant.tools.mcp import MAX_DESCRIPTION_CHARS, bounded_description

    evil = "Adds numbers.\x1b[2J\x1b]0;pwned\x07\nSecond line\twith a tab. " + "x" * 5000
    clean = bounded_description(evil)
    assert "\x1b" not in clean and "\x07" not in clean
    assert clean.startswith("Adds numbers.[2J]0;pwned\nSecond line\twith a tab. ")
    assert len(clean) == MAX_DESCRIPTION_CHARS and clean.endswith("…")
    assert bounded_description("  short  ") == "short"
    tool = StructuredTool.from_function(
        func=lambda: "", name="t", description="\x1b[31mred\x1b[0m first\nsecond"
    )
    assert tool_info(tool).description == "[31mred[0m first"
