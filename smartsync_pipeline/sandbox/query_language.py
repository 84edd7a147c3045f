"""QBO's query language: a real tokenizer and a recursive-descent parser.

``SELECT * | COUNT(*) FROM E [WHERE f op v [AND ...]] [ORDERBY f [ASC|DESC]] [STARTPOSITION n]
[MAXRESULTS m]``. A quoted literal is one token whatever it contains (``'x'' OR Id > ''0'`` or
``'O\\'Brien'``), so a value can never change the structure of the query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

KEYWORDS = frozenset(
    {"select", "count", "from", "where", "and", "orderby", "order", "by", "asc", "desc", "startposition",
     "maxresults", "in", "like", "true", "false", "or"}
)  # fmt: skip
COMPARISONS = ("<=", ">=", "=", "<", ">")
DEFAULT_MAX_RESULTS = 100
MAX_RESULTS_CAP = 1000


class QuerySyntaxError(ValueError):
    """The query text is not valid QBO query language."""


@dataclass(frozen=True)
class Token:
    kind: str  # word | string | number | op | punct | end
    text: str
    value: Any
    position: int


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # = < > <= >= IN LIKE
    value: Any  # a literal, or a tuple of literals for IN


@dataclass
class Query:
    entity: str
    count: bool = False
    where: list[Condition] = field(default_factory=list)
    order_by: str | None = None
    descending: bool = False
    start_position: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        start = i
        if ch == "'":
            i += 1
            chars: list[str] = []
            while True:
                if i >= n:
                    raise QuerySyntaxError(f"unterminated string starting at position {start}")
                c = text[i]
                if c == "\\" and i + 1 < n:
                    chars.append(text[i + 1])
                    i += 2
                    continue
                if c == "'":
                    i += 1
                    break
                chars.append(c)
                i += 1
            tokens.append(Token("string", text[start:i], "".join(chars), start))
        elif ch.isdigit() or (ch in "-." and i + 1 < n and text[i + 1].isdigit()):
            i += 1
            while i < n and (text[i].isdigit() or text[i] == "."):
                i += 1
            raw = text[start:i]
            try:
                number: Any = int(raw) if raw.lstrip("-").isdigit() else float(raw)
            except ValueError:
                raise QuerySyntaxError(f"bad number {raw!r} at position {start}") from None
            if i < n and (text[i].isalpha() or text[i] == "_"):
                raise QuerySyntaxError(f"unexpected character {text[i]!r} at position {i}")
            tokens.append(Token("number", raw, number, start))
        elif ch.isalpha() or ch == "_":
            i += 1
            while i < n and (text[i].isalnum() or text[i] in "_."):
                i += 1
            word = text[start:i]
            if word.endswith(".") or ".." in word:
                raise QuerySyntaxError(f"bad field name {word!r} at position {start}")
            tokens.append(Token("word", word, word, start))
        elif text.startswith(("<=", ">="), i):
            tokens.append(Token("op", text[i : i + 2], text[i : i + 2], start))
            i += 2
        elif ch in "=<>":
            if ch == "<" and i + 1 < n and text[i + 1] == ">":
                raise QuerySyntaxError("operator <> is not supported")
            tokens.append(Token("op", ch, ch, start))
            i += 1
        elif ch in "(),*":
            tokens.append(Token("punct", ch, ch, start))
            i += 1
        else:
            raise QuerySyntaxError(f"unexpected character {ch!r} at position {i}")
    tokens.append(Token("end", "", None, n))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.i = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        return self.token.kind == "word" and self.token.text.lower() in words

    def expect_keyword(self, word: str) -> None:
        if not self.is_keyword(word):
            raise QuerySyntaxError(
                f"expected {word.upper()} at position {self.token.position}, got {self.token.text!r}"
            )
        self.advance()

    def expect_punct(self, char: str) -> None:
        if self.token.kind != "punct" or self.token.text != char:
            raise QuerySyntaxError(f"expected {char!r} at position {self.token.position}, got {self.token.text!r}")
        self.advance()

    def identifier(self, what: str) -> str:
        token = self.token
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise QuerySyntaxError(f"expected {what} at position {token.position}, got {token.text!r}")
        self.advance()
        return token.text

    def literal(self) -> Any:
        token = self.token
        if token.kind in ("string", "number"):
            self.advance()
            return token.value
        if self.is_keyword("true", "false"):
            self.advance()
            return token.text.lower() == "true"
        raise QuerySyntaxError(f"expected a value at position {token.position}, got {token.text!r}")

    def integer(self, clause: str) -> int:
        token = self.token
        if token.kind != "number" or not isinstance(token.value, int):
            raise QuerySyntaxError(f"{clause} needs a whole number at position {token.position}")
        self.advance()
        return token.value

    def parse(self) -> Query:
        self.expect_keyword("select")
        count = False
        if self.token.kind == "punct" and self.token.text == "*":
            self.advance()
        elif self.is_keyword("count"):
            self.advance()
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            count = True
        else:
            raise QuerySyntaxError("only SELECT * and SELECT COUNT(*) are supported")
        self.expect_keyword("from")
        query = Query(entity=self.identifier("an entity name"), count=count)
        if self.is_keyword("where"):
            self.advance()
            query.where.append(self.condition())
            while self.is_keyword("and"):
                self.advance()
                query.where.append(self.condition())
            if self.is_keyword("or"):
                raise QuerySyntaxError("OR is not supported")
        seen: set[str] = set()
        while self.token.kind != "end":
            if self.is_keyword("orderby", "order") and "order" not in seen:
                if self.advance().text.lower() == "order":
                    self.expect_keyword("by")
                query.order_by = self.identifier("a field to order by")
                if self.is_keyword("asc", "desc"):
                    query.descending = self.advance().text.lower() == "desc"
                seen.add("order")
            elif self.is_keyword("startposition") and "start" not in seen:
                self.advance()
                query.start_position = max(1, self.integer("STARTPOSITION"))
                seen.add("start")
            elif self.is_keyword("maxresults") and "max" not in seen:
                self.advance()
                query.max_results = max(0, min(MAX_RESULTS_CAP, self.integer("MAXRESULTS")))
                seen.add("max")
            else:
                raise QuerySyntaxError(f"unexpected {self.token.text!r} at position {self.token.position}")
        return query

    def condition(self) -> Condition:
        name = self.identifier("a field name")
        if self.token.kind == "op":
            op = self.advance().text
            return Condition(name, op, self.literal())
        if self.is_keyword("in"):
            self.advance()
            self.expect_punct("(")
            values = [self.literal()]
            while self.token.kind == "punct" and self.token.text == ",":
                self.advance()
                values.append(self.literal())
            self.expect_punct(")")
            return Condition(name, "IN", tuple(values))
        if self.is_keyword("like"):
            self.advance()
            if self.token.kind != "string":
                raise QuerySyntaxError(f"LIKE needs a quoted pattern at position {self.token.position}")
            return Condition(name, "LIKE", self.advance().value)
        raise QuerySyntaxError(f"expected an operator after {name!r} at position {self.token.position}")


def parse_query(text: str) -> Query:
    """Parse one query; raises QuerySyntaxError with the position of the problem."""
    if not text or not text.strip():
        raise QuerySyntaxError("empty query")
    return _Parser(text).parse()
