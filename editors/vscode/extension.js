// The dlc extension: the grammar and language configuration come from package.json; this file
// starts the language server (`dlc lsp`, configurable as `dlc.command`) for .dl documents.
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const [command, ...args] = vscode.workspace.getConfiguration("dlc").get("command", ["dlc", "lsp"]);
  const server = { command, args, options: { cwd: vscode.workspace.workspaceFolders?.[0]?.uri.fsPath } };
  client = new LanguageClient("dlc", "dlc language server", { run: server, debug: server }, {
    documentSelector: [{ scheme: "file", language: "dl" }, { scheme: "untitled", language: "dl" }],
  });
  context.subscriptions.push({ dispose: () => client && client.stop() });
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
