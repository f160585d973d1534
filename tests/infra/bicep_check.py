"""An offline checker for the Bicep compile errors that a parser can find without Azure's type data.

No Bicep compiler can be installed here (it is not on PyPI, npm or Debian), and pycep and checkov only
parse. This module lexes and parses Bicep itself and reports, with the compiler's diagnostic codes
(MicrosoftDocs azure-docs, articles/azure-resource-manager/bicep/bicep-core-diagnostics.md), the errors
listed in docs/infra.md ("What is checked"), and what it cannot check there ("What is not checked
offline"). The decorator rules are those of parameters.md ("Decorators"), outputs.md,
user-defined-data-types.md and resource-declaration.md. Three codes are the project's own: MMS001 (a
blank line between a decorator and its declaration: that is how a decorator left behind by a deleted
parameter hides), MMS002 (a file nested too deeply to read) and MMS003 (reference() or list*() in a
parameter default, which parameters.md forbids).

Run it over a folder: `python -m tests.infra.bicep_check infra` prints one line per diagnostic and
exits 1 when there is any.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# ---------------------------------------------------------------------------------------------------
# Diagnostics


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    column: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.code} {self.message}"


class Reporter:
    def __init__(self, path: str) -> None:
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    def error(self, code: str, at: tuple[int, int], message: str) -> None:
        self.diagnostics.append(Diagnostic(self.path, at[0], at[1], code, message))


# ---------------------------------------------------------------------------------------------------
# Lexer (Azure/bicep src/Bicep.Core/Parsing/Lexer.cs: tokens, escapes, interpolation holes)

ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", "'": "'", "$": "$"}
OPERATORS = [
    "...", "??", "::", "!=", "!~", "<=", ">=", "==", "=~", "=>", "&&", "||",
    "{", "}", "(", ")", "[", "]", "@", ",", ".", "?", ":", ";", "+", "-", "%", "*", "/", "^", "!", "<", ">",
    "=", "|",
]  # fmt: skip
IDENTIFIER_START = re.compile(r"[A-Za-z_]")
IDENTIFIER_PART = re.compile(r"[A-Za-z0-9_]")
MAX_IDENTIFIER_LENGTH = 255  # LanguageConstants.MaxIdentifierLength (BCP024)


@dataclass
class Token:
    kind: str  # ident, int, string, str_left, str_mid, str_right, multiline, newline, op, eof
    text: str
    line: int
    column: int
    value: str = ""  # a string piece's decoded text

    @property
    def at(self) -> tuple[int, int]:
        return (self.line, self.column)


class Lexer:
    def __init__(self, text: str, reporter: Reporter) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.column = 1
        self.reporter = reporter
        self.tokens: list[Token] = []
        self.templates: list[str] = []  # "hole" for an interpolation hole, "brace" for an object inside one

    def peek(self, offset: int = 0) -> str:
        index = self.pos + offset
        return self.text[index] if index < len(self.text) else ""

    def advance(self, count: int = 1) -> str:
        taken = self.text[self.pos : self.pos + count]
        for char in taken:
            if char == "\n":
                self.line += 1
                self.column = 1
            else:
                self.column += 1
        self.pos += count
        return taken

    def add(self, kind: str, text: str, at: tuple[int, int], value: str = "") -> None:
        self.tokens.append(Token(kind, text, at[0], at[1], value))

    def run(self) -> list[Token]:
        while self.pos < len(self.text):
            self.trivia()
            if self.pos >= len(self.text):
                break
            self.token()
        if self.templates:
            self.reporter.error("BCP004", (self.line, self.column), "a string is not terminated before the end of file")
        self.add("eof", "", (self.line, self.column))
        return self.tokens

    def trivia(self) -> None:
        while self.pos < len(self.text):
            char = self.peek()
            if char in (" ", "\t"):
                self.advance()
            elif char == "/" and self.peek(1) == "/":
                while self.pos < len(self.text) and self.peek() not in "\r\n":
                    self.advance()
            elif char == "/" and self.peek(1) == "*":
                start = (self.line, self.column)
                end = self.text.find("*/", self.pos + 2)
                if end < 0:
                    self.reporter.error("BCP002", start, "a multi-line comment is not terminated with */")
                    self.advance(len(self.text) - self.pos)
                else:
                    self.advance(end + 2 - self.pos)
            else:
                return

    def token(self) -> None:
        at = (self.line, self.column)
        char = self.peek()
        if char in "\r\n":
            if self.templates and self.templates[-1] == "hole":
                self.reporter.error("BCP004", at, "a string is not terminated before the new line")
                self.templates.clear()
            start = self.pos
            while self.peek() in ("\r", "\n") and self.peek():
                self.advance()
                self.trivia_spaces()
            # "blank" when a line holding nothing (not even a comment) is among them (MMS001)
            lines = self.text[start : self.pos].replace("\r", "").split("\n")[1:-1]
            self.add("newline", "\n", at, "blank" if any(not line.strip() for line in lines) else "")
            return
        if char == "'":
            if self.peek(1) == "'" and self.peek(2) == "'":
                self.multiline(at)
            else:
                self.advance()
                self.string_segment(at, first=True)
            return
        if char == "$" and self.text.startswith("'''", self.pos + 1):
            self.reporter.error("BCP001", at, "interpolated multi-line strings are not read by this checker")
            self.advance()
            return
        if char == '"':
            self.reporter.error("BCP103", at, 'the token " is not recognized: strings use single quotes in Bicep')
            self.advance()
            return
        if char.isdigit():
            start = self.pos
            while self.peek().isdigit():
                self.advance()
            self.add("int", self.text[start : self.pos], at)
            return
        if IDENTIFIER_START.match(char):
            start = self.pos
            while self.peek() and IDENTIFIER_PART.match(self.peek()):
                self.advance()
            name = self.text[start : self.pos]
            if len(name) > MAX_IDENTIFIER_LENGTH:
                self.reporter.error("BCP024", at, f"the identifier exceeds {MAX_IDENTIFIER_LENGTH} characters")
            self.add("ident", name, at)
            return
        if char == "{" and self.templates:
            self.templates.append("brace")
        if char == "}" and self.templates:
            if self.templates[-1] == "hole":
                self.templates.pop()
                self.advance()
                self.string_segment(at, first=False)
                return
            self.templates.pop()
        for op in OPERATORS:
            if self.text.startswith(op, self.pos):
                self.advance(len(op))
                self.add("op", op, at)
                return
        self.reporter.error("BCP001", at, f"the token {char!r} is not recognized")
        self.advance()

    def trivia_spaces(self) -> None:
        while self.peek() in (" ", "\t") and self.peek():
            self.advance()
        if self.peek() == "/" and self.peek(1) in ("/", "*"):
            self.trivia()

    def string_segment(self, at: tuple[int, int], first: bool) -> None:
        """After the opening quote or the closing brace of a hole: read up to the closing quote or the next hole."""
        value: list[str] = []
        start = self.pos
        while True:
            char = self.peek()
            if not char:
                self.reporter.error("BCP003", at, "the string is not terminated with a single quote")
                kind = "string" if first else "str_right"
                self.add(kind, self.text[start : self.pos], at, "".join(value))
                return
            if char in "\r\n":
                self.reporter.error("BCP004", at, "the string is not terminated before the new line")
                kind = "string" if first else "str_right"
                self.add(kind, self.text[start : self.pos], at, "".join(value))
                return
            if char == "'":
                self.advance()
                self.add("string" if first else "str_right", self.text[start : self.pos - 1], at, "".join(value))
                return
            if char == "$" and self.peek(1) == "{":
                self.advance(2)
                self.add("str_left" if first else "str_mid", self.text[start : self.pos - 2], at, "".join(value))
                self.templates.append("hole")
                return
            if char == "\\":
                self.escape(value, at)
                continue
            value.append(self.advance())

    def escape(self, value: list[str], at: tuple[int, int]) -> None:
        escape_at = (self.line, self.column)
        self.advance()
        char = self.peek()
        if not char or char in "\r\n":
            self.reporter.error("BCP005", at, "the string ends inside an escape sequence")
            return
        if char == "u":
            match = re.compile(r"u\{([0-9A-Fa-f]{1,6})\}").match(self.text, self.pos)
            if not match or int(match.group(1), 16) > 0x10FFFF:
                self.reporter.error("BCP133", escape_at, "the unicode escape is not valid (\\u{0} to \\u{10FFFF})")
                self.advance()
                return
            value.append(chr(int(match.group(1), 16)))
            self.advance(match.end() - self.pos)
            return
        if char not in ESCAPES:
            self.reporter.error("BCP006", escape_at, f"the escape sequence \\{char} is not recognized")
            self.advance()
            return
        value.append(ESCAPES[char])
        self.advance()

    def multiline(self, at: tuple[int, int]) -> None:
        self.advance(3)
        end = self.text.find("'''", self.pos)
        if end < 0:
            self.reporter.error("BCP140", at, "the multi-line string is not terminated with '''")
            end = len(self.text)
        # Up to four quotes may close it: the first ones belong to the content (Lexer.ScanMultilineString).
        while self.text.startswith("''''", end):
            end += 1
        body = self.text[self.pos : end]
        self.advance(end - self.pos)
        if self.text.startswith("'''", self.pos):
            self.advance(3)
        content = body[1:] if body.startswith("\n") else body[2:] if body.startswith("\r\n") else body
        self.add("multiline", body, at, content)


# ---------------------------------------------------------------------------------------------------
# Syntax tree


@dataclass
class Node:
    at: tuple[int, int]


@dataclass
class Literal(Node):
    value: Any  # int, bool or None


@dataclass
class String(Node):
    pieces: list[str]
    holes: list[Node]

    @property
    def literal(self) -> str | None:
        return self.pieces[0] if not self.holes else None


@dataclass
class Array(Node):
    items: list[Node]


@dataclass
class Property(Node):
    key: str | None  # None for an interpolated key
    key_node: Node | None
    value: Node
    decorators: list[Decorator] = field(default_factory=list)


@dataclass
class Object(Node):
    properties: list[Property]
    spreads: list[Node] = field(default_factory=list)


@dataclass
class Name(Node):
    name: str


@dataclass
class Member(Node):
    base: Node
    name: str
    safe: bool = False


@dataclass
class Index(Node):
    base: Node
    index: Node
    safe: bool = False


@dataclass
class Call(Node):
    namespace: Node | None  # a base expression for `x.f()`
    name: str
    args: list[Node]


@dataclass
class Unary(Node):
    op: str
    operand: Node


@dataclass
class Binary(Node):
    op: str
    left: Node
    right: Node


@dataclass
class Ternary(Node):
    condition: Node
    then: Node
    otherwise: Node


@dataclass
class Lambda(Node):
    params: list[str]
    body: Node


@dataclass
class For(Node):
    item: str
    index: str | None
    iterable: Node
    body: Node


@dataclass
class If(Node):
    condition: Node
    body: Node


@dataclass
class NonNull(Node):
    operand: Node


@dataclass
class TypeRef(Node):
    """A type: `name` (string, int, ... or a user type), a literal, `T[]`, `T?`, a union, an object or tuple."""

    name: str | None = None
    literal: Any = None
    is_literal: bool = False
    item: TypeRef | None = None
    nullable: bool = False
    members: list[TypeRef] = field(default_factory=list)
    object_props: list[tuple[str, TypeRef, list[Decorator]]] | None = None
    tuple_items: list[TypeRef] | None = None
    resource: str | None = None


@dataclass
class Decorator(Node):
    name: str
    args: list[Node]
    end_line: int
    qualified: bool = False
    blank_after: bool = False  # a blank line stands between it and what follows


@dataclass
class Statement(Node):
    keyword: str
    name: str
    decorators: list[Decorator]
    name_at: tuple[int, int] = (0, 0)
    type: TypeRef | None = None
    value: Node | None = None  # default, value or body
    resource_type: String | None = None
    existing: bool = False
    path: String | None = None


# ---------------------------------------------------------------------------------------------------
# Parser (Azure/bicep src/Bicep.Core/Parsing/Parser.cs and BaseParser.cs)

DECLARATION_KEYWORDS = {"metadata", "param", "var", "resource", "module", "output", "type", "func", "import"}
OTHER_KEYWORDS = {"targetScope", "extension", "provider", "using", "test", "assert"}


class ParseError(Exception):
    def __init__(self, code: str, at: tuple[int, int], message: str) -> None:
        super().__init__(message)
        self.code = code
        self.at = at


class Parser:
    def __init__(self, tokens: list[Token], reporter: Reporter) -> None:
        self.tokens = tokens
        self.pos = 0
        self.reporter = reporter

    # helpers
    def peek(self, offset: int = 0) -> Token:
        return self.tokens[min(self.pos + offset, len(self.tokens) - 1)]

    def next(self) -> Token:
        token = self.peek()
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def is_op(self, text: str, offset: int = 0) -> bool:
        token = self.peek(offset)
        return token.kind == "op" and token.text == text

    def is_word(self, text: str) -> bool:
        token = self.peek()
        return token.kind == "ident" and token.text == text

    def expect_op(self, text: str) -> Token:
        token = self.peek()
        if token.kind != "op" or token.text != text:
            raise ParseError("BCP018", token.at, f"expected {text!r} here, found {token.text or 'the end of file'!r}")
        return self.next()

    def expect_ident(self, code: str, what: str) -> Token:
        token = self.peek()
        if token.kind != "ident":
            raise ParseError(code, token.at, f"expected {what} here, found {token.text or 'the end of file'!r}")
        return self.next()

    def skip_newlines(self) -> int:
        count = 0
        while self.peek().kind == "newline":
            self.next()
            count += 1
        return count

    def recover(self) -> None:
        depth = 0
        while self.peek().kind != "eof":
            token = self.peek()
            if token.kind == "op" and token.text in "([{":
                depth += 1
            elif token.kind == "op" and token.text in ")]}":
                depth = max(depth - 1, 0)
            elif token.kind == "newline" and depth == 0:
                return
            self.next()

    # program
    def program(self) -> list[Statement]:
        statements: list[Statement] = []
        while self.peek().kind != "eof":
            if self.peek().kind == "newline":
                self.next()
                continue
            try:
                statement = self.statement()
            except ParseError as error:
                self.reporter.error(error.code, error.at, str(error))
                self.recover()
                continue
            if statement is not None:
                statements.append(statement)
                token = self.peek()
                if token.kind not in ("newline", "eof"):
                    self.reporter.error(
                        "BCP019", token.at, f"expected a new line after the declaration, found {token.text!r}"
                    )
                    self.recover()
        return statements

    def decorators(self) -> list[Decorator]:
        found: list[Decorator] = []
        while self.is_op("@"):
            at = self.next().at
            name_token = self.expect_ident("BCP123", "a decorator name")
            name, qualified = name_token.text, False
            if self.is_op(".") and self.peek(1).kind == "ident":
                if name not in ("sys", "az"):
                    raise ParseError(
                        "BCP057", name_token.at, f"the name {name!r} does not exist in the current context"
                    )
                self.next()
                name, qualified = self.next().text, True
            if not self.is_op("("):
                raise ParseError(
                    "BCP141", name_token.at, "the expression cannot be used as a decorator: it is not callable"
                )
            args = self.arguments()
            found.append(Decorator(at, name, args, self.tokens[self.pos - 1].line, qualified))
            if self.peek().kind == "newline":
                found[-1].blank_after = self.peek().value == "blank"  # MMS001
                self.skip_newlines()
            elif self.peek().kind != "eof":
                raise ParseError("BCP019", self.peek().at, "expected a new line after the decorator")
        return found

    def statement(self) -> Statement | None:
        decorators = self.decorators()
        token = self.peek()
        if token.kind == "eof" or (token.kind != "ident" or token.text not in DECLARATION_KEYWORDS | OTHER_KEYWORDS):
            if decorators:
                raise ParseError("BCP132", decorators[-1].at, "expected a declaration after the decorator")
            raise ParseError("BCP007", token.at, f"this declaration type is not recognized: {token.text!r}")
        keyword = self.next().text
        if keyword == "targetScope":
            if decorators:
                self.reporter.error("BCP130", decorators[0].at, "decorators are not allowed here")
            self.expect_op("=")
            return Statement(token.at, keyword, "targetScope", [], token.at, value=self.expression())
        if keyword in ("extension", "provider", "using", "test", "assert", "import"):
            raise ParseError("BCP007", token.at, f"{keyword!r} declarations are not read by this checker")
        name_token = self.expect_ident(
            {"param": "BCP013", "var": "BCP015", "output": "BCP016"}.get(keyword, "BCP017"), "a name"
        )
        statement = Statement(token.at, keyword, name_token.text, decorators, name_token.at)
        if keyword == "metadata":
            self.expect_op("=")
            statement.value = self.expression()
        elif keyword == "param":
            statement.type = self.type_expression()
            if self.is_op("="):
                self.next()
                statement.value = self.expression()
        elif keyword == "var":
            if not self.is_op("="):
                statement.type = self.type_expression()
            self.expect_op("=")
            statement.value = self.expression()
        elif keyword == "output":
            if self.is_word("resource") and self.peek(1).kind in ("string", "str_left"):
                self.next()
                statement.type = TypeRef(self.peek().at, resource=self.string().literal or "")
            else:
                statement.type = self.type_expression()
            self.expect_op("=")
            statement.value = self.expression()
        elif keyword == "type":
            self.expect_op("=")
            statement.type = self.type_expression()
        elif keyword == "func":
            statement.value = self.function_body()
        elif keyword == "resource":
            statement.resource_type = self.string_token_or_error("BCP068", "a resource type string")
            if self.is_word("existing"):
                self.next()
                statement.existing = True
            self.expect_op("=")
            statement.value = self.body()
        elif keyword == "module":
            statement.path = self.string_token_or_error("BCP097", "a module path string")
            self.expect_op("=")
            statement.value = self.body()
        return statement

    def string_token_or_error(self, code: str, what: str) -> String:
        if self.peek().kind not in ("string", "str_left", "multiline"):
            raise ParseError(code, self.peek().at, f"expected {what} here")
        node = self.primary()
        assert isinstance(node, String)
        return node

    def body(self) -> Node:
        """A resource or module body: an object, `if (c) {...}` or `[for ...: ...]`."""
        if self.is_word("if"):
            at = self.next().at
            self.expect_op("(")
            condition = self.expression()
            self.expect_op(")")
            return If(at, condition, self.object())
        if self.is_op("["):
            node = self.primary()
            if not isinstance(node, For):
                raise ParseError("BCP167", node.at, "expected a '{', a for-expression or the 'if' keyword here")
            return node
        if self.is_op("{"):
            return self.object()
        raise ParseError("BCP118", self.peek().at, "expected '{', '[' or the 'if' keyword here")

    def function_body(self) -> Node:
        at = self.expect_op("(").at
        params: list[str] = []
        while not self.is_op(")"):
            params.append(self.expect_ident("BCP013", "a parameter name").text)
            self.type_expression()
            if self.is_op(","):
                self.next()
        self.next()
        self.type_expression()
        self.expect_op("=>")
        return Lambda(at, params, self.expression())

    # types
    def type_expression(self) -> TypeRef:
        first = self.type_postfix()
        if not self.is_op("|"):
            return first
        members = [first]
        while self.is_op("|"):
            self.next()
            members.append(self.type_postfix())
        return TypeRef(first.at, members=members)

    def type_postfix(self) -> TypeRef:
        node = self.type_primary()
        while True:
            if self.is_op("[") and self.is_op("]", 1):
                self.next()
                self.next()
                node = TypeRef(node.at, item=node)
            elif self.is_op("?"):
                self.next()
                node.nullable = True
            elif self.is_op(".") and self.peek(1).kind == "ident":
                self.next()
                node = TypeRef(node.at, name=f"{node.name}.{self.next().text}")
            else:
                return node

    def type_primary(self) -> TypeRef:
        token = self.peek()
        if token.kind == "ident" and token.text == "resource" and self.peek(1).kind == "string":
            self.next()
            return TypeRef(token.at, resource=self.next().value)
        if token.kind == "ident":
            self.next()
            if token.text in ("true", "false"):
                return TypeRef(token.at, literal=token.text == "true", is_literal=True)
            if token.text == "null":
                return TypeRef(token.at, literal=None, is_literal=True)
            if self.is_op("<"):  # resourceInput<'type'>, resourceOutput<...>
                depth = 0
                while True:
                    part = self.next()
                    depth += 1 if part.text == "<" else -1 if part.text == ">" else 0
                    if depth == 0 or part.kind == "eof":
                        break
            return TypeRef(token.at, name=token.text)
        if token.kind == "string":
            self.next()
            return TypeRef(token.at, literal=token.value, is_literal=True)
        if token.kind == "int" or (token.kind == "op" and token.text == "-" and self.peek(1).kind == "int"):
            sign = -1 if token.text == "-" else 1
            if sign < 0:
                self.next()
            return TypeRef(token.at, literal=sign * int(self.next().text), is_literal=True)
        if self.is_op("{"):
            return self.object_type()
        if self.is_op("["):
            self.next()
            items: list[TypeRef] = []
            self.skip_separators()
            while not self.is_op("]"):
                items.append(self.type_expression())
                self.skip_separators()
            self.next()
            return TypeRef(token.at, tuple_items=items)
        if self.is_op("("):
            self.next()
            inner = self.type_expression()
            self.expect_op(")")
            return inner
        raise ParseError("BCP279", token.at, f"expected a type here, found {token.text or 'the end of file'!r}")

    def object_type(self) -> TypeRef:
        at = self.expect_op("{").at
        props: list[tuple[str, TypeRef, list[Decorator]]] = []
        self.skip_separators()
        while not self.is_op("}"):
            decorators = self.decorators()
            key = self.next()
            if key.kind not in ("ident", "string") and key.text != "*":
                raise ParseError("BCP317", key.at, "expected an identifier, a string or an asterisk here")
            if self.is_op("?"):
                self.next()
            self.expect_op(":")
            props.append((key.value if key.kind == "string" else key.text, self.type_expression(), decorators))
            self.skip_separators()
        self.next()
        return TypeRef(at, object_props=props)

    def skip_separators(self) -> None:
        while self.peek().kind == "newline" or self.is_op(","):
            self.next()

    # expressions
    def expression(self) -> Node:
        condition = self.binary(0)
        if self.is_op("?"):
            at = self.next().at
            self.skip_newlines()
            then = self.expression()
            self.skip_newlines()
            self.expect_op(":")
            self.skip_newlines()
            return Ternary(at, condition, then, self.expression())
        return condition

    PRECEDENCE = [
        {"??"},
        {"||"},
        {"&&"},
        {"==", "!=", "=~", "!~"},
        {"<", "<=", ">", ">="},
        {"+", "-"},
        {"*", "/", "%"},
    ]

    def binary(self, level: int) -> Node:
        if level == len(self.PRECEDENCE):
            return self.unary()
        left = self.binary(level + 1)
        while self.peek().kind == "op" and self.peek().text in self.PRECEDENCE[level]:
            token = self.next()
            self.skip_newlines() if level == 0 else None
            left = Binary(token.at, token.text, left, self.binary(level + 1))
        return left

    def unary(self) -> Node:
        if self.peek().kind == "op" and self.peek().text in ("!", "-", "+"):
            token = self.next()
            return Unary(token.at, token.text, self.unary())
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        while True:
            if self.is_op("."):
                self.next()
                safe = False
                if self.is_op("?"):
                    self.next()
                    safe = True
                name = self.expect_ident("BCP020", "a function or property name")
                if self.is_op("("):
                    node = Call(name.at, node, name.text, self.arguments())
                else:
                    node = Member(name.at, node, name.text, safe)
            elif self.is_op("::"):
                self.next()
                name = self.expect_ident("BCP020", "a nested resource name")
                node = Member(name.at, node, name.text)
            elif self.is_op("["):
                at = self.next().at
                safe = False
                if self.is_op("?"):
                    self.next()
                    safe = True
                if self.is_op("]"):
                    raise ParseError("BCP117", at, "an empty indexer is not allowed")
                index = self.expression()
                self.expect_op("]")
                node = Index(at, node, index, safe)
            elif self.is_op("!") and not self.is_op("=", 1):
                node = NonNull(self.next().at, node)
            else:
                return node

    def arguments(self) -> list[Node]:
        self.expect_op("(")
        args: list[Node] = []
        self.skip_newlines()
        while not self.is_op(")"):
            args.append(self.expression())
            self.skip_newlines()
            if self.is_op(","):
                self.next()
                self.skip_newlines()
            elif not self.is_op(")"):
                raise ParseError("BCP236", self.peek().at, "expected a new line or a comma here")
        self.next()
        return args

    def string(self) -> String:
        token = self.next()
        if token.kind in ("string", "multiline"):
            return String(token.at, [token.value], [])
        pieces, holes = [token.value], []
        while True:
            holes.append(self.expression())
            piece = self.next()
            if piece.kind not in ("str_mid", "str_right"):
                raise ParseError("BCP064", piece.at, "unexpected tokens in an interpolated expression")
            pieces.append(piece.value)
            if piece.kind == "str_right":
                return String(token.at, pieces, holes)

    def primary(self) -> Node:
        token = self.peek()
        if token.kind in ("string", "str_left", "multiline"):
            return self.string()
        if token.kind == "int":
            self.next()
            value = int(token.text)
            if value > 2**63:
                self.reporter.error("BCP010", token.at, "expected a valid 64-bit signed integer")
            return Literal(token.at, value)
        if token.kind == "ident":
            if token.text in ("true", "false", "null"):
                self.next()
                return Literal(token.at, {"true": True, "false": False, "null": None}[token.text])
            if self.is_op("=>", 1):
                self.next()
                self.next()
                return Lambda(token.at, [token.text], self.expression())
            self.next()
            if self.is_op("("):
                return Call(token.at, None, token.text, self.arguments())
            return Name(token.at, token.text)
        if self.is_op("("):
            return self.parenthesized()
        if self.is_op("["):
            return self.array()
        if self.is_op("{"):
            return self.object()
        raise ParseError("BCP009", token.at, f"expected a value here, found {token.text or 'the end of file'!r}")

    def parenthesized(self) -> Node:
        start = self.pos
        at = self.next().at
        # a lambda: `(a, b) => ...` or `() => ...`
        names: list[str] = []
        while self.peek().kind == "ident" or self.is_op(","):
            token = self.next()
            if token.kind == "ident":
                names.append(token.text)
        if self.is_op(")") and self.is_op("=>", 1):
            self.next()
            self.next()
            return Lambda(at, names, self.expression())
        self.pos = start + 1
        self.skip_newlines()
        inner = self.expression()
        self.skip_newlines()
        self.expect_op(")")
        return inner

    def array(self) -> Node:
        at = self.next().at
        self.skip_newlines()
        if self.is_word("for"):
            self.next()
            index = None
            if self.is_op("("):
                self.next()
                item = self.expect_ident("BCP136", "a loop item variable").text
                if self.is_op(","):
                    self.next()
                    index = self.expect_ident("BCP136", "a loop index variable").text
                if not self.is_op(")"):
                    raise ParseError("BCP249", self.peek().at, "a loop variable block has exactly two elements")
                self.next()
            else:
                item = self.expect_ident("BCP162", "a loop item variable or '('").text
            if not self.is_word("in"):
                raise ParseError("BCP012", self.peek().at, "expected the 'in' keyword here")
            self.next()
            iterable = self.expression()
            self.expect_op(":")
            self.skip_newlines()
            if self.is_word("if"):
                if_at = self.next().at
                self.expect_op("(")
                condition = self.expression()
                self.expect_op(")")
                body: Node = If(if_at, condition, self.expression())
            else:
                body = self.expression()
            self.skip_newlines()
            self.expect_op("]")
            return For(at, item, index, iterable, body)
        items: list[Node] = []
        while not self.is_op("]"):
            if self.is_op("..."):
                self.next()
            items.append(self.expression())
            separated = self.skip_newlines()
            if self.is_op(","):
                self.next()
                if self.peek().kind == "newline" and not self.is_op("]", 1):
                    pass
                self.skip_newlines()
            elif not separated and not self.is_op("]"):
                raise ParseError("BCP236", self.peek().at, "expected a new line or a comma here")
        self.next()
        return Array(at, items)

    def object(self) -> Object:
        at = self.expect_op("{").at
        properties: list[Property] = []
        spreads: list[Node] = []
        self.skip_newlines()
        while not self.is_op("}"):
            decorators = self.decorators()
            token = self.peek()
            if self.is_op("..."):
                self.next()
                spreads.append(self.expression())
            else:
                if token.kind == "ident" or token.kind == "string":
                    self.next()
                    key: str | None = token.value if token.kind == "string" else token.text
                    key_node: Node | None = None
                elif token.kind == "str_left":
                    key_node = self.string()
                    key = None
                else:
                    raise ParseError("BCP022", token.at, f"expected a property name here, found {token.text!r}")
                self.expect_op(":")
                value = self.expression()
                properties.append(Property(token.at, key, key_node, value, decorators))
            separated = self.skip_newlines()
            if self.is_op(","):
                self.next()
                self.skip_newlines()
            elif not separated and not self.is_op("}"):
                raise ParseError("BCP236", self.peek().at, "expected a new line or a comma here")
        self.next()
        return Object(at, properties, spreads)


def parse(text: str, reporter: Reporter) -> list[Statement]:
    return Parser(Lexer(text, reporter).run(), reporter).program()


# ---------------------------------------------------------------------------------------------------
# Checks within one file

# Decorators: where each may stand and the parameter types it may decorate. Bicep docs (MicrosoftDocs
# azure-docs, articles/azure-resource-manager/bicep/parameters.md "Decorators": allowed/description/
# metadata on all; discriminator and sealed on object; maxLength/minLength on array and string;
# maxValue/minValue on int; secure on string and object), outputs.md, user-defined-data-types.md,
# variables.md, user-defined-functions.md, resource-declaration.md and modules.md ("batchSize").
ANY = None
DECORATORS: dict[str, tuple[set[str], set[str] | None, list[str]]] = {
    # name: (declarations it may decorate, parameter/output types it may decorate, argument types)
    "allowed": ({"param"}, ANY, ["array"]),
    "description": ({"param", "output", "type", "var", "func", "resource", "module", "metadata"}, ANY, ["string"]),
    "metadata": ({"param", "output", "type"}, ANY, ["object"]),
    "discriminator": ({"param", "output", "type"}, {"object"}, ["string"]),
    "sealed": ({"param", "output", "type"}, {"object"}, []),
    "secure": ({"param", "output", "type"}, {"string", "object"}, []),
    "minLength": ({"param", "output", "type"}, {"string", "array"}, ["int"]),
    "maxLength": ({"param", "output", "type"}, {"string", "array"}, ["int"]),
    "minValue": ({"param", "output", "type"}, {"int"}, ["int"]),
    "maxValue": ({"param", "output", "type"}, {"int"}, ["int"]),
    "export": ({"type", "var", "func"}, ANY, []),
    "batchSize": ({"resource", "module"}, ANY, ["int"]),
}
# A decorator in the wrong place: BCP125 param, BCP126 variable, BCP127 resource, BCP128 module, BCP129
# output (bicep-core-diagnostics.md); a type or function declaration has no code of its own there.
MISPLACED = {"param": "BCP125", "var": "BCP126", "resource": "BCP127", "module": "BCP128", "output": "BCP129"}
PRIMITIVE_TYPES = {"string", "int", "bool", "array", "object"}

# Bicep's functions (bicep-functions.md and its per-group pages: any, array, CIDR, date, deployment,
# file, lambda, logical, numeric, object, resource, scope, string). `list*` resource functions are
# matched by their prefix. A name not here and not declared is BCP057/BCP082.
FUNCTIONS = set(
    re.findall(
        r"\w+",
        """
    any array concat contains empty first flatten indexOf intersection last lastIndexOf length max min
    range skip take union base64 base64ToJson base64ToString bool dataUri dataUriToString endsWith
    format guid int json join newGuid padLeft replace split startsWith string substring toLower toUpper
    trim uniqueString uri uriComponent uriComponentToString parseCidr cidrSubnet cidrHost dateTimeAdd
    dateTimeFromEpoch dateTimeToEpoch utcNow deployer deployment environment loadFileAsBase64
    loadJsonContent loadYamlContent loadTextContent filter groupBy map mapValues reduce sort toObject
    coalesce items shallowMerge tryGet getSecret pickZones providers reference resourceId
    extensionResourceId subscriptionResourceId managementGroupResourceId tenantResourceId
    managementGroup resourceGroup subscription tenant readEnvironmentVariable buildUri parseUri
    nameof
    """,
    )
)
# Functions whose value is known once the deployment starts, so a parameter default may use them.
RUNTIME_ONLY = {"reference"}


def literal_value(node: Node | None) -> Any:
    """A constant's Python value, or NotImplemented when it depends on anything."""
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, String):
        return node.literal if node.literal is not None else NotImplemented
    if (
        isinstance(node, Unary)
        and node.op == "-"
        and isinstance(node.operand, Literal)
        and type(node.operand.value) is int
    ):
        return -node.operand.value
    if isinstance(node, Array):
        items = [literal_value(item) for item in node.items]
        return NotImplemented if any(item is NotImplemented for item in items) else items
    if isinstance(node, Object) and not node.spreads:
        values = {p.key: literal_value(p.value) for p in node.properties}
        if any(p.key is None for p in node.properties) or any(v is NotImplemented for v in values.values()):
            return NotImplemented
        return values
    return NotImplemented


def type_of_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def type_name(node: TypeRef | None) -> str | None:
    """string, int, bool, array or object for a declared type, None when the checker does not know it."""
    if node is None:
        return None
    if node.item is not None or node.tuple_items is not None:
        return "array"
    if node.object_props is not None:
        return "object"
    if node.is_literal:
        return type_of_value(node.literal)
    if node.members:
        kinds = {type_name(member) for member in node.members}
        return kinds.pop() if len(kinds) == 1 else None
    return node.name if node.name in PRIMITIVE_TYPES else None


def render(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return repr(value)


def children(node: Any) -> Iterator[Node]:
    if isinstance(node, Node):
        for name in node.__dataclass_fields__:
            yield from (
                children(getattr(node, name)) if not isinstance(getattr(node, name), Node) else [getattr(node, name)]
            )
    elif isinstance(node, (list, tuple)):
        for item in node:
            if isinstance(item, Node):
                yield item
            else:
                yield from children(item)


def names_in(node: Node, bound: frozenset[str] = frozenset()) -> Iterator[tuple[Name, frozenset[str]]]:
    """Every free name under a node, with the local names (lambda and loop variables) in scope there."""
    if isinstance(node, Name):
        if node.name not in bound:
            yield node, bound
        return
    if isinstance(node, Lambda):
        yield from names_in(node.body, bound | set(node.params))
        return
    if isinstance(node, For):
        yield from names_in(node.iterable, bound)
        yield from names_in(node.body, bound | {node.item} | ({node.index} if node.index else set()))
        return
    if isinstance(node, Call) and isinstance(node.namespace, Name) and node.namespace.name in ("az", "sys"):
        for arg in node.args:
            yield from names_in(arg, bound)
        return
    for child in children(node):
        if isinstance(child, TypeRef):
            continue
        yield from names_in(child, bound)


def calls_in(node: Node) -> Iterator[Call]:
    if isinstance(node, Call):
        yield node
    for child in children(node):
        if not isinstance(child, TypeRef):
            yield from calls_in(child)


@dataclass
class FileModel:
    path: Path
    statements: list[Statement]
    reporter: Reporter

    def declarations(self, keyword: str) -> dict[str, Statement]:
        return {s.name: s for s in self.statements if s.keyword == keyword}


def check_decorators(statement: Statement, reporter: Reporter) -> None:
    declared = type_name(statement.type) if statement.keyword in ("param", "output", "type") else None
    seen: set[str] = set()
    for decorator in statement.decorators:
        if decorator.blank_after:
            reporter.error(
                "MMS001",
                decorator.at,
                f"a blank line separates @{decorator.name}() from what follows: Bicep attaches it to the next "
                f"declaration ({statement.keyword} {statement.name}) all the same; a decorator left behind by a "
                "deleted declaration hides this way",
            )
        rule = DECORATORS.get(decorator.name)
        if rule is None:
            code = "BCP152" if decorator.name in FUNCTIONS else "BCP057"
            reporter.error(code, decorator.at, f"@{decorator.name}() is not a decorator")
            continue
        places, types, arg_types = rule
        if statement.keyword not in places:
            code = MISPLACED.get(statement.keyword, "BCP124")
            reporter.error(code, decorator.at, f"@{decorator.name}() cannot decorate a {statement.keyword} declaration")
            continue
        if decorator.name in seen:
            reporter.error("BCP166", decorator.at, f"duplicate @{decorator.name}() decorator on {statement.name}")
        seen.add(decorator.name)
        if types is not ANY and declared is not None and declared not in types:
            reporter.error(
                "BCP124",
                decorator.at,
                f"the decorator @{decorator.name}() can only be attached to targets of type "
                f"{' or '.join(sorted(types))}, but {statement.name} has type {declared}",
            )
        if len(decorator.args) != len(arg_types):
            reporter.error(
                "BCP071",
                decorator.at,
                f"@{decorator.name}() expects {len(arg_types)} argument(s), got {len(decorator.args)}",
            )
            continue
        for arg, wanted in zip(decorator.args, arg_types, strict=True):
            value = literal_value(arg)
            if value is NotImplemented:
                if (
                    not isinstance(arg, (String, Array, Object))
                    or wanted != {String: "string", Array: "array", Object: "object"}[type(arg)]
                ):
                    reporter.error("BCP032", arg.at, f"@{decorator.name}()'s argument must be a compile-time constant")
                continue
            if type_of_value(value) != wanted:
                reporter.error("BCP070", arg.at, f"@{decorator.name}() takes {wanted}, not {type_of_value(value)}")
            elif wanted == "int" and decorator.name in ("minLength", "maxLength") and value < 0:
                reporter.error("BCP168", arg.at, f"@{decorator.name}() must not be negative")
    for low_name, high_name in (("minValue", "maxValue"), ("minLength", "maxLength")):
        low, high = decorator_value(statement, low_name), decorator_value(statement, high_name)
        if isinstance(low, int) and isinstance(high, int) and low > high:
            reporter.error(
                "BCP331", statement.at, f"@{low_name}({low}) is greater than @{high_name}({high}) on {statement.name}"
            )
    if statement.keyword == "param":
        if statement.type is not None and statement.type.nullable and statement.value is not None:
            reporter.error(
                "BCP326", statement.value.at, f"the nullable parameter {statement.name} may not have a default"
            )
        union = statement.type is not None and (bool(statement.type.members) or statement.type.is_literal)
        if union and any(d.name == "allowed" for d in statement.decorators):
            reporter.error(
                "BCP295", statement.at, f"@allowed() on {statement.name}: its union or literal type gives the values"
            )
        check_default(statement, reporter)


def decorator_value(statement: Statement, name: str) -> Any:
    for decorator in statement.decorators:
        if decorator.name == name and len(decorator.args) == 1:
            return literal_value(decorator.args[0])
    return NotImplemented


def check_default(statement: Statement, reporter: Reporter) -> None:
    """A parameter's literal default must be of its type and meet its own constraints (Bicep checks the default
    against the refined type: BCP033 type, BCP332/BCP333 length, BCP327/BCP328 value)."""
    default = literal_value(statement.value)
    declared = type_name(statement.type)
    if statement.value is None or default is NotImplemented:
        return
    at = statement.value.at
    found = type_of_value(default)
    if (
        declared is not None
        and found != declared
        and not (found == "null" and statement.type and statement.type.nullable)
    ):
        reporter.error(
            "BCP033",
            at,
            f"the parameter {statement.name} expects a default of type {declared}, but the default is {found}",
        )
        return
    allowed = decorator_value(statement, "allowed")
    if isinstance(allowed, list):
        if not allowed:
            reporter.error("BCP099", statement.decorators[0].at, "the @allowed() array must not be empty")
        elif isinstance(default, list) and all(item in allowed for item in default):
            pass  # an array parameter's @allowed lists the items it may hold
        elif default not in allowed:
            reporter.error(
                "BCP033",
                at,
                f"{render(default)} is not one of the values @allowed() gives {statement.name}: {allowed!r}",
            )
        for value in allowed:
            if declared is not None and declared != "array" and type_of_value(value) != declared:
                reporter.error("BCP033", at, f"@allowed() on {statement.name} ({declared}) lists {render(value)}")
    if isinstance(default, (str, list)):
        low, high = decorator_value(statement, "minLength"), decorator_value(statement, "maxLength")
        # a string's length as the compiler (.NET) counts it: UTF-16 code units
        length = len(default.encode("utf-16-le")) // 2 if isinstance(default, str) else len(default)
        if isinstance(low, int) and length < low:
            reporter.error(
                "BCP333",
                at,
                f"the default of {statement.name} (length {length}) is shorter than its @minLength({low})",
            )
        if isinstance(high, int) and length > high:
            reporter.error(
                "BCP332",
                at,
                f"the default of {statement.name} (length {length}) is longer than its @maxLength({high})",
            )
    if type(default) is int:
        low, high = decorator_value(statement, "minValue"), decorator_value(statement, "maxValue")
        if isinstance(low, int) and default < low:
            reporter.error("BCP328", at, f"the default of {statement.name} ({default}) is below its @minValue({low})")
        if isinstance(high, int) and default > high:
            reporter.error("BCP327", at, f"the default of {statement.name} ({default}) is above its @maxValue({high})")


def symbols(model: FileModel) -> dict[str, Statement]:
    found: dict[str, Statement] = {}
    for statement in model.statements:
        if statement.keyword in ("targetScope", "metadata", "output"):
            continue
        if statement.name in found:
            model.reporter.error(
                "BCP028", statement.name_at, f"the identifier {statement.name!r} is declared more than once"
            )
        found[statement.name] = statement
    outputs: set[str] = set()
    for statement in model.statements:
        if statement.keyword == "output":
            if statement.name in outputs:
                model.reporter.error(
                    "BCP145", statement.name_at, f"the output {statement.name!r} is declared more than once"
                )
            outputs.add(statement.name)
    return found


def check_references(model: FileModel, declared: dict[str, Statement]) -> None:
    for statement in model.statements:
        roots: list[Node] = [d for d in statement.decorators]
        if statement.value is not None:
            roots.append(statement.value)
        for root in roots:
            for name, _bound in names_in(root):
                if name.name in ("az", "sys"):
                    continue
                target = declared.get(name.name)
                if target is None:
                    model.reporter.error(
                        "BCP057", name.at, f"the name {name.name!r} does not exist in the current context"
                    )
                elif target.keyword == "type":
                    model.reporter.error("BCP288", name.at, f"{name.name!r} refers to a type but is used as a value")
                elif target.keyword == "func":
                    model.reporter.error("BCP063", name.at, f"{name.name!r} is a function, not a value")
                elif statement.keyword == "param" and root is statement.value and target.keyword != "param":
                    model.reporter.error(
                        "BCP072",
                        name.at,
                        f"the default of {statement.name} references {target.keyword} {name.name}: only parameters can",
                    )
                elif target is statement and statement.keyword != "output":
                    model.reporter.error("BCP079", name.at, f"{name.name!r} references itself")
            for call in calls_in(root):
                qualified = isinstance(call.namespace, Name) and call.namespace.name in ("az", "sys")
                if call.namespace is not None and not qualified:
                    continue  # a resource's function (listKeys(), getSecret()) or a lambda's
                if call.name in declared and declared[call.name].keyword == "func":
                    continue
                if call.name not in FUNCTIONS and not call.name.startswith("list"):
                    code = "BCP107" if qualified else "BCP057"
                    model.reporter.error(code, call.at, f"the function {call.name!r} does not exist")
                elif (
                    statement.keyword == "param"
                    and root is statement.value
                    and (call.name in RUNTIME_ONLY or call.name.startswith("list"))
                ):
                    model.reporter.error(  # parameters.md: no reference() or list*() in the parameters section
                        "MMS003", call.at, f"{call.name}() reads runtime state: not valid in a parameter default"
                    )


def load(path: Path) -> FileModel:
    reporter = Reporter(str(path))
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        reporter.error("BCP091", (1, 1), f"the file is not UTF-8: {error.reason}")
        return FileModel(path, [], reporter)
    try:
        statements = parse(text, reporter)
    except RecursionError:
        reporter.error("MMS002", (1, 1), "the file nests too deeply for this checker to read")
        statements = []
    return FileModel(path, statements, reporter)


# '<provider>/<type>[/<child>...]@<yyyy-mm-dd>[-suffix]' (resource-declaration.md; BCP029 otherwise)
RESOURCE_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9.]*(/[A-Za-z0-9][A-Za-z0-9_.-]*)+@\d{4}-\d{2}-\d{2}(-[A-Za-z0-9]+)?")
TARGET_SCOPES = {"resourceGroup", "subscription", "managementGroup", "tenant", "desiredStateConfiguration", "local"}


def resource_body(node: Node | None) -> Object | None:
    while isinstance(node, (If, For)):
        node = node.body
    return node if isinstance(node, Object) else None


def check_resource(statement: Statement, declared: dict[str, Statement], reporter: Reporter) -> None:
    kind = statement.resource_type.literal if statement.resource_type else None
    if statement.resource_type is not None and kind is None:
        reporter.error("BCP047", statement.resource_type.at, "string interpolation is not supported in a resource type")
    elif kind is not None and not RESOURCE_TYPE.fullmatch(kind):
        reporter.error("BCP029", statement.resource_type.at if statement.resource_type else statement.at,
                       f"the resource type {kind!r} is not valid: '<provider>/<type>@<api-version>'")  # fmt: skip
    body = resource_body(statement.value)
    if body is None or body.spreads:
        return
    name = next((p for p in body.properties if p.key == "name"), None)
    if name is None:
        reporter.error(
            "BCP035", statement.name_at, f"the resource {statement.name} is missing the required property 'name'"
        )
        return
    # A name must be known when the deployment starts: no resource's runtime properties, no module outputs.
    for node in walk(name.value):
        if isinstance(node, Member) and node.name in ("properties", "outputs"):
            root = node.base
            while isinstance(root, (Member, Index, NonNull)):
                root = root.base if not isinstance(root, NonNull) else root.operand
            target = declared.get(root.name) if isinstance(root, Name) else None
            if target is not None and target.keyword in ("resource", "module"):
                reporter.error(
                    "BCP120",
                    node.at,
                    f"the name of {statement.name} uses {root.name}.{node.name}, known only during the deployment",
                )


def check_target_scope(statement: Statement, reporter: Reporter) -> None:
    value = literal_value(statement.value)
    if value is NotImplemented or value not in TARGET_SCOPES:
        at = statement.value.at if statement.value else statement.at
        reporter.error("BCP033", at, f"targetScope must be one of {sorted(TARGET_SCOPES)}")


def check_objects(root: Node, reporter: Reporter) -> None:
    for node in walk(root):
        if isinstance(node, Object):
            seen: set[str] = set()
            for prop in node.properties:
                if prop.key is not None and prop.key in seen:
                    reporter.error(
                        "BCP025", prop.at, f"the property {prop.key!r} is declared more than once in this object"
                    )
                if prop.key is not None:
                    seen.add(prop.key)


def walk(node: Node) -> Iterator[Node]:
    yield node
    for child in children(node):
        if not isinstance(child, TypeRef):
            yield from walk(child)


def check_file(model: FileModel) -> dict[str, Statement]:
    declared = symbols(model)
    try:
        for statement in model.statements:
            check_decorators(statement, model.reporter)
            if statement.keyword == "resource":
                check_resource(statement, declared, model.reporter)
            if statement.keyword == "targetScope":
                check_target_scope(statement, model.reporter)
            if statement.value is not None:
                check_objects(statement.value, model.reporter)
        scopes = [s for s in model.statements if s.keyword == "targetScope"]
        for extra in scopes[1:]:
            model.reporter.error("BCP112", extra.at, "targetScope is declared more than once")
        check_references(model, declared)
    except RecursionError:
        model.reporter.error("MMS002", (1, 1), "the file nests too deeply for this checker to read")
    return declared


# ---------------------------------------------------------------------------------------------------
# Checks across files: a module and the file it names

STRING_FUNCTIONS = {
    "string", "toLower", "toUpper", "uniqueString", "format", "replace", "substring", "trim", "guid", "padLeft",
    "base64", "base64ToString", "uri", "uriComponent", "uriComponentToString", "dataUri", "dataUriToString",
    "utcNow", "dateTimeAdd", "dateTimeFromEpoch", "newGuid", "loadTextContent", "loadFileAsBase64", "join",
}  # fmt: skip
INT_FUNCTIONS = {"int", "length", "indexOf", "lastIndexOf", "dateTimeToEpoch"}
BOOL_FUNCTIONS = {"bool", "empty", "contains", "startsWith", "endsWith"}
ARRAY_FUNCTIONS = {"split", "range", "flatten", "filter", "map", "sort", "items", "skip", "take", "pickZones"}


class Project:
    def __init__(self, paths: Iterable[Path]) -> None:
        self.models = {path.resolve(): load(path) for path in paths}
        self.declared = {path: check_file(model) for path, model in self.models.items()}

    def model(self, path: Path) -> FileModel | None:
        resolved = path.resolve()
        if resolved not in self.models and resolved.is_file():
            self.models[resolved] = load(resolved)
            self.declared[resolved] = check_file(self.models[resolved])
        return self.models.get(resolved)

    def diagnostics(self) -> list[Diagnostic]:
        for model in list(self.models.values()):
            self.check_modules(model)
        return sorted(d for model in self.models.values() for d in model.reporter.diagnostics)

    def target(self, model: FileModel, module: Statement) -> FileModel | None:
        assert module.path is not None
        relative = module.path.literal
        if relative is None:
            model.reporter.error("BCP092", module.path.at, "string interpolation is not supported in module paths")
            return None
        if ":" in relative.split("/")[0]:
            return None  # a registry or template spec reference (br:, ts:): not checked offline
        for code, bad, message in (
            ("BCP050", not relative, "the module path is empty"),
            ("BCP051", relative.startswith("/"), "the module path begins with '/': use a relative path"),
            ("BCP098", "\\" in relative, "the module path contains '\\': use '/'"),
        ):
            if bad:
                model.reporter.error(code, module.path.at, message)
                return None
        if (model.path.parent / relative).resolve() == model.path.resolve():
            model.reporter.error("BCP094", module.path.at, "this module references itself")
            return None
        target = self.model(model.path.parent / relative)
        if target is None:
            model.reporter.error("BCP091", module.path.at, f"the module file {relative!r} does not exist")
        return target

    def value_type(self, model: FileModel, node: Node | None, depth: int = 0) -> str | None:
        """The primitive type of an expression where it is plain (literals, parameters, plain variables,
        well-known functions, module outputs), else None."""
        if node is None or depth > 20:
            return None
        value = literal_value(node)
        if value is not NotImplemented:
            return type_of_value(value)
        if isinstance(node, String):
            return "string"
        if isinstance(node, (Array, For)):
            return "array"
        if isinstance(node, Object):
            return "object"
        if isinstance(node, Unary):
            return "bool" if node.op == "!" else "int"
        if isinstance(node, Binary):
            if node.op in ("==", "!=", "=~", "!~", "<", "<=", ">", ">=", "&&", "||"):
                return "bool"
            if node.op in ("+", "-", "*", "/", "%"):
                return "int"
            return None
        if isinstance(node, Ternary):
            then, otherwise = (
                self.value_type(model, node.then, depth + 1),
                self.value_type(model, node.otherwise, depth + 1),
            )
            return then if then == otherwise else None
        if isinstance(node, Call) and (
            node.namespace is None or (isinstance(node.namespace, Name) and node.namespace.name in ("az", "sys"))
        ):
            for kind, names in (
                ("string", STRING_FUNCTIONS),
                ("int", INT_FUNCTIONS),
                ("bool", BOOL_FUNCTIONS),
                ("array", ARRAY_FUNCTIONS),
            ):
                if node.name in names:
                    return kind
            return None
        if isinstance(node, Name):
            statement = self.declared[model.path.resolve()].get(node.name)
            if statement is None:
                return None
            if statement.keyword == "param":
                return type_name(statement.type)
            if statement.keyword == "var" and statement.type is None:
                return self.value_type(model, statement.value, depth + 1)
            return None
        output = self.module_output(model, node)
        if output is not None:
            return type_name(output.type)
        return None

    def module_output(self, model: FileModel, node: Node) -> Statement | None:
        """`m.outputs.x` (or `m[i].outputs.x`, `m.?outputs.x`): the output statement it names, when known."""
        if not (isinstance(node, Member) and isinstance(node.base, Member) and node.base.name == "outputs"):
            return None
        base = node.base.base
        if isinstance(base, (Index, NonNull)):
            base = base.base if isinstance(base, Index) else base.operand
        if not isinstance(base, Name):
            return None
        module = self.declared[model.path.resolve()].get(base.name)
        if module is None or module.keyword != "module" or module.path is None or module.path.literal is None:
            return None
        target = self.model(model.path.parent / module.path.literal)
        return target.declarations("output").get(node.name) if target else None

    def check_modules(self, model: FileModel) -> None:
        for statement in model.statements:
            if statement.keyword == "module":
                self.check_module(model, statement)
            if statement.keyword == "output" and statement.value is not None:
                declared, found = type_name(statement.type), self.value_type(model, statement.value)
                if declared and found and declared != found and not (found == "null" and statement.type.nullable):
                    model.reporter.error(
                        "BCP026",
                        statement.value.at,
                        f"the output {statement.name} is {declared}, but its value is {found}",
                    )
            roots = [statement.value] if statement.value is not None else []
            for root in roots:
                self.check_output_references(model, root)

    def check_output_references(self, model: FileModel, node: Node) -> None:
        if isinstance(node, Member) and isinstance(node.base, Member) and node.base.name == "outputs":
            base = node.base.base
            base = base.base if isinstance(base, Index) else base.operand if isinstance(base, NonNull) else base
            if isinstance(base, Name):
                module = self.declared[model.path.resolve()].get(base.name)
                if module is not None and module.keyword == "module" and module.path and module.path.literal:
                    target = self.model(model.path.parent / module.path.literal)
                    if target is not None and node.name not in target.declarations("output"):
                        model.reporter.error(
                            "BCP053",
                            node.at,
                            f"the module {base.name} ({module.path.literal}) has no output {node.name!r}",
                        )
        for child in children(node):
            if not isinstance(child, TypeRef):
                self.check_output_references(model, child)

    def check_module(self, model: FileModel, module: Statement) -> None:
        target = self.target(model, module)
        if target is None:
            return
        body = module.value
        while isinstance(body, (If, For)):
            body = body.body
        if not isinstance(body, Object):
            return
        given = next((p for p in body.properties if p.key == "params"), None)
        declared = target.declarations("param")
        passed: dict[str, Property] = {}
        if given is not None and isinstance(given.value, Object):
            if given.value.spreads:
                return  # `...x` may pass anything: not checked
            passed = {p.key: p for p in given.value.properties if p.key is not None}
        elif given is not None:
            model.reporter.error(
                "BCP183", given.value.at, "the value of the module params property must be an object literal"
            )
            return
        for name, prop in passed.items():
            param = declared.get(name)
            if param is None:
                model.reporter.error(
                    "BCP037", prop.at, f"the module {module.name} ({target.path.name}) declares no parameter {name!r}"
                )
                continue
            wanted, found = type_name(param.type), self.value_type(model, prop.value)
            nullable = bool(param.type and param.type.nullable)
            if wanted and found and found != wanted and not (found == "null" and nullable):
                model.reporter.error(
                    "BCP036", prop.value.at, f"the module parameter {name} is {wanted}, but the value given is {found}"
                )
            if literal_value(prop.value) is not NotImplemented and found == wanted:
                # the value given must meet the parameter's own constraints, as a default must
                probe = Statement(param.at, "param", name, param.decorators, param.name_at, param.type, prop.value)
                constraints = Reporter(str(model.path))
                check_default(probe, constraints)
                for d in constraints.diagnostics:
                    message = d.message.replace("the default of", "the value given for")
                    model.reporter.error(d.code, (d.line, d.column), f"{message} (module {module.name})")
        for name, param in declared.items():
            if name not in passed and param.value is None and not (param.type and param.type.nullable):
                model.reporter.error(
                    "BCP035",
                    module.name_at,
                    f"the module {module.name} does not pass {target.path.name}'s required parameter {name!r}",
                )


def check_paths(paths: Iterable[Path]) -> list[Diagnostic]:
    project = Project(paths)
    return project.diagnostics()


def check_text(text: str, name: str = "snippet.bicep", others: dict[str, str] | None = None) -> list[Diagnostic]:
    """Check one file's text (and, for modules, the files it names) in a temporary folder: for tests."""
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for other, content in (others or {}).items():
            (root / other).parent.mkdir(parents=True, exist_ok=True)
            (root / other).write_text(content, encoding="utf-8")
        (root / name).write_text(text, encoding="utf-8")
        return [
            Diagnostic(name, d.line, d.column, d.code, d.message)
            for d in check_paths([root / name])
            if Path(d.path).resolve() == (root / name).resolve()
        ]


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "infra")
    diagnostics = check_paths(sorted(root.rglob("*.bicep")))
    for diagnostic in diagnostics:
        print(diagnostic)
    return 1 if diagnostics else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
