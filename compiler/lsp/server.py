"""The protocol side of `dlc lsp`: pygls handlers that convert between LSP messages and the
answers of `analysis`.  Positions: LSP lines and characters are 0-based, dlc's 1-based."""
from __future__ import annotations

from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.server import LanguageServer

from compiler import __version__
from compiler.diagnostics import CompileError, Diagnostic, Severity, Span
from compiler.lsp.analysis import Analysis, Completion, analyze, completions, definition, hover
from compiler.syntax.formatter import DEFAULT_WIDTH, FormatterBug, format_source

_KINDS = {"parameter": lsp.CompletionItemKind.Property, "block": lsp.CompletionItemKind.Class,
          "op": lsp.CompletionItemKind.Function, "local": lsp.CompletionItemKind.Variable,
          "keyword": lsp.CompletionItemKind.Keyword}


def _range(span: Span) -> lsp.Range:
    return lsp.Range(lsp.Position(max(span.line - 1, 0), max(span.col - 1, 0)),
                     lsp.Position(max(span.end_line - 1, 0), max(span.end_col - 1, 0)))


def _path_of(file: str) -> Path:
    """The file a span names (relative spans are relative to the working directory)."""
    return (Path.cwd() / file).resolve()


def _location(span: Span) -> lsp.Location:
    return lsp.Location(_path_of(span.file).as_uri(), _range(span))


def _to_lsp(d: Diagnostic, here: Path) -> lsp.Diagnostic | None:
    """A diagnostic on this document; one whose primary span is in another file (a stdlib
    block instantiated with bad values) is shown where this document's note points."""
    related = [lsp.DiagnosticRelatedInformation(_location(n.span), n.message) for n in d.notes]
    message = d.message + (f"\nhint: {d.hint}" if d.hint else "")
    span = d.span
    if _path_of(d.span.file) != here:
        local = [n for n in d.notes if _path_of(n.span.file) == here]
        if not local:
            return None
        span = local[-1].span
        message = f"{d.span}: {message}"
        related.insert(0, lsp.DiagnosticRelatedInformation(_location(d.span), d.message))
    severity = lsp.DiagnosticSeverity.Error if d.severity is Severity.ERROR else lsp.DiagnosticSeverity.Warning
    return lsp.Diagnostic(_range(span), message, severity, code=d.code, source="dlc",
                          related_information=related or None)


class DlcServer(LanguageServer):
    """Keeps the latest analysis of each open document, and the last one that parsed, so hover
    and definitions keep working while a line is half typed."""

    def __init__(self) -> None:
        super().__init__("dlc", __version__)
        self.latest: dict[str, Analysis] = {}
        self.parsed: dict[str, Analysis] = {}

    def open_sources(self) -> dict[Path, str]:
        docs = self.workspace.text_documents.values()
        return {Path(d.path).resolve(): d.source for d in docs if d.path and d.uri.endswith(".dl")}

    def refresh(self, uri: str) -> None:
        doc = self.workspace.get_text_document(uri)
        analysis = analyze(Path(doc.path), doc.source, self.open_sources())
        self.latest[uri] = analysis
        if analysis.loaded is not None:
            self.parsed[uri] = analysis
        found = [_to_lsp(d, analysis.path) for d in analysis.diagnostics]
        self.text_document_publish_diagnostics(lsp.PublishDiagnosticsParams(
            uri, [d for d in found if d is not None], doc.version))

    def refresh_dependents(self, uri: str) -> None:
        """Check again the open documents that import the one that changed."""
        changed = Path(self.workspace.get_text_document(uri).path).resolve()
        for other, analysis in list(self.latest.items()):
            loader = analysis.loader
            if other != uri and loader is not None and changed in loader.modules:
                self.refresh(other)

    def analysis(self, uri: str) -> Analysis | None:
        if uri not in self.latest:
            self.refresh(uri)
        return self.parsed.get(uri) or self.latest.get(uri)


def _completion_item(c: Completion) -> lsp.CompletionItem:
    return lsp.CompletionItem(c.label, kind=_KINDS[c.kind], detail=c.detail or None, insert_text=c.insert)


def create_server() -> DlcServer:
    """A fresh server with every feature registered (tests start one per session)."""
    server = DlcServer()

    @server.feature(lsp.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: DlcServer, params: lsp.DidOpenTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: DlcServer, params: lsp.DidChangeTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)
        ls.refresh_dependents(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: DlcServer, params: lsp.DidSaveTextDocumentParams) -> None:
        ls.refresh(params.text_document.uri)

    @server.feature(lsp.TEXT_DOCUMENT_HOVER)
    def on_hover(ls: DlcServer, params: lsp.HoverParams) -> lsp.Hover | None:
        analysis = ls.analysis(params.text_document.uri)
        pos = params.position
        others = tuple(a.program for a in ls.latest.values() if a is not analysis and a.program is not None)
        text = hover(analysis, pos.line + 1, pos.character + 1, others) if analysis else None
        return lsp.Hover(lsp.MarkupContent(lsp.MarkupKind.Markdown, text)) if text else None

    @server.feature(lsp.TEXT_DOCUMENT_DEFINITION)
    def on_definition(ls: DlcServer, params: lsp.DefinitionParams) -> lsp.Location | None:
        analysis = ls.analysis(params.text_document.uri)
        pos = params.position
        target = definition(analysis, pos.line + 1, pos.character + 1) if analysis else None
        return lsp.Location(target.path.as_uri(), _range(target.span)) if target else None

    @server.feature(lsp.TEXT_DOCUMENT_COMPLETION, lsp.CompletionOptions(trigger_characters=["(", ",", " "]))
    def on_completion(ls: DlcServer, params: lsp.CompletionParams) -> lsp.CompletionList:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        analysis = ls.analysis(params.text_document.uri)
        if analysis is None:
            return lsp.CompletionList(False, [])
        current = Analysis(analysis.path, doc.source, analysis.sources, loaded=analysis.loaded,
                           loader=analysis.loader, program=analysis.program)   # positions in today's text
        pos = params.position
        return lsp.CompletionList(False, [_completion_item(c) for c in completions(current, pos.line + 1,
                                                                                   pos.character + 1)])

    @server.feature(lsp.TEXT_DOCUMENT_FORMATTING)
    def on_formatting(ls: DlcServer, params: lsp.DocumentFormattingParams) -> list[lsp.TextEdit] | None:
        doc = ls.workspace.get_text_document(params.text_document.uri)
        try:
            result = format_source(doc.source, doc.path or "<document>", DEFAULT_WIDTH)
        except (CompileError, FormatterBug):
            return None          # the diagnostics already say why
        if result == doc.source:
            return []
        lines = doc.source.split("\n")
        whole = lsp.Range(lsp.Position(0, 0), lsp.Position(len(lines), 0))
        return [lsp.TextEdit(whole, result)]

    return server
