/**
 * Tree-sitter grammar for dlc specs (.dl files), following compiler/syntax/grammar.lark:
 * newlines are not significant, comments run from '#' to the end of the line, and the
 * operators bind as they do there (loosest first: if-then-else, or, and, not, comparisons,
 * + -, * / // % @, unary -, **, repeat and scan, calls and indexing).
 */

const PREC = {
  conditional: 1, or: 2, and: 3, not: 4, compare: 5, sum: 6, product: 7, negation: 8, power: 9,
  repeat: 10, postfix: 11,
};

const commaSep1 = (rule) => seq(rule, repeat(seq(",", rule)));
const bracketed = (open, rule, close) => seq(open, optional(seq(commaSep1(rule), optional(","))), close);

module.exports = grammar({
  name: "dl",

  extras: ($) => [/\s/, $.comment],
  word: ($) => $.identifier,

  rules: {
    source_file: ($) => repeat(choice($.import_statement, $.block_definition, $.model_definition, $.model_alias)),

    import_statement: ($) => seq("import", commaSep1(field("module", $.identifier))),
    block_definition: ($) => seq("block", field("name", $.identifier), $.parameters, $.body),
    model_definition: ($) => seq("model", field("name", $.identifier), $.parameters, $.body),
    model_alias: ($) => seq("model", field("name", $.identifier), "=", field("target", $.identifier), $.arguments),

    parameters: ($) => bracketed("(", $.parameter, ")"),
    parameter: ($) => seq(field("name", $.identifier), ":", field("type", choice($.identifier, $.list_type, $.enum_type)),
      optional(seq("=", field("default", $._expression)))),
    list_type: ($) => seq("[", $.identifier, "]"),
    enum_type: ($) => seq("{", commaSep1($.string), optional(","), "}"),

    body: ($) => seq("{", repeat($._statement), "}"),
    _statement: ($) => choice($.require_statement, $.input_statement, $.output_statement, $.assignment,
      $.let_statement, $.if_statement, $.tie_statement, $.rename_statement, $.for_statement, $.init_statement,
      $.decode_statement),

    require_statement: ($) => seq("require", field("condition", $._expression), optional(seq(",", field("message", $.string)))),
    input_statement: ($) => seq("in", field("name", $.identifier), ":", field("type", $.tensor_type), optional("optional")),
    output_statement: ($) => seq("out", field("name", $.identifier), optional(seq(":", field("type", $.tensor_type))),
      optional(seq("=", field("value", $._expression)))),
    assignment: ($) => seq(commaSep1(field("target", $.identifier)), "=", field("value", $._expression)),
    let_statement: ($) => seq("let", field("name", $.identifier), "=", field("value", $._expression)),
    if_statement: ($) => seq("if", field("condition", $._expression), field("consequence", $.body),
      optional(seq("else", field("alternative", choice($.body, $.if_statement))))),
    tie_statement: ($) => seq("tie", $.path, "=", $.path),
    rename_statement: ($) => seq("rename", field("from", $.string), "->", field("to", $.string)),
    init_statement: ($) => seq("init", $.path, "=", field("scheme", $._expression)),
    decode_statement: ($) => seq("decode", field("logits", $.identifier), "from", field("tokens", $.identifier)),
    for_statement: ($) => seq("for", field("variable", $.identifier), "in", field("iterable", $._expression), $.body),
    path: ($) => seq($.identifier, repeat(seq(".", choice($.identifier, $.integer)))),

    tensor_type: ($) => seq("[", optional(commaSep1($._expression)), "]", optional($.dtype)),
    dtype: (_) => choice("float32", "float16", "bfloat16", "float64", "int64", "int32", "bool"),

    _expression: ($) => choice($.conditional_expression, $.boolean_operator, $.not_operator, $.comparison_operator,
      $.binary_operator, $.unary_operator, $._postfix),
    conditional_expression: ($) => prec.right(PREC.conditional,
      seq("if", field("condition", $._expression), "then", field("consequence", $._expression),
        "else", field("alternative", $._expression))),
    boolean_operator: ($) => choice(
      prec.left(PREC.or, seq(field("left", $._expression), "or", field("right", $._expression))),
      prec.left(PREC.and, seq(field("left", $._expression), "and", field("right", $._expression)))),
    not_operator: ($) => prec(PREC.not, seq("not", field("operand", $._expression))),
    comparison_operator: ($) => prec.left(PREC.compare,
      seq(field("left", $._expression), field("operator", choice("==", "!=", "<=", ">=", "<", ">")),
        field("right", $._expression))),
    binary_operator: ($) => choice(
      prec.left(PREC.sum, seq(field("left", $._expression), field("operator", choice("+", "-")), field("right", $._expression))),
      prec.left(PREC.product, seq(field("left", $._expression), field("operator", choice("*", "/", "//", "%", "@")),
        field("right", $._expression))),
      prec.right(PREC.power, seq(field("left", $._expression), field("operator", "**"), field("right", $._expression)))),
    unary_operator: ($) => prec(PREC.negation, seq("-", field("operand", $._expression))),

    _postfix: ($) => choice($.call, $.index, $.repeat, $.scan, $._primary),
    call: ($) => prec(PREC.postfix, seq(field("function", $._postfix), field("arguments", $.arguments))),
    index: ($) => prec(PREC.postfix, seq(field("value", $._postfix), "[", field("index", $._expression), "]")),
    repeat: ($) => prec.right(PREC.repeat, seq("repeat", "(", field("count", $._expression),
      optional(seq(",", field("index", $.identifier))), ")", field("body", $._postfix))),
    scan: ($) => prec.right(PREC.repeat, seq("scan", field("header", $.arguments), field("body", $._postfix))),
    arguments: ($) => bracketed("(", choice($._expression, $.keyword_argument), ")"),
    keyword_argument: ($) => seq(field("name", $.identifier), "=", field("value", $._expression)),

    _primary: ($) => choice($.integer, $.float, $.string, $.true, $.false, $.none, $.identifier,
      $.parenthesized_expression, $.list),
    parenthesized_expression: ($) => seq("(", $._expression, ")"),
    list: ($) => bracketed("[", $._expression, "]"),

    identifier: (_) => /[A-Za-z_][A-Za-z0-9_]*/,
    integer: (_) => /[0-9]+/,
    float: (_) => token(choice(/[0-9]+\.[0-9]*([eE][-+]?[0-9]+)?/, /[0-9]+[eE][-+]?[0-9]+/)),
    string: (_) => /"[^"\\\n]*"/,
    true: (_) => "true",
    false: (_) => "false",
    none: (_) => "none",
    comment: (_) => token(seq("#", /[^\n]*/)),
  },
});
