"""Selection (`run --select`): dbt's grammar over the shot graph, one selector at a time.

The graph, in each of two variants:

    trail -> approach -> arrival -> bridge <- door
          \\-> gulls
    sea (alone)

`shot` is that shot, `+shot` adds everything it depends on, `shot+` everything that depends
on it, `@shot` its descendants and every ancestor of those; several selectors are a union.
A selected shot whose parent is left out needs that parent's take in the cache.
"""

from __future__ import annotations

import pytest

from pipeline.errors import ExitCode, UsageError
from pipeline.language.compile import Compiled, compile_storyboard
from pipeline.language.select import select_keys

STORY = """\
version: 1
model: pixverse:1@3
variants: {sea: [calm, rough]}
shots:
  trail: {positivePrompt: "a trail above a {{ sea }} sea"}
  approach: {from: trail, positivePrompt: the traveller nears the lighthouse}
  arrival: {from: approach, positivePrompt: the traveller reaches the door}
  gulls: {from: {shot: trail, frame: first}, positivePrompt: gulls over the cliff}
  door: {positivePrompt: a weathered door}
  bridge:
    positivePrompt: the door opens
    inputs:
      frameImages:
        - {image: {shot: arrival, frame: last}, frame: first}
        - {image: {shot: door, frame: first}, frame: last}
  sea: {positivePrompt: "a {{ sea }} sea"}
"""


@pytest.fixture(scope="module")
def story(tmp_path_factory: pytest.TempPathFactory) -> Compiled:
    path = tmp_path_factory.mktemp("select") / "story.yaml"
    path.write_text(STORY, encoding="utf-8")
    return compile_storyboard(path)


def ids(keys: set[str] | None) -> set[str]:
    """The shot ids among the selected keys, checking every variant came along."""
    assert keys is not None
    found = {key.split("[")[0] for key in keys}
    assert keys == {f"{i}[sea={v}]" for i in found for v in ("calm", "rough")}
    return found


def everything_cached(identity: str) -> bool:
    return True


def nothing_cached(identity: str) -> bool:
    return False


def test_no_selector_is_the_whole_storyboard(story: Compiled) -> None:
    assert select_keys(story, [], nothing_cached) is None


def test_a_shot_alone(story: Compiled) -> None:
    assert ids(select_keys(story, ["approach"], everything_cached)) == {"approach"}


def test_plus_before_adds_what_the_shot_depends_on(story: Compiled) -> None:
    assert ids(select_keys(story, ["+bridge"], nothing_cached)) == {
        "bridge", "arrival", "approach", "trail", "door"}
    assert ids(select_keys(story, ["+trail"], nothing_cached)) == {"trail"}


def test_plus_after_adds_what_depends_on_the_shot(story: Compiled) -> None:
    assert ids(select_keys(story, ["approach+"], everything_cached)) == {
        "approach", "arrival", "bridge"}
    assert ids(select_keys(story, ["trail+"], everything_cached)) == {
        "trail", "approach", "arrival", "gulls", "bridge"}


def test_at_adds_the_descendants_and_all_their_ancestors(story: Compiled) -> None:
    # door's descendant bridge needs arrival, approach and trail too; gulls and sea do not
    # depend on anything selected, so they stay out.
    assert ids(select_keys(story, ["@door"], nothing_cached)) == {
        "door", "bridge", "arrival", "approach", "trail"}
    assert ids(select_keys(story, ["@sea"], nothing_cached)) == {"sea"}


def test_several_selectors_are_a_union(story: Compiled) -> None:
    assert ids(select_keys(story, ["gulls", "sea", " door "], everything_cached)) == {
        "gulls", "sea", "door"}
    assert ids(select_keys(story, ["+gulls", "door+"], everything_cached)) == {
        "gulls", "trail", "door", "bridge"}


def test_an_unknown_shot_is_a_usage_error_with_the_closest_id(story: Compiled) -> None:
    with pytest.raises(UsageError) as caught:
        select_keys(story, ["+brige"], nothing_cached)
    assert caught.value.message == "--select '+brige': no shot 'brige'"
    assert caught.value.hint == "did you mean 'bridge'?"
    assert caught.value.exit_code == ExitCode.USAGE


def test_a_shot_whose_parent_is_not_made_yet_stops_before_anything_runs(
        story: Compiled) -> None:
    with pytest.raises(UsageError) as caught:
        select_keys(story, ["approach+"], nothing_cached)
    assert caught.value.message == (
        "--select leaves out shots whose takes are not made yet: "
        "approach[sea=calm] needs trail[sea=calm]; approach[sea=rough] needs trail[sea=rough]; "
        "bridge[sea=calm] needs door[sea=calm]; bridge[sea=rough] needs door[sea=rough]")
    assert "+shot" in (caught.value.hint or "")


def test_a_parent_in_the_cache_may_be_left_out(story: Compiled) -> None:
    made = {story.plan.shot(f"{name}[sea={sea}]").identity
            for name in ("trail", "door") for sea in ("calm", "rough")}
    keys = select_keys(story, ["approach+"], made.__contains__)
    assert ids(keys) == {"approach", "arrival", "bridge"}

