"""The offline Bicep rules (tests/infra/bicep_check.py): each rule refuses a small bad snippet, accepts its
good twin, and infra/ passes them all. Codes and rules are Bicep's own (MicrosoftDocs azure-docs,
articles/azure-resource-manager/bicep/bicep-core-diagnostics.md and the per-code pages under diagnostics/;
decorators: parameters.md "Decorators"); MMS001 is the project's own (docs/infra.md, "Offline Bicep rules")."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.infra.bicep_check import FileModel, Reporter, check_file, check_paths, check_text, parse
from tests.support import ROOT

INFRA = ROOT / "infra"


def codes(text: str, others: dict[str, str] | None = None) -> list[str]:
    return [d.code for d in check_text(text, others=others)]


def test_infra_has_no_diagnostic() -> None:
    diagnostics = check_paths(sorted(INFRA.rglob("*.bicep")))
    assert [str(d) for d in diagnostics] == []


# The two errors of issue 24, as a454bf4 had them.
ORPHANED_SECURE_ON_INT = """\
param expiryWindowHours int
@secure()
param maximumInstanceCount int = 100
"""
ORPHANED_MIN_LENGTH_ON_EMPTY_DEFAULT = """\
param expiryWindowHours int = 72

@secure()
@minLength(32)

@description('Principal id of the identity running the deployment (azd sets it).')
param principalId string = ''
"""


def test_the_two_errors_issue_24_found_are_refused() -> None:
    assert codes(ORPHANED_SECURE_ON_INT) == ["BCP124"]
    assert codes(ORPHANED_MIN_LENGTH_ON_EMPTY_DEFAULT) == ["MMS001", "BCP333"]


# (bad snippet, the code it must raise, a good twin that must pass)
DECORATOR_CASES = [
    ("@secure()\nparam n int = 1", "BCP124", "@secure()\nparam n string"),
    ("@secure()\nparam b bool", "BCP124", "@secure()\nparam o object"),
    ("@minLength(3)\nparam n int", "BCP124", "@minLength(3)\nparam a array"),
    ("@maxLength(3)\nparam b bool", "BCP124", "@maxLength(3)\nparam s string"),
    ("@minValue(1)\nparam s string", "BCP124", "@minValue(1)\nparam n int"),
    ("@maxValue(1)\nparam a array", "BCP124", "@maxValue(1)\nparam n int"),
    ("@sealed()\nparam s string", "BCP124", "@sealed()\nparam o { a: string }"),
    ("@discriminator('k')\nparam s string", "BCP124", "@discriminator('k')\nparam o object"),
    ("@export()\nparam s string", "BCP125", "@export()\ntype t = string"),
    ("@allowed(['a'])\noutput o string = 'a'", "BCP129", "@description('d')\noutput o string = 'a'"),
    ("@minLength(1)\nvar v = 'a'", "BCP126", "@description('d')\nvar v = 'a'"),
    (
        "@secure()\nresource r 'A.B/c@2020-01-01' = { name: 'x' }",
        "BCP127",
        "@batchSize(2)\nresource r 'A.B/c@2020-01-01' = [for i in range(0, 3): { name: 'x${i}' }]",
    ),
    ("@uniqueString()\nparam s string", "BCP152", "@description('s')\nparam s string"),
    ("@nonsense()\nparam s string", "BCP057", "@sys.description('s')\nparam s string"),
    ("@minLength('3')\nparam s string", "BCP070", "@minLength(3)\nparam s string"),
    ("@description(3)\nparam s string", "BCP070", "@description('3')\nparam s string"),
    ("@minLength()\nparam s string", "BCP071", "@minLength(0)\nparam s string"),
    ("@secure(1)\nparam s string", "BCP071", "@secure()\nparam s string"),
    ("@minLength(-1)\nparam s string", "BCP168", "@minLength(0)\nparam s string"),
    ("@minValue(5)\n@maxValue(1)\nparam n int", "BCP331", "@minValue(1)\n@maxValue(5)\nparam n int"),
    ("@allowed([])\nparam s string = 'a'", "BCP099", "@allowed(['a'])\nparam s string = 'a'"),
    ("@minLength(1)\n@minLength(2)\nparam s string", "BCP166", "@minLength(1)\n@maxLength(2)\nparam s string"),
]
DEFAULT_CASES = [
    ("@minLength(32)\nparam s string = ''", "BCP333", "@minLength(32)\nparam s string"),
    ("@minLength(2)\nparam a array = ['x']", "BCP333", "@minLength(1)\nparam a array = ['x']"),
    ("@maxLength(2)\nparam s string = 'abc'", "BCP332", "@maxLength(3)\nparam s string = 'abc'"),
    # a string's length in UTF-16 code units, as the compiler's .NET strings count it: an emoji is 2
    ("@maxLength(1)\nparam s string = '\\u{1F600}'", "BCP332", "@maxLength(2)\nparam s string = '\\u{1F600}'"),
    ("@minLength(2)\nparam s string = '\u00e9'", "BCP333", "@maxLength(1)\nparam s string = '\u00e9'"),
    ("@minValue(1)\nparam n int = 0", "BCP328", "@minValue(0)\nparam n int = 0"),
    ("@minValue(-1)\nparam n int = -2", "BCP328", "@minValue(-2)\nparam n int = -2"),
    ("@maxValue(5)\nparam n int = 6", "BCP327", "@maxValue(6)\nparam n int = 6"),
    ("@allowed(['a', 'b'])\nparam s string = 'c'", "BCP033", "@allowed(['a', 'b'])\nparam s string = 'b'"),
    ("@allowed(['a', 1])\nparam s string = 'a'", "BCP033", "@allowed(['a', '1'])\nparam s string = 'a'"),
    ("@allowed(['a', 'b'])\nparam s array = ['a', 'c']", "BCP033", "@allowed(['a', 'b'])\nparam s array = ['a', 'b']"),
    ("param s string = 1", "BCP033", "param s string = '1'"),
    ("param n int = 'x'", "BCP033", "param n int = 1"),
    ("param b bool = 'true'", "BCP033", "param b bool = true"),
    ("param o object = []", "BCP033", "param o object = {}"),
    ("var v = 'a'\nparam p string = v", "BCP072", "param q string = 'a'\nparam p string = q"),
    ("output o int = 'x'", "BCP026", "output o int = 1"),
]
ORPHAN_CASES = [
    ("param a string\n@secure()\n", "BCP132", "@secure()\nparam a string\n"),
    ("@secure()", "BCP132", "@secure()\nparam a string"),
    (
        "@description('d')\n// nothing follows\n",
        "BCP132",
        "@description('d')\n// a comment line is fine\nparam s string",
    ),
    ("@description('d')\nfoo bar", "BCP132", "@description('d')\nparam foo string"),
    ("@secure()\n\nparam s string", "MMS001", "@secure()\nparam s string"),
    ("@secure()\n   \t\nparam s string", "MMS001", "@secure()\n  // why\nparam s string"),
    ("@secure()\r\n\r\nparam s string", "MMS001", "@secure()\r\nparam s string"),
    ("@secure() param s string", "BCP019", "@secure()\nparam s string"),
]


@pytest.mark.parametrize(("bad", "code", "good"), DECORATOR_CASES + DEFAULT_CASES + ORPHAN_CASES)
def test_each_rule_refuses_its_bad_snippet_and_accepts_its_twin(bad: str, code: str, good: str) -> None:
    assert code in codes(bad), check_text(bad)
    assert check_text(good) == []


SYMBOL_CASES = [
    ("output o string = nope", "BCP057", "param nope string\noutput o string = nope"),
    ("var x = [for i in range(0, 2): j]", "BCP057", "var x = [for (i, j) in range(0, 2): j]"),
    ("var f = map([1], x => y)", "BCP057", "var f = map([1], x => x)"),
    ("var f = map([1], (x, i) => z)", "BCP057", "var f = reduce([1], 0, (acc, x) => acc + x)"),
    ("var v = 'a${missing}b'", "BCP057", "var w = 'a'\nvar v = 'a${w}b'"),
    ("param a string\nvar a = 1", "BCP028", "param a string\nvar b = 1"),
    ("output o string = 'a'\noutput o string = 'b'", "BCP145", "output o string = 'a'\noutput p string = 'b'"),
    ("var x = toLowr('A')", "BCP057", "var x = toLower('A')"),
    ("var x = sys.toLowr('A')", "BCP107", "var x = sys.toLower('A')"),
    ("var x = x", "BCP079", "var y = 1\nvar x = y"),
    ("param p object = reference('x')", "MMS003", "param p string = resourceGroup().location"),
    ("type t = string\nvar v = t", "BCP288", "type t = string\nparam v t"),
]
RESOURCE_CASES = [
    (
        "resource r 'Microsoft.Web/sites' = { name: 'a' }",
        "BCP029",
        "resource r 'Microsoft.Web/sites@2024-04-01' = { name: 'a' }",
    ),
    (
        "resource r 'sites@2024-04-01' = { name: 'a' }",
        "BCP029",
        "resource r 'Microsoft.Web/sites/config@2024-04-01' = { name: 'a' }",
    ),
    (
        "param v string\nresource r 'A.B/c@${v}' = { name: 'a' }",
        "BCP047",
        "resource r 'A.B/c@2024-01-01-preview' = { name: 'a' }",
    ),
    (
        "resource r 'A.B/c@2024-01-01' = { location: 'x' }",
        "BCP035",
        "resource r 'A.B/c@2024-01-01' existing = { name: 'x' }",
    ),
    (
        "resource s 'A.B/c@2024-01-01' = { name: 'a' }\nresource r 'A.B/c@2024-01-01' = { name: s.properties.x }",
        "BCP120",
        "resource s 'A.B/c@2024-01-01' = { name: 'a' }\nresource r 'A.B/c@2024-01-01' = { name: '${s.name}-b' }",
    ),
    ("targetScope = 'resourcegroups'", "BCP033", "targetScope = 'subscription'"),
    ("targetScope = 'subscription'\ntargetScope = 'tenant'", "BCP112", "targetScope = 'tenant'"),
    ("var o = {\n  a: 1\n  a: 2\n}", "BCP025", "var o = {\n  a: 1\n  b: { a: 2 }\n}"),
    ("param p string? = 'x'", "BCP326", "param p string?\nparam q string = 'x'"),
    ("@allowed(['a'])\nparam p 'a' | 'b'", "BCP295", "param p 'a' | 'b' = 'a'"),
]
LEXER_CASES = [
    ("var s = 'abc", "BCP003", "var s = 'abc'"),
    ("var s = 'abc\nvar t = 1", "BCP004", "var s = 'abc'\nvar t = 1"),
    ("var s = 'a\\qb'", "BCP006", "var s = 'a\\nb\\t\\\\\\'\\$'"),
    ("var s = '\\u{110000}'", "BCP133", "var s = '\\u{10FFFF}'"),
    ('var s = "abc"', "BCP103", "var s = 'abc'"),
    ("var s = 'a${1'", "BCP004", "var s = 'a${1}'"),
    ("/* open", "BCP002", "/* closed */"),
    ("var s = '''abc", "BCP140", "var s = '''abc'''"),
    ("var x = f(", "BCP009", "var x = max(1, 2)"),
    ("var x = [1 2]", "BCP236", "var x = [1, 2]"),
    ("var x = { a: 1 b: 2 }", "BCP236", "var x = { a: 1, b: 2 }"),
    (
        "var o = { 'a': { b: [for x in [1]: { c: '${y}' }] } }",
        "BCP057",
        "var o = { 'a': { b: [for x in [1]: { c: '${x}' }] } }\nvar x = o.a.b[0].c!",
    ),
]


@pytest.mark.parametrize(("bad", "code", "good"), SYMBOL_CASES + LEXER_CASES + RESOURCE_CASES)
def test_symbols_and_syntax_refuse_the_bad_snippet_and_accept_its_twin(bad: str, code: str, good: str) -> None:
    assert code in codes(bad), check_text(bad)
    assert check_text(good) == []


CHILD = """\
param name string
@minValue(1)
@maxValue(10)
param count int = 1
param optional string?
param tags object = {}
output id string = name
output n int = count
"""
MODULE_CASES = [
    ("module m 'child.bicep' = { params: { name: 'a', extra: 1 } }", "BCP037"),
    ("module m 'child.bicep' = { params: { count: 2 } }", "BCP035"),
    ("module m 'child.bicep' = { params: { name: 1 } }", "BCP036"),
    ("param n int\nmodule m 'child.bicep' = { params: { name: n } }", "BCP036"),
    ("module m 'child.bicep' = { params: { name: 'a', count: 'x' } }", "BCP036"),
    ("module m 'child.bicep' = { params: { name: 'a', tags: [] } }", "BCP036"),
    ("module m 'child.bicep' = { params: { name: 'a', count: 11 } }", "BCP327"),
    ("module m 'child.bicep' = { params: { name: 'a', count: 0 } }", "BCP328"),
    ("module m 'child.bicep' = { params: { name: 'a' } }\noutput o string = m.outputs.nope", "BCP053"),
    ("module m 'missing.bicep' = { params: {} }", "BCP091"),
    ("module m 'child.bicep' = if (true) { params: { name: 'a', extra: 1 } }", "BCP037"),
    ("module m 'child.bicep' = [for i in range(0, 2): { params: { count: i } }]", "BCP035"),
    ("module m 'child.bicep' = { params: { name: 'a' } }\noutput o string = m.outputs.n", "BCP026"),
    ("var p = { name: 'a' }\nmodule m 'child.bicep' = { params: p }", "BCP183"),
    ("module m '' = { params: {} }", "BCP050"),
    ("module m '/child.bicep' = { params: {} }", "BCP051"),
    ("module m 'sub\\\\child.bicep' = { params: {} }", "BCP098"),
    ("module m 'snippet.bicep' = { params: {} }", "BCP094"),
]
MODULE_GOOD = [
    "module m 'child.bicep' = { params: { name: 'a' } }\noutput o string = m.outputs.id",
    "param n string\nmodule m 'child.bicep' = { params: { name: toLower(n), count: 10, optional: null } }",
    "module m 'child.bicep' = [for i in range(1, 2): { name: 'm${i}', params: { name: 'a${i}', count: i } }]"
    "\noutput o int = m[0].outputs.n",
    "module m 'child.bicep' = if (true) { params: { name: 'a', tags: { a: 'b' } } }"
    "\noutput o string = m.?outputs.id ?? ''",
]


@pytest.mark.parametrize(("bad", "code"), MODULE_CASES)
def test_a_module_must_pass_what_its_file_declares(bad: str, code: str) -> None:
    assert code in codes(bad, {"child.bicep": CHILD}), check_text(bad, others={"child.bicep": CHILD})


@pytest.mark.parametrize("good", MODULE_GOOD)
def test_a_module_that_passes_what_its_file_declares_is_accepted(good: str) -> None:
    assert check_text(good, others={"child.bicep": CHILD}) == []


def test_nesting_too_deep_for_the_checker_is_a_diagnostic_not_a_crash() -> None:
    assert codes("var x = " + "[" * 5000 + "]" * 5000) == ["MMS002"]
    assert check_text("var x = " + "[" * 50 + "1" + "]" * 50) == []


PIECES = [*"{}[]()@'$\\\n :,.?!=<>|&*/+-%0123456789abxyz_", "param ", "var ", "resource ", "module ", "output "]
PIECES += ["type ", "func ", "'''", "${", "for ", " in ", "if ", "@secure()", "@minLength(", "existing", "=>", "..."]
PIECES += ["::", "string", "int", "\U0001f600", "\u2028", "\x00", " = ", "null", "true", "/*", "//"]
MAIN_TEXT = (INFRA / "main.bicep").read_text()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(PIECES), max_size=40), st.integers(0, len(MAIN_TEXT)), st.integers(0, 40))
def test_any_edit_of_a_real_file_gives_diagnostics_never_a_crash(pieces: list[str], at: int, cut: int) -> None:
    text = MAIN_TEXT[:at] + "".join(pieces) + MAIN_TEXT[at + cut :]
    reporter = Reporter("main.bicep")
    model = FileModel(INFRA / "main.bicep", parse(text, reporter), reporter)
    check_file(model)
    assert all(d.code.startswith(("BCP", "MMS")) for d in reporter.diagnostics)
