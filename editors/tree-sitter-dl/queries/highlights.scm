; Highlighting for dlc specs: the same scopes as the TextMate grammar, in tree-sitter's names.
(comment) @comment
(string) @string
(integer) @number
(float) @number
[(true) (false) (none)] @constant.builtin
(dtype) @type.builtin
(parameter type: (identifier) @type.builtin)
(list_type (identifier) @type.builtin)

(block_definition name: (identifier) @type)
(model_definition name: (identifier) @type)
(model_alias name: (identifier) @type target: (identifier) @type)
(call function: (identifier) @function.call)
(parameter name: (identifier) @variable.parameter)
(keyword_argument name: (identifier) @variable.parameter)
(input_statement name: (identifier) @variable)
(output_statement name: (identifier) @variable)
(import_statement module: (identifier) @module)

["import" "block" "model" "require" "in" "out" "let" "tie" "rename" "init" "decode" "from" "optional"] @keyword
["if" "then" "else" "for" "repeat" "scan"] @keyword.control
["and" "or" "not"] @keyword.operator
["=" "->" "==" "!=" "<=" ">=" "<" ">" "+" "-" "*" "/" "//" "%" "@" "**"] @operator
["(" ")" "[" "]" "{" "}"] @punctuation.bracket
["," "." ":"] @punctuation.delimiter
