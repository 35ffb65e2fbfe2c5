"""The template sandbox's caps: nothing a template asks for can exhaust the machine.

Each refusal happens before the large value is made (these tests would take gigabytes and
minutes otherwise); templates within the caps render exactly as Jinja renders them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2.sandbox import SandboxedEnvironment

from pipeline.errors import Location, StoryboardError
from pipeline.language.compile import compile_storyboard
from pipeline.language.sandbox import MAX_SIZE, MAX_STEPS, Budget, TemplateLimit
from pipeline.language.templates import Renderer

TOO_LARGE = "a template may make at most 1,000,000 characters or items"
VARS = {"t": list(range(10)), "big": "0123456789" * 1000, "n": 7}


def refusal(template: str, **context: Any) -> str:
    with pytest.raises(TemplateLimit) as caught:
        Renderer().render(template, {**VARS, **context})
    return str(caught.value)


@pytest.mark.parametrize("template", [
    '{{ "x" * 10**9 }}',
    "{{ [[1] * 100000] * 100000 }}",
    "{{ big + big * 100 }}",
    '{{ "%1000000000s" % "x" }}',
    '{{ "%.*f" % (1000000000, 1) }}',
    '{{ ("%(a)s" * 200) % {"a": big} }}',
    '{{ "{:>1000000000}".format(1) }}',
    '{{ "{0}{0}".format(big * 60) }}',
    '{{ "{a:>{w}}".format(a=1, w=10**9) }}',
    '{{ "x".ljust(10**9) }}',
    '{{ "x".center(10**9) }}',
    '{{ "\t".expandtabs(10**9) }}',
    "{{ (1).to_bytes(10**9, 'big') }}",
    '{{ ("-" * 100000).join(range(100000)) }}',
    '{{ big.replace("0", big) * 1 }}{{ (big * 90).replace("", big) }}',
    '{{ "ab".translate({97: big * 99}) }}',
    '{{ "x" | center(1000000000) }}',
    '{{ big | indent(10**6) }}',
    '{{ big | wordwrap(1, wrapstring=big) }}',
    '{{ "%1000000000s" | format("x") }}',
    '{{ range(100000) | join("x" * 100000) }}',
    '{{ ("a" * 100000) | replace("a", "b" * 1000) }}',
    "{{ [1] | batch(1000000000, 0) | list }}",
    "{{ [1] | slice(1000000000, 0) | list }}",
    "{{ ([[1] * 1000] * 999) | sum(start=[]) | length }}",
    "{{ t | tojson(indent=10**6) }}",
    "{% set s %}{% for i in range(200) %}{{ big }}{% endfor %}{% endset %}{{ s|length }}",
    "{% for i in range(200) %}{{ big }}{% endfor %}",
])
def test_a_template_cannot_make_a_value_beyond_the_cap(template: str) -> None:
    assert TOO_LARGE in refusal(template)


def test_doubling_a_text_in_a_loop_stops_at_the_cap() -> None:
    ns = "{% set ns = namespace(s='x') %}{% for i in range(40) %}"
    assert TOO_LARGE in refusal(ns + "{% set ns.s = ns.s ~ ns.s %}{% endfor %}")
    assert TOO_LARGE in refusal(ns + "{% set ns.s = ns.s + ns.s %}{% endfor %}")
    assert TOO_LARGE in refusal(ns + "{% set s %}{{ ns.s }}{{ ns.s }}{% endset %}"
                                "{% set ns.s = s %}{% endfor %}")


def test_numbers_too_large_to_make_are_refused() -> None:
    assert refusal("{{ 10 ** 10000000 }}") == "10 ** 10000000 is a number too large to make"
    assert "too large" in refusal("{% set ns = namespace(n=10**1000) %}{% for i in "
                                  "range(20) %}{% set ns.n = ns.n * ns.n %}{% endfor %}")


@pytest.mark.parametrize("template", [
    "{% for a in t %}{% for b in t %}{% for c in t %}{% for d in t %}{% for e in t %}"
    "{% for f in t %}{% for g in t %}{% for h in t %}{% for i in t %}x{% endfor %}"
    "{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}{% endfor %}"
    "{% endfor %}",
    "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}"
    "{{ f(40) }}",
    "{% for x in t recursive %}{% if loop.depth < 9 %}{{ loop(t) }}{% endif %}{% endfor %}",
])
def test_loops_and_calls_stop_at_the_step_budget(template: str) -> None:
    assert refusal(template) == (f"the templates of this storyboard take more than "
                                 f"{MAX_STEPS:,} steps; simplify the loops")


def test_the_budget_is_the_storyboards_not_each_templates() -> None:
    renderer = Renderer(Budget(steps=1000))
    loop = "{% for i in range(400) %}{% endfor %}{{ n }}"
    assert renderer.render(loop, VARS) == "7"
    assert renderer.render(loop + " ", VARS) == "7 "
    with pytest.raises(TemplateLimit):
        renderer.render(loop + "  ", VARS)
    assert renderer.budget.spent


def test_a_plain_substitution_is_capped_too() -> None:
    text = " ".join(["{{ big }}"] * 101)
    assert TOO_LARGE.split(";")[0] not in refusal(text)  # its own message
    assert f"longer than {MAX_SIZE:,} characters" in refusal(text)


@pytest.mark.parametrize("template", [
    "{% for x in t %}{{ x }}{% if not loop.last %}, {% endif %}{% endfor %}",
    "{{ t | join('-') }} {{ 'ab' * 3 }} {{ '%05d|%-4s|' % (n, 'x') }} {{ n ** 3 }}",
    "{{ '{} and {:>5}'.format(n, 'x') }} {{ 'x'.center(9, '*') }} {{ t | sum }}",
    "{{ big[:5] ~ 'a' ~ n }} {{ [1, 2] + [3] }} {{ t | batch(3) | list }}",
    "{% set s %}{{ n }}{{ n }}{% endset %}{{ s }} {{ 'a b' | wordwrap(1) | length }}",
    "{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{{ m('y') }} {{ t | tojson }}",
])
def test_templates_within_the_caps_render_exactly_as_jinja_does(template: str) -> None:
    plain = SandboxedEnvironment().from_string(template).render(VARS)
    assert Renderer().render(template, VARS) == plain


def test_a_refusal_is_a_problem_at_the_templates_line(tmp_path: Path) -> None:
    path = tmp_path / "board.yaml"
    path.write_text("version: 1\nmodel: pixverse:1@3\nshots:\n  a:\n    positivePrompt: ok\n"
                    "  b:\n    positivePrompt: '{{ \"x\" * 10**9 }}'\n", encoding="utf-8")
    with pytest.raises(StoryboardError) as caught:
        compile_storyboard(path, display="board.yaml")
    (problem,) = caught.value.problems
    assert problem.location == Location("board.yaml", 7, 21)
    assert problem.message == ("shots.b.positivePrompt: template error: the repeated value "
                               f"would be 1,000,000,000 long; {TOO_LARGE}")


def test_once_the_budget_is_spent_it_is_reported_once(tmp_path: Path) -> None:
    loops = ("{% for a in range(1000) %}{% for b in range(1000) %}{% endfor %}{% endfor %}"
             "{{ shot.id }} at dusk")
    shots = "".join(f"  s{i}:\n    positivePrompt: '{loops}'\n" for i in range(5))
    path = tmp_path / "board.yaml"
    path.write_text(f"version: 1\nmodel: pixverse:1@3\nshots:\n{shots}", encoding="utf-8")
    with pytest.raises(StoryboardError) as caught:
        compile_storyboard(path, display="board.yaml")
    (problem,) = caught.value.problems
    assert problem.location == Location("board.yaml", 5, 21)
    assert "steps" in problem.message
