"""`dlc lsp` through its protocol: a client in this process speaks JSON-RPC to the server over a
pair of pipes (the server runs in a thread, as it would on an editor's stdin/stdout)."""
from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path

import importlib.util

import pytest

from compiler.driver import check
from compiler.syntax.formatter import format_source
from tests.helpers import ROOT

# pygls and lsprotocol cost about a second to import: the server is imported by the tests that
# start it, not at collection, where every pytest-xdist worker would pay for it
pytestmark = pytest.mark.skipif(importlib.util.find_spec("pygls") is None, reason="pygls is not installed")

TIMEOUT = 60


class Client:
    """The editor's side: frames messages, answers the server's own requests, sorts the rest."""

    def __init__(self) -> None:
        to_server, from_client = os.pipe()
        to_client, from_server = os.pipe()
        from compiler.lsp.server import create_server

        self.server = create_server()
        self.thread = threading.Thread(target=self.server.start_io,
                                       args=(os.fdopen(to_server, "rb"), os.fdopen(from_server, "wb")), daemon=True)
        self.thread.start()
        self.writer = os.fdopen(from_client, "wb")
        self.reader = os.fdopen(to_client, "rb")
        self.responses: dict[int, queue.Queue] = {}
        self.notifications: queue.Queue = queue.Queue()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.writer.flush()

    def _read(self) -> None:
        while True:
            headers = {}
            while (line := self.reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode().partition(":")
                headers[name.strip().lower()] = value.strip()
            if not headers:
                return
            message = json.loads(self.reader.read(int(headers["content-length"])))
            if "method" in message and "id" in message:          # the server asks: say yes
                self._send({"id": message["id"], "result": None})
            elif "method" in message:
                self.notifications.put(message)
            else:
                self.responses.setdefault(message["id"], queue.Queue()).put(message)

    def request(self, method: str, params: dict) -> object:
        self.next_id += 1
        box = self.responses.setdefault(self.next_id, queue.Queue())
        self._send({"id": self.next_id, "method": method, "params": params})
        answer = box.get(timeout=TIMEOUT)
        assert "error" not in answer, answer
        return answer["result"]

    def notify(self, method: str, params: dict) -> None:
        self._send({"method": method, "params": params})

    def diagnostics_for(self, uri: str) -> list[dict]:
        """The next diagnostics published for `uri`."""
        while True:
            message = self.notifications.get(timeout=TIMEOUT)
            if message["method"] == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return message["params"]["diagnostics"]

    def open(self, path: Path, text: str) -> list[dict]:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": path.as_uri(), "languageId": "dl",
                                                              "version": 1, "text": text}})
        return self.diagnostics_for(path.as_uri())

    def at(self, method: str, path: Path, line: int, character: int, **extra) -> object:
        return self.request(method, {"textDocument": {"uri": path.as_uri()},
                                     "position": {"line": line, "character": character}, **extra})

    def close(self) -> None:
        self.request("shutdown", {})
        self.notify("exit", {})
        self.thread.join(timeout=TIMEOUT)


@pytest.fixture(scope="module")
def client():
    c = Client()
    c.capabilities = c.request("initialize", {"processId": None, "rootUri": ROOT.as_uri(), "capabilities": {}})
    c.notify("initialized", {})
    yield c
    c.close()


BROKEN = """\
import layers

model M(d: int = 256) {
    in tokens: [B, S] int64
    embedded = Embedding(1000, d)(tokens)
    h = Dropout(0.1)(embedded)
    ffn = FeedForward(512, 2048)(h)
    out y = ffn
}
"""


def _position(text: str, needle: str, offset: int = 0) -> tuple[int, int]:
    """0-based (line, character) of `needle` in `text`, plus `offset` characters."""
    before = text[: text.index(needle)]
    return before.count("\n"), len(before.rsplit("\n", 1)[-1]) + offset


def test_initialize_announces_the_features(client):
    caps = client.capabilities["capabilities"]
    for feature in ("hoverProvider", "definitionProvider", "completionProvider", "documentFormattingProvider"):
        assert caps.get(feature), feature
    assert client.capabilities["serverInfo"]["name"] == "dlc"


def test_diagnostics_on_open_are_those_of_dlc_check(client, tmp_path):
    spec = tmp_path / "broken.dl"
    spec.write_text(BROKEN)
    published = client.open(spec, BROKEN)
    expected = check(spec, all_blocks=True).diagnostics
    assert [(d["code"], d["range"]["start"]["line"] + 1, d["range"]["start"]["character"] + 1) for d in published] \
        == [(d.code, d.span.line, d.span.col) for d in expected] == [("DLC007", 7, 11)]
    (d,) = published
    assert d["severity"] == 1 and d["source"] == "dlc" and "expects [B, S, 512], got [B, S, 256]" in d["message"]
    related = {(Path(r["location"]["uri"].removeprefix("file://")).name, r["location"]["range"]["start"]["line"] + 1)
               for r in d["relatedInformation"]}
    declared_x = _position((ROOT / "stdlib" / "layers.dl").read_text(), "in x: [B, S, d_model]")[0] + 1
    assert related == {("broken.dl", 6), ("layers.dl", declared_x)}     # where h came from; FeedForward's x


def test_diagnostics_follow_the_edits(client, tmp_path):
    spec = tmp_path / "edited.dl"
    assert client.open(spec, BROKEN)
    fixed = BROKEN.replace("FeedForward(512, 2048)", "FeedForward(d, 2048)")
    client.notify("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": 2},
                                             "contentChanges": [{"text": fixed}]})
    assert client.diagnostics_for(spec.as_uri()) == []
    client.notify("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": 3},
                                             "contentChanges": [{"text": fixed.replace("out y", "out y =")}]})
    (d,) = client.diagnostics_for(spec.as_uri())
    assert d["code"] == "DLC001"


def test_editing_an_imported_module_checks_its_importers_again(client, tmp_path):
    library, spec = tmp_path / "mylib.dl", tmp_path / "user.dl"
    lib_text = "block Twice(d: int) {\n    in x: [B, d]\n    out y = x + x\n}\n"
    library.write_text(lib_text)
    assert client.open(library, lib_text) == []
    user = "import mylib\n\nmodel M() {\n    in x: [B, 8]\n    out y = Twice(8)(x)\n}\n"
    assert client.open(spec, user) == []
    client.notify("textDocument/didChange", {"textDocument": {"uri": library.as_uri(), "version": 2},
                                             "contentChanges": [{"text": lib_text.replace("in x: [B, d]", "in x: [B, 2 * d]")}]})
    assert client.diagnostics_for(library.as_uri()) == []
    (d,) = client.diagnostics_for(spec.as_uri())      # the unsaved buffer is what the importer sees
    assert d["code"] == "DLC007" and d["range"]["start"]["line"] == 4


def test_an_error_inside_a_stdlib_block_shows_where_this_file_instantiates_it(client, tmp_path):
    spec = tmp_path / "bad_heads.dl"
    text = ("import transformer_layers\n\nmodel M() {\n    in x: [B, S, 768]\n"
            "    layer = EncoderLayer(768, 10, 3072)(x)\n    out y = layer\n}\n")
    (d,) = client.open(spec, text)
    assert d["code"] == "DLC006" and d["range"]["start"]["line"] == 4
    assert any(r["location"]["uri"].endswith("stdlib/attention.dl") for r in d["relatedInformation"])


def test_hover_shows_shapes_signatures_and_docs(client, tmp_path):
    spec = tmp_path / "hover.dl"
    fixed = BROKEN.replace("FeedForward(512, 2048)", "FeedForward(d, 2048)")
    client.open(spec, fixed)
    tensor = client.at("textDocument/hover", spec, *_position(fixed, "h = "))
    assert "[B, S, 256]" in tensor["contents"]["value"] and "M(d=256)" in tensor["contents"]["value"]
    block = client.at("textDocument/hover", spec, *_position(fixed, "FeedForward", 3))["contents"]["value"]
    assert "block FeedForward(d_model: int, d_ff: int" in block and "Two linear maps" in block
    op = client.at("textDocument/hover", spec, *_position(fixed, "Embedding", 2))["contents"]["value"]
    assert "Embedding(num_embeddings: int, embedding_dim: int" in op
    assert client.at("textDocument/hover", spec, 1, 0) is None     # the blank line after the import


def test_definition_goes_across_imports_into_the_stdlib(client, tmp_path):
    spec = tmp_path / "definition.dl"
    client.open(spec, BROKEN)
    block = client.at("textDocument/definition", spec, *_position(BROKEN, "FeedForward", 1))
    stdlib_layers = ROOT / "stdlib" / "layers.dl"
    assert block["uri"] == stdlib_layers.resolve().as_uri()
    assert stdlib_layers.read_text().split("\n")[block["range"]["start"]["line"]].startswith("block FeedForward(")
    module = client.at("textDocument/definition", spec, *_position(BROKEN, "layers", 2))
    assert module["uri"] == stdlib_layers.resolve().as_uri()
    local = client.at("textDocument/definition", spec, *_position(BROKEN, "(h)", 1))
    assert local["uri"] == spec.as_uri() and local["range"]["start"]["line"] == 5


def test_completion_offers_parameters_then_names(client, tmp_path):
    spec = tmp_path / "complete.dl"
    client.open(spec, BROKEN)
    labels = [i["label"] for i in client.at("textDocument/completion", spec, *_position(BROKEN, "(512", 1))["items"]]
    assert labels[:4] == ["d_model=", "d_ff=", "dropout=", "activation="]
    inside_op = client.at("textDocument/completion", spec, *_position(BROKEN, "(1000", 1))["items"]
    assert {"num_embeddings=", "embedding_dim=", "padding_idx="} <= {i["label"] for i in inside_op}
    anywhere = {i["label"]: i for i in client.at("textDocument/completion", spec, 7, 4)["items"]}
    assert {"FeedForward", "Linear", "LayerNorm", "embedded", "tokens", "require"} <= set(anywhere)
    assert anywhere["FeedForward"]["detail"].startswith("block FeedForward(")


def test_formatting_returns_the_formatted_document(client, tmp_path):
    spec = tmp_path / "format.dl"
    messy = "import layers\nmodel M( d: int=256 ) {\n  in tokens: [B,S] int64   # ids\n  out y=Embedding(1000,d)(tokens)\n}\n"
    client.open(spec, messy)
    (edit,) = client.request("textDocument/formatting", {"textDocument": {"uri": spec.as_uri()},
                                                         "options": {"tabSize": 4, "insertSpaces": True}})
    assert edit["newText"] == format_source(messy) and edit["range"]["start"] == {"line": 0, "character": 0}


def test_hover_keeps_working_while_a_line_is_half_typed(client, tmp_path):
    spec = tmp_path / "typing.dl"
    fixed = BROKEN.replace("FeedForward(512, 2048)", "FeedForward(d, 2048)")
    client.open(spec, fixed)
    half = fixed.replace("    out y = ffn\n", "    out y = ffn\n    z = Linear(\n")
    client.notify("textDocument/didChange", {"textDocument": {"uri": spec.as_uri(), "version": 2},
                                             "contentChanges": [{"text": half}]})
    assert client.diagnostics_for(spec.as_uri())[0]["code"] == "DLC001"
    assert "[B, S, 256]" in client.at("textDocument/hover", spec, *_position(half, "h = "))["contents"]["value"]
    labels = {i["label"] for i in client.at("textDocument/completion", spec, *_position(half, "Linear(", 7))["items"]}
    assert {"in_features=", "out_features=", "bias="} <= labels


def test_dlc_lsp_serves_on_stdin_and_stdout():
    import subprocess
    import sys

    def frame(message: dict) -> bytes:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        return b"Content-Length: %d\r\n\r\n" % len(body) + body
    messages = [{"id": 1, "method": "initialize", "params": {"processId": None, "rootUri": None, "capabilities": {}}},
                {"id": 2, "method": "shutdown", "params": None}, {"method": "exit", "params": None}]
    run = subprocess.run([sys.executable, "-m", "compiler.cli", "lsp"], input=b"".join(map(frame, messages)),
                         capture_output=True, timeout=TIMEOUT, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert b'"name": "dlc"' in run.stdout.replace(b'"name":"dlc"', b'"name": "dlc"')
