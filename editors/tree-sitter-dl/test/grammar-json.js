// Print grammar.js as the rule tree that `tree-sitter generate` writes to src/grammar.json,
// without the tree-sitter CLI: the DSL functions below build the same JSON nodes.  The test
// suite reads it to check that the grammar accepts every stdlib and spec file.
//   node grammar-json.js ../grammar.js
const path = require("path");

const sym = (name) => ({ type: "SYMBOL", name });
const norm = (r) => (typeof r === "string" ? { type: "STRING", value: r }
  : r instanceof RegExp ? { type: "PATTERN", value: r.source } : r);
const precedence = (type) => (n, rule) => (rule === undefined ? { type, value: 0, content: norm(n) }
  : { type, value: n, content: norm(rule) });

global.seq = (...members) => ({ type: "SEQ", members: members.map(norm) });
global.choice = (...members) => ({ type: "CHOICE", members: members.map(norm) });
global.repeat = (rule) => ({ type: "REPEAT", content: norm(rule) });
global.repeat1 = (rule) => ({ type: "REPEAT1", content: norm(rule) });
global.optional = (rule) => choice(rule, { type: "BLANK" });
global.blank = () => ({ type: "BLANK" });
global.field = (name, rule) => ({ type: "FIELD", name, content: norm(rule) });
global.alias = (rule, value) => ({ type: "ALIAS", content: norm(rule), value: typeof value === "string" ? value : value.name });
global.token = (rule) => ({ type: "TOKEN", content: norm(rule) });
global.token.immediate = (rule) => ({ type: "IMMEDIATE_TOKEN", content: norm(rule) });
global.prec = precedence("PREC");
global.prec.left = precedence("PREC_LEFT");
global.prec.right = precedence("PREC_RIGHT");
global.prec.dynamic = precedence("PREC_DYNAMIC");
global.grammar = (spec) => {
  const $ = new Proxy({}, { get: (_, name) => sym(name) });
  const rules = {};
  for (const [name, fn] of Object.entries(spec.rules)) rules[name] = norm(fn($));
  return { name: spec.name, word: spec.word ? spec.word($).name : null, rules,
           extras: (spec.extras ? spec.extras($) : []).map(norm) };
};

const result = require(path.resolve(process.argv[2]));
process.stdout.write(JSON.stringify(result));
