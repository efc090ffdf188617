"""Stage 1, syntax: the grammar (`grammar.lark`), the typed AST with spans (`ast`), the parser (`parser`)."""
